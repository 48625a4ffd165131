"""One track as the office's track page reads it: the header (slots, budget and what is used),
the applications a page at a time (the API's list: visibility.page), the calendar with what has
fired, which bulk actions are allowed now, and each action's dry run (the rows it would touch,
computed by the stage's own rule: review.to_pass, review.to_disqualify, committee.preview_assign).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.states.errors import Conflict, NotFound
from gongmo.states.lifecycle import APPLICATION_DEADLINES
from gongmo.workflow.core import lookups
from gongmo.workflow.core.config import ConfigError, Contest, Track
from gongmo.workflow.core.db import custom_plans
from gongmo.workflow.core.models import APPLICATION
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.read import deadlines as deadline_rows
from gongmo.workflow.read import visibility
from gongmo.workflow.stages import committee, review

if TYPE_CHECKING:
    from gongmo.workflow.engine.app import App

# The states whose national money counts as used: a selected site, and one that started.
USING_BUDGET = ("selected", "kickoff")
EVALUATION = ("written_evaluation", "presentation_evaluation")
# The bulk actions of the track page: name -> the states it moves (or works on).
ACTIONS: dict[str, tuple[str, ...]] = {
    "review-pass": ("preliminary_review",),
    "disqualify-failed": ("preliminary_review",),
    "assign": EVALUATION,
}
# An applicant's own deadline is extended while its application is still open.
EXTENDABLE_STATES = ("announcement", "receipt")
PREVIEW_ROWS = 50


def track_of(app: App, track_key: str) -> tuple[Contest, Track]:
    """The track's contest and config; NotFound for a key the config does not have."""
    try:
        return app.loaded.config.track(track_key)
    except ConfigError:
        raise NotFound(f"no track {track_key!r}: see the contests page (/office)") from None


def header(app: App, conn: Connection, track_key: str) -> dict[str, Any]:
    """The track's names, slots and national budget, with the money and slots used (selected and kickoff)."""
    contest, track = track_of(app, track_key)
    row = lookups.track_by_key(conn, app.loaded.config, track_key)
    # The ids from the (track, state, id) index, then those rows: SQLite's planner, told by ANALYZE
    # that a track's applications share a state or two, would rather scan the table for the money
    # (10 ms at 100,000 applications in one state) than look each up; the ids alone it reads from
    # the index (bench/pages.py).
    ids = sa.select(APPLICATION.c.id).where(APPLICATION.c.track_id == row["id"], APPLICATION.c.state.in_(USING_BUDGET))
    used = conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(APPLICATION.c.national_krw), 0)).where(
            APPLICATION.c.id.in_(ids)
        )
    ).one()
    return {
        "contest": contest,
        "track": track,
        "track_id": int(row["id"]),
        "slots": track.slots,
        "slots_used": int(used[0]),
        "budget_krw": track.funding.budget_national_krw,
        "used_krw": int(used[1]),
        "cap_krw": track.funding.national_cap_krw,
        "years": track.funding.years,
    }


def applications(
    app: App,
    conn: Connection,
    who: Principal,
    track_id: int,
    after: int,
    size: int,
    state: str | None = None,
    search: str | None = None,
) -> tuple[int, list[dict[str, Any]], int | None]:
    """(total, a page of rows, the id to start the next page after, or None on the last page):
    the API's list (GET /applications?track=..) with the name / receipt number search."""
    total, items = visibility.page(app, conn, who, after, size, track_id=track_id, state=state, search=search)
    following = int(items[size - 1]["id"]) if len(items) > size else None
    return total, items[:size], following


@dataclass(frozen=True)
class Milestone:
    name: str
    at: datetime
    past: bool
    deadline: bool  # the milestone has a deadline row of its own (some are dates only, e.g. written_starts)
    fired_at: datetime | None  # when that row fired
    moves: list[dict[str, Any]] = field(default_factory=list)  # its reschedules, oldest first


