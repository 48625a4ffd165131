"""Engines and transactions for SQLite (embedded default) and PostgreSQL.

SQLite: WAL, busy_timeout, foreign keys, and every write transaction opened
with BEGIN IMMEDIATE, so two writers cannot both read a row and both win
(pysqlite's default deferred BEGIN lets them). Read-only work opens a
deferred BEGIN and does not block writers.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import QueuePool

from gongmo.states.errors import GongmoError

BUSY_TIMEOUT_MS = 30_000
WAL_AUTOCHECKPOINT = 1000  # pages: SQLite's default
log = logging.getLogger("gongmo.db")
READ_ONLY = "gongmo_read_only"
WRITER = "gongmo_writer"  # the engine's attribute holding its _Writer (SQLite)


class DatabaseError(GongmoError):
    """The database cannot be reached or is not initialised."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    return _pg_engine(url, **kwargs)


# A pooled PostgreSQL connection idle longer than this is pinged before it is used again (seconds).
PING_IDLE_S = 1.0


def _pg_engine(url: str, **kwargs: Any) -> Engine:
    """The pool pings a connection before handing it out only if it sat idle over PING_IDLE_S (a server
    restarted meanwhile, an idle timeout): a dead one is replaced, unseen by the caller. SQLAlchemy's
    pool_pre_ping pinged at every checkout, a round trip of its own before each transaction (a single
    move's sixth, against the raw baseline's five); a connection used a moment ago is alive (and a
    server lost in that moment fails the transaction once, as it could between ping and statement
    anyway; the pool then replaces every connection)."""
    engine = sa.create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _idle(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is not None and time.monotonic() - since <= PING_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool drops this connection and hands out a new one
            raise sa.exc.DisconnectionError(f"a pooled connection idle since {since} is gone: {exc}") from exc

    return engine


def custom_plans(conn: Connection) -> None:
    """For the rest of this transaction, PostgreSQL plans each statement with its
    values. psycopg prepares a statement on its fifth run, and PostgreSQL may
    then keep one generic plan for the connection's life: a plan made while the
    outbox was small (a daemon started before the call went out) stays a scan
    of every pending notice as the outbox grows, and a move's superseded-notice
    UPDATE went from 0.6 to 3 ms over 6,000 moves. Only one-move transactions
    ask for it: a custom plan costs ~0.03 ms a statement, which a bulk move's
    executemany of 100,000 rows would pay 200,000 times (10.2 -> 14.2 s)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_custom_plan")


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        _private_file(Path(path))
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # on the driver's connection (driver_execute): SQLAlchemy's execution of it cost a third of a
        # single move's own statements
        driver_execute(conn, "BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE", ())

    if isinstance(engine.pool, QueuePool):  # a file (in memory, each thread has a database of its own)
        setattr(engine, WRITER, _Writer(engine))  # on the engine: gone with it
        event.listen(engine, "engine_disposed", _await_checkpoint)
    return engine


def _private_file(path: Path) -> None:
    """Create the database's missing folders 0700 and the file itself 0600, whatever the umask: it
    holds token hashes, scores and every notice. SQLite gives its -wal and -shm files the mode of
    the database. A folder or a file that exists keeps the mode the office gave it."""
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
            folder.chmod(0o700)  # mkdir's mode is masked by the umask
        except FileExistsError:
            pass  # another process made it first
        except OSError:
            return  # SQLite names the problem when it opens the file
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # SQLite names the problem when it opens the file
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


@contextmanager
def write(engine: Engine, *, bulk: bool = False) -> Iterator[Connection]:
    """One write transaction: commit on success, roll back on any error.

    `bulk` (a stored file, core/files.py): on SQLite, the commit does not run the WAL's
    auto-checkpoint, which would copy the whole file from the WAL into the database file (and
    sync it) inside the caller's request; a PASSIVE checkpoint runs in a background thread
    after the commit instead (checkpoint_soon). The connection's auto-checkpoint is restored
    right after the commit, so the WAL stays bounded: any other writer's commit checkpoints
    as before if the background one could not finish."""
    if not (bulk and engine.dialect.name == "sqlite"):
        try:
            with engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise DatabaseError(_db_message(engine, exc)) from exc
        return
    try:
        with engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.execute("PRAGMA wal_autocheckpoint=0")
            try:
                with conn.begin():
                    yield conn
            finally:
                raw.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
    except OperationalError as exc:
        raise DatabaseError(_db_message(engine, exc)) from exc
    checkpoint_soon(engine)


class _Writer:
    """A SQLite engine's one held connection for short write transactions (single moves): SQLite lets
    one writer in at a time anyway (BEGIN IMMEDIATE), so taking turns on one connection, under a lock,
    loses no concurrency, and spares each transaction the pool's checkout, reset and checkin and a new
    Connection (single moves went from 4.2-4.5x their raw baseline to 3.5x with this alone). Closed
    when the engine is disposed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.timeout_s = BUSY_TIMEOUT_MS / 1000  # waiting for the writer before "database is locked"
        self.lock = threading.Lock()
        self.owner: int | None = None  # the thread inside, if any
        self.conn: Connection | None = None
        event.listen(engine, "engine_disposed", self._disposed)

    def _disposed(self, _engine: Engine) -> None:
        with self.lock:
            self._close(detach=True)  # not back into the pool that was just disposed: closed

    def _close(self, detach: bool = False) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a connection that failed already
                if detach and not conn.invalidated:
                    conn.detach()
                conn.close()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        me = threading.get_ident()
        if self.owner == me:  # a write inside this thread's own held write: its own connection, as before
            with write(self.engine) as own:
                yield own
            return
        if not self.lock.acquire(timeout=self.timeout_s):
            raise DatabaseError(_db_message(self.engine, None, "database is locked"))
        self.owner = me
        try:
            conn = self.conn
            if conn is None or conn.closed or conn.invalidated:
                self._close()
                conn = self.conn = self.engine.connect()
            try:
                with conn.begin():
                    yield conn
            except OperationalError as exc:
                raise DatabaseError(_db_message(self.engine, exc)) from exc
            finally:
                if conn.invalidated:  # a lost or broken connection: the next one opens anew
                    self._close()
        finally:
            self.owner = None
            self.lock.release()


@contextmanager
def write_one(engine: Engine) -> Iterator[Connection]:
    """A short write transaction (a single move): write(), on SQLite through the engine's one held
    writer connection (_Writer, made with the engine), on PostgreSQL a pooled connection as usual
    (there writers do run side by side)."""
    writer: _Writer | None = getattr(engine, WRITER, None)
    if writer is None:
        with write(engine) as conn:
            yield conn
        return
    with writer.begin() as conn:
        yield conn


CHECKPOINT = "gongmo_checkpoint"  # the engine's attribute holding its running background checkpoint
_checkpoint_lock = threading.Lock()


def checkpoint_soon(engine: Engine) -> threading.Thread | None:
    """A PASSIVE WAL checkpoint of a SQLite database, in a background thread (one per engine
    at a time; None if one runs already): it copies what the WAL holds into the database file
    without blocking readers or writers; a writer whose commit would auto-checkpoint meanwhile
    skips it (busy). Its connection is its own, closed when it is done (not pooled), and the
    engine's dispose() waits for it (_await_checkpoint): a connection left open past the
    dispose would keep the WAL (and its lock) until the garbage collector found it."""

    def run() -> None:
        try:
            with engine.connect() as conn:
                raw = conn.connection.driver_connection  # (None once detached)
                assert raw is not None
                conn.detach()  # closed at the end of the block, even if the pool is disposed meanwhile
                raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except Exception:  # a later commit's auto-checkpoint does the work instead
            log.warning("background WAL checkpoint failed", exc_info=True)
        finally:
            with _checkpoint_lock:
                setattr(engine, CHECKPOINT, None)

    with _checkpoint_lock:
        if getattr(engine, CHECKPOINT, None) is not None:
            return None
        thread = threading.Thread(target=run, name="gongmo-wal-checkpoint", daemon=True)
        setattr(engine, CHECKPOINT, thread)
    thread.start()
    return thread


def _await_checkpoint(engine: Engine) -> None:
    """engine_disposed: the engine's background checkpoint, if one runs, finishes (and closes its
    connection) before dispose() returns; it waits no longer than a busy database would."""
    with _checkpoint_lock:
        thread: threading.Thread | None = getattr(engine, CHECKPOINT, None)
    if thread is not None and thread is not threading.current_thread():
        thread.join(BUSY_TIMEOUT_MS / 1000)


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    try:
        with engine.connect() as raw:
            conn = raw.execution_options(**{READ_ONLY: True})
            with conn.begin():
                yield conn
    except OperationalError as exc:
        raise DatabaseError(_db_message(engine, exc)) from exc


def _db_message(engine: Engine, exc: OperationalError | None, detail: str = "") -> str:
    if exc is not None:
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    url = engine.url.render_as_string(hide_password=True)
    if "no such table" in detail or "does not exist" in detail:
        return f"database {url} is not initialised ({detail}): run `gongmo init`"
    return f"database {url}: {detail}"


@functools.cache
def _by_id(table: sa.Table, for_update: bool) -> sa.Select[Any]:
    """`SELECT * FROM table WHERE id = :row_id`, built once (a statement built per
    call costs more Python than SQLite takes to run it)."""
    query = sa.select(table).where(table.c.id == sa.bindparam("row_id"))
    return query.with_for_update() if for_update else query


def lock_row(conn: Connection, table: sa.Table, row_id: int) -> sa.Row[Any] | None:
    """Read a row for update: FOR UPDATE on PostgreSQL; SQLite already holds
    the write lock since BEGIN IMMEDIATE."""
    return conn.execute(_by_id(table, conn.dialect.name != "sqlite"), {"row_id": row_id}).first()


def row_by_id(conn: Connection, table: sa.Table, row_id: int) -> sa.Row[Any] | None:
    return conn.execute(_by_id(table, False), {"row_id": row_id}).first()


# -- a single move's hot path: the driver's own cursor, no SQLAlchemy execution -------------------


@contextmanager
def unprepared(conn: Connection) -> Iterator[None]:
    """What custom_plans() gives one transaction, without its round trip: while the block runs,
    psycopg prepares no statement (prepare_threshold None), so PostgreSQL plans each one, unnamed,
    with its values: a plan can never be a generic one made while the outbox was small. A single
    move's transaction (Mover.apply) runs inside it; the connection's threshold comes back after.
    Nothing on SQLite, which plans each statement anyway."""
    if conn.dialect.name != "postgresql":
        yield
        return
    raw: Any = conn.connection.driver_connection
    threshold = raw.prepare_threshold
    raw.prepare_threshold = None
    try:
        yield
    finally:
        raw.prepare_threshold = threshold


def driver_execute(conn: Connection, sql: str, params: Any) -> int:
    """Run one statement of SQL text with the driver's own placeholders inside `conn`'s transaction, and
    return its row count. On SQLite on the driver's own connection: sqlite3 keeps the statement prepared
    in its cache, and no SQLAlchemy execution context is built (that context cost more Python than
    SQLite takes to run a single move's statements); errors come wrapped as SQLAlchemy wraps them
    (IntegrityError, OperationalError...), but SQLAlchemy's cursor events do not see the statement: count
    them with sqlite3's set_trace_callback. On PostgreSQL through exec_driver_sql (a round trip costs
    more than SQLAlchemy's Python there; its events see it)."""
    if conn.dialect.name != "sqlite":
        return int(conn.exec_driver_sql(sql, params).rowcount)
    raw: Any = conn.connection.driver_connection
    try:
        return int(raw.execute(sql, params).rowcount)
    except sqlite3.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, params, exc, sqlite3.Error) from exc


