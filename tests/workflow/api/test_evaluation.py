"""The committee over HTTP: score sheets, the ranking and the selection
(workflow/api/evaluation.py)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from gongmo.workflow.core.db import write
from gongmo.workflow.core.models import AUDIT, EVENT, OUTBOX, SCORE
from tests.conftest import kst
from tests.workflow import contest_2024 as sc
from tests.workflow.api.conftest import (
    ADMIN,
    APP_CHANGWON,
    APP_SEJONG,
    CHANGWON,
    EV_JUNG,
    EV_KIM,
    IN_EVALUATION,
    JUNG,
    KIM,
    LEE,
    POINTS,
    SEJONG,
    SIHEUNG,
    TRACK_KEY,
    World,
)

PUT = "PUT /applications/{application_id}/scores/{part}"
GET = "GET /applications/{application_id}/scores"
RANKING = "GET /tracks/{track}/ranking"
SELECTION = "POST /tracks/{track}/selection"


def sheet_url(w: World, code: str, part: str = "written") -> str:
    return f"/applications/{w.id(code)}/scores/{part}"


# -- sheets ------------------------------------------------------------------------------------


@pytest.mark.routes(PUT, GET)
def test_an_evaluator_scores_an_assigned_application_and_reads_its_own_sheets(
    world: Callable[..., World], db_url: str
) -> None:
    w = world("written", db_url)
    entered = w.put(sheet_url(w, SEJONG), EV_KIM, json={"points": {**POINTS, "feasibility": 27.5, "budget": 12}})
    assert entered.status_code == 200, entered.text
    assert entered.json() == {
        "application_id": w.id(SEJONG),
        "evaluator": KIM,
        "part": "written",
        "points": {**POINTS, "feasibility": "27.5", "budget": "12"},
    }
    stored = {r["criterion"]: (r["points_x100"], r["entered_by"]) for r in w.rows(SCORE)}
    assert stored == {
        "feasibility": (2750, KIM),
        "innovation": (1800, KIM),
        "participation": (1725, KIM),
        "budget": (1200, KIM),
        "effect": (1300, KIM),
    }
    scored = w.rows(EVENT, EVENT.c.kind == "scored")
    assert [(e["actor"], e["role"], e["application_id"]) for e in scored] == [(KIM, "evaluator", w.id(SEJONG))]

    # The office enters 이박사's sheet from paper: the office is the actor, the sheet is lee's.
    by_office = w.put(sheet_url(w, SEJONG), ADMIN, json={"points": POINTS, "evaluator": "LEE@kict.example"})
    assert by_office.status_code == 200 and by_office.json()["evaluator"] == LEE
    last = w.rows(EVENT, EVENT.c.kind == "scored")[-1]
    assert (last["actor"], last["role"]) == ("office-lee", "admin") and LEE in last["detail"]

    own = w.get(f"/applications/{w.id(SEJONG)}/scores", EV_KIM).json()
    assert [(s["evaluator"], s["part"]) for s in own] == [(KIM, "written")]
    assert own[0]["points"]["feasibility"] == "27.5" and own[0]["points"]["participation"] == "17.25"
    everyone = w.get(f"/applications/{w.id(SEJONG)}/scores", ADMIN).json()
    assert [s["evaluator"] for s in everyone] == [KIM, LEE]


@pytest.mark.routes(PUT)
def test_sending_a_sheet_again_corrects_it_and_keeps_the_old_points(written: World) -> None:
    w = written
    url = sheet_url(w, SEJONG)
    assert w.put(url, EV_KIM, json={"points": POINTS}).status_code == 200
    assert w.put(url, EV_KIM, json={"points": {**POINTS, "effect": "14"}}).status_code == 200
    assert w.count(SCORE) == 5
    corrected = w.rows(EVENT, EVENT.c.kind == "score_corrected")
    assert len(corrected) == 1 and corrected[0]["actor"] == KIM
    assert '"was"' in corrected[0]["detail"] and '"effect": "13"' in corrected[0]["detail"]


@pytest.mark.routes(PUT, GET)
def test_an_evaluator_may_not_score_or_read_a_conflicted_application(written: World) -> None:
    w = written
    w.token(EV_JUNG)
    before = w.footprint()
    unassigned = w.put(sheet_url(w, SIHEUNG), EV_JUNG, json={"points": POINTS})  # 경기 evaluator, 경기 applicant
    assert unassigned.status_code == 403 and "not yours to evaluate" in unassigned.json()["error"]
    assert w.footprint() == before
    w.assign(SIHEUNG, JUNG)  # even assigned by mistake, the conflict bars it
    before = w.footprint()
    forced = w.put(sheet_url(w, SIHEUNG), EV_JUNG, json={"points": POINTS})
    assert forced.status_code == 403 and "same region as the applicant" in forced.json()["error"]
    read = w.get(f"/applications/{w.id(SIHEUNG)}/scores", EV_JUNG)
    assert read.status_code == 403
    assert w.footprint() == before and w.count(SCORE) == 0


@pytest.mark.routes(PUT)
def test_the_office_may_not_enter_a_sheet_for_a_conflicted_or_unassigned_evaluator(written: World) -> None:
    w = written
    w.token(ADMIN)
    before = w.footprint()
    conflicted = w.put(sheet_url(w, SIHEUNG), ADMIN, json={"points": POINTS, "evaluator": JUNG})
    assert conflicted.status_code == 409 and "conflict of interest" in conflicted.json()["error"]
    disqualified = w.put(sheet_url(w, CHANGWON), ADMIN, json={"points": POINTS, "evaluator": KIM})
    assert disqualified.status_code == 409 and "'disqualified'" in disqualified.json()["error"]
    nobody = w.put(sheet_url(w, SEJONG), ADMIN, json={"points": POINTS})
    assert nobody.status_code == 422 and "evaluator" in nobody.json()["error"]
    stranger = w.put(sheet_url(w, SEJONG), ADMIN, json={"points": POINTS, "evaluator": "who@else.example"})
    assert stranger.status_code == 404
    missing = w.put("/applications/999999/scores/written", ADMIN, json={"points": POINTS, "evaluator": KIM})
    assert missing.status_code == 404
    assert w.footprint() == before


@pytest.mark.routes(PUT, GET)
def test_an_evaluator_enters_and_reads_its_own_sheets_only(written: World) -> None:
    w = written
    w.token(EV_KIM)
    before = w.footprint()
    as_lee = w.put(sheet_url(w, SEJONG), EV_KIM, json={"points": POINTS, "evaluator": LEE})
    assert as_lee.status_code == 403 and "its own sheets only" in as_lee.json()["error"]
    not_assigned = w.put(sheet_url(w, CHANGWON), EV_KIM, json={"points": POINTS})
    assert not_assigned.status_code == 403
    assert w.footprint() == before
    same_me = w.put(sheet_url(w, SEJONG), EV_KIM, json={"points": POINTS, "evaluator": KIM.upper()})
    assert same_me.status_code == 200
    assert w.get(f"/applications/{w.id(CHANGWON)}/scores", EV_KIM).status_code == 403
    applicant = w.get(f"/applications/{w.id(SEJONG)}/scores", APP_SEJONG)
    assert applicant.status_code == 403 and "allowed: admin, evaluator" in applicant.json()["error"]
    assert w.put(sheet_url(w, CHANGWON), APP_CHANGWON, json={"points": POINTS}).status_code == 403
    assert w.get("/applications/999999/scores", ADMIN).status_code == 404


@pytest.mark.routes(PUT)
@pytest.mark.parametrize(
    ("points", "needles"),
    [
        ({**POINTS, "feasibility": "31"}, ["feasibility = 31", "out of range", "0 to 30"]),
        ({**POINTS, "budget": -1}, ["budget = -1", "0 to 15"]),
        ({**POINTS, "innovation": "열여덟"}, ["innovation", "not a number"]),
        ({**POINTS, "effect": "12.345"}, ["effect", "at most two decimals"]),
        ({**POINTS, "effect": 1e20}, ["effect", "not a number"]),
        ({k: v for k, v in POINTS.items() if k != "budget"}, ["criterion 'budget' has no points"]),
        ({**POINTS, "charm": "5"}, ["unknown criterion 'charm'"]),
        ({**POINTS, "Feasibility": "5"}, ["Feasibility"]),
    ],
)
def test_bad_points_are_422_naming_the_criterion_and_store_nothing(
    written: World, points: dict[str, object], needles: list[str]
) -> None:
    w = written
    w.token(EV_KIM)
    before = w.footprint()
    refused = w.put(sheet_url(w, SEJONG), EV_KIM, json={"points": points})
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert "\n" not in error
    for needle in needles:
        assert needle in error, (needle, error)
    assert w.footprint() == before


def test_a_boolean_is_not_points(written: World) -> None:
    w = written
    refused = w.put(sheet_url(w, SEJONG), EV_KIM, json={"points": {**POINTS, "feasibility": True}})
    assert refused.status_code == 422
    assert w.count(SCORE) == 0


@pytest.mark.routes(PUT)
def test_a_sheet_outside_its_part_or_window_is_409(written: World) -> None:
    w = written
    w.token(EV_KIM)
    before = w.footprint()
    early = w.put(sheet_url(w, SEJONG, "presentation"), EV_KIM, json={"points": POINTS})
    assert early.status_code == 409 and "presentation scores are entered while" in early.json()["error"]
    assert w.put(sheet_url(w, SEJONG, "oral"), EV_KIM, json={"points": POINTS}).status_code == 422
    w.clock.set(kst("2024-06-12 18:00"))  # the written window closed (the ticker has not moved it on)
    late = w.put(sheet_url(w, SEJONG), EV_KIM, json={"points": POINTS})
    assert late.status_code == 409 and "accepted from 2024-06-10 09:00 to 2024-06-12 18:00" in late.json()["error"]
    assert w.footprint() == before


@pytest.mark.routes(PUT)
def test_no_sheet_while_an_objection_is_open(written: World) -> None:
    w = written
    w.clock.set(kst("2024-06-04 09:00"))
    assert (
        w.post(f"/applications/{w.id(CHANGWON)}/objections", APP_CHANGWON, json={"grounds": "인구"}).status_code == 201
    )
    w.clock.set(kst("2024-06-11 14:00"))
    refused = w.put(sheet_url(w, SEJONG), EV_KIM, json={"points": POINTS})
    assert refused.status_code == 409 and "objections are open" in refused.json()["error"]
    assert w.count(SCORE) == 0


# -- ranking and selection -----------------------------------------------------------------------


@pytest.mark.routes(RANKING, SELECTION)
def test_the_ranking_then_a_dry_run_then_the_selection(world: Callable[..., World], db_url: str) -> None:
    w = world("presentation", db_url)
    ranking = w.get(f"/tracks/{TRACK_KEY}/ranking", ADMIN)
    assert ranking.status_code == 200
    body = ranking.json()
    assert body["track"] == TRACK_KEY and body["incomplete"] == []
    by_code = {w.row(code)["receipt_no"]: code for code in IN_EVALUATION}
    order = [by_code[r["receipt_no"]] for r in body["rows"]]
    assert order == ["36110", "41390", "44130", "43110", "41590", "47190", "52110", "51110", "26350", "46130"]
    for r in body["rows"]:
        code = by_code[r["receipt_no"]]
        assert Decimal(r["written"]) == sc.expected(code, "written"), code
        assert Decimal(r["presentation"]) == sc.expected(code, "presentation"), code
    assert body["rows"][0]["score"] == "90.53" and not body["rows"][-1]["qualified"]

    before = w.footprint()
    dry = w.post(f"/tracks/{TRACK_KEY}/selection", ADMIN, json={})
    assert dry.status_code == 200
    assert {k: v for k, v in dry.json().items() if k != "rows"} == {
        "track": TRACK_KEY,
        "applied": False,
        "selected": 3,
        "waitlisted": 2,
        "not_selected": 5,
    }
    decided = {by_code[r["receipt_no"]]: r["decision"] for r in dry.json()["rows"]}
    assert [c for c, d in decided.items() if d == "selected"] == ["36110", "41390", "44130"]
    assert w.footprint() == before  # a dry run changes nothing

    confirmed = w.post(f"/tracks/{TRACK_KEY}/selection", ADMIN, json={"confirm": True})
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["applied"] is True
    decisions = [(r["receipt_no"], r["rank"], r["score"], r["decision"]) for r in dry.json()["rows"]]
    assert [(r["receipt_no"], r["rank"], r["score"], r["decision"]) for r in confirmed.json()["rows"]] == decisions
    states = {code: w.state(code) for code in IN_EVALUATION}
    assert [c for c in IN_EVALUATION if states[c] == "selected"] == ["36110", "41390", "44130"]
    assert [c for c in IN_EVALUATION if states[c] == "waitlisted"] == ["43110", "41590"]
    assert sum(s == "not_selected" for s in states.values()) == 5
    moves = w.rows(AUDIT, AUDIT.c.trigger.in_(["select", "waitlist", "reject"]))
    assert len(moves) == 10 and {(m["actor"], m["role"]) for m in moves} == {("office-lee", "admin")}
    assert w.rows(EVENT, EVENT.c.kind == "selection")[0]["actor"] == "office-lee"
    held = w.rows(OUTBOX, OUTBOX.c.state == "held")
    assert sorted(n["notice"] for n in held) == ["not_selected"] * 5 + ["selected"] * 3 + ["waitlisted"] * 2

    again = w.post(f"/tracks/{TRACK_KEY}/selection", ADMIN, json={"confirm": True})
    assert again.status_code == 409 and "no application is waiting" in again.json()["error"]


@pytest.mark.routes(SELECTION)
def test_a_selection_before_the_presentation_ends_is_409_and_changes_nothing(presentation: World) -> None:
    w = presentation
    w.clock.set(kst("2024-06-19 17:00"))
    w.token(ADMIN)
    before = w.footprint()
    refused = w.post(f"/tracks/{TRACK_KEY}/selection", ADMIN, json={"confirm": True})
    assert refused.status_code == 409 and "select after it" in refused.json()["error"]
    assert w.footprint() == before
    assert w.post(f"/tracks/{TRACK_KEY}/selection", ADMIN, json={}).json()["applied"] is False  # a dry run may


@pytest.mark.routes(RANKING, SELECTION)
def test_ranking_and_selection_are_the_office_s_and_need_a_known_track(presentation: World) -> None:
    w = presentation
    w.token(EV_KIM)
    w.token(APP_SEJONG)
    before = w.footprint()
    for who in (EV_KIM, APP_SEJONG):
        assert w.get(f"/tracks/{TRACK_KEY}/ranking", who).status_code == 403
        assert w.post(f"/tracks/{TRACK_KEY}/selection", who, json={"confirm": True}).status_code == 403
    assert w.footprint() == before
    unknown = w.get("/tracks/no-such-track/ranking", ADMIN)
    assert unknown.status_code == 404 and "GET /contests" in unknown.json()["error"]
    assert w.post("/tracks/no-such-track/selection", ADMIN, json={}).status_code == 404
    maybe = w.post(f"/tracks/{TRACK_KEY}/selection", ADMIN, json={"confirm": "maybe"})
    assert (
        maybe.status_code == 422
        and "confirm" in maybe.json()["error"]
        and "send true or false" in maybe.json()["error"]
    )
    assert w.post(f"/tracks/{TRACK_KEY}/selection", ADMIN, json={"confirm": True, "force": True}).status_code == 422


@pytest.mark.routes(SELECTION)
def test_a_selection_with_a_sheet_missing_is_422(presentation: World) -> None:
    w = presentation
    with_sheets = w.count(SCORE)
    with write(w.app.db) as conn:  # 세종's presentation sheets are lost
        conn.execute(SCORE.delete().where(SCORE.c.application_id == w.id(SEJONG), SCORE.c.part == "presentation"))
    assert w.count(SCORE) < with_sheets
    before = w.footprint()
    refused = w.post(f"/tracks/{TRACK_KEY}/selection", ADMIN, json={"confirm": True})
    assert refused.status_code == 422 and "cannot rank every application yet" in refused.json()["error"]
    assert w.footprint() == before
    assert w.get(f"/tracks/{TRACK_KEY}/ranking", ADMIN).json()["incomplete"] != []
