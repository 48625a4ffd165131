"""The event log: every decision that is not a state change, append-only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.models import EVENT


def record(
    conn: Connection,
    at: datetime,
    actor: Actor,
    kind: str,
    detail: Mapping[str, Any],
    track_id: int | None = None,
    application_id: int | None = None,
) -> None:
    conn.execute(
        sa.insert(EVENT).values(
            at=at,
            actor=actor.name,
            role=actor.role.value,
            track_id=track_id,
            application_id=application_id,
            kind=kind,
            detail=json.dumps(detail, ensure_ascii=False, sort_keys=True, default=_plain),
        )
    )


def _plain(value: Any) -> str:
    """Times as ISO 8601 (UTC), anything else as its text."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def of_application(conn: Connection, application_id: int) -> list[dict[str, Any]]:
    query = sa.select(EVENT).where(EVENT.c.application_id == application_id).order_by(EVENT.c.id)
    return [{**dict(r), "detail": json.loads(r["detail"])} for r in conn.execute(query).mappings()]