def driver_fetch(conn: Connection, sql: str, params: Any) -> list[tuple[Any, ...]]:
    """The rows of a query of SQL text, as the driver gives them (see driver_execute); as_row() makes
    one a mapping of a table's columns with SQLAlchemy's values."""
    if conn.dialect.name != "sqlite":
        return [tuple(r) for r in conn.exec_driver_sql(sql, params)]
    raw: Any = conn.connection.driver_connection
    try:
        return list(raw.execute(sql, params).fetchall())
    except sqlite3.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, params, exc, sqlite3.Error) from exc


def column_list(table: sa.Table, alias: str | None = None) -> str:
    """Every column of `table`, in its order, for SQL text whose rows as_row() reads."""
    prefix = f"{alias or table.name}."
    return ", ".join(f'{prefix}"{c.name}"' for c in table.columns)


@functools.cache
def _result_processors(table: sa.Table, dialect: sa.Dialect) -> tuple[tuple[str, Any], ...]:
    return tuple((c.name, _result_processor(c.type, dialect)) for c in table.columns)


def _result_processor(kind: Any, dialect: sa.Dialect) -> Any:
    """SQLAlchemy's result processor of a column type, except a time on SQLite: the text SQLAlchemy stores
    ('YYYY-MM-DD HH:MM:SS.ffffff') read by datetime.fromisoformat (C) instead of the dialect's regular
    expression, a tenth of the time and the same datetime (anything else still goes the dialect's way);
    a type decorator's own step (aware UTC) after it, as SQLAlchemy does."""
    process = kind.dialect_impl(dialect).result_processor(dialect, None)
    impl = kind.impl if isinstance(kind, sa.TypeDecorator) else kind
    if dialect.name != "sqlite" or not isinstance(impl, sa.DateTime) or process is None:
        return process
    own = kind.process_result_value if isinstance(kind, sa.TypeDecorator) else None
    parse = datetime.fromisoformat

    def fast(value: Any) -> Any:
        if type(value) is not str or len(value) != 26:
            return process(value)
        return parse(value) if own is None else own(parse(value), dialect)

    return fast


