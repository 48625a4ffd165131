"""Who may list and download a plan's documents (read/documents.py), each download in the event
log before a byte is served; the application's detail shows the documents and the answers.
SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from gongmo.states.errors import InvalidInput, NotFound, NotVisible
from gongmo.states.lifecycle import Role
from gongmo.workflow.core import samples
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICANT, ASSIGNMENT, BLOB_CHUNK, EVALUATOR, EVENT
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.engine.app import App
from gongmo.workflow.read import documents, visibility
from gongmo.workflow.stages import committee
from tests.conftest import kst
from tests.workflow import plans

TRACK = "strong-small-2024"
HWASEONG = "41590"  # 경기: jung (경기도) is in conflict
EVALUATORS_CSV = """name,email,affiliation,region,home_code,conflicts
김교수,kim@univ-seoul.example,서울대학교 도시공학과,서울,,
정위원,jung@gri.example,경기연구원,경기도,,
최교수,choi@chonnam.example,전남대학교 건축학부,광주,,
"""
ADMIN = Principal(1, Role.ADMIN, "office")


@pytest.fixture
def plan(app: App, tmp_path: Path) -> int:
    """화성시's plan (two versions), budget and two annexes; kim and jung assigned, choi not."""
    app.clock.set(kst("2024-05-28 10:00"))  # type: ignore[attr-defined]
    app_id = plans.attach(app, TRACK, HWASEONG, kinds=["plan", "budget", "annex", "annex"])
    app.moves.uploads.add(app_id, "plan", "사업계획서(수정).pdf", io.BytesIO(samples.pdf("v2")), plans.OFFICE)
    app.moves.submit(TRACK, HWASEONG, 8_000_000_000, 8_000_000_000, plans.OFFICE, "계획", "climate_crisis")
    csv = tmp_path / "evaluators.csv"
    csv.write_text(EVALUATORS_CSV, encoding="utf-8")
    with write(app.db) as conn:
        committee.store_evaluators(conn, committee.parse_evaluators(csv), app.clock.now())
        ids = dict(conn.execute(sa.select(EVALUATOR.c.email, EVALUATOR.c.id)).all())
        for email in ("kim@univ-seoul.example", "jung@gri.example"):
            conn.execute(
                sa.insert(ASSIGNMENT).values(
                    application_id=app_id, evaluator_id=ids[email], assigned_at=app.clock.now()
                )
            )
    return app_id


def evaluator(app: App, email: str) -> Principal:
    with read(app.db) as conn:
        ev = conn.execute(sa.select(EVALUATOR.c.id).where(EVALUATOR.c.email == email)).scalar_one()
    return Principal(2, Role.EVALUATOR, email, evaluator_id=int(ev))


def applicant(app: App, code: str) -> Principal:
    with read(app.db) as conn:
        found = conn.execute(sa.select(APPLICANT.c.id).where(APPLICANT.c.code == code)).scalar_one()
    return Principal(3, Role.APPLICANT, code, applicant_id=int(found))


def listing(app: App, who: Principal, app_id: int) -> list[tuple[str, int, bool]]:
    with read(app.db) as conn:
        return [(d["kind"], d["version"], d["current"]) for d in documents.listing(app, conn, who, app_id)]


def downloads(app: App) -> list[dict[str, object]]:
    with read(app.db) as conn:
        rows = conn.execute(sa.select(EVENT).where(EVENT.c.kind == "document_downloaded").order_by(EVENT.c.id))
        return [{**dict(r), "detail": json.loads(r.detail)} for r in rows.mappings()]


def test_the_office_and_the_applicant_see_every_version_an_evaluator_the_current(app: App, plan: int) -> None:
    every = [("annex", 1, True), ("annex", 2, True), ("budget", 1, True), ("plan", 1, False), ("plan", 2, True)]
    assert listing(app, ADMIN, plan) == every
    assert listing(app, applicant(app, HWASEONG), plan) == every
    assert listing(app, evaluator(app, "kim@univ-seoul.example"), plan) == [e for e in every if e[2]]
    with read(app.db) as conn:
        [first] = documents.listing(app, conn, ADMIN, plan)[:1]
        [seen] = documents.listing(app, conn, evaluator(app, "kim@univ-seoul.example"), plan)[:1]
    assert first["actor"] == "office" and "actor" not in seen


