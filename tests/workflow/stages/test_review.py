"""The preliminary review of the 2024 strong-and-small track: each application's
eligibility checklist, passing and disqualifying in bulk, and the objection
window with its decisions (workflow/review.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import tests.workflow.contest_2024 as sc
from gongmo.states.errors import Conflict, IllegalMove, InvalidInput, NotFound, OutsideWindow
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import (
    APPLICATION,
    ASSIGNMENT,
    AUDIT,
    EVENT,
    OBJECTION,
    OUTBOX,
    SCORE,
)
from gongmo.workflow.engine.app import App
from gongmo.workflow.stages import committee, review
from tests.conftest import kst
from tests.workflow import plans

OFFICE, APPLICANT_ACTOR = sc.OFFICE, sc.APPLICANT_ACTOR
TYPES = "one of climate_crisis, local_extinction"
KINDS = "one of city, county, district, special_self_governing_city, special_self_governing_province"

# Plans from applicants of the shipped sample list (tests/conftest.py loads it),
# each breaking exactly one rule, and one that passes with fewer years than allowed.
NO_TYPE = "41190"  # 부천: no --type
OVER_CAP = "41270"  # 안산: national share one won above 8,000,000,000
SHORT_LOCAL = "48250"  # 김해: local share one won below the national share
FOUR_YEARS = "51150"  # 강릉: a four-year plan in a three-year program
TWO_YEARS = "44150"  # 공주: a two-year plan, every rule passed
EXTRA_PLANS: dict[str, tuple[int, int, str | None, int | None]] = {
    NO_TYPE: (6_000_000_000, 6_000_000_000, None, None),
    OVER_CAP: (8_000_000_001, 8_000_000_001, "climate_crisis", None),
    SHORT_LOCAL: (5_000_000_000, 4_999_999_999, "local_extinction", None),
    FOUR_YEARS: (4_000_000_000, 4_000_000_000, "climate_crisis", 4),
    TWO_YEARS: (1_000_000_000, 1_000_000_000, "local_extinction", 2),
}
# 10 scenario applicants and 공주 pass; 창원, 수원 and the four above fail.
FAILING = {"48120", "41110", NO_TYPE, OVER_CAP, SHORT_LOCAL, FOUR_YEARS}
PASSING = {*(set(sc.TARGETS) - {"48120"}), TWO_YEARS}

pytestmark = pytest.mark.sqlite_only  # the flow runs on PostgreSQL in test_selection.py


# -- helpers ----------------------------------------------------------------------


def app_id(app: App, code: str) -> int:
    return int(sc.application(app, code)["id"])


def state_of(app: App, code: str) -> str:
    return str(sc.application(app, code)["state"])


def footprint(app: App) -> dict[str, Any]:
    """Everything a refused call must leave untouched: row counts and every application's state and version."""
    with read(app.db) as conn:
        counts = {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (OBJECTION, EVENT, OUTBOX, AUDIT, ASSIGNMENT, SCORE)
        }
        versions = sorted(
            (int(r.id), str(r.state), int(r.version))
            for r in conn.execute(sa.select(APPLICATION.c.id, APPLICATION.c.state, APPLICATION.c.version))
        )
        objections = sorted(
            (int(r.id), str(r.status)) for r in conn.execute(sa.select(OBJECTION.c.id, OBJECTION.c.status))
        )
    return {"counts": counts, "applications": versions, "objections": objections}


def events_of(app: App, kind: str, application_id: int | None = None) -> list[dict[str, Any]]:
    query = sa.select(EVENT).where(EVENT.c.kind == kind).order_by(EVENT.c.id)
    if application_id is not None:
        query = query.where(EVENT.c.application_id == application_id)
    with read(app.db) as conn:
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in conn.execute(query).mappings()]


