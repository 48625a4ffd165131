"""Plan documents and answers over HTTP: upload (multipart), list, download, and the answers to
the track's questions.

An upload is read once and written once. The route is asynchronous and parses the
multipart/form-data body itself as it arrives (python-multipart's push parser): the bytes of
its `file` part go straight into one temporary file (engine/uploads.Spool: a plain blocking
write of each received piece, ~64 KiB, to the page cache, from the event loop), which counts
them, and hashes them in a thread of its own while the next ones arrive; a `replace` field is
kept. Nothing else of the body is kept.
Then the engine, in the thread pool, checks that file (empty, its type from its bytes) and
stores it (`moves.uploads.add_spooled`): no second copy and no second hash. Before a byte of
the body is read, the caller is authenticated (the Limits middleware, limits.py, which also
caps the body at the largest kind's limit plus the framing), may see the application, and the
kind is one of its track's. A file past its kind's limit is refused (413, TooLarge, naming the
file and the limit) as soon as the count passes it; nothing of it is kept, and the rest of the
body is read and dropped, so that a client that sends its whole body before it reads the
answer still reads the refusal. A body that is not multipart, has no `file` part, or breaks
off inside a part is 422, in one line.

A download is streamed too, one stored chunk at a time, with the file's Korean name in
Content-Disposition (RFC 6266 / RFC 5987), its SHA-256 as the ETag and as Repr-Digest (RFC
9530); it is recorded in the application's events (who, which file, when).
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import Field, StringConstraints
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.concurrency import run_in_threadpool

from gongmo.states.documents import MEDIA_TYPES, clean_name, content_disposition
from gongmo.states.errors import GongmoError, InvalidInput
from gongmo.workflow.api import schemas
from gongmo.workflow.api.deps import AdminOrApplicant, Anyone, AppId, Gongmo, check_access
from gongmo.workflow.api.errors import responses
from gongmo.workflow.core.contest_config import DocumentKind
from gongmo.workflow.core.db import read
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.engine.app import App
from gongmo.workflow.engine.uploads import Spool
from gongmo.workflow.read import documents as documents_read

router = APIRouter(tags=["documents"])
# The media types a download is served as: one per accepted file type.
SERVED = sorted(set(MEDIA_TYPES.values()))

KIND_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
Kind = Annotated[str, Path(pattern=KIND_PATTERN, description="A document kind of the track, e.g. plan, budget, annex.")]
Version = Annotated[int, Field(ge=1, le=2**31 - 1)]
QuestionKey = Annotated[str, StringConstraints(pattern=KIND_PATTERN)]


# The upload's body as the OpenAPI document shows it: the route reads it itself (UploadForm).
UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "The file (multipart/form-data field `file`, with its file name).",
                    },
                    "replace": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 2**31 - 1,
                        "description": "Replace this version of the kind (an annex; plan and budget replace"
                        " their one file).",
                    },
                },
            }
        }
    },
}


@router.post(
    "/applications/{application_id}/documents/{kind}",
    response_model=schemas.DocumentOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 404, 409, 413, 422),
    openapi_extra={"requestBody": UPLOAD_BODY},
)
async def upload(
    request: Request,
    a: Gongmo,
    who: AdminOrApplicant,
    application_id: AppId,
    kind: Kind,
    replace_query: Annotated[
        Version | None, Query(alias="replace", description="The same as the form field `replace`.")
    ] = None,
) -> Any:
    """Upload one file of a kind the track expects, inside the receipt window (the applicant's
    extension counts). The type is decided from the bytes; a file too large for its kind is 413,
    an empty one, one of the wrong type or with no usable name 422, one outside the window 409;
    nothing is stored then. A second upload of a one-file kind replaces the first (which stays in
    the history, no longer current)."""
    spec = await run_in_threadpool(_upload_target, a, who, application_id, kind)
    form = UploadForm(spec)
    try:
        await form.read(request)
        chosen = form.replace if form.replace is not None else replace_query
        spool = form.spool
        assert spool is not None  # form.read refuses a body without its file
        uploaded = await run_in_threadpool(
            a.moves.uploads.add_spooled,
            application_id,
            kind,
            form.file_name,
            spool.path,
            spool.sha256,
            spool.size,
            who.actor,
            replace=chosen,
        )
    finally:
        form.discard()
    return _plain(uploaded)


def _upload_target(a: App, who: Principal, application_id: int, kind: str) -> DocumentKind:
    """Who may upload what, before any of the body is read: the application is the caller's to
    see, and the kind one of its track's (its spec: the limit the body is counted against)."""
    with read(a.db) as conn:
        check_access(a, conn, who, application_id)
    return a.moves.uploads.accepts(application_id, kind, who.actor)


