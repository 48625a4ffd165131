"""Kickoff: the selected file a detailed implementation plan (세부 실시계획);
the office receives it, returns it with comments, or approves it with the
funding schedule by year, which moves the application to kickoff.

Plans are accepted until the kickoff deadline's grace ends (the
`kickoff_closes` deadline then cancels what has no approved plan); a plan
received after kickoff_due is recorded as late.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.states.eligibility import Year, check_schedule, default_schedule
from gongmo.states.errors import Conflict, IllegalMove, InvalidInput, NotFound, OutsideWindow
from gongmo.workflow.core import lookups
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.csvfile import shown
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICATION, FUNDING_YEAR, KICKOFF_PLAN
from gongmo.workflow.engine import events

if TYPE_CHECKING:
    from gongmo.workflow.engine.app import App

SCHEDULE = re.compile(r"^\s*([0-9]{4})\s*=\s*([0-9]{1,19})\s*/\s*([0-9]{1,19})\s*$")  # [0-9]: \d takes any digit


def parse_schedule(items: list[str]) -> list[Year]:
    years = []
    for item in items:
        m = SCHEDULE.match(item.replace(",", "").replace("_", ""))
        if not m:
            raise InvalidInput(
                "{given}: write YEAR=NATIONAL/LOCAL in won, e.g. 2024=5000000000/5000000000",
                field="schedule",
                value=item,
                shown=shown(item),
            )
        years.append(Year(int(m[1]), int(m[2]), int(m[3])))
    return years


def receive(app: App, application_id: int, actor: Actor) -> int:
    """Record a plan received; returns its round (1 for the first filing)."""
    now = app.clock.now()
    with write(app.db) as conn:
        row, track_row, contest, track = _selected(app, conn, application_id, "receive a plan for")
        # The kickoff grace is a period: it ends where the kickoff_closes deadline row does (Civil Act art. 161).
        closes = contest.closures().period_end(track_row["kickoff_due"], track.kickoff_grace_days, contest.timezone)
        if now >= closes:
            tz = ZoneInfo(contest.timezone)
            raise OutsideWindow(
                f"plans for track {track.key} were accepted until {closes.astimezone(tz):%Y-%m-%d %H:%M %Z}"
            )
        last = _last_plan(conn, application_id)
        if last is not None and last["status"] == "received":
            raise Conflict(f"plan round {last['round']} of application {application_id} is waiting for a decision")
        round_ = 1 if last is None else int(last["round"]) + 1
        conn.execute(
            sa.insert(KICKOFF_PLAN).values(
                application_id=application_id, round=round_, received_at=now, received_by=actor.name, status="received"
            )
        )
        late = now >= track_row["kickoff_due"]
        events.record(
            conn, now, actor, "plan_received", {"round": round_, "late": late}, row["track_id"], application_id
        )
    return round_


def return_plan(app: App, application_id: int, comments: str, actor: Actor) -> int:
    if not comments.strip():
        raise InvalidInput(
            "{field} is empty: say what the plan must change, e.g. {example}", field="comments", value=comments
        )
    now = app.clock.now()
    with write(app.db) as conn:
        row, track_row, _, _ = _selected(app, conn, application_id, "return the plan of")
        plan = _pending(conn, application_id)
        conn.execute(
            sa.update(KICKOFF_PLAN)
            .where(KICKOFF_PLAN.c.id == plan["id"])
            .values(status="returned", comments=comments.strip(), decided_at=now, decided_by=actor.name)
        )
        detail = {"round": plan["round"], "comments": comments.strip()}
        events.record(conn, now, actor, "plan_returned", detail, row["track_id"], application_id)
        app.moves.queue(
            conn,
            "kickoff_plan_returned",
            [application_id],
            track_row,
            now,
            {"comments": comments.strip()},
            tag=f"plan-{plan['round']}",
        )
    return int(plan["round"])


def approve(app: App, application_id: int, schedule: list[Year] | None, actor: Actor) -> list[Year]:
    """Approve the pending plan with its funding schedule; the application
    moves to kickoff in the same transaction."""
    now = app.clock.now()
    with write(app.db) as conn:
        row, _track_row, contest, track = _selected(app, conn, application_id, "approve the plan of")
        plan = _pending(conn, application_id)
        years = int(row["years"] or track.funding.years)
        national, local = int(row["national_krw"] or 0), int(row["local_krw"] or 0)
        if schedule is None:
            first = now.astimezone(ZoneInfo(contest.timezone)).year
            schedule = default_schedule(first, years, national, local)
        check_schedule(schedule, national, local, years, Fraction(str(track.funding.local_match_ratio)))
        conn.execute(
            sa.insert(FUNDING_YEAR),
            [
                {
                    "application_id": application_id,
                    "year": y.year,
                    "national_krw": y.national_krw,
                    "local_krw": y.local_krw,
                }
                for y in schedule
            ],
        )
        conn.execute(
            sa.update(KICKOFF_PLAN)
            .where(KICKOFF_PLAN.c.id == plan["id"])
            .values(status="approved", decided_at=now, decided_by=actor.name)
        )
        detail = {"round": plan["round"], "schedule": [y.__dict__ for y in schedule]}
        events.record(conn, now, actor, "plan_approved", detail, row["track_id"], application_id)
        app.moves.move(
            conn, application_id, "approve_kickoff", actor, f"implementation plan round {plan['round']} approved"
        )
    return schedule


def plans(app: App, application_id: int) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = (
            sa.select(KICKOFF_PLAN)
            .where(KICKOFF_PLAN.c.application_id == application_id)
            .order_by(KICKOFF_PLAN.c.round)
        )
        return [dict(r) for r in conn.execute(query).mappings()]


def funding(app: App, application_id: int) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = (
            sa.select(FUNDING_YEAR).where(FUNDING_YEAR.c.application_id == application_id).order_by(FUNDING_YEAR.c.year)
        )
        return [dict(r) for r in conn.execute(query).mappings()]


def _selected(app: App, conn: Connection, application_id: int, what: str) -> tuple[Any, Any, Any, Any]:
    row = conn.execute(sa.select(APPLICATION).where(APPLICATION.c.id == application_id)).mappings().first()
    if row is None:
        raise NotFound(f"no application {application_id}: see `gongmo status` or `gongmo show`")
    if row["state"] != "selected":
        raise IllegalMove(str(application_id), row["state"], what, ["only a selected application files a plan"])
    track_row = lookups.track_row(conn, row["track_id"])
    contest, track = app.loaded.config.track(track_row["key"])
    return row, track_row, contest, track


def _last_plan(conn: Connection, application_id: int) -> Any:
    query = (
        sa.select(KICKOFF_PLAN)
        .where(KICKOFF_PLAN.c.application_id == application_id)
        .order_by(KICKOFF_PLAN.c.round.desc())
        .limit(1)
    )
    return conn.execute(query).mappings().first()


def _pending(conn: Connection, application_id: int) -> Any:
    plan = _last_plan(conn, application_id)
    if plan is None or plan["status"] != "received":
        state = "no plan received yet" if plan is None else f"plan round {plan['round']} was {plan['status']}"
        raise Conflict(f"application {application_id}: {state}; record a plan first (`gongmo kickoff receive`)")
    return plan
