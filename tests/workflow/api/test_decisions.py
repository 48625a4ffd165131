"""Issue 19 over HTTP: one objection per disqualification (point 6), a reason for a
move that overrides a rule (point 12) and the calendar changes in the detail (point 13)."""

from __future__ import annotations

import pytest

from gongmo.workflow.core.models import OBJECTION, OUTBOX
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.stages import review
from tests.conftest import kst
from tests.workflow import contest_2024 as sc
from tests.workflow.api.conftest import ADMIN, SEJONG, SIHEUNG, SUWON, TRACK_KEY, World

OFFICE = sc.OFFICE
APP_SUWON = ("applicant", SUWON)
OBJECT = "POST /applications/{application_id}/objections"


@pytest.mark.routes(OBJECT)
def test_a_second_objection_to_one_disqualification_is_409_in_one_line(written: World) -> None:
    """File, reject, file again: 409 with one line (was: a 500 from IntegrityError on outbox.dedup_key)."""
    w = written
    w.clock.set(kst("2024-06-04 09:00"))  # 41110 disqualified 06-03 10:00
    url = f"/applications/{w.id(SUWON)}/objections"
    filed = w.post(url, APP_SUWON, json={"grounds": "특례시는 예외"})
    assert filed.status_code == 201, filed.text
    review.decide_objection(w.app, filed.json()["objection_id"], False, "예외 없음", OFFICE)
    before = w.footprint()
    again = w.post(url, APP_SUWON, json={"grounds": "다시 검토 요청"})
    assert again.status_code == 409, again.text
    error = again.json()["error"]
    assert "\n" not in error
    assert "was already rejected on 2024-06-04" in error and "one objection per disqualification" in error
    assert w.footprint() == before
    assert w.count(OBJECTION) == 1
    notices = [r["notice"] for r in w.rows(OUTBOX, OUTBOX.c.application_id == w.id(SUWON))]
    assert notices.count("objection_received") == notices.count("objection_rejected") == 1
    assert w.get(f"/applications/{w.id(SUWON)}", ADMIN).status_code == 200


MOVE = "POST /applications/{application_id}/transitions"
DETAIL = "GET /applications/{application_id}"


@pytest.mark.routes(MOVE, DETAIL)
def test_correcting_a_selection_over_http_needs_a_reason(presentation: World) -> None:
    w = presentation
    code = SEJONG
    assert w.move(code, "select", ADMIN).status_code == 200
    before = w.footprint()
    for reason in (None, "   "):
        refused = w.move(code, "waitlist", ADMIN, reason=reason)
        assert refused.status_code == 422, refused.text
        assert "'waitlist' overrides a rule: it corrects a confirmed selection" in refused.json()["error"]
    assert w.footprint() == before
    moved = w.move(code, "waitlist", ADMIN, reason="국비 한도 재산정")
    assert moved.status_code == 200, moved.text
    history = w.get(f"/applications/{w.id(code)}", ADMIN).json()["history"]
    assert (history[-1]["trigger"], history[-1]["reason"]) == ("waitlist", "국비 한도 재산정")


@pytest.mark.routes(DETAIL)
def test_the_detail_lists_the_calendar_changes_each_reader_may_see(opened: World) -> None:
    """The track's reschedule reaches every applicant with its reason; an extension only its own."""
    w = opened
    calendars.reschedule(w.app, TRACK_KEY, "receipt_closes", kst("2024-05-31 18:00"), "서버 점검", "office-kim")
    calendars.extend(w.app, w.id(SEJONG), "receipt_closes", kst("2024-06-03 18:00"), "정전 피해", "office-lee")
    reschedule = {
        "kind": "reschedule",
        "milestone": "receipt_closes",
        "old_at": "2024-05-29T09:00:00Z",
        "new_at": "2024-05-31T09:00:00Z",
        "reason": "서버 점검",
        "actor": "office-kim",
        "at": "2024-05-28T02:00:00Z",
    }
    extension = reschedule | {
        "kind": "extension",
        "old_at": "2024-05-31T09:00:00Z",
        "new_at": "2024-06-03T09:00:00Z",
        "reason": "정전 피해",
        "actor": "office-lee",
    }

    def changes(code: str, who: tuple[str, str]) -> list[dict[str, str]]:
        got = w.get(f"/applications/{w.id(code)}", who)
        assert got.status_code == 200, got.text
        return list(got.json()["calendar_changes"])

    assert changes(SEJONG, ADMIN) == changes(SEJONG, ("applicant", SEJONG)) == [reschedule, extension]
    assert changes(SIHEUNG, ADMIN) == changes(SIHEUNG, ("applicant", SIHEUNG)) == [reschedule]