def outbox(app: App, application_id: int, notice: str) -> list[dict[str, Any]]:
    query = (
        sa.select(OUTBOX)
        .where(OUTBOX.c.application_id == application_id, OUTBOX.c.notice == notice)
        .order_by(OUTBOX.c.id)
    )
    with read(app.db) as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def audit_rows(app: App, application_id: int, trigger: str) -> list[dict[str, Any]]:
    query = (
        sa.select(AUDIT)
        .where(AUDIT.c.application_id == application_id, AUDIT.c.trigger == trigger)
        .order_by(AUDIT.c.id)
    )
    with read(app.db) as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def checklist(app: App, code: str) -> list[dict[str, Any]]:
    raw = sc.application(app, code)["checklist"]
    assert raw is not None, f"{code} has no checklist"
    checks: list[dict[str, Any]] = json.loads(raw)
    return checks


def failed_rules(app: App, code: str) -> list[str]:
    return [c["rule"] for c in checklist(app, code) if not c["passed"]]


def full_sheet(receipt: str, evaluator: str) -> committee.SheetInput:
    return committee.SheetInput(receipt, evaluator, "written", {k: str(v / 2) for k, v in sc.CRITERIA.items()})


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture
def contest(app: App, clock: FixedClock, tmp_path: Path) -> App:
    return sc.prepare(app, clock, tmp_path)


@pytest.fixture
def in_review(contest: App, clock: FixedClock) -> App:
    """The 12 scenario plans and the five extra plans received; the receipt closed by the ticker."""
    sc.receive_all(contest, clock)
    for code, (national, local, kind, years) in EXTRA_PLANS.items():
        plans.submit(contest, sc.TRACK, code, national, local, OFFICE, f"{code} 스마트도시", kind, years=years)
    sc.at(contest, clock, "2024-05-29 18:00")
    return contest


@pytest.fixture
def reviewed(in_review: App, clock: FixedClock) -> App:
    """On 2024-06-03 10:00 the eligible are passed and the rest disqualified (objections until 06-10 10:00)."""
    clock.set(kst("2024-06-03 10:00"))
    review.pass_eligible(in_review, sc.TRACK, OFFICE)
    review.disqualify_failed(in_review, sc.TRACK, OFFICE)
    return in_review


# -- the checklist --------------------------------------------------------------------


def test_entering_preliminary_review_records_every_checklist_and_eligibility(in_review: App) -> None:
    app = in_review
    codes = FAILING | PASSING
    assert {state_of(app, c) for c in codes} == {"preliminary_review"}
    assert {c: sc.application(app, c)["eligible"] for c in codes} == {c: c in PASSING for c in codes}
    listed = {c.receipt_no: c for c in review.checklists(app, sc.TRACK)}
    assert len(listed) == len(codes) == 17
    assert {str(c.receipt_no): c.eligible for c in listed.values()} == {
        str(sc.application(app, c)["receipt_no"]): c in PASSING for c in codes
    }


def test_a_passing_application_has_every_rule_of_the_track_with_its_values(in_review: App) -> None:
    assert checklist(in_review, "36110") == [
        {"rule": "kind", "passed": True, "value": "special_self_governing_city", "expected": KINDS},
        {"rule": "population", "passed": True, "value": "386,525", "expected": "below 1,000,000"},
        {
            "rule": "national_cap",
            "passed": True,
            "value": "7,500,000,000 won",
            "expected": "at most 8,000,000,000 won over 3 year(s)",
        },
        {"rule": "years", "passed": True, "value": "3 year(s)", "expected": "1 to 3 year(s)"},
        {
            "rule": "local_match",
            "passed": True,
            "value": "7,500,000,000 won",
            "expected": "at least 7,500,000,000 won (local:national = 1:1)",
        },
        {"rule": "type", "passed": True, "value": "local_extinction", "expected": TYPES},
    ]


def test_a_two_year_plan_in_a_three_year_program_passes(in_review: App) -> None:
    years = next(c for c in checklist(in_review, TWO_YEARS) if c["rule"] == "years")
    assert years == {"rule": "years", "passed": True, "value": "2 year(s)", "expected": "1 to 3 year(s)"}
    assert sc.application(in_review, TWO_YEARS)["eligible"] is True


