"""Plan documents and answers over HTTP (workflow/api/documents.py): multipart upload, the
listing, the streamed download with its headers, who may read what, every refusal as one line
of JSON with its status, and the answers to a track's questions."""

from __future__ import annotations

import base64
import hashlib
import io
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from email.message import Message
from email.utils import collapse_rfc2231_value
from pathlib import Path
from typing import Any

import httpx
import pytest

from gongmo.workflow.api import create_api
from gongmo.workflow.api.limits import MULTIPART_OVERHEAD, upload_limit
from gongmo.workflow.core import samples
from gongmo.workflow.core.models import BLOB, BLOB_CHUNK, DOCUMENT, EVENT
from gongmo.workflow.runtime.wiring import open_app
from tests.conftest import CONFIG, config_copy, kst
from tests.workflow import plans
from tests.workflow.api.conftest import (
    ADMIN,
    APP_SEJONG,
    APP_SIHEUNG,
    CHANGWON,
    EV_JUNG,
    EV_KIM,
    SEJONG,
    SIHEUNG,
    World,
)

UPLOAD = "POST /applications/{application_id}/documents/{kind}"
LIST = "GET /applications/{application_id}/documents"
DOWNLOAD = "GET /applications/{application_id}/documents/{kind}"
PUT_ANSWERS = "PUT /applications/{application_id}/answers"
GET_ANSWERS = "GET /applications/{application_id}/answers"
DETAIL = "GET /applications/{application_id}"
SUBMIT = "POST /applications"

PLAN_NAME = "2024 강소형 스마트도시 사업계획서(세종).pdf"
BUDGET_NAME = "사업비 산출내역서.xlsx"
LIVING_LAB = "living-lab-2022"
MB = 1024 * 1024


def upload(w: World, code: str, kind: str, name: str, data: bytes, who: Any, **kw: Any) -> httpx.Response:
    files = {"file": (name, data, "application/octet-stream")}
    return w.post(f"/applications/{w.id(code)}/documents/{kind}", who, files=files, **kw)


def refused(answer: httpx.Response, status: int) -> str:
    """The refusal's one line, after checking its status and its shape."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert isinstance(body["error"], str) and "\n" not in body["error"] and body["error"], body
    return str(body["error"])


def filename_of(header: str) -> str:
    """The file name a client reads from Content-Disposition (RFC 6266: filename* first), parsed
    by the standard library's RFC 2231 decoder; the plain `filename` is its ASCII stand-in."""
    message = Message()
    message["Content-Disposition"] = header
    params = message.get_params(header="content-disposition")
    assert params is not None and params[0] == ("attachment", "")
    plain = [v for k, v in params if k == "filename" and isinstance(v, str)]
    encoded = [v for k, v in params if k == "filename" and isinstance(v, tuple)]
    assert len(plain) == 1 and plain[0].isascii() and len(encoded) == 1, params
    assert encoded[0][0] == "UTF-8"
    return str(collapse_rfc2231_value(encoded[0]))


def padded_pdf(size: int, text: str = "padded") -> bytes:
    """A PDF of exactly `size` bytes: a sample, a comment line of padding, and %%EOF again at its end."""
    head, tail = samples.pdf(text) + b"%", b"\n%%EOF\n"
    return head + b"x" * (size - len(head) - len(tail)) + tail


