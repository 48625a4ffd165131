"""The 2024 strong-and-small scenario from the open receipt window to kickoff, every human step done
in a browser by the person who would do it (issue 24, "Done when"): each of the 12 local
governments signs in through the link mailed to its contact (read from the Maildir) and submits its
plan with its documents; the office reviews (pass, disqualify the failed) and assigns the committee;
each of the 5 evaluators signs in and enters its written sheets, then its presentation sheets; the
office ranks, dry-runs, confirms with the typed key and releases; the evaluated read their explained
result; the selected file their implementation plan, the office returns it once with comments, they
file again, and the office approves it with the funding schedule. Only the clock and the deadline
ticker (the daemon's part) are driven by the test; nothing sleeps.

The run ends where the services' run of the same scenario ends (tests/workflow/api/conftest.drive,
then selection.select): the same scores and the same selection. On PostgreSQL one applicant and one
evaluator do their part in the browser, the rest through the services.

One Chromium; a context per person (its own cookies), opened when the person first acts."""

from __future__ import annotations

import csv
import io
import re
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from gongmo.workflow.core import samples
from gongmo.workflow.core.models import FUNDING_YEAR, KICKOFF_PLAN, OUTBOX, SCORE
from gongmo.workflow.outbox import office as outbox_office
from gongmo.workflow.stages import committee, review, selection
from tests.conftest import kst
from tests.workflow import contest_2024 as sc
from tests.workflow import plans
from tests.workflow.api.conftest import IN_EVALUATION, TRACK_KEY, World
from tests.workflow.web.browser.serve import OFFICE_EMAIL, Cast, Console, Person, dry_run, staff
from tests.workflow.web.browser.test_scenario import OUTCOME, bulk

SUWON = "41110"  # submits too, and is disqualified (population over 1,000,000) as 창원 48120
HWASEONG, KIM = "41590", sc.EVALUATORS[0]
CONTACT = {row["code"]: row["email"] for row in csv.DictReader(io.StringIO(sc.APPLICANTS_CSV))}
LOCALE = {"44130": "en-US"}  # 천안's record says English: its portal speaks English by default


# -- the applicants -------------------------------------------------------------------------------


def applicant(cast: Cast, code: str) -> Person:
    return cast.person(CONTACT[code], "applicant", LOCALE.get(code, "ko-KR"))


def submit_plan(p: Person, code: str, tmp_path: Path) -> None:
    """From the portal's home: the track's form, the plan's fields and its two documents, sent."""
    national = sc.NATIONAL.get(code, 8_000_000_000)
    plan, budget = tmp_path / f"{code}-사업계획서.pdf", tmp_path / f"{code}-산출내역서.xlsx"
    plan.write_bytes(samples.pdf(f"{code} 스마트도시 사업계획"))
    budget.write_bytes(samples.xlsx())
    page = p.page
    page.locator(f'a[href="/applicant/tracks/{TRACK_KEY}/apply"]').first.click()
    page.fill("#title", f"{code} 스마트도시")
    page.select_option("#project_type", "climate_crisis" if int(code) % 2 else "local_extinction")
    page.fill("#national_krw", f"{national:,}")
    page.fill("#local_krw", f"{national:,}")
    page.set_input_files("#doc-plan", str(plan))
    page.set_input_files("#doc-budget", str(budget))
    page.locator("form.plan-form button[type=submit]").click()
    page.wait_for_url(re.compile(r"/applicant/applications/\d+\?received=1$"))


def read_result(p: Person, w: World, code: str) -> None:
    """The explained result on the application's page: the committee score, the rank."""
    p.page.locator("a[href^='/applicant/applications/']").first.click()
    result = p.page.locator("#result")
    expect(result).to_contain_text(str(w.row(code)["score"]))


def file_kickoff_plan(p: Person, code: str, round_: int, tmp_path: Path) -> None:
    plan = tmp_path / f"{code}-실시계획-{round_}.pdf"
    plan.write_bytes(samples.pdf(f"{code} 세부 실시계획 {round_}차"))
    p.page.set_input_files("#plan-file", str(plan))
    p.page.locator("#kickoff button[type=submit]").click()
    expect(p.page.locator("#filed")).to_be_visible()


# -- the committee --------------------------------------------------------------------------------


