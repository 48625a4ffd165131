"""A plan's documents and answers (engine/uploads.py) and the submission that needs them
(engine/intake.py), on SQLite and PostgreSQL: every refusal leaves nothing stored."""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gongmo.states.errors import (
    Conflict,
    GongmoError,
    InvalidInput,
    NotFound,
    NotPermitted,
    OutsideWindow,
    TooLarge,
)
from gongmo.states.lifecycle import Role
from gongmo.states.questions import brn_check_digit
from gongmo.workflow.core import samples
from gongmo.workflow.core.actors import SYSTEM, Actor
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import APPLICATION, AUDIT, BLOB, BLOB_CHUNK, CHUNK_BYTES, DOCUMENT, EVENT, OUTBOX
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.engine.app import App
from gongmo.workflow.engine.uploads import HASH_BATCH, HASH_QUEUE, Spool, Upload
from gongmo.workflow.stages import review
from tests.conftest import CONFIG, config_copy, kst, make_app
from tests.workflow import plans

TRACK = "strong-small-2024"
PP = "public-private-2022"  # asks the consortium question, with a members_include rule
LAB = "living-lab-2022"
HWASEONG, BUCHEON, GONGJU = "41590", "41190", "44150"
OFFICE = plans.OFFICE
APPLICANT = Actor("41590", Role.APPLICANT)
IN_WINDOW = "2024-05-28 10:00"
CLOSE = "2024-05-29 18:00"


# -- helpers ----------------------------------------------------------------------------------


def at(app: App, when: str) -> None:
    assert isinstance(app.clock, FixedClock)
    app.clock.set(kst(when))


def started(app: App, code: str = HWASEONG, track: str = TRACK, when: str = IN_WINDOW) -> int:
    at(app, when)
    return app.moves.start(track, code, OFFICE)


def stored(app: App) -> dict[str, int]:
    """Rows of the blob store and the document table: a refusal adds none."""
    with read(app.db) as conn:
        return {
            t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in (BLOB, BLOB_CHUNK, DOCUMENT, EVENT)
        }


def docs(app: App, application_id: int) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = sa.select(DOCUMENT).where(DOCUMENT.c.application_id == application_id)
        return [dict(r) for r in conn.execute(query.order_by(DOCUMENT.c.kind, DOCUMENT.c.version)).mappings()]


def add(app: App, application_id: int, kind: str, name: str, data: bytes, **kw: Any) -> Upload:
    return app.moves.uploads.add(application_id, kind, name, io.BytesIO(data), OFFICE, **kw)


def pdf_of_size(size: int) -> bytes:
    """A file the detector takes as a PDF, padded with a comment line to exactly `size` bytes."""
    base = samples.pdf()
    head, rest = base[:9], base[9:]  # b"%PDF-1.4\n"
    pad = size - len(base) - 2
    assert pad >= 0
    data = head + b"%" + b"x" * pad + b"\n" + rest
    assert len(data) == size
    return data


def refused(app: App, error: type[GongmoError], match: str, *args: Any, **kw: Any) -> GongmoError:
    before = stored(app)
    with pytest.raises(error, match=match) as caught:
        add(app, *args, **kw)
    assert stored(app) == before, "a refused upload stores nothing"
    return caught.value


def brn(first_nine: str) -> str:
    return f"{first_nine[:3]}-{first_nine[3:5]}-{first_nine[5:]}{brn_check_digit(first_nine)}"


CONSORTIUM = [
    {"name": "화성시", "kind": "local_government", "brn": brn("124830000")},
    {"name": "스마트모빌리티(주)", "kind": "private_company", "brn": brn("220810000")},
    {"name": "수원대학교", "kind": "university", "brn": brn("135820000")},
]


# -- what an upload stores --------------------------------------------------------------------


