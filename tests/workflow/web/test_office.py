"""The console's contests page (/office) and what every page shares: sign-in required, the
security headers, the language switch, HTML refusals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICATION, DEADLINE, OUTBOX
from gongmo.workflow.outbox import office as outbox_office
from gongmo.workflow.stages import review, selection
from gongmo.workflow.web.office import countdown, span
from gongmo.workflow.web.office import kst as kst_text
from tests.conftest import kst
from tests.workflow import contest_2024 as sc
from tests.workflow.api.conftest import CHANGWON, SEJONG, TRACK_KEY, World
from tests.workflow.web.conftest import Browser, text_of

Make = Callable[[World], Browser]


def test_the_contests_page_shows_each_track_with_its_funnel(
    written: World, browser: Callable[[World], Browser]
) -> None:
    b = browser(written).sign_in()
    page = b.get("/office")
    assert page.status_code == 200, page.text
    text = text_of(page.text)
    assert "공모 현황" in text and "강소형" in text
    assert "전체: 26" in text, text  # 26 invited in the 2024 strong-and-small track: 10 in written evaluation
    assert "서면평가" in text


def test_a_page_without_a_session_sends_the_browser_to_sign_in(
    written: World, browser: Callable[[World], Browser]
) -> None:
    page = browser(written).get("/office")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/signin?next=%2Foffice")


def test_pages_carry_a_csp_without_inline_script_and_no_framing(
    written: World, browser: Callable[[World], Browser]
) -> None:
    page = browser(written).sign_in().get("/office")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert "<script>" not in page.text and "onclick" not in page.text


def test_the_language_switch_is_kept(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    assert "Contests" in text_of(b.get("/office?lang=en").text)
    assert "Contests" in text_of(b.get("/office").text)  # the cookie keeps it
    assert "공모 현황" in text_of(b.get("/office?lang=ko").text)


def test_the_api_still_answers_json_beside_the_pages(written: World, browser: Make) -> None:
    answer = browser(written).get("/contests")
    assert answer.status_code == 401 and answer.json()["error"].startswith("no API token")


# -- the contests overview (issue 23): slots and budget, next deadline, warnings --------------------


def _unfired(w: World) -> list[dict[str, Any]]:
    return w.rows(DEADLINE, DEADLINE.c.fired_at.is_(None), DEADLINE.c.track_id == w.row(SEJONG)["track_id"])


def _section(html: str, track: str = TRACK_KEY) -> str:
    """The text of one track's section of the contests page."""
    start = html.index(f'id="track-{track}"')
    end = html.find("<section", start)
    return text_of(html[start : end if end != -1 else len(html)])


def test_the_overview_shows_slots_budget_and_the_next_deadline_with_its_countdown(
    written: World, browser: Make
) -> None:
    w = written
    page = browser(w).sign_in().get("/office")
    assert page.status_code == 200, page.text
    text = _section(page.text)
    _, track = w.app.loaded.config.track(TRACK_KEY)
    assert f"선정 0 / {track.slots}곳" in text
    assert f"국비 0 / {track.funding.budget_national_krw:,}원" in text
    upcoming = min((d for d in _unfired(w) if d["due_at"] > w.clock.now()), key=lambda d: (d["due_at"], d["id"]))
    assert kst_text(upcoming["due_at"]) in text, text
    assert countdown(upcoming["due_at"], w.clock.now(), "ko") in text and "후" in text
    assert f'data-due="{int(upcoming["due_at"].timestamp() * 1000)}"' in page.text
    assert f'data-now="{int(w.clock.now().timestamp() * 1000)}"' in page.text
    assert "확인할 문제가 없습니다" in text and "확인이 필요합니다" not in text  # no cause, no warning


def test_the_countdown_words() -> None:
    now = kst("2024-06-11 14:00")
    assert countdown(now + timedelta(hours=2, minutes=14, seconds=30), now, "en") == "in 2 h 14 min"
    assert countdown(now + timedelta(days=3, hours=2, minutes=5), now, "ko") == "3일 2시간 후"
    assert countdown(now - timedelta(minutes=65), now, "en") == "1 h 5 min ago"
    assert countdown(now + timedelta(days=1), now, "en") == "in 1 d"
    assert countdown(now + timedelta(seconds=20), now, "ko") == "지금"
    assert countdown(now + timedelta(days=2, minutes=7), now, "en") == "in 2 d"  # two largest units: 2 d 0 h
    assert span(6408000, "en") == "74 d 4 h" and span(30, "ko") == "0분" and span(3600, "ko") == "1시간"


