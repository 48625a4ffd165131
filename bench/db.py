"""Throwaway databases for the benchmarks, plain DB-API connections for the
baselines, and fast seeding (the seeding is never measured).

A database is a SQLite file in a temporary directory, or a PostgreSQL schema
named bench_<pid>, created fresh for each scenario and dropped after it.
Baselines talk to the same database through plain sqlite3 / psycopg
connections set up the way gongmo sets up its own (WAL, synchronous=NORMAL,
BEGIN IMMEDIATE on SQLite).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import psycopg
import sqlalchemy as sa

from gongmo.states.lifecycle import Role
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.config import Api, Mail
from gongmo.workflow.core.db import write
from gongmo.workflow.core.models import APPLICANT, APPLICATION, AUDIT, DEADLINE, OUTBOX, TRACK
from gongmo.workflow.deadlines import plan as deadlines
from gongmo.workflow.engine.app import App
from gongmo.workflow.runtime import wiring
from gongmo.workflow.runtime.wiring import open_app

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config.toml"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TRACK_KEY = "strong-small-2024"  # receipt 2024-05-27 09:00 to 05-29 18:00 KST; up to 1,000,000 inhabitants
OFFICE = Actor("bench-office", Role.ADMIN)
NATIONAL_KRW = 8_000_000_000  # the track's cap, matched 1:1
NO_API = Api(enabled=False)
KST = ZoneInfo("Asia/Seoul")
SEED_AT = datetime(2024, 5, 28, 10, 0, tzinfo=KST)  # inside the track's receipt window


@dataclass(frozen=True)
class Backend:
    """Which kind of database a scenario runs on (it makes fresh ones as it needs)."""

    kind: str  # sqlite | postgres
    pg_url: str = PG_URL


@dataclass(frozen=True)
class Target:
    """One fresh database."""

    kind: str  # sqlite | postgres
    url: str  # SQLAlchemy URL

    @property
    def placeholder(self) -> str:
        return "?" if self.kind == "sqlite" else "%s"


def schema_name() -> str:
    return f"bench_{os.getpid()}"


@contextmanager
def database(backend: Backend) -> Iterator[Target]:
    """A fresh, empty database of that kind; gone afterwards."""
    if backend.kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="gongmo-bench-") as tmp:
            yield Target("sqlite", f"sqlite:///{tmp}/bench.db")
        return
    name = schema_name()
    admin = sa.create_engine(backend.pg_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    sep = "&" if "?" in backend.pg_url else "?"
    try:
        yield Target("postgres", f"{backend.pg_url}{sep}options={quote(f'-csearch_path={name}')}")
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        admin.dispose()


def server_version(backend: Backend) -> str:
    if backend.kind == "sqlite":
        return sqlite3.sqlite_version
    engine = sa.create_engine(backend.pg_url)
    try:
        with engine.connect() as conn:
            return str(conn.exec_driver_sql("SHOW server_version").scalar())
    finally:
        engine.dispose()


def backends(db: str, pg_url: str) -> tuple[list[Backend], dict[str, str]]:
    """The chosen databases and their versions; a clear exit if PostgreSQL is away."""
    kinds = ("sqlite", "postgres") if db == "both" else (db,)
    chosen, versions = [], {}
    for kind in kinds:
        backend = Backend(kind, pg_url)
        try:
            versions[kind] = server_version(backend)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SystemExit(
                f"error: PostgreSQL at {pg_url} is unreachable ({first}): start it, pass --pg-url URL, or --db sqlite"
            ) from None
        chosen.append(backend)
    return chosen, versions


# -- gongmo's side ---------------------------------------------------------------


def open_bench_app(target: Target, at: datetime = SEED_AT) -> App:
    """The shipped config on the target database: schema, contests loaded, the
    clock fixed at `at`, every template rendered once (as the daemon does at start)."""
    app = open_app(CONFIG, FixedClock(at), database_url=target.url)
    wiring.prepare(app, deadlines=False)
    problems = app.renderer.check()
    assert not problems, problems
    return app


def set_clock(app: App, at: datetime) -> None:
    assert isinstance(app.clock, FixedClock)
    app.clock.set(at)


def with_mail(app: App, mail: Mail) -> None:
    """Swap the [mail] settings of a loaded app (the config models are frozen)."""
    config = app.loaded.config.model_copy(update={"mail": mail})
    app.loaded = app.loaded.model_copy(update={"config": config})
    app.moves.loaded = app.loaded


def track(app: App, key: str = TRACK_KEY) -> dict[str, Any]:
    with app.db.connect() as conn:
        return dict(conn.execute(sa.select(TRACK).where(TRACK.c.key == key)).mappings().one())


def add_deadline(app: App, action: str, key: str = TRACK_KEY) -> int:
    """Only this one deadline of the track (the others would fire, and render, for nothing)."""
    row = track(app, key)
    contest, cfg = app.loaded.config.track(key)
    [planned] = [p for p in deadlines.plan_track(row, cfg, contest.timezone) if p.action == action]
    with write(app.db) as conn:
        deadlines.sync(conn, row["id"], [planned], app.clock.now(), planned.key)
        return int(conn.execute(sa.select(DEADLINE.c.id).where(DEADLINE.c.key == planned.key)).scalar_one())


# -- plain connections -------------------------------------------------------------


def connect(target: Target) -> Any:
    """A plain DB-API connection (sqlite3 or psycopg), not in autocommit: call
    begin(conn) before writing and conn.commit() after."""
    url = sa.engine.make_url(target.url)
    if target.kind == "sqlite":
        conn = sqlite3.connect(str(url.database), isolation_level=None, timeout=30)
        for pragma in ("journal_mode=WAL", "busy_timeout=30000", "foreign_keys=ON", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        return conn
    return psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))


def begin(conn: Any) -> None:
    """What gongmo does to open a write transaction (psycopg opens one by itself)."""
    if isinstance(conn, sqlite3.Connection):
        conn.execute("BEGIN IMMEDIATE")


@contextmanager
def plain(target: Target) -> Iterator[Any]:
    conn = connect(target)
    try:
        yield conn
    finally:
        conn.close()


def tidy(target: Target) -> None:
    """Between runs: PostgreSQL vacuums and analyses (dead rows of a reset out of
    the way); SQLite analyses and folds the WAL back into the file."""
    with plain(target) as conn:
        if target.kind == "postgres":
            conn.autocommit = True
            tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
            conn.execute(f"VACUUM ANALYZE {', '.join(tables)}")  # this schema's tables only
        else:
            conn.execute("ANALYZE")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def stamp(target: Target, at: datetime) -> Any:
    """A time as gongmo stores it: naive UTC text on SQLite, aware on PostgreSQL."""
    if target.kind == "sqlite":
        return at.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return at


def bulk_insert(conn: Any, target: Target, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """COPY on PostgreSQL, executemany on SQLite; inside the caller's transaction."""
    if target.kind == "postgres":
        with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(r)
        return
    marks = ", ".join("?" for _ in columns)
    conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def reset_sequences(conn: Any, target: Target, tables: Sequence[str]) -> None:
    if target.kind == "postgres":
        for table in tables:
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 1) FROM {table}))"
            )


