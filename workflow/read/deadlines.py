"""Deadline rows as the office reads them, in calendar order.

`gongmo deadlines` shows every column (with the ticker's status beside it);
GET /deadlines shows `FIELDS`. Both read the rows here.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.workflow.core.models import DEADLINE, TRACK

# What the HTTP API shows of a row (not the lease, not the track's number).
FIELDS = (
    "id",
    "key",
    "track",
    "application_id",
    "action",
    "milestone",
    "due_at",
    "fired_at",
    "late",
    "attempts",
    "last_error",
)


def listing(conn: Connection, track: str | None = None) -> list[dict[str, Any]]:
    """Every deadline row (of one track, by key, if given) with its track's key as
    `track`, by due time then number."""
    query = (
        sa.select(DEADLINE, TRACK.c.key.label("track"))
        .join(TRACK, TRACK.c.id == DEADLINE.c.track_id)
        .order_by(DEADLINE.c.due_at, DEADLINE.c.id)
    )
    if track is not None:
        query = query.where(TRACK.c.key == track)
    return [dict(r) for r in conn.execute(query).mappings()]


def shown(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as the HTTP API shows them: `FIELDS` only."""
    return [{k: r[k] for k in FIELDS} for r in rows]