def test_a_failed_deadline_and_dead_mail_and_an_open_objection_are_warned(written: World, browser: Make) -> None:
    w = written
    b = browser(w).sign_in()
    failing = min(_unfired(w), key=lambda d: (d["due_at"], d["id"]))
    assert failing["due_at"] <= w.clock.now()  # due, not fired yet (the ticker has not run since)
    with write(w.app.db) as conn:  # as the ticker leaves a row whose action raised
        conn.execute(
            sa.update(DEADLINE).where(DEADLINE.c.id == failing["id"]).values(attempts=3, last_error="boom: disk full")
        )
        dead_id = conn.execute(sa.select(sa.func.min(OUTBOX.c.id))).scalar_one()
        conn.execute(
            sa.update(OUTBOX).where(OUTBOX.c.id == dead_id).values(state="dead", last_error="550 mailbox unavailable")
        )
    text = _section(b.get("/office").text)
    assert "확인이 필요합니다" in text
    assert f"일정 {failing['key']} 실행 실패 (3회): boom: disk full" in text, text
    assert "발송 실패 메일 1건" in text
    assert "이의신청" not in text

    disqualified = w.row(CHANGWON)
    now = w.clock.now()
    w.clock.set(kst("2024-06-04 10:00"))  # inside the objection window
    objection = review.file_objection(w.app, disqualified["id"], "the population figure is wrong", sc.OFFICE)
    w.clock.set(now)
    text = _section(b.get("/office?lang=en").text)
    assert "Needs attention" in text
    assert f"1 open objection(s): #{objection} ({disqualified['receipt_no']})" in text, text
    assert "1 dead notice(s)" in text
    review.decide_objection(w.app, objection, False, "the figure is right", sc.OFFICE)
    assert "open objection" not in _section(b.get("/office?lang=en").text)


def test_results_under_embargo_are_warned_until_released(presentation: World, browser: Make) -> None:
    w = presentation
    b = browser(w).sign_in()
    assert "embargo" not in _section(b.get("/office?lang=en").text)
    w.clock.set(kst("2024-06-27 10:00"))
    chosen = selection.select(w.app, TRACK_KEY, sc.OFFICE, confirm=True)
    b = browser(w).sign_in()  # a day later: the first session has ended
    selected = [d for d in chosen.decisions if d.outcome == "select"]
    text = _section(b.get("/office?lang=en").text)
    assert "results under embargo (not yet released)" in text, text
    with read(w.app.db) as conn:
        ids = [d.application_id for d in selected]
        national = conn.execute(sa.select(sa.func.sum(APPLICATION.c.national_krw)).where(APPLICATION.c.id.in_(ids)))
        national = int(national.scalar_one())
    _, track = w.app.loaded.config.track(TRACK_KEY)
    assert selected and f"{len(selected)} of {track.slots} sites" in text
    assert f"KRW {national:,} of {track.funding.budget_national_krw:,}" in text
    outbox_office.release(w.app, TRACK_KEY, "results")
    assert "embargo" not in _section(b.get("/office?lang=en").text)


def test_a_bug_on_a_page_is_an_html_page_with_one_line_and_no_traceback(written: World, browser: Make) -> None:
    from fastapi import APIRouter

    b = browser(written).sign_in()
    broken = APIRouter()

    @broken.get("/office/broken")
    def fails() -> None:
        raise RuntimeError("a bug in a page")

    b.http.app.include_router(broken)  # type: ignore[attr-defined]
    page = b.get("/office/broken")
    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "internal error" in page.text and "nothing was changed by it" in page.text
    assert "Traceback" not in page.text and "a bug in a page" not in page.text
    assert b.get("/applications/999999999").headers["content-type"].startswith("application/json")


def test_the_root_leads_each_person_to_its_own_pages(written: World, browser: Make) -> None:
    from tests.workflow.api.conftest import KIM, SEJONG

    assert browser(written).get("/").headers["location"] == "/office"  # then the sign-in page
    assert browser(written).sign_in().get("/").headers["location"] == "/office"
    assert browser(written).sign_in("evaluator", KIM).get("/").headers["location"] == "/evaluator"
    assert browser(written).sign_in("applicant", SEJONG).get("/").headers["location"] == "/applicant"
