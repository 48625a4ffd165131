"""The console's track page (/office/tracks/{key}): the header, the applications table (state
filter, search by name and receipt number, keyset pages), the bulk actions with their dry run
and the count check, and the calendar's reschedule and extend forms."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import datetime

import httpx
import pytest
import sqlalchemy as sa

from gongmo.states.lifecycle import Role
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.models import APPLICATION, ASSIGNMENT, CALENDAR_CHANGE, TRACK
from gongmo.workflow.web import tracks as track_pages
from tests.conftest import kst
from tests.workflow import contest_2024 as sc
from tests.workflow.api.conftest import APP_SIHEUNG, CHANGWON, KIM, SEJONG, SUWON, World
from tests.workflow.web.conftest import Browser, text_of

Make = Callable[[World], Browser]
KEY = sc.TRACK
PAGE = f"/office/tracks/{KEY}"


def said(page: httpx.Response) -> str:
    """What a person reads on the page (entities decoded)."""
    return html.unescape(text_of(page.text))


def ids_on(html: str) -> list[int]:
    """The application numbers the table links to, in its order."""
    return [int(i) for i in re.findall(r'href="/office/applications/(\d+)"', html)]


def next_link(html: str) -> str | None:
    found = re.search(r'<a href="([^"]+)" rel="next"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def in_review(w: World) -> World:
    """The opened world moved on to the preliminary review: 12 received, the checklists made."""
    sc.receive_all(w.app, w.clock)
    sc.at(w.app, w.clock, "2024-05-29 18:00")
    w.clock.set(kst("2024-06-03 10:00"))
    return w


def count_in(w: World, state: str) -> int:
    return w.count(APPLICATION, APPLICATION.c.state == state)


# -- the page ---------------------------------------------------------------------------


def test_the_page_shows_the_header_the_table_and_the_calendar(written: World, browser: Make) -> None:
    page = browser(written).sign_in().get(PAGE)
    assert page.status_code == 200, page.text
    text = text_of(page.text)
    assert "강소형" in text and "0 / 3곳 선정" in text, text
    assert "국비 예산 24,000,000,000원" in text, text  # the track's national money, all sites
    assert "조건에 맞는 신청 26건" in text, text  # 26 invited
    for part in ("committee", "ranking", "release"):
        assert f'href="{PAGE}/{part}"' in page.text
    assert len(ids_on(page.text)) == 26
    assert "접수 마감" in text and "2024-05-29 18:00" in text
    assert "실행됨 2024-05-29 18:00" in text, text  # the receipt close fired (its deadline row)
    assert "서면평가" in text and "부적격" in text  # state labels, in Korean
    assert "<script>" not in page.text and " style=" not in page.text and "onclick" not in page.text


def test_the_page_in_english(written: World, browser: Make) -> None:
    text = text_of(browser(written).sign_in().get(PAGE + "?lang=en").text)
    assert "Strong" in text and "0 of 3 selected" in text, text
    assert "26 applications match" in text and "written evaluation" in text and "disqualified" in text
    assert "receipt closes" in text and "Reschedule a milestone" in text


def test_an_unknown_track_is_not_found(written: World, browser: Make) -> None:
    page = browser(written).sign_in().get("/office/tracks/no-such-track")
    assert page.status_code == 404 and "no track 'no-such-track'" in said(page)


def test_evaluator_and_applicant_sessions_are_refused(written: World, browser: Make) -> None:
    before = written.footprint()
    for role, subject in (("evaluator", KIM), APP_SIHEUNG):
        b = browser(written).sign_in(role, subject)
        assert b.get(PAGE).status_code == 403
        assert b.get(PAGE + "/actions/assign").status_code == 403
        assert b.post(PAGE + "/actions/assign", {"count": "0"}).status_code == 403
        reschedule = {"milestone": "selection_at", "new_at": "2024-06-27T10:00", "reason": "x"}
        assert b.post(PAGE + "/calendar/reschedule", reschedule).status_code == 403
    assert written.footprint() == before
    assert browser(written).get(PAGE).status_code == 303  # no session: to the sign-in page


# -- the applications table -------------------------------------------------------------


def test_the_state_filter(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    page = b.get(PAGE + "?state=disqualified")
    assert page.status_code == 200
    assert sorted(ids_on(page.text)) == sorted([written.id(CHANGWON), written.id(SUWON)])
    assert "조건에 맞는 신청 2건" in text_of(page.text)
    assert len(ids_on(b.get(PAGE + "?state=written_evaluation").text)) == 10
    assert '<option value="disqualified" selected>' in page.text  # the filter is kept in the form
    bad = b.get(PAGE + "?state=nonsense")
    assert bad.status_code == 422 and "field 'state'" in said(bad)


def test_search_by_applicant_name(written: World, browser: Make) -> None:
    page = browser(written).sign_in().get(PAGE + "?q=창원")
    assert ids_on(page.text) == [written.id(CHANGWON)]
    assert "창원시" in text_of(page.text)
    assert ids_on(browser(written).sign_in().get(PAGE + "?q=%25").text) == []  # LIKE's wildcard taken literally


def test_search_by_receipt_number_in_any_case(written: World, browser: Make) -> None:
    receipt = str(written.row(SEJONG)["receipt_no"])
    b = browser(written).sign_in()
    assert ids_on(b.get(PAGE, params={"q": receipt}).text) == [written.id(SEJONG)]
    assert ids_on(b.get(PAGE, params={"q": receipt.lower()}).text) == [written.id(SEJONG)]
    # a search and a state filter together: 세종 is in written evaluation, not disqualified
    assert ids_on(b.get(PAGE, params={"q": receipt, "state": "disqualified"}).text) == []


def test_keyset_pages_show_every_row_once(written: World, browser: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(track_pages, "PAGE_SIZE", 4)
    b = browser(written).sign_in()
    everyone = sorted(r["id"] for r in written.rows(APPLICATION))
    for query, expected in (
        ("", everyone),
        ("?state=written_evaluation", sorted(written.id(c) for c in sc.TARGETS if c != CHANGWON)),
    ):
        seen: list[int] = []
        url: str | None = PAGE + query
        pages = 0
        while url is not None:
            page = b.get(url)
            assert page.status_code == 200, page.text
            assert len(ids_on(page.text)) <= 4
            seen += ids_on(page.text)
            url = next_link(page.text)
            if url is not None:
                assert "after=" in url and query.lstrip("?") in url  # the filter is kept in the link
            pages += 1
        assert seen == expected  # none twice, none missing, in order
        assert pages == -(-len(expected) // 4)


def test_htmx_gets_the_table_only(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    part = b.get(PAGE + "?state=disqualified", headers={"HX-Request": "true", "HX-Target": "applications"})
    assert part.status_code == 200
    assert "<html" not in part.text and "<h1" not in part.text
    assert sorted(ids_on(part.text)) == sorted([written.id(CHANGWON), written.id(SUWON)])
    page = b.get(PAGE)
    assert 'hx-get="/office/tracks/' in page.text and 'hx-target="#applications"' in page.text


# -- bulk actions -------------------------------------------------------------------------


def preview_count(b: Browser, action: str) -> int:
    page = b.get(f"{PAGE}/actions/{action}")
    assert page.status_code == 200, page.text
    found = re.search(r'name="count" value="(\d+)"', page.text)
    return int(found.group(1)) if found else 0


def test_each_bulk_action_changes_as_many_rows_as_its_preview_showed(opened: World, browser: Make) -> None:
    w = in_review(opened)
    b = browser(w).sign_in()
    assert f'href="{PAGE}/actions/review-pass"' in b.get(PAGE).text
    shown = preview_count(b, "review-pass")
    assert shown == 10
    preview = b.get(PAGE + "/actions/review-pass")
    assert "이 작업은 신청 10건을 변경합니다." in text_of(preview.text)
    done = b.post(PAGE + "/actions/review-pass", {"count": shown})
    assert done.status_code == 303, done.text
    assert count_in(w, "written_evaluation") == shown and count_in(w, "preliminary_review") == 2
    assert "10건이 예비검토를 통과했습니다." in text_of(b.get(done.headers["location"]).text)

    shown = preview_count(b, "disqualify-failed")
    assert shown == 2
    assert "창원시" in text_of(b.get(PAGE + "/actions/disqualify-failed").text)
    assert b.post(PAGE + "/actions/disqualify-failed", {"count": shown}).status_code == 303
    assert count_in(w, "disqualified") == 2 and count_in(w, "preliminary_review") == 0

    shown = preview_count(b, "assign")
    assert shown == 10
    assert w.count(ASSIGNMENT) == 0
    assert b.post(PAGE + "/actions/assign", {"count": shown}).status_code == 303
    with w.app.db.connect() as conn:
        assigned = conn.execute(sa.select(sa.func.count(sa.distinct(ASSIGNMENT.c.application_id)))).scalar_one()
    assert assigned == shown
    assert preview_count(b, "assign") == 0  # idempotent: nothing left to assign
    assert "지금 변경될 신청이 없습니다." in text_of(b.get(PAGE + "/actions/assign").text)


def test_a_count_that_changed_since_the_preview_is_refused(opened: World, browser: Make) -> None:
    w = in_review(opened)
    b = browser(w).sign_in()
    shown = preview_count(b, "review-pass")
    assert shown == 10
    sejong = w.row(SEJONG)
    w.app.moves.apply(int(sejong["id"]), "withdraw", Actor("lh-office", Role.ADMIN), None, int(sejong["version"]))
    before = w.footprint()
    refused = b.post(PAGE + "/actions/review-pass", {"count": shown})
    assert refused.status_code == 409
    assert "지금은 9건이 변경됩니다. 화면에 표시된 수는 10건이었습니다" in said(refused)
    assert 'name="count" value="9"' in refused.text  # the new preview, to confirm again
    assert w.footprint() == before
    english = b.post(PAGE + "/actions/review-pass?lang=en", {"count": shown})
    assert "9 rows would change now, the page showed 10: review the new preview." in said(english)
    assert b.post(PAGE + "/actions/review-pass", {"count": "9"}).status_code == 303
    assert count_in(w, "written_evaluation") == 9


def test_an_action_not_allowed_now_is_not_offered_and_is_refused(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    page = b.get(PAGE)
    assert f'href="{PAGE}/actions/review-pass"' not in page.text
    assert f'href="{PAGE}/actions/assign"' in page.text  # applications in evaluation: allowed
    assert "지금은 할 수 없음" in text_of(page.text)
    before = written.footprint()
    preview = b.get(PAGE + "/actions/review-pass")
    assert preview.status_code == 409
    assert "has no application in preliminary review now" in said(preview)
    refused = b.post(PAGE + "/actions/disqualify-failed", {"count": "0"})
    assert refused.status_code == 409 and "preliminary review" in said(refused)
    assert b.post(PAGE + "/actions/review-pass", {"count": "0"}, csrf=False).status_code == 403
    assert b.get(PAGE + "/actions/nonsense").status_code == 404
    assert written.footprint() == before
    assert "Traceback" not in preview.text + refused.text


# -- the calendar ------------------------------------------------------------------------


def selection_at(w: World) -> datetime:
    return w.rows(TRACK, TRACK.c.key == KEY)[0]["selection_at"]  # type: ignore[no-any-return]


def test_reschedule_with_a_reason(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    form = {"milestone": "selection_at", "new_at": "2024-06-27T10:00", "reason": "위원회 일정 조정"}
    done = b.post(PAGE + "/calendar/reschedule", form)
    assert done.status_code == 303, done.text
    assert selection_at(written) == kst("2024-06-27 10:00")
    (change,) = written.rows(CALENDAR_CHANGE)
    assert change["reason"] == "위원회 일정 조정" and change["actor"] == "office-lee@molit.go.kr"
    text = text_of(b.get(done.headers["location"]).text)
    assert "일정을 변경했습니다." in text
    assert "2024-06-26 10:00 → 2024-06-27 10:00: 위원회 일정 조정" in text, text


def test_reschedule_without_a_reason_is_refused_and_changes_nothing(written: World, browser: Make) -> None:
    b = browser(written).sign_in()
    before = (written.footprint(), selection_at(written))
    form = {"milestone": "selection_at", "new_at": "2024-06-27T10:00", "reason": "  "}
    refused = b.post(PAGE + "/calendar/reschedule", form)
    assert refused.status_code == 422
    assert "'reschedule' needs a reason: add field 'reason'" in said(refused)
    assert 'value="2024-06-27T10:00"' in refused.text  # the form keeps what was typed
    assert (written.footprint(), selection_at(written)) == before
    assert written.count(CALENDAR_CHANGE) == 0
    no_time = b.post(PAGE + "/calendar/reschedule", {"milestone": "selection_at", "new_at": "", "reason": "x"})
    assert no_time.status_code == 422 and "field 'new_at' is empty" in said(no_time)
    past = b.post(
        PAGE + "/calendar/reschedule", {"milestone": "receipt_closes", "new_at": "2024-06-30T10:00", "reason": "x"}
    )
    assert past.status_code == 409 and "already past" in said(past)
    assert written.count(CALENDAR_CHANGE) == 0


def test_extend_one_applicants_receipt_close(opened: World, browser: Make) -> None:
    b = browser(opened).sign_in()
    page = b.get(PAGE)
    assert 'action="/office/tracks/strong-small-2024/calendar/extend"' in page.text
    receipt_less = {"application": str(opened.id(SEJONG)), "new_at": "2024-05-31T18:00", "reason": ""}
    refused = b.post(PAGE + "/calendar/extend", receipt_less)
    assert refused.status_code == 422 and "field 'reason'" in said(refused)
    assert opened.count(CALENDAR_CHANGE) == 0
    other = b.post(PAGE.replace(KEY, "hub-2024") + "/calendar/extend", receipt_less | {"reason": "x"})
    assert other.status_code == 404  # 세종's application is not of that track
    done = b.post(PAGE + "/calendar/extend", receipt_less | {"reason": "전산 장애"})
    assert done.status_code == 303, done.text
    (change,) = opened.rows(CALENDAR_CHANGE)
    assert change["application_id"] == opened.id(SEJONG) and change["new_at"] == kst("2024-05-31 18:00")