def repr_digest(data: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


# -- upload, list, download -------------------------------------------------------------------


@pytest.mark.routes(UPLOAD, LIST, DOWNLOAD, DETAIL)
def test_an_applicant_uploads_lists_and_downloads_its_plan(world: Callable[..., World], db_url: str) -> None:
    w = world("open", db_url)
    plan, budget = samples.pdf("sejong plan"), samples.xlsx()
    sent = upload(w, SEJONG, "plan", PLAN_NAME, plan, APP_SEJONG)
    assert sent.status_code == 201, sent.text
    stored = sent.json()
    assert stored | {"document_id": 0, "uploaded_at": ""} == {
        "document_id": 0,
        "application_id": w.id(SEJONG),
        "kind": "plan",
        "version": 1,
        "file_name": PLAN_NAME,
        "size": len(plan),
        "file_type": "pdf",
        "sha256": hashlib.sha256(plan).hexdigest(),
        "current": True,
        "uploaded_at": "",
        "replaced_version": None,
    }
    assert upload(w, SEJONG, "budget", BUDGET_NAME, budget, APP_SEJONG).status_code == 201

    listed = w.get(f"/applications/{w.id(SEJONG)}/documents", APP_SEJONG)
    assert listed.status_code == 200
    rows = listed.json()
    assert [(r["kind"], r["version"], r["current"], r["file_name"], r["file_type"]) for r in rows] == [
        ("budget", 1, True, BUDGET_NAME, "xlsx"),
        ("plan", 1, True, PLAN_NAME, "pdf"),
    ]
    assert rows[1]["sha256"] == hashlib.sha256(plan).hexdigest() and rows[1]["actor"] == SEJONG

    for who in (APP_SEJONG, ADMIN):
        got = w.get(f"/applications/{w.id(SEJONG)}/documents/plan", who)
        assert got.status_code == 200, got.text
        assert got.content == plan
        assert got.headers["content-type"] == "application/pdf"
        assert got.headers["content-length"] == str(len(plan))
        assert filename_of(got.headers["content-disposition"]) == PLAN_NAME
        assert got.headers["content-disposition"].startswith("attachment; ")
        assert got.headers["etag"] == f'"{hashlib.sha256(plan).hexdigest()}"'
        assert got.headers["repr-digest"] == repr_digest(plan)
    sheet = w.get(f"/applications/{w.id(SEJONG)}/documents/budget", ADMIN)
    assert sheet.content == budget and sheet.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml"
    )
    assert filename_of(sheet.headers["content-disposition"]) == BUDGET_NAME

    # Every download is an event: who, which file; the office sees them in the application's detail.
    downloads = w.rows(EVENT, EVENT.c.kind == "document_downloaded")
    assert [(e["actor"], e["role"], e["application_id"]) for e in downloads] == [
        (SEJONG, "applicant", w.id(SEJONG)),
        ("office-lee", "admin", w.id(SEJONG)),
        ("office-lee", "admin", w.id(SEJONG)),
    ]
    detail = w.get(f"/applications/{w.id(SEJONG)}", ADMIN).json()
    seen = [e for e in detail["events"] if e["kind"] == "document_downloaded"]
    assert [(e["actor"], e["detail"]["kind"], e["detail"]["file_name"]) for e in seen] == [
        (SEJONG, "plan", PLAN_NAME),
        ("office-lee", "plan", PLAN_NAME),
        ("office-lee", "budget", BUDGET_NAME),
    ]
    assert [(d["kind"], d["sha256"]) for d in detail["documents"]] == [
        ("budget", hashlib.sha256(budget).hexdigest()),
        ("plan", hashlib.sha256(plan).hexdigest()),
    ]


