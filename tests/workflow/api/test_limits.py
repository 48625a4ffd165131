"""Request limits (issue 18, finding 6): a body is read only after its token
is checked, and never past `[api] max_body_bytes` (413).

The bodies are generators that count what was taken from them: a refusal
before reading leaves the count at zero."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gongmo.workflow.api import create_api
from gongmo.workflow.api.limits import SESSION_COOKIE, UNKNOWN_TOKEN, Limits, upload_limit
from gongmo.workflow.core import samples, tokens
from gongmo.workflow.core.models import API_TOKEN, APPLICATION, AUDIT, BLOB, DOCUMENT, KICKOFF_PLAN, WEB_SESSION
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox import office as outbox_office
from gongmo.workflow.stages import selection
from gongmo.workflow.web.auth import COOKIE
from tests.conftest import kst
from tests.workflow.api.conftest import KIM, SEJONG, TRACK_KEY, World
from tests.workflow.contest_2024 import OFFICE
from tests.workflow.web.conftest import Browser

HWASEONG = "41590"
PLAN = {
    "title": "화성 스마트도시",
    "project_type": "climate_crisis",
    "years": "3",
    "national_krw": "8,000,000,000",
    "local_krw": "8,000,000,000",
}
BUDGET = ("산출내역서.xlsx", samples.xlsx(), "application/octet-stream")

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


# -- the applicant's forms that carry files (web/applicant.py) ------------------------------------------


def big_pdf(size: int, text: str = "big plan") -> bytes:
    """A valid PDF of exactly `size` bytes (a comment pads it; %%EOF stays in its last bytes)."""
    head = samples.pdf(text).replace(b"%%EOF", b"")
    return head + b"%" + b"x" * (size - len(head) - 8) + b"\n%%EOF\n"


def stored(w: World) -> tuple[int, int, int]:
    return w.count(DOCUMENT), w.count(BLOB), w.count(KICKOFF_PLAN)


def test_a_3_mib_plan_is_received_through_the_apply_form(opened: World) -> None:
    w = opened
    b = Browser(w).sign_in("applicant", HWASEONG)
    plan = big_pdf(3 * MB)
    sent = b.http.post(
        f"/applicant/tracks/{TRACK_KEY}/apply",
        data=PLAN | {"csrf": b.csrf},
        files={"document.plan": ("사업계획서.pdf", plan, "application/pdf"), "document.budget": BUDGET},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    row = w.row(HWASEONG)
    assert row["state"] == "receipt"
    (doc,) = w.rows(DOCUMENT, DOCUMENT.c.application_id == row["id"], DOCUMENT.c.kind == "plan")
    assert (doc["size"], doc["sha256"]) == (3 * MB, hashlib.sha256(plan).hexdigest())


def test_a_3_mib_implementation_plan_is_kept_through_the_kickoff_form(presentation: World) -> None:
    w = presentation
    w.clock.set(kst("2024-06-26 10:00"))
    selection.select(w.app, TRACK_KEY, OFFICE, confirm=True)
    outbox_office.release(w.app, TRACK_KEY, "results")
    b = Browser(w).sign_in("applicant", SEJONG)
    data = big_pdf(3 * MB, "implementation plan")
    filed = b.http.post(
        f"/applicant/applications/{w.id(SEJONG)}/kickoff",
        data={"csrf": b.csrf},
        files={"plan": ("세부실시계획.pdf", data, "application/pdf")},
    )
    assert filed.status_code == 200, filed.text
    (plan,) = w.rows(KICKOFF_PLAN)
    assert (plan["size"], plan["sha256"]) == (3 * MB, hashlib.sha256(data).hexdigest())


def test_a_page_upload_over_the_upload_limit_is_a_413_page_and_nothing_is_stored(opened: World) -> None:
    w = opened
    b = Browser(w).sign_in("applicant", HWASEONG)
    limit = upload_limit(w.app)
    assert limit > LIMIT
    before, footprint = stored(w), w.footprint()
    for path in (f"/applicant/tracks/{TRACK_KEY}/apply", f"/applicant/applications/{w.id(SEJONG)}/kickoff"):
        body = Body(limit + 1)
        headers = {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(limit + 1)}
        refused = b.http.post(path, content=body, headers=headers)
        assert refused.status_code == 413, path
        assert refused.headers["content-type"].startswith("text/html")
        assert f"larger than {limit:,} bytes" in refused.text and "<h1>413</h1>" in refused.text
        assert body.taken == 0
    # sent without a length: read up to the limit, then refused the same way
    body = Body(limit + 1, chunk=MB)
    refused = b.http.post(
        f"/applicant/tracks/{TRACK_KEY}/apply",
        content=body,
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert refused.status_code == 413 and f"larger than {limit:,} bytes" in refused.text
    assert body.taken <= limit + MB
    assert stored(w) == before and w.footprint() == footprint


def test_a_page_upload_without_a_live_applicant_session_is_refused_before_its_body_is_read(opened: World) -> None:
    w = opened
    path = f"/applicant/tracks/{TRACK_KEY}/apply"
    headers = {"Content-Type": "multipart/form-data; boundary=x"}
    before = stored(w)
    nobody = Browser(w)
    office = Browser(w).sign_in()
    ended = Browser(w).sign_in("applicant", HWASEONG)
    with w.app.db.begin() as conn:
        conn.execute(sa.update(WEB_SESSION).where(WEB_SESSION.c.subject == HWASEONG).values(revoked_at=w.clock.now()))
    evaluator = Browser(w).sign_in("evaluator", KIM)
    for who, status, says in (
        (nobody, 401, "sign in first"),
        (ended, 401, "your session has ended"),
        (office, 403, "this form is for applicants (signed in as admin)"),
        (evaluator, 403, "this form is for applicants (signed in as evaluator)"),
    ):
        body = Body(3 * MB)
        refused = who.http.post(path, content=body, headers=headers)
        assert (refused.status_code, body.taken) == (status, 0), refused.text
        assert says in refused.text and refused.headers["content-type"].startswith("text/html")
    assert stored(w) == before


def test_the_other_page_forms_keep_the_2_mib_limit(written: World) -> None:
    w = written
    b = Browser(w).sign_in("applicant", SEJONG)
    body = Body(3 * MB)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(3 * MB)}
    refused = b.http.post(f"/applicant/applications/{w.id(SEJONG)}/objection", content=body, headers=headers)
    assert refused.status_code == 413 and body.taken == 0
    assert "larger than 2,097,152 bytes" in refused.text and refused.headers["content-type"].startswith("text/html")
    # a look-alike path is no upload form either
    refused = b.http.post(f"/applicant/applications/{w.id(SEJONG)}/kickoff/x", content=Body(3 * MB), headers=headers)
    assert refused.status_code == 413


def test_the_session_cookie_is_the_console_s() -> None:
    assert SESSION_COOKIE == COOKIE
