"""The blob store (core/files.py): content-addressed, in chunks, written once and read chunk by
chunk; `verify` finds a stored file whose bytes changed; a stored file's commit leaves SQLite's
WAL checkpoint to a background thread; PostgreSQL keeps the chunks EXTERNAL and reads them as
bytes. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gongmo.workflow.core import db, files, samples
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import BLOB, BLOB_CHUNK, CHUNK_BYTES
from gongmo.workflow.engine.app import App
from tests.conftest import kst
from tests.workflow import plans

TRACK = "strong-small-2024"


def put(app: App, data: bytes) -> tuple[str, bool]:
    sha = hashlib.sha256(data).hexdigest()
    with write(app.db) as conn:
        new = files.store_blob(conn, io.BytesIO(data), sha, len(data), app.clock.now())
    return sha, new


def test_a_blob_is_stored_once_in_chunks_and_read_back_in_order(app: App) -> None:
    data = bytes(range(256)) * (CHUNK_BYTES * 5 // 2 // 256) + b"tail"  # 2.5 MiB and a bit: 3 chunks
    sha, new = put(app, data)
    assert new is True
    assert put(app, data) == (sha, False)  # the same bytes again: nothing written
    with read(app.db) as conn:
        row = files.blob(conn, sha)
        assert row is not None and (row["size"], row["chunks"]) == (len(data), 3)
        sizes = [len(c) for c in files.chunks(conn, sha)]
        assert sizes == [CHUNK_BYTES, CHUNK_BYTES, len(data) - 2 * CHUNK_BYTES]
        assert b"".join(files.chunks(conn, sha)) == data
        assert conn.execute(sa.select(sa.func.count()).select_from(BLOB_CHUNK)).scalar_one() == 3
        assert files.chunk(conn, sha, 3) is None
    assert list(files_verify(app)) == []


def test_a_file_of_exactly_one_chunk_is_one_row(app: App) -> None:
    sha, _ = put(app, b"x" * CHUNK_BYTES)
    with read(app.db) as conn:
        assert conn.execute(sa.select(BLOB.c.chunks).where(BLOB.c.sha256 == sha)).scalar_one() == 1


def files_verify(app: App) -> list[files.BadBlob]:
    with read(app.db) as conn:
        return list(files.verify(conn))


def test_verify_finds_a_byte_changed_in_storage_and_names_its_documents(app: App) -> None:
    app.clock.set(kst("2024-05-28 10:00"))  # type: ignore[attr-defined]
    app_id = plans.attach(app, TRACK, "41590")
    plan_sha = hashlib.sha256(samples.pdf()).hexdigest()
    assert files_verify(app) == []
    with write(app.db) as conn:
        data = conn.execute(
            sa.select(BLOB_CHUNK.c.data).where(BLOB_CHUNK.c.sha256 == plan_sha, BLOB_CHUNK.c.seq == 0)
        ).scalar_one()
        changed = bytes(data[:100]) + bytes([data[100] ^ 1]) + bytes(data[101:])
        conn.execute(
            sa.update(BLOB_CHUNK).where(BLOB_CHUNK.c.sha256 == plan_sha, BLOB_CHUNK.c.seq == 0).values(data=changed)
        )
    [bad] = files_verify(app)
    assert bad.sha256 == plan_sha
    assert bad.expected_size == bad.actual_size == len(samples.pdf())
    assert bad.actual_sha256 == hashlib.sha256(changed).hexdigest() != plan_sha
    assert [(d["application_id"], d["kind"], d["version"], d["file_name"]) for d in bad.documents] == [
        (app_id, "plan", 1, "사업계획서.pdf")
    ]


def test_verify_finds_a_missing_chunk(app: App) -> None:
    sha, _ = put(app, b"y" * (CHUNK_BYTES + 10))
    with write(app.db) as conn:
        conn.execute(sa.delete(BLOB_CHUNK).where(BLOB_CHUNK.c.sha256 == sha, BLOB_CHUNK.c.seq == 1))
    [bad] = files_verify(app)
    assert (bad.sha256, bad.missing_chunks, bad.actual_size, bad.documents) == (sha, (1,), CHUNK_BYTES, [])


def test_documents_and_current_hashes_list_the_current_files(app: App) -> None:
    app.clock.set(kst("2024-05-28 10:00"))  # type: ignore[attr-defined]
    app_id = plans.attach(app, TRACK, "41590")
    plans.attach(app, TRACK, "41590", kinds=["plan"])  # the same plan again: version 2
    with read(app.db) as conn:
        every = files.documents(conn, app_id, current_only=False)
        current = files.documents(conn, app_id, current_only=True)
        hashes = files.current_hashes(conn, app_id)
    assert [(d["kind"], d["version"], d["current"]) for d in every] == [
        ("budget", 1, True),
        ("plan", 1, False),
        ("plan", 2, True),
    ]
    assert [(d["kind"], d["version"]) for d in current] == [("budget", 1), ("plan", 2)]
    assert hashes[1] == {
        "kind": "plan",
        "file_name": "사업계획서.pdf",
        "size": len(samples.pdf()),
        "sha256": hashlib.sha256(samples.pdf()).hexdigest(),
        "version": 2,
        "file_type": "pdf",
    }


def test_a_bulk_write_on_sqlite_commits_without_the_checkpoint_and_one_runs_after_it(
    app: App, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The stored file's transaction runs with the auto-checkpoint off: after its commit the
    bytes are in the WAL only, not yet in the database file. The connection has its
    auto-checkpoint back (every other commit keeps the WAL bounded), and the background
    checkpoint that the commit asks for copies them into the database file."""
    if app.db.dialect.name != "sqlite":
        pytest.skip("SQLite's WAL")
    asked: list[Any] = []
    monkeypatch.setattr(db, "checkpoint_soon", asked.append)  # held back, to look in between
    path = Path(str(app.db.url.database))
    data = os.urandom(5 * CHUNK_BYTES)  # 1,280 pages of 4 KiB: past the auto-checkpoint's 1,000
    sha = hashlib.sha256(data).hexdigest()
    with write(app.db, bulk=True) as conn:
        raw: Any = conn.connection.driver_connection
        assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        files.store_blob(conn, io.BytesIO(data), sha, len(data), app.clock.now())
    assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == db.WAL_AUTOCHECKPOINT
    assert asked == [app.db]
    assert path.stat().st_size < len(data) < Path(f"{path}-wal").stat().st_size  # committed, in the WAL only
    monkeypatch.undo()
    thread = db.checkpoint_soon(app.db)
    assert thread is not None
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert "background WAL checkpoint failed" not in caplog.text  # it ran (closing its connection also may)
    assert path.stat().st_size > len(data)  # checkpointed into the database file
    with read(app.db) as conn:
        assert b"".join(files.chunks(conn, sha)) == data


