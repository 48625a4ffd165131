"""Engines and transactions for SQLite (embedded default) and PostgreSQL.

SQLite: WAL, busy_timeout, foreign keys, and every write transaction opened
with BEGIN IMMEDIATE, so two writers cannot both read a row and both win
(pysqlite's default deferred BEGIN lets them). Read-only work opens a
deferred BEGIN and does not block writers.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from gongmo.states.errors import GongmoError

BUSY_TIMEOUT_MS = 30_000
WAL_AUTOCHECKPOINT = 1000  # pages: SQLite's default
log = logging.getLogger("gongmo.db")
READ_ONLY = "gongmo_read_only"


class DatabaseError(GongmoError):
    """The database cannot be reached or is not initialised."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


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
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

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


_checkpointing: set[int] = set()
_checkpoint_lock = threading.Lock()


def checkpoint_soon(engine: Engine) -> threading.Thread | None:
    """A PASSIVE WAL checkpoint of a SQLite database, in a background thread (one per engine
    at a time; None if one runs already): it copies what the WAL holds into the database file
    without blocking readers or writers; a writer whose commit would auto-checkpoint meanwhile
    skips it (busy)."""
    with _checkpoint_lock:
        if id(engine) in _checkpointing:
            return None
        _checkpointing.add(id(engine))

    def run() -> None:
        try:
            with engine.connect() as conn:
                raw = conn.connection.driver_connection
                assert raw is not None
                raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except Exception:  # a later commit's auto-checkpoint does the work instead
            log.warning("background WAL checkpoint failed", exc_info=True)
        finally:
            with _checkpoint_lock:
                _checkpointing.discard(id(engine))

    thread = threading.Thread(target=run, name="gongmo-wal-checkpoint", daemon=True)
    thread.start()
    return thread


@contextmanager
def read(engine: Engine) -> Iterator[Connection]:
    try:
        with engine.connect() as raw:
            conn = raw.execution_options(**{READ_ONLY: True})
            with conn.begin():
                yield conn
    except OperationalError as exc:
        raise DatabaseError(_db_message(engine, exc)) from exc


def _db_message(engine: Engine, exc: OperationalError) -> str:
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
