"""Deliver the outbox after commit: claim due rows under a lease, send them, mark
each outcome (the row's states: outbox/states.py).

A crashed sender's rows stay in `sending` until their lease runs out, then
any daemon takes them again. A message in flight at the crash may arrive
twice; it carries the same Message-ID both times.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import random
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from gongmo.notifications.compose import Envelope, HeaderInjection, compose
from gongmo.notifications.transport import (
    MaildirTransport,
    Outcome,
    Pause,
    SMTPSettings,
    SMTPTransport,
    Transport,
    stage,
)
from gongmo.workflow.core.config import ConfigError
from gongmo.workflow.core.db import (
    BUSY_TIMEOUT_MS,
    WAL_AUTOCHECKPOINT,
    DatabaseError,
    as_row,
    checkpoint_soon,
    column_list,
    driver_fetch,
    read,
    write,
)
from gongmo.workflow.core.models import OUTBOX
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox.pgsent import PgSent
from gongmo.workflow.outbox.states import CANCELLED, DEAD, DUE, RETRY, SENDING, SENT

log = logging.getLogger("gongmo.mailer")

MAX_ATTEMPTS = 8
BASE_BACKOFF_S = 30.0
MAX_BACKOFF_S = 3600.0


def backoff_s(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """30 s, 60 s, 120 s ... capped at an hour; full jitter on the upper half."""
    ceiling = min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2 ** max(attempts - 1, 0))
    return float(ceiling / 2 + rng() * ceiling / 2)


@dataclass
class Delivery:
    sent: int = 0
    retry: int = 0
    dead: int = 0
    paused: int = 0  # rows handed back untouched because the transport failed (it pauses)
    errors: list[str] = field(default_factory=list)
    # The ids counted in `paused`: the pipelined claim may take a failed batch's rows again
    # before it sees the pause, and hands them back again; a row is one row paused.
    paused_ids: set[int] = field(default_factory=set, compare=False, repr=False)

    def pause(self, rows: list[dict[str, Any]]) -> None:
        """Count these rows as handed back because the transport failed (each once)."""
        fresh = {int(r["id"]) for r in rows} - self.paused_ids
        self.paused_ids |= fresh
        self.paused += len(fresh)


def transport_for(app: App) -> Transport:
    """The configured transport; refuses (ConfigError) an SMTP login whose password
    variable is not set, before anything is sent (the daemon builds it before serving)."""
    mail = app.loaded.config.mail
    if mail.transport == "smtp":
        s = mail.smtp
        if s.username and not s.password_env:
            raise ConfigError(
                f"[mail.smtp] username = {s.username!r} needs password_env, the name of the environment"
                ' variable holding the password (e.g. password_env = "GONGMO_SMTP_PASSWORD")'
            )
        if s.username and s.password_env and not os.environ.get(s.password_env):
            raise ConfigError(
                f"[mail.smtp] password_env = {s.password_env!r}: the environment variable {s.password_env} is"
                f" {'empty' if s.password_env in os.environ else 'not set'}; export it with the SMTP password"
                f" of {s.username!r} before starting gongmo"
            )
        return SMTPTransport(
            SMTPSettings(
                host=s.host,
                port=s.port,
                security=s.security,
                username=s.username,
                password_env=s.password_env,
                timeout_s=s.timeout_s,
                connections=s.connections,
                local_hostname=s.local_hostname,
                ca_file=s.ca_file,
            )
        )
    return MaildirTransport(Path(app.loaded.path).resolve().parent / mail.maildir)


class Mailer:
    """Claims due rows in leased batches and sends them over the transport's
    connections. Each outcome is marked before its connection has the server
    accept the next message (the marks of all connections commit together; the
    next message is transferred meanwhile, all but its final "."), so a crash
    leaves at most one sent-but-unmarked message per connection: a kill
    duplicates at most `connections` messages, each one that was in flight."""

    def __init__(
        self,
        app: App,
        transport: Transport,
        worker: str,
        batch: int = 200,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.transport = transport
        self.worker = worker
        self.batch = batch
        self.lease = timedelta(seconds=app.loaded.config.mail.lease_seconds)
        self.sender = app.loaded.config.mail.sender
        self.report = report  # each dead notice, as it is marked (the daemon's log)
        self.renew_every = min(self.lease.total_seconds() / 4, 1.0)  # the keeper's look at a batch's lease
        self._stopping = False
        self.pause = Pause()  # the transport's own failures: nothing is sent while it waits
        self.checked_at: datetime | None = None  # the last claim that went through: delivery is running
        self.pg_sent: PgSent | None = None  # PostgreSQL: deliver_due()'s line for the sent marks, all batches

    def stop(self) -> None:
        """Wind down: the sends on the wire finish and are marked, the rest of the
        claimed rows are handed back, and deliver_due returns."""
        self._stopping = True

    async def deliver_due(self) -> Delivery:
        """Send what is due until nothing is (or stop() is called).

        Pipelined: while one batch is on the wire, a worker thread claims the
        next. Each message is composed by its lane just before it is sent (a
        skeleton filled in, ~25-70 us: compose.py); composing a batch in the
        claim's thread had made the event loop wait for the GIL at every
        socket call. A row is sent only while its lease has half its length
        left (else the lease is renewed first), so a batch that waited is never
        sent under a lease that may already be another daemon's."""
        total = Delivery()
        if self.pause.active(self.app.clock.now()):  # the transport failed a moment ago: claim nothing
            return total
        if self.app.db.dialect.name == "postgresql":
            self.pg_sent = pg_sent_line(self.app.db)
        upcoming = asyncio.create_task(asyncio.to_thread(self.prepare, self.app.clock.now()))
        try:
            while not self._stopping:
                prepared = await upcoming
                self.checked_at = self.app.clock.now()
                if not prepared or self.pause.active(self.checked_at):
                    break  # a batch claimed as the transport failed is handed back below
                upcoming = asyncio.create_task(asyncio.to_thread(self.prepare, self.app.clock.now()))
                await self.send_batch(prepared, total)
        finally:
            pg_sent, self.pg_sent = self.pg_sent, None
            if pg_sent is not None:
                await asyncio.shield(pg_sent.close())
            left = await asyncio.shield(upcoming)  # claimed while stopping (or failing): hand it back
            if left:
                await asyncio.to_thread(self.hand_back, left)
                if self.pause.active(self.app.clock.now()):
                    total.pause(left)
        return total

    def prepare(self, now: datetime) -> list[dict[str, Any]]:
        """The next batch, claimed (in a worker thread, while the last one is on the wire)."""
        return self.claim(now)

    def compose(self, row: dict[str, Any]) -> Envelope | Outcome:
        """The row's message; a refused header is its outcome (dead), never sent."""
        try:
            return compose(row, self.sender, self.app.clock.now())
        except HeaderInjection as exc:
            return Outcome(ok=False, permanent=True, detail=f"refused to send: {exc}")

    def claim(self, now: datetime) -> list[dict[str, Any]]:
        expired = sa.and_(OUTBOX.c.state == SENDING, OUTBOX.c.lease_until < now)  # a sender died
        due = sa.or_(
            sa.and_(OUTBOX.c.state.in_(DUE), OUTBOX.c.next_attempt_at <= now),
            sa.and_(expired, OUTBOX.c.superseded_by.is_(None)),
        )
        with write(self.app.db) as conn:
            # A row superseded while a sender that died had it is not sent again.
            conn.execute(
                sa.update(OUTBOX)
                .where(expired, OUTBOX.c.superseded_by.is_not(None))
                .values(
                    state=CANCELLED,
                    lease_until=None,
                    last_error="superseded while a sender that stopped had it (it may have gone out once)",
                )
            )
            if conn.dialect.name == "postgresql":
                return self._claim_pg(conn, now)
            query = sa.select(OUTBOX).where(due).order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id).limit(self.batch)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = [dict(r) for r in conn.execute(query).mappings()]
            if rows:
                conn.execute(
                    sa.update(OUTBOX)
                    .where(OUTBOX.c.id.in_([r["id"] for r in rows]), due)
                    .values(state=SENDING, lease_until=now + self.lease, attempts=OUTBOX.c.attempts + 1)
                )
        for r in rows:
            r["claimed_from"] = r["state"]
            r["attempts"] += 1  # the fence: a row claimed again by another daemon has a higher count
            r["lease_until"] = now + self.lease
        return rows

    def _claim_pg(self, conn: Connection, now: datetime) -> list[dict[str, Any]]:
        """claim()'s batch on PostgreSQL: picked, locked (SKIP LOCKED: another daemon's claim takes the
        next rows), leased and returned by one UPDATE, read on the driver's cursor. As SELECT then
        UPDATE ... WHERE id IN (500 ids) it had cost ~40 ms of Python a batch, in a worker thread whose
        hold on the GIL the lanes' replies waited for."""
        rows = []
        for values in driver_fetch(conn, _PG_CLAIM, {"now": now, "n": self.batch, "until": now + self.lease}):
            row = as_row(OUTBOX, conn.dialect, values[:-1])
            row["state"] = row["claimed_from"] = values[-1]  # as it was before the claim
            rows.append(row)
        rows.sort(key=lambda r: (r["next_attempt_at"], r["id"]))
        return rows

    async def send_batch(self, prepared: list[dict[str, Any]], total: Delivery | None = None) -> Delivery:
        total = total if total is not None else Delivery()
        waiting = collections.deque(prepared)
        marks = _Marks(self, total)
        leases = _Leases(self, waiting)
        back: list[dict[str, Any]] = []  # sent into a failing transport: handed back untouched, no attempt spent

        async def lane() -> None:
            # The message this lane had accepted last, while its mark commits: the lane meanwhile
            # transfers the next one but for its final "." (transport.stage), and sends that "."
            # only once the mark has committed. A kill leaves at most one accepted message unmarked
            # per connection, as if the lane waited for the mark before starting the next message.
            marking: tuple[dict[str, Any], asyncio.Future[None]] | None = None

            async def settle() -> None:
                nonlocal marking
                if marking is not None:
                    row, done = marking
                    marking = None
                    try:
                        await done
                    finally:
                        leases.done(row)  # ours until marked: the keeper renews it while the mark waits

            try:
                while waiting and not self._stopping and not back:
                    row = waiting.popleft()
                    envelope = self.compose(row)
                    if isinstance(envelope, Outcome):
                        await settle()
                        await marks.put(row, envelope)
                        continue
                    if not await leases.hold(row):
                        if row["id"] in leases.superseded:  # replaced since the claim: settled, never sent
                            await settle()
                            await marks.put(row, Outcome(ok=False, detail="superseded before it was sent"))
                        continue  # else another daemon has it now: it sends it
                    outcome = await self._send(row, envelope, settle, waiting, leases)
                    if outcome.paused:
                        leases.done(row)
                        self._transport_failed(outcome, back)
                        back.append(row)
                    else:
                        self._transport_answered()
                        await settle()
                        marking = row, marks.start(row, outcome)
                await settle()
            finally:
                if marking is not None:  # the lane failed or was cancelled: the mark goes on without it
                    marking[1].add_done_callback(_retrieved)

        await leases.refresh()  # a row superseded while the batch waited is not handed to the wire
        keeper = asyncio.create_task(leases.keep())
        try:
            async with asyncio.TaskGroup() as lanes:
                for _ in range(self.transport.concurrency):
                    lanes.create_task(lane())
        except* Exception as failed:
            raise failed.exceptions[0] from None
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await asyncio.shield(marks.close())
            unsent = [*back, *waiting]
            if back:
                total.pause(unsent)
            if unsent:  # stopping, the transport failing, or a lane failed: hand back what was not sent
                await asyncio.shield(asyncio.to_thread(self.hand_back, unsent))
        return total

    async def _send(
        self,
        row: dict[str, Any],
        envelope: Envelope,
        settle: Callable[[], Awaitable[None]],
        waiting: collections.deque[dict[str, Any]],
        leases: _Leases,
    ) -> Outcome:
        """Send `row`'s message, its final "." only once `settle` (the previous message's mark)
        returned. A message not accepted when this fails or is cancelled (the mark failed, the
        batch stopping) goes back to `waiting`, so it is handed back untouched."""
        try:
            held = await stage(self.transport, envelope)
        except BaseException:
            leases.done(row)
            waiting.appendleft(row)
            raise
        if isinstance(held, Outcome):
            return held
        try:
            await settle()
        except BaseException:
            await held.abort()
            leases.done(row)
            waiting.appendleft(row)
            raise
        return await held.finish()

    def _transport_failed(self, outcome: Outcome, back: list[dict[str, Any]]) -> None:
        """The first transport failure of a batch pauses the transport (the others of
        the same moment only come back with their rows)."""
        if back:
            return
        wait = self.pause.failed(self.app.clock.now(), outcome.error)
        log.warning(
            "outbox: the mail transport failed (%s); nothing is sent for %.0f s (failure %s in a row),"
            " the claimed rows go back untouched",
            outcome.error,
            wait.total_seconds(),
            self.pause.failures,
        )

    def _transport_answered(self) -> None:
        if self.pause.failing:
            log.info("outbox: the mail transport works again after %s failure(s)", self.pause.failures)
            self.pause.recovered()

    def renew(self, rows: list[dict[str, Any]], now: datetime) -> set[int]:
        """Renew the lease of claimed rows; the ids still ours. A row is ours
        while its attempt count is the one we claimed it with (another daemon's
        claim raises it); one our own mark has just settled stays ours and keeps
        its state."""
        until = now + self.lease
        fenced = sa.or_(*(sa.and_(OUTBOX.c.id == r["id"], OUTBOX.c.attempts == r["attempts"]) for r in rows))
        with write(self.app.db) as conn:
            query = sa.select(OUTBOX.c.id, OUTBOX.c.state).where(fenced)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            found = conn.execute(query).all()
            sending = [i for i, state in found if state == SENDING]
            if sending:
                conn.execute(sa.update(OUTBOX).where(OUTBOX.c.id.in_(sending)).values(lease_until=until))
        held = {i for i, _ in found}
        for r in rows:
            if r["id"] in held:
                r["lease_until"] = until
        return held

    def superseded(self, ids: list[int]) -> set[int]:
        """The rows among `ids` that a newer notice superseded."""
        with read(self.app.db) as conn:
            query = sa.select(OUTBOX.c.id).where(OUTBOX.c.id.in_(ids), OUTBOX.c.superseded_by.is_not(None))
            return {int(i) for i in conn.execute(query).scalars()}

    def hand_back(self, rows: list[dict[str, Any]]) -> int:
        """Return claimed, unsent rows to the state they were claimed from, at once
        (a stopping daemon does not make them wait for its lease to run out)."""
        if not rows:
            return 0
        returned = 0
        with write(self.app.db) as conn:
            for r in rows:
                back = RETRY if r["claimed_from"] == SENDING else r["claimed_from"]
                mine = sa.and_(OUTBOX.c.id == r["id"], OUTBOX.c.attempts == r["attempts"], OUTBOX.c.state == SENDING)
                result = conn.execute(
                    sa.update(OUTBOX).where(mine).values(state=back, lease_until=None, attempts=OUTBOX.c.attempts - 1)
                )
                returned += result.rowcount
        return returned

    def _mark(
        self, outcomes: list[tuple[dict[str, Any], Outcome]], line: MarkLine, wait: bool = True
    ) -> Delivery | None:
        """A group of outcomes, each row fenced by its attempt count: one statement for the sent
        rows, one executemany for the failed (dead or retry), through `line`, the batch's
        connection (MarkLine.mark). Without `wait`, None if it cannot be done at once (MarkLine.mark)."""
        now = self.app.clock.now()
        result = Delivery()
        sent: list[tuple[int, int]] = []  # (id, attempts)
        failed: list[dict[str, Any]] = []  # dead or retry: state, next_attempt_at and last_error vary per row
        for row, outcome in outcomes:
            key = {"b_id": row["id"], "b_attempts": row["attempts"]}
            if outcome.ok:
                sent.append((row["id"], row["attempts"]))
                result.sent += 1
            elif outcome.permanent or row["attempts"] >= MAX_ATTEMPTS:
                why = outcome.error if outcome.permanent else f"{outcome.error} (gave up after {row['attempts']})"
                failed.append(key | {"b_state": DEAD, "b_next": row["next_attempt_at"], "b_error": why[:2000]})
                result.dead += 1
                result.errors.append(f"outbox {row['id']} to {row['to_addr']}: dead: {why}")
            else:
                retry_at = now + timedelta(seconds=backoff_s(row["attempts"]))
                failed.append(key | {"b_state": RETRY, "b_next": retry_at, "b_error": outcome.error[:2000]})
                result.retry += 1
        if not line.mark(sent, failed, now, wait):
            return None
        if self.report is not None:
            for error in result.errors:
                self.report(error)
        return result


