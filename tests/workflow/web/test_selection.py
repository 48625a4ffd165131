"""The console's ranking, selection and release pages: the ranking rows are selection.ranking_in's,
the dry run is what the confirmed selection then does, a confirmation needs the track's key typed
and the count shown (refused before its time, twice, or mistyped, nothing changed), and a release
goes ahead only with the count the page showed."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import sqlalchemy as sa

from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import OUTBOX, SCORE, TRACK
from gongmo.workflow.outbox import office as outbox_office
from gongmo.workflow.stages import selection
from tests.conftest import kst
from tests.workflow.api.conftest import IN_EVALUATION, KIM, SEJONG, TRACK_KEY, World
from tests.workflow.web.conftest import Browser, text_of

Make = Callable[[World], Browser]
RANKING = f"/office/tracks/{TRACK_KEY}/ranking"
CONFIRM = f"/office/tracks/{TRACK_KEY}/selection"
RELEASE = f"/office/tracks/{TRACK_KEY}/release"
SELECTION_AT = "2024-06-26 10:00"  # the track's selection day (the presentation window closed 06-19 18:00)
OUTCOME_STATE = {"select": "selected", "waitlist": "waitlisted", "reject": "not_selected"}


def shown_text(page: str) -> str:
    """What a person reads: the text without tags, entities decoded."""
    return html.unescape(text_of(page))


def table(page: str, name: str) -> str:
    found = re.search(rf'<table class="{name}">(.*?)</table>', page, re.S)
    assert found is not None, f"no table {name}"
    return found.group(1)


def ranking_rows(page: str) -> list[tuple[str, int, str]]:
    """(receipt no, rank, committee score) of each row of the ranking table, in order."""
    rows = re.findall(r'<tr data-receipt="([^"]+)" data-rank="(\d+)" data-score="([^"]+)">', table(page, "ranking"))
    return [(receipt, int(rank), score) for receipt, rank, score in rows]


def dry_run(page: str) -> dict[str, str]:
    """receipt no -> the decision the dry run shows (select, waitlist, reject)."""
    return dict(re.findall(r'<tr data-receipt="([^"]+)" data-decision="(\w+)">', table(page, "dryrun")))


def count_shown(page: str) -> str:
    found = re.search(r'name="count" value="(\d+)"', page)
    assert found is not None
    return found.group(1)


def states_by_receipt(w: World) -> dict[str, str]:
    return {str(w.row(code)["receipt_no"]): w.state(code) for code in IN_EVALUATION}


def at_selection(w: World) -> Browser:
    w.clock.set(kst(SELECTION_AT))
    return Browser(w).sign_in()


def test_the_ranking_rows_are_ranking_in_s_with_every_component(presentation: World, browser: Make) -> None:
    w = presentation
    b = browser(w).sign_in()
    page = b.get(RANKING)
    assert page.status_code == 200, page.text
    _, track = w.app.loaded.config.track(TRACK_KEY)
    with read(w.app.db) as conn:
        expected = selection.ranking_in(conn, track)
    assert ranking_rows(page.text) == [(r.entry.label, r.rank, str(r.total)) for r in expected.rows]
    assert len(expected.rows) == 10 and expected.incomplete == []
    text = shown_text(page.text)
    # how each part was aggregated, the weighted score, below the minimum and the tie-break: the catalogue's words
    assert "평가위원 5명 점수 중 최고점과 최저점을 뺀 3명 점수의 평균(절사평균)" in text
    assert "제외된 평가표 합계: 87.00, 94.00" in text  # 세종's written sheets dropped
    assert "평가위원 4명 점수의 평균" in text
    assert "평가 점수: 서면평가 90.33점 × 0.4 + 발표평가 90.67점 × 0.6 = 90.53점" in text
    assert "순위: 선정 최저 점수 70점 미만" in text and "미달" in text
    assert "「사업계획의 타당성」 항목 점수 기준으로 정해졌습니다 (26.50 대 25.50)" in text
    en = shown_text(b.get(RANKING + "?lang=en").text)
    assert "the trimmed mean of 5 sheets, the highest and the lowest dropped (3 counted)" in en
    assert "committee score: written 90.33 x 0.4 + presentation 90.67 x 0.6 = 90.53" in en
    assert "decided by the '" in en and "(26.50 to 25.50)" in en
    assert "below the minimum" in en and "Ranking and selection" in en


def test_the_dry_run_is_what_the_confirmed_selection_then_does(presentation: World) -> None:
    w = presentation
    b = at_selection(w)
    before = w.footprint()
    page = b.get(RANKING)
    assert page.status_code == 200, page.text
    planned = dry_run(page.text)
    assert w.footprint() == before  # a dry run changes nothing
    assert sorted(planned.values()) == ["reject"] * 5 + ["select"] * 3 + ["waitlist"] * 2
    text = shown_text(page.text)
    assert "신청 10건: 선정 3, 예비 선정 2, 미선정 5; 국비 235억 원 / 240억 원" in text
    assert "선정 기준선: 84.93점" in text and "예비 선정 1순위: 9개 기관 중 4위로 선정 규모 3곳이 모두 찼습니다" in text
    assert count_shown(page.text) == "10"

    done = b.post(CONFIRM, {"typed": TRACK_KEY, "count": "10"})
    assert done.status_code == 303, done.text
    assert done.headers["location"].startswith(RELEASE)
    assert states_by_receipt(w) == {receipt: OUTCOME_STATE[o] for receipt, o in planned.items()}
    held = w.rows(OUTBOX, OUTBOX.c.state == "held")
    assert sorted(n["notice"] for n in held) == ["not_selected"] * 5 + ["selected"] * 3 + ["waitlisted"] * 2
    track_row = w.rows(TRACK, TRACK.c.key == TRACK_KEY)[0]
    assert track_row["results_embargoed_at"] == w.clock.now() and track_row["results_released_at"] is None
    released = b.get(done.headers["location"])
    assert "선정을 확정했습니다: 결과 통지 10건이 보류되었습니다" in shown_text(released.text)


def test_a_wrong_confirmation_is_refused_and_changes_nothing(presentation: World) -> None:
    w = presentation
    b = at_selection(w)
    before = w.footprint()
    for typed in ("", "strong-small", TRACK_KEY.upper(), "hub-2024"):
        refused = b.post(CONFIRM, {"typed": typed, "count": "10"})
        assert refused.status_code == 422, (typed, refused.text)
        assert f"type the track's key, {TRACK_KEY}, to confirm the selection" in html.unescape(refused.text)
        assert 'role="alert"' in refused.text and dry_run(refused.text)  # beside the form, the dry run still shown
    changed = b.post(CONFIRM, {"typed": TRACK_KEY, "count": "9"})  # not the count the dry run showed
    assert changed.status_code == 409
    assert "would decide 10 applications, not the 9 of the dry run you saw" in html.unescape(changed.text)
    assert b.post(CONFIRM, {"typed": TRACK_KEY, "count": ""}).status_code == 422
    assert w.footprint() == before


def test_a_selection_before_its_time_or_twice_is_refused_and_changes_nothing(presentation: World) -> None:
    w = presentation
    w.clock.set(kst("2024-06-19 17:00"))  # the presentation evaluation still runs
    b = Browser(w).sign_in()
    before = w.footprint()
    page = b.get(RANKING)
    assert "발표평가 기간이 2024-06-19 18:00 KST에 끝납니다" in shown_text(page.text)  # the dry run may
    early = b.post(CONFIRM, {"typed": TRACK_KEY, "count": "10"})
    assert early.status_code == 409 and "select after it" in shown_text(early.text)
    assert w.footprint() == before

    b = at_selection(w)  # a week later: a new session (the first one ended, idle)
    assert b.post(CONFIRM, {"typed": TRACK_KEY, "count": "10"}).status_code == 303
    after = w.footprint()
    twice = b.post(CONFIRM, {"typed": TRACK_KEY, "count": "10"})
    assert twice.status_code == 409 and "no application is waiting" in shown_text(twice.text)
    assert w.footprint() == after
    page = b.get(RANKING)  # the ranking stays; no dry run after the selection, and why
    assert page.status_code == 200 and len(ranking_rows(page.text)) == 10
    assert "모의 실행을 할 수 없습니다" in shown_text(page.text) and 'name="typed"' not in page.text


def test_the_release_page_shows_what_is_held_and_releases_only_an_unchanged_count(presentation: World) -> None:
    w = presentation
    b = at_selection(w)
    assert "보류된 통지가 없습니다" in shown_text(b.get(RELEASE).text)
    assert b.post(CONFIRM, {"typed": TRACK_KEY, "count": "10"}).status_code == 303
    page = b.get(RELEASE)
    assert page.status_code == 200
    shown = [
        (notice, lang, int(n))
        for notice, lang, n in re.findall(
            r'<tr data-notice="(\w+)" data-language="(\w+)">.*?<td class="num">(\d+)</td>', page.text, re.S
        )
    ]
    expected = [
        (notice, lang, n)
        for notice in ("selected", "waitlisted", "not_selected")
        for lang, subjects in sorted(outbox_office.held(w.app, TRACK_KEY, notice).items(), key=lambda x: x[0] != "ko")
        for n in subjects.values()
    ]
    assert sorted(shown) == sorted(expected) and sum(n for *_, n in shown) == 10
    assert {lang for _, lang, _ in shown} == {"ko", "en"}  # 천안 reads English
    assert "보류 10건" in shown_text(page.text) and "결과 엠바고" in shown_text(page.text)

    before = w.footprint()
    stale = b.post(RELEASE, {"notice": "results", "count": "9"})  # the count changed since the page was read
    assert stale.status_code == 409 and "10 'results' notices are held, not 9" in html.unescape(stale.text)
    assert w.footprint() == before
    assert b.post(RELEASE, {"notice": "kickoff_reminder", "count": "1"}).status_code == 422
    assert b.post(RELEASE, {"notice": "selected", "count": "0"}).status_code == 422
    assert w.footprint() == before

    one = b.post(RELEASE, {"notice": "selected", "count": "3"})
    assert one.status_code == 303 and one.headers["location"].endswith("released=3")
    assert w.count(OUTBOX, OUTBOX.c.state == "held") == 7
    again = b.post(RELEASE, {"notice": "results", "count": "10"})  # what the page showed before: now 7
    assert again.status_code == 409 and w.count(OUTBOX, OUTBOX.c.state == "held") == 7
    rest = b.post(RELEASE, {"notice": "results", "count": "7"})
    assert rest.status_code == 303 and w.count(OUTBOX, OUTBOX.c.state == "held") == 0
    assert w.rows(TRACK, TRACK.c.key == TRACK_KEY)[0]["results_released_at"] == w.clock.now()
    en = shown_text(b.get(RELEASE + "?lang=en&released=7").text)
    assert "7 notices were released" in en and "Results released at" in en and "Nothing is held" in en


def test_the_pages_and_their_forms_are_the_office_s(presentation: World, browser: Make) -> None:
    w = presentation
    w.clock.set(kst(SELECTION_AT))
    before = w.footprint()
    for role, subject in (("evaluator", KIM), ("applicant", SEJONG)):
        b = browser(w).sign_in(role, subject)
        for path in (RANKING, RELEASE):
            assert b.get(path).status_code == 403, (role, path)
        assert b.post(CONFIRM, {"typed": TRACK_KEY, "count": "10"}).status_code == 403
        assert b.post(RELEASE, {"notice": "results", "count": "10"}).status_code == 403
    office = browser(w).sign_in()
    no_token = office.post(CONFIRM, {"typed": TRACK_KEY, "count": "10"}, csrf=False)
    assert no_token.status_code == 403 and "security token" in shown_text(no_token.text)
    assert w.footprint() == before
    assert browser(w).get(RANKING).status_code == 303  # no session: to the sign-in page
    assert office.get("/office/tracks/no-such-track/ranking").status_code == 404
    assert office.post("/office/tracks/no-such-track/selection", {"typed": "x", "count": "1"}).status_code == 404


def test_before_any_sheet_the_pages_say_so(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    page = b.get(RANKING + "?lang=en")
    assert page.status_code == 200, page.text
    text = shown_text(page.text)
    assert "No application can be ranked yet" in text and "No dry run now" in text and 'name="typed"' not in page.text
    assert "Nothing is held" in shown_text(b.get(RELEASE + "?lang=en").text)


def test_a_confirmation_is_refused_when_the_decisions_changed_though_their_count_did_not(presentation: World) -> None:
    """The dry run showed 10 decisions; a presentation sheet raised since (as a late correction would)
    lifts the first waitlisted plan over the last selected one: still 10 decisions, not the ones seen."""
    w = presentation
    b = at_selection(w)
    page = b.get(RANKING)
    planned = dry_run(page.text)
    plan = re.search(r'name="plan" value="([0-9a-f]{16})"', page.text)
    assert plan is not None
    first_waitlisted = next(r for r, decision in planned.items() if decision == "waitlist")
    app_id = next(int(w.row(code)["id"]) for code in IN_EVALUATION if w.row(code)["receipt_no"] == first_waitlisted)
    with w.app.db.begin() as conn:
        conn.execute(
            sa.update(SCORE)
            .where(SCORE.c.application_id == app_id, SCORE.c.part == "presentation", SCORE.c.criterion == "effect")
            .values(points_x100=1500)
        )
    before = w.footprint()
    refused = b.post(CONFIRM, {"typed": TRACK_KEY, "count": "10", "plan": plan.group(1)})
    assert refused.status_code == 409, refused.text
    assert "the decisions changed since the dry run you saw" in shown_text(refused.text)
    assert w.footprint() == before
    fresh = b.get(RANKING)
    assert dry_run(fresh.text)[first_waitlisted] != "waitlist"  # the new dry run shows the change
    assert (
        b.post(
            CONFIRM,
            {
                "typed": TRACK_KEY,
                "count": "10",
                "plan": re.search(r'name="plan" value="([0-9a-f]{16})"', fresh.text).group(1),
            },
        ).status_code
        == 303
    )  # type: ignore[union-attr]
