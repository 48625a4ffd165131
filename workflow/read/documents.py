"""A plan's documents as a reader may see and download them (the CLI and the API).

Who reads what (read/visibility.check_access decides who sees the application):
- the office (admin) and the applicant itself: every version, with its `current` flag;
- an evaluator assigned to the application, with no conflict: the current files only;
- anybody else: nothing (NotVisible).
An implementation plan's file (stages/kickoff.py, open_plan_file): the office and the applicant
itself only, never an evaluator.
Every download is recorded in the event log (`document_downloaded`, `plan_downloaded`: who, which file, when)
in its own committed transaction before a byte is served. The bytes are then read one chunk
per short read transaction, so a slow client holds no transaction open.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.engine import RowMapping

from gongmo.states.documents import MEDIA_TYPES
from gongmo.states.errors import InvalidInput, NotFound, NotVisible
from gongmo.states.lifecycle import Role
from gongmo.workflow.core import files
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICATION, BLOB, DOCUMENT, KICKOFF_PLAN
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.engine import events
from gongmo.workflow.engine.uploads import stored_answers
from gongmo.workflow.read import visibility
from gongmo.workflow.stages.kickoff import PLAN_KIND

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from gongmo.workflow.engine.app import App


def listing(app: App, conn: Connection, who: Principal, application_id: int) -> list[dict[str, Any]]:
    """The application's documents as this caller may see them, by kind and version."""
    visibility.check_access(app, conn, who, application_id)
    return visibility.documents(conn, who, application_id)


