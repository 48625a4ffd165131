"""Plan documents and answers over HTTP: upload (multipart), list, download, and the answers to
the track's questions.

An upload is streamed: starlette spools the multipart body to a temporary file as it arrives (a
megabyte in memory at most, the rest on disk), and the route hands that file to
`moves.uploads.add`, which hashes it, checks it and stores it in chunks. The Limits middleware
(limits.py) lets an upload's body be as large as the largest file any document kind accepts, and
the kind's own limit is checked by the upload (413 with the file's name and the kind's limit).

A download is streamed too, one stored chunk at a time, with the file's Korean name in
Content-Disposition (RFC 6266 / RFC 5987), its SHA-256 as the ETag and as Repr-Digest (RFC
9530); it is recorded in the application's events (who, which file, when).
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, File, Form, Path, Query, UploadFile, status
from fastapi.responses import StreamingResponse
from pydantic import Field, StringConstraints

from gongmo.states.documents import MEDIA_TYPES, content_disposition
from gongmo.states.errors import InvalidInput
from gongmo.workflow.api import schemas
from gongmo.workflow.api.deps import AdminOrApplicant, Anyone, AppId, Gongmo, check_access
from gongmo.workflow.api.errors import TooLarge, responses
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import APPLICATION, TRACK
from gongmo.workflow.read import documents as documents_read

router = APIRouter(tags=["documents"])
# The media types a download is served as: one per accepted file type.
SERVED = sorted(set(MEDIA_TYPES.values()))

KIND_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
Kind = Annotated[str, Path(pattern=KIND_PATTERN, description="A document kind of the track, e.g. plan, budget, annex.")]
Version = Annotated[int, Field(ge=1, le=2**31 - 1)]
QuestionKey = Annotated[str, StringConstraints(pattern=KIND_PATTERN)]


@router.post(
    "/applications/{application_id}/documents/{kind}",
    response_model=schemas.DocumentOut,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 404, 409, 413, 422),
)
def upload(
    a: Gongmo,
    who: AdminOrApplicant,
    application_id: AppId,
    kind: Kind,
    file: Annotated[UploadFile, File(description="The file (multipart/form-data field `file`).")],
    replace: Annotated[
        Version | None,
        Form(description="Replace this version of the kind (an annex; plan and budget replace their one file)."),
    ] = None,
    replace_query: Annotated[
        Version | None, Query(alias="replace", description="The same as the form field `replace`.")
    ] = None,
) -> Any:
    """Upload one file of a kind the track expects, inside the receipt window (the applicant's
    extension counts). The type is decided from the bytes; a file too large for its kind is 413,
    an empty one, one of the wrong type or with no usable name 422, one outside the window 409;
    nothing is stored then. A second upload of a one-file kind replaces the first (which stays in
    the history, no longer current)."""
    with read(a.db) as conn:
        check_access(a, conn, who, application_id)
        track_key = conn.execute(
            sa.select(TRACK.c.key)
            .join(APPLICATION, APPLICATION.c.track_id == TRACK.c.id)
            .where(APPLICATION.c.id == application_id)
        ).scalar_one()
    chosen = replace if replace is not None else replace_query
    try:
        uploaded = a.moves.uploads.add(application_id, kind, file.filename or "", file.file, who.actor, replace=chosen)
    except InvalidInput as exc:
        spec = a.loaded.config.track(track_key)[1].document_kind(kind)
        if exc.field == "file" and spec is not None and (file.size or 0) > spec.max_bytes:
            raise TooLarge(exc.template, field=exc.field, value=exc.value, shown=exc.shown) from None
        raise
    return _plain(uploaded)


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
        check_access(a, conn, who, application_id)
        stored = conn.execute(sa.select(APPLICATION.c.answers).where(APPLICATION.c.id == application_id)).scalar()
    return json.loads(stored) if stored else {}


def _plain(uploaded: Any) -> dict[str, Any]:
    """An Upload (a dataclass or a model) as the response's fields."""
    return {name: getattr(uploaded, name) for name in schemas.DocumentOut.model_fields if hasattr(uploaded, name)}
