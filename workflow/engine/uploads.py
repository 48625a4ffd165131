"""A plan's documents and its answers to the track's questions, taken inside the receipt window.

Uploading is part of the receipt: it is accepted with the same rule and the same
clock as a plan (Intake.receipt_open, the applicant's extension counting), while
the application is in announcement or receipt. A file is checked whole before
anything is written: its kind is one of the track's, its name is cleaned
(states/documents.clean_name), it is streamed to a temporary file while its
SHA-256 and size are counted (reading stops as soon as it passes the kind's
limit), it is not empty, and its bytes are one of the kind's types
(core/filetypes.examine). Only then one write transaction stores it (core/files,
content-addressed: the same bytes twice are stored once) and adds the next
version of its kind, current; the one it replaces stays, not current.

Why a temporary copy, even when the caller holds a file on disk already (the
API's spooled upload): the detector reads a path, the hash and the size must
describe exactly the bytes that are stored, and a caller's file may still be
written to. One copy in the system's temp folder, read back in 1 MiB pieces,
costs one more sequential write; memory stays at one piece.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.engine import Engine as DbEngine

from gongmo.states.documents import clean_name, human_size
from gongmo.states.errors import Conflict, InvalidInput, NotFound, NotPermitted
from gongmo.states.lifecycle import Role
from gongmo.states.questions import validate_all
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import Clock
from gongmo.workflow.core.config import Loaded
from gongmo.workflow.core.contest_config import DocumentKind, Question, Track
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.files import current_hashes, store_blob
from gongmo.workflow.core.filetypes import examine
from gongmo.workflow.core.lookups import locked_application, track_by_key
from gongmo.workflow.core.models import APPLICATION, CHUNK_BYTES, DOCUMENT, TRACK
from gongmo.workflow.engine import events
from gongmo.workflow.engine.hooks import NoticeQueue

Row = RowMapping
# The states in which a plan's documents and answers may change: they are part of the receipt.
OPEN_STATES = ("announcement", "receipt")
ROLES = (Role.ADMIN, Role.APPLICANT)
RECEIPT_NOTICE = "receipt_confirmation"


class Receipt(Protocol):
    def receipt_open(self, conn: Connection, track: Row, application_id: int | None) -> datetime: ...


class Host(Protocol):
    """What the uploads read of the Mover they serve."""

    db: DbEngine
    loaded: Loaded
    clock: Clock
    queue: NoticeQueue

    @property
    def intake(self) -> Receipt: ...  # the window's rule (Intake.receipt_open)


@dataclass(frozen=True)
class Upload:
    document_id: int
    application_id: int
    kind: str
    version: int
    file_name: str
    size: int
    file_type: str
    sha256: str
    current: bool
    uploaded_at: datetime  # aware UTC
    replaced_version: int | None  # the version this one made not current, if any


@dataclass(frozen=True)
class _Spooled:
    path: Path
    sha256: str
    size: int
    file_type: str


class Uploads:
    def __init__(self, host: Host) -> None:
        self.host = host

    def add(
        self,
        application_id: int,
        kind: str,
        file_name: str,
        source: BinaryIO,
        actor: Actor,
        *,
        replace: int | None = None,
    ) -> Upload:
        """Store one file as the next version of `kind` of the application (see the module's
        docstring); `replace` names the current version it replaces, for a kind that takes
        several files. An applicant's ownership is the caller's to check."""
        host = self.host
        _check_role(actor, "upload a document")
        track_key = self._track_key(application_id)
        _, track_cfg = host.loaded.config.track(track_key)
        spec = _kind(track_cfg, kind)
        name = clean_name(file_name)
        if replace is not None and (isinstance(replace, bool) or not isinstance(replace, int) or replace < 1):
            raise InvalidInput(
                "{given}: a version number, 1 or more (see the application's documents)",
                field="replace",
                value=replace,
                shown=repr(replace),
            )
        with _spooled(source, name, spec) as spooled, write(host.db) as conn:
            with spooled.path.open("rb") as f:  # before the locks: a big file keeps no track waiting
                store_blob(conn, f, spooled.sha256, spooled.size, host.clock.now())
            track = track_by_key(conn, host.loaded.config, track_key, lock=True)
            now = host.intake.receipt_open(conn, track, application_id)
            row = locked_application(conn, application_id)
            _check_state(row, "its documents")
            version, replaced = _next_version(conn, application_id, spec, replace)
            values = {
                "application_id": application_id,
                "kind": kind,
                "version": version,
                "file_name": name,
                "size": spooled.size,
                "file_type": spooled.file_type,
                "sha256": spooled.sha256,
                "current": True,
                "uploaded_at": now,
                "actor": actor.name,
                "role": actor.role.value,
            }
            doc_id = int(conn.execute(sa.insert(DOCUMENT).returning(DOCUMENT.c.id), values).scalar_one())
            detail = {k: values[k] for k in ("kind", "version", "file_name", "size", "file_type", "sha256")}
            detail["replaced_version"] = replaced
            events.record(conn, now, actor, "document_uploaded", detail, track["id"], application_id)
            if row["state"] == "receipt":  # a replacement after the receipt: the applicant's proof, again
                extra = {"documents": receipt_documents(conn, track_cfg, application_id)}
                host.queue(conn, RECEIPT_NOTICE, [application_id], track, now, extra, tag=f"documents-{doc_id}")
        return Upload(
            doc_id,
            application_id,
            kind,
            version,
            name,
            spooled.size,
            spooled.file_type,
            spooled.sha256,
            True,
            now,
            replaced,
        )

    def answer(self, application_id: int, answers: Mapping[str, object], actor: Actor) -> dict[str, object]:
        """Change some answers of the application (a None value removes one): merged over the
        stored ones, each validated, inside the receipt window; returns the answers stored."""
        host = self.host
        _check_role(actor, "answer the track's questions")
        track_key = self._track_key(application_id)
        _, track_cfg = host.loaded.config.track(track_key)
        validate_all(track_cfg.questions, answers, complete=False)  # a bad answer is refused before any lock
        with write(host.db) as conn:
            track = track_by_key(conn, host.loaded.config, track_key, lock=True)
            now = host.intake.receipt_open(conn, track, application_id)
            row = locked_application(conn, application_id)
            _check_state(row, "its answers")
            old = stored_answers(row)
            new = merged_answers(track_cfg.questions, old, answers, complete=False)
            changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
            if changed:
                conn.execute(
                    sa.update(APPLICATION)
                    .where(APPLICATION.c.id == application_id)
                    .values(answers=answers_json(new), updated_at=now)
                )
                detail = {"changed": {k: {"old": old.get(k), "new": new.get(k)} for k in changed}}
                events.record(conn, now, actor, "answers_changed", detail, track["id"], application_id)
        return new

    def _track_key(self, application_id: int) -> str:
        with read(self.host.db) as conn:
            key = conn.execute(
                sa.select(TRACK.c.key)
                .join(APPLICATION, APPLICATION.c.track_id == TRACK.c.id)
                .where(APPLICATION.c.id == application_id)
            ).scalar()
        if key is None:
            raise NotFound(f"no application {application_id}: see `gongmo status` or `gongmo show`")
        return str(key)


# -- shared with the intake (a plan's submission) ----------------------------------------------


def missing_kinds(conn: Connection, track: Track, application_id: int) -> list[str]:
    """The track's required document kinds that have no current file for this application."""
    present = {d["kind"] for d in current_hashes(conn, application_id)}
    return [d.kind for d in track.documents if d.required and d.kind not in present]


