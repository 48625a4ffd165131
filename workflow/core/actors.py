"""Who acts: a name for the audit log and a role the rules check."""

from __future__ import annotations

from dataclasses import dataclass

from gongmo.states.lifecycle import Role


@dataclass(frozen=True)
class Actor:
    name: str
    role: Role


SYSTEM = Actor("scheduler", Role.SYSTEM)
