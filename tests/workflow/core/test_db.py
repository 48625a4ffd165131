"""Engines (workflow/db.py): what each backend's connections are set up with."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from gongmo.workflow.core.db import (
    WRITER,
    DatabaseError,
    bind_processors,
    checkpoint_soon,
    custom_plans,
    make_engine,
    read,
    write,
    write_one,
)
from gongmo.workflow.core.models import AUDIT
from tests.conftest import SAMPLE_CSV, config_copy, run_cli
from tests.workflow import contest_2024 as sc


@pytest.mark.postgres
def test_custom_plans_hold_for_one_transaction_on_postgres(pg_schema_url: str) -> None:
    """A one-move transaction plans each statement with its values (a generic plan kept from when a
    table was small stays a scan as it grows); the next transaction, a bulk one, keeps the default."""
    engine = make_engine(pg_schema_url)
    try:
        with write(engine) as conn:
            custom_plans(conn)
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar_one() == "force_custom_plan"
        with read(engine) as conn:
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar_one() == "auto"
    finally:
        engine.dispose()


def test_custom_plans_is_nothing_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/gongmo.db")
    try:
        with write(engine) as conn:
            custom_plans(conn)  # no statement: SQLite plans each statement anyway
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        engine.dispose()


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/gongmo.db")
    try:
        with read(engine) as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        engine.dispose()


# -- private files (issue 18, finding 8) ---------------------------------------------------------


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """A umask that makes new files world-readable (0644) and folders world-listable (0755)."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_database_its_wal_shm_and_folder_are_private_whatever_the_umask(
    tmp_path: Path, loose_umask: None
) -> None:
    path = tmp_path / "var" / "gongmo.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with write(engine) as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        with read(engine) as conn:  # a connection open: the WAL and its index exist
            assert conn.exec_driver_sql("SELECT x FROM t").scalar() == 1
            wal, shm = path.with_name("gongmo.db-wal"), path.with_name("gongmo.db-shm")
            assert {p.name: oct(mode(p)) for p in (path, wal, shm)} == {p.name: "0o600" for p in (path, wal, shm)}
        assert oct(mode(path.parent)) == "0o700"
    finally:
        engine.dispose()


def test_an_existing_folder_and_database_keep_their_modes(tmp_path: Path, loose_umask: None) -> None:
    """Only what gongmo creates is made private: a folder the office chose (e.g. shared with a backup
    group) is left as it is."""
    (tmp_path / "shared").mkdir(mode=0o750)
    path = tmp_path / "shared" / "gongmo.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        with write(engine) as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        assert (oct(mode(path.parent)), oct(mode(path))) == ("0o750", "0o600")
        path.chmod(0o640)
        engine.dispose()
        with write(make_engine(f"sqlite:///{path}")) as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert oct(mode(path)) == "0o640"
    finally:
        engine.dispose()


def test_the_cli_creates_the_database_and_the_maildir_private_and_restores_the_umask(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], loose_umask: None
) -> None:
    """`gongmo init`, an import, the call and a delivery into the Maildir under a umask of 022: the
    database, its folder, the Maildir and every message in it are the owner's only."""
    db = tmp_path / "data" / "gongmo.db"
    config = config_copy(tmp_path, database_url=f"sqlite:///{db}")
    cli = ["--config", str(config), "--now", "2024-05-28T10:00:00+09:00"]
    assert run_cli(capsys, *cli, "init")[0] == 0
    assert run_cli(capsys, *cli, "applicants", "import", str(SAMPLE_CSV))[0] == 0
    code, out, err = run_cli(capsys, *cli, "announce", sc.TRACK)
    assert code == 0, err
    code, out, err = run_cli(capsys, *cli, "deliver")
    assert code == 0, err
    maildir = tmp_path / "var" / "maildir"
    messages = list((maildir / "new").iterdir())
    assert messages, out
    assert (oct(mode(db.parent)), oct(mode(db))) == ("0o700", "0o600")
    folders = [maildir, *(maildir / sub for sub in ("tmp", "new", "cur"))]
    assert {str(p): oct(mode(p)) for p in folders} == {str(p): "0o700" for p in folders}
    assert {oct(mode(p)) for p in messages} == {"0o600"}
    assert os.umask(0o022) == 0o022  # the test process's umask is as it was