def as_row(table: sa.Table, dialect: sa.Dialect, values: Sequence[Any]) -> dict[str, Any]:
    """A driver's row of column_list(table) as the mapping SQLAlchemy would give: each value through its
    column's result processor (on SQLite a stored time text becomes an aware UTC datetime, 0/1 a bool)."""
    return {
        name: value if process is None or value is None else process(value)
        for (name, process), value in zip(_result_processors(table, dialect), values, strict=True)
    }


@functools.cache
def bind_processors(table: sa.Table, dialect: sa.Dialect) -> dict[str, Any]:
    """Each column's bind processor on `dialect` (None: the value goes as it is), as SQLAlchemy binds
    it: a type decorator's own step, then the dialect's (on SQLite a time becomes the naive UTC text
    'YYYY-MM-DD HH:MM:SS.ffffff'), so driver_execute() stores byte for byte what execute() does."""
    processors = {c.name: c.type.dialect_impl(dialect).bind_processor(dialect) for c in table.columns}
    for c in table.columns:
        kind = c.type.impl if isinstance(c.type, sa.TypeDecorator) else c.type
        process = processors[c.name]
        if dialect.name == "sqlite" and isinstance(kind, sa.DateTime) and process is not None:
            processors[c.name] = _remembering(process)
    return processors