@pytest.mark.parametrize(
    ("code", "rule", "value", "expected"),
    [
        pytest.param("48120", "population", "1,010,000", "below 1,000,000", id="changwon-population"),
        pytest.param("41110", "population", "1,190,987", "below 1,000,000", id="suwon-population"),
        pytest.param(NO_TYPE, "type", "(none chosen)", TYPES, id="type-missing"),
        pytest.param(
            OVER_CAP,
            "national_cap",
            "8,000,000,001 won",
            "at most 8,000,000,000 won over 3 year(s)",
            id="national-above-cap",
        ),
        pytest.param(
            SHORT_LOCAL,
            "local_match",
            "4,999,999,999 won",
            "at least 5,000,000,000 won (local:national = 1:1)",
            id="local-below-national",
        ),
        pytest.param(FOUR_YEARS, "years", "4 year(s)", "1 to 3 year(s)", id="four-years"),
    ],
)
def test_a_failing_application_fails_exactly_the_broken_rule_with_its_value(
    in_review: App, code: str, rule: str, value: str, expected: str
) -> None:
    assert failed_rules(in_review, code) == [rule]
    failed = next(c for c in checklist(in_review, code) if c["rule"] == rule)
    assert failed == {"rule": rule, "passed": False, "value": value, "expected": expected}
    assert sc.application(in_review, code)["eligible"] is False
    assert len(checklist(in_review, code)) == 6  # the other rules are recorded too, passed


def test_the_checklist_is_shown_with_the_failed_rules_as_one_line(in_review: App) -> None:
    by_receipt = {c.receipt_no: c for c in review.checklists(in_review, sc.TRACK)}
    changwon = by_receipt[sc.application(in_review, "48120")["receipt_no"]]
    assert changwon.eligible is False and changwon.state == "preliminary_review"
    assert changwon.failed == "population: 1,010,000 (required: below 1,000,000)"
    sejong = by_receipt[sc.application(in_review, "36110")["receipt_no"]]
    assert sejong.eligible is True and sejong.failed == ""


# -- passing and disqualifying ------------------------------------------------------------


def test_pass_eligible_moves_only_the_eligible_and_queues_review_passed(in_review: App, clock: FixedClock) -> None:
    app = in_review
    clock.set(kst("2024-06-03 10:00"))
    assert review.pass_eligible(app, sc.TRACK, OFFICE) == len(PASSING) == 11
    assert {c: state_of(app, c) for c in PASSING} == dict.fromkeys(PASSING, "written_evaluation")
    assert {c: state_of(app, c) for c in FAILING} == dict.fromkeys(FAILING, "preliminary_review")
    for code in PASSING:
        assert len(outbox(app, app_id(app, code), "review_passed")) == 1, code
    for code in FAILING:
        assert outbox(app, app_id(app, code), "review_passed") == [], code
    assert review.pass_eligible(app, sc.TRACK, OFFICE) == 0  # nothing left to pass


def test_disqualify_failed_gives_the_failed_rules_as_the_reason(in_review: App, clock: FixedClock) -> None:
    app = in_review
    clock.set(kst("2024-06-03 10:00"))
    review.pass_eligible(app, sc.TRACK, OFFICE)
    done = dict(review.disqualify_failed(app, sc.TRACK, OFFICE))
    receipt = {code: str(sc.application(app, code)["receipt_no"]) for code in FAILING}
    assert set(done) == set(receipt.values())
    assert done[receipt["48120"]] == "eligibility: population: 1,010,000 (required: below 1,000,000)"
    assert done[receipt[NO_TYPE]] == f"eligibility: type: (none chosen) (required: {TYPES})"
    assert done[receipt[FOUR_YEARS]] == "eligibility: years: 4 year(s) (required: 1 to 3 year(s))"
    assert {c: state_of(app, c) for c in FAILING} == dict.fromkeys(FAILING, "disqualified")
    assert {c: state_of(app, c) for c in PASSING} == dict.fromkeys(PASSING, "written_evaluation")
    changwon = app_id(app, "48120")
    [moved] = audit_rows(app, changwon, "disqualify")
    assert moved["reason"] == done[receipt["48120"]] and moved["to_state"] == "disqualified"
    assert review.disqualify_failed(app, sc.TRACK, OFFICE) == []  # nothing left in review