def test_an_upload_stores_the_file_by_its_hash_and_records_the_event(app: App) -> None:
    app_id = started(app)
    data = samples.pdf()
    up = add(app, app_id, "plan", "사업계획서.pdf", data)
    assert (up.kind, up.version, up.file_name, up.file_type, up.current) == ("plan", 1, "사업계획서.pdf", "pdf", True)
    assert (up.size, up.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert up.uploaded_at == kst(IN_WINDOW) and up.uploaded_at.tzinfo is not None
    assert up.replaced_version is None
    [row] = docs(app, app_id)
    assert (row["actor"], row["role"], row["sha256"]) == ("office", "admin", up.sha256)
    with read(app.db) as conn:
        [event] = conn.execute(sa.select(EVENT).where(EVENT.c.kind == "document_uploaded")).mappings().all()
    assert event["application_id"] == app_id
    assert json.loads(event["detail"]) == {
        "kind": "plan",
        "version": 1,
        "file_name": "사업계획서.pdf",
        "size": len(data),
        "file_type": "pdf",
        "sha256": up.sha256,
        "replaced_version": None,
    }


def test_the_same_bytes_twice_are_stored_once(app: App) -> None:
    first = started(app)
    second = started(app, GONGJU)
    add(app, first, "plan", "a.pdf", samples.pdf())
    add(app, second, "plan", "b.pdf", samples.pdf())
    assert stored(app)["blob"] == 1 and stored(app)["document"] == 2


def test_a_replaced_plan_stays_in_history_and_the_new_one_is_current(app: App) -> None:
    app_id = started(app)
    one = add(app, app_id, "plan", "v1.pdf", samples.pdf("one"))
    two = add(app, app_id, "plan", "v2.hwpx", samples.hwpx())
    assert (two.version, two.replaced_version, two.file_type) == (2, 1, "hwpx")
    rows = docs(app, app_id)
    assert [(r["version"], r["current"], r["sha256"]) for r in rows] == [
        (1, False, one.sha256),
        (2, True, two.sha256),
    ]


def test_every_accepted_type_is_taken_by_the_kind_that_lists_it(app: App) -> None:
    app_id = started(app)
    for i, (kind, make) in enumerate(samples.SAMPLES.items(), start=1):
        up = add(app, app_id, "annex", f"annex.{kind}", make())
        assert (up.file_type, up.version) == (kind, i)


# -- refusals: nothing stored -----------------------------------------------------------------


def test_an_exe_renamed_pdf_is_refused_naming_the_file_and_what_its_bytes_are(app: App) -> None:
    app_id = started(app)
    exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200
    refused(
        app,
        InvalidInput,
        r"plan: setup\.pdf is not an accepted type: .*Windows executable.*pdf, hwp, hwpx, docx",
        app_id,
        "plan",
        "setup.pdf",
        exe,
    )


def test_a_truncated_zip_sent_as_hwpx_is_refused(app: App) -> None:
    app_id = started(app)
    cut = samples.hwpx()[:-200]
    refused(
        app,
        InvalidInput,
        r"plan: 계획\.hwpx is not an accepted type: its bytes are a (truncated|damaged) zip",
        app_id,
        "plan",
        "계획.hwpx",
        cut,
    )


def test_an_empty_file_is_refused(app: App) -> None:
    app_id = started(app)
    refused(app, InvalidInput, r"^빈파일\.pdf: the file is empty \(0 bytes\)", app_id, "plan", "빈파일.pdf", b"")


def test_a_type_the_kind_does_not_take_is_refused_naming_its_types(app: App) -> None:
    app_id = started(app)
    refused(
        app,
        InvalidInput,
        r"budget: 사진\.png is not an accepted type: its bytes are a PNG image;"
        r" this kind takes xlsx, pdf, hwp, hwpx",
        app_id,
        "budget",
        "사진.png",
        samples.png(),
    )


def test_one_byte_over_the_limit_is_refused_and_exactly_the_limit_accepted(
    db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    text = CONFIG.read_text(encoding="utf-8").replace("max_mb = 20", "max_mb = 1")
    app = make_app(db_url, clock, config_copy(tmp_path, text=text))
    try:
        app_id = started(app)
        limit = 1024 * 1024
        over = refused(
            app,
            InvalidInput,
            r"^big\.pdf: more than 1,048,576 bytes, the most a budget file may be \(1 MiB\)",
            app_id,
            "budget",
            "big.pdf",
            pdf_of_size(limit + 1),
        )
        assert over.field == "file"
        up = add(app, app_id, "budget", "exact.pdf", pdf_of_size(limit))
        assert up.size == limit
        with read(app.db) as conn:
            assert conn.execute(sa.select(BLOB.c.chunks).where(BLOB.c.sha256 == up.sha256)).scalar_one() == 1
    finally:
        app.db.dispose()


def test_a_big_file_is_read_no_further_than_one_byte_past_the_limit(
    db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    """Reading stops as soon as the count passes the limit: a 5 MiB stream against 1 MiB is read 1 MiB + 1."""
    text = CONFIG.read_text(encoding="utf-8").replace("max_mb = 20", "max_mb = 1")
    app = make_app(db_url, clock, config_copy(tmp_path, text=text))

    class Counting(io.BytesIO):
        taken = 0

        def read(self, n: int | None = -1) -> bytes:
            piece = super().read(n)
            self.taken += len(piece)
            return piece

    try:
        app_id = started(app)
        source = Counting(pdf_of_size(5 * CHUNK_BYTES))
        with pytest.raises(InvalidInput, match="more than 1,048,576 bytes"):
            app.moves.uploads.add(app_id, "budget", "big.pdf", source, OFFICE)
        assert source.taken == CHUNK_BYTES + 1
    finally:
        app.db.dispose()


# -- a file its caller spooled (the API) ------------------------------------------------------


def spooled(tmp_path: Path, data: bytes) -> tuple[Path, str]:
    path = tmp_path / "spooled"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_a_spooled_file_is_stored_with_the_hash_its_caller_counted_and_left_to_it(app: App, tmp_path: Path) -> None:
    app_id = started(app)
    data = samples.pdf("spooled")
    path, sha = spooled(tmp_path, data)
    up = app.moves.uploads.add_spooled(app_id, "plan", "../사업계획서.pdf", path, sha, len(data), APPLICANT)
    assert (up.file_name, up.size, up.sha256, up.file_type, up.version) == ("사업계획서.pdf", len(data), sha, "pdf", 1)
    assert path.read_bytes() == data  # the caller's file: the caller removes it
    with read(app.db) as conn:
        chunks = conn.execute(sa.select(BLOB_CHUNK.c.data).where(BLOB_CHUNK.c.sha256 == sha)).scalars().all()
    assert b"".join(bytes(c) for c in chunks) == data
    assert [(d["kind"], d["actor"], d["role"]) for d in docs(app, app_id)] == [("plan", HWASEONG, "applicant")]


def test_a_spooled_file_is_checked_as_any_other_and_a_refusal_stores_nothing(
    db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    text = CONFIG.read_text(encoding="utf-8").replace("max_mb = 20", "max_mb = 1")
    app = make_app(db_url, clock, config_copy(tmp_path, text=text))
    try:
        app_id = started(app)
        before = stored(app)
        cases = [
            (pdf_of_size(CHUNK_BYTES + 1), TooLarge, r"^big\.pdf: more than 1,048,576 bytes, the most a budget file"),
            (b"", InvalidInput, r"^big\.pdf: the file is empty \(0 bytes\)"),
            (b"MZ\x90\x00" + b"\x00" * 60, InvalidInput, r"^budget: big\.pdf is not an accepted type"),
        ]
        for data, error, match in cases:
            path, sha = spooled(tmp_path, data)
            with pytest.raises(error, match=match):
                app.moves.uploads.add_spooled(app_id, "budget", "big.pdf", path, sha, len(data), OFFICE)
            assert stored(app) == before
        # A size that is not the file's: the spool was written to after it was counted.
        path, sha = spooled(tmp_path, samples.pdf())
        with pytest.raises(ValueError, match="written to since"):
            app.moves.uploads.add_spooled(app_id, "budget", "a.pdf", path, sha, len(samples.pdf()) - 1, OFFICE)
        assert stored(app) == before
        # The checks that need no bytes come first, as for add.
        with pytest.raises(NotPermitted):
            app.moves.uploads.add_spooled(app_id, "plan", "a.pdf", path, sha, 1, Actor("kim", Role.EVALUATOR))
        with pytest.raises(InvalidInput, match="'slides' is not a document kind"):
            app.moves.uploads.accepts(app_id, "slides", OFFICE)
        assert app.moves.uploads.accepts(app_id, "budget", OFFICE).max_bytes == CHUNK_BYTES
    finally:
        app.db.dispose()


def test_too_large_is_an_invalid_input_of_the_file() -> None:
    """The API answers TooLarge 413; a caller that catches InvalidInput (the CLI) still does."""
    assert issubclass(TooLarge, InvalidInput)


def budget_kind(app: App, application_id: int) -> Any:
    return app.moves.uploads.accepts(application_id, "budget", OFFICE)


def test_a_spool_hashes_exactly_what_it_wrote_in_its_own_thread(app: App) -> None:
    """Many batches (more than its hashing queue holds) and pieces of every size: the hash is the
    file's, and a piece given as a bytearray changed afterwards does not change it."""
    spec = budget_kind(app, started(app))
    pieces = [os.urandom(n) for n in (1, 65536, 3, HASH_BATCH, 7 * 65536 + 5)] * (HASH_QUEUE + 2)
    mutable = bytearray(b"changed after")
    with Spool("a.pdf", spec) as spool:
        for piece in pieces:
            spool.write(memoryview(piece))
        spool.write(mutable)
        mutable[:] = b"x" * len(mutable)
        with pytest.raises(RuntimeError, match="still open"):
            _ = spool.sha256
        spool.close()
        whole = b"".join(pieces) + b"changed after"
        assert (spool.sha256, spool.size) == (hashlib.sha256(whole).hexdigest(), len(whole))
        assert spool.path.read_bytes() == whole
        with pytest.raises(RuntimeError, match="closed"):
            spool.write(b"more")
        path = spool.path
    assert not path.exists()  # removed on the way out
    assert not any(t.name == "gongmo-upload-sha256" for t in threading.enumerate())


def test_a_spool_refuses_the_write_that_passes_the_limit_and_keeps_none_of_it(
    db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    text = CONFIG.read_text(encoding="utf-8").replace("max_mb = 20", "max_mb = 1")
    app = make_app(db_url, clock, config_copy(tmp_path, text=text))
    try:
        spec = budget_kind(app, started(app))
        spool = Spool("예산서.pdf", spec)
        spool.write(b"a" * (CHUNK_BYTES - 1))
        spool.write(b"b")  # exactly the limit
        with pytest.raises(TooLarge, match=r"^예산서\.pdf: more than 1,048,576 bytes") as caught:
            spool.write(b"cd")
        assert caught.value.field == "file"
        assert spool.path.stat().st_size == CHUNK_BYTES
        spool.discard()
        assert not spool.path.exists()
        spool.discard()  # twice: nothing more to do
    finally:
        app.db.dispose()


def test_an_unknown_kind_is_refused_naming_the_tracks_kinds(app: App) -> None:
    app_id = started(app)
    refused(
        app,
        InvalidInput,
        r"'photo' is not a document kind of track strong-small-2024 \(its kinds: plan, budget,"
        " annex\\)",
        app_id,
        "photo",
        "a.pdf",
        samples.pdf(),
    )


def test_an_evaluator_may_not_upload(app: App) -> None:
    app_id = started(app)
    before = stored(app)
    with pytest.raises(NotPermitted, match="role 'evaluator'"):
        app.moves.uploads.add(app_id, "plan", "a.pdf", io.BytesIO(samples.pdf()), Actor("kim", Role.EVALUATOR))
    assert stored(app) == before


def test_an_unknown_application_is_refused(app: App) -> None:
    with pytest.raises(NotFound, match="no application 999"):
        add(app, 999, "plan", "a.pdf", samples.pdf())
    assert stored(app)["blob"] == 0


def test_the_close_refuses_an_upload_at_its_exact_second_but_an_extension_counts(app: App) -> None:
    extended = started(app, HWASEONG)
    other = started(app, BUCHEON)
    at(app, "2024-05-29 12:00")
    calendars.extend(app, extended, "receipt_closes", kst("2024-05-30 18:00"), "정전 피해", "kim")
    at(app, CLOSE)
    refused(app, OutsideWindow, r"receipt is closed: .*2024-05-29 18:00:00 KST", other, "plan", "a.pdf", samples.pdf())
    up = add(app, extended, "plan", "a.pdf", samples.pdf())
    assert up.uploaded_at == kst(CLOSE)


def test_before_the_receipt_opens_an_upload_is_refused(app: App) -> None:
    app_id = started(app, when="2024-05-20 10:00")  # announced, not open yet
    refused(app, OutsideWindow, "receipt is not open yet", app_id, "plan", "a.pdf", samples.pdf())


def test_names_are_cleaned_and_a_long_korean_name_is_kept_shortened(app: App) -> None:
    app_id = started(app)
    assert add(app, app_id, "annex", "../../etc/사업계획서.pdf", samples.pdf()).file_name == "사업계획서.pdf"
    assert add(app, app_id, "annex", "C:\\Users\\홍길동\\부록.pdf", samples.pdf()).file_name == "부록.pdf"
    assert add(app, app_id, "annex", "계\x00획\x1b서\u202e.pdf", samples.pdf()).file_name == "계획서.pdf"
    long = "가" * 300 + ".pdf"
    name = add(app, app_id, "annex", long, samples.pdf()).file_name
    assert name.endswith(".pdf") and name.startswith("가" * 80)
    assert len(name.encode("utf-8")) <= 255 and set(name[:-4]) == {"가"}
    assert [d["file_name"] for d in docs(app, app_id)][-1] == name
    refused(app, InvalidInput, "is empty once path parts", app_id, "annex", "../..", samples.pdf())


def test_a_kind_of_several_files_adds_until_full_then_takes_a_replacement(app: App) -> None:
    app_id = started(app)
    for i in range(10):
        add(app, app_id, "annex", f"부록{i}.pdf", samples.pdf(f"annex {i}"))
    refused(
        app,
        Conflict,
        r"^annex: 10 files already, the most this kind takes; replace one of them \(replace = 1\)",
        app_id,
        "annex",
        "부록10.pdf",
        samples.pdf("annex 10"),
    )
    up = add(app, app_id, "annex", "부록3-수정.pdf", samples.pdf("annex 3 again"), replace=3)
    assert (up.version, up.replaced_version) == (11, 3)
    current = [d["version"] for d in docs(app, app_id) if d["current"]]
    assert current == [1, 2, 4, 5, 6, 7, 8, 9, 10, 11]
    refused(
        app,
        InvalidInput,
        r"replace = 3 is not a current annex file .*current versions: 1, 2, 4",
        app_id,
        "annex",
        "x.pdf",
        samples.pdf("x"),
        replace=3,
    )


def test_documents_are_refused_once_the_application_left_the_receipt(app: App) -> None:
    at(app, IN_WINDOW)
    plans.submit(app, TRACK, HWASEONG, 8_000_000_000, 8_000_000_000, OFFICE, "계획", "climate_crisis")
    app_id = plans.application_id(app, TRACK, HWASEONG)
    assert app_id is not None
    app.moves.apply(app_id, "withdraw", OFFICE, "사업 포기")
    refused(
        app,
        Conflict,
        f"application {app_id} is in withdrawn: its documents are part of the receipt",
        app_id,
        "plan",
        "a.pdf",
        samples.pdf("later"),
    )


# -- two at once ------------------------------------------------------------------------------


def test_two_uploads_of_one_kind_at_once_keep_both_and_one_current(app: App) -> None:
    app_id = started(app)
    barrier = threading.Barrier(2)
    done: list[Upload] = []
    errors: list[BaseException] = []

    def upload(text: str) -> None:
        try:
            barrier.wait()
            done.append(add(app, app_id, "plan", f"{text}.pdf", samples.pdf(text)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(t,)) for t in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(u.version for u in done) == [1, 2]
    rows = docs(app, app_id)
    assert [r["version"] for r in rows] == [1, 2]
    assert [r["version"] for r in rows if r["current"]] == [2]
    assert {r["sha256"] for r in rows} == {u.sha256 for u in done}


# -- submission -------------------------------------------------------------------------------


def submit(app: App, code: str = HWASEONG, **kw: Any) -> Any:
    return app.moves.submit(TRACK, code, 8_000_000_000, 8_000_000_000, OFFICE, "계획", "climate_crisis", **kw)


def test_a_plan_without_its_required_documents_is_refused_naming_them(app: App) -> None:
    at(app, IN_WINDOW)
    with pytest.raises(InvalidInput, match=r"^plan, budget missing: .*upload them first") as caught:
        submit(app)
    assert caught.value.field == "documents"
    with read(app.db) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(APPLICATION)).scalar_one() == 0
    plans.attach(app, TRACK, HWASEONG, kinds=["plan"])
    with pytest.raises(InvalidInput, match=r"^budget missing: a plan is received only with every required document"):
        submit(app)
    plans.attach(app, TRACK, HWASEONG, kinds=["budget"])
    assert submit(app).to_state == "receipt"


def test_the_receipt_audit_row_and_confirmation_carry_the_hashes(app: App) -> None:
    at(app, IN_WINDOW)
    app_id = plans.attach(app, TRACK, HWASEONG, kinds=["plan", "budget", "annex"])
    moved = submit(app)
    current = {d["kind"]: d for d in docs(app, app_id)}
    with read(app.db) as conn:
        audit = conn.execute(sa.select(AUDIT).where(AUDIT.c.trigger == "submit")).mappings().one()
        [notice] = conn.execute(sa.select(OUTBOX).where(OUTBOX.c.notice == "receipt_confirmation")).mappings().all()
    listed = json.loads(audit["detail"])["documents"]
    assert [d["kind"] for d in listed] == ["plan", "budget", "annex"]  # as the track declares its kinds
    for d in listed:
        row = current[d["kind"]]
        assert d == {k: row[k] for k in ("kind", "file_name", "size", "sha256", "version")}
    # 화성시 reads English: each document's kind name, file name, size and full SHA-256
    text = notice["body_text"]
    assert moved.receipt_no in notice["subject"]
    for d in current.values():
        assert d["sha256"] in text and d["sha256"] in notice["body_html"]
        assert d["file_name"] in text
        assert f"{d['size']:,} bytes" in text
    assert "Project plan: 사업계획서.pdf" in text and "Budget sheet: 사업비_산출내역서.xlsx" in text
    assert "proof of exactly which bytes were received" in text


def test_the_korean_confirmation_names_the_kinds_in_korean(app: App) -> None:
    at(app, IN_WINDOW)
    plans.submit(app, TRACK, GONGJU, 1_000_000_000, 1_000_000_000, OFFICE, "계획", "climate_crisis")
    with read(app.db) as conn:
        text = conn.execute(sa.select(OUTBOX.c.body_text).where(OUTBOX.c.notice == "receipt_confirmation")).scalar()
    assert "사업계획서: 사업계획서.pdf" in text and "사업비 산출내역서: 사업비_산출내역서.xlsx" in text
    assert "SHA-256: " + hashlib.sha256(samples.pdf()).hexdigest() in text


def test_a_replacement_after_the_receipt_sends_the_updated_proof(app: App) -> None:
    at(app, IN_WINDOW)
    plans.submit(app, TRACK, HWASEONG, 8_000_000_000, 8_000_000_000, OFFICE, "계획", "climate_crisis")
    app_id = plans.application_id(app, TRACK, HWASEONG)
    assert app_id is not None
    up = add(app, app_id, "plan", "수정 계획서.pdf", samples.pdf("revised"))
    with read(app.db) as conn:
        rows = (
            conn.execute(sa.select(OUTBOX).where(OUTBOX.c.notice == "receipt_confirmation").order_by(OUTBOX.c.id))
            .mappings()
            .all()
        )
        state = conn.execute(sa.select(APPLICATION.c.state).where(APPLICATION.c.id == app_id)).scalar_one()
    assert state == "receipt"
    assert len(rows) == 2 and rows[1]["dedup_key"] == f"{app_id}:receipt_confirmation:documents-{up.document_id}"
    assert up.sha256 in rows[1]["body_text"] and "수정 계획서.pdf" in rows[1]["body_text"]
    assert hashlib.sha256(samples.pdf()).hexdigest() not in rows[1]["body_text"]  # the replaced plan is gone


# -- answers ----------------------------------------------------------------------------------

PP_WINDOW = "2022-01-25 10:00"
PP_CLOSE = "2022-01-26 18:00"


def pp_submit(app: App, code: str, answers: dict[str, object] | None) -> Any:
    return plans.submit(app, PP, code, 1_000_000_000, 1_000_000_000, OFFICE, "민관 실증", answers=answers)


def test_a_required_answer_missing_refuses_the_submission_naming_the_question(app: App) -> None:
    at(app, PP_WINDOW)
    with pytest.raises(InvalidInput, match=r"^answer 'consortium' is required") as caught:
        pp_submit(app, HWASEONG, {"technology": "자율주행 셔틀"})
    assert caught.value.field == "answers.consortium"
    moved = pp_submit(app, HWASEONG, {"technology": "자율주행 셔틀", "consortium": CONSORTIUM})
    with read(app.db) as conn:
        raw = conn.execute(sa.select(APPLICATION.c.answers).where(APPLICATION.c.id == moved.application_id)).scalar()
    assert json.loads(raw)["technology"] == "자율주행 셔틀"
    assert [m["kind"] for m in json.loads(raw)["consortium"]] == ["local_government", "private_company", "university"]


def test_answers_given_before_count_at_the_submission(app: App) -> None:
    at(app, PP_WINDOW)
    app_id = plans.attach(app, PP, HWASEONG)
    stored_now = app.moves.uploads.answer(app_id, {"consortium": CONSORTIUM}, OFFICE)
    assert list(stored_now) == ["consortium"]
    moved = app.moves.submit(PP, HWASEONG, 1, 1, OFFICE, answers={"technology": "드론 배송"})
    assert moved.to_state == "receipt"


def test_a_bad_answer_is_refused_naming_the_question(app: App) -> None:
    at(app, PP_WINDOW)
    app_id = plans.attach(app, PP, HWASEONG)
    bad = [{**CONSORTIUM[0], "brn": "124-83-00001"}]  # a wrong check digit
    before = stored(app)
    with pytest.raises(InvalidInput, match=r"^answer 'consortium'") as caught:
        app.moves.uploads.answer(app_id, {"consortium": bad}, OFFICE)
    assert caught.value.field and caught.value.field.startswith("answers.consortium")
    with pytest.raises(InvalidInput, match=r"^answer 'colour' is not a question of this track"):
        app.moves.uploads.answer(app_id, {"colour": "blue"}, OFFICE)
    assert stored(app) == before


def test_answers_change_until_the_close_and_are_refused_after(app: App) -> None:
    at(app, PP_WINDOW)
    pp_submit(app, HWASEONG, {"technology": "자율주행 셔틀", "consortium": CONSORTIUM})
    app_id = plans.application_id(app, PP, HWASEONG)
    assert app_id is not None
    at(app, "2022-01-26 17:59:59")
    new = app.moves.uploads.answer(app_id, {"technology": "자율주행 셔틀과 수요응답 버스"}, APPLICANT)
    assert new["technology"] == "자율주행 셔틀과 수요응답 버스" and new["consortium"]
    with read(app.db) as conn:
        [event] = conn.execute(sa.select(EVENT).where(EVENT.c.kind == "answers_changed")).mappings().all()
    assert json.loads(event["detail"]) == {
        "changed": {"technology": {"old": "자율주행 셔틀", "new": "자율주행 셔틀과 수요응답 버스"}}
    }
    at(app, PP_CLOSE)
    with pytest.raises(OutsideWindow, match="receipt is closed"):
        app.moves.uploads.answer(app_id, {"technology": "늦은 변경"}, APPLICANT)
    with pytest.raises(NotPermitted):
        app.moves.uploads.answer(app_id, {"technology": "x"}, Actor("kim", Role.EVALUATOR))


def test_a_none_removes_an_optional_answer_but_never_a_required_one_at_submission(app: App) -> None:
    at(app, PP_WINDOW)
    app_id = plans.attach(app, PP, HWASEONG)
    app.moves.uploads.answer(app_id, {"technology": "x", "consortium": CONSORTIUM}, OFFICE)
    assert app.moves.uploads.answer(app_id, {"technology": None}, OFFICE).keys() == {"consortium"}
    with pytest.raises(InvalidInput, match="answer 'technology' is required"):
        app.moves.submit(PP, HWASEONG, 1, 1, OFFICE)


def test_the_review_checklist_shows_the_answer_rule(app: App) -> None:
    at(app, PP_WINDOW)
    pp_submit(app, HWASEONG, {"technology": "셔틀", "consortium": CONSORTIUM})
    pp_submit(app, GONGJU, {"technology": "셔틀", "consortium": CONSORTIUM[:2]})  # no university
    at(app, PP_CLOSE)
    assert app.moves.apply_bulk(PP, "start_review", "receipt", SYSTEM) == 2
    with read(app.db) as conn:
        rows = {
            int(r.id): (json.loads(r.checklist), r.eligible)
            for r in conn.execute(sa.select(APPLICATION.c.id, APPLICATION.c.checklist, APPLICATION.c.eligible))
        }
    hwaseong = plans.application_id(app, PP, HWASEONG)
    gongju = plans.application_id(app, PP, GONGJU)
    assert hwaseong is not None and gongju is not None
    line = {c["rule"]: c for c in rows[hwaseong][0]}["answer:consortium"]
    assert (
        line["passed"] is True and line["expected"] == "members include local_government, private_company, university"
    )
    failed = {c["rule"]: c for c in rows[gongju][0]}["answer:consortium"]
    assert failed["passed"] is False and rows[gongju][1] is False
    assert "kind" in {c["rule"] for c in rows[gongju][0]}  # next to the fixed rules
    # the review's listing words the failed rule with the answer's members
    [shown] = [c for c in review.checklists(app, PP) if not c.eligible]
    assert shown.failed.startswith("answer:consortium: 2 members") and "(required: members include" in shown.failed
