"""What every page shares: the templates, the language, the security headers, the error page.

- `render(request, name, **context)`: a template of templates/ with the page context (the
  language and its `t()`, the signed-in person, the CSRF token, the clock's now).
- The language: Korean first; `?lang=en` or `?lang=ko` switches and is kept in a cookie.
- Every HTML answer carries a Content-Security-Policy that allows no inline script and no
  framing, and the usual companions (nosniff, no referrer off the site, DENY framing).
- A refusal (GongmoError) on a page is an HTML page with the same one line the API would send
  (under the page's own wording), with the API's status; the API's routes still answer JSON.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from gongmo.states.errors import GongmoError, InvalidInput, Wording
from gongmo.workflow.api import errors
from gongmo.workflow.engine.app import App
from gongmo.workflow.web import words

TEMPLATES = Path(__file__).parent / "templates"
LANG_COOKIE = "gongmo_lang"
LANGUAGES = ("ko", "en")
# The paths that are pages (HTML answers, HTML refusals); every other path is the API's.
PAGE_PREFIXES = ("/office", "/signin", "/signout", "/evaluator", "/applicant")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(("html",)),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def is_page(path: str) -> bool:
    return path == "/" or path.startswith(PAGE_PREFIXES)


def gongmo(request: Request) -> App:
    return request.app.state.gongmo  # type: ignore[no-any-return]


def language(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked
    kept = request.cookies.get(LANG_COOKIE)
    if kept in LANGUAGES:
        return kept
    return getattr(request.state, "default_language", None) or "ko"


def context(request: Request, **extra: Any) -> dict[str, Any]:
    lang = language(request)
    session = getattr(request.state, "session", None)
    return {
        "request": request,
        "lang": lang,
        "other_lang": "en" if lang == "ko" else "ko",
        "t": words.translator(lang),
        "session": session,
        "who": session.principal if session is not None else None,
        "csrf": getattr(request.state, "csrf", ""),
        "now": gongmo(request).clock.now(),
        "path": request.url.path,
        **extra,
    }


def render(request: Request, name: str, status: int = 200, **extra: Any) -> HTMLResponse:
    ctx = context(request, **extra)
    response = HTMLResponse(env.get_template(name).render(ctx), status_code=status)
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, ctx["lang"], max_age=365 * 86400, samesite="lax", httponly=True)
    return response


class SignInRequired(GongmoError):
    """No session, or one that ended: the page sends the browser to the sign-in page."""


class CsrfRefused(GongmoError):
    """A form without the session's CSRF token: 403, nothing changed."""


Forbidden = errors.Forbidden


class PageWording(Wording):
    """A page names an input by its form field: "field 'reason'"."""

    def name(self, field: str) -> str:
        return f"field '{field}'"


PAGE = PageWording()


def say(exc: GongmoError) -> str:
    return " ".join(exc.say(PAGE).split("\n"))


def at_most(text: str, field: str, limit: int) -> None:
    """Refuse a free-text form field longer than `limit` characters, naming the field."""
    if len(text) > limit:
        raise InvalidInput(f"{{field}} is {len(text)} characters long: write at most {limit}", field=field)


def refusal(request: Request, message: str, status: int) -> HTMLResponse:
    """The error page: the one line, the status, a way back."""
    try:
        return render(request, "error.html", status=status, message=message, status_code=status)
    except Exception:  # the page context itself failed (no database): still one line, no traceback
        return HTMLResponse(f"<!doctype html><title>gongmo</title><p>{_escape(message)}</p>", status_code=status)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def install(api: FastAPI) -> None:
    """The security headers on every HTML answer, and HTML refusals on the pages."""
    api_domain = api.exception_handlers[GongmoError]
    api_http = api.exception_handlers[StarletteHTTPException]

    async def domain(request: Request, exc: Exception) -> Response:
        if not is_page(request.url.path):
            return await _call(api_domain, request, exc)
        assert isinstance(exc, GongmoError)
        if isinstance(exc, SignInRequired | errors.Unauthorized):
            if request.method == "GET":
                target = "/signin?" + urlencode({"next": request.url.path, "why": say(exc)})
                return Response(status_code=303, headers={"Location": target})
            return refusal(request, say(exc), 401)
        status = 403 if isinstance(exc, CsrfRefused) else errors.status_of(exc)
        return refusal(request, say(exc), status)

    async def http(request: Request, exc: Exception) -> Response:
        if not is_page(request.url.path):
            return await _call(api_http, request, exc)
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code in (301, 302, 303, 307) and exc.headers:
            return Response(status_code=exc.status_code, headers=exc.headers)
        return refusal(request, f"{exc.detail}: {request.method} {request.url.path}", exc.status_code)

    api_unexpected = api.exception_handlers[Exception]

    async def unexpected(request: Request, exc: Exception) -> Response:
        """A bug on a page: an HTML page with the API's one line (its reference is in the log), no traceback."""
        answer = await _call(api_unexpected, request, exc)
        if not is_page(request.url.path):
            return answer
        message = json.loads(bytes(answer.body)).get("error", "internal error")
        return refusal(request, message, 500)

    api.add_exception_handler(GongmoError, domain)
    api.add_exception_handler(StarletteHTTPException, http)
    api.add_exception_handler(Exception, unexpected)

    @api.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if response.headers.get("content-type", "").startswith("text/html"):
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            response.headers.setdefault("Cache-Control", "no-store")
        return response


async def _call(handler: Any, request: Request, exc: Exception) -> Response:
    result = handler(request, exc)
    if hasattr(result, "__await__"):
        result = await result
    return result  # type: ignore[no-any-return]
