"""Who is signed in: the session cookie, resolved to a Principal; the CSRF checks of forms; and
signing in by an e-mailed one-time link.

- `Office` (a page dependency) is the signed-in office staff's Principal, or a redirect to the
  sign-in page. Every form POST carries the session's CSRF token (`csrf`, core/sessions) and is
  refused without it (`Csrf`). The cookie is HttpOnly, SameSite=Lax, and Secure unless the console
  is served on loopback.
- Sign-in (the office, the evaluators and the applicants alike): GET /signin is a form for an
  e-mail address; POST /signin answers the same page whether or not the address has an account (in
  the browser's language: the person's would tell whom the address belongs to), and queues one mail
  with a link valid 15 minutes per role and subject the address stands for (a staff account, an
  evaluator, each government it is a contact of; outbox/signin.py). GET /signin/{token} is a page
  with one "Sign in" button, in the language of the person the link was sent for, so a mail
  scanner that fetches the link does not use it up; POST /signin/{token} uses the link (once, in
  time), opens a session and goes to `next` if it is under the role's home, else the home: /office,
  /evaluator or /applicant (core/sessions.landing). A used, expired or unknown link gets a page
  saying which, with the way to ask for a new one.
- The sign-in forms have no session to derive a CSRF token from: they use a double-submit cookie
  (PRE_COOKIE, random, HttpOnly, SameSite=Strict, path /signin) whose derived token the form
  carries, and a POST whose Origin header names another site is refused as well.
- Too many requests or failed links (core/sessions): 429, the page saying when to try again, and
  a Retry-After header.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.engine import Connection, RowMapping

from gongmo.states.errors import InvalidInput
from gongmo.states.lifecycle import Role
from gongmo.workflow.core import sessions
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.outbox import signin
from gongmo.workflow.web import pages, words
from gongmo.workflow.web.pages import CsrfRefused, Forbidden, SignInRequired

COOKIE = "gongmo_session"
PRE_COOKIE = "gongmo_signin"  # the sign-in forms' double-submit cookie
router = APIRouter(include_in_schema=False)

words.register(
    {
        "signin.intro": (
            "공모 운영 화면, 평가위원 화면, 신청기관 화면에 로그인할 수 있는 링크를 이메일로 보내 드립니다."
            " 담당 부서, 평가위원, 신청기관 담당자로 등록된 주소를 입력하십시오.",
            "We e-mail you a link to sign in to the contest office console, the evaluators' pages or the"
            " applicants' pages. Enter the address the office, the committee or your local government's"
            " record knows you by.",
        ),
        "signin.for.admin": ("공모 운영 화면", "The contest office console"),
        "signin.for.evaluator": ("평가위원 화면", "The evaluators' pages"),
        "signin.for.applicant": ("신청기관 화면", "The applicants' pages"),
        "signin.email": ("이메일 주소", "E-mail address"),
        "signin.send": ("로그인 링크 받기", "Send me a sign-in link"),
        "signin.sent.title": ("메일을 확인하십시오", "Check your mail"),
        "signin.sent": (
            "이 주소로 등록된 계정이 있으면 로그인 링크를 보냈습니다. 링크는 15분 동안 한 번만 쓸 수 있습니다.",
            "If this address has an account, a sign-in link was sent to it. The link works once, for 15 minutes.",
        ),
        "signin.sent.again": ("다시 요청하기", "Ask again"),
        "signin.link.intro": (
            "아래 단추를 누르면 {email} 계정으로 로그인합니다.",
            "Press the button below to sign in as {email}.",
        ),
        "signin.button": ("로그인", "Sign in"),
        "signin.problem.title": ("이 로그인 링크는 쓸 수 없습니다", "This sign-in link cannot be used"),
        "signin.problem.unknown": (
            "알 수 없는 로그인 링크입니다. 메일의 링크가 잘렸거나 잘못 입력되었을 수 있습니다.",
            "This sign-in link is not known: the link may have been cut short or mistyped.",
        ),
        "signin.problem.used": (
            "이미 사용한 로그인 링크입니다. 링크는 한 번만 쓸 수 있습니다.",
            "This sign-in link was already used: a link works once.",
        ),
        "signin.problem.expired": (
            "만료된 로그인 링크입니다. 링크는 15분 동안만 쓸 수 있습니다.",
            "This sign-in link has expired: a link works for 15 minutes.",
        ),
        "signin.problem.disabled": (
            "이 링크의 계정은 사용이 중지되었습니다. 공모 담당 부서에 문의하십시오.",
            "The account of this link is disabled: ask the contest office.",
        ),
        "signin.new": ("새 로그인 링크 요청하기", "Ask for a new sign-in link"),
        "signin.limited": (
            "시도가 너무 많습니다. {minutes}분 뒤({at})에 다시 시도하십시오.",
            "Too many attempts: try again in {minutes} minute(s), at {at}.",
        ),
        "signin.bad_email": (
            "이메일 주소가 아닙니다. 예: office@molit.go.kr",
            "That is not an e-mail address; write e.g. office@molit.go.kr",
        ),
    }
)
# The status of each problem page of a link: gone (used, expired, disabled) or never there.
PROBLEM_STATUS = {"unknown": 404, "used": 410, "expired": 410, "disabled": 403}


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
    if found.language:
        request.state.default_language = found.language
    return found


def office(request: Request, found: Annotated[sessions.Session, Depends(session)]) -> Principal:
    if found.role != Role.ADMIN:
        raise Forbidden(f"this page is for the contest office: {request.url.path}")
    return found.principal


async def _given_token(request: Request) -> str | None:
    given = request.headers.get("x-csrf-token")
    if given is None:
        form = await request.form()
        value = form.get("csrf")
        given = value if isinstance(value, str) else None
    return given


async def check_csrf(request: Request) -> None:
    """A form POST's CSRF token (form field `csrf`, or the X-CSRF-Token header htmx sends)."""
    raw = request.cookies.get(COOKIE, "")
    given = await _given_token(request)
    if not raw or not sessions.csrf_ok(raw, given):
        raise CsrfRefused(
            "the form's security token is missing or stale (the page was opened in another session):"
            " reload the page and send the form again; nothing was changed"
        )