@pytest.mark.postgres
def test_a_pooled_postgres_connection_is_pinged_only_after_it_sat_idle(
    pg_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No ping before a connection used a moment ago (a single move's round trip saved); one idle longer
    than PING_IDLE_S is pinged, and one the server ended meanwhile is replaced, unseen by the caller."""
    from gongmo.workflow.core import db

    engine = make_engine(pg_schema_url)
    pings: list[object] = []
    real = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(c) or real(c))
    try:
        for _ in range(3):
            with write(engine) as conn:
                pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        assert pings == []
        monkeypatch.setattr(db, "PING_IDLE_S", 0.0)
        other = make_engine(pg_schema_url)
        try:
            with other.begin() as killer:
                assert killer.exec_driver_sql("SELECT pg_terminate_backend(%(p)s)", {"p": pid}).scalar_one()
        finally:
            other.dispose()
        with write(engine) as conn:  # the dead one pinged and replaced
            assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != pid
        assert len(pings) >= 1
    finally:
        engine.dispose()


# -- SQLite's one held writer for single moves (issue 25) -------------------------------------------


def _driver(conn: Any) -> Any:
    return conn.connection.driver_connection


def test_single_writes_on_sqlite_take_turns_on_one_held_connection(tmp_path: Path) -> None:
    """write_one() on SQLite: every short transaction on the same driver connection (no pool
    checkout each), committed; an error rolls its own transaction back and the connection serves the
    next one; disposing the engine closes it."""
    engine = make_engine(f"sqlite:///{tmp_path}/gongmo.db")
    try:
        with write(engine) as conn:
            conn.exec_driver_sql("CREATE TABLE t (v INTEGER)")
        seen = []
        for v in (1, 2):
            with write_one(engine) as conn:
                conn.exec_driver_sql(f"INSERT INTO t VALUES ({v})")
                seen.append(_driver(conn))
        with pytest.raises(RuntimeError), write_one(engine) as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (3)")
            raise RuntimeError("refused half way")
        with write_one(engine) as conn:
            seen.append(_driver(conn))
            assert conn.exec_driver_sql("SELECT group_concat(v) FROM t").scalar_one() == "1,2"
        assert seen[0] is seen[1] is seen[2]
        with read(engine) as conn:  # committed, as another connection sees it
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 2
        held = seen[0]
        engine.dispose()
        with pytest.raises(sqlite3.ProgrammingError):  # closed with the engine
            held.execute("SELECT 1")
    finally:
        engine.dispose()


def test_a_single_write_waits_its_turn_and_names_the_lock_when_it_cannot_get_it(tmp_path: Path) -> None:
    """Two threads: the second waits while the first holds the writer, then goes on; one that waited
    past the writer's timeout gets "database is locked" as a DatabaseError, and nothing of it is written."""
    engine = make_engine(f"sqlite:///{tmp_path}/gongmo.db")
    try:
        with write(engine) as conn:
            conn.exec_driver_sql("CREATE TABLE t (v INTEGER)")
        inside, release = threading.Event(), threading.Event()

        def first() -> None:
            with write_one(engine) as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (1)")
                inside.set()
                release.wait(10)

        holder = threading.Thread(target=first)
        holder.start()
        assert inside.wait(10)
        writer = getattr(engine, WRITER)
        writer.timeout_s = 0.01
        with pytest.raises(DatabaseError, match="database is locked"), write_one(engine) as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        writer.timeout_s = 10
        done: list[int] = []
        waiter = threading.Thread(target=lambda: done.append(_insert(engine, 3)))
        waiter.start()
        release.set()
        holder.join(10)
        waiter.join(10)
        assert done == [3]
        with read(engine) as conn:
            assert conn.exec_driver_sql("SELECT group_concat(v) FROM t ORDER BY v").scalar_one() == "1,3"
    finally:
        engine.dispose()


def _insert(engine: Any, v: int) -> int:
    with write_one(engine) as conn:
        conn.exec_driver_sql(f"INSERT INTO t VALUES ({v})")
    return v


def test_a_single_write_inside_the_threads_own_takes_its_own_connection(tmp_path: Path) -> None:
    """A write_one() nested in the same thread's write_one() does not wait on itself: it opens its own
    transaction as write() does (and, SQLite having one writer, is told the database is locked)."""
    engine = make_engine(f"sqlite:///{tmp_path}/gongmo.db")
    event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("PRAGMA busy_timeout=50"))  # after gongmo's
    try:
        with write(engine) as conn:
            conn.exec_driver_sql("CREATE TABLE t (v INTEGER)")
        with write_one(engine) as outer:
            outer.exec_driver_sql("INSERT INTO t VALUES (1)")
            with pytest.raises(DatabaseError, match="locked"), write_one(engine) as inner:
                assert _driver(inner) is not _driver(outer)
        with read(engine) as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 1
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_single_writes_on_postgres_use_the_pool(pg_schema_url: str) -> None:
    """PostgreSQL's writers run side by side: write_one() is write(), a pooled connection each."""
    engine = make_engine(pg_schema_url)
    try:
        with write_one(engine) as a:
            assert a.exec_driver_sql("SELECT 1").scalar_one() == 1
        assert getattr(engine, WRITER, None) is None
    finally:
        engine.dispose()


def test_a_time_bound_after_another_is_its_own_text(tmp_path: Path) -> None:
    """bind_processors() remember the last time bound (a move binds one `now` four times): two times
    bound in turn, and an equal time that is another object, each get their own text."""
    engine = make_engine(f"sqlite:///{tmp_path}/gongmo.db")
    try:
        process = bind_processors(AUDIT, engine.dialect)["at"]
        a, b = datetime(2024, 6, 3, 1, 0, tzinfo=UTC), datetime(2024, 6, 3, 1, 0, 1, 5, tzinfo=UTC)
        texts = [process(t) for t in (a, b, a, a, b, b.astimezone(timezone(timedelta(hours=9))))]
        assert texts == [
            "2024-06-03 01:00:00.000000",
            "2024-06-03 01:00:01.000005",
            "2024-06-03 01:00:00.000000",
            "2024-06-03 01:00:00.000000",
            "2024-06-03 01:00:01.000005",
            "2024-06-03 01:00:01.000005",
        ]
    finally:
        engine.dispose()


def test_dispose_waits_for_the_background_checkpoint_and_leaves_no_connection_open(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A background checkpoint still running when the engine is disposed (the CLI disposes as soon as
    its command is done) finishes and closes its connection before dispose() returns: the last
    connection closed, SQLite folds the WAL into the file and removes it. Its connection had gone
    back into the disposed pool and stayed open, WAL and all (CI, 2026-12-06)."""
    path = tmp_path / "gongmo.db"
    engine = make_engine(f"sqlite:///{path}")
    inside, go = threading.Event(), threading.Event()

    def held_back(_dbapi: Any, _record: Any, _proxy: Any) -> None:
        if threading.current_thread().name == "gongmo-wal-checkpoint":
            inside.set()
            go.wait(10)

    event.listen(engine, "checkout", held_back)
    with write(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE t (v INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    thread = checkpoint_soon(engine)
    assert thread is not None and inside.wait(10)
    timer = threading.Timer(0.05, go.set)  # the checkpoint goes on while dispose() is under way
    timer.start()
    engine.dispose()
    assert not thread.is_alive()
    assert "background WAL checkpoint failed" not in caplog.text
    timer.join(10)
    assert not Path(f"{path}-wal").exists()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT v FROM t").fetchall() == [(1,)]