@pytest.mark.parametrize("who", ["jung@gri.example", "choi@chonnam.example", "applicant 41190"])
def test_a_conflicted_or_unassigned_evaluator_and_another_applicant_see_nothing(app: App, plan: int, who: str) -> None:
    reader = applicant(app, "41190") if who.startswith("applicant") else evaluator(app, who)
    with pytest.raises(NotVisible), read(app.db) as conn:
        documents.listing(app, conn, reader, plan)
    with pytest.raises(NotVisible):
        documents.open_download(app, reader, plan, "plan", None)
    assert downloads(app) == []


def test_an_assigned_evaluator_downloads_the_current_plan_and_the_download_is_logged(app: App, plan: int) -> None:
    kim = evaluator(app, "kim@univ-seoul.example")
    app.clock.set(kst("2024-06-10 09:30"))  # type: ignore[attr-defined]
    got = documents.open_download(app, kim, plan, "plan", None)
    assert (got.file_name, got.version, got.file_type, got.media_type) == (
        "사업계획서(수정).pdf",
        2,
        "pdf",
        "application/pdf",
    )
    [event] = downloads(app)  # recorded before a byte is read
    assert (event["actor"], event["role"], event["application_id"]) == ("kim@univ-seoul.example", "evaluator", plan)
    assert event["at"] == kst("2024-06-10 09:30")
    assert event["detail"] == {
        "document_id": got.document_id,
        "kind": "plan",
        "version": 2,
        "file_name": "사업계획서(수정).pdf",
        "sha256": got.sha256,
    }
    data = b"".join(got.chunks())
    assert data == samples.pdf("v2") and hashlib.sha256(data).hexdigest() == got.sha256 and got.size == len(data)


def test_an_evaluator_may_not_read_a_replaced_version_the_office_may(app: App, plan: int) -> None:
    with pytest.raises(NotVisible, match="replaced"):
        documents.open_download(app, evaluator(app, "kim@univ-seoul.example"), plan, "plan", 1)
    old = documents.open_download(app, ADMIN, plan, "plan", 1)
    assert b"".join(old.chunks()) == samples.pdf()
    assert b"".join(documents.open_download(app, applicant(app, HWASEONG), plan, "plan", 1).chunks()) == samples.pdf()


def test_several_current_files_of_a_kind_need_a_version(app: App, plan: int) -> None:
    with pytest.raises(InvalidInput, match=r"2 current annex files \(versions 1, 2\): name one \(version = 1\)"):
        documents.open_download(app, ADMIN, plan, "annex", None)
    assert documents.open_download(app, ADMIN, plan, "annex", 2).version == 2
    with pytest.raises(NotFound, match="no annex version 7"):
        documents.open_download(app, ADMIN, plan, "annex", 7)
    with pytest.raises(NotFound, match=r"no photo document \(its documents: annex, budget, plan\)"):
        documents.open_download(app, ADMIN, plan, "photo", None)
    assert downloads(app) != [] and len(downloads(app)) == 1


def test_the_detail_shows_documents_and_answers_to_whoever_sees_the_application(app: App, plan: int) -> None:
    with read(app.db) as conn:
        office = visibility.detail(app, conn, ADMIN, plan)
        kim = visibility.detail(app, conn, evaluator(app, "kim@univ-seoul.example"), plan)
    assert len(office["documents"]) == 5 and office["answers"] == {}
    assert [(d["kind"], d["version"]) for d in kim["documents"]] == [
        ("annex", 1),
        ("annex", 2),
        ("budget", 1),
        ("plan", 2),
    ]
    assert kim["answers"] == {}


def test_verify_reports_a_changed_byte(app: App, plan: int) -> None:
    assert documents.verify(app) == []
    sha = hashlib.sha256(samples.xlsx()).hexdigest()
    with write(app.db) as conn:
        conn.execute(sa.update(BLOB_CHUNK).where(BLOB_CHUNK.c.sha256 == sha).values(data=b"PK" + samples.xlsx()[2:-1]))
    [bad] = documents.verify(app)
    assert bad["sha256"] == sha and bad["actual_size"] == len(samples.xlsx()) - 1
    assert [(d["application_id"], d["kind"]) for d in bad["documents"]] == [(plan, "budget")]
