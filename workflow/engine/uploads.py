"""A plan's documents and its answers to the track's questions, taken inside the receipt window.

Uploading is part of the receipt: it is accepted with the same rule and the same
clock as a plan (Intake.receipt_open, the applicant's extension counting), while
the application is in announcement or receipt. A file is checked whole before
anything is written: its kind is one of the track's, its name is cleaned
(states/documents.clean_name), it is spooled to a temporary file while its
SHA-256 and size are counted (a Spool: writing stops as soon as it passes the
kind's limit, TooLarge), it is not empty, and its bytes are one of the kind's
types (core/filetypes.examine). Only then one write transaction stores it
(core/files, content-addressed: the same bytes twice are stored once) and adds
the next version of its kind, current; the one it replaces stays, not current.

Two ways in, one check and one store:
- `add(..., source, ...)` (the CLI, the rehearsal, tests) copies `source` into
  a Spool of its own: the detector reads a path, the hash and the size must
  describe exactly the bytes that are stored, and a caller's file may still be
  written to.
- `add_spooled(..., path, sha256, size, ...)` (the API) takes a file that its
  caller spooled itself while it read the request (a Spool, the hash and size
  counted on the way): the body is read once and written once, and no second
  copy is made. Only a caller that wrote the file may pass it, and the hash is
  trusted as given; the size is checked against the file on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.engine import Engine as DbEngine

from gongmo.states.documents import clean_name, human_size
from gongmo.states.errors import Conflict, InvalidInput, NotPermitted, TooLarge
from gongmo.states.lifecycle import Role
from gongmo.states.questions import validate_all
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import Clock
from gongmo.workflow.core.config import Loaded
from gongmo.workflow.core.contest_config import DocumentKind, Question, Track
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.files import current_hashes, store_blob
from gongmo.workflow.core.filetypes import examine
from gongmo.workflow.core.lookups import locked_application, track_by_key, track_key_of
from gongmo.workflow.core.models import APPLICATION, CHUNK_BYTES, DOCUMENT
from gongmo.workflow.engine import events
from gongmo.workflow.engine.hooks import NoticeQueue

Row = RowMapping
# The states in which a plan's documents and answers may change: they are part of the receipt.
OPEN_STATES = ("announcement", "receipt")
ROLES = (Role.ADMIN, Role.APPLICANT)
RECEIPT_NOTICE = "receipt_confirmation"
# A Spool hands what it wrote to its hashing thread in batches of about HASH_BATCH bytes, and at
# most HASH_QUEUE of them wait: what an upload holds in memory beyond the file is about 3 MiB.
HASH_BATCH = 1024 * 1024
HASH_QUEUE = 2


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


class Uploads:
    def __init__(self, host: Host) -> None:
        self.host = host

    def accepts(self, application_id: int, kind: str, actor: Actor) -> DocumentKind:
        """The document kind an upload of `kind` to the application is checked against, after the
        checks that need none of its bytes (the role, the application, the kind): the API calls it
        before it reads a request's body."""
        return self._target(application_id, kind, actor)[2]

    def _target(self, application_id: int, kind: str, actor: Actor) -> tuple[str, Track, DocumentKind]:
        """The application's track (key, config) and the kind's spec, the role checked."""
        _check_role(actor, "upload a document")
        track_key = self._track_key(application_id)
        _, track_cfg = self.host.loaded.config.track(track_key)
        return track_key, track_cfg, _kind(track_cfg, kind)

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
        """Store one file, read from `source`, as the next version of `kind` of the application
        (see the module's docstring); `replace` names the current version it replaces, for a kind
        that takes several files. An applicant's ownership is the caller's to check."""
        target = self._target(application_id, kind, actor)
        name = clean_name(file_name)
        _check_replace(replace)
        with Spool(name, target[2]) as spool:
            while piece := source.read(min(CHUNK_BYTES, spool.room)):  # never more than 1 byte past the limit
                spool.write(piece)
            spool.close()
            return self._store(application_id, target, name, spool.path, spool.sha256, spool.size, actor, replace)

    def add_spooled(
        self,
        application_id: int,
        kind: str,
        file_name: str,
        path: Path,
        sha256: str,
        size: int,
        actor: Actor,
        *,
        replace: int | None = None,
    ) -> Upload:
        """Store the file at `path`, which the caller wrote itself and no longer writes to (a
        Spool), with the SHA-256 and size it counted as it wrote it, as `add` does; the file stays
        the caller's to remove."""
        target = self._target(application_id, kind, actor)
        name = clean_name(file_name)
        _check_replace(replace)
        return self._store(application_id, target, name, path, sha256, size, actor, replace)

    def _store(
        self,
        application_id: int,
        target: tuple[str, Track, DocumentKind],
        name: str,
        path: Path,
        sha256: str,
        size: int,
        actor: Actor,
        replace: int | None,
    ) -> Upload:
        """Check the spooled file (_check_file), then store it and its document row in one write
        transaction, the window's rule and the version decided under the track's lock."""
        host = self.host
        track_key, track_cfg, spec = target
        kind = spec.kind
        file_type = _check_file(path, name, spec, size)
        with write(host.db, bulk=True) as conn:
            with path.open("rb") as f:  # before the locks: a big file keeps no track waiting
                store_blob(conn, f, sha256, size, host.clock.now())
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
                "size": size,
                "file_type": file_type,
                "sha256": sha256,
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
        return Upload(doc_id, application_id, kind, version, name, size, file_type, sha256, True, now, replaced)

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
            return track_key_of(conn, application_id)


