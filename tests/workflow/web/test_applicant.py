"""The applicants' portal (workflow/web/applicant.py): the list with each stage in words and the next
date, a plan submitted with its documents and answers inside the window (and refused field by field,
or outside it), the notices sent to it, an objection, the result only after the release, the
implementation plan, withdrawing, isolation from other applicants and from the office's pages, and
both languages."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable

import sqlalchemy as sa

from gongmo.workflow.core import samples
from gongmo.workflow.core.db import write
from gongmo.workflow.core.models import DOCUMENT, EVENT, KICKOFF_PLAN, OBJECTION, OUTBOX
from gongmo.workflow.outbox import office as outbox_office
from gongmo.workflow.stages import kickoff, selection
from gongmo.workflow.web.applications import human_size
from tests.conftest import kst
from tests.workflow import plans
from tests.workflow.api.conftest import ADMIN, CHANGWON, SEJONG, SIHEUNG, TRACK_KEY
from tests.workflow.contest_2024 import OFFICE
from tests.workflow.web.conftest import Browser, World, text_of

Make = Callable[[World], Browser]
LIVING_LAB = "living-lab-2022"
HWASEONG = "41590"
CHEONAN = "44130"  # its record's language is English


def portal(w: World, code: str) -> Browser:
    return Browser(w).sign_in("applicant", code)


def files() -> dict[str, tuple[str, bytes, str]]:
    return {
        "document.plan": ("사업계획서.pdf", samples.pdf("화성 계획"), "application/pdf"),
        "document.budget": ("산출내역서.xlsx", samples.xlsx(), "application/octet-stream"),
    }


PLAN = {
    "title": "화성 스마트도시",
    "project_type": "climate_crisis",
    "years": "3",
    "national_krw": "8,000,000,000",
    "local_krw": "8,000,000,000",
}


def send_all(w: World) -> None:
    """Every queued notice as delivered (the mailer's work, done here)."""
    with write(w.app.db) as conn:
        conn.execute(
            sa.update(OUTBOX).where(OUTBOX.c.state == "pending").values(state="sent", attempts=1, sent_at=w.clock.now())
        )


def confirm_selection(w: World) -> None:
    w.clock.set(kst("2024-06-26 10:00"))
    selection.select(w.app, TRACK_KEY, OFFICE, confirm=True)


# -- the list ------------------------------------------------------------------------------------------


def test_the_list_explains_each_stage_and_the_next_date_in_kst(written: World) -> None:
    w = written
    page = portal(w, SEJONG).get("/applicant")
    assert page.status_code == 200, page.text
    text = text_of(page.text)
    assert "서면평가" in text and "예비검토를 통과하여 평가위원회의 서면평가를 받고 있습니다." in text
    assert "다음 일정: 서면평가 종료: 2024-06-12 18:00 KST" in text
    assert f"/applicant/applications/{w.id(SEJONG)}" in page.text
    # disqualified: the next date is the objection window's end, as review.objection_until says
    w.clock.set(kst("2024-06-04 09:00"))
    text = text_of(portal(w, CHANGWON).get("/applicant").text)
    assert "예비검토에서 부적격으로 판정되었습니다" in text
    assert "이의신청 마감: 2024-06-10 18:00 KST" in text or "이의신청 마감: 2024-06-10" in text


def test_an_extension_is_the_next_date_of_its_applicant_only(opened: World) -> None:
    w = opened
    text = text_of(portal(w, HWASEONG).get("/applicant").text)
    assert "접수 마감: 2024-05-29 18:00 KST" in text
    assert "사업계획 제출하기" in text


# -- submitting a plan ---------------------------------------------------------------------------------


def test_a_plan_is_received_with_its_documents_and_the_page_shows_the_stored_hashes(
    world: Callable[..., World], db_url: str
) -> None:
    """On SQLite and on PostgreSQL."""
    w = world("open", db_url)
    b = portal(w, HWASEONG)
    form = b.get(f"/applicant/tracks/{TRACK_KEY}/apply")
    assert form.status_code == 200 and 'name="document.plan"' in form.text and 'type="file"' in form.text
    sent = b.http.post(
        f"/applicant/tracks/{TRACK_KEY}/apply", data=PLAN | {"csrf": b.csrf}, files=files(), follow_redirects=False
    )
    assert sent.status_code == 303, sent.text
    row = w.row(HWASEONG)
    assert row["state"] == "receipt" and row["national_krw"] == 8_000_000_000 and row["years"] == 3
    assert row["project_type"] == "climate_crisis" and row["title"] == "화성 스마트도시"
    page = b.get(sent.headers["location"])
    text = text_of(page.text)
    assert f"사업계획이 접수되었습니다. 접수번호 {row['receipt_no']}" in text
    stored = w.rows(DOCUMENT, DOCUMENT.c.application_id == row["id"])
    assert len(stored) == 2
    shown = set(re.findall(r'<td class="hash">([0-9a-f]{64})</td>', page.text))
    assert shown == {d["sha256"] for d in stored}
    assert all(d["actor"].startswith(HWASEONG) for d in stored)  # uploaded as the applicant, not the office
    # received: the form is no longer offered
    again = text_of(b.get(f"/applicant/tracks/{TRACK_KEY}/apply").text)
    assert f"이미 접수된 신청입니다 (접수번호 {row['receipt_no']})" in again


def test_answers_are_submitted_with_the_plan(opened: World) -> None:
    w = opened
    w.clock.set(kst("2022-02-22 10:00"))  # the living-lab call's receipt window
    b = portal(w, SEJONG)
    data = {
        "national_krw": "900000000",
        "local_krw": "900000000",
        "title": "리빙랩",
        "answers.living_lab": "yes",
        "answers.residents": "1,500",
        "csrf": b.csrf,
    }
    sent = b.http.post(f"/applicant/tracks/{LIVING_LAB}/apply", data=data, files=files(), follow_redirects=False)
    assert sent.status_code == 303, sent.text
    app_id = plans.application_id(w.app, LIVING_LAB, SEJONG)
    detail = w.get(f"/applications/{app_id}", ADMIN).json()
    assert detail["state"] == "receipt" and detail["answers"] == {"living_lab": True, "residents": 1500}
    text = text_of(b.get(sent.headers["location"]).text)
    assert "리빙랩을 운영하고 있거나 운영할 계획이 있습니까? yes" in text


def test_each_bad_field_is_refused_beside_it_and_nothing_changes(opened: World) -> None:
    w = opened
    w.clock.set(kst("2022-02-22 10:00"))
    b = portal(w, SEJONG)
    before, docs = w.footprint(), plans.document_count(w.app)
    data = {
        "national_krw": "구억",
        "local_krw": "",
        "years": "0",
        "answers.residents": "-5",
        "csrf": b.csrf,
    }
    refused = b.http.post(f"/applicant/tracks/{LIVING_LAB}/apply", data=data, files=files(), follow_redirects=False)
    assert refused.status_code == 422, refused.text
    for field in ("national_krw", "local_krw", "years", "answers-residents", "answers-living_lab"):
        assert f'id="err-{field}"' in refused.text, field
    assert 'aria-describedby="national_krw-hint err-national_krw"' in refused.text
    assert "구억: 원 단위 숫자로 쓰십시오" in text_of(refused.text)
    assert "answer 'residents': -5 is outside the range" in html.unescape(text_of(refused.text))
    assert w.footprint() == before and plans.document_count(w.app) == docs
    assert plans.application_id(w.app, LIVING_LAB, SEJONG) is None
    # a required document missing is refused beside its field too
    missing = b.http.post(
        f"/applicant/tracks/{LIVING_LAB}/apply",
        data={"national_krw": "1", "local_krw": "1", "answers.living_lab": "no", "csrf": b.csrf},
        files={"document.plan": files()["document.plan"]},
        follow_redirects=False,
    )
    assert missing.status_code == 422 and 'id="err-document-budget"' in missing.text
    assert w.footprint() == before


def test_outside_the_window_the_form_is_not_offered_and_a_post_is_refused(opened: World) -> None:
    w = opened
    w.clock.set(kst("2024-05-29 18:00"))  # the close instant: closed
    b = portal(w, HWASEONG)
    page = b.get(f"/applicant/tracks/{TRACK_KEY}/apply")
    text = text_of(page.text)
    assert page.status_code == 200 and 'name="document.plan"' not in page.text
    assert "접수가 마감되었습니다 (2024-05-29 18:00 KST)" in text
    assert "접수 기간: 2024-05-27 09:00 KST ~ 2024-05-29 18:00 KST" in text
    before = w.footprint()
    refused = b.http.post(
        f"/applicant/tracks/{TRACK_KEY}/apply", data=PLAN | {"csrf": b.csrf}, files=files(), follow_redirects=False
    )
    assert refused.status_code == 409 and w.footprint() == before
    w.clock.set(kst("2024-05-26 10:00"))
    b = portal(w, HWASEONG)
    early = text_of(b.get(f"/applicant/tracks/{TRACK_KEY}/apply?lang=en").text)
    assert "The receipt window is not open yet: it opens at 2024-05-27 09:00 KST" in early


# -- notices -------------------------------------------------------------------------------------------------


def test_notices_sent_to_it_are_readable_with_their_calendar_file(opened: World) -> None:
    w = opened
    send_all(w)
    b = portal(w, SEJONG)
    listing = b.get("/applicant/notices")
    mine = w.rows(OUTBOX, OUTBOX.c.application_id == w.id(SEJONG))
    assert mine and all(f'/applicant/notices/{n["id"]}"' in listing.text for n in mine)
    other = w.rows(OUTBOX, OUTBOX.c.application_id == w.id(SIHEUNG))[0]
    assert f'/applicant/notices/{other["id"]}"' not in listing.text
    one = mine[0]
    page = b.get(f"/applicant/notices/{one['id']}")
    assert page.status_code == 200 and one["subject"] in text_of(page.text)
    assert '<iframe class="mail-html" sandbox' in page.text
    body = b.get(f"/applicant/notices/{one['id']}/body.html")
    assert (
        "default-src 'none'" in body.headers["content-security-policy"]
        and "sandbox" in body.headers["content-security-policy"]
    )
    with_ics = [n for n in mine if n["ics"]]
    assert with_ics, "the call's notice carries the receipt window as a calendar file"
    assert f"/applicant/notices/{with_ics[0]['id']}/invite.ics" in listing.text
    ics = b.get(f"/applicant/notices/{with_ics[0]['id']}/invite.ics")
    assert ics.status_code == 200 and ics.text.startswith("BEGIN:VCALENDAR")
    assert ics.headers["content-type"].startswith("text/calendar")
    assert b.get(f"/applicant/notices/{other['id']}/invite.ics").status_code in (403, 404)
    assert b.get(f"/applicant/notices/{other['id']}").status_code in (403, 404)
    assert b.get(f"/applicant/notices/{other['id']}/body.html").status_code in (403, 404)


# -- objections ----------------------------------------------------------------------------------------------


def test_a_disqualified_applicant_files_an_objection_stating_the_last_day(written: World) -> None:
    w = written
    w.clock.set(kst("2024-06-04 09:00"))
    b = portal(w, CHANGWON)
    app_id = w.id(CHANGWON)
    page = b.get(f"/applicant/applications/{app_id}")
    text = text_of(page.text)
    assert 'action="/applicant/applications/' in page.text and 'name="grounds"' in page.text
    assert "이의신청은 2024-06-10" in text
    empty = b.post(f"/applicant/applications/{app_id}/objection", {"grounds": "  "})
    assert empty.status_code == 422 and w.count(OBJECTION) == 0
    filed = b.post(f"/applicant/applications/{app_id}/objection", {"grounds": "인구 기준을 잘못 적용했습니다"})
    assert filed.status_code == 303, filed.text
    (objection,) = w.rows(OBJECTION)
    assert objection["application_id"] == app_id and objection["filed_by"].startswith(CHANGWON)
    assert "이의신청이 접수되었습니다" in text_of(b.get(filed.headers["location"]).text)
    # another applicant cannot object for it
    assert portal(w, SEJONG).post(f"/applicant/applications/{app_id}/objection", {"grounds": "x"}).status_code == 403


# -- the result ---------------------------------------------------------------------------------------------------


def test_nothing_of_the_result_before_the_release_and_the_explained_result_after(presentation: World) -> None:
    w = presentation
    confirm_selection(w)
    send_all(w)  # held results stay held
    b = portal(w, SEJONG)
    app_id = w.id(SEJONG)
    under = b.get(f"/applicant/applications/{app_id}")
    text = text_of(under.text)
    assert under.status_code == 200 and w.state(SEJONG) == "selected"
    assert 'id="result"' not in under.text and "선정되었습니다" not in text and "종합 점수" not in text
    assert "발표평가" in text and 'id="kickoff"' not in under.text
    held = w.rows(OUTBOX, OUTBOX.c.application_id == app_id, OUTBOX.c.state == "held")
    assert held, "the result notice is held under embargo"
    listing = b.get("/applicant/notices").text
    for n in held:
        assert f'/applicant/notices/{n["id"]}"' not in listing
        assert b.get(f"/applicant/notices/{n['id']}").status_code in (403, 404)
    assert "선정되었습니다" not in text_of(b.get("/applicant").text)
    outbox_office.release(w.app, TRACK_KEY, "results")
    send_all(w)
    after = text_of(b.get(f"/applicant/applications/{app_id}").text)
    row = w.row(SEJONG)
    assert "선정되었습니다" in after and f"종합 점수 {row['score']}점" in after
    assert f"{row['rank']}위" in after
    assert "서면평가" in after and "발표평가" in after  # the figures: part scores and how they were aggregated
    assert "@" not in after.split("선정 결과", 1)[1].split("신청 내용", 1)[0]  # no evaluator named


# -- kickoff -------------------------------------------------------------------------------------------------------


def test_the_selected_file_their_plan_read_the_comments_and_the_funding_by_year(presentation: World) -> None:
    w = presentation
    confirm_selection(w)
    outbox_office.release(w.app, TRACK_KEY, "results")
    b = portal(w, SEJONG)
    app_id = w.id(SEJONG)
    page = b.get(f"/applicant/applications/{app_id}")
    assert 'name="plan"' in page.text and 'type="file"' in page.text
    empty = b.http.post(
        f"/applicant/applications/{app_id}/kickoff", data={"csrf": b.csrf}, files={"plan": ("x.pdf", b"", "x")}
    )
    assert empty.status_code == 422 and w.count(KICKOFF_PLAN) == 0
    data = samples.pdf("세부 실시계획")
    filed = b.http.post(
        f"/applicant/applications/{app_id}/kickoff",
        data={"csrf": b.csrf},
        files={"plan": ("실시계획.pdf", data, "application/pdf")},
    )
    assert filed.status_code == 200, filed.text
    sha = hashlib.sha256(data).hexdigest()
    assert f"실시계획(1차)을 제출했습니다: 실시계획.pdf, SHA-256 {sha}" in text_of(filed.text)
    (plan,) = w.rows(KICKOFF_PLAN)
    assert plan["round"] == 1 and plan["status"] == "received" and plan["received_by"].startswith(SEJONG)
    assert (plan["sha256"], plan["file_name"], plan["size"], plan["file_type"]) == (
        sha,
        "실시계획.pdf",
        len(data),
        "pdf",
    )
    # the round's file: its name (the download), size and SHA-256 on the page
    page = b.get(f"/applicant/applications/{app_id}")
    link = f"/applicant/applications/{app_id}/kickoff/1/file"
    row = re.search(r'<table class="plans">.*?</table>', page.text, re.S)
    assert (
        row is not None and f'<a href="{link}">실시계획.pdf</a>' in row[0] and f'<td class="hash">{sha}</td>' in row[0]
    )
    assert human_size(len(data)) in text_of(row[0])
    got = b.get(link)
    assert got.status_code == 200 and got.content == data and got.headers["etag"] == f'"{sha}"'
    assert [e["actor"].startswith(SEJONG) for e in w.rows(EVENT, EVENT.c.kind == "plan_downloaded")] == [True]
    assert portal(w, SIHEUNG).get(link).status_code == 403  # another applicant
    assert b.get(f"/applicant/applications/{app_id}/kickoff/2/file").status_code == 404
    kickoff.return_plan(w.app, app_id, "예산 연차별 계획을 보완하십시오", OFFICE)
    text = text_of(b.get(f"/applicant/applications/{app_id}").text)
    assert "보완 요청" in text and "예산 연차별 계획을 보완하십시오" in text
    not_a_plan = b.http.post(
        f"/applicant/applications/{app_id}/kickoff",
        data={"csrf": b.csrf},
        files={"plan": ("plan.pdf", samples.png(), "application/pdf")},
    )
    assert not_a_plan.status_code == 422
    assert "plan.pdf is not an accepted type: its bytes are a PNG image" in html.unescape(text_of(not_a_plan.text))
    assert w.count(KICKOFF_PLAN) == 1
    b.http.post(
        f"/applicant/applications/{app_id}/kickoff", data={"csrf": b.csrf}, files={"plan": ("v2.pdf", data, "x")}
    )
    schedule = kickoff.approve(w.app, app_id, None, OFFICE)
    text = text_of(b.get(f"/applicant/applications/{app_id}").text)
    assert "연차별 사업비 (승인)" in text
    for y in schedule:
        assert f"{y.year} {y.national_krw:,} {y.local_krw:,}" in text


# -- withdrawing -------------------------------------------------------------------------------------------------


def test_withdrawing_says_what_happens_and_needs_the_page_s_version(written: World) -> None:
    w = written
    b = portal(w, SEJONG)
    app_id = w.id(SEJONG)
    assert f"/applicant/applications/{app_id}/withdraw" in b.get(f"/applicant/applications/{app_id}").text
    page = b.get(f"/applicant/applications/{app_id}/withdraw")
    text = text_of(page.text)
    assert "되돌릴 수 없습니다" in text and "철회 확인 알림" in text
    version = w.version(SEJONG)
    before = w.footprint()
    stale = b.post(f"/applicant/applications/{app_id}/withdraw", {"version": str(version + 1)})
    assert stale.status_code == 409 and w.footprint() == before
    done = b.post(f"/applicant/applications/{app_id}/withdraw", {"version": str(version), "reason": "자체 사정"})
    assert done.status_code == 303 and w.state(SEJONG) == "withdrawn"
    assert "신청을 철회했습니다." in text_of(b.get(done.headers["location"]).text)


# -- isolation and languages ---------------------------------------------------------------------------------------


def test_another_applicant_s_application_documents_and_notices_are_refused(written: World) -> None:
    w = written
    send_all(w)
    b = portal(w, SEJONG)
    other = w.id(SIHEUNG)
    assert b.get(f"/applicant/applications/{other}").status_code == 403
    assert b.get(f"/applicant/applications/{other}/documents/plan").status_code == 403
    assert b.get(f"/applicant/applications/{other}/withdraw").status_code == 403
    assert b.post(f"/applicant/applications/{other}/withdraw", {"version": "1"}).status_code == 403
    assert b.get("/applicant/applications/999999").status_code == 404
    own = b.get(f"/applicant/applications/{w.id(SEJONG)}/documents/plan")
    assert own.status_code == 200 and own.content.startswith(b"%PDF")
    assert w.state(SIHEUNG) == "written_evaluation"


def test_office_pages_refuse_an_applicant_and_the_portal_refuses_the_office(written: World, browser: Make) -> None:
    w = written
    b = portal(w, SEJONG)
    for path in ("/office", f"/office/applications/{w.id(SEJONG)}", "/office/outbox", "/evaluator"):
        assert b.get(path).status_code == 403, path
    office = browser(w).sign_in()
    assert office.get("/applicant").status_code == 403
    assert Browser(w).get("/applicant").status_code == 303  # no session: to the sign-in page


def test_the_applicant_s_own_language_by_default_and_the_switch(written: World) -> None:
    w = written
    english = portal(w, CHEONAN).get("/applicant")
    assert '<html lang="en">' in english.text and "My applications" in english.text
    assert 'href="?lang=ko"' in english.text
    b = portal(w, SEJONG)
    korean = b.get("/applicant")
    assert '<html lang="ko">' in korean.text and "내 신청 현황" in korean.text
    switched = b.get("/applicant?lang=en")
    assert "Passed the preliminary review" in text_of(switched.text)
    assert "Next date: written evaluation ends: 2024-06-12 18:00 KST" in text_of(switched.text)
