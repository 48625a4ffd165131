"""The 2024 strong-and-small track end to end: 12 local governments and 5
evaluators, from receipt to kickoff, on SQLite and PostgreSQL, through the
real ticker, engine and committee code (tests/workflow/contest_2024.py
builds the sheets; the expected scores are worked out by hand there)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from gongmo.states.errors import Conflict, InvalidInput, OutsideWindow
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import EVENT, FUNDING_YEAR, OUTBOX
from gongmo.workflow.engine import audit
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox import office
from gongmo.workflow.stages import committee, kickoff, presentations, review, selection
from tests.conftest import kst
from tests.workflow import contest_2024 as sc

OFFICE, APPLICANT_ACTOR = sc.OFFICE, sc.APPLICANT_ACTOR
_at, _apps, _notices, _states, _receive_all = sc.at, sc.apps, sc.notices, sc.states, sc.receive_all


@pytest.fixture
def contest(app: App, clock: FixedClock, tmp_path: Path) -> App:
    return sc.prepare(app, clock, tmp_path)


def test_strong_and_small_2024_from_receipt_to_kickoff(contest: App, clock: FixedClock, tmp_path: Path) -> None:
    app = contest
    _receive_all(app, clock)
    _at(app, clock, "2024-05-29 18:00")  # close_receipt: 12 to preliminary review, checklists recorded
    rows = _apps(app)
    assert {r["state"] for r in rows.values()} == {"preliminary_review"}
    checks = {c.receipt_no: c for c in review.checklists(app, sc.TRACK)}
    assert len(checks) == 12
    failed = {code for code, r in rows.items() if not r["eligible"]}
    assert failed == {"48120", "41110"}  # 창원 1,010,000 and 수원 1,190,987: not below 1,000,000
    changwon = checks[str(rows["48120"]["receipt_no"])]
    assert [c["rule"] for c in changwon.checks if not c["passed"]] == ["population"]
    assert changwon.checks[1]["value"] == "1,010,000" and changwon.checks[1]["expected"] == "below 1,000,000"

    # The review: pass the eligible in bulk, disqualify the rest with their failed rules as the reason.
    clock.set(kst("2024-06-03 10:00"))
    assert review.pass_eligible(app, sc.TRACK, OFFICE) == 10
    assert len(review.disqualify_failed(app, sc.TRACK, OFFICE)) == 2
    rows = _apps(app)
    assert _notices(app, rows["48120"]["id"])[-1] == "disqualified"
    with read(app.db) as conn:
        body = conn.execute(
            sa.select(OUTBOX.c.body_text).where(
                OUTBOX.c.application_id == rows["48120"]["id"], OUTBOX.c.notice == "disqualified"
            )
        ).scalar_one()
    assert "1,010,000" in body and "2024-06-10" in body  # the reason, and objections until +7 days

    # Objections: 창원 objects (upheld: new resident count); 수원 objects (rejected).
    clock.set(kst("2024-06-04 09:00"))
    changwon_obj = review.file_objection(
        app, int(rows["48120"]["id"]), "2024.4. 주민등록인구 998,000명", APPLICANT_ACTOR
    )
    suwon_obj = review.file_objection(app, int(rows["41110"]["id"]), "특례시는 예외", APPLICANT_ACTOR)
    with pytest.raises(Conflict, match="objections are open"):
        committee.assign_track(app, sc.TRACK, OFFICE)
    review.decide_objection(app, changwon_obj, True, "2024년 4월 주민등록인구 998,000명 확인", OFFICE)
    review.decide_objection(app, suwon_obj, False, "인구 기준(100만 미만)에 예외 없음", OFFICE)
    rows = _apps(app)
    assert rows["48120"]["state"] == "written_evaluation"
    assert rows["41110"]["state"] == "disqualified"
    assert _notices(app, rows["48120"]["id"])[-2:] == ["objection_received", "review_passed"]
    assert _notices(app, rows["41110"]["id"])[-2:] == ["objection_received", "objection_rejected"]

    # Assignment: conflicted evaluators are never assigned.
    plan = committee.assign_track(app, sc.TRACK, OFFICE)
    receipts = {code: str(r["receipt_no"]) for code, r in rows.items() if code in sc.TARGETS}
    for code, receipt in receipts.items():
        expected = [e for e in sc.EVALUATORS if not sc.conflicted(code, e)]
        assert sorted(plan[receipt]) == sorted(expected), code
    assert len(plan[receipts["41390"]]) == 4 and len(plan[receipts["36110"]]) == 5

    # Presentation slots before the window, each applicant invited with an .ics.
    slots = presentations.schedule(app, sc.TRACK, OFFICE)
    assert len(slots) == 11
    assert all(kst("2024-06-17 09:00") <= s["starts_at"] < s["ends_at"] <= kst("2024-06-19 18:00") for s in slots)

    # Written scores: refused before the window, then imported in one go.
    written = sc.scores_csv(tmp_path / "written.csv", "written", receipts)
    sheets, where = committee.parse_scores(written, app.loaded.config.track(sc.TRACK)[1])
    with pytest.raises(InvalidInput, match="accepted from 2024-06-10 09:00"):
        committee.enter_sheets(app, sheets, OFFICE, where)
    clock.set(kst("2024-06-11 14:00"))
    # A conflicted evaluator cannot score, even by hand: refused, nothing stored.
    bad = committee.SheetInput(receipts["41390"], "jung@gri.example", "written", {k: "10" for k in sc.CRITERIA})
    with pytest.raises(InvalidInput, match="conflict of interest"):
        committee.enter_sheets(app, [bad], OFFICE)
    assert committee.enter_sheets(app, sheets, OFFICE, where) == len(sheets) == 51

    _at(app, clock, "2024-06-12 18:00")  # start_presentation
    assert {_states(app)[c] for c in sc.TARGETS} == {"presentation_evaluation"}
    clock.set(kst("2024-06-19 17:00"))
    pres = sc.scores_csv(tmp_path / "presentation.csv", "presentation", receipts)
    sheets, where = committee.parse_scores(pres, app.loaded.config.track(sc.TRACK)[1])
    committee.enter_sheets(app, sheets, OFFICE, where)

    # The ranking, every score as worked out by hand.
    result = selection.ranking(app, sc.TRACK)
    assert not result.incomplete
    by_label = {r.entry.label: r for r in result.rows}
    weights = result.weights()
    for code, receipt in receipts.items():
        r = by_label[receipt]
        assert r.entry.written.score == sc.expected(code, "written"), code
        assert r.entry.presentation.score == sc.expected(code, "presentation"), code
        total = weights.written * sc.expected(code, "written") + weights.presentation * sc.expected(
            code, "presentation"
        )
        assert r.total == total.quantize(Decimal("0.01")), code
    order = [r.entry.label for r in result.rows]
    codes = {v: k for k, v in receipts.items()}
    assert [codes[x] for x in order] == [
        "36110", "41390", "44130", "43110", "41590", "47190", "48120", "52110", "51110", "26350", "46130",
    ]  # fmt: skip
    cheongju = by_label[receipts["43110"]]  # the one below the tie says how it was broken
    assert cheongju.tie == f"tied with {receipts['44130']} at 84.93; criterion:feasibility decides: 26.50 over 25.50"
    assert by_label[receipts["44130"]].tie is None
    assert by_label[receipts["36110"]].entry.written.how.startswith("trimmed mean of 5")
    assert by_label[receipts["41390"]].entry.written.how == "mean of 4"
    assert not by_label[receipts["46130"]].qualified

    # Selection: refused before the presentation ends; the dry run changes nothing.
    with pytest.raises(OutsideWindow):
        selection.select(app, sc.TRACK, OFFICE, confirm=True)
    clock.set(kst("2024-06-26 09:00"))
    dry = selection.select(app, sc.TRACK, OFFICE)
    assert {_states(app)[c] for c in sc.TARGETS} == {"presentation_evaluation"}
    outcome = {codes[d.label]: d.outcome for d in dry.decisions}
    assert [c for c, o in outcome.items() if o == "select"] == ["36110", "41390", "44130"]
    assert [c for c, o in outcome.items() if o == "waitlist"] == ["43110", "41590"]
    yeosu = next(d for d in dry.decisions if codes[d.label] == "46130")
    assert "below the qualifying minimum 70" in yeosu.note
    applied = selection.select(app, sc.TRACK, OFFICE, confirm=True)
    assert applied.decisions == dry.decisions
    states = _states(app)
    assert [c for c in sc.TARGETS if states[c] == "selected"] == ["36110", "41390", "44130"]
    assert [c for c in sc.TARGETS if states[c] == "waitlisted"] == ["43110", "41590"]
    assert sum(states[c] == "not_selected" for c in sc.TARGETS) == 6
    rows = _apps(app)
    assert rows["43110"]["waitlist_position"] == 1 and rows["36110"]["rank"] == 1 and rows["36110"]["score"] == "90.53"
    with read(app.db) as conn:
        held = conn.execute(
            sa.select(OUTBOX.c.notice, sa.func.count()).where(OUTBOX.c.state == "held").group_by(OUTBOX.c.notice)
        ).all()
        reason = conn.execute(
            sa.select(OUTBOX.c.body_text).where(
                OUTBOX.c.application_id == rows["46130"]["id"], OUTBOX.c.notice == "not_selected"
            )
        ).scalar_one()
    assert dict(held) == {"selected": 3, "waitlisted": 2, "not_selected": 6}
    assert "65.13" in reason and "70" in reason
    with pytest.raises(Conflict, match="no application is waiting"):
        selection.select(app, sc.TRACK, OFFICE, confirm=True)

    # 시흥 withdraws before the kickoff date while the results are still held: 청주 (waitlist 1) is
    # promoted, and its notice waits with the other results (issue 17, finding 3).
    clock.set(kst("2024-07-01 10:00"))
    app.moves.apply(int(rows["41390"]["id"]), "withdraw", APPLICANT_ACTOR)
    rows = _apps(app)
    assert rows["43110"]["state"] == "selected" and rows["41590"]["state"] == "waitlisted"
    assert _notices(app, rows["43110"]["id"])[-1] == "promoted"
    with read(app.db) as conn:
        promoted = conn.execute(
            sa.select(OUTBOX.c.state).where(
                OUTBOX.c.application_id == rows["43110"]["id"], OUTBOX.c.notice == "promoted"
            )
        ).scalar_one()
        waitlisted_notice = conn.execute(
            sa.select(OUTBOX.c.state).where(
                OUTBOX.c.application_id == rows["43110"]["id"], OUTBOX.c.notice == "waitlisted"
            )
        ).scalar_one()
    assert promoted == "held" and waitlisted_notice == "cancelled"  # the held waitlist notice never goes out
    # selected (시흥's own was cancelled by its withdrawal), promoted, waitlisted (화성), not selected
    assert office.release(app, sc.TRACK, "results") == 2 + 1 + 1 + 6
    assert _state_of_notice(app, rows["43110"]["id"], "promoted") == "pending"

    # Kickoff: 세종's plan is returned once, then approved with its schedule; 천안 by an even split.
    sejong, cheonan_id = int(rows["36110"]["id"]), int(rows["44130"]["id"])
    assert kickoff.receive(app, sejong, OFFICE) == 1
    kickoff.return_plan(app, sejong, "연차별 지방비 확보 근거를 첨부하십시오", OFFICE)
    with pytest.raises(Conflict, match="returned"):
        kickoff.approve(app, sejong, None, OFFICE)
    assert kickoff.receive(app, sejong, OFFICE) == 2
    with pytest.raises(InvalidInput, match="add up to 7,000,000,000"):
        kickoff.approve(
            app,
            sejong,
            kickoff.parse_schedule(
                ["2024=2000000000/2000000000", "2025=2500000000/2500000000", "2026=2500000000/2500000000"]
            ),
            OFFICE,
        )
    schedule = kickoff.parse_schedule(
        ["2024=2000000000/2000000000", "2025=3000000000/3000000000", "2026=2500000000/2500000000"]
    )
    kickoff.approve(app, sejong, schedule, OFFICE)
    kickoff.receive(app, cheonan_id, OFFICE)
    split = kickoff.approve(app, cheonan_id, None, OFFICE)
    assert [(y.year, y.national_krw) for y in split] == [
        (2024, 2_666_666_668),
        (2025, 2_666_666_666),
        (2026, 2_666_666_666),
    ]
    with read(app.db) as conn:
        funded = conn.execute(sa.select(sa.func.sum(FUNDING_YEAR.c.national_krw))).scalar_one()
    assert funded == 7_500_000_000 + 8_000_000_000

    # 청주 files nothing: the kickoff deadline's grace ends, it is cancelled; 화성's waitlist lapses.
    _at(app, clock, "2024-08-14 18:00")
    states = _states(app)
    assert states == {
        "36110": "kickoff", "41390": "withdrawn", "44130": "kickoff", "43110": "cancelled", "41590": "not_selected",
        "47190": "not_selected", "48120": "not_selected", "52110": "not_selected", "51110": "not_selected",
        "26350": "not_selected", "46130": "not_selected", "41110": "disqualified",
    }  # fmt: skip
    assert _notices(app, sejong) == [
        "call_announcement", "receipt_confirmation", "review_passed", "presentation_invitation", "selected",
        "kickoff_plan_returned", "kickoff_confirmed",
    ]  # fmt: skip
    assert _notices(app, rows["43110"]["id"])[-2:] == ["kickoff_plan_request", "cancelled"]
    with read(app.db) as conn:
        report = audit.verify(conn, TABLE)
        kinds = dict(conn.execute(sa.select(EVENT.c.kind, sa.func.count()).group_by(EVENT.c.kind)).all())
        selection_event = conn.execute(sa.select(EVENT.c.detail).where(EVENT.c.kind == "selection")).scalar_one()
    assert report.clean, report.findings
    assert kinds["scored"] == 51 + 51 and kinds["objection_filed"] == 2 and kinds["plan_approved"] == 2
    assert json.loads(selection_event)["waitlisted"] == [receipts["43110"], receipts["41590"]]


def _state_of_notice(app: App, application_id: object, notice: str) -> str:
    with read(app.db) as conn:
        query = sa.select(OUTBOX.c.state).where(OUTBOX.c.application_id == application_id, OUTBOX.c.notice == notice)
        return str(conn.execute(query).scalar_one())
