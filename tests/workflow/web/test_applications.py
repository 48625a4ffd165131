"""The console's application page (/office/applications/{id}): the summary, the timeline of audit
rows, events, calendar changes and notices (in time order, with their delivery state), the
checklist, documents (downloaded byte for byte) and answers, and the triggers allowed now as
forms that carry the version they were decided on."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable
from html import unescape

import pytest
import sqlalchemy as sa

from gongmo.states.errors import NotVisible
from gongmo.states.lifecycle import Role
from gongmo.workflow.core import samples, tokens
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import AUDIT, EVENT, FUNDING_YEAR, KICKOFF_PLAN, OUTBOX
from gongmo.workflow.deadlines import changes
from gongmo.workflow.engine import events
from gongmo.workflow.read import documents as documents_read
from gongmo.workflow.read import timeline, visibility
from gongmo.workflow.stages import kickoff, selection
from tests.conftest import kst
from tests.workflow.api.conftest import ADMIN, APP_SIHEUNG, CHANGWON, EV_KIM, KIM, SEJONG, SIHEUNG, SUWON, World
from tests.workflow.contest_2024 import OFFICE, TRACK
from tests.workflow.web.conftest import OFFICE_EMAIL, Browser, text_of

Make = Callable[[World], Browser]


def said(html: str) -> str:
    """The page's text as a person reads it (entities decoded)."""
    return unescape(text_of(html))


def page_of(w: World, code: str) -> str:
    return f"/office/applications/{w.id(code)}"


def rows_of(html: str) -> list[tuple[str, str]]:
    """The timeline's rows as (kind, the row's text), in the page's order."""
    body = html.split('<table class="timeline">', 1)[1].split("</table>", 1)[0]
    found = re.findall(r'<tr class="row-(\w+)[^"]*">(.*?)</tr>', body, flags=re.S)
    return [(kind, text_of(inner)) for kind, inner in found]


def forms_of(html: str) -> dict[str, str]:
    """trigger -> the form's HTML, for each decision form on the page."""
    forms = re.findall(r'<form method="post" action="/office/applications/\d+/transitions".*?</form>', html, flags=re.S)
    return {re.search(r'name="trigger" value="(\w+)"', f)[1]: f for f in forms}  # type: ignore[index]


def hidden_version(form: str) -> str:
    found = re.search(r'name="version" value="(\d+)"', form)
    assert found is not None, form
    return found[1]


# -- reading -----------------------------------------------------------------------------------