@pytest.mark.routes(UPLOAD, LIST, DOWNLOAD)
def test_a_replaced_file_stays_in_the_history_and_a_version_is_downloaded_by_number(opened: World) -> None:
    w = opened
    first, second = samples.pdf("first"), samples.hwpx("second")
    assert upload(w, SEJONG, "plan", "계획서.pdf", first, ADMIN).status_code == 201
    again = upload(w, SEJONG, "plan", "계획서 수정본.hwpx", second, APP_SEJONG)
    assert again.status_code == 201 and (again.json()["version"], again.json()["replaced_version"]) == (2, 1)
    rows = w.get(f"/applications/{w.id(SEJONG)}/documents", ADMIN).json()
    assert [(r["version"], r["current"], r["file_type"]) for r in rows] == [(1, False, "pdf"), (2, True, "hwpx")]
    current = w.get(f"/applications/{w.id(SEJONG)}/documents/plan", ADMIN)
    assert current.content == second and current.headers["content-type"] == "application/hwp+zip"
    old = w.get(f"/applications/{w.id(SEJONG)}/documents/plan?version=1", APP_SEJONG)
    assert old.content == first and filename_of(old.headers["content-disposition"]) == "계획서.pdf"
    assert "no plan version 9" in refused(w.get(f"/applications/{w.id(SEJONG)}/documents/plan?version=9", ADMIN), 404)
    assert "no budget document" in refused(w.get(f"/applications/{w.id(SEJONG)}/documents/budget", ADMIN), 404)
    # Annexes take several files: replace names the one replaced.
    for n in (1, 2):
        assert upload(w, SEJONG, "annex", f"부속{n}.png", samples.png(), ADMIN).status_code == 201
    swapped = upload(w, SEJONG, "annex", "부속1 수정.jpg", samples.jpeg(), ADMIN, params={"replace": 1})
    assert swapped.status_code == 201 and swapped.json()["replaced_version"] == 1
    by_form = w.post(
        f"/applications/{w.id(SEJONG)}/documents/annex",
        ADMIN,
        files={"file": ("부속2 수정.pdf", samples.pdf(), "application/pdf")},
        data={"replace": "2"},
    )
    assert by_form.status_code == 201 and by_form.json()["replaced_version"] == 2
    annexes = [r for r in w.get(f"/applications/{w.id(SEJONG)}/documents", ADMIN).json() if r["kind"] == "annex"]
    assert [(r["version"], r["current"]) for r in annexes] == [(1, False), (2, False), (3, True), (4, True)]
    # Two current annexes: a download names its version.
    assert "version" in refused(w.get(f"/applications/{w.id(SEJONG)}/documents/annex", ADMIN), 422)


@pytest.mark.routes(UPLOAD, LIST, DOWNLOAD)
def test_another_applicant_may_not_upload_list_or_download(opened: World) -> None:
    w = opened
    assert upload(w, SEJONG, "plan", "계획서.pdf", samples.pdf(), APP_SEJONG).status_code == 201
    before = w.count(DOCUMENT)
    text = refused(upload(w, SEJONG, "plan", "남의 계획서.pdf", samples.pdf("x"), APP_SIHEUNG), 403)
    assert f"not {SIHEUNG}'s" in text
    assert w.count(DOCUMENT) == before
    refused(w.get(f"/applications/{w.id(SEJONG)}/documents", APP_SIHEUNG), 403)
    refused(w.get(f"/applications/{w.id(SEJONG)}/documents/plan", APP_SIHEUNG), 403)
    # An evaluator never uploads; one not assigned reads nothing.
    refused(upload(w, SEJONG, "plan", "계획서.pdf", samples.pdf(), EV_KIM), 403)
    refused(w.get(f"/applications/{w.id(SEJONG)}/documents/plan", EV_KIM), 403)
    assert w.rows(EVENT, EVENT.c.kind == "document_downloaded") == []