# -- seeding ------------------------------------------------------------------------

APPLICANT_COLUMNS = ("id", "code", "name", "kind", "population", "contact_name", "email", "language")
APPLICATION_COLUMNS = (
    "id",
    "track_id",
    "applicant_id",
    "state",
    "version",
    "receipt_no",
    "title",
    "project_type",
    "national_krw",
    "local_krw",
    "submitted_at",
    "years",
    "created_at",
    "updated_at",
)


def seed_applications(target: Target, app: App, n: int, state: str, key: str = TRACK_KEY) -> list[int]:
    """n new local governments, each with an application of the track in `state`
    (drafts in announcement; received plans with a receipt number otherwise).
    One in four writes in English. Returns the application ids."""
    row = track(app, key)
    with app.db.connect() as sa_conn:
        first_applicant = int(sa_conn.execute(sa.select(sa.func.coalesce(sa.func.max(APPLICANT.c.id), 0))).scalar_one())
        first_app = int(sa_conn.execute(sa.select(sa.func.coalesce(sa.func.max(APPLICATION.c.id), 0))).scalar_one())
    created = stamp(target, row["announce_at"])
    submitted = stamp(target, row["receipt_opens"])
    received = state != "announcement"

    def applicants() -> Iterator[tuple[Any, ...]]:
        for i in range(n):
            a = first_applicant + 1 + i
            language = "en" if a % 4 == 0 else "ko"
            yield (a, f"B{a:08d}", f"시험시{a}", "city", 100_000, "담당자", f"lg{a}@bench.example", language)

    def applications() -> Iterator[tuple[Any, ...]]:
        for i in range(n):
            a, p = first_applicant + 1 + i, first_app + 1 + i
            if received:
                kind = "climate_crisis" if p % 2 else "local_extinction"
                yield (p, row["id"], a, state, 2, f"{row['receipt_prefix']}-B{p:07d}", f"스마트도시 {p}", kind,
                       NATIONAL_KRW, NATIONAL_KRW, submitted, 3, created, submitted)  # fmt: skip
            else:
                yield (p, row["id"], a, state, 1, None, None, None, None, None, None, None, created, created)

    with plain(target) as conn:
        begin(conn)
        bulk_insert(conn, target, "applicant", APPLICANT_COLUMNS, applicants())
        bulk_insert(conn, target, "application", APPLICATION_COLUMNS, applications())
        reset_sequences(conn, target, ("applicant", "application"))
        conn.commit()
    return list(range(first_app + 1, first_app + 1 + n))