@dataclass(frozen=True)
class Download:
    """One document to serve: its metadata, and its bytes through chunks()."""

    db: DbEngine
    document_id: int
    application_id: int
    kind: str
    version: int
    file_name: str
    size: int
    file_type: str
    media_type: str
    sha256: str
    chunk_count: int

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes, one chunk per short read transaction."""
        for seq in range(self.chunk_count):
            with read(self.db) as conn:
                data = files.chunk(conn, self.sha256, seq)
            if data is None:
                raise LookupError(
                    f"document {self.document_id} ({self.file_name}): chunk {seq} of {self.sha256} is missing"
                    " from storage; run `gongmo documents verify`"
                )
            yield data


def answers(app: App, conn: Connection, who: Principal, application_id: int) -> dict[str, object]:
    """The stored answers to the track's questions, to a caller who may see the application
    (an evaluator: one assigned to it without a conflict)."""
    visibility.check_access(app, conn, who, application_id)
    row = conn.execute(sa.select(APPLICATION.c.answers).where(APPLICATION.c.id == application_id)).mappings().one()
    return stored_answers(row)


def open_download(app: App, who: Principal, application_id: int, kind: str, version: int | None) -> Download:
    """The document of `kind` (its current file, or `version`) for this caller, the download
    recorded in the event log (committed) before it is returned."""
    with read(app.db) as conn:
        visibility.check_access(app, conn, who, application_id)
        row = _document(conn, who, application_id, kind, version)
        stored = files.blob(conn, row["sha256"])
        track_id = conn.execute(
            sa.select(APPLICATION.c.track_id).where(APPLICATION.c.id == application_id)
        ).scalar_one()
    if stored is None:
        raise NotFound(f"document {row['id']} ({row['file_name']}): its file is missing from storage")
    detail = {k: row[k] for k in ("kind", "version", "file_name", "sha256")} | {"document_id": row["id"]}
    with write(app.db) as conn:
        events.record(
            conn, app.clock.now(), Actor(who.subject, who.role), "document_downloaded", detail, track_id, application_id
        )
    return Download(
        db=app.db,
        document_id=int(row["id"]),
        application_id=application_id,
        kind=row["kind"],
        version=int(row["version"]),
        file_name=row["file_name"],
        size=int(row["size"]),
        file_type=row["file_type"],
        media_type=MEDIA_TYPES.get(row["file_type"], "application/octet-stream"),
        sha256=row["sha256"],
        chunk_count=int(stored["chunks"]),
    )


# Who downloads an implementation plan's file: the office and the applicant itself, never an evaluator.
PLAN_READERS = (Role.ADMIN, Role.APPLICANT)


def open_plan_file(app: App, who: Principal, application_id: int, round_: int) -> Download:
    """The file of the application's implementation plan round `round_` (stages/kickoff.py) for
    the office or the applicant itself, the download recorded in the event log (committed,
    `plan_downloaded`) before it is returned; an evaluator never (NotVisible)."""
    with read(app.db) as conn:
        visibility.check_access(app, conn, who, application_id)
        if who.role not in PLAN_READERS:
            raise NotVisible(
                f"the implementation plan of application {application_id} is read by the office and its applicant only"
            )
        row = (
            conn.execute(
                sa.select(KICKOFF_PLAN).where(
                    KICKOFF_PLAN.c.application_id == application_id, KICKOFF_PLAN.c.round == round_
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"application {application_id} has no implementation plan round {round_}")
        if row["sha256"] is None:
            raise NotFound(
                f"implementation plan round {round_} of application {application_id} was received on paper:"
                " no file is kept"
            )
        stored = files.blob(conn, row["sha256"])
        track_id = conn.execute(
            sa.select(APPLICATION.c.track_id).where(APPLICATION.c.id == application_id)
        ).scalar_one()
    if stored is None:
        raise NotFound(f"implementation plan round {round_} ({row['file_name']}): its file is missing from storage")
    detail = {"round": round_, "file_name": row["file_name"], "sha256": row["sha256"]}
    with write(app.db) as conn:
        events.record(
            conn, app.clock.now(), Actor(who.subject, who.role), "plan_downloaded", detail, track_id, application_id
        )
    return Download(
        db=app.db,
        document_id=int(row["id"]),
        application_id=application_id,
        kind=PLAN_KIND,
        version=round_,
        file_name=row["file_name"],
        size=int(row["size"]),
        file_type=row["file_type"],
        media_type=MEDIA_TYPES.get(row["file_type"], "application/octet-stream"),
        sha256=row["sha256"],
        chunk_count=int(stored["chunks"]),
    )


def _document(conn: Connection, who: Principal, application_id: int, kind: str, version: int | None) -> RowMapping:
    query = sa.select(DOCUMENT).where(DOCUMENT.c.application_id == application_id, DOCUMENT.c.kind == kind)
    rows = list(conn.execute(query.order_by(DOCUMENT.c.version)).mappings())
    if not rows:
        kinds = sorted(
            set(conn.execute(sa.select(DOCUMENT.c.kind).where(DOCUMENT.c.application_id == application_id)).scalars())
        )
        raise NotFound(
            f"application {application_id} has no {kind} document (its documents: {', '.join(kinds) or 'none yet'})"
        )
    current = [r for r in rows if r["current"]]
    if version is None:
        if len(current) != 1:
            versions = ", ".join(str(r["version"]) for r in current) or "none"
            raise InvalidInput(
                f"application {application_id} has {len(current)} current {kind} files (versions {versions}):"
                " name one ({example})",
                field="version",
                example=str(current[0]["version"]) if current else "1",
            )
        return current[0]
    found = next((r for r in rows if r["version"] == version), None)
    if found is None:
        raise NotFound(
            f"application {application_id} has no {kind} version {version}"
            f" (versions: {', '.join(str(r['version']) for r in rows)})"
        )
    if not found["current"] and who.role not in visibility.ALL_VERSIONS:
        raise NotVisible(
            f"{kind} version {version} of application {application_id} was replaced;"
            " an evaluator reads the current files only"
        )
    return found


def stored_files(app: App) -> int:
    """How many files the store holds (each stored once, by hash)."""
    with read(app.db) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(BLOB)).scalar_one())


def verify(app: App) -> list[dict[str, Any]]:
    """Every stored file whose bytes no longer match its SHA-256 (`gongmo documents verify`):
    its hash, sizes, missing chunks, and the documents (application, kind, version) that use it."""
    with read(app.db) as conn:
        return [
            {
                "sha256": bad.sha256,
                "expected_size": bad.expected_size,
                "actual_size": bad.actual_size,
                "actual_sha256": bad.actual_sha256,
                "missing_chunks": list(bad.missing_chunks),
                "documents": bad.documents,
            }
            for bad in files.verify(conn)
        ]