def test_the_disqualified_notice_carries_the_reason_and_the_objection_deadline(reviewed: App) -> None:
    app = reviewed
    # The applicant reads the reason in its language (notifications/reasons.py, issue 19 point 5);
    # the audit row keeps the checklist's line.
    [changwon] = outbox(app, app_id(app, "48120"), "disqualified")
    assert "1,010,000" in changwon["body_text"] and "population:" not in changwon["body_text"]
    assert "2024-06-10" in changwon["body_text"]  # 06-03 10:00 + 7 days
    [audit] = audit_rows(app, app_id(app, "48120"), "disqualify")
    assert audit["reason"] == "eligibility: population: 1,010,000 (required: below 1,000,000)"
    [over_cap] = outbox(app, app_id(app, OVER_CAP), "disqualified")
    assert "사유: 국비 한도: 신청 국비 8,000,000,001원이 3년간 한도 8,000,000,000원을 넘습니다" in over_cap["body_text"]
    [short] = outbox(app, app_id(app, SHORT_LOCAL), "disqualified")
    assert "지방비 4,999,999,999원" in short["body_text"]
    assert outbox(app, app_id(app, "36110"), "disqualified") == []


# -- objections: filing -------------------------------------------------------------------


def test_an_objection_is_filed_events_recorded_and_the_receipt_queued(reviewed: App, clock: FixedClock) -> None:
    app = reviewed
    clock.set(kst("2024-06-04 09:00"))
    changwon = app_id(app, "48120")
    objection_id = review.file_objection(app, changwon, "  2024.4. 주민등록인구 998,000명  ", APPLICANT_ACTOR)
    [row] = review.objections(app, sc.TRACK)
    assert row["id"] == objection_id and row["application_id"] == changwon
    assert (row["status"], row["grounds"], row["filed_by"]) == ("open", "2024.4. 주민등록인구 998,000명", "applicant")
    assert row["filed_at"] == kst("2024-06-04 09:00")
    [filed] = events_of(app, "objection_filed", changwon)
    assert filed["detail"]["objection"] == objection_id
    assert filed["detail"]["grounds"] == "2024.4. 주민등록인구 998,000명"
    assert datetime.fromisoformat(filed["detail"]["until"]) == kst("2024-06-10 10:00")
    assert len(outbox(app, changwon, "objection_received")) == 1
    assert state_of(app, "48120") == "disqualified"


def test_an_objection_is_refused_unless_the_application_is_disqualified(reviewed: App, clock: FixedClock) -> None:
    app = reviewed
    clock.set(kst("2024-06-04 09:00"))
    sejong = app_id(app, "36110")
    before = footprint(app)
    with pytest.raises(IllegalMove, match=rf"cannot 'object' application {sejong} in state 'written_evaluation'"):
        review.file_objection(app, sejong, "we were passed but want to object", APPLICANT_ACTOR)
    assert footprint(app) == before


def test_an_objection_on_an_unknown_application_is_refused(reviewed: App, clock: FixedClock) -> None:
    clock.set(kst("2024-06-04 09:00"))
    before = footprint(reviewed)
    with pytest.raises(NotFound, match="no application 999999"):
        review.file_objection(reviewed, 999_999, "grounds", APPLICANT_ACTOR)
    assert footprint(reviewed) == before