def enter_sheets(p: Person, part: str, codes: dict[int, str]) -> int:
    """Every sheet of `part` listed on the evaluator's home, filled criterion by criterion with the
    scenario's points (its target plus the evaluator's bias) and saved; how many it saved."""
    page = p.page
    bias = dict(zip(sc.EVALUATORS, sc.WRITTEN_BIAS if part == "written" else sc.PRESENTATION_BIAS, strict=True))
    links = page.locator(f"a[href$='#sheet-{part}']").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    for href in links:
        code = codes[int(href.split("/")[3].split("#")[0])]
        target = Decimal(sc.TARGETS[code][0 if part == "written" else 1])
        page.goto(p_url(page) + href)
        for criterion, points in sc.sheet(target + bias[p.email], code).items():
            page.fill(f"#f-{part}-{criterion}", str(points))
        page.locator(f"#sheet-{part} button[type=submit]").click()
        expect(page.locator(f"#saved-{part}")).to_be_visible()
    return len(links)


def p_url(page: Page) -> str:
    """The console's origin, from the page's own address."""
    parts = urlsplit(page.url)
    return f"{parts.scheme}://{parts.netloc}"


def assigned(evaluator: str) -> int:
    return sum(not sc.conflicted(code, evaluator) for code in IN_EVALUATION)


# -- the office ------------------------------------------------------------------------------------


def rank_confirm_release(office: Person) -> dict[str, str]:
    """The ranking page's dry run, the typed confirmation, the release of the held results; the dry
    run's decisions by receipt number."""
    page = office.page
    page.locator(f"a[href='/office/tracks/{TRACK_KEY}']").first.click()
    decided = dry_run(page, TRACK_KEY)
    page.get_by_label(TRACK_KEY).fill(TRACK_KEY)
    page.get_by_role("button", name="선정 확정").click()
    page.wait_for_url(f"**/office/tracks/{TRACK_KEY}/release?**")
    page.locator("form.release-all").get_by_role("button").click()
    page.wait_for_url(f"**/office/tracks/{TRACK_KEY}/release?released=*")
    return decided


def return_kickoff_plan(office: Person, application_id: int, comments: str) -> None:
    """The office reads the waiting round's file and returns the plan with its comments."""
    page = office.page
    page.goto(f"{p_url(page)}/office/applications/{application_id}")
    with page.expect_download() as download:
        page.locator("#kickoff table.plans a[download]").last.click()
    assert download.value.suggested_filename.endswith(".pdf")
    page.fill("#kickoff-comments", comments)
    page.locator("#kickoff-return button[type=submit]").click()
    page.wait_for_url(re.compile(r"\?kickoff=returned"))
    expect(page.locator("#kickoff-done")).to_be_visible()


def approve_kickoff_plan(office: Person, application_id: int) -> None:
    """The office approves the waiting round with the funding by year (the form's even split)."""
    page = office.page
    page.goto(f"{p_url(page)}/office/applications/{application_id}")
    page.locator("#kickoff-approve button[type=submit]").click()
    page.wait_for_url(re.compile(r"\?kickoff=approved"))
    expect(page.locator("#kickoff table.funding tbody tr")).to_have_count(3)


# -- the run ----------------------------------------------------------------------------------------


class Laps:
    """Wall time per phase of the run (printed with -s: what the run costs, and where)."""

    def __init__(self) -> None:
        self.marks = [("start", time.perf_counter())]

    def __call__(self, name: str) -> None:
        self.marks.append((name, time.perf_counter()))

    def total(self) -> float:
        return self.marks[-1][1] - self.marks[0][1]

    def __str__(self) -> str:
        steps = zip(self.marks, self.marks[1:], strict=False)
        return f"{self.total():.1f} s: " + ", ".join(f"{b[0]} {b[1] - a[1]:.1f}" for a, b in steps)