_MINE = sa.and_(
    OUTBOX.c.id == sa.bindparam("b_id"),
    OUTBOX.c.attempts == sa.bindparam("b_attempts"),
    OUTBOX.c.state == SENDING,
)
_SUPERSEDED = OUTBOX.c.superseded_by.is_not(None)
# Not sent: one superseded meanwhile is cancelled instead of retried or dead.
_MARK_FAILED = (
    sa.update(OUTBOX)
    .where(_MINE)
    .values(
        state=sa.case((_SUPERSEDED, CANCELLED), else_=sa.bindparam("b_state")),
        next_attempt_at=sa.bindparam("b_next"),
        last_error=sa.case(
            (_SUPERSEDED, sa.literal("superseded by '") + OUTBOX.c.superseded_by + "' before sending"),
            else_=sa.bindparam("b_error"),
        ),
        lease_until=None,
    )
)
# Sent, and said so; one superseded while it was on the wire keeps that on its record. This is the
# mark each message waits for before its connection sends again, so it is prepared SQL through the
# driver: SQLAlchemy's statement and per-row parameter processing cost 0.35-0.55 ms of CPU a mark,
# as much as the send itself.
_SENT_SET = (
    f"state = '{SENT}', lease_until = NULL, last_error = CASE WHEN superseded_by IS NOT NULL"
    " THEN 'superseded by ''' || superseded_by || ''' while on the wire' END"
)
_SQLITE_SENT = f"UPDATE outbox SET {_SENT_SET}, sent_at = ? WHERE id = ? AND attempts = ? AND state = '{SENDING}'"
_PG_SENT = (
    f"UPDATE outbox SET {_SENT_SET}, sent_at = %(at)s"
    " FROM unnest(%(ids)s::integer[], %(attempts)s::integer[]) AS v(id, attempts)"
    f" WHERE outbox.id = v.id AND outbox.attempts = v.attempts AND outbox.state = '{SENDING}'"
)
# The same, prepared once per connection of PgSent: $1 timestamptz, $2 and $3 integer[].
_PG_SENT_PREPARED = (
    f"UPDATE outbox SET {_SENT_SET}, sent_at = $1"
    " FROM unnest($2::integer[], $3::integer[]) AS v(id, attempts)"
    f" WHERE outbox.id = v.id AND outbox.attempts = v.attempts AND outbox.state = '{SENDING}'"
)