def calendar(app: App, conn: Connection, track_key: str) -> list[Milestone]:
    """The track's calendar as the database holds it (reschedules included), each milestone with
    whether it has passed and when its deadline rows fired."""
    held = calendars.held(conn, app.loaded.config).get(track_key)
    if held is None:
        raise NotFound(f"track {track_key} is in the config but not in the database: run `gongmo init`")
    now = app.clock.now()
    own = {d.action: d.at for d in APPLICATION_DEADLINES}  # the row that fires at the milestone itself
    fired: dict[str, datetime | None] = {}
    for r in deadline_rows.listing(conn, track_key):
        if r["application_id"] is None and own.get(r["action"]) == r["milestone"]:
            fired[r["milestone"]] = r["fired_at"]
    moves = held["rescheduled"]
    return [
        Milestone(name, at, at <= now, name in fired, fired.get(name), moves.get(name, []))
        for name, at in held["calendar"]
    ]


def present(conn: Connection, track_id: int) -> set[str]:
    """Which of the states the actions and the extend form ask about hold an application of the
    track now: one probe of the (track, state) index each, not a count of the whole track."""
    wanted = sorted({s for states in ACTIONS.values() for s in states} | set(EXTENDABLE_STATES))
    # Each probe planned with its state: a generic plan (psycopg prepares a statement on its fifth
    # run) guesses every state as common as the track's one, seq-scans for each probe, and reads the
    # whole track for each state it does not hold (47 ms instead of 1 at 100,000: bench/pages.py).
    custom_plans(conn)
    probes = [
        sa.exists().where(APPLICATION.c.track_id == track_id, APPLICATION.c.state == state).label(state)
        for state in wanted
    ]
    row = conn.execute(sa.select(*probes)).one()
    return {state for state, found in zip(wanted, row, strict=True) if found}


def refusal(app: App, conn: Connection, track_key: str, name: str, by_state: set[str]) -> str | None:
    """Why a bulk action is not allowed now (None: it is). The cheap checks of the page; the
    dry run (preview) checks the rest, as the action itself would."""
    states = ACTIONS.get(name)
    if states is None:
        raise NotFound(f"no bulk action {name!r} (there are: {', '.join(ACTIONS)})")
    if not any(s in by_state for s in states):
        where = " or ".join(s.replace("_", " ") for s in states)
        return f"track {track_key} has no application in {where} now"
    if name == "assign":
        track_id = int(lookups.track_by_key(conn, app.loaded.config, track_key)["id"])
        pending = review.open_objections(conn, track_id)
        if pending:
            return f"track {track_key}: assignment cannot start while {len(pending)} objection(s) are open"
    return None


def allowed(app: App, conn: Connection, track_key: str, name: str, by_state: set[str]) -> None:
    """Conflict with the reason when the action is not allowed now."""
    why = refusal(app, conn, track_key, name, by_state)
    if why is not None:
        raise Conflict(why)


@dataclass(frozen=True)
class Preview:
    """What a bulk action would touch now: how many applications, and the first rows."""

    action: str
    count: int
    rows: list[dict[str, Any]]


def preview(app: App, track_key: str, name: str) -> Preview:
    """The dry run of a bulk action, by the rule the action itself uses (and refused as it would be)."""
    if name == "review-pass":
        checked = review.to_pass(app, track_key)
        rows = [_checked(c, "") for c in checked[:PREVIEW_ROWS]]
        return Preview(name, len(checked), rows)
    if name == "disqualify-failed":
        checked = review.to_disqualify(app, track_key)
        rows = [_checked(c, c.failed) for c in checked[:PREVIEW_ROWS]]
        return Preview(name, len(checked), rows)
    if name == "assign":
        plan = committee.preview_assign(app, track_key)
        touched = plan.touched
        lost = {b[0]: b for b in plan.broken}
        rows = []
        for app_id in touched[:PREVIEW_ROWS]:
            detail = ", ".join(plan.new(app_id))
            if app_id in lost:
                detail = f"- {lost[app_id][2]} ({lost[app_id][3]})" + (f"; + {detail}" if detail else "")
            rows.append({"id": app_id, "receipt_no": plan.labels[app_id], "applicant": "", "detail": detail})
        return Preview(name, len(touched), rows)
    raise NotFound(f"no bulk action {name!r} (there are: {', '.join(ACTIONS)})")


def _checked(c: review.Checked, detail: str) -> dict[str, Any]:
    return {"id": c.application_id, "receipt_no": c.receipt_no, "applicant": c.applicant, "detail": detail}
