"""The evaluators' portal in a real browser: an evaluator scores two applications (one of them
corrected, the total kept live as it types), is refused a point out of range beside the field, and
declares a conflict on a third; axe-core on every portal page in Korean and English, at 1280 and 390
px wide (no serious or critical violation, every field labelled).

The evaluator who scores signs in as the issue says: its address on /signin, the link read from the
Maildir, landing on its home in its language (Korean, from the committee import). The accessibility
test does not test the sign-in: its session is opened by the service and set as the cookie
(serve.Console.sign_in)."""

from __future__ import annotations

from collections.abc import Callable

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import BrowserContext, Page, expect

from gongmo.workflow.core.models import ASSIGNMENT, EVALUATOR, EVENT, SCORE
from tests.workflow.api.conftest import KIM, POINTS, SEJONG, SIHEUNG, World
from tests.workflow.web.browser.serve import Cast, Console
from tests.workflow.web.browser.test_accessibility import BLOCKING, UNLABELLED

CHEONGJU = "43110"
WIDTHS = (1280, 390)


def no_blocking_violation(page: Page, where: str) -> None:
    results = Axe().run(page)
    blocking = [
        f"{v['impact']} {v['id']}: {v['help']} ({v['nodes'][0]['html'][:160]})"
        for v in results.response["violations"]
        if v["impact"] in BLOCKING
    ]
    assert not blocking, f"{where}:\n" + "\n".join(blocking)
    assert not page.evaluate(UNLABELLED), where


def fill_sheet(page: Page, part: str, points: dict[str, str]) -> None:
    for key, value in points.items():
        page.locator(f"#f-{part}-{key}").fill(value)


def scores_of(w: World, code: str) -> dict[str, int]:
    ev = w.rows(EVALUATOR, EVALUATOR.c.email == KIM)[0]["id"]
    rows = w.rows(SCORE, SCORE.c.application_id == w.id(code), SCORE.c.evaluator_id == ev)
    return {r["criterion"]: r["points_x100"] for r in rows}


def test_every_portal_page_passes_axe_in_both_languages_and_at_390_px(
    written: World, console: Callable[[World], Console], context: BrowserContext
) -> None:
    c = console(written)
    c.sign_in(context, "evaluator", KIM)
    page = context.new_page()
    app_page = f"/evaluator/applications/{written.id(SEJONG)}"
    paths = ["/evaluator", app_page, f"{app_page}/conflict"]
    for lang in ("ko", "en"):
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            for path in paths:
                answer = page.goto(f"{c.url}{path}?lang={lang}")
                assert answer is not None and answer.status == 200, path
                assert page.evaluate("document.documentElement.lang") == lang
                no_blocking_violation(page, f"{path}?lang={lang} at {width} px")
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 1, f"{path} at {width} px scrolls sideways by {overflow} px"
    # the refused sheet (errors beside the fields) and the saved one are pages too
    page.goto(f"{c.url}{app_page}?lang=ko")
    fill_sheet(page, "written", POINTS | {"feasibility": "31"})
    page.locator("#sheet-written button[type=submit]").click()
    expect(page.locator("#err-written-feasibility")).to_be_visible()
    no_blocking_violation(page, "the refused sheet")


def test_an_evaluator_signs_in_by_the_mailed_link_scores_two_corrects_one_and_declares_a_conflict(
    written: World, console: Callable[[World], Console], cast: Callable[[Console], Cast]
) -> None:
    c = console(written)
    people = cast(c)
    kim = people.person(KIM, "evaluator")
    people.sign_in([kim])  # /signin, the Maildir's link, its button: the evaluator's home
    page = kim.page
    assert page.url == f"{c.url}/evaluator"
    assert page.evaluate("document.documentElement.lang") == "ko"
    expect(page.locator("#part-strong-small-2024-written")).to_contain_text("10건 미입력")

    # the first: the total follows the typing; one point out of range is refused beside its field
    page.locator(f"a[href='/evaluator/applications/{written.id(SEJONG)}#sheet-written']").click()
    total = page.locator("#total-written")
    expect(total).to_have_text("— / 100점")
    fill_sheet(page, "written", {"feasibility": "24.5"})
    expect(total).to_have_text("24.5 / 100점")
    fill_sheet(page, "written", POINTS | {"effect": "16"})
    expect(total).to_have_text("71.75 / 100점")  # the field out of range counts nothing
    page.locator("#sheet-written button[type=submit]").click()
    expect(page.locator("#err-written-effect")).to_contain_text("out of range, give 0 to 15")
    assert scores_of(written, SEJONG) == {}
    fill_sheet(page, "written", {"effect": POINTS["effect"]})
    expect(total).to_have_text("84.75 / 100점")
    page.locator("#sheet-written button[type=submit]").click()
    expect(page.locator("#saved-written")).to_be_visible()
    assert scores_of(written, SEJONG)["effect"] == 1300

    # the second, then corrected
    page.goto(f"{c.url}/evaluator")
    page.locator(f"a[href='/evaluator/applications/{written.id(SIHEUNG)}#sheet-written']").click()
    fill_sheet(page, "written", POINTS)
    page.locator("#sheet-written button[type=submit]").click()
    expect(page.locator("#saved-written")).to_be_visible()
    fill_sheet(page, "written", {"innovation": "15.5"})
    expect(page.locator("#total-written")).to_have_text("82.25 / 100점")
    page.locator("#sheet-written button[type=submit]").click()
    expect(page.locator("#corrected-written")).to_contain_text("이전 합계 84.75점 → 현재 합계 82.25점")
    assert scores_of(written, SIHEUNG)["innovation"] == 1550
    assert written.count(EVENT, EVENT.c.kind == "score_corrected") == 1

    # the third: a conflict, confirmed with a reason
    page.goto(f"{c.url}/evaluator/applications/{written.id(CHEONGJU)}")
    page.get_by_role("link", name="이해충돌을 신고하십시오").click()
    expect(page.locator("ul.consequences")).to_contain_text("배정이 철회")
    page.locator("#reason").fill("최근 3년 내 청주시 용역 수행")
    page.get_by_role("button", name="이해충돌을 신고하고 배정 철회").click()
    expect(page.locator("#declared")).to_be_visible()
    assert page.url.endswith(f"/evaluator?declared={written.id(CHEONGJU)}")
    ev = written.rows(EVALUATOR, EVALUATOR.c.email == KIM)[0]["id"]
    mine = (ASSIGNMENT.c.application_id == written.id(CHEONGJU)) & (ASSIGNMENT.c.evaluator_id == ev)
    assert written.count(ASSIGNMENT, mine) == 0
    expect(page.locator("#part-strong-small-2024-written")).to_contain_text("9건 중 2건 입력, 7건 미입력")
    answer = page.goto(f"{c.url}/evaluator/applications/{written.id(CHEONGJU)}")
    assert answer is not None and answer.status == 403