@pytest.mark.slow
def test_the_2024_scenario_from_the_open_call_to_kickoff_each_step_by_its_person(
    opened: World,
    world: Callable[..., World],
    console: Callable[[World], Console],
    cast: Callable[[Console], Cast],
    tmp_path: Path,
) -> None:
    lap = Laps()
    w = opened
    c = console(w)
    people = cast(c)
    staff(w.app)

    # the receipt window: every government signs in by its mailed link and submits its plan
    codes = [*sc.NATIONAL, SUWON]
    w.clock.set(kst("2024-05-28 11:00"))
    govs = {code: applicant(people, code) for code in codes}
    people.sign_in(list(govs.values()))
    for code, p in govs.items():
        submit_plan(p, code, tmp_path)
    assert Counter(sc.states(w.app).values()) == {"receipt": 12}
    lap("12 plans submitted")
    sc.at(w.app, w.clock, "2024-05-29 18:00")  # the receipt closes (the ticker): preliminary review

    # the office reviews and assigns
    w.clock.set(kst("2024-06-03 10:00"))
    office = people.person(OFFICE_EMAIL, "admin")
    people.sign_in([office])
    office.page.locator(f"a[href='/office/tracks/{TRACK_KEY}']").first.click()
    assert bulk(office.page, "review-pass") == 10
    assert bulk(office.page, "disqualify-failed") == 2
    assert bulk(office.page, "assign") == 10
    assert Counter(sc.states(w.app).values()) == {"written_evaluation": 10, "disqualified": 2}
    lap("review and assignment")

    # the committee: written sheets in the written window, presentation sheets in the presentation's
    by_id = {int(str(r["id"])): code for code, r in sc.apps(w.app).items()}
    committee_ = [people.person(email, "evaluator") for email in sc.EVALUATORS]
    for part, at in (("written", "2024-06-11 14:00"), ("presentation", "2024-06-18 10:00")):
        if part == "presentation":
            sc.at(w.app, w.clock, "2024-06-12 18:00")  # the written window closes: presentation evaluation
        w.clock.set(kst(at))
        people.sign_in(committee_)
        for p in committee_:
            assert enter_sheets(p, part, by_id) == assigned(p.email), (p.email, part)
        assert w.count(SCORE, SCORE.c.part == part) == 5 * sum(assigned(e) for e in sc.EVALUATORS)
        lap(f"{part} sheets")

    # the selection day: rank, dry run, confirm, release
    w.clock.set(kst("2024-06-26 10:00"))
    people.sign_in([office])
    decided = rank_confirm_release(office)
    assert Counter(decided.values()) == {"select": 3, "waitlist": 2, "reject": 5}, decided
    receipts = {str(r["receipt_no"]): code for code, r in sc.apps(w.app).items()}
    outcome = {receipts[no]: OUTCOME[d] for no, d in decided.items()}
    assert outcome == {code: s for code, s in sc.states(w.app).items() if code in IN_EVALUATION}
    assert w.count(OUTBOX, OUTBOX.c.state == "held") == 0
    lap("selection and release")

    # the evaluated read their explained result; the selected file their implementation plan
    evaluated = [govs[code] for code in IN_EVALUATION]
    people.sign_in(evaluated)
    for code in IN_EVALUATION:
        read_result(govs[code], w, code)
    chosen = sorted(code for code, s in outcome.items() if s == "selected")
    for code in chosen:
        file_kickoff_plan(govs[code], code, 1, tmp_path)

    lap("results read, plans filed")

    # the office returns each plan once with comments; filed again; approved with the funding by year
    w.clock.set(kst("2024-07-01 10:00"))
    people.sign_in([office])
    for code in chosen:
        return_kickoff_plan(office, w.id(code), f"{code}: 연차별 재원 분담 계획을 보완하십시오")
    w.clock.set(kst("2024-07-03 15:00"))
    people.sign_in([govs[code] for code in chosen])
    for code in chosen:
        page = govs[code].page
        page.locator("a[href^='/applicant/applications/']").first.click()
        expect(page.locator("#kickoff td.comments").first).to_contain_text("연차별 재원 분담")
        file_kickoff_plan(govs[code], code, 2, tmp_path)
    w.clock.set(kst("2024-07-08 10:00"))
    people.sign_in([office])
    for code in chosen:
        approve_kickoff_plan(office, w.id(code))
    assert {code: w.state(code) for code in chosen} == dict.fromkeys(chosen, "kickoff")
    statuses = Counter((r["round"], r["status"]) for r in w.rows(KICKOFF_PLAN))
    assert statuses == {(1, "returned"): 3, (2, "approved"): 3}, statuses
    w.clock.set(kst("2024-07-08 16:00"))
    people.sign_in([govs[code] for code in chosen])
    for code in chosen:
        page = govs[code].page
        page.locator("a[href^='/applicant/applications/']").first.click()
        years = w.rows(FUNDING_YEAR, FUNDING_YEAR.c.application_id == w.id(code))
        assert len(years) == 3 and sum(y["national_krw"] for y in years) == sc.NATIONAL[code]
        expect(page.locator("table.funding tbody tr")).to_have_count(3)
    lap("kickoff")

    # the same end as the services' run of the scenario: the same scores, the same selection
    ours = {code: (r["score"], r["state"]) for code, r in sc.apps(w.app).items()}
    reference = world("presentation")
    reference.clock.set(kst("2024-06-26 10:00"))
    selection.select(reference.app, TRACK_KEY, sc.OFFICE, confirm=True)
    theirs = {code: (r["score"], r["state"]) for code, r in sc.apps(reference.app).items()}
    assert {k: v[0] for k, v in ours.items()} == {k: v[0] for k, v in theirs.items()}
    kicked = {code: ("selected" if s == "kickoff" else s) for code, (_, s) in ours.items()}
    assert kicked == {code: s for code, (_, s) in theirs.items()}
    print(f"\nthe whole 2024 scenario in the browser: {lap}")


