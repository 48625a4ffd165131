"""What every route needs: the app, the caller, and what the caller may see."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Connection

from gongmo.states.errors import NotFound
from gongmo.states.lifecycle import Role
from gongmo.workflow.api.errors import Forbidden, Unauthorized
from gongmo.workflow.core import lookups, tokens
from gongmo.workflow.core.config import KEY_PATTERN, ConfigError
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import MAX_ID
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.engine.app import App
from gongmo.workflow.read import visibility

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
    if found is None:  # nothing of the token is echoed: a log or a screen of the answer must not carry it
        raise Unauthorized("the API token is unknown or revoked: ask the office for a new one")
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


# Every role that reads applications (a metrics token reads /metrics only).
Anyone = Annotated[Principal, Depends(allow(Role.ADMIN, Role.EVALUATOR, Role.APPLICANT))]
Monitor = Annotated[Principal, Depends(allow(Role.ADMIN, Role.METRICS))]
Admin = Annotated[Principal, Depends(allow(Role.ADMIN))]
AdminOrApplicant = Annotated[Principal, Depends(allow(Role.ADMIN, Role.APPLICANT))]
AdminOrEvaluator = Annotated[Principal, Depends(allow(Role.ADMIN, Role.EVALUATOR))]
Gongmo = Annotated[App, Depends(gongmo)]


# Who may see which application is one rule (workflow/visibility.py); the routes use it as it is.
visible = visibility.where_visible
check_access = visibility.check_access


def track_id(a: App, conn: Connection, key: str) -> int:
    try:
        a.loaded.config.track(key)
    except ConfigError:
        raise NotFound(f"no track {key!r}: see GET /contests") from None
    return int(lookups.track_by_key(conn, a.loaded.config, key)["id"])