def missing_documents(kinds: list[str], track: Track) -> InvalidInput:
    """The refusal of a plan whose required documents are not all there."""
    names = ", ".join(f"{k} ({d.name_en})" for k in kinds if (d := track.document_kind(k)) is not None)
    return InvalidInput(
        f"{', '.join(kinds)} missing: a plan is received only with every required document"
        f" ({names}); upload them first, then submit",
        field="documents",
        value=kinds,
        shown=", ".join(kinds),
    )


def receipt_documents(conn: Connection, track: Track, application_id: int) -> list[dict[str, Any]]:
    """The current documents as the receipt confirmation lists them: the kind (and its names in
    both languages), file name, size (bytes, grouped, and human), SHA-256 and version."""
    order = {d.kind: i for i, d in enumerate(track.documents)}  # as the track declares its kinds
    rows = sorted(current_hashes(conn, application_id), key=lambda d: (order.get(d["kind"], len(order)), d["version"]))
    out = []
    for d in rows:
        spec = track.document_kind(d["kind"])
        out.append(
            {
                "kind": d["kind"],
                "name_ko": spec.name_ko if spec else d["kind"],
                "name_en": spec.name_en if spec else d["kind"],
                "file_name": d["file_name"],
                "size": int(d["size"]),
                "size_bytes": f"{int(d['size']):,}",
                "size_human": human_size(int(d["size"])),
                "sha256": d["sha256"],
                "version": int(d["version"]),
                "file_type": d["file_type"],
            }
        )
    return out


def stored_answers(row: Row) -> dict[str, object]:
    text = row["answers"]
    value = json.loads(text) if text else {}
    return dict(value) if isinstance(value, dict) else {}