async def check_signin_csrf(request: Request) -> None:
    """A sign-in form's POST: the token derived from the pre-session cookie (double submit), and no
    Origin header naming another site."""
    origin = request.headers.get("origin")
    if origin is not None and origin not in _own_origins(request):
        raise CsrfRefused(f"a sign-in form sent from another site ({origin[:80]}) is refused: open /signin here")
    raw = request.cookies.get(PRE_COOKIE, "")
    if not raw or not sessions.csrf_ok(raw, await _given_token(request)):
        raise CsrfRefused(
            "the sign-in form's security token is missing or stale (cookies blocked, or the page is old):"
            " reload the page and send the form again"
        )


def _own_origins(request: Request) -> set[str]:
    own = {f"{request.url.scheme}://{request.url.netloc}"}
    configured = urlsplit(pages.gongmo(request).loaded.config.console_url())
    own.add(f"{configured.scheme}://{configured.netloc}")
    return own


Office = Annotated[Principal, Depends(office)]
Csrf = Depends(check_csrf)
SigninCsrf = Depends(check_signin_csrf)


def _loopback(request: Request) -> bool:
    host = request.url.hostname or ""
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def set_session_cookie(request: Request, response: Response, raw: str) -> None:
    response.set_cookie(COOKIE, raw, httponly=True, samesite="lax", secure=not _loopback(request), path="/")


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def _signin_page(request: Request, name: str, status: int = 200, **extra: Any) -> HTMLResponse:
    """A sign-in page with its form's token, setting the pre-session cookie if the browser has none."""
    pre = request.cookies.get(PRE_COOKIE)
    fresh = pre is None or len(pre) < 32
    if fresh:
        pre = secrets.token_urlsafe(32)
    assert pre is not None
    response = pages.render(request, name, status=status, csrf=sessions.csrf_token(pre), **extra)
    if fresh:
        response.set_cookie(
            PRE_COOKIE, pre, httponly=True, samesite="strict", secure=not _loopback(request), path="/signin"
        )
    return response