@pytest.mark.routes(LIST, DOWNLOAD)
def test_an_assigned_evaluator_downloads_and_one_in_conflict_or_not_assigned_gets_403(
    world: Callable[..., World], db_url: str
) -> None:
    w = world("written", db_url)  # the plans came with their documents; the committee assigned
    listed = w.get(f"/applications/{w.id(SEJONG)}/documents", EV_KIM)
    assert listed.status_code == 200, listed.text
    assert {r["kind"] for r in listed.json()} == {"plan", "budget"} and all(r["current"] for r in listed.json())
    assert all("actor" not in r or r["actor"] is None for r in listed.json())
    got = w.get(f"/applications/{w.id(SEJONG)}/documents/plan", EV_KIM)
    assert got.status_code == 200 and got.content.startswith(b"%PDF-")
    assert got.headers["repr-digest"] == repr_digest(got.content)
    # 정위원 (경기연구원) is in conflict with 시흥 (경기): assigned to none of 경기's, and refused when assigned.
    w.assign(SIHEUNG, EV_JUNG[1])
    in_conflict = refused(w.get(f"/applications/{w.id(SIHEUNG)}/documents/plan", EV_JUNG), 403)
    assert "not yours to evaluate (same region as the applicant" in in_conflict
    refused(w.get(f"/applications/{w.id(SIHEUNG)}/documents", EV_JUNG), 403)
    # 창원 was disqualified at the review: nobody was assigned to it.
    assert "not assigned" in refused(w.get(f"/applications/{w.id(CHANGWON)}/documents/plan", EV_KIM), 403)
    downloads = w.rows(EVENT, EVENT.c.kind == "document_downloaded")
    assert [(e["actor"], e["application_id"]) for e in downloads] == [(EV_KIM[1], w.id(SEJONG))]
    # The window is closed: nobody uploads now, not even the office.
    assert "clos" in refused(upload(w, SEJONG, "plan", "늦은 계획서.pdf", samples.pdf(), ADMIN), 409)


# -- refusals ---------------------------------------------------------------------------------