@pytest.mark.slow
def test_one_applicant_and_one_evaluator_in_the_browser_on_postgresql(
    world: Callable[..., World],
    pg_schema_url: str,
    console: Callable[[World], Console],
    cast: Callable[[Console], Cast],
    tmp_path: Path,
) -> None:
    """화성 submits, reads its result (second on the waitlist) in the browser; 김교수 enters every
    sheet assigned to him in both windows; everyone else through the services."""
    w = world("open", pg_schema_url)
    c = console(w)
    people = cast(c)
    w.clock.set(kst("2024-05-28 11:00"))
    for code in (*sc.NATIONAL, SUWON):
        if code != HWASEONG:
            national = sc.NATIONAL.get(code, 8_000_000_000)
            plans.submit(w.app, TRACK_KEY, code, national, national, sc.OFFICE, f"{code} 스마트도시", "climate_crisis")
    hwaseong = applicant(people, HWASEONG)
    people.sign_in([hwaseong])
    submit_plan(hwaseong, HWASEONG, tmp_path)
    assert w.state(HWASEONG) == "receipt"
    sc.at(w.app, w.clock, "2024-05-29 18:00")
    w.clock.set(kst("2024-06-03 10:00"))
    review.pass_eligible(w.app, TRACK_KEY, sc.OFFICE)
    review.disqualify_failed(w.app, TRACK_KEY, sc.OFFICE)
    committee.assign_track(w.app, TRACK_KEY, sc.OFFICE)

    kim = people.person(KIM, "evaluator")
    by_id = {int(str(r["id"])): code for code, r in sc.apps(w.app).items()}
    receipts = {code: str(r["receipt_no"]) for code, r in sc.apps(w.app).items() if code in IN_EVALUATION}
    for part, at in (("written", "2024-06-11 14:00"), ("presentation", "2024-06-18 10:00")):
        if part == "presentation":
            sc.at(w.app, w.clock, "2024-06-12 18:00")
        w.clock.set(kst(at))
        people.sign_in([kim])
        assert enter_sheets(kim, part, by_id) == 10
        others = sc.scores_csv(tmp_path / f"{part}.csv", part, receipts)
        lines = others.read_text(encoding="utf-8").splitlines()
        others.write_text("\n".join(line for line in lines if f",{KIM}," not in line) + "\n", encoding="utf-8")
        sheets, where = committee.parse_scores(others, w.app.loaded.config.track(TRACK_KEY)[1])
        committee.enter_sheets(w.app, sheets, sc.OFFICE, where)

    w.clock.set(kst("2024-06-26 10:00"))
    selection.select(w.app, TRACK_KEY, sc.OFFICE, confirm=True)
    outbox_office.release(w.app, TRACK_KEY, "results")
    assert w.state(HWASEONG) == "waitlisted"
    people.sign_in([hwaseong])
    read_result(hwaseong, w, HWASEONG)
    expect(hwaseong.page.locator("#result")).to_contain_text("예비 순위 2")
