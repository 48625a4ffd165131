"""Load the config's contests and tracks into the database, idempotently."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.workflow.core.config import CALENDAR_ORDER, Config
from gongmo.workflow.core.models import CALENDAR_CHANGE, CONTEST, TRACK


def sync(conn: Connection, config: Config) -> list[str]:
    """Insert what is new, update what changed; return one line per change."""
    changes: list[str] = []
    for contest in config.contests:
        values = {
            "key": contest.key,
            "name_ko": contest.name_ko,
            "name_en": contest.name_en,
            "timezone": contest.timezone,
            "national_budget_krw": contest.national_budget_krw,
        }
        contest_id = _upsert(conn, CONTEST, values, changes, f"contest {contest.key}")
        for track in contest.tracks:
            tvalues: dict[str, Any] = {
                "contest_id": contest_id,
                "key": track.key,
                "name_ko": track.name_ko,
                "name_en": track.name_en,
                "slots": track.slots,
                **{m: getattr(track.calendar, m) for m in CALENDAR_ORDER},
            }
            kept = _rescheduled(conn, track.key)
            for milestone in sorted(kept):
                if tvalues[milestone] != kept[milestone]:
                    changes.append(f"track {track.key}: {milestone} kept as rescheduled (the config says otherwise)")
                tvalues.pop(milestone)
            _upsert(conn, TRACK, tvalues, changes, f"track {track.key}", {"receipt_prefix": track.key.upper()})
    return changes


def _rescheduled(conn: Connection, track_key: str) -> dict[str, Any]:
    """Milestones moved by `gongmo reschedule`: the database wins over the config."""
    query = (
        sa.select(CALENDAR_CHANGE.c.milestone, TRACK)
        .join(TRACK, TRACK.c.id == CALENDAR_CHANGE.c.track_id)
        .where(TRACK.c.key == track_key, CALENDAR_CHANGE.c.application_id.is_(None))
    )
    return {r["milestone"]: r[r["milestone"]] for r in conn.execute(query).mappings()}


def _upsert(
    conn: Connection,
    table: sa.Table,
    values: dict[str, Any],
    changes: list[str],
    label: str,
    on_insert: dict[str, Any] | None = None,
) -> int:
    row = conn.execute(sa.select(table).where(table.c.key == values["key"])).mappings().first()
    if row is None:
        new_id = conn.execute(table.insert().values(**values, **(on_insert or {})).returning(table.c.id)).scalar_one()
        changes.append(f"{label}: created")
        return int(new_id)
    diff = {k: v for k, v in values.items() if row[k] != v}
    if diff:
        conn.execute(table.update().where(table.c.id == row["id"]).values(**diff))
        changes.append(f"{label}: updated {', '.join(sorted(diff))}")
    return int(row["id"])