def truncated_hwpx() -> bytes:
    whole = samples.hwpx()
    return whole[: len(whole) // 2]


def exe() -> bytes:
    return (
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 50 + b"This program cannot be run in DOS mode"
    )


@pytest.mark.routes(UPLOAD)
@pytest.mark.parametrize(
    ("name", "data", "status", "words"),
    [
        ("계획서.pdf", exe(), 422, "not an accepted type"),
        ("계획서.hwpx", truncated_hwpx(), 422, "not an accepted type"),
        ("계획서.pdf", b"", 422, "empty"),
        ("../..", samples.pdf(), 422, "empty once path parts"),
        ("계획서.png", samples.png(), 422, "not an accepted type"),
    ],
    ids=["exe-renamed-pdf", "truncated-hwpx", "empty", "no-name-left", "png-as-plan"],
)
def test_a_bad_file_is_refused_in_one_line_and_nothing_is_stored(
    world: Callable[..., World], db_url: str, name: str, data: bytes, status: int, words: str
) -> None:
    w = world("open", db_url)
    before = (w.count(DOCUMENT), w.count(BLOB), w.count(BLOB_CHUNK), w.footprint())
    text = refused(upload(w, SEJONG, "plan", name, data, APP_SEJONG), status)
    assert words in text
    assert (w.count(DOCUMENT), w.count(BLOB), w.count(BLOB_CHUNK), w.footprint()) == before


@pytest.mark.routes(UPLOAD)
def test_a_name_is_cleaned_and_a_bad_kind_or_a_missing_file_field_is_422(opened: World) -> None:
    w = opened
    # httpx would percent-encode a control character in a file name: the part is written by hand.
    raw = (
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="'
        + "../../etc/계획\x07서.pdf".encode()
        + b'"\r\nContent-Type: application/pdf\r\n\r\n'
        + samples.pdf()
        + b"\r\n--x--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=x"}
    cleaned = w.post(f"/applications/{w.id(SEJONG)}/documents/plan", APP_SEJONG, content=raw, headers=headers)
    assert cleaned.status_code == 201, cleaned.text
    assert cleaned.json()["file_name"] == "계획서.pdf"
    long = "가" * 300 + ".pdf"
    kept = upload(w, SEJONG, "plan", long, samples.pdf("long"), APP_SEJONG).json()
    assert kept["file_name"].endswith(".pdf") and len(kept["file_name"].encode()) <= 255
    assert kept["file_name"].startswith("가" * 80)

    text = refused(upload(w, SEJONG, "slides", "발표.pdf", samples.pdf(), APP_SEJONG), 422)
    assert "'slides' is not a document kind" in text and "plan, budget, annex" in text
    no_file = w.post(f"/applications/{w.id(SEJONG)}/documents/plan", APP_SEJONG, data={"other": "x"})
    assert "'file'" in refused(no_file, 422)
    as_json = w.post(f"/applications/{w.id(SEJONG)}/documents/plan", APP_SEJONG, json={"file": "x"})
    assert "'file'" in refused(as_json, 422)
    broken = w.post(
        f"/applications/{w.id(SEJONG)}/documents/plan",
        APP_SEJONG,
        content=b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\nabc',
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code in (400, 422) and "\n" not in broken.json()["error"]
    assert "replace" in refused(
        upload(w, SEJONG, "plan", "계획서.pdf", samples.pdf(), APP_SEJONG, params={"replace": 0}), 422
    )
    assert "not a current plan file" in refused(
        upload(w, SEJONG, "plan", "계획서.pdf", samples.pdf(), APP_SEJONG, params={"replace": 1}), 422
    )
    refused(w.post("/applications/99999/documents/plan", ADMIN, files={"file": ("a.pdf", samples.pdf())}), 404)


def part(name: str, data: bytes, filename: str | None = None, boundary: bytes = b"x") -> bytes:
    """One part of a multipart/form-data body, written by hand."""
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    return b"--" + boundary + b"\r\nContent-Disposition: " + disposition.encode() + b"\r\n\r\n" + data + b"\r\n"


def form(*parts: bytes, boundary: bytes = b"x") -> bytes:
    return b"".join(parts) + b"--" + boundary + b"--\r\n"


MULTIPART_X = "multipart/form-data; boundary=x"


@pytest.mark.routes(UPLOAD)
@pytest.mark.parametrize(
    ("content_type", "body", "words"),
    [
        ("multipart/form-data", form(part("file", samples.pdf(), "a.pdf")), "names no boundary"),
        ("multipart/form-data; boundary=" + "b" * 300, b"--" + b"b" * 300, "boundary is not usable"),
        ("text/plain", samples.pdf(), "'text/plain' is not multipart/form-data"),
        (MULTIPART_X, b"this is no multipart body at all", "not valid multipart/form-data"),
        (
            MULTIPART_X,
            b"--x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n" + samples.pdf() + b"\r\n--x--\r\n",
            "not valid multipart/form-data",
        ),
        (MULTIPART_X, form(part("other", b"1"), part("replace", b"1")), "body field 'file' missing"),
        (MULTIPART_X, form(part("file", samples.pdf())), "body field 'file' is a plain form field"),
        (
            MULTIPART_X,
            form(part("file", samples.pdf(), "a.pdf"), part("file", samples.pdf("b"), "b.pdf")),
            "body field 'file': two files",
        ),
        (MULTIPART_X, form(part("replace", b"abc"), part("file", samples.pdf(), "a.pdf")), "'replace' = 'abc'"),
        (MULTIPART_X, form(part("file", samples.pdf(), "a.pdf"), part("replace", b"0")), "'replace' = '0'"),
        (MULTIPART_X, form(part("replace", b"9" * 100), part("file", samples.pdf(), "a.pdf")), "'replace' = '999"),
        (MULTIPART_X, form(part("file", samples.pdf(), "../..")), "empty once path parts"),
    ],
    ids=[
        "no-boundary",
        "boundary-too-long",
        "not-multipart",
        "garbage",
        "header-too-long",
        "no-file-part",
        "file-without-name",
        "two-files",
        "replace-not-a-number",
        "replace-zero",
        "replace-too-long",
        "no-name-left",
    ],
)
def test_a_body_that_is_no_usable_upload_form_is_422_in_one_line_and_stores_nothing(
    world: Callable[..., World], db_url: str, content_type: str, body: bytes, words: str
) -> None:
    w = world("open", db_url)
    before = (w.count(DOCUMENT), w.count(BLOB), w.count(BLOB_CHUNK), w.footprint())
    answer = w.post(
        f"/applications/{w.id(SEJONG)}/documents/plan", APP_SEJONG, content=body, headers={"Content-Type": content_type}
    )
    assert words in refused(answer, 422)
    assert (w.count(DOCUMENT), w.count(BLOB), w.count(BLOB_CHUNK), w.footprint()) == before


@pytest.mark.routes(UPLOAD)
def test_the_form_s_replace_field_and_other_fields_in_any_order_are_read(opened: World) -> None:
    w = opened
    for n in (1, 2):
        assert upload(w, SEJONG, "annex", f"부속{n}.png", samples.png(), ADMIN).status_code == 201
    body = form(part("note", b"dropped" * 1000), part("file", samples.jpeg(), "부속2 수정.jpg"), part("replace", b"2"))
    swapped = w.post(
        f"/applications/{w.id(SEJONG)}/documents/annex", ADMIN, content=body, headers={"Content-Type": MULTIPART_X}
    )
    assert swapped.status_code == 201, swapped.text
    assert (swapped.json()["file_name"], swapped.json()["replaced_version"]) == ("부속2 수정.jpg", 2)
    assert w.get(f"/applications/{w.id(SEJONG)}/documents/annex?version=3", ADMIN).content == samples.jpeg()


@pytest.mark.routes(UPLOAD)
def test_an_upload_leaves_no_temporary_file_whether_taken_or_refused(
    opened: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = opened
    spool_dir = tmp_path / "spools"
    spool_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool_dir))
    refused(upload(w, SEJONG, "plan", "계획서.pdf", exe(), APP_SEJONG), 422)
    refused(upload(w, SEJONG, "plan", "계획서.pdf", padded_pdf(50 * MB + 1), APP_SEJONG), 413)
    refused(upload(w, SEJONG, "budget", "예산.pdf", samples.pdf(), EV_KIM), 403)
    assert upload(w, SEJONG, "plan", "계획서.pdf", samples.pdf(), APP_SEJONG).status_code == 201
    assert list(spool_dir.iterdir()) == []


def test_the_openapi_document_shows_the_upload_as_a_multipart_form_with_a_binary_file(opened: World) -> None:
    spec = create_api(opened.app).openapi()
    operation = spec["paths"]["/applications/{application_id}/documents/{kind}"]["post"]
    schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert operation["requestBody"]["required"] is True
    assert schema["required"] == ["file"]
    assert schema["properties"]["file"] == schema["properties"]["file"] | {"type": "string", "format": "binary"}
    assert schema["properties"]["replace"]["type"] == "integer" and schema["properties"]["replace"]["minimum"] == 1
    assert {p["name"] for p in operation["parameters"]} == {"application_id", "kind", "replace"}
    assert {"201", "413", "422"} <= set(operation["responses"])


@pytest.mark.routes(UPLOAD)
def test_a_file_over_its_kind_s_limit_is_413_and_one_at_it_is_taken(
    world: Callable[..., World], db_url: str, tmp_path: Path
) -> None:
    """budget takes 1 MiB here (max_mb = 1): one byte over is 413 naming the file and the limit."""
    base = world("open", db_url)
    text = CONFIG.read_text(encoding="utf-8").replace("max_mb = 20", "max_mb = 1")
    url = base.app.db.url.render_as_string(hide_password=False)
    w = World(open_app(config_copy(tmp_path, text=text, database_url=url), base.clock), base.clock)
    try:
        limit = 1 * MB
        at_limit = padded_pdf(limit, "budget")
        before = (w.count(DOCUMENT), w.count(BLOB))
        over = upload(w, SEJONG, "budget", "예산서.pdf", padded_pdf(limit + 1, "budget"), APP_SEJONG)
        message = refused(over, 413)
        assert "예산서.pdf" in message and "1,048,576 bytes" in message and "budget" in message
        assert (w.count(DOCUMENT), w.count(BLOB)) == before
        taken = upload(w, SEJONG, "budget", "예산서.pdf", at_limit, APP_SEJONG)
        assert taken.status_code == 201, taken.text
        assert taken.json()["size"] == limit
    finally:
        w.close()


class Counted:
    """A body that records how much of it was read."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.taken = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.taken < self.size:
            piece = b" " * min(64 * 1024, self.size - self.taken)
            self.taken += len(piece)
            yield piece


@pytest.mark.routes(UPLOAD)
def test_an_upload_over_the_middleware_s_cap_is_413_before_its_body_is_read(opened: World) -> None:
    w = opened
    cap = upload_limit(w.app)
    assert cap == 50 * MB + MULTIPART_OVERHEAD  # plan and annex: 50 MiB each
    body = Counted(cap + 1)
    headers = {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(cap + 1)}
    answer = w.post(f"/applications/{w.id(SEJONG)}/documents/plan", APP_SEJONG, content=body, headers=headers)
    text = refused(answer, 413)
    assert f"{cap:,} bytes" in text and "document kind" in text
    assert body.taken == 0
    # Any other route keeps the 2 MB cap.
    other = Counted(2 * MB + 1)
    headers = {"Content-Type": "application/json", "Content-Length": str(2 * MB + 1)}
    assert "max_body_bytes" in refused(
        w.put(f"/applications/{w.id(SEJONG)}/answers", ADMIN, content=other, headers=headers), 413
    )
    assert other.taken == 0


@pytest.mark.routes(UPLOAD, DOWNLOAD)
def test_a_file_over_the_2_mb_body_cap_but_within_its_kind_is_taken(opened: World) -> None:
    w = opened
    big = padded_pdf(3 * MB)
    sent = upload(w, SEJONG, "plan", "큰 계획서.pdf", big, APP_SEJONG)
    assert sent.status_code == 201, sent.text
    assert sent.json()["sha256"] == hashlib.sha256(big).hexdigest()
    got = w.get(f"/applications/{w.id(SEJONG)}/documents/plan", APP_SEJONG)
    assert got.content == big and got.headers["content-length"] == str(len(big))


@pytest.mark.routes(UPLOAD)
def test_an_upload_at_the_close_is_409_and_stores_nothing(world: Callable[..., World], db_url: str) -> None:
    w = world("open", db_url)
    w.clock.set(kst("2024-05-29 18:00"))  # the receipt closes at this second
    before = (w.count(DOCUMENT), w.count(BLOB))
    answer = upload(w, SEJONG, "plan", "계획서.pdf", samples.pdf(), APP_SEJONG)
    text = refused(answer, 409)
    assert "closed" in text or "closes" in text
    assert answer.json().get("closes")
    assert (w.count(DOCUMENT), w.count(BLOB)) == before


# -- answers ----------------------------------------------------------------------------------


@pytest.fixture
def living_lab(opened: World) -> World:
    """세종's application in the living-lab side call, inside its receipt window, with its documents."""
    opened.clock.set(kst("2022-02-22 10:00"))
    plans.attach(opened.app, LIVING_LAB, SEJONG)
    return opened


def lab_id(w: World, code: str = SEJONG) -> int:
    found = plans.application_id(w.app, LIVING_LAB, code)
    assert found is not None
    return found


@pytest.mark.routes(PUT_ANSWERS, GET_ANSWERS, SUBMIT, DETAIL)
def test_answers_are_given_changed_and_submitted_with_the_plan(living_lab: World) -> None:
    w = living_lab
    url = f"/applications/{lab_id(w)}/answers"
    given = w.put(url, APP_SEJONG, json={"living_lab": "yes", "residents": "1,500"})
    assert given.status_code == 200, given.text
    assert given.json() == {"living_lab": True, "residents": 1500}
    changed = w.put(url, APP_SEJONG, json={"residents": None, "living_lab_plan": " 세종 스마트 리빙랩 "})
    assert changed.json() == {"living_lab": True, "living_lab_plan": "세종 스마트 리빙랩"}
    assert w.get(url, APP_SEJONG).json() == changed.json()
    assert w.get(url, ADMIN).json() == changed.json()
    refused(w.get(url, APP_SIHEUNG), 403)
    refused(w.put(url, APP_SIHEUNG, json={"living_lab": False}), 403)

    body = {"track": LIVING_LAB, "national_krw": 900_000_000, "local_krw": 900_000_000, "title": "리빙랩"}
    submitted = w.post("/applications", APP_SEJONG, json=body | {"answers": {"residents": 40}})
    assert submitted.status_code == 201, submitted.text
    detail = w.get(f"/applications/{lab_id(w)}", ADMIN).json()
    assert detail["state"] == "receipt"
    assert detail["answers"] == {"living_lab": True, "living_lab_plan": "세종 스마트 리빙랩", "residents": 40}
    assert {d["kind"] for d in detail["documents"] if d["current"]} == {"plan", "budget"}


@pytest.mark.routes(PUT_ANSWERS, SUBMIT)
def test_a_bad_answer_is_refused_naming_the_question_and_changes_nothing(living_lab: World) -> None:
    w = living_lab
    url = f"/applications/{lab_id(w)}/answers"
    assert w.put(url, APP_SEJONG, json={"living_lab": True}).status_code == 200
    before = w.footprint()
    assert "answer 'living_lab'" in refused(w.put(url, APP_SEJONG, json={"living_lab": "maybe"}), 422)
    assert "answer 'residents'" in refused(w.put(url, APP_SEJONG, json={"residents": -1}), 422)
    assert "answer 'colour' is not a question" in refused(w.put(url, APP_SEJONG, json={"colour": "red"}), 422)
    refused(w.put(url, APP_SEJONG, json=["living_lab"]), 422)
    assert w.get(url, APP_SEJONG).json() == {"living_lab": True}
    assert w.footprint() == before
    # A required answer removed: the submission names it.
    assert w.put(url, APP_SEJONG, json={"living_lab": None}).json() == {}
    before = w.footprint()
    body = {"track": LIVING_LAB, "national_krw": 900_000_000, "local_krw": 900_000_000}
    assert "answer 'living_lab' is required" in refused(w.post("/applications", APP_SEJONG, json=body), 422)
    assert w.footprint() == before


@pytest.mark.routes(PUT_ANSWERS)
def test_answers_after_the_close_are_409(living_lab: World) -> None:
    w = living_lab
    w.clock.set(kst("2022-02-23 18:00"))
    refused(w.put(f"/applications/{lab_id(w)}/answers", APP_SEJONG, json={"living_lab": True}), 409)


@pytest.mark.routes(SUBMIT)
def test_a_plan_without_its_required_documents_is_refused_naming_them(opened: World) -> None:
    w = opened
    body = {"track": "strong-small-2024", "national_krw": 8_000_000_000, "local_krw": 8_000_000_000}
    body |= {"project_type": "climate_crisis"}
    assert upload(w, SEJONG, "plan", "계획서.pdf", samples.pdf(), APP_SEJONG).status_code == 201
    text = refused(w.post("/applications", APP_SEJONG, json=body), 422)
    assert "budget" in text and "missing" in text
    assert upload(w, SEJONG, "budget", "예산.xlsx", samples.xlsx(), APP_SEJONG).status_code == 201
    assert w.post("/applications", APP_SEJONG, json=body).status_code == 201


def test_a_truncated_zip_is_not_a_valid_zip() -> None:
    """The truncated sample really is broken (else the refusal above proves nothing)."""
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(io.BytesIO(truncated_hwpx())).testzip()