# -- what a run wrote, and putting it back ---------------------------------------------

AUDIT_COLUMNS = tuple(c.name for c in AUDIT.c if c.name != "id")
OUTBOX_COLUMNS = tuple(c.name for c in OUTBOX.c if c.name != "id")


@dataclass
class Written:
    """The rows a gongmo run wrote, read back raw, for the baseline to write again."""

    applications: list[tuple[Any, ...]]  # (id, state, version, updated_at, checklist, eligible)
    audit: list[tuple[Any, ...]]  # AUDIT_COLUMNS
    outbox: list[tuple[Any, ...]]  # OUTBOX_COLUMNS
    deadline: tuple[Any, ...] | None  # (fired_at, late, claimed_by, attempts) of the fired row


@dataclass(frozen=True)
class Mark:
    """Where the tables stood before a run."""

    audit_id: int
    outbox_id: int


def mark(target: Target) -> Mark:
    with plain(target) as conn:
        audit = conn.execute("SELECT coalesce(max(id), 0) FROM audit").fetchone()[0]
        outbox = conn.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()[0]
    return Mark(int(audit), int(outbox))


def written(target: Target, before: Mark, ids: list[int], deadline_id: int | None = None) -> Written:
    p = target.placeholder
    with plain(target) as conn:
        apps = conn.execute(
            f"SELECT id, state, version, updated_at, checklist, eligible FROM application"
            f" WHERE id BETWEEN {p} AND {p} ORDER BY id",
            (min(ids), max(ids)),
        ).fetchall()
        audit = conn.execute(
            f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit WHERE id > {p} ORDER BY id", (before.audit_id,)
        ).fetchall()
        outbox = conn.execute(
            f"SELECT {', '.join(OUTBOX_COLUMNS)} FROM outbox WHERE id > {p} ORDER BY id", (before.outbox_id,)
        ).fetchall()
        fired = None
        if deadline_id is not None:
            fired = conn.execute(
                f"SELECT fired_at, late, claimed_by, attempts FROM deadline WHERE id = {p}", (deadline_id,)
            ).fetchone()
        conn.rollback()
    return Written([tuple(r) for r in apps], [tuple(r) for r in audit], [tuple(r) for r in outbox], fired)


def restore(
    target: Target, before: Mark, ids: list[int], state: str, version: int, deadline_id: int | None = None
) -> None:
    """Undo a run: its audit and outbox rows gone, the applications back in `state`."""
    p = target.placeholder
    with plain(target) as conn:
        begin(conn)
        conn.execute(f"DELETE FROM outbox WHERE id > {p}", (before.outbox_id,))
        conn.execute(f"DELETE FROM audit WHERE id > {p}", (before.audit_id,))
        conn.execute(
            f"UPDATE application SET state = {p}, version = {p}, checklist = NULL, eligible = NULL"
            f" WHERE id BETWEEN {p} AND {p}",
            (state, version, min(ids), max(ids)),
        )
        if deadline_id is not None:
            conn.execute(
                "UPDATE deadline SET fired_at = NULL, late = NULL, claimed_by = NULL, lease_until = NULL,"
                f" attempts = 0, last_error = NULL WHERE id = {p}",
                (deadline_id,),
            )
        conn.commit()
    tidy(target)


def insert_sql(target: Target, table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(target.placeholder for _ in columns)})"
