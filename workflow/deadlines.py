"""Deadlines as rows, derived from each track's calendar (and extensions).

Each row says what happens at one instant; the scheduler claims due rows
and fires each exactly once. Deriving is idempotent: run it again after the
calendar moved and the unfired rows follow; fired rows are history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from states.calendar import add_local_days, reminder_instant
from workflow.config import Track
from workflow.models import DEADLINE


@dataclass(frozen=True)
class Planned:
    key: str
    action: str
    milestone: str
    due_at: datetime
    application_id: int | None = None


# action -> the milestone it belongs to (what it does: scheduler.ACTIONS)
TRACK_ACTIONS: tuple[tuple[str, str], ...] = (
    ("announce", "announce_at"),
    ("open_receipt", "receipt_opens"),
    ("close_receipt", "receipt_closes"),
    ("review_due", "review_ends"),
    ("start_presentation", "written_ends"),
    ("selection_due", "selection_at"),
    ("kickoff_plan_due", "kickoff_due"),
    ("kickoff_closes", "kickoff_due"),
)


def plan_track(track: Mapping[str, Any], cfg: Track, zone: str) -> list[Planned]:
    """Every deadline of one track, from its calendar as the database holds it."""
    key = track["key"]
    rows = []
    for action, milestone in TRACK_ACTIONS:
        due: datetime = track[milestone]
        if action == "kickoff_closes":
            due = add_local_days(due, cfg.kickoff_grace_days, zone)
        rows.append(Planned(f"{key}:{action}", action, milestone, due))
    close_local = track["receipt_closes"].astimezone(ZoneInfo(zone))
    for spec in cfg.reminders:
        due = reminder_instant(spec, close_local).astimezone(track["receipt_closes"].tzinfo)
        if track["announce_at"] <= due < track["receipt_closes"]:
            rows.append(Planned(f"{key}:reminder:{spec.strip()}", "reminder", "receipt_closes", due))
    return rows


def sync(conn: Connection, track_id: int, planned: list[Planned], now: datetime, prefix: str) -> list[str]:
    """Make the unfired rows of a track match the plan; return the changes.

    Only rows whose key starts with `prefix` are this plan's (extensions of
    single applications have keys of their own and are left alone).
    """
    existing = {
        r["key"]: r
        for r in conn.execute(
            sa.select(DEADLINE).where(DEADLINE.c.track_id == track_id, DEADLINE.c.key.startswith(prefix))
        ).mappings()
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
    """A deadline of one application (an extension): insert, or move if unfired."""
    sync(conn, track_id, [planned], now, planned.key)
