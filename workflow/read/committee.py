"""The committee of a track as the office reads it: each evaluator's load (applications assigned,
sheets entered and missing, per part), the conflicts of interest declared, and how many sheets each
application still lacks.

A sheet is one evaluator's points for one application and one part. It counts as the ranking
counts it (stages/selection.ranking_in): only an assignment free of any conflict expects a sheet
(an evaluator who became conflicted after being assigned is listed apart, and their sheets are not
counted), and a part's sheets are due once the application is in that part or past it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.states.committee import REGIONS, conflict
from gongmo.states.scoring import PARTS
from gongmo.workflow.core.config import Track
from gongmo.workflow.core.models import APPLICANT, APPLICATION, ASSIGNMENT, DECLARED_CONFLICT, EVALUATOR, SCORE, TRACK
from gongmo.workflow.stages import committee
from gongmo.workflow.stages.selection import RANKED_STATES

# The states in which an application's sheets of each part are due (in that part, or past it).
DUE: dict[str, tuple[str, ...]] = {
    "written": ("written_evaluation", *RANKED_STATES),
    "presentation": RANKED_STATES,
}


@dataclass(frozen=True)
class Declared:
    """A conflict of interest an evaluator declared: with whom, why, when."""

    applicant_code: str
    applicant: str | None  # the applicant's name, if it is known to gongmo
    reason: str
    declared_at: datetime


@dataclass(frozen=True)
class Conflicted:
    """An assignment in this track whose evaluator is now in conflict: it expects no sheet."""

    receipt_no: str
    why: str


@dataclass(frozen=True)
class Load:
    """One evaluator's work in the track, per part (written, presentation)."""

    email: str
    name: str
    affiliation: str
    region: str  # the 시·도's name
    assigned: dict[str, int]  # applications whose sheet of that part is due from this evaluator
    entered: dict[str, int]
    missing: dict[str, int]
    declared: list[Declared] = field(default_factory=list)
    conflicted: list[Conflicted] = field(default_factory=list)


@dataclass(frozen=True)
class Sheets:
    """One application's sheets: per part, entered and missing (None: that part is not due yet)."""

    application_id: int
    receipt_no: str
    applicant: str
    state: str
    evaluators: int  # assigned and free of conflict
    entered: dict[str, int | None]
    missing: dict[str, int | None]


@dataclass(frozen=True)
class Committee:
    evaluators: list[Load]
    applications: list[Sheets]

    def missing(self, part: str) -> int:
        return sum(a.missing[part] or 0 for a in self.applications)


def of_track(conn: Connection, track: Track) -> Committee:
    """The whole committee (every evaluator, with a load of 0 where none) and the track's
    applications in evaluation or past it, read in the caller's transaction."""
    track_id = conn.execute(sa.select(TRACK.c.id).where(TRACK.c.key == track.key)).scalar_one()
    apps = conn.execute(
        sa.select(APPLICATION.c.id, APPLICATION.c.receipt_no, APPLICATION.c.state, APPLICANT.c.name, APPLICANT.c.code)
        .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
        .where(APPLICATION.c.track_id == track_id, APPLICATION.c.state.in_(DUE["written"]))
        .order_by(APPLICATION.c.receipt_no)
    ).all()
    ids = [int(a.id) for a in apps]
    pool = {e.key: e for e in committee.evaluators(conn)}
    same_region = track.evaluation.conflict_same_region
    codes = {int(a.id): a.code for a in apps}
    labels = {int(a.id): a.receipt_no or str(a.id) for a in apps}
    assigned: dict[int, set[str]] = defaultdict(set)  # application -> evaluators expected to score it
    conflicted: dict[str, list[Conflicted]] = defaultdict(list)
    for app_id, email in conn.execute(
        sa.select(ASSIGNMENT.c.application_id, EVALUATOR.c.email)
        .join(EVALUATOR, EVALUATOR.c.id == ASSIGNMENT.c.evaluator_id)
        .where(ASSIGNMENT.c.application_id.in_(ids))
    ):
        why = conflict(pool[email], codes[int(app_id)], same_region)
        if why is None:
            assigned[int(app_id)].add(email)
        else:
            conflicted[email].append(Conflicted(labels[int(app_id)], why))
    sheets = {
        (int(r[0]), r[1], r[2])
        for r in conn.execute(
            sa.select(SCORE.c.application_id, EVALUATOR.c.email, SCORE.c.part)
            .join(EVALUATOR, EVALUATOR.c.id == SCORE.c.evaluator_id)
            .where(SCORE.c.application_id.in_(ids))
            .distinct()
        )
    }
    states = {int(a.id): a.state for a in apps}
    applications = [_sheets(a, assigned[int(a.id)], sheets) for a in apps]
    declared = _declared(conn)
    loads = []
    for r in conn.execute(sa.select(EVALUATOR).order_by(EVALUATOR.c.name, EVALUATOR.c.email)):
        counts: dict[str, dict[str, int]] = {"assigned": {}, "entered": {}}
        for part in PARTS:
            due = [i for i, who in assigned.items() if r.email in who and states[i] in DUE[part]]
            counts["assigned"][part] = len(due)
            counts["entered"][part] = sum(1 for i in due if (i, r.email, part) in sheets)
        missing = {p: counts["assigned"][p] - counts["entered"][p] for p in PARTS}
        loads.append(
            Load(
                r.email,
                r.name,
                r.affiliation,
                REGIONS.get(r.region, r.region),
                counts["assigned"],
                counts["entered"],
                missing,
                declared.get(int(r.id), []),
                sorted(conflicted.get(r.email, []), key=lambda c: c.receipt_no),
            )
        )
    return Committee(loads, applications)


def _sheets(a: Any, expected: set[str], sheets: set[tuple[int, str, str]]) -> Sheets:
    entered: dict[str, int | None] = {}
    missing: dict[str, int | None] = {}
    for part in PARTS:
        if a.state not in DUE[part]:
            entered[part] = missing[part] = None
            continue
        done = sum(1 for email in expected if (int(a.id), email, part) in sheets)
        entered[part], missing[part] = done, len(expected) - done
    return Sheets(int(a.id), a.receipt_no or str(a.id), a.name, a.state, len(expected), entered, missing)


def _declared(conn: Connection) -> dict[int, list[Declared]]:
    query = (
        sa.select(
            DECLARED_CONFLICT.c.evaluator_id,
            DECLARED_CONFLICT.c.applicant_code,
            APPLICANT.c.name,
            DECLARED_CONFLICT.c.reason,
            DECLARED_CONFLICT.c.declared_at,
        )
        .outerjoin(APPLICANT, APPLICANT.c.code == DECLARED_CONFLICT.c.applicant_code)
        .order_by(DECLARED_CONFLICT.c.declared_at, DECLARED_CONFLICT.c.id)
    )
    out: dict[int, list[Declared]] = defaultdict(list)
    for evaluator_id, code, name, reason, at in conn.execute(query):
        out[int(evaluator_id)].append(Declared(code, name, reason, at))
    return out
