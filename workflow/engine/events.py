"""The event log: every decision that is not a state change, append-only and hash-chained
(chain.py): an application's events on its own chain, a track's (no application) on the
track's, the rest (a declared conflict) on the global chain. The chain's owner row is locked
first (FOR UPDATE on PostgreSQL), so the writers of one chain take turns and no other waits."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.states.errors import NotFound
from gongmo.workflow.core import chain
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.db import lock_row
from gongmo.workflow.core.models import APPLICATION, CHAIN_HEAD, EVENT, TRACK

_INSERT = sa.insert(EVENT)
_GLOBAL_HEAD = sa.select(CHAIN_HEAD.c.seq, CHAIN_HEAD.c.hash).where(CHAIN_HEAD.c.kind == chain.GLOBAL).with_for_update()


def record(
    conn: Connection,
    at: datetime,
    actor: Actor,
    kind: str,
    detail: Mapping[str, Any],
    track_id: int | None = None,
    application_id: int | None = None,
) -> None:
    row: dict[str, Any] = {
        "at": at,
        "actor": actor.name,
        "role": actor.role.value,
        "track_id": track_id,
        "application_id": application_id,
        "kind": kind,
        "detail": json.dumps(detail, ensure_ascii=False, sort_keys=True, default=_plain),
    }
    if application_id is not None:
        owner, chain_kind, chain_id = APPLICATION, chain.EVENT, application_id
    elif track_id is not None:
        owner, chain_kind, chain_id = TRACK, chain.TRACK, track_id
    else:
        owner, chain_kind, chain_id = None, chain.GLOBAL, chain.GLOBAL_ID
    if owner is not None:
        locked = lock_row(conn, owner, chain_id)
        if locked is None:
            raise NotFound(f"no {owner.name} {chain_id} to record a '{kind}' event for")
        head_seq, head = locked._mapping["event_seq"], locked._mapping["event_hash"]
    else:
        head_seq, head = conn.execute(_GLOBAL_HEAD).one()
    row["seq"] = (head_seq or 0) + 1
    row["hash"] = chain.link(chain.previous(chain_kind, chain_id, head), chain.canonical("event", row)).hex()
    conn.execute(_INSERT, row)
    if owner is not None:
        conn.execute(
            sa.update(owner).where(owner.c.id == chain_id).values(event_seq=row["seq"], event_hash=row["hash"])
        )
    else:
        conn.execute(
            sa.update(CHAIN_HEAD).where(CHAIN_HEAD.c.kind == chain.GLOBAL).values(seq=row["seq"], hash=row["hash"])
        )


def _plain(value: Any) -> str:
    """Times as ISO 8601 (UTC), anything else as its text."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def of_application(conn: Connection, application_id: int) -> list[dict[str, Any]]:
    shown = [c for c in EVENT.c if c.name not in ("seq", "hash")]  # the chain is audit verify's business
    query = sa.select(*shown).where(EVENT.c.application_id == application_id).order_by(EVENT.c.id)
    return [{**dict(r), "detail": json.loads(r["detail"])} for r in conn.execute(query).mappings()]