def test_the_summary_names_the_applicant_its_contact_state_receipt_and_amounts(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    page = b.get(page_of(written, SIHEUNG))
    assert page.status_code == 200, page.text
    text = text_of(page.text)
    row = written.row(SIHEUNG)
    assert f"신청 {row['id']} · 시흥시" in text
    assert "41390" in text and "오세린" in text and "smart@siheung.example" in text  # the contact, for the office
    assert "상태 서면평가" in text and f"버전 {row['version']}" in text
    assert f"접수번호 {row['receipt_no']}" in text
    assert "국비 8,000,000,000 원 · 지방비 8,000,000,000 원" in text and "사업 기간 3년" in text
    assert "결과" not in text.split("지금 할 수 있는 처리")[0]  # no result before the selection


def test_the_timeline_merges_audit_rows_events_and_notices_in_time_order(written: World, browser: Make) -> None:
    app_id = written.id(SIHEUNG)
    notices = written.rows(OUTBOX, OUTBOX.c.application_id == app_id)
    sent, dead = notices[0], notices[1]
    with write(written.app.db) as conn:  # the mailer's outcomes, as it writes them
        conn.execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.id == sent["id"])
            .values(state="sent", attempts=1, sent_at=kst("2024-03-29 10:01"))
        )
        conn.execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.id == dead["id"])
            .values(state="dead", attempts=3, last_error="550 5.1.1 mailbox unavailable")
        )
    b = browser(written).sign_in()
    html = b.get(f"/office/applications/{app_id}").text
    rows = rows_of(html)
    audits = written.rows(AUDIT, AUDIT.c.application_id == app_id)
    evs = written.rows(EVENT, EVENT.c.application_id == app_id)
    assert [k for k, _ in rows].count("audit") == len(audits) >= 4
    assert [k for k, _ in rows].count("event") == len(evs) >= 3
    assert [k for k, _ in rows].count("notice") == len(notices) >= 3
    # in time order: every row's instant (KST, as shown) is not before the one above it
    instants = [text.split(" ", 2)[:2] for _, text in rows]
    assert instants == sorted(instants)
    # the audit rows in their own order, each with trigger, from -> to, actor and role
    audit_texts = [text for kind, text in rows if kind == "audit"]
    assert "제출(접수) · 공고(작성 중) → 접수" in audit_texts[1] and "lh-office (admin)" in audit_texts[1]
    assert "예비검토 통과 · 예비검토 → 서면평가" in audit_texts[3]
    assert any("사유: deadline strong-small-2024:close_receipt" in t for t in audit_texts)
    # events: the uploads and the assignment
    event_texts = [text for kind, text in rows if kind == "event"]
    assert sum("서류 제출" in t for t in event_texts) == 2 and any("평가위원 배정" in t for t in event_texts)
    # notices with their delivery: sent (when), dead (the SMTP answer), pending
    notice_texts = [text for kind, text in rows if kind == "notice"]
    assert (
        "call_announcement (ko) → smart@siheung.example · 발송됨 · 시도 1회 · 발송 2024-03-29 10:01" in notice_texts[0]
    )
    assert "발송 실패 · 시도 3회" in notice_texts[1] and "550 5.1.1 mailbox unavailable" in notice_texts[1]
    assert "발송 대기" in notice_texts[2]
    # a move and its notice: the audit row first at the same instant
    receipt = next(i for i, (k, t) in enumerate(rows) if k == "notice" and "receipt_confirmation" in t)
    submitted = next(i for i, (k, t) in enumerate(rows) if k == "audit" and "제출(접수)" in t)
    assert submitted < receipt
    # the chain's columns are audit verify's business
    assert all(a["hash"] not in html for a in audits) and all(e["hash"] not in html for e in evs)


def test_the_timeline_shows_calendar_changes_that_concern_it(written: World, browser: Make) -> None:
    written.clock.set(kst("2024-06-11 15:00"))
    changes.reschedule(
        written.app, TRACK, "selection_at", kst("2024-06-28 10:00"), "위원회 일정 조정 committee date", "office-lee"
    )
    html = browser(written).sign_in().get(page_of(written, SIHEUNG)).text
    rows = rows_of(html)
    calendar = [t for k, t in rows if k == "calendar"]
    assert len(calendar) == 1, rows
    assert "일정 변경 · selection_at:" in calendar[0] and "→ 2024-06-28 10:00" in calendar[0]
    assert "위원회 일정 조정 committee date" in calendar[0] and "office-lee" in calendar[0]
    at = rows.index(("calendar", calendar[0]))
    assert all(kind == "notice" for kind, _ in rows[at + 1 :])  # the latest change, then the notices it sent
    assert at > max(i for i, (kind, _) in enumerate(rows) if kind == "audit")


def test_the_read_model_merges_a_detail_in_order_without_the_chain_columns(written: World) -> None:
    app_id = written.id(SIHEUNG)
    with read(written.app.db) as conn:
        office = tokens.principal(conn, "admin", "office-lee")
        shown = timeline.of_application(written.app, conn, office, app_id)
    merged = shown["timeline"]
    assert len(merged) == len(shown["history"]) + len(shown["events"]) + len(shown["notices"])
    keys = [(r["at"], timeline.SOURCES.index(r["source"])) for r in merged]
    assert keys == sorted(keys)
    assert not any({"seq", "hash", "body_html", "body_text"} & r.keys() for r in merged)
    assert [c.trigger for c in shown["choices"]] == ["disqualify", "withdraw"]
    assert [c.needs_reason for c in shown["choices"]] == [True, False]


