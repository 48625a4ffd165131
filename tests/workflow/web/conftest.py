"""Shared setup for the console's page tests: the API tests' 2024 scenario worlds (stages open,
written, presentation; tests/workflow/api/conftest.py), served with the pages (web.create_app),
and a browser-like client that signs in (a real session row) and sends each form's CSRF token."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from gongmo.workflow.core import sessions
from gongmo.workflow.core.db import read
from gongmo.workflow.web import create_app
from gongmo.workflow.web.auth import COOKIE
from tests.workflow.api.conftest import (  # noqa: F401  (fixtures, re-exported for these tests)
    ADMIN,
    World,
    opened,
    presentation,
    templates,
    world,
    written,
)

OFFICE_EMAIL = "office-lee@molit.go.kr"


class Browser:
    """A TestClient on the console, signed in as one person (or not at all)."""

    def __init__(self, w: World) -> None:
        self.world = w
        self.http = TestClient(create_app(w.app), base_url="http://127.0.0.1", raise_server_exceptions=False)
        self.raw: str | None = None

    def sign_in(self, role: str = "admin", subject: str = OFFICE_EMAIL) -> Browser:
        if role == "admin":  # an office session resolves only while its staff account is active
            with read(self.world.app.db) as conn:
                known = sessions.active_staff(conn, subject) is not None
            if not known:
                sessions.add_staff(self.world.app, subject, created_by="test")
        self.raw = sessions.open_session(self.world.app, role, subject, client="test")
        self.http.cookies.set(COOKIE, self.raw)
        return self

    @property
    def csrf(self) -> str:
        assert self.raw is not None, "sign in first"
        return sessions.csrf_token(self.raw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, follow_redirects=False, **kw)

    def post(self, path: str, data: dict[str, Any] | None = None, csrf: bool = True, **kw: Any) -> httpx.Response:
        form = dict(data or {})
        if csrf and self.raw is not None:
            form.setdefault("csrf", self.csrf)
        return self.http.post(path, data=form, follow_redirects=False, **kw)


def text_of(html: str) -> str:
    """The page's text, tags removed and spaces folded (for assertions on what a person reads)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


@pytest.fixture
def browser() -> Callable[[World], Browser]:
    return Browser