def test_an_objection_is_accepted_until_the_last_minute_of_the_window(reviewed: App, clock: FixedClock) -> None:
    clock.set(kst("2024-06-10 09:59"))
    objection_id = review.file_objection(reviewed, app_id(reviewed, "48120"), "인구 재산정", APPLICANT_ACTOR)
    assert [o["id"] for o in review.objections(reviewed, sc.TRACK)] == [objection_id]


@pytest.mark.parametrize("when", ["2024-06-10 10:00", "2024-06-20 09:00"])
def test_an_objection_after_the_window_is_refused_naming_the_close(reviewed: App, clock: FixedClock, when: str) -> None:
    app = reviewed
    clock.set(kst(when))
    changwon = app_id(app, "48120")
    before = footprint(app)
    with pytest.raises(OutsideWindow) as refused:
        review.file_objection(app, changwon, "인구 재산정", APPLICANT_ACTOR)
    assert str(refused.value) == (
        f"application {changwon}: the objection window closed at 2024-06-10 10:00 KST"
        " (7 days after the disqualification)"
    )
    assert footprint(app) == before


@pytest.mark.parametrize("grounds", ["", "   ", "\n\t"])
def test_an_objection_with_empty_grounds_is_refused(reviewed: App, clock: FixedClock, grounds: str) -> None:
    clock.set(kst("2024-06-04 09:00"))
    before = footprint(reviewed)
    with pytest.raises(InvalidInput, match="grounds is empty"):
        review.file_objection(reviewed, app_id(reviewed, "48120"), grounds, APPLICANT_ACTOR)
    assert footprint(reviewed) == before


def test_a_second_open_objection_is_refused_naming_the_first(reviewed: App, clock: FixedClock) -> None:
    app = reviewed
    clock.set(kst("2024-06-04 09:00"))
    changwon = app_id(app, "48120")
    first = review.file_objection(app, changwon, "인구 재산정", APPLICANT_ACTOR)
    before = footprint(app)
    with pytest.raises(Conflict, match=rf"application {changwon} already has open objection #{first}"):
        review.file_objection(app, changwon, "또 다른 근거", APPLICANT_ACTOR)
    assert footprint(app) == before


# -- objections: the track waits ------------------------------------------------------------


def test_while_an_objection_is_open_assignment_is_refused_naming_it(reviewed: App, clock: FixedClock) -> None:
    app = reviewed
    clock.set(kst("2024-06-04 09:00"))
    objection_id = review.file_objection(app, app_id(app, "48120"), "인구 재산정", APPLICANT_ACTOR)
    receipt = sc.application(app, "48120")["receipt_no"]
    before = footprint(app)
    with pytest.raises(Conflict) as refused:
        committee.assign_track(app, sc.TRACK, OFFICE)
    message = str(refused.value)
    assert f"#{objection_id} (application {receipt})" in message
    assert "assignment cannot start while objections are open" in message
    assert "decide them first: uphold or reject each one, with a reason" in message
    assert footprint(app) == before


def test_while_an_objection_is_open_scores_are_refused_naming_it(reviewed: App, clock: FixedClock) -> None:
    app = reviewed
    clock.set(kst("2024-06-04 09:00"))
    objection_id = review.file_objection(app, app_id(app, "48120"), "인구 재산정", APPLICANT_ACTOR)
    clock.set(kst("2024-06-11 14:00"))  # inside the written window
    sheet = full_sheet(str(sc.application(app, "36110")["receipt_no"]), "kim@univ-seoul.example")
    before = footprint(app)
    # enter_sheets reports every sheet's refusal (here the Conflict) in one InvalidInput.
    with pytest.raises(InvalidInput) as refused:
        committee.enter_sheets(app, [sheet], OFFICE)
    message = str(refused.value)
    assert "scoring cannot start while objections are open" in message
    assert f"#{objection_id} (application {sc.application(app, '48120')['receipt_no']})" in message
    assert message.endswith("no score was stored")
    assert footprint(app) == before