def test_the_checklist_shows_each_rule_and_the_failed_one(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    passed = text_of(b.get(page_of(written, SIHEUNG)).text)
    assert "적격성 확인 적격" in passed and "population 충족 517,000 below 1,000,000" in passed
    failed = text_of(b.get(page_of(written, SUWON)).text)
    assert "부적격 항목 있음" in failed
    assert "population 미충족 1,190,987 below 1,000,000" in failed


def test_before_the_review_the_checklist_is_not_there_yet(opened: World, browser: Make) -> None:
    text = text_of(browser(opened).sign_in().get(page_of(opened, SIHEUNG)).text)
    assert "아직 예비검토 전이라 확인 결과가 없습니다" in text
    assert "제출된 서류가 없습니다" in text


def test_a_document_downloads_with_its_bytes_and_hash(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    html = b.get(page_of(written, SIHEUNG)).text
    links = re.findall(r'href="(/office/applications/\d+/documents/(\w+)\?version=(\d+))"', html)
    assert {kind for _, kind, _ in links} == {"plan", "budget"}
    app_id = written.id(SIHEUNG)
    before = written.count(EVENT, EVENT.c.application_id == app_id, EVENT.c.kind == "document_downloaded")
    for href, _kind, _ in links:
        got = b.get(href)
        assert got.status_code == 200, got.text
        digest = hashlib.sha256(got.content).hexdigest()
        assert got.headers["etag"] == f'"{digest}"' and digest in html  # the hash the page lists
        assert len(got.content) == int(got.headers["content-length"])
        assert "attachment" in got.headers["content-disposition"]
    after = written.count(EVENT, EVENT.c.application_id == app_id, EVENT.c.kind == "document_downloaded")
    assert after == before + 2  # each download recorded, and shown on the timeline
    assert "서류 내려받기" in text_of(b.get(page_of(written, SIHEUNG)).text)
    assert b.get(f"/office/applications/{app_id}/documents/annex").status_code == 404


def test_both_languages(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    en = text_of(b.get(page_of(written, SIHEUNG) + "?lang=en").text)
    assert "Application" in en and "State written evaluation" in en and "Timeline" in en
    assert "pass the preliminary review · preliminary review → written evaluation" in en
    assert "Eligibility checklist" in en and "Documents" in en and "Reason (disqualify)" in en
    ko = text_of(b.get(page_of(written, SIHEUNG) + "?lang=ko").text)
    assert "처리 이력" in ko and "예비검토 통과 · 예비검토 → 서면평가" in ko and "사유 (부적격 처리)" in ko


# -- deciding -------------------------------------------------------------------------------------


def test_the_triggers_allowed_now_are_forms_with_the_version_and_a_required_reason(
    written: World, browser: Make
) -> None:
    b = browser(written).sign_in()
    html = b.get(page_of(written, SIHEUNG)).text
    forms = forms_of(html)
    assert set(forms) == {"disqualify", "withdraw"}  # the admin's triggers from written evaluation
    version = str(written.version(SIHEUNG))
    assert all(hidden_version(f) == version and 'name="csrf"' in f for f in forms.values())
    assert re.search(
        r'<label for="reason-disqualify">.*</label>\s*<textarea id="reason-disqualify" name="reason"',
        forms["disqualify"],
    )
    assert "required" in forms["disqualify"] and 'name="reason"' not in forms["withdraw"]
    disqualified = forms_of(b.get(page_of(written, SUWON)).text)
    assert set(disqualified) == {"reinstate"} and "required" in disqualified["reinstate"]


def test_a_trigger_without_its_required_reason_is_refused_and_nothing_changes(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    path = page_of(written, SIHEUNG)
    before = written.footprint()
    refused = b.post(
        path + "/transitions", {"trigger": "disqualify", "version": written.version(SIHEUNG), "reason": " "}
    )
    assert refused.status_code == 422, refused.text
    assert "'disqualify' needs a reason" in said(refused.text) and "처리하지 않았습니다" in said(refused.text)
    assert written.footprint() == before


def test_a_trigger_with_its_reason_moves_and_the_page_confirms(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    path = page_of(written, SIHEUNG)
    version = written.version(SIHEUNG)
    done = b.post(
        path + "/transitions", {"trigger": "disqualify", "version": version, "reason": "허위 기재 확인 false statement"}
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"{path}?done=disqualify&version={version + 1}"
    assert written.state(SIHEUNG) == "disqualified" and written.version(SIHEUNG) == version + 1
    audit = written.rows(AUDIT, AUDIT.c.application_id == written.id(SIHEUNG))[-1]
    assert audit["trigger"] == "disqualify" and audit["reason"] == "허위 기재 확인 false statement"
    assert audit["actor"] == "office-lee@molit.go.kr" and audit["role"] == "admin"
    text = text_of(b.get(done.headers["location"]).text)
    assert f"처리했습니다: 부적격 처리 (이제 버전 {version + 1})" in text
    assert "사유: 허위 기재 확인 false statement" in text and "disqualified" in text  # the notice queued
    assert "복권(이의 인용) → 서면평가" in text  # the triggers of the new state


def test_a_trigger_without_a_reason_where_none_is_needed(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    version = written.version(SIHEUNG)
    done = b.post(page_of(written, SIHEUNG) + "/transitions", {"trigger": "withdraw", "version": version})
    assert done.status_code == 303 and written.state(SIHEUNG) == "withdrawn"


def test_a_stale_version_is_refused_with_nothing_changed(written: World, browser: Make) -> None:
    path = page_of(written, SIHEUNG)
    first, second = browser(written).sign_in(), browser(written).sign_in(subject="office-choi@molit.go.kr")
    one = forms_of(first.get(path).text)
    two = forms_of(second.get(path).text)  # two pages open on the same version
    version = hidden_version(one["disqualify"])
    assert hidden_version(two["withdraw"]) == version
    moved = first.post(path + "/transitions", {"trigger": "disqualify", "version": version, "reason": "감사 결과"})
    assert moved.status_code == 303
    before = written.footprint()
    stale = second.post(path + "/transitions", {"trigger": "withdraw", "version": version})
    assert stale.status_code == 409, stale.text
    text = text_of(stale.text)
    now = written.version(SIHEUNG)
    assert (
        f"다른 사람이 먼저 변경했습니다: 지금 상태는 부적격 (버전 {now})입니다. 아무것도 처리하지 않았습니다." in text
    )
    assert written.footprint() == before and written.state(SIHEUNG) == "disqualified"
    assert hidden_version(forms_of(stale.text)["reinstate"]) == str(now)  # review and decide again
    en = second.post(path + "/transitions?lang=en", {"trigger": "withdraw", "version": version})
    assert "Someone changed this first: it is now in disqualified (version" in text_of(en.text)


def test_other_refusals_are_one_line_and_change_nothing(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    path = page_of(written, SIHEUNG) + "/transitions"
    version = written.version(SIHEUNG)
    before = written.footprint()
    illegal = b.post(path, {"trigger": "select", "version": version})
    assert illegal.status_code == 409 and "cannot 'select' application" in said(illegal.text)
    unknown = b.post(path, {"trigger": "explode", "version": version})
    assert unknown.status_code == 422 and "field 'trigger' = 'explode'" in said(unknown.text)
    no_version = b.post(path, {"trigger": "withdraw"})
    assert no_version.status_code == 422 and "field 'version'" in said(no_version.text)
    no_csrf = b.post(path, {"trigger": "withdraw", "version": version}, csrf=False)
    assert no_csrf.status_code == 403
    missing = b.post("/office/applications/999999/transitions", {"trigger": "withdraw", "version": 1})
    assert missing.status_code == 404
    assert written.footprint() == before
    assert "Traceback" not in illegal.text + unknown.text + no_version.text


def test_evaluator_and_applicant_sessions_are_refused(written: World, browser: Make) -> None:
    path = page_of(written, SIHEUNG)
    version = written.version(SIHEUNG)
    before = written.footprint()
    for role, subject in (("evaluator", KIM), APP_SIHEUNG):
        b = browser(written).sign_in(role, subject)
        assert b.get(path).status_code == 403
        assert b.post(path + "/transitions", {"trigger": "withdraw", "version": version}).status_code == 403
        assert b.get(path + "/documents/plan").status_code == 403
    assert written.footprint() == before
    assert browser(written).get(path).status_code == 303  # no session: to the sign-in page


def test_the_page_stays_whole_with_two_hundred_timeline_rows(written: World, browser: Make) -> None:
    app_id = written.id(CHANGWON)
    with write(written.app.db) as conn:
        for i in range(200):
            events.record(conn, written.clock.now(), Actor(ADMIN[1], Role.ADMIN), "note", {"n": i}, None, app_id)
    html = browser(written).sign_in().get(f"/office/applications/{app_id}").text
    assert len(rows_of(html)) >= 200


def test_a_trigger_that_overrides_a_rule_asks_for_a_reason(written: World) -> None:
    failed = {"rule": "population", "passed": False, "value": "1,190,987", "expected": "below 1,000,000"}
    shown = {
        "track": TRACK,
        "state": "preliminary_review",
        "checklist": [failed],
        "eligible": False,
        "score": None,
        "actions": ["pass_review", "disqualify", "withdraw"],
    }
    by_trigger = {c.trigger: c for c in timeline.choices(written.app, shown)}
    passing = by_trigger["pass_review"]
    assert passing.needs_reason and "population: 1,190,987" in str(passing.overrides)
    assert by_trigger["disqualify"].needs_reason and by_trigger["disqualify"].overrides is None  # the table's own
    assert not by_trigger["withdraw"].needs_reason
    eligible = {c.trigger: c for c in timeline.choices(written.app, {**shown, "checklist": [], "eligible": True})}
    assert not eligible["pass_review"].needs_reason


# -- the kickoff part ----------------------------------------------------------------------------


def selected_world(w: World) -> int:
    """The selection confirmed (세종 selected); 세종's application id."""
    w.clock.set(kst("2024-06-26 10:00"))
    selection.select(w.app, TRACK, OFFICE, confirm=True)
    w.clock.set(kst("2024-07-01 10:00"))
    return w.id(SEJONG)


def kickoff_forms(html: str) -> dict[str, str]:
    """return/approve -> the kickoff form's HTML."""
    found = re.findall(r'<form method="post" action="/office/applications/\d+/kickoff/(\w+)".*?</form>', html, re.S)
    forms = re.findall(r'<form method="post" action="/office/applications/\d+/kickoff/\w+".*?</form>', html, re.S)
    return dict(zip(found, forms, strict=True))


def schedule_of(form: str) -> list[tuple[str, str, str]]:
    values = {name: re.findall(rf'name="{name}" value="([^"]*)"', form) for name in ("year", "national", "local")}
    return list(zip(values["year"], values["national"], values["local"], strict=True))


def test_the_kickoff_part_lists_each_round_with_its_file_and_the_office_downloads_it(
    presentation: World, browser: Make
) -> None:
    w = presentation
    app_id = selected_world(w)
    kickoff.receive(w.app, app_id, OFFICE)  # on paper
    kickoff.return_plan(w.app, app_id, "연차별 지방비 확보 근거를 첨부하십시오", OFFICE)
    data = samples.pdf("implementation plan v2")
    kickoff.receive(w.app, app_id, Actor(SEJONG, Role.APPLICANT), io.BytesIO(data), "세부실시계획 v2.pdf")
    b = browser(w).sign_in()
    page = b.get(f"/office/applications/{app_id}")
    assert page.status_code == 200, page.text
    text = said(page.text)
    assert (
        "세부 실시계획" in text and "서면 접수 (파일 없음)" in text and "연차별 지방비 확보 근거를 첨부하십시오" in text
    )
    sha = hashlib.sha256(data).hexdigest()
    assert "세부실시계획 v2.pdf (pdf)" in text and sha in text and "검토 대기" in text
    link = f"/office/applications/{app_id}/kickoff/2/file"
    assert f'href="{link}"' in page.text
    got = b.get(link)
    assert got.status_code == 200 and got.content == data
    assert got.headers["etag"] == f'"{sha}"' and got.headers["content-type"] == "application/pdf"
    assert "attachment" in got.headers["content-disposition"]
    (seen,) = w.rows(EVENT, EVENT.c.kind == "plan_downloaded")
    assert seen["actor"] == OFFICE_EMAIL and json.loads(seen["detail"])["sha256"] == sha
    assert b.get(f"/office/applications/{app_id}/kickoff/1/file").status_code == 404  # on paper: no file
    assert b.get(f"/office/applications/{app_id}/kickoff/3/file").status_code == 404


def test_an_evaluator_never_downloads_a_plan_s_file(presentation: World, browser: Make) -> None:
    w = presentation
    app_id = selected_world(w)
    kickoff.receive(w.app, app_id, OFFICE, io.BytesIO(samples.pdf("plan")), "plan.pdf")
    ev = browser(w).sign_in("evaluator", KIM)
    for path in (f"/office/applications/{app_id}/kickoff/1/file", f"/applicant/applications/{app_id}/kickoff/1/file"):
        assert ev.get(path).status_code == 403, path
    with read(w.app.db) as conn:
        kim = tokens.principal(conn, *EV_KIM)
        visibility.check_access(w.app, conn, kim, app_id)  # the application is the evaluator's to read...
    with pytest.raises(NotVisible, match="the office and its applicant only"):
        documents_read.open_plan_file(w.app, kim, app_id, 1)  # ...its implementation plan is not
    assert w.count(EVENT, EVENT.c.kind == "plan_downloaded") == 0


def test_the_office_returns_a_plan_with_comments_and_empty_comments_are_refused(
    presentation: World, browser: Make
) -> None:
    w = presentation
    app_id = selected_world(w)
    kickoff.receive(w.app, app_id, OFFICE, io.BytesIO(samples.pdf("plan")), "plan.pdf")
    b = browser(w).sign_in()
    forms = kickoff_forms(b.get(f"/office/applications/{app_id}").text)
    assert set(forms) == {"return", "approve"}
    assert '<label for="kickoff-comments">' in forms["return"] and 'name="csrf"' in forms["return"]
    before = w.footprint()
    refused = b.post(f"/office/applications/{app_id}/kickoff/return", {"comments": "   "})
    assert refused.status_code == 422
    assert "'comments' is empty: say what the plan must change" in said(kickoff_forms(refused.text)["return"])
    assert w.footprint() == before and w.rows(KICKOFF_PLAN)[0]["status"] == "received"
    no_csrf = b.post(f"/office/applications/{app_id}/kickoff/return", {"comments": "보완"}, csrf=False)
    assert no_csrf.status_code == 403 and w.footprint() == before
    done = b.post(f"/office/applications/{app_id}/kickoff/return", {"comments": "예산 근거를 보완하십시오"})
    assert done.status_code == 303 and done.headers["location"].endswith("?kickoff=returned#kickoff")
    (plan,) = w.rows(KICKOFF_PLAN)
    assert (plan["status"], plan["comments"], plan["decided_by"]) == (
        "returned",
        "예산 근거를 보완하십시오",
        OFFICE_EMAIL,
    )
    after = b.get(done.headers["location"])
    assert "실시계획 1차를 의견과 함께 돌려보냈습니다." in said(after.text)
    assert kickoff_forms(after.text) == {}  # nothing waits now
    assert w.count(OUTBOX, OUTBOX.c.notice == "kickoff_plan_returned") == 1


def test_the_office_approves_a_plan_with_the_funding_by_year_and_a_wrong_schedule_changes_nothing(
    presentation: World, browser: Make
) -> None:
    w = presentation
    app_id = selected_world(w)
    row = w.row(SEJONG)
    national, local, years = int(row["national_krw"]), int(row["local_krw"]), int(row["years"])
    kickoff.receive(w.app, app_id, OFFICE, io.BytesIO(samples.pdf("plan")), "plan.pdf")
    b = browser(w).sign_in()
    form = kickoff_forms(b.get(f"/office/applications/{app_id}").text)["approve"]
    prefilled = schedule_of(form)
    assert [y for y, _, _ in prefilled] == [str(2024 + i) for i in range(years)]  # an even split from this year
    for n in range(1, years + 1):
        for name in ("year", "national", "local"):
            assert f'<label for="{name}-{n}">' in form and f'id="{name}-{n}"' in form
    before = w.footprint()
    wrong = {"year": [y for y, _, _ in prefilled], "national": ["1"] * years, "local": ["1"] * years}
    refused = b.post(f"/office/applications/{app_id}/kickoff/approve", wrong)
    assert refused.status_code == 422, refused.text
    shown = kickoff_forms(refused.text)["approve"]
    assert f"national amounts add up to {years:,} won, the selected national share is {national:,}" in said(shown)
    assert schedule_of(shown) == [(y, "1", "1") for y, _, _ in prefilled]  # as typed
    garbage = b.post(f"/office/applications/{app_id}/kickoff/approve", {"year": "20x4", "national": "1", "local": "1"})
    assert garbage.status_code == 422 and "write YEAR=NATIONAL/LOCAL in won" in said(garbage.text)
    empty = b.post(f"/office/applications/{app_id}/kickoff/approve", {"year": "", "national": "", "local": ""})
    assert empty.status_code == 422 and "write the funding of at least one year" in said(empty.text)
    assert w.footprint() == before and w.count(FUNDING_YEAR) == 0 and w.state(SEJONG) == "selected"
    # the office's own split: the first year a quarter, the rest in the last year
    first_n, first_l = national // 4, local // 4
    mine = [(2024, first_n, first_l)] + [(2024 + i, 0, 0) for i in range(1, years - 1)]
    mine.append((2024 + years - 1, national - first_n, local - first_l))
    given = {
        "year": [str(y) for y, _, _ in mine],
        "national": [f"{n:,}" for _, n, _ in mine],
        "local": [f"{loc:,}" for _, _, loc in mine],
    }
    done = b.post(f"/office/applications/{app_id}/kickoff/approve", given)
    assert done.status_code == 303, done.text
    assert w.state(SEJONG) == "kickoff"
    funding = [(r["year"], r["national_krw"], r["local_krw"]) for r in w.rows(FUNDING_YEAR)]
    assert funding == mine
    after = b.get(done.headers["location"])
    text = said(after.text)
    assert "실시계획을 승인했습니다" in text and f"2024 {first_n:,} {first_l:,}" in text
    assert kickoff_forms(after.text) == {}
    again = b.post(f"/office/applications/{app_id}/kickoff/approve", given)  # a second approval: refused beside
    assert again.status_code == 409 and "kickoff-refusal" in again.text


def test_the_bare_approve_kickoff_trigger_is_not_offered_nor_taken(presentation: World, browser: Make) -> None:
    w = presentation
    app_id = selected_world(w)
    b = browser(w).sign_in()
    page = b.get(f"/office/applications/{app_id}")
    assert "approve_kickoff" not in forms_of(page.text) and "cancel" in forms_of(page.text)
    before = w.footprint()
    refused = b.post(
        f"/office/applications/{app_id}/transitions", {"trigger": "approve_kickoff", "version": str(w.version(SEJONG))}
    )
    assert refused.status_code == 422 and "approve the implementation plan with its funding by year" in refused.text
    assert w.footprint() == before