def _limited(request: Request, exc: sessions.RateLimited, name: str, **extra: Any) -> HTMLResponse:
    now = pages.gongmo(request).clock.now()
    seconds = max(int((exc.retry_at - now).total_seconds()), 1)
    t = words.translator(pages.language(request))
    zone = pages.gongmo(request).loaded.config.contests[0].timezone
    message = t("signin.limited", minutes=(seconds + 59) // 60, at=_clock_time(exc.retry_at, zone))
    response = _signin_page(request, name, status=429, error=message, **extra)
    response.headers["Retry-After"] = str(seconds)
    return response


def _clock_time(at: datetime, zone: str) -> str:
    local = at.astimezone(ZoneInfo(zone))
    return f"{local:%H:%M} {local.tzname()}"


@router.get("/signin", response_class=HTMLResponse)
def signin_page(request: Request) -> HTMLResponse:
    why = request.query_params.get("why")
    next_path = sessions.local_path(request.query_params.get("next"), "")
    return _signin_page(request, "signin.html", why=why, next=next_path, email="", error=None)


@router.post("/signin", response_class=HTMLResponse, dependencies=[SigninCsrf])
def signin_request(
    request: Request, email: Annotated[str, Form(max_length=320)] = "", next: Annotated[str, Form()] = ""
) -> HTMLResponse:
    """The same answer whether or not the address has an account; only the rate limit refuses."""
    next_path = sessions.local_path(next, "")
    form = {"why": None, "next": next_path, "email": email[:200]}
    a = pages.gongmo(request)
    try:
        signin.request_link(a, email, _client(request), next_path or None)
    except sessions.RateLimited as exc:
        return _limited(request, exc, "signin.html", **form)
    except InvalidInput:
        t = words.translator(pages.language(request))
        return _signin_page(request, "signin.html", status=422, error=t("signin.bad_email"), **form)
    return _signin_page(request, "signin_sent.html", next=next_path)


@router.get("/signin/{token}", response_class=HTMLResponse)
def signin_link_page(request: Request, token: str) -> HTMLResponse:
    """The link's page: one button (fetching the link uses nothing up)."""
    a = pages.gongmo(request)
    next_path = sessions.local_path(request.query_params.get("next"), "")
    with read(a.db) as conn:
        _speak_as_link(request, conn, token)
        try:
            link = sessions.check_link(conn, token, a.clock.now())
        except sessions.LinkRefused as exc:
            return _problem(request, exc, next_path)
        label = _link_label(conn, link)
    return _signin_page(
        request, "signin_link.html", token=token, email=link["email"], role=link["role"], label=label, next=next_path
    )


def _speak_as_link(request: Request, conn: Connection, token: str) -> None:
    """The link's pages in the language of the person it was sent for (unless the browser chose)."""
    language = sessions.link_language(conn, token)
    if language:
        request.state.default_language = language


def _link_label(conn: Connection, link: RowMapping) -> str:
    """The government an applicant's link acts for, e.g. 수원시 (41110); empty for the others."""
    if link["role"] != Role.APPLICANT:
        return ""
    found = sessions.contact(conn, link["subject"], link["email"])
    return f"{found['applicant_name']} ({link['subject']})" if found is not None else ""


@router.post("/signin/{token}", dependencies=[SigninCsrf])
def signin_link_use(request: Request, token: str, next: Annotated[str, Form()] = "") -> Response:
    """Use the link: once, within 15 minutes; a session, then `next` (under the role's home) or the
    role's home (/office, /evaluator, /applicant)."""
    a = pages.gongmo(request)
    next_path = sessions.local_path(next, "")
    with read(a.db) as conn:
        _speak_as_link(request, conn, token)
    try:
        raw, found = sessions.redeem(a, token, _client(request))
    except sessions.RateLimited as exc:
        return _limited(request, exc, "signin.html", why=None, next=next_path, email="")
    except sessions.LinkRefused as exc:
        return _problem(request, exc, next_path)
    response = RedirectResponse(sessions.landing(found.role, next_path), status_code=303)
    set_session_cookie(request, response, raw)
    response.delete_cookie(PRE_COOKIE, path="/signin")
    return response


def _problem(request: Request, exc: sessions.LinkRefused, next_path: str) -> HTMLResponse:
    again = "/signin" + (f"?{urlencode({'next': next_path})}" if next_path else "")
    return _signin_page(
        request,
        "signin_link.html",
        status=PROBLEM_STATUS[exc.problem],
        problem=exc.problem,
        again=again,
        token=None,
        email="",
        next=next_path,
    )


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
