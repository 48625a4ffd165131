"""Who is signed in: the session cookie, resolved to a Principal, and the CSRF check of forms.

`Office` (a page dependency) is the signed-in office staff's Principal, or a redirect to the
sign-in page. Every form POST carries the session's CSRF token (`csrf`, core/sessions) and is
refused without it. The cookie is HttpOnly, SameSite=Lax, and Secure unless the console is
served on loopback.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from gongmo.states.lifecycle import Role
from gongmo.workflow.core import sessions
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.web import pages
from gongmo.workflow.web.pages import CsrfRefused, Forbidden, SignInRequired

COOKIE = "gongmo_session"
router = APIRouter(include_in_schema=False)


def session(request: Request) -> sessions.Session:
    """The live session of the request (also kept on request.state for the templates)."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        raise SignInRequired("sign in first: /signin")
    a = pages.gongmo(request)
    now = a.clock.now()
    with read(a.db) as conn:
        found = sessions.authenticate(conn, raw, now)
    if found is None:
        raise SignInRequired("your session has ended (signed out, idle for 30 minutes, or 12 hours old): sign in again")
    if sessions.needs_touch(found, now):
        with write(a.db) as conn:
            sessions.touch(conn, found.id, now)
    request.state.session = found
    request.state.csrf = sessions.csrf_token(raw)
    return found


def office(request: Request, found: Annotated[sessions.Session, Depends(session)]) -> Principal:
    if found.role != Role.ADMIN:
        raise Forbidden(f"this page is for the contest office: {request.url.path}")
    return found.principal


async def check_csrf(request: Request) -> None:
    """A form POST's CSRF token (form field `csrf`, or the X-CSRF-Token header htmx sends)."""
    raw = request.cookies.get(COOKIE, "")
    given = request.headers.get("x-csrf-token")
    if given is None:
        form = await request.form()
        value = form.get("csrf")
        given = value if isinstance(value, str) else None
    if not raw or not sessions.csrf_ok(raw, given):
        raise CsrfRefused(
            "the form's security token is missing or stale (the page was opened in another session):"
            " reload the page and send the form again; nothing was changed"
        )


Office = Annotated[Principal, Depends(office)]
Csrf = Depends(check_csrf)


def set_session_cookie(request: Request, response: RedirectResponse, raw: str) -> None:
    host = request.url.hostname or ""
    loopback = host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")
    response.set_cookie(COOKIE, raw, httponly=True, samesite="lax", secure=not loopback, path="/")


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request) -> HTMLResponse:
    return pages.render(request, "signin.html", why=request.query_params.get("why"))


@router.post("/signout", dependencies=[Csrf])
def signout(request: Request) -> RedirectResponse:
    raw = request.cookies.get(COOKIE)
    a = pages.gongmo(request)
    if raw:
        now = a.clock.now()
        with write(a.db) as conn:
            found = sessions.authenticate(conn, raw, now)
            if found is not None:
                sessions.revoke(conn, found.id, now)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