def test_deciding_the_last_open_objection_lets_assignment_start(reviewed: App, clock: FixedClock) -> None:
    app = reviewed
    clock.set(kst("2024-06-04 09:00"))
    objection_id = review.file_objection(app, app_id(app, "41110"), "특례시는 예외", APPLICANT_ACTOR)
    with pytest.raises(Conflict):
        committee.assign_track(app, sc.TRACK, OFFICE)
    review.decide_objection(app, objection_id, False, "인구 기준에 예외 없음", OFFICE)
    plan = committee.assign_track(app, sc.TRACK, OFFICE)
    assert len(plan) == len(PASSING)


# -- objections: the decision ------------------------------------------------------------------


def test_an_upheld_objection_reinstates_onto_written_evaluation(reviewed: App, clock: FixedClock) -> None:
    app = reviewed
    clock.set(kst("2024-06-04 09:00"))
    changwon = app_id(app, "48120")
    objection_id = review.file_objection(app, changwon, "2024.4. 주민등록인구 998,000명", APPLICANT_ACTOR)
    version = sc.application(app, "48120")["version"]
    clock.set(kst("2024-06-05 11:00"))
    assert review.decide_objection(app, objection_id, True, " 998,000명 확인 ", OFFICE) == "upheld"
    row = sc.application(app, "48120")
    assert (row["state"], row["version"]) == ("written_evaluation", version + 1)
    [reinstated] = audit_rows(app, changwon, "reinstate")
    assert reinstated["reason"] == f"objection #{objection_id} upheld: 998,000명 확인"
    assert (reinstated["from_state"], reinstated["to_state"]) == ("disqualified", "written_evaluation")
    assert reinstated["actor"] == "lh-office" and reinstated["at"] == kst("2024-06-05 11:00")
    assert sc.notices(app, changwon)[-2:] == ["objection_received", "review_passed"]
    [decided] = review.objections(app, sc.TRACK)
    assert (decided["status"], decided["decided_by"], decided["decision"]) == ("upheld", "lh-office", "998,000명 확인")
    assert decided["decided_at"] == kst("2024-06-05 11:00")
    [event] = events_of(app, "objection_upheld", changwon)
    assert event["detail"] == {"objection": objection_id, "decision": "upheld", "reason": "998,000명 확인"}
    assert events_of(app, "objection_rejected") == []


def test_a_rejected_objection_keeps_the_disqualification_and_tells_why(reviewed: App, clock: FixedClock) -> None:
    app = reviewed
    clock.set(kst("2024-06-04 09:00"))
    suwon = app_id(app, "41110")
    objection_id = review.file_objection(app, suwon, "특례시는 예외", APPLICANT_ACTOR)
    version = sc.application(app, "41110")["version"]
    audits = len(audit_rows(app, suwon, "reinstate"))
    assert review.decide_objection(app, objection_id, False, "인구 기준(100만 미만)에 예외 없음", OFFICE) == "rejected"
    row = sc.application(app, "41110")
    assert (row["state"], row["version"]) == ("disqualified", version)
    assert len(audit_rows(app, suwon, "reinstate")) == audits == 0
    assert sc.notices(app, suwon)[-2:] == ["objection_received", "objection_rejected"]
    [notice] = outbox(app, suwon, "objection_rejected")
    assert "인구 기준(100만 미만)에 예외 없음" in notice["body_text"]
    [event] = events_of(app, "objection_rejected", suwon)
    assert event["detail"] == {
        "objection": objection_id,
        "decision": "rejected",
        "reason": "인구 기준(100만 미만)에 예외 없음",
    }
    assert [o["status"] for o in review.objections(app, sc.TRACK)] == ["rejected"]
    assert events_of(app, "objection_upheld") == []