def merged_answers(
    questions: list[Question], stored: Mapping[str, object], given: Mapping[str, object], *, complete: bool
) -> dict[str, object]:
    """`given` over `stored` (None removes an answer), each validated, in the track's question order.
    A stored answer to a question the config no longer asks is dropped."""
    asked = {q.key for q in questions}
    merged = {k: v for k, v in stored.items() if k in asked} | dict(given)
    return {k: v for k, v in validate_all(questions, merged, complete=complete).items() if v is not None}


def answers_json(answers: Mapping[str, object]) -> str:
    return json.dumps(answers, ensure_ascii=False, sort_keys=True)


# -- the checks --------------------------------------------------------------------------------


def _check_role(actor: Actor, what: str) -> None:
    if actor.role not in ROLES:
        raise NotPermitted(what, actor.role.value, sorted(r.value for r in ROLES))


def _kind(track: Track, kind: str) -> DocumentKind:
    spec = track.document_kind(kind)
    if spec is None:
        kinds = ", ".join(d.kind for d in track.documents) or "none (this track takes no documents)"
        raise InvalidInput(
            f"{{given}} is not a document kind of track {track.key} (its kinds: {kinds})",
            field="kind",
            value=kind,
            shown=repr(kind),
        )
    return spec


def _check_state(row: Row, what: str) -> None:
    if row["state"] not in OPEN_STATES:
        raise Conflict(
            f"application {row['id']} is in {row['state']}: {what} are part of the receipt and change only"
            " in announcement or receipt, before the close"
        )


def _next_version(
    conn: Connection, application_id: int, spec: DocumentKind, replace: int | None
) -> tuple[int, int | None]:
    """The next version of the kind, with the current file(s) it makes not current (under the
    application's lock): a kind of one file replaces it; a kind of several replaces the version
    `replace` names, or adds one while there is room."""
    rows = conn.execute(
        sa.select(DOCUMENT.c.id, DOCUMENT.c.version, DOCUMENT.c.current).where(
            DOCUMENT.c.application_id == application_id, DOCUMENT.c.kind == spec.kind
        )
    ).all()
    version = max((int(r.version) for r in rows), default=0) + 1
    current = sorted(int(r.version) for r in rows if r.current)
    if replace is not None and replace not in current:
        shown = ", ".join(map(str, current)) or "none yet"
        raise InvalidInput(
            f"{{given}} is not a current {spec.kind} file of application {application_id} (current versions: {shown})",
            field="replace",
            value=replace,
        )
    if spec.max_files == 1:
        retired = current
    elif replace is not None:
        retired = [replace]
    elif len(current) >= spec.max_files:
        raise Conflict(
            f"{spec.kind}: {len(current)} files already, the most this kind takes; replace one of them ({{example}})",
            field="replace",
            example=str(current[0]),
        )
    else:
        retired = []
    if retired:
        conn.execute(
            sa.update(DOCUMENT)
            .where(
                DOCUMENT.c.application_id == application_id,
                DOCUMENT.c.kind == spec.kind,
                DOCUMENT.c.version.in_(retired),
            )
            .values(current=False)
        )
    return version, (retired[-1] if retired else None)


@contextmanager
def _spooled(source: BinaryIO, name: str, spec: DocumentKind) -> Iterator[_Spooled]:
    """`source` copied to a temporary file (removed afterwards), hashed and counted on the way,
    and its type read from its bytes; every refusal of the file itself comes from here."""
    limit = spec.max_bytes
    digest = hashlib.sha256()
    size = 0
    fd, raw = tempfile.mkstemp(prefix="gongmo-upload-")
    path = Path(raw)
    try:
        with os.fdopen(fd, "wb") as out:
            while True:
                # never more than one byte past the limit: the count that refuses is exact
                piece = source.read(min(CHUNK_BYTES, limit + 1 - size))
                if not piece:
                    break
                size += len(piece)
                if size > limit:
                    raise InvalidInput(
                        f"{name}: more than {limit:,} bytes, the most a {spec.kind} file may be"
                        f" ({spec.max_mb} MiB); send a smaller file",
                        field="file",
                        value=name,
                    )
                digest.update(piece)
                out.write(piece)
        if size == 0:
            raise InvalidInput(
                f"{name}: the file is empty (0 bytes); send the {spec.kind} file itself", field="file", value=name
            )
        found = examine(path)
        if found.type is None or found.type not in spec.types:
            raise InvalidInput(
                f"{spec.kind}: {name} is not an accepted type: {found.why}; this kind takes {', '.join(spec.types)}",
                field="file",
                value=name,
            )
        yield _Spooled(path, digest.hexdigest(), size, found.type)
    finally:
        path.unlink(missing_ok=True)
