"""The deadline rows as the office reads them (`gongmo deadlines`, /healthz): which
row failed or is held for the office, and what it holds back in its track."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.workflow.core.models import DEADLINE, TRACK
from gongmo.workflow.deadlines.actions import HELD, SKIPPED


def blocked(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """Each unfired row that failed (or is held for the office), with the due
    rows of its track it holds back: what `gongmo deadlines` and /healthz show."""
    failed = DEADLINE.alias("failed")
    later = DEADLINE.alias("later")
    waiting = (
        sa.select(sa.func.count())
        .where(
            later.c.track_id == failed.c.track_id,
            later.c.fired_at.is_(None),
            later.c.due_at <= now,
            sa.or_(
                later.c.due_at > failed.c.due_at, sa.and_(later.c.due_at == failed.c.due_at, later.c.id > failed.c.id)
            ),
        )
        .correlate(failed)
        .scalar_subquery()
    )
    query = (
        sa.select(
            TRACK.c.key.label("track"),
            failed.c.key,
            failed.c.last_error,
            failed.c.attempts,
            failed.c.lease_until,
            waiting.label("waiting"),
        )
        .join(TRACK, TRACK.c.id == failed.c.track_id)
        .where(failed.c.fired_at.is_(None), failed.c.last_error.is_not(None))
        .order_by(failed.c.due_at, failed.c.id)
    )
    rows = []
    for r in conn.execute(query).mappings():
        error = str(r["last_error"])
        held = error.startswith(HELD)
        rows.append(
            {
                "track": r["track"],
                "key": r["key"],
                "kind": "held" if held else "failed",
                "error": error.removeprefix(HELD),
                "attempts": int(r["attempts"]),
                "retry_at": None if held else r["lease_until"],
                "waiting": int(r["waiting"]),
            }
        )
    return rows


def annotate(rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Add `status` (fired, skipped, held, failed, waiting, due, scheduled) and
    `waiting_for` (the failed or held row of its track it waits behind) to deadline
    rows given in calendar order (due_at, id)."""
    blocking: dict[int, str] = {}  # track id -> the first unfired row that failed
    for row in rows:
        error = row.get("last_error") or ""
        waiting_for = None
        if row["fired_at"] is not None:
            status = "skipped" if error.startswith(("skipped by the office", SKIPPED)) else "fired"
        elif error:
            status = "held" if error.startswith(HELD) else "failed"
            waiting_for = blocking.get(row["track_id"])
            blocking.setdefault(row["track_id"], row["key"])
        elif row["track_id"] in blocking and row["due_at"] <= now:
            status, waiting_for = "waiting", blocking[row["track_id"]]
        else:
            status = "due" if row["due_at"] <= now else "scheduled"
        row["status"], row["waiting_for"] = status, waiting_for
    return rows