# claim()'s batch on PostgreSQL (Mailer._claim_pg): picked in order and leased in one statement, each
# row with the state it had. _DUE_NOW is claim()'s `due` as SQL text (the claim's test holds the two
# databases' batches equal).
_DUE_NOW = (
    f"((outbox.state IN ({', '.join(repr(s) for s in DUE)}) AND outbox.next_attempt_at <= %(now)s)"
    f" OR (outbox.state = '{SENDING}' AND outbox.lease_until < %(now)s AND outbox.superseded_by IS NULL))"
)
_PG_CLAIM = (
    f"WITH picked AS (SELECT outbox.id, outbox.state FROM outbox WHERE {_DUE_NOW}"
    " ORDER BY outbox.next_attempt_at, outbox.id LIMIT %(n)s FOR UPDATE SKIP LOCKED)"
    f" UPDATE outbox SET state = '{SENDING}', lease_until = %(until)s, attempts = outbox.attempts + 1"
    f" FROM picked WHERE outbox.id = picked.id RETURNING {column_list(OUTBOX)}, picked.state"
)


def pg_sent_line(engine: sa.Engine) -> PgSent:
    """A PostgreSQL engine's line for the sent marks (opened at its first mark)."""
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return PgSent(conninfo, _PG_SENT_PREPARED)


