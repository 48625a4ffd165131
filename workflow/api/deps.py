"""What every route needs: the app, the caller, and what the caller may see."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Connection

from states.committee import conflict
from states.errors import NotFound
from states.lifecycle import Role
from workflow import committee, tokens
from workflow.api.errors import Forbidden, Unauthorized
from workflow.app import App
from workflow.config import KEY_PATTERN, ConfigError
from workflow.db import read, write
from workflow.models import APPLICANT, APPLICATION, ASSIGNMENT, MAX_ID, TRACK
from workflow.tokens import Principal

bearer = HTTPBearer(auto_error=False, description="An API token from `gongmo tokens create` (shown once).")

AppId = Annotated[int, Path(ge=1, le=MAX_ID, description="The application's number.")]
TrackKey = Annotated[str, Path(pattern=KEY_PATTERN, description="A track's key, e.g. strong-small-2024.")]
TrackFilter = Annotated[str | None, Query(pattern=KEY_PATTERN, description="Only this track.")]
After = Annotated[int, Query(ge=0, le=MAX_ID, description="Continue after this id (the `next` of a page).")]


def gongmo(request: Request) -> App:
    return request.app.state.gongmo  # type: ignore[no-any-return]


def caller(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    a = gongmo(request)
    if credentials is None:
        raise Unauthorized(
            "no API token: send the header 'Authorization: Bearer <token>' (the office creates tokens with"
            " `gongmo tokens create`)"
        )
    now = a.clock.now()
    with read(a.db) as conn:
        found = tokens.authenticate(conn, credentials.credentials, now)
    if found is None:
        shown = credentials.credentials[:12]
        raise Unauthorized(f"API token {shown!r}... is unknown or revoked: ask the office for a new one")
    if tokens.needs_touch(found.last_used_at, now):
        with write(a.db) as conn:
            tokens.touch(conn, found.token_id, now)
    return found


def allow(*roles: Role) -> Callable[..., Principal]:
    names = ", ".join(r.value for r in roles)

    def check(request: Request, who: Annotated[Principal, Depends(caller)]) -> Principal:
        if who.role not in roles:
            role = who.role.value
            raise Forbidden(
                f"{_article(role)} {role} token may not {request.method} {request.url.path} (allowed: {names})"
            )
        return who

    return check


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


Anyone = Annotated[Principal, Depends(caller)]
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]
AdminOrApplicant = Annotated[Principal, Depends(allow(Role.ADMIN, Role.APPLICANT))]
AdminOrEvaluator = Annotated[Principal, Depends(allow(Role.ADMIN, Role.EVALUATOR))]
Gongmo = Annotated[App, Depends(gongmo)]


def evaluable(a: App, conn: Connection, who: Principal) -> dict[int, str | None]:
    """An evaluator's assigned applications -> the conflict that bars one (None: may evaluate)."""
    (ev,) = committee.evaluators(conn, only=who.evaluator_id)
    rows = conn.execute(
        sa.select(APPLICATION.c.id, APPLICANT.c.code, TRACK.c.key)
        .join(ASSIGNMENT, ASSIGNMENT.c.application_id == APPLICATION.c.id)
        .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
        .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
        .where(ASSIGNMENT.c.evaluator_id == who.evaluator_id)
    )
    out: dict[int, str | None] = {}
    for app_id, code, track_key in rows:
        _, track = a.loaded.config.track(track_key)
        out[int(app_id)] = conflict(ev, code, track.evaluation.conflict_same_region)
    return out


def visible(a: App, conn: Connection, who: Principal) -> Any:
    """A WHERE clause on APPLICATION: the rows this caller may see."""
    if who.role == Role.ADMIN:
        return sa.true()
    if who.role == Role.APPLICANT:
        return APPLICATION.c.applicant_id == who.applicant_id
    if who.role == Role.EVALUATOR:
        mine = [i for i, why in evaluable(a, conn, who).items() if why is None]
        return APPLICATION.c.id.in_(mine)
    return sa.false()


def check_access(a: App, conn: Connection, who: Principal, application_id: int) -> None:
    """NotFound if there is no such application; Forbidden if it is not the caller's to see."""
    row = conn.execute(sa.select(APPLICATION.c.applicant_id).where(APPLICATION.c.id == application_id)).first()
    if row is None:
        raise NotFound(f"no application {application_id}")
    if who.role == Role.APPLICANT and row.applicant_id != who.applicant_id:
        raise Forbidden(f"application {application_id} is not {who.subject}'s: an applicant token sees its own only")
    if who.role == Role.EVALUATOR:
        why = evaluable(a, conn, who).get(application_id, "not assigned to you")
        if why is not None:
            raise Forbidden(f"application {application_id} is not yours to evaluate ({why})")


def track_id(a: App, conn: Connection, key: str) -> int:
    try:
        a.loaded.config.track(key)
    except ConfigError:
        raise NotFound(f"no track {key!r}: see GET /contests") from None
    return int(a.engine.track_by_key(conn, key)["id"])
