"""A move against a rule (states/rules.py OVERRIDING) says why: the facts the
rule reads of an application, and the refusal of a bulk move without a reason."""

from __future__ import annotations

import json
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from gongmo.states.eligibility import Check, failures
from gongmo.states.rules import MoveFacts, OverrideNeedsReason, override
from gongmo.workflow.core.config import Config
from gongmo.workflow.core.lookups import track_row
from gongmo.workflow.core.models import APPLICATION, TRACK


def move_facts(conn: Connection, config: Config, row: RowMapping, track_key: str | None = None) -> MoveFacts:
    """What the override rule (states/rules.py) needs of one application row (`track_key`: its track's, if
    the caller read it already: a single move does)."""
    key = track_key if track_key is not None else track_row(conn, row["track_id"])["key"]
    _, track_cfg = config.track(key)
    # the failed rules are named only when the checklist failed (rules.override): no parse otherwise
    checks = [Check(**c) for c in json.loads(row["checklist"] or "[]")] if row["eligible"] is False else []
    return MoveFacts(
        eligible=row["eligible"],
        failed=failures(checks),
        score=Decimal(row["score"]) if row["score"] is not None else None,
        minimum_score=track_cfg.evaluation.minimum_score,
    )


def refuse_overrides(
    conn: Connection,
    config: Config,
    track_key: str,
    trigger: str,
    from_state: str,
    where: sa.ColumnElement[bool] | None,
    ids: list[int] | None = None,
) -> None:
    """A bulk move without a reason is refused, moving nothing, if it would take
    any of its applications against a rule; the refusal names the first few."""
    query = (
        sa.select(APPLICATION)
        .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
        .where(TRACK.c.key == track_key, APPLICATION.c.state == from_state)
        .order_by(APPLICATION.c.id)
    )
    if where is not None:
        query = query.where(where)
    if ids is not None:
        query = query.where(APPLICATION.c.id.in_(ids))
    rows = list(conn.execute(query).mappings())
    against = [(r, why) for r in rows if (why := override(from_state, trigger, move_facts(conn, config, r)))]
    if against:
        named = "; ".join(f"{r['receipt_no'] or r['id']}: {why}" for r, why in against[:3])
        more = f"; and {len(against) - 3} more" if len(against) > 3 else ""
        raise OverrideNeedsReason(f"{len(against)} of {len(rows)} applications", trigger, named + more)