# -- shared with the intake (a plan's submission) ----------------------------------------------


def missing_kinds(track: Track, current: list[dict[str, Any]]) -> list[str]:
    """The track's required document kinds that have no file among the `current` ones."""
    present = {d["kind"] for d in current}
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


class Spool:
    """A file being received, written to a temporary file (in the system's temp folder) while its
    size and SHA-256 are counted. A write that takes it past its kind's limit refuses it
    (TooLarge, naming the file and the limit) before a byte of that write is kept. As a context
    manager it removes the file on the way out, whatever happened.

    The hash is computed in a thread of its own (hashlib lets go of the GIL), from the same
    pieces in the same order as they are written: a writer (the API's event loop, or `add`'s
    copy) only writes, and hashing 50 MiB (~45 ms) runs beside the receiving instead of after
    it. At most HASH_QUEUE batches of about HASH_BATCH bytes wait for it (a write waits when
    they are all taken), and `close` waits for the last one: `sha256` is then the hash of
    exactly the bytes in the file."""

    def __init__(self, name: str, spec: DocumentKind) -> None:
        self.name = name
        self.spec = spec
        self.size = 0
        self._digest = hashlib.sha256()
        self._batch: list[bytes | memoryview] = []
        self._batched = 0
        self._queue: queue.Queue[list[bytes | memoryview] | None] = queue.Queue(maxsize=HASH_QUEUE)
        self._hasher: threading.Thread | None = None
        fd, raw = tempfile.mkstemp(prefix="gongmo-upload-")
        self.path = Path(raw)
        self._file: BinaryIO | None = os.fdopen(fd, "wb", buffering=0)

    @property
    def room(self) -> int:
        """How many bytes a write may still bring, plus the one that refuses the file."""
        return self.spec.max_bytes + 1 - self.size

    @property
    def sha256(self) -> str:
        """The file's SHA-256, once it is closed."""
        if self._file is not None:
            raise RuntimeError(f"{self.path}: the spool is still open; close it first")
        return self._digest.hexdigest()

    def write(self, data: bytes | memoryview) -> None:
        if self.size + len(data) > self.spec.max_bytes:
            self.size += len(data)
            raise too_large(self.name, self.spec)
        if self._file is None:
            raise RuntimeError(f"{self.path}: the spool is closed")
        if not isinstance(data, bytes) and not (isinstance(data, memoryview) and data.readonly):
            data = bytes(data)  # a piece waits for the hasher: it must not change meanwhile
        self._file.write(data)
        self.size += len(data)
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= HASH_BATCH:
            self._hand_over()

    def close(self) -> None:
        """No more bytes: the file is complete, and hashed (it stays until the spool is discarded)."""
        if self._file is None:
            return
        if self._hasher is None:  # a small file (one batch): no thread for it
            for piece in self._batch:
                self._digest.update(piece)
            self._batch, self._batched = [], 0
        self._hand_over()
        self._stop_hasher()
        self._file.close()
        self._file = None

    def discard(self) -> None:
        """Stop, and remove the file."""
        self._batch, self._batched = [], 0
        self._stop_hasher()
        if self._file is not None:
            self._file.close()
            self._file = None
        self.path.unlink(missing_ok=True)

    def _hand_over(self) -> None:
        if not self._batch:
            return
        if self._hasher is None:
            self._hasher = threading.Thread(target=self._hash, name="gongmo-upload-sha256", daemon=True)
            self._hasher.start()
        self._queue.put(self._batch)
        self._batch, self._batched = [], 0

    def _hash(self) -> None:
        while (batch := self._queue.get()) is not None:
            for piece in batch:
                self._digest.update(piece)

    def _stop_hasher(self) -> None:
        if self._hasher is not None:
            self._queue.put(None)
            self._hasher.join()
            self._hasher = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


def too_large(name: str, spec: DocumentKind) -> TooLarge:
    return TooLarge(
        f"{name}: more than {spec.max_bytes:,} bytes, the most a {spec.kind} file may be"
        f" ({spec.max_mb} MiB); send a smaller file",
        field="file",
        value=name,
    )


def _check_replace(replace: object) -> None:
    if replace is not None and (isinstance(replace, bool) or not isinstance(replace, int) or replace < 1):
        raise InvalidInput(
            "{given}: a version number, 1 or more (see the application's documents)",
            field="replace",
            value=replace,
            shown=repr(replace),
        )


def _check_file(path: Path, name: str, spec: DocumentKind, size: int) -> str:
    """The file's type, once it is known to be of its kind: not empty, within the kind's limit,
    of one of its types; every refusal of the file itself comes from here (or from a Spool)."""
    on_disk = path.stat().st_size
    if on_disk != size:
        raise ValueError(f"{path}: {on_disk:,} bytes on disk, {size:,} counted: the spool was written to since")
    if size > spec.max_bytes:
        raise too_large(name, spec)
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
    return found.type