FILE_FIELD = "file"
REPLACE_FIELD = "replace"
FIELD_MAX_BYTES = 64  # a `replace` value is a version number; other fields are dropped unread
HEADER_MAX_BYTES = 8 * 1024  # one header line of a part (a long Korean file name fits)


def _not_multipart(why: str) -> InvalidInput:
    return InvalidInput(
        f"body: {why}; send multipart/form-data with the file in the form field 'file'",
        field=FILE_FIELD,
    )


class UploadForm:
    """An upload's multipart/form-data body, read as it arrives: the `file` part into a Spool, a
    `replace` field kept, every other part dropped. A refusal of the body or of the file stops
    the keeping; the rest of the body is still read (and dropped) before it is raised."""

    def __init__(self, spec: DocumentKind) -> None:
        self.spec = spec
        self.spool: Spool | None = None
        self.file_name = ""
        self.replace: int | None = None
        self._files = 0
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._part: str | None = None  # "file", "replace", or None: a part to drop
        self._field = bytearray()
        self._file_ended = False

    async def read(self, request: Request) -> None:
        refusal: GongmoError | None = None
        try:
            parser = self._parser(request.headers.get("content-type"))
        except GongmoError as exc:
            refusal, parser = exc, None
        async for piece in request.stream():
            if refusal is not None or parser is None:
                continue  # refused: the rest of the body is read and dropped
            try:
                parser.write(piece)
            except GongmoError as exc:
                refusal = exc
            except FormParserError as exc:
                refusal = _not_multipart(f"not valid multipart/form-data ({_first_line(exc)})")
        if refusal is None and parser is not None:
            parser.finalize()
            if self.spool is None:
                refusal = InvalidInput(
                    "{field} missing: send the file as a multipart/form-data part named 'file'",
                    field=FILE_FIELD,
                )
            elif not self._file_ended or parser.state != MultipartState.END:
                refusal = _not_multipart("not valid multipart/form-data (it ends before its closing boundary)")
        if refusal is not None:
            self.discard()
            raise refusal
        assert self.spool is not None
        self.spool.close()  # the hash of the last bytes is computed: a few ms at most

    def discard(self) -> None:
        if self.spool is not None:
            self.spool.discard()

    def _parser(self, content_type: str | None) -> MultipartParser:
        media, options = parse_options_header(content_type)
        if media != b"multipart/form-data":
            shown = media.decode("latin-1") or "none"
            raise _not_multipart(f"Content-Type {shown[:60]!r} is not multipart/form-data")
        boundary = options.get(b"boundary")
        if not boundary:
            raise _not_multipart("its Content-Type names no boundary")
        callbacks: Any = {
            "on_part_begin": self._on_part_begin,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
        }
        try:
            return MultipartParser(boundary, callbacks, max_header_size=HEADER_MAX_BYTES)
        except FormParserError as exc:
            raise _not_multipart(f"its boundary is not usable ({_first_line(exc)})") from None

    def _on_part_begin(self) -> None:
        self._disposition = b""
        self._part = None

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        if bytes(self._header_name).strip().lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = _text(options.get(b"name", b""))
        if name == FILE_FIELD:
            if b"filename" not in options:
                raise InvalidInput(
                    "{field} is a plain form field: send the file itself, a part with its file name", field=FILE_FIELD
                )
            self._files += 1
            if self._files > 1:
                raise InvalidInput("{field}: two files; send one file per upload", field=FILE_FIELD)
            self.file_name = _text(options[b"filename"])
            self.spool = Spool(clean_name(self.file_name), self.spec)
            self._part = FILE_FIELD
        elif name == REPLACE_FIELD and b"filename" not in options:
            self._part = REPLACE_FIELD
            self._field.clear()

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part == FILE_FIELD:
            assert self.spool is not None
            # a blocking write of one received piece (64 KiB or so) to the page cache; the hash
            # is the spool's thread's (a view of bytes, which do not change, is kept until then)
            self.spool.write(memoryview(data)[start:end] if isinstance(data, bytes) else data[start:end])
        elif self._part == REPLACE_FIELD:
            self._field += data[start:end]
            if len(self._field) > FIELD_MAX_BYTES:
                raise _bad_replace(bytes(self._field[:FIELD_MAX_BYTES]) + b"...")

    def _on_part_end(self) -> None:
        if self._part == FILE_FIELD:
            self._file_ended = True
        elif self._part == REPLACE_FIELD:
            text = _text(bytes(self._field)).strip()
            if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 2**31 - 1):
                raise _bad_replace(bytes(self._field))
            self.replace = int(text)
        self._part = None


