"""Queueing notices in the move's transaction: render the rows (notifier.py),
cancel the older unsent notices a new one supersedes, hold a result under
embargo until the office releases the track's results, insert.

The engine calls this through the hook it is given (engine/hooks.py
NoticeQueue); the stages call it as `app.moves.queue`. Delivery happens
after commit, in dispatch.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, RowMapping

from gongmo.workflow.core.config import MILESTONES, Loaded
from gongmo.workflow.core.models import APPLICANT, APPLICATION, OUTBOX, TRACK
from gongmo.workflow.outbox.notifier import Notifier, Party, supersedes
from gongmo.workflow.outbox.states import CANCELLED, SENDING, UNSENT

OUTBOX_INSERT = sa.insert(OUTBOX)
SUPERSEDE = (  # cancel the older unsent notices a new one replaces; mark one being sent (the mailer settles it)
    sa.update(OUTBOX)
    .where(
        OUTBOX.c.application_id.in_(sa.bindparam("s_ids", expanding=True)),
        OUTBOX.c.state.in_((*UNSENT, SENDING)),
        OUTBOX.c.superseded_by.is_(None),
        OUTBOX.c.notice.in_(sa.bindparam("s_family", expanding=True)),
        OUTBOX.c.dedup_key.not_in(sa.bindparam("s_keys", expanding=True)),
    )
    .values(
        state=sa.case((OUTBOX.c.state == SENDING, SENDING), else_=CANCELLED),
        superseded_by=sa.bindparam("s_by"),
        last_error=sa.bindparam("s_error"),
    )
)
EMBARGO = (  # the track's results go under embargo with the first result held
    sa.update(TRACK)
    .where(TRACK.c.id == sa.bindparam("e_track"), TRACK.c.results_embargoed_at.is_(None))
    .values(results_embargoed_at=sa.bindparam("e_at"))
)
PARTIES = (
    sa.select(
        APPLICATION.c.id.label("application_id"),
        APPLICATION.c.version,
        APPLICATION.c.receipt_no,
        APPLICATION.c.title,
        APPLICATION.c.national_krw,
        APPLICATION.c.local_krw,
        APPLICATION.c.submitted_at,
        APPLICANT.c.name.label("applicant_name"),
        APPLICANT.c.contact_name,
        APPLICANT.c.email,
        APPLICANT.c.language,
    )
    .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
    .where(APPLICATION.c.id.in_(sa.bindparam("p_ids", expanding=True)))
    .order_by(APPLICATION.c.id)
)


class OutboxQueue:
    """The engine's NoticeQueue: one per app, on the app's config and notifier."""

    def __init__(self, loaded: Loaded, notifier: Notifier) -> None:
        self.loaded = loaded
        self.notifier = notifier

    def __call__(
        self,
        conn: Connection,
        notice: str | None,
        ids: list[int],
        track: RowMapping,
        now: datetime,
        extra: Mapping[str, Any] | None = None,
        tag: str | None = None,
    ) -> int:
        """Render and insert the notices; with a tag, skip any already queued."""
        if notice is None or not ids:
            return 0
        contest, track_cfg = self.loaded.config.track(track["key"])
        calendar = {m: track[m] for m in MILESTONES}
        # A result waits for the office's release while the track's results are not released.
        hold = notice in track_cfg.hold_notices and track["results_released_at"] is None
        rows = [
            self.notifier.row(notice, party, contest, track_cfg, calendar, now, extra, tag, hold=hold)
            for party in _parties(conn, ids)
        ]
        older = supersedes(notice)
        if older:
            conn.execute(
                SUPERSEDE,
                {
                    "s_ids": ids,
                    "s_family": sorted(older),
                    "s_keys": [r["dedup_key"] for r in rows],  # the same notice again stays
                    "s_by": notice,
                    "s_error": f"superseded by '{notice}' before it was sent",
                },
            )
        if hold:
            conn.execute(EMBARGO, {"e_track": track["id"], "e_at": now})
        if tag is None:
            conn.execute(OUTBOX_INSERT, rows)
            return len(rows)
        return insert_new(conn, OUTBOX, rows, "dedup_key")


def _parties(conn: Connection, ids: list[int]) -> Iterator[Party]:
    for row in conn.execute(PARTIES, {"p_ids": ids}).mappings():
        yield Party.from_row(row)


def insert_new(conn: Connection, table: sa.Table, rows: list[dict[str, Any]], unique: str) -> int:
    """Insert the rows whose `unique` value is not in the table yet."""
    if not rows:
        return 0
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt: Any = dialect_insert(table).on_conflict_do_nothing(index_elements=[unique])
    return len(conn.execute(stmt.returning(table.c.id), rows).all())
