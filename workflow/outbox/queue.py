"""Queueing notices in the move's transaction: render the rows (notifier.py),
cancel the older unsent notices a new one supersedes, hold a result under
embargo until the office releases the track's results, insert.

The engine calls this through the hook it is given (engine/hooks.py
NoticeQueue); the stages call it as `app.moves.queue`. Delivery happens
after commit, in dispatch.py.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, RowMapping

from gongmo.workflow.core.config import MILESTONES, Loaded
from gongmo.workflow.core.db import bound, driver_execute
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
PARTY = (  # the same of one application (a single move)
    sa.select(*PARTIES.selected_columns)
    .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
    .where(APPLICATION.c.id == sa.bindparam("p_id"))
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
        party: Mapping[str, Any] | None = None,
    ) -> int:
        """Render and insert the notices; with a tag, skip any already queued. `party`: the one
        application's values as its move left them (hooks.py), read here otherwise."""
        if notice is None or not ids:
            return 0
        contest, track_cfg = self.loaded.config.track(track["key"])
        calendar = {m: track[m] for m in MILESTONES}
        # A result waits for the office's release while the track's results are not released.
        hold = notice in track_cfg.hold_notices and track["results_released_at"] is None
        parties = [Party.from_row(party)] if party is not None and len(ids) == 1 else _parties(conn, ids)
        rows = [
            self.notifier.row(notice, one, contest, track_cfg, calendar, now, extra, tag, hold=hold) for one in parties
        ]
        older = supersedes(notice)
        if hold:
            conn.execute(EMBARGO, {"e_track": track["id"], "e_at": now})
        if tag is None and len(rows) == 1:  # a single move's notice: its own hot path
            queue_one(conn, rows[0], notice, older)
            return 1
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
        if tag is None:
            conn.execute(OUTBOX_INSERT, rows)
            return len(rows)
        return insert_new(conn, OUTBOX, rows, "dedup_key")


def _parties(conn: Connection, ids: list[int]) -> Iterator[Party]:
    if len(ids) == 1:  # a single move: no IN list to expand (SQLAlchemy's expansion cost more than the query)
        found = conn.execute(PARTY, {"p_id": ids[0]}).mappings()
    else:
        found = conn.execute(PARTIES, {"p_ids": ids}).mappings()
    for row in found:
        yield Party.from_row(row)


# The outbox row's columns, in the order the single notice's SQL binds them.
ROW_COLUMNS = (
    "application_id", "notice", "dedup_key", "message_id", "language", "to_addr", "subject", "body_text",
    "body_html", "ics", "state", "attempts", "created_at", "next_attempt_at",
)  # fmt: skip
_CANCEL = (SENDING, SENDING, CANCELLED)  # CASE WHEN state = ? THEN ? ELSE ? END: one being sent stays sending


def queue_one(conn: Connection, row: Mapping[str, Any], notice: str, family: frozenset[str]) -> None:
    """One rendered notice inserted, after its family's older unsent notices of the same application
    are superseded (as SUPERSEDE does; no UPDATE at all when the notice has no family).

    On PostgreSQL one statement, one round trip: the superseding UPDATE in a data-modifying CTE before
    the INSERT (the CTE does not see the new row; the same key is left out anyway). On SQLite SQL text
    on the driver's own cursor (core/db.py driver_execute), values bound by each column's processor."""
    dialect = conn.dialect
    values = bound(OUTBOX, dialect, ROW_COLUMNS, row)
    older = sorted(family)
    supersede: list[Any] = []
    if older:
        supersede = [*_CANCEL, notice, f"superseded by '{notice}' before it was sent", row["application_id"]]
        supersede += [*UNSENT, SENDING, *older, row["dedup_key"]]
    if dialect.name == "postgresql":
        params = {f"o{i}": v for i, v in enumerate(values)}
        if older:
            params |= {f"s{i}": v for i, v in enumerate(supersede)}
        driver_execute(conn, _pg_queue_sql(len(older)), params)
        return
    if older:
        driver_execute(conn, _supersede_sql(len(older), "?"), supersede)
    driver_execute(conn, _insert_sql("?"), values)


@functools.cache
def _supersede_sql(family: int, mark: str) -> str:
    def marks(start: int, n: int) -> str:
        return ", ".join(mark.format(i) for i in range(start, start + n))

    unsent = len(UNSENT) + 1
    return (
        f"UPDATE outbox SET state = CASE WHEN state = {mark.format(0)} THEN {mark.format(1)}"
        f" ELSE {mark.format(2)} END, superseded_by = {mark.format(3)}, last_error = {mark.format(4)}"
        f" WHERE application_id = {mark.format(5)} AND state IN ({marks(6, unsent)}) AND superseded_by IS NULL"
        f" AND notice IN ({marks(6 + unsent, family)}) AND dedup_key <> {mark.format(6 + unsent + family)}"
    )


@functools.cache
def _insert_sql(mark: str) -> str:
    marks = ", ".join(mark.format(i) for i in range(len(ROW_COLUMNS)))
    return f"INSERT INTO outbox ({', '.join(ROW_COLUMNS)}) VALUES ({marks})"


@functools.cache
def _pg_queue_sql(family: int) -> str:
    insert = _insert_sql("%(o{})s")
    return f"WITH superseded AS ({_supersede_sql(family, '%(s{})s')}) {insert}" if family else insert


def insert_new(conn: Connection, table: sa.Table, rows: list[dict[str, Any]], unique: str) -> int:
    """Insert the rows whose `unique` value is not in the table yet."""
    if not rows:
        return 0
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt: Any = dialect_insert(table).on_conflict_do_nothing(index_elements=[unique])
    return len(conn.execute(stmt.returning(table.c.id), rows).all())