def _remembering(process: Any) -> Any:
    """A time's bind processor that remembers its last value: a move binds the same `now` as the row's
    updated_at, its audit line's at and its notice's created_at and next_attempt_at (on SQLite each
    is formatted as text in Python). The pair is replaced whole, so threads sharing it are safe, and
    it holds the value itself, so `is` cannot match another object at the same address."""
    last: tuple[Any, Any] = (object(), None)

    def bind(value: Any) -> Any:
        nonlocal last
        seen = last
        if value is seen[0]:
            return seen[1]
        out = process(value)
        last = (value, out)
        return out

    return bind


def bound(table: sa.Table, dialect: sa.Dialect, names: Iterable[str], values: Mapping[str, Any]) -> list[Any]:
    """The values of `names`, in that order, bound for `table`'s columns on `dialect` (bind_processors)."""
    processors = bind_processors(table, dialect)
    out = []
    for name in names:
        value = values[name]
        process = processors[name]
        out.append(value if process is None or value is None else process(value))
    return out


def pg_type(column: sa.Column[Any]) -> str:
    """The PostgreSQL type a parameter is cast to where it has no column to take its type from (a SELECT
    list): the column's kind without a length, so a value too long is refused as an INSERT refuses it,
    not cut short as a cast to varchar(n) would."""
    kind = column.type.impl if isinstance(column.type, sa.TypeDecorator) else column.type
    if isinstance(kind, sa.BigInteger):
        return "bigint"
    if isinstance(kind, sa.Integer):
        return "integer"
    if isinstance(kind, sa.Boolean):
        return "boolean"
    if isinstance(kind, sa.DateTime):
        return "timestamptz"
    return "text"
