"""Request limits, before any route runs: a request that carries a body is
authenticated first (its Authorization bearer token, in a read transaction),
and its body may not be larger than `[api] max_body_bytes`.

A body is never read for a caller without a live token: the refusal (401) goes
out before the first byte of it is taken from the connection. A Content-Length
over the limit is refused (413) at once, also unread; a body sent without one
(chunked) is counted as it arrives, and reading stops at the limit with 413.
The route then sees the client as gone, and whatever it answers is dropped.

The pages (PAGE_PREFIXES) authenticate their forms in the route (session cookie
and CSRF token): here only their body is limited, and their refusals are small
HTML pages. Two of the applicant's forms carry files (PAGE_UPLOAD_PATH: the plan
with its documents, the implementation plan): they take a body as large as the
API's document upload (upload_limit), and only from a live applicant session
(its cookie looked up as the route would, sessions.authenticate), refused (401,
403) before a byte of the body is read.

Requests without a body (GET, and the public /ping, /healthz, /metrics) pass
through untouched: the routes authenticate them as before. How many requests a
client may make is left to the reverse proxy in front (see the README).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gongmo.states.errors import GongmoError
from gongmo.states.lifecycle import Role
from gongmo.workflow.api import errors
from gongmo.workflow.core import sessions, tokens
from gongmo.workflow.core.db import read
from gongmo.workflow.engine.app import App

NO_TOKEN = (
    "no API token: send the header 'Authorization: Bearer <token>' (the office creates tokens with"
    " `gongmo tokens create`)"
)
# The token is not echoed: a refused request's header may be someone's secret pasted by mistake.
UNKNOWN_TOKEN = "the API token is unknown or revoked: ask the office for a new one"


# A document upload (POST /applications/<n>/documents/<kind>) may carry the largest file any
# document kind accepts, plus the multipart framing around it; its kind's own limit is checked
# by the upload itself (engine/uploads.py), with a message naming the file and the kind.
UPLOAD_PATH = re.compile(r"^/applications/[0-9]+/documents/[^/]+/?$")
MULTIPART_OVERHEAD = 64 * 1024
# The console's pages (web/pages.py PAGE_PREFIXES) authenticate their forms by the session cookie
# and the CSRF token, in the route: here only their body is limited, no bearer token asked for.
PAGE_PREFIXES = ("/office", "/signin", "/signout", "/evaluator", "/applicant")
# The applicant's forms that carry files (web/applicant.py): the plan with its documents, and the
# implementation plan. They take an upload's body, from a live applicant session only.
PAGE_UPLOAD_PATH = re.compile(r"^/applicant/(tracks/[a-z0-9][a-z0-9_-]{0,39}/apply|applications/[0-9]+/kickoff)/?$")
SESSION_COOKIE = "gongmo_session"  # web/auth.py COOKIE (the web room sits above this one)
NO_SESSION = "sign in first (/signin): a plan's files are taken only from a signed-in applicant"
ENDED_SESSION = "your session has ended (signed out, idle for 30 minutes, or 12 hours old): sign in again at /signin"
NOT_APPLICANT = "this form is for applicants (signed in as {role})"


def too_large(limit: int) -> str:
    return (
        f"body: larger than {limit:,} bytes ([api] max_body_bytes); send a smaller request"
        " (large lists go in pages, files through the CLI)"
    )


def upload_too_large(limit: int) -> str:
    return (
        f"body: larger than {limit:,} bytes, the largest file any document kind accepts"
        f" ({(limit - MULTIPART_OVERHEAD) // (1024 * 1024):,} MB, max_mb in config.toml) plus"
        f" {MULTIPART_OVERHEAD // 1024} KB of multipart framing; send a smaller file"
    )


def upload_limit(gongmo: App) -> int:
    """The body limit of a document upload: the largest max_bytes of any kind, plus the framing."""
    kinds = [d.max_bytes for c in gongmo.loaded.config.contests for t in c.tracks for d in t.documents]
    return max(kinds, default=0) + MULTIPART_OVERHEAD


class Limits:
    """ASGI middleware: authenticate, then limit the body, before the app reads it."""

    def __init__(self, app: ASGIApp, gongmo: App, max_body_bytes: int) -> None:
        self.app = app
        self.gongmo = gongmo
        self.max_body_bytes = max_body_bytes
        self.upload_bytes = upload_limit(gongmo)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        length_text = headers.get("content-length")
        chunked = "transfer-encoding" in headers
        if length_text is None and not chunked:
            await self.app(scope, receive, send)  # no body: nothing to protect
            return
        length: int | None = None
        if length_text is not None:
            if not (length_text.isascii() and length_text.isdigit()):
                await _answer(send, 400, f"Content-Length {length_text[:20]!r}: not a whole number; send a valid one")
                return
            length = int(length_text)
            if length == 0 and not chunked:
                await self.app(scope, receive, send)
                return
        path = str(scope.get("path", ""))
        page = path.startswith(PAGE_PREFIXES)
        post = scope.get("method") == "POST"
        page_upload = page and post and PAGE_UPLOAD_PATH.match(path) is not None
        if page_upload:
            refusal = await self._applicant(headers.get("cookie"))
        else:
            refusal = None if page else await self._authenticate(headers.get("authorization"))
        if refusal is not None:
            await _answer(send, *refusal, page=page)
            return
        limit, say = self.max_body_bytes, too_large
        upload = page_upload or (post and UPLOAD_PATH.match(path) is not None)
        if upload and self.upload_bytes > self.max_body_bytes:
            limit, say = self.upload_bytes, upload_too_large
        if length is not None and length > limit:
            await _answer(send, 413, say(limit), page=page)
            return
        await _Counted(self.app, limit, say, page)(scope, receive, send)

    async def _applicant(self, cookie: str | None) -> tuple[int, str] | None:
        """(status, message) of the refusal of a page upload, or None for a live applicant session."""
        raw = cookie_parser(cookie or "").get(SESSION_COOKIE)
        if not raw:
            return 401, NO_SESSION
        a = self.gongmo

        def look() -> sessions.Session | None:
            with read(a.db) as conn:
                return sessions.authenticate(conn, raw, a.clock.now())

        try:
            found = await run_in_threadpool(look)
        except GongmoError as exc:
            return errors.status_of(exc), " ".join(str(exc).split("\n"))
        if found is None:
            return 401, ENDED_SESSION
        if found.role != Role.APPLICANT:
            return 403, NOT_APPLICANT.format(role=found.role.value)
        return None

    async def _authenticate(self, header: str | None) -> tuple[int, str] | None:
        """(status, message) of the refusal, or None for a live token."""
        scheme, _, token = (header or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return 401, NO_TOKEN
        a = self.gongmo

        def look() -> bool:
            with read(a.db) as conn:
                return tokens.authenticate(conn, token, a.clock.now()) is not None

        try:
            found = await run_in_threadpool(look)
        except GongmoError as exc:  # the database is away: 503, as any route would answer
            return errors.status_of(exc), " ".join(str(exc).split("\n"))
        return None if found else (401, UNKNOWN_TOKEN)


class _Counted:
    """Pass the body through while it stays under the limit; past it, answer 413
    and show the app a disconnected client (its own answer is dropped)."""

    def __init__(self, app: ASGIApp, limit: int, say: Callable[[int], str] = too_large, page: bool = False) -> None:
        self.app = app
        self.limit = limit
        self.say = say
        self.page = page
        self.seen = 0
        self.started = False
        self.refused = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted_receive() -> Message:
            if self.refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                self.seen += len(message.get("body", b""))
                if self.seen > self.limit:
                    self.refused = True
                    if not self.started:
                        self.started = True
                        await _answer(send, 413, self.say(self.limit), page=self.page)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if self.refused:
                return  # the 413 went out instead
            if message["type"] == "http.response.start":
                self.started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not self.refused:
                raise
            # the app gave up on a body it was not given: the 413 has been sent


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        out.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return out


async def _answer(send: Send, status: int, message: str, *, page: bool = False) -> None:
    """The refusal: the API's JSON error, or for a page a small HTML page with the same line."""
    if page:
        body = _page(status, message)
        kind = b"text/html; charset=utf-8"
        extra = [(b"content-security-policy", b"default-src 'none'"), (b"x-content-type-options", b"nosniff")]
    else:
        body = json.dumps({"error": message}).encode()
        kind = b"application/json"
        extra = [(b"www-authenticate", b"Bearer")] if status == 401 else []
    start: dict[str, Any] = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", kind),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            *extra,
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


def _page(status: int, message: str) -> bytes:
    """A refusal page of the console's, without its templates (they live in the web room above)."""
    line = html.escape(message)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{status} · gongmo</title></head><body><main><h1>{status}</h1>"
        f'<p class="refusal" role="alert">{line}</p><p><a href="/">gongmo</a></p></main></body></html>'
    ).encode()
