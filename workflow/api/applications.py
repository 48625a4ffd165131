"""Applications: list, detail with history, timeline, transitions, submissions, objections."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from gongmo.states.errors import InvalidInput
from gongmo.states.lifecycle import Role
from gongmo.workflow.api import schemas
from gongmo.workflow.api.deps import (
    AdminOrApplicant,
    After,
    Anyone,
    AppId,
    Gongmo,
    TrackFilter,
    check_access,
    track_id,
)
from gongmo.workflow.api.errors import Forbidden, PreconditionRequired, responses
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import MAX_ID
from gongmo.workflow.engine.moves import Moved
from gongmo.workflow.read import timeline, visibility
from gongmo.workflow.stages import review

router = APIRouter(tags=["applications"])
ETAG = re.compile(r'^(?:W/)?"?([0-9]{1,10})"?$')


@router.get("/applications", response_model=schemas.Page, responses=responses(401, 403, 404, 422))
def list_applications(
    a: Gongmo,
    who: Anyone,
    request: Request,
    track: TrackFilter = None,
    state: Annotated[schemas.StateName | None, Query(description="Only this state.")] = None,
    limit: Annotated[int | None, Query(ge=1, le=10_000, description="Rows per page.")] = None,
    after: After = 0,
) -> dict[str, Any]:
    """The applications this token may see (an applicant its own, an evaluator
    those assigned to it without conflict), by number, a page at a time."""
    api = a.loaded.config.api
    size = min(limit or api.page_size, api.max_page_size)
    with read(a.db) as conn:
        tid = track_id(a, conn, track) if track is not None else None
        shown = state.value if state is not None else None
        total, items = visibility.page(a, conn, who, after, size, track_id=tid, state=shown)
    more = len(items) > size
    items = items[:size]
    following = None
    if more:
        following = str(request.url.include_query_params(after=items[-1]["id"], limit=size))
    return {"items": items, "total": total, "next": following}


@router.get(
    "/applications/{application_id}", response_model=schemas.ApplicationDetail, responses=responses(401, 403, 404, 422)
)
def get_application(a: Gongmo, who: Anyone, application_id: AppId, response: Response) -> dict[str, Any]:
    """One application with its history (every state change), its decisions
    and its notices, as this token may see them (workflow/visibility.py: an
    applicant never sees its evaluators, and no result before the office
    releases it); the ETag is its version (send it back as If-Match)."""
    with read(a.db) as conn:
        shown = visibility.detail(a, conn, who, application_id)
    response.headers["ETag"] = f'"{shown["version"]}"'
    return shown


class TimelineRow(BaseModel):
    """One row of the timeline: its kind (`source`), its instant, and its own fields as the
    visibility rule lets the caller read them (an audit row's trigger, from and to, actor and
    reason; an event's kind and detail; a calendar change; a notice with its delivery)."""

    model_config = ConfigDict(extra="allow")
    source: Literal["audit", "event", "calendar", "notice"]
    at: datetime


class TimelineOut(BaseModel):
    id: int
    state: str
    version: int
    timeline: list[TimelineRow] = Field(description="Audit rows, events, calendar changes and notices, in time order.")


@router.get(
    "/applications/{application_id}/timeline", response_model=TimelineOut, responses=responses(401, 403, 404, 422)
)
def get_timeline(a: Gongmo, who: Anyone, application_id: AppId, response: Response) -> dict[str, Any]:
    """One application's story in time order, the rows the console's application page shows
    (read/timeline: its history, events, calendar changes and notices merged), as this token
    may see them: the same rule as GET /applications/{id} (an applicant its own, without the
    committee's events or unsent mail; an evaluator what it is assigned). The ETag is its version."""
    with read(a.db) as conn:
        shown = timeline.of_application(a, conn, who, application_id)
    response.headers["ETag"] = f'"{shown["version"]}"'
    return {"id": shown["id"], "state": shown["state"], "version": shown["version"], "timeline": shown["timeline"]}


@router.post(
    "/applications/{application_id}/transitions",
    response_model=Moved,
    responses=responses(401, 403, 404, 409, 422, 428),
)
def transition(
    a: Gongmo,
    who: AdminOrApplicant,
    application_id: AppId,
    body: schemas.TransitionIn,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=40, description='The version decided on, e.g. "3".')] = None,
) -> Any:
    """Fire a trigger (e.g. pass_review, disqualify with a reason, withdraw).
    The version you decided on is required (If-Match or `version`): if someone
    changed the application since, the answer is 409 and nothing changes."""
    version = _version(if_match, body.version)
    with read(a.db) as conn:
        check_access(a, conn, who, application_id)
    moved = a.moves.apply(
        application_id,
        body.trigger.value,
        who.actor,
        body.reason or None,
        version,
        waitlist_position=body.waitlist_position,
    )
    response.headers["ETag"] = f'"{moved.version}"'
    return moved


def _version(if_match: str | None, field: int | None) -> int:
    header = None
    if if_match is not None:
        found = ETAG.match(if_match.strip())
        if found is None:
            raise InvalidInput(f'header If-Match = {if_match!r}: send the version as an ETag, e.g. If-Match: "3"')
        header = int(found.group(1))
        if not 1 <= header <= MAX_ID:
            raise InvalidInput(
                f"header If-Match = {if_match!r}: a version is 1 to {MAX_ID}; send the ETag of GET /applications/{{id}}"
            )
    if header is not None and field is not None and header != field:
        raise InvalidInput(f"If-Match {header} and body field version {field} disagree: send one of them")
    version = header if header is not None else field
    if version is None:
        raise PreconditionRequired(
            "no version: send If-Match with the ETag of GET /applications/{id} (or a `version` field),"
            " so a decision taken on a stale page is refused instead of applied"
        )
    return version


@router.post(
    "/applications",
    response_model=Moved,
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 404, 409, 422),
)
def submit(a: Gongmo, who: AdminOrApplicant, body: schemas.SubmissionIn, response: Response) -> Any:
    """Submit a plan inside the receipt window; the answer carries the receipt
    number. Outside the window: 409 with the window (`opens`, `closes`)."""
    if who.role == Role.APPLICANT:
        if body.applicant is not None and body.applicant != who.subject:
            raise Forbidden(f"field applicant = {body.applicant!r}: an applicant token submits for {who.subject} only")
        code = who.subject
    elif body.applicant is None:
        raise InvalidInput("field applicant is missing: an admin token names the applicant's code, e.g. 41110")
    else:
        code = body.applicant
    moved = a.moves.submit(
        body.track,
        code,
        body.national_krw,
        body.local_krw,
        who.actor,
        body.title,
        body.project_type,
        body.years,
        answers=body.answers,
    )
    response.headers["Location"] = f"/applications/{moved.application_id}"
    response.headers["ETag"] = f'"{moved.version}"'
    return moved


@router.post(
    "/applications/{application_id}/objections",
    status_code=status.HTTP_201_CREATED,
    responses=responses(401, 403, 404, 409, 422),
)
def object_to(a: Gongmo, who: AdminOrApplicant, application_id: AppId, body: schemas.ObjectionIn) -> dict[str, int]:
    """A disqualified applicant objects, inside the objection window."""
    with read(a.db) as conn:
        check_access(a, conn, who, application_id)
    return {"objection_id": review.file_objection(a, application_id, body.grounds, who.actor)}