@pytest.mark.parametrize("uphold", [True, False])
def test_deciding_an_objection_twice_is_refused(reviewed: App, clock: FixedClock, uphold: bool) -> None:
    app = reviewed
    clock.set(kst("2024-06-04 09:00"))
    objection_id = review.file_objection(app, app_id(app, "48120"), "인구 재산정", APPLICANT_ACTOR)
    clock.set(kst("2024-06-04 14:00"))
    status = review.decide_objection(app, objection_id, uphold, "first decision", OFFICE)
    before = footprint(app)
    with pytest.raises(Conflict, match=rf"objection #{objection_id} was already {status} on 2024-06-04"):
        review.decide_objection(app, objection_id, not uphold, "second thoughts", OFFICE)
    assert footprint(app) == before
    assert review.objections(app)[0]["decision"] == "first decision"


def test_a_repeated_decision_names_the_decision_day_in_korean_time(reviewed: App, clock: FixedClock) -> None:
    app = reviewed
    clock.set(kst("2024-06-03 15:00"))
    objection_id = review.file_objection(app, app_id(app, "48120"), "인구 재산정", APPLICANT_ACTOR)
    clock.set(kst("2024-06-04 08:30"))  # 2024-06-03 23:30 UTC
    review.decide_objection(app, objection_id, True, "확인", OFFICE)
    with pytest.raises(Conflict, match=rf"objection #{objection_id} was already upheld on 2024-06-04"):
        review.decide_objection(app, objection_id, False, "again", OFFICE)


def test_deciding_an_unknown_objection_is_refused(reviewed: App, clock: FixedClock) -> None:
    clock.set(kst("2024-06-04 09:00"))
    review.file_objection(reviewed, app_id(reviewed, "48120"), "인구 재산정", APPLICANT_ACTOR)
    before = footprint(reviewed)
    with pytest.raises(NotFound, match=r"no objection #424242: see `gongmo objection list`"):
        review.decide_objection(reviewed, 424242, True, "확인", OFFICE)
    assert footprint(reviewed) == before


def test_deciding_without_a_reason_is_refused(reviewed: App, clock: FixedClock) -> None:
    clock.set(kst("2024-06-04 09:00"))
    objection_id = review.file_objection(reviewed, app_id(reviewed, "48120"), "인구 재산정", APPLICANT_ACTOR)
    before = footprint(reviewed)
    with pytest.raises(InvalidInput, match="reason is empty"):
        review.decide_objection(reviewed, objection_id, True, "  ", OFFICE)
    assert footprint(reviewed) == before
    assert state_of(reviewed, "48120") == "disqualified"


def test_every_objection_step_is_in_the_event_log(reviewed: App, clock: FixedClock) -> None:
    app = reviewed
    clock.set(kst("2024-06-04 09:00"))
    changwon, suwon = app_id(app, "48120"), app_id(app, "41110")
    up = review.file_objection(app, changwon, "인구 재산정", APPLICANT_ACTOR)
    down = review.file_objection(app, suwon, "특례시는 예외", APPLICANT_ACTOR)
    review.decide_objection(app, up, True, "확인", OFFICE)
    review.decide_objection(app, down, False, "예외 없음", OFFICE)
    logged = [
        (e["kind"], e["application_id"], e["detail"]["objection"], e["actor"])
        for e in events_of(app, "objection_filed")
        + events_of(app, "objection_upheld")
        + events_of(app, "objection_rejected")
    ]
    assert logged == [
        ("objection_filed", changwon, up, "applicant"),
        ("objection_filed", suwon, down, "applicant"),
        ("objection_upheld", changwon, up, "lh-office"),
        ("objection_rejected", suwon, down, "lh-office"),
    ]
    assert {e["track_id"] for e in events_of(app, "objection_filed")} == {sc.application(app, "48120")["track_id"]}


# -- one objection per disqualification (issue 19, point 6) ----------------------------------


