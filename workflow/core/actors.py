"""Who acts: a name for the audit log and a role the rules check."""

from __future__ import annotations

from dataclasses import dataclass

from gongmo.states.lifecycle import Role


@dataclass(frozen=True)
class Actor:
    name: str
    role: Role


SYSTEM = Actor("scheduler", Role.SYSTEM)


def acting_for(subject: str, person: str | None) -> str:
    """The audit's name of who acts for a subject: the subject itself (an API token, the CLI), or the
    subject with the person who acted for it, e.g. "41110 (kim@city.go.kr)" for a contact of an
    applicant signed in to its pages; visibility stays keyed on the subject."""
    return subject if not person or person == subject else f"{subject} ({person})"
