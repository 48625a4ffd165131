"""Request limits (issue 18, finding 6): a body is read only after its token
is checked, and never past `[api] max_body_bytes` (413).

The bodies are generators that count what was taken from them: a refusal
before reading leaves the count at zero."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gongmo.workflow.api import create_api
from gongmo.workflow.api.limits import UNKNOWN_TOKEN, Limits
from gongmo.workflow.core import tokens
from gongmo.workflow.core.models import API_TOKEN, APPLICATION, AUDIT
from gongmo.workflow.engine.app import App

MB = 1024 * 1024
LIMIT = 2 * MB  # the default of [api] max_body_bytes


class Body:
    """A body of `size` bytes in `chunk`-byte pieces that records how much of it was taken."""

    def __init__(self, size: int, chunk: int = 64 * 1024) -> None:
        self.size = size
        self.chunk = chunk
        self.taken = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.taken < self.size:
            piece = b" " * min(self.chunk, self.size - self.taken)
            self.taken += len(piece)
            yield piece


@pytest.fixture
def http(app: App) -> Iterator[TestClient]:
    with TestClient(create_api(app), raise_server_exceptions=False) as client:
        yield client


def admin(app: App) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.create(app, 'admin', 'office-lee', 'test')[1]}"}


def counts(app: App) -> tuple[int, int]:
    with app.db.connect() as conn:
        return tuple(  # type: ignore[return-value]
            int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()) for t in (APPLICATION, AUDIT)
        )


def test_the_default_limit_is_2_mb(app: App) -> None:
    assert app.loaded.config.api.max_body_bytes == LIMIT


def test_a_big_body_without_a_token_is_refused_before_any_of_it_is_read(app: App, http: TestClient) -> None:
    body = Body(200 * MB)
    before = counts(app)
    refused = http.post("/applications", content=body, headers={"Content-Type": "application/json"})
    assert refused.status_code == 401
    assert refused.json() == {
        "error": "no API token: send the header 'Authorization: Bearer <token>' (the office"
        " creates tokens with `gongmo tokens create`)"
    }
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert body.taken == 0
    assert counts(app) == before


def test_an_unknown_or_revoked_token_is_refused_unread_and_not_echoed(app: App, http: TestClient) -> None:
    secret = "gm_this-is-someones-secret-pasted-by-mistake"
    body = Body(50 * MB)
    refused = http.post("/applications", content=body, headers={"Authorization": f"Bearer {secret}"})
    assert (refused.status_code, refused.json()) == (401, {"error": UNKNOWN_TOKEN})
    assert "gm_this" not in refused.text and body.taken == 0
    # a revoked one: the same
    headers = admin(app)
    with app.db.begin() as conn:
        conn.execute(sa.update(API_TOKEN).values(revoked_at=app.clock.now()))
    body = Body(50 * MB)
    refused = http.post("/applications", content=body, headers=headers)
    assert (refused.status_code, refused.json()) == (401, {"error": UNKNOWN_TOKEN})
    assert body.taken == 0
    # another scheme than Bearer is no token
    refused = http.post("/applications", content=Body(MB), headers={"Authorization": "Basic b2ZmaWNlOnB3"})
    assert refused.status_code == 401 and refused.json()["error"].startswith("no API token")


def test_a_content_length_over_the_limit_is_413_at_once_unread(app: App, http: TestClient) -> None:
    headers = admin(app) | {"Content-Type": "application/json", "Content-Length": str(LIMIT + 1)}
    body = Body(LIMIT + 1)
    before = counts(app)
    refused = http.post("/applications", content=body, headers=headers)
    assert refused.status_code == 413
    assert refused.json() == {
        "error": "body: larger than 2,097,152 bytes ([api] max_body_bytes); send a smaller request"
        " (large lists go in pages, files through the CLI)"
    }
    assert body.taken == 0
    assert counts(app) == before


def test_a_chunked_body_over_the_limit_is_413(app: App, http: TestClient) -> None:
    headers = admin(app) | {"Content-Type": "application/json"}
    body = Body(LIMIT + 1)
    refused = http.post("/applications", content=body, headers=headers)  # no Content-Length: chunked
    assert refused.status_code == 413 and refused.json()["error"].startswith("body: larger than 2,097,152 bytes")


def test_a_body_under_the_limit_reaches_the_route(app: App, http: TestClient) -> None:
    headers = admin(app) | {"Content-Type": "application/json"}
    padded = b'{"track": "nope"' + b" " * (LIMIT - 100) + b"}"
    answered = http.post("/applications", content=padded, headers=headers)
    assert answered.status_code == 422 and "national_krw" in answered.json()["error"]  # the route's own
    chunked = http.post("/applications", content=iter([b'{"track":', b' "nope"}']), headers=headers)
    assert chunked.status_code == 422 and "national_krw" in chunked.json()["error"]


def test_a_request_without_a_body_is_left_to_the_route(http: TestClient) -> None:
    assert http.get("/ping").status_code == 200
    assert http.get("/applications").status_code == 401


def test_a_streamed_body_stops_being_read_at_the_limit(app: App) -> None:
    """At the ASGI level, chunk by chunk: reading stops with the chunk that passes the limit."""
    received: list[int] = []
    app_saw: list[dict[str, Any]] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            app_saw.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    chunks = 100

    async def receive() -> dict[str, Any]:
        received.append(1)
        return {"type": "http.request", "body": b"x" * 1000, "more_body": len(received) < chunks}

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    token = tokens.create(app, "admin", "office-lee", "test")[1]
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/applications",
        "headers": [(b"transfer-encoding", b"chunked"), (b"authorization", f"Bearer {token}".encode())],
    }
    asyncio.run(Limits(inner, app, max_body_bytes=10_500)(scope, receive, send))
    assert len(received) == 11  # 11,000 bytes: the 11th chunk passed 10,500; the other 89 were never read
    assert app_saw[-1] == {"type": "http.disconnect"}
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]
    assert b"larger than 10,500 bytes" in b"".join(m.get("body", b"") for m in sent)