def test_a_second_objection_to_the_same_disqualification_is_refused_in_one_line(
    reviewed: App, clock: FixedClock
) -> None:
    """File, reject, file again: one objection per decision (이의신청은 처분당 1회), refused
    in one line naming the first and its outcome; nothing written (was: IntegrityError on
    outbox.dedup_key)."""
    app = reviewed
    clock.set(kst("2024-06-04 09:00"))
    suwon = app_id(app, "41110")
    first = review.file_objection(app, suwon, "특례시는 예외", APPLICANT_ACTOR)
    clock.set(kst("2024-06-05 09:00"))
    review.decide_objection(app, first, False, "예외 없음", OFFICE)
    clock.set(kst("2024-06-06 09:00"))
    before = footprint(app)
    with pytest.raises(Conflict) as refused:
        review.file_objection(app, suwon, "다시 검토 요청", APPLICANT_ACTOR)
    message = str(refused.value)
    assert "\n" not in message
    assert f"application {suwon}" in message
    assert f"objection #{first}" in message and "rejected on 2024-06-05" in message
    assert "one objection per disqualification" in message
    assert footprint(app) == before


def test_a_new_disqualification_takes_a_new_objection_each_with_its_own_notices(
    reviewed: App, clock: FixedClock
) -> None:
    """Reinstated by the office and disqualified again later: that is a new decision, so a new
    objection may be filed and rejected; each objection has its own notice keys."""
    app = reviewed
    clock.set(kst("2024-06-04 09:00"))
    suwon = app_id(app, "41110")
    first = review.file_objection(app, suwon, "특례시는 예외", APPLICANT_ACTOR)
    review.decide_objection(app, first, False, "예외 없음", OFFICE)
    clock.set(kst("2024-06-05 09:00"))
    app.moves.apply(suwon, "reinstate", OFFICE, "인구 재확인: 기준 충족")
    app.moves.apply(suwon, "disqualify", OFFICE, "허위 기재 확인")
    second = review.file_objection(app, suwon, "허위 아님", APPLICANT_ACTOR)
    assert review.decide_objection(app, second, False, "증빙 부족", OFFICE) == "rejected"
    received = outbox(app, suwon, "objection_received")
    rejected = outbox(app, suwon, "objection_rejected")
    assert len(received) == len(rejected) == 2
    keys = [r["dedup_key"] for r in received + rejected]
    assert len(set(keys)) == 4
    assert [r["dedup_key"] for r in rejected] == [
        f"{suwon}:objection_rejected:objection-{first}",
        f"{suwon}:objection_rejected:objection-{second}",
    ]
    assert "증빙 부족" in rejected[1]["body_text"]


# -- a missing or zero amount never passes the review (issue 19, point 7) ---------------------------


def test_a_plan_with_missing_or_zero_amounts_fails_its_checklist(contest: App, clock: FixedClock) -> None:
    """Plans left without amounts (as `bulk ... submit` made them) or with zeros fail
    national_cap and local_match with a clear line, and pass_eligible leaves them."""
    app = contest
    sc.receive_all(app, clock)
    missing, zero = app_id(app, "36110"), app_id(app, "41390")
    with write(app.db) as conn:
        conn.execute(
            sa.update(APPLICATION).where(APPLICATION.c.id == missing).values(national_krw=None, local_krw=None)
        )
        conn.execute(sa.update(APPLICATION).where(APPLICATION.c.id == zero).values(national_krw=0, local_krw=0))
    sc.at(app, clock, "2024-05-29 18:00")
    lines = {c.application_id: c.failed for c in review.checklists(app, sc.TRACK)}
    assert lines[missing] == (
        "national_cap: (none) (required: more than 0, at most 8,000,000,000 won over 3 year(s));"
        " local_match: (none) (required: more than 0 won (local:national = 1:1))"
    )
    assert lines[zero] == (
        "national_cap: 0 won (required: more than 0, at most 8,000,000,000 won over 3 year(s));"
        " local_match: 0 won (required: more than 0 won (local:national = 1:1))"
    )
    clock.set(kst("2024-06-03 10:00"))
    review.pass_eligible(app, sc.TRACK, OFFICE)
    assert state_of(app, "36110") == state_of(app, "41390") == "preliminary_review"
