"""The applicant's portal in Chromium: a plan with its documents and answers sent one second before
the close, a second plan refused at the close, an objection after the disqualification, the
explained result after the release, the implementation plan uploaded; and axe-core on every portal
page in Korean and English, at 1280 and 390 px wide (no serious or critical violation, every field
labelled).

Each applicant signs in as the issue says: its contact's address on /signin, the link read from the
Maildir (serve.Cast), landing on /applicant in its language (Korean, from its record). The pages'
accessibility is checked along the way, on those mailed sessions: no cookie is set by hand here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

from gongmo.workflow.core import samples
from gongmo.workflow.core.models import DOCUMENT, KICKOFF_PLAN, OBJECTION, OUTBOX
from gongmo.workflow.outbox import office as outbox_office
from gongmo.workflow.stages import selection
from tests.conftest import kst
from tests.workflow.api.conftest import CHANGWON, SEJONG, SIHEUNG, TRACK_KEY, World
from tests.workflow.contest_2024 import OFFICE
from tests.workflow.web.browser.serve import Cast, Console
from tests.workflow.web.browser.test_accessibility import BLOCKING, UNLABELLED
from tests.workflow.web.browser.test_whole_contest import CONTACT
from tests.workflow.web.test_applicant import send_all

HWASEONG = "41590"
WIDTHS = (1280, 390)


def check_page(page: Page, url: str) -> None:
    """axe and the label check on one page, in both languages and both widths."""
    for lang in ("ko", "en"):
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            answer = page.goto(f"{url}{'&' if '?' in url else '?'}lang={lang}")
            assert answer is not None and answer.status == 200, (url, answer and answer.status)
            assert page.evaluate("document.documentElement.lang") == lang
            violations = Axe().run(page).response["violations"]
            blocking = [f"{v['impact']} {v['id']}: {v['help']}" for v in violations if v["impact"] in BLOCKING]
            assert not blocking, f"{url} {lang} {width}px: {blocking}"
            assert not page.evaluate(UNLABELLED), f"{url} {lang}: unlabelled fields"
            if width == 390:  # nothing wider than the screen at 390 px
                assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), (url, lang)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{url}{'&' if '?' in url else '?'}lang=ko")


def signed_in(people: Cast, *codes: str) -> list[Page]:
    """The contacts of `codes` sign in by their mailed links (one delivery to the Maildir for all),
    each landing on /applicant in Korean; their pages, in that order."""
    who = [people.person(CONTACT[code], "applicant") for code in codes]
    people.sign_in(who)
    for p in who:
        assert p.page.url == f"{people.console.url}/applicant"
        assert p.page.evaluate("document.documentElement.lang") == "ko", p.email
    return [p.page for p in who]


def write_files(tmp_path: Path) -> tuple[Path, Path]:
    plan, budget = tmp_path / "사업계획서.pdf", tmp_path / "산출내역서.xlsx"
    plan.write_bytes(samples.pdf("화성 계획"))
    budget.write_bytes(samples.xlsx())
    return plan, budget


def fill_plan(page: Page, plan: Path, budget: Path) -> None:
    page.fill("#title", "화성 스마트도시")
    page.select_option("#project_type", "climate_crisis")
    page.fill("#national_krw", "8,000,000,000")
    page.fill("#local_krw", "8,000,000,000")
    page.set_input_files("#doc-plan", str(plan))
    page.set_input_files("#doc-budget", str(budget))


@pytest.mark.slow
def test_a_plan_one_second_before_the_close_and_one_refused_at_it(
    opened: World, console: Callable[[World], Console], cast: Callable[[Console], Cast], tmp_path: Path
) -> None:
    w = opened
    c = console(w)
    w.clock.set(kst("2024-05-29 17:59:59"))
    page, late = signed_in(cast(c), HWASEONG, SIHEUNG)  # both before the close: 시흥 sends its plan at it
    check_page(page, f"{c.url}/applicant")
    with page.expect_navigation():
        page.locator(f'a[href="/applicant/tracks/{TRACK_KEY}/apply"]').first.click()
    assert page.url.endswith(f"/applicant/tracks/{TRACK_KEY}/apply")
    check_page(page, page.url)
    plan, budget = write_files(tmp_path)
    fill_plan(page, plan, budget)
    page.get_by_role("button", name="사업계획 제출").click()
    page.wait_for_load_state()
    row = w.row(HWASEONG)
    assert row["state"] == "receipt", page.content()[:500]
    text = page.inner_text("main")
    assert f"접수번호 {row['receipt_no']}" in text
    for d in w.rows(DOCUMENT, DOCUMENT.c.application_id == row["id"]):
        assert d["sha256"] in text
    check_page(page, f"{c.url}/applicant/applications/{row['id']}")

    # a second applicant opens its form before the close and sends it at the close: refused
    late.goto(f"{c.url}/applicant/tracks/{TRACK_KEY}/apply")
    fill_plan(late, plan, budget)
    w.clock.set(kst("2024-05-29 18:00:00"))
    before = w.footprint()
    with late.expect_response(lambda r: r.request.method == "POST") as answer:
        late.get_by_role("button", name="사업계획 제출").click()
    assert answer.value.status == 409
    assert "접수가 마감되었습니다" in late.inner_text("main")
    assert late.locator("input[type=file]").count() == 0
    assert w.footprint() == before and w.state(SIHEUNG) == "announcement"


@pytest.mark.slow
def test_an_objection_after_the_disqualification(
    written: World, console: Callable[[World], Console], cast: Callable[[Console], Cast]
) -> None:
    w = written
    c = console(w)
    w.clock.set(kst("2024-06-04 09:00"))
    send_all(w)
    (page,) = signed_in(cast(c), CHANGWON)
    url = f"{c.url}/applicant/applications/{w.id(CHANGWON)}"
    page.goto(url)
    check_page(page, url)
    assert "이의신청은 2024-06-10" in page.inner_text("#objection")
    page.fill("#grounds", "인구 기준을 잘못 적용했습니다")
    page.get_by_role("button", name="이의신청 제출").click()
    page.wait_for_load_state()
    assert "이의신청이 접수되었습니다" in page.inner_text("main")
    assert w.count(OBJECTION) == 1
    check_page(page, f"{c.url}/applicant/notices")
    notice = w.rows(OUTBOX, OUTBOX.c.application_id == w.id(CHANGWON), OUTBOX.c.state == "sent")[0]
    check_page(page, f"{c.url}/applicant/notices/{notice['id']}")


def test_the_explained_result_after_the_release_and_the_kickoff_plan(
    presentation: World,
    console: Callable[[World], Console],
    cast: Callable[[Console], Cast],
    tmp_path: Path,
) -> None:
    w = presentation
    c = console(w)
    w.clock.set(kst("2024-06-26 10:00"))
    selection.select(w.app, TRACK_KEY, OFFICE, confirm=True)
    (page,) = signed_in(cast(c), SEJONG)
    url = f"{c.url}/applicant/applications/{w.id(SEJONG)}"
    page.goto(url)
    assert page.locator("#result").count() == 0 and "선정되었습니다" not in page.inner_text("main")
    outbox_office.release(w.app, TRACK_KEY, "results")
    page.goto(url)
    result = page.inner_text("#result")
    assert f"종합 점수 {w.row(SEJONG)['score']}점" in result
    check_page(page, url)
    check_page(page, f"{url}/withdraw")
    plan = tmp_path / "실시계획.pdf"
    plan.write_bytes(samples.pdf("세부 실시계획"))
    page.goto(url)
    page.set_input_files("#plan-file", str(plan))
    page.get_by_role("button", name="실시계획 제출").click()
    page.wait_for_load_state()
    assert "실시계획(1차)을 제출했습니다" in page.inner_text("main")
    (row,) = w.rows(KICKOFF_PLAN)
    assert row["status"] == "received" and row["received_by"].startswith(SEJONG)