def _bad_replace(given: bytes) -> InvalidInput:
    shown = repr(_text(given))
    return InvalidInput(
        "{given}: a version number, 1 or more (see the application's documents)",
        field=REPLACE_FIELD,
        value=_text(given),
        shown=shown,
    )


def _text(raw: bytes) -> str:
    """A header parameter or a field's value as text: UTF-8, or Latin-1 if it is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]


@router.get(
    "/applications/{application_id}/documents",
    response_model=list[schemas.DocumentRow],
    responses=responses(401, 403, 404, 422),
)
def list_documents(a: Gongmo, who: Anyone, application_id: AppId) -> Any:
    """Every stored version of the application's documents (current and replaced), by kind
    and version. An evaluator sees those of the applications assigned to it without conflict."""
    with read(a.db) as conn:
        check_access(a, conn, who, application_id)
        return documents_read.listing(a, conn, who, application_id)


@router.get(
    "/applications/{application_id}/documents/{kind}",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The file's bytes (Content-Disposition carries its name; ETag and Repr-Digest its SHA-256).",
            "content": {media: {"schema": {"type": "string", "format": "binary"}} for media in SERVED},
        },
        **responses(401, 403, 404, 422),
    },
)
def download(
    a: Gongmo,
    who: Anyone,
    application_id: AppId,
    kind: Kind,
    version: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="This version (default: the current one).")
    ] = None,
) -> StreamingResponse:
    """Download a document: the current file of the kind, or one version. Admins download every
    file, an applicant its own, an evaluator those of the applications assigned to it without a
    conflict (others: 403). Each download is recorded in the application's events."""
    found = documents_read.open_download(a, who, application_id, kind, version)
    digest = base64.b64encode(bytes.fromhex(found.sha256)).decode("ascii")
    headers = {
        "Content-Length": str(found.size),
        "Content-Disposition": content_disposition(found.file_name),
        "ETag": f'"{found.sha256}"',
        "Repr-Digest": f"sha-256=:{digest}:",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
    return StreamingResponse(found.chunks(), media_type=found.media_type, headers=headers)


AnswersIn = Annotated[
    dict[QuestionKey, Any],
    Body(
        description='Question key -> answer (null removes one), e.g. {"living_lab": true}.',
        examples=[{"living_lab": True}],
    ),
]


@router.put(
    "/applications/{application_id}/answers",
    response_model=dict[str, Any],
    responses=responses(401, 403, 404, 409, 422),
)
def put_answers(a: Gongmo, who: AdminOrApplicant, application_id: AppId, body: AnswersIn) -> Any:
    """Give or change answers to the track's questions until the close (merged with the stored
    ones; null removes one). A bad answer is refused naming the question; returns every stored
    answer."""
    with read(a.db) as conn:
        check_access(a, conn, who, application_id)
    return a.moves.uploads.answer(application_id, body, who.actor)


@router.get(
    "/applications/{application_id}/answers",
    response_model=dict[str, Any],
    responses=responses(401, 403, 404, 422),
)
def get_answers(a: Gongmo, who: Anyone, application_id: AppId) -> Any:
    """The stored answers to the track's questions (an evaluator's: on an application assigned to it)."""
    with read(a.db) as conn:
        return documents_read.answers(a, conn, who, application_id)


def _plain(uploaded: Any) -> dict[str, Any]:
    """An Upload (a dataclass or a model) as the response's fields."""
    return {name: getattr(uploaded, name) for name in schemas.DocumentOut.model_fields if hasattr(uploaded, name)}
