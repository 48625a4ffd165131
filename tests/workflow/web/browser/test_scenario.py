"""The 2024 strong-and-small track from the preliminary review to the release of its results,
entirely by clicking in the console: review pass, disqualify the failed, assign the committee,
the ranking and its dry run, the typed confirmation, the release. Only what has no console page
yet goes through the services: the plans' receipt (the applicants' portal) and the evaluators'
score sheets (their portal, issue 24)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from gongmo.workflow.core.models import OUTBOX
from gongmo.workflow.stages import committee
from tests.conftest import kst
from tests.workflow import contest_2024 as sc
from tests.workflow.api.conftest import IN_EVALUATION, TRACK_KEY, World
from tests.workflow.web.browser.serve import Console, dry_run

# a decision of the dry run (the trigger it fires) -> the state it leads to
OUTCOME = {"select": "selected", "waitlist": "waitlisted", "reject": "not_selected"}


def bulk(page: Page, name: str) -> int:
    """From the track page: preview the bulk action `name`, confirm it; how many rows it showed."""
    page.locator(f"a[href$='/actions/{name}']").click()
    form = page.locator(f"form[action$='/actions/{name}']")
    shown = int(form.locator("input[name=count]").input_value())
    expect(page.locator("main table tbody tr")).to_have_count(shown)
    form.get_by_role("button").click()
    page.wait_for_url(f"**/office/tracks/{TRACK_KEY}?**")
    expect(page.get_by_role("status").first).to_contain_text(str(shown))
    return shown


def score_every_sheet(w: World, part: str, tmp_path: Path) -> None:
    """The committee's sheets of one part, entered as the office's CSV import does."""
    receipts = {code: str(r["receipt_no"]) for code, r in sc.apps(w.app).items() if code in IN_EVALUATION}
    track = w.app.loaded.config.track(TRACK_KEY)[1]
    sheets, where = committee.parse_scores(sc.scores_csv(tmp_path / f"{part}.csv", part, receipts), track)
    committee.enter_sheets(w.app, sheets, sc.OFFICE, where)


def test_the_2024_scenario_from_review_to_release_by_clicking(
    opened: World, console: Callable[[World], Console], context: BrowserContext, page: Page, tmp_path: Path
) -> None:
    w = opened
    sc.receive_all(w.app, w.clock)  # 12 plans received (the applicants' side)
    sc.at(w.app, w.clock, "2024-05-29 18:00")  # the receipt closes: preliminary review
    w.clock.set(kst("2024-06-03 10:00"))
    c = console(w)
    c.sign_in(context)

    page.goto(c.url + "/office")
    page.locator(f"a[href='/office/tracks/{TRACK_KEY}']").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("강소형")
    assert bulk(page, "review-pass") == 10
    assert bulk(page, "disqualify-failed") == 2
    assert bulk(page, "assign") == 10
    states = Counter(sc.states(w.app).values())
    assert states == {"written_evaluation": 10, "disqualified": 2}, states

    w.clock.set(kst("2024-06-11 14:00"))
    score_every_sheet(w, "written", tmp_path)
    sc.at(w.app, w.clock, "2024-06-12 18:00")  # the presentation evaluation starts
    w.clock.set(kst("2024-06-19 17:00"))
    score_every_sheet(w, "presentation", tmp_path)
    w.clock.set(kst("2024-06-26 09:00"))  # the selection day
    c.sign_in(context)  # three weeks later: the first session has ended long ago

    decided = dry_run(page, TRACK_KEY)
    assert Counter(decided.values()) == {"select": 3, "waitlist": 2, "reject": 5}, decided
    assert Counter(sc.states(w.app).values())["presentation_evaluation"] == 10  # a dry run changes nothing

    page.get_by_label(TRACK_KEY).fill(TRACK_KEY)
    page.get_by_role("button", name="선정 확정").click()
    page.wait_for_url(f"**/office/tracks/{TRACK_KEY}/release?**")
    receipts = {str(r["receipt_no"]): code for code, r in sc.apps(w.app).items()}
    assert {receipts[no]: OUTCOME[decision] for no, decision in decided.items()} == {
        code: state for code, state in sc.states(w.app).items() if code in IN_EVALUATION
    }, "the selection did what its dry run showed"
    held = w.count(OUTBOX, OUTBOX.c.state == "held")
    assert held == 10
    expect(page.locator("p.release-total")).to_contain_text(str(held))

    page.locator("form.release-all").get_by_role("button").click()
    page.wait_for_url(f"**/office/tracks/{TRACK_KEY}/release?released=*")
    expect(page.get_by_role("status").first).to_contain_text(str(held))
    assert w.count(OUTBOX, OUTBOX.c.state == "held") == 0
    results = w.rows(OUTBOX, OUTBOX.c.notice.in_(list(OUTCOME.values())))
    assert Counter(r["notice"] for r in results) == {"selected": 3, "waitlisted": 2, "not_selected": 5}
    assert {r["state"] for r in results} == {"pending"}, "released: due to go out"