def test_a_failed_bulk_write_stores_nothing_and_starts_no_checkpoint(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[object] = []
    monkeypatch.setattr(db, "checkpoint_soon", started.append)
    data = b"z" * (CHUNK_BYTES + 1)
    sha = hashlib.sha256(data).hexdigest()
    with pytest.raises(RuntimeError, match="refused after the chunks"), write(app.db, bulk=True) as conn:
        files.store_blob(conn, io.BytesIO(data), sha, len(data), app.clock.now())
        raise RuntimeError("refused after the chunks")
    assert started == []
    with read(app.db) as conn:
        assert files.blob(conn, sha) is None
        assert conn.execute(sa.select(sa.func.count()).select_from(BLOB_CHUNK)).scalar_one() == 0
    if app.db.dialect.name == "sqlite":
        with app.db.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == db.WAL_AUTOCHECKPOINT


def test_postgresql_keeps_chunks_external_and_reads_them_back_as_bytes(app: App) -> None:
    """Migration 0009 stores blob_chunk.data EXTERNAL (never compressed); a chunk read through
    the binary cursor is the stored bytes, every byte value included."""
    if app.db.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's column storage")
    with read(app.db) as conn:
        storage = conn.execute(
            sa.text("SELECT attstorage FROM pg_attribute WHERE attrelid = 'blob_chunk'::regclass AND attname = 'data'")
        ).scalar_one()
    assert storage == "e"
    data = bytes(range(256)) * 4096 + b"\x00tail\xff"  # 1 MiB and a bit: a full chunk and a short one
    sha, _ = put(app, data)
    with read(app.db) as conn:
        first, second = files.chunk(conn, sha, 0), files.chunk(conn, sha, 1)
        assert isinstance(first, bytes) and isinstance(second, bytes)
        assert first + second == data
        assert files.chunk(conn, sha, 2) is None