def _sqlite_sent(conn: Connection, rows: list[tuple[int, int]], now: datetime) -> list[tuple[Any, int, int]]:
    """_SQLITE_SENT's parameters: (sent_at as stored, id, attempts) for each row."""
    at = _stored_time(conn, now)
    return [(at, i, attempts) for i, attempts in rows]


def _stored_time(conn: Connection, now: datetime) -> Any:
    """`now` as SQLAlchemy binds a time column on this dialect (SQLite: the naive UTC text)."""
    process = OUTBOX.c.sent_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return now if process is None else process(now)


class MarkLine:
    """The one connection a batch's marks go through, taken at the first mark and given back
    after the batch (not a checkout, and on PostgreSQL a ping, for every message).

    On PostgreSQL it runs in autocommit: each mark is one statement and one round trip. Its
    commit waits for the WAL to reach the disk, as every commit of gongmo does on PostgreSQL:
    `synchronous_commit = off` made a mark 4-6x cheaper, but a crash of the server or of the
    machine would then lose the marks of its last ~0.6 s, and hundreds of notices would go out a
    second time. The production database keeps "sent once" through a server crash; a
    connection that failed is dropped instead of given back."""

    def __init__(self, engine: sa.Engine, pg_sent: PgSent | None = None) -> None:
        self.engine = engine
        self.conn: Connection | None = None
        # PostgreSQL: the sent marks, on the event loop. deliver_due() lends its own for all of its
        # batches (a connection and its prepared statement are ~8 ms, a batch of 500 ~500 ms);
        # otherwise the line's own, closed with it.
        self.pg_sent = pg_sent
        self.owns_pg_sent = pg_sent is None

    async def mark_sent(self, sent: list[tuple[int, int]], now: datetime) -> bool:
        """PostgreSQL: mark the sent rows (id, attempts) sent at `now` on the event loop, through a
        connection of the line's own on libpq itself (pgsent.PgSent: a prepared statement in
        autocommit, its commit's WAL flush awaited like a socket read). A worker thread per mark cost
        more CPU than the statement (the hop and the GIL's back and forth), and psycopg's async
        execute 3x the CPU of libpq's own calls, with the mail sink and the server on the same two
        cores. False on SQLite (MarkLine.mark)."""
        if self.engine.dialect.name != "postgresql":
            return False
        if self.pg_sent is None:
            self.pg_sent = pg_sent_line(self.engine)
        try:
            await self.pg_sent.mark(sent, now)
        except psycopg.Error as exc:
            await self.pg_sent.close()  # whatever it began is gone with it; the next mark opens anew
            raise DatabaseError(f"database {self.engine.url.render_as_string(hide_password=True)}: {exc}") from exc
        return True

    async def aclose(self) -> None:
        pg_sent, self.pg_sent = self.pg_sent, None
        if pg_sent is not None and self.owns_pg_sent:
            await pg_sent.close()

    def mark(self, sent: list[tuple[int, int]], failed: list[dict[str, Any]], now: datetime, wait: bool = True) -> bool:
        """Mark the sent rows (id, attempts) sent at `now` and write the failed rows' outcomes
        (_MARK_FAILED's parameters), each row only while it is still ours (the fence).

        The sent rows, a mark every message waits for, go through the driver itself: one
        prepared UPDATE (SQLAlchemy's statement and per-row parameter processing cost more CPU
        than the send). On SQLite one transaction holds both kinds; on PostgreSQL each
        statement commits as it runs.

        Without `wait` (on the event loop), only what never waits is done: on SQLite, sent rows
        whose BEGIN IMMEDIATE gets the write lock at once (the line's connection has no busy
        timeout, nor a WAL auto-checkpoint, which would copy and sync pages inside the commit:
        a background checkpoint runs after the batch); anything else returns False, and the
        caller marks them in a worker thread (waiting for the lock as every writer does)."""
        try:
            conn = self.conn = self.conn or self._open()
            raw: Any = conn.connection.driver_connection
            if not wait:
                return conn.dialect.name == "sqlite" and not failed and self._sqlite_sent_now(conn, raw, sent, now)
            if conn.dialect.name == "sqlite":
                raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # waits for the lock like any writer
            if conn.dialect.name == "postgresql":
                if sent:
                    raw.execute(_PG_SENT, {"at": now, "ids": [i for i, _ in sent], "attempts": [a for _, a in sent]})
                if failed:
                    conn.execute(_MARK_FAILED, failed)
                    conn.commit()  # SQLAlchemy's side only: autocommit
            elif failed:
                with conn.begin():  # BEGIN IMMEDIATE ... COMMIT
                    if sent:
                        conn.exec_driver_sql(_SQLITE_SENT, _sqlite_sent(conn, sent, now))  # type: ignore[arg-type]
                    conn.execute(_MARK_FAILED, failed)
            else:
                raw.execute("BEGIN IMMEDIATE")
                raw.executemany(_SQLITE_SENT, _sqlite_sent(conn, sent, now))
                raw.execute("COMMIT")
            if conn.dialect.name == "sqlite":
                raw.execute("PRAGMA busy_timeout=0")
            return True
        except (OperationalError, self.engine.dialect.loaded_dbapi.Error) as exc:
            self._drop()  # closed, so whatever it began rolls back
            detail = getattr(exc, "orig", None) or exc
            raise DatabaseError(f"database {self.engine.url.render_as_string(hide_password=True)}: {detail}") from exc
        except BaseException:
            self._drop()
            raise

    def _sqlite_sent_now(self, conn: Connection, raw: Any, sent: list[tuple[int, int]], now: datetime) -> bool:
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode == sqlite3.SQLITE_BUSY:  # another writer has the lock: no transaction began
                return False
            raise
        raw.executemany(_SQLITE_SENT, _sqlite_sent(conn, sent, now))
        raw.execute("COMMIT")
        return True

    def _open(self) -> Connection:
        conn = self.engine.connect()
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        else:
            raw: Any = conn.connection.driver_connection
            raw.execute("PRAGMA busy_timeout=0")
            raw.execute("PRAGMA wal_autocheckpoint=0")
        return conn

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        if conn.dialect.name == "sqlite":  # back to the pool as it came
            raw: Any = conn.connection.driver_connection
            with contextlib.suppress(Exception):
                raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
                raw.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
            conn.close()
            checkpoint_soon(self.engine)
            return
        conn.close()

    def _drop(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
                conn.close()


class _Marks:
    """Group commit of the outcomes: every connection's finished send goes into
    the next transaction, and each connection waits for its own to commit."""

    def __init__(self, mailer: Mailer, total: Delivery) -> None:
        self.mailer = mailer
        self.total = total
        self.queued: list[tuple[dict[str, Any], Outcome, asyncio.Future[None]]] = []
        self.flusher: asyncio.Task[None] | None = None
        self.line = MarkLine(mailer.app.db, mailer.pg_sent)

    async def close(self) -> None:
        """After the batch: the last marks done, the connections go back."""
        if self.flusher is not None:
            await asyncio.wait([self.flusher])
        await self.line.aclose()
        await asyncio.to_thread(self.line.close)

    async def put(self, row: dict[str, Any], outcome: Outcome) -> None:
        await self.start(row, outcome)

    def start(self, row: dict[str, Any], outcome: Outcome) -> asyncio.Future[None]:
        """Queue the outcome's mark; the future is done when it has committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queued.append((row, outcome, done))
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush())
        return done

    async def _flush(self) -> None:
        # A task of its own: a lane that is cancelled does not cancel the marking
        # of the messages already sent.
        while self.queued:
            batch, self.queued = self.queued, []
            try:
                outcomes = [(row, outcome) for row, outcome, _ in batch]
                sent = [(row["id"], row["attempts"]) for row, outcome in outcomes if outcome.ok]
                result: Delivery | None = None
                if len(sent) == len(outcomes) and await self.line.mark_sent(sent, self.mailer.app.clock.now()):
                    result = Delivery(sent=len(sent))  # PostgreSQL, on the event loop
                # else on the event loop when that cannot wait (SQLite's lock free: ~40 us, no thread hop)
                result = (
                    result
                    or self.mailer._mark(outcomes, self.line, wait=False)
                    or await asyncio.to_thread(self.mailer._mark, outcomes, self.line)
                )
                assert result is not None
            except Exception as exc:
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            self.total.sent += result.sent
            self.total.retry += result.retry
            self.total.dead += result.dead
            self.total.errors += result.errors
            for *_, done in batch:
                if not done.done():
                    done.set_result(None)


def _retrieved(done: asyncio.Future[None]) -> None:
    """A mark no lane waits for any more: its failure is the batch's, not a stray log line."""
    if not done.cancelled():
        done.exception()


class _Leases:
    """Keeps a batch's lease while the batch is ours: the rows still waiting and
    the ones on the wire. A row starts its send with at least half its lease
    left (else the batch is renewed first), and a keeper renews the batch
    whenever a row on the wire or waiting falls under half, so a slow send (an
    SMTP timeout, a stalled server) never outlives its lease and is sent again
    by another daemon while it is still on the wire. A lease runs out only when
    its daemon is dead (or cannot reach the database for half a lease)."""

    def __init__(self, mailer: Mailer, waiting: collections.deque[dict[str, Any]]) -> None:
        self.mailer = mailer
        self.waiting = waiting
        self.on_wire: dict[int, dict[str, Any]] = {}
        self.lock = asyncio.Lock()
        self.lost: set[int] = set()
        self.superseded: set[int] = set()  # rows a newer notice replaced since the claim: never handed to the wire

    async def hold(self, row: dict[str, Any]) -> bool:
        """Before a send: is the row still ours (renewing the batch if its lease is short)?"""
        async with self.lock:
            if row["id"] not in self.lost and self._short(row):
                try:
                    await self._renew([row])
                except Exception as exc:  # the database is away: not sent now; its lease runs out, it comes back
                    log.warning("outbox lease: could not renew (%s); outbox %s waits for its lease", exc, row["id"])
                    return False
            if row["id"] in self.lost or row["id"] in self.superseded:
                return False
            self.on_wire[row["id"]] = row
            return True

    async def refresh(self) -> None:
        """Which rows of the batch were superseded since they were claimed (one read)."""
        ids = [r["id"] for r in self._ours()]
        if ids:
            self.superseded |= await asyncio.to_thread(self.mailer.superseded, ids)

    def done(self, row: dict[str, Any]) -> None:
        self.on_wire.pop(row["id"], None)

    async def keep(self) -> None:
        """Every `mailer.renew_every` seconds, renew the batch if any of it is short."""
        while True:
            await asyncio.sleep(self.mailer.renew_every)
            async with self.lock:
                try:
                    await self.refresh()
                    if any(self._short(r) for r in self._ours()):
                        await self._renew([])
                except Exception as exc:  # the database is away: try again at the next look
                    log.warning("outbox lease: could not renew (%s); trying again", exc)

    def _ours(self) -> list[dict[str, Any]]:
        rows = [*self.on_wire.values(), *self.waiting]
        return [r for r in rows if r["id"] not in self.lost]

    def _short(self, row: dict[str, Any]) -> bool:
        left: timedelta = row["lease_until"] - self.mailer.app.clock.now()
        return left < self.mailer.lease / 2

    async def _renew(self, first: list[dict[str, Any]]) -> None:
        rows = {r["id"]: r for r in [*first, *self._ours()]}
        held = await asyncio.to_thread(self.mailer.renew, list(rows.values()), self.mailer.app.clock.now())
        lost = set(rows) - held
        if lost:
            self.lost |= lost
            log.warning("outbox lease: %s claimed rows were taken over by another sender", len(lost))
