"""Deadlines as rows, derived from each track's calendar (and extensions).

Each row says what happens at one instant; the scheduler claims due rows
and fires each exactly once. Deriving is idempotent: run it again after the
calendar moved and the unfired rows follow; fired rows are history.
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.states.calendar import add_local_days, reminder_instant
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.workflow.core.closures import Closures
from gongmo.workflow.core.config import CALENDAR_ORDER, Track
from gongmo.workflow.core.models import DEADLINE


@dataclass(frozen=True)
class Planned:
    key: str
    action: str
    milestone: str
    due_at: datetime
    application_id: int | None = None


def milestone_rows(track: Mapping[str, Any], cfg: Track, zone: str, closed: Container[date] = ()) -> list[Planned]:
    """The track's milestone deadlines, derived from the lifecycle table
    (states/lifecycle.APPLICATION_DEADLINES and the automatic triggers each
    fires; what each action does: workflow/ticker.py): a row per deadline whose
    milestone the calendar holds (an optional one left out has none), due at the
    milestone plus the days of the track setting it names ("kickoff_due +
    kickoff_grace_days"), counted as a period: with the contest's Closures as
    `closed`, its period_end_rule (Civil Act art. 161) decides the last day."""
    present = {m for m in CALENDAR_ORDER if track.get(m) is not None}
    rows = []
    for spec, at, _ in TABLE.deadline_plan(present):
        due: datetime = track[at.milestone]
        if at.days is not None:
            days = int(getattr(cfg, at.days))
            if isinstance(closed, Closures):
                due = closed.period_end(due, days, zone)
            else:
                due = add_local_days(due, days, zone)
        rows.append(Planned(f"{track['key']}:{spec.action}", spec.action, at.milestone, due))
    return rows


def plan_track(track: Mapping[str, Any], cfg: Track, zone: str, closed: Container[date] = ()) -> list[Planned]:
    """Every deadline of one track, from its calendar as the database holds it.
    `closed`: the contest's closed days (for reminders counted in working days)."""
    key = track["key"]
    rows = milestone_rows(track, cfg, zone, closed)
    for spec, due in reminder_times(cfg.reminders, track["receipt_opens"], track["receipt_closes"], zone, closed):
        rows.append(Planned(f"{key}:reminder:{spec}", "reminder", "receipt_closes", due))
    return rows


def reminder_times(
    specs: list[str], opens: datetime, closes: datetime, zone: str, closed: Container[date] = ()
) -> list[tuple[str, datetime]]:
    """(spec, instant) of each reminder of a receipt closing at `closes` that
    falls inside the receipt window [opens, closes): none before the window
    opens (nobody can submit yet), none at or after the close."""
    close_local = closes.astimezone(ZoneInfo(zone))
    found = []
    for spec in specs:
        due = reminder_instant(spec, close_local, closed).astimezone(closes.tzinfo)
        if opens <= due < closes:
            found.append((spec.strip(), due))
    return found


def own_reminder_prefix(application_id: int) -> str:
    """The key prefix of one applicant's own reminders (those of its extension)."""
    return f"ext:{application_id}:receipt_closes:reminder:"


def plan_own_reminders(
    track: Any,
    cfg: Track,
    zone: str,
    closed: Container[date],
    application_id: int,
    closes: datetime,
    now: datetime,
) -> list[Planned]:
    """The reminders of one applicant whose receipt closes at `closes` (its
    extension): the track's reminder offsets counted from its own close, inside
    the track's receipt window as extended, and not already past."""
    prefix = own_reminder_prefix(application_id)
    return [
        Planned(prefix + spec, "reminder", "receipt_closes", due, application_id)
        for spec, due in reminder_times(cfg.reminders, track["receipt_opens"], closes, zone, closed)
        if due > now
    ]


def sync(
    conn: Connection, track_id: int, planned: list[Planned], now: datetime, prefix: str, exact: bool = False
) -> list[str]:
    """Make the unfired rows of a track match the plan; return the changes.

    Only rows whose key starts with `prefix` (is `prefix`, if `exact`) are this
    plan's (extensions of single applications have keys of their own and are
    left alone).
    """
    mine = DEADLINE.c.key == prefix if exact else DEADLINE.c.key.startswith(prefix, autoescape=True)
    existing = {
        r["key"]: r for r in conn.execute(sa.select(DEADLINE).where(DEADLINE.c.track_id == track_id, mine)).mappings()
    }
    changes = []
    wanted = {p.key: p for p in planned}
    for p in planned:
        row = existing.get(p.key)
        if row is None:
            conn.execute(sa.insert(DEADLINE).values(_values(p, track_id, now)))
            changes.append(f"{p.key}: due {p.due_at:%Y-%m-%d %H:%M} UTC")
        elif row["fired_at"] is None and row["due_at"] != p.due_at:
            conn.execute(
                sa.update(DEADLINE)
                .where(DEADLINE.c.id == row["id"], DEADLINE.c.fired_at.is_(None))
                .values(due_at=p.due_at, attempts=0, last_error=None)
            )
            changes.append(f"{p.key}: moved to {p.due_at:%Y-%m-%d %H:%M} UTC")
    for key, row in existing.items():
        if key not in wanted and row["fired_at"] is None:
            conn.execute(sa.delete(DEADLINE).where(DEADLINE.c.id == row["id"], DEADLINE.c.fired_at.is_(None)))
            changes.append(f"{key}: dropped")
    return changes


def _values(p: Planned, track_id: int, now: datetime) -> dict[str, Any]:
    return {
        "key": p.key,
        "track_id": track_id,
        "application_id": p.application_id,
        "action": p.action,
        "milestone": p.milestone,
        "due_at": p.due_at,
        "attempts": 0,
        "created_at": now,
    }


def add_one(conn: Connection, track_id: int, planned: Planned, now: datetime) -> None:
    """A deadline of one application (an extension): insert, or move if unfired.
    Exactly that key: the applicant's own reminders (keys beginning with it) stay."""
    sync(conn, track_id, [planned], now, planned.key, exact=True)
