"""The blob store (core/files.py): content-addressed, in chunks, written once and read chunk by
chunk; `verify` finds a stored file whose bytes changed. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io

import sqlalchemy as sa

from gongmo.workflow.core import files, samples
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
