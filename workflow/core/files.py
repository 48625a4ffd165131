"""The blob store and the document rows: plan documents kept in the database.

A file is stored once, content-addressed by its SHA-256: one `blob` row (hash,
size, number of chunks) and one `blob_chunk` row per CHUNK_BYTES piece. Two
applications that send the same bytes share one blob. Nothing here holds a
whole file in memory: a file goes in one chunk per statement and comes out one
chunk per query. A `document` row names one version of one kind of one
application's documents (engine/uploads.py writes them).

SQLite keeps blobs of this size well, and on PostgreSQL every replica sees the
same files with no other service to run or back up.

What makes it fast enough:
- PostgreSQL: a chunk is read through a binary psycopg cursor (bytea comes back
  as its bytes; the default text result is hex, twice the size on the wire and
  decoded by the client: 50 MiB in ~345 ms instead of ~85 ms), and
  blob_chunk.data is stored EXTERNAL (migration 0009: no compression is tried
  on PDFs, HWP and zips, compressed already). An INSERT sends its bytes as a
  binary parameter already (psycopg's %s picks the binary dumper for bytes).
- SQLite: a stored file's transaction commits without the WAL auto-checkpoint
  (db.write(bulk=True)): copying the file's 50 MiB from the WAL into the
  database file and syncing it would take 100-200 ms of the upload's answer. A
  PASSIVE checkpoint runs in a background thread after the commit instead, and
  any later commit checkpoints as before if it could not finish.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, RowMapping

from gongmo.workflow.core.models import BLOB, BLOB_CHUNK, CHUNK_BYTES, DOCUMENT

CHUNK_INSERT = sa.insert(BLOB_CHUNK)
CHUNK = sa.select(BLOB_CHUNK.c.data).where(
    BLOB_CHUNK.c.sha256 == sa.bindparam("c_sha256"), BLOB_CHUNK.c.seq == sa.bindparam("c_seq")
)
# The same, for a binary psycopg cursor (the bytes come back as they are stored, not in hex).
PG_CHUNK = "SELECT data FROM blob_chunk WHERE sha256 = %s AND seq = %s"
BLOB_ROW = sa.select(BLOB).where(BLOB.c.sha256 == sa.bindparam("b_sha256"))
# What a receipt lists of each current document.
RECEIPT_FIELDS = ("kind", "file_name", "size", "sha256", "version", "file_type")


def store_blob(conn: Connection, source: BinaryIO, sha256: str, size: int, now: datetime) -> bool:
    """Store `source`'s bytes under `sha256` unless they are stored already; True if new.

    The caller has hashed and counted `source` (engine/uploads.py). The blob row is
    inserted ON CONFLICT DO NOTHING: a second writer of the same bytes waits for the
    first's commit and then inserts nothing. Only when the row is new is `source`
    read, from its start, one CHUNK_BYTES piece per INSERT."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    row = {"sha256": sha256, "size": size, "chunks": -(-size // CHUNK_BYTES), "created_at": now}
    stmt: Any = dialect_insert(BLOB).values(row).on_conflict_do_nothing(index_elements=["sha256"])
    if conn.execute(stmt.returning(BLOB.c.sha256)).first() is None:
        return False
    source.seek(0)
    seq = 0
    while piece := source.read(CHUNK_BYTES):
        conn.execute(CHUNK_INSERT, {"sha256": sha256, "seq": seq, "data": piece})
        seq += 1
    return True


def blob(conn: Connection, sha256: str) -> RowMapping | None:
    """The blob's row (sha256, size, chunks, created_at), or None."""
    return conn.execute(BLOB_ROW, {"b_sha256": sha256}).mappings().first()


def chunk(conn: Connection, sha256: str, seq: int) -> bytes | None:
    """One chunk of a blob (None if it is missing); on PostgreSQL through a binary cursor."""
    if conn.dialect.name == "postgresql":
        raw: Any = conn.connection.driver_connection
        with raw.cursor(binary=True) as cur:
            cur.execute(PG_CHUNK, (sha256, seq))
            found = cur.fetchone()
        data = None if found is None else found[0]
    else:
        data = conn.execute(CHUNK, {"c_sha256": sha256, "c_seq": seq}).scalar()
    return None if data is None else bytes(data)


def chunks(conn: Connection, sha256: str) -> Iterator[bytes]:
    """A blob's bytes, one chunk per query, in order. A chunk missing from storage
    is an error (LookupError): `documents verify` names the file it belongs to."""
    row = blob(conn, sha256)
    if row is None:
        raise LookupError(f"no stored file with SHA-256 {sha256}")
    for seq in range(int(row["chunks"])):
        data = chunk(conn, sha256, seq)
        if data is None:
            raise LookupError(f"stored file {sha256}: chunk {seq} is missing; run `gongmo documents verify`")
        yield data


def documents(conn: Connection, application_id: int, *, current_only: bool) -> list[RowMapping]:
    """An application's document rows, by kind and version (only the current ones if asked)."""
    query = sa.select(DOCUMENT).where(DOCUMENT.c.application_id == application_id)
    if current_only:
        query = query.where(DOCUMENT.c.current.is_(True))
    return list(conn.execute(query.order_by(DOCUMENT.c.kind, DOCUMENT.c.version)).mappings())


def current_hashes(conn: Connection, application_id: int) -> list[dict[str, Any]]:
    """What a receipt lists: kind, file name, size, SHA-256, version and type of each current document."""
    return [{k: row[k] for k in RECEIPT_FIELDS} for row in documents(conn, application_id, current_only=True)]


@dataclass(frozen=True)
class BadBlob:
    """A stored file whose chunks no longer add up to its hash or size."""

    sha256: str  # the hash it was stored under
    expected_size: int
    actual_size: int
    actual_sha256: str
    missing_chunks: tuple[int, ...] = ()
    documents: list[dict[str, Any]] = field(default_factory=list)  # id, application_id, kind, version, file_name


def verify(conn: Connection) -> Iterator[BadBlob]:
    """Reread every stored file, chunk by chunk (one query each), and yield those
    whose bytes do not hash to the SHA-256 they are stored under, or whose size
    or number of chunks differs, with the document rows that use them."""
    blobs = conn.execute(sa.select(BLOB.c.sha256, BLOB.c.size, BLOB.c.chunks).order_by(BLOB.c.sha256)).all()
    for sha256, size, count in blobs:
        digest = hashlib.sha256()
        actual = 0
        missing = []
        for seq in range(int(count)):
            data = chunk(conn, sha256, seq)
            if data is None:
                missing.append(seq)
                continue
            digest.update(data)
            actual += len(data)
        extra = conn.execute(
            sa.select(sa.func.count())
            .select_from(BLOB_CHUNK)
            .where(BLOB_CHUNK.c.sha256 == sha256, BLOB_CHUNK.c.seq >= int(count))
        ).scalar_one()
        if digest.hexdigest() == sha256 and actual == size and not missing and not extra:
            continue
        users = conn.execute(
            sa.select(
                DOCUMENT.c.id, DOCUMENT.c.application_id, DOCUMENT.c.kind, DOCUMENT.c.version, DOCUMENT.c.file_name
            )
            .where(DOCUMENT.c.sha256 == sha256)
            .order_by(DOCUMENT.c.id)
        ).mappings()
        yield BadBlob(sha256, int(size), actual, digest.hexdigest(), tuple(missing), [dict(u) for u in users])
