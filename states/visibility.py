"""Who sees what: the one rule per role, used by every reader.

Pure: no I/O. The service (workflow/visibility.py) reads the rows and asks
these functions what each caller may see of them; the HTTP API, the CLI's
`show`, the metrics and any page go through it, never around it.

- admin (the contest office): everything.
- applicant (a local government): its own applications. While its track's
  results are under embargo (from the selection's confirmation until the
  office releases the result notices), an application that has a result
  shows the stage it was in before (presentation evaluation) with "result
  pending", and nothing of the result: no rank, score, waitlist position, no
  audit row of the decision, no held notice. It never sees who evaluates it
  (assignments, conflicts) nor a single evaluator's sheet; after the release
  it sees the aggregates (part scores, committee score, rank of N, cutoff).
  Its notices are the ones that were sent.
- evaluator: the applications assigned to it with no conflict, under the same
  embargo; its own sheets only (the scores route filters them).
- metrics (a monitoring system): counts only, results folded as above while
  under embargo.
- no token: nothing that reveals a decision.

Calendar changes (a track's reschedules, one application's extensions) are
public to the applicant they touch, with who, when and why: its own
extensions and its track's reschedules. An evaluator reads the track's
reschedules (its windows move with them), not an applicant's extension.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gongmo.states.lifecycle import Role

# The states that are a result of the selection (or follow from one).
RESULT_STATES: frozenset[str] = frozenset({"selected", "waitlisted", "not_selected", "kickoff", "cancelled"})
# What an application with a result under embargo shows instead: the stage it was decided in.
BEFORE_RESULT = "presentation_evaluation"
# Fields of an application that carry the result.
RESULT_FIELDS: tuple[str, ...] = ("score", "rank", "waitlist_position")

# Event kinds an applicant reads on its own application (never the committee's:
# assigned, unassigned, scored, score_corrected, conflict_declared).
APPLICANT_EVENTS: frozenset[str] = frozenset(
    {
        "objection_filed",
        "objection_upheld",
        "objection_rejected",
        "plan_received",
        "plan_returned",
        "plan_approved",
    }
)
# Of those, the ones that exist only because of a result (hidden under embargo).
RESULT_EVENTS: frozenset[str] = frozenset({"plan_received", "plan_returned", "plan_approved"})
# What an applicant reads of a notice that was sent to it.
APPLICANT_NOTICE_FIELDS: tuple[str, ...] = ("id", "notice", "language", "state", "subject", "created_at", "sent_at")


@dataclass(frozen=True)
class Viewer:
    """Who reads: a role and, for an applicant or evaluator, whose rows are theirs."""

    role: Role
    subject: str = ""

    @property
    def insider(self) -> bool:
        """The office sees everything, the embargo included."""
        return self.role == Role.ADMIN

    @property
    def sees_results_only_after_release(self) -> bool:
        return self.role != Role.ADMIN


def masked_state(state: str, embargoed: bool) -> tuple[str, bool]:
    """(the state to show, whether a result is pending behind it)."""
    if embargoed and state in RESULT_STATES:
        return BEFORE_RESULT, True
    return state, False


def application(viewer: Viewer, row: Mapping[Any, Any], embargoed: bool) -> dict[str, Any]:
    """One application's fields as this viewer may read them; adds `result_pending`."""
    out = dict(row)
    if viewer.insider:
        out["result_pending"] = False
        return out
    out["state"], pending = masked_state(str(row["state"]), embargoed)
    out["result_pending"] = pending
    if embargoed:
        for name in RESULT_FIELDS:
            if name in out:
                out[name] = None
    return out


def audit_row(viewer: Viewer, row: Mapping[Any, Any], embargoed: bool) -> dict[str, Any] | None:
    """An audit row as the viewer may read it, or None: under embargo the
    decision's own rows are hidden, and a later move out of a result state
    (a withdrawal) shows the stage before the result as its origin."""
    if viewer.insider or not embargoed:
        return dict(row)
    if row["to_state"] in RESULT_STATES:
        return None
    out = dict(row)
    if row["from_state"] in RESULT_STATES:
        out["from_state"] = BEFORE_RESULT
        out["reason"] = None if row["role"] != viewer.role.value else row["reason"]
    return out


def event(viewer: Viewer, row: Mapping[Any, Any], embargoed: bool) -> bool:
    """May the viewer read this event of an application it may see?"""
    if viewer.insider:
        return True
    if viewer.role != Role.APPLICANT:
        return False  # an evaluator reads its own sheets through the scores, nothing of the others
    kind = str(row["kind"])
    return kind in APPLICANT_EVENTS and not (embargoed and kind in RESULT_EVENTS)


def notice(viewer: Viewer, row: Mapping[Any, Any]) -> dict[str, Any] | None:
    """An outbox row as the viewer may read it: an applicant the notices sent to it."""
    if viewer.insider:
        return dict(row)
    if viewer.role != Role.APPLICANT or row["state"] != "sent":
        return None
    return {k: row[k] for k in APPLICANT_NOTICE_FIELDS if k in row}


def calendar_change(viewer: Viewer, row: Mapping[Any, Any]) -> bool:
    """May the viewer read this calendar change of an application it may see? (The
    reader passes only the track's reschedules and that application's own extensions.)"""
    if viewer.role in (Role.ADMIN, Role.APPLICANT):
        return True
    return viewer.role == Role.EVALUATOR and row["application_id"] is None


def state_count(viewer: Viewer, state: str, embargoed: bool) -> str:
    """The state a count is filed under (metrics): results folded while under embargo."""
    return state if viewer.insider else masked_state(state, embargoed)[0]
