"""Applications over HTTP: list, detail, transitions, submissions, objections
(workflow/api/applications.py), each role at its boundary."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from gongmo.workflow.core.models import APPLICATION, AUDIT, EVENT, OBJECTION, OUTBOX
from gongmo.workflow.deadlines import changes as calendars
from tests.conftest import kst
from tests.workflow.api.conftest import (
    ADMIN,
    ADMIN_2,
    APP_CHANGWON,
    APP_SEJONG,
    APP_SIHEUNG,
    CHANGWON,
    EV_JUNG,
    EV_KIM,
    IN_EVALUATION,
    SEJONG,
    SIHEUNG,
    SUWON,
    TRACK_KEY,
    World,
)

LIST = "GET /applications"
DETAIL = "GET /applications/{application_id}"
MOVE = "POST /applications/{application_id}/transitions"
TIMELINE = "GET /applications/{application_id}/timeline"
SUBMIT = "POST /applications"
OBJECT = "POST /applications/{application_id}/objections"
UPLOAD = "POST /applications/{application_id}/documents/{kind}"  # World.attach: a plan comes with its documents


def plan(code: str | None = None, **extra: object) -> dict[str, object]:
    body: dict[str, object] = {"track": TRACK_KEY, "national_krw": 8_000_000_000, "local_krw": 8_000_000_000}
    body |= {"title": "스마트 그린 도시", "project_type": "climate_crisis"}
    if code is not None:
        body["applicant"] = code
    return body | extra


def codes(page: dict[str, object]) -> list[str]:
    return [str(item["applicant_code"]) for item in page["items"]]  # type: ignore[attr-defined]


# -- the list ---------------------------------------------------------------------------


@pytest.mark.routes(LIST)
def test_each_token_lists_what_it_may_see(written: World) -> None:
    w = written
    everything = w.get("/applications?limit=500", ADMIN).json()
    assert everything["total"] == w.count(APPLICATION) == len(everything["items"])
    assert everything["next"] is None

    own = w.get("/applications", APP_SEJONG).json()
    assert own["total"] == 1 and codes(own) == [SEJONG]
    # kim (서울) is assigned to all ten in evaluation; jung (경기) to the eight outside 경기.
    kim = w.get("/applications", EV_KIM).json()
    assert sorted(codes(kim)) == sorted(IN_EVALUATION) and kim["total"] == 10
    jung = w.get("/applications", EV_JUNG).json()
    assert sorted(codes(jung)) == sorted(c for c in IN_EVALUATION if not c.startswith("41"))
    assert jung["total"] == 8


@pytest.mark.routes(LIST)
def test_an_evaluator_list_leaves_out_an_assignment_in_conflict(written: World) -> None:
    w = written
    w.assign(SIHEUNG, "jung@gri.example")  # an assignment the committee would never make
    listed = w.get("/applications", EV_JUNG).json()
    assert SIHEUNG not in codes(listed) and listed["total"] == 8


@pytest.mark.routes(LIST)
def test_the_list_filters_by_track_and_state(written: World) -> None:
    w = written
    disqualified = w.get(f"/applications?track={TRACK_KEY}&state=disqualified", ADMIN).json()
    assert sorted(codes(disqualified)) == sorted([CHANGWON, SUWON]) and disqualified["total"] == 2
    assert {i["state"] for i in disqualified["items"]} == {"disqualified"}
    assert w.get("/applications?track=hub-2024", ADMIN).json() == {"items": [], "total": 0, "next": None}
    assert w.get("/applications?state=disqualified", APP_SEJONG).json()["total"] == 0  # its own is not

    bad = w.get("/applications?state=nonsense", ADMIN)
    assert bad.status_code == 422
    assert "state" in bad.json()["error"] and "'nonsense'" in bad.json()["error"]
    assert w.get("/applications?track=NO_SUCH", ADMIN).status_code == 422


@pytest.mark.routes(LIST)
def test_the_list_pages_with_limit_after_and_next(written: World) -> None:
    w = written
    url: str | None = "/applications?state=written_evaluation&limit=4"
    pages = []
    while url is not None:
        page = w.get(url.removeprefix("http://testserver"), ADMIN).json()
        pages.append(page)
        url = page["next"]
    assert [len(p["items"]) for p in pages] == [4, 4, 2]
    assert {p["total"] for p in pages} == {10}
    ids = [i["id"] for p in pages for i in p["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 10
    assert sorted(codes({"items": [i for p in pages for i in p["items"]]})) == sorted(IN_EVALUATION)
    # `next` keeps the filters and continues after the last id of the page
    assert "state=written_evaluation" in pages[0]["next"] and f"after={ids[3]}" in pages[0]["next"]
    assert w.get(f"/applications?after={ids[-1]}&state=written_evaluation", ADMIN).json()["items"] == []
    assert w.get("/applications?limit=0", ADMIN).status_code == 422
    assert w.get("/applications?after=-1", ADMIN).status_code == 422


# -- one application ----------------------------------------------------------------------


@pytest.mark.routes(DETAIL)
def test_the_detail_has_history_an_etag_and_the_actions_of_the_token(written: World) -> None:
    w = written
    url = f"/applications/{w.id(SEJONG)}"
    admin = w.get(url, ADMIN)
    assert admin.status_code == 200
    body = admin.json()
    assert admin.headers["ETag"] == f'"{w.version(SEJONG)}"' == f'"{body["version"]}"'
    audit = w.rows(AUDIT, AUDIT.c.application_id == w.id(SEJONG))
    assert [h["trigger"] for h in body["history"]] == [a["trigger"] for a in audit]
    assert [h["trigger"] for h in body["history"]] == ["invite", "submit", "start_review", "pass_review"]
    assert body["history"][1]["actor"] == "lh-office" and body["history"][1]["role"] == "admin"
    assert body["state"] == "written_evaluation" and body["receipt_no"].startswith("STRONG-SMALL-2024-")
    assert body["eligible"] is True and {c["rule"] for c in body["checklist"]} >= {"population", "kind"}
    assert [n["notice"] for n in body["notices"]] == ["call_announcement", "receipt_confirmation", "review_passed"]
    assert any(e["kind"] == "assigned" for e in body["events"])
    assert body["actions"] == ["disqualify", "withdraw"]

    mine = w.get(url, APP_SEJONG).json()
    # the applicant: its notices once sent (none is yet), never the committee (issue 17, finding 1)
    assert mine["actions"] == ["withdraw"] and mine["notices"] == [] and mine["events"] == []
    assert [h["trigger"] for h in mine["history"]] == ["invite", "submit", "start_review", "pass_review"]
    evaluator = w.get(url, EV_KIM)
    assert evaluator.status_code == 200 and evaluator.headers["ETag"] == admin.headers["ETag"]
    # an evaluator sees the plan and its history, not the applicant's mail or the committee's events
    assert evaluator.json()["actions"] == [] and evaluator.json()["notices"] == [] and evaluator.json()["events"] == []

    assert w.get(f"/applications/{w.id(CHANGWON)}", ADMIN).json()["actions"] == ["reinstate"]


@pytest.mark.routes(DETAIL)
def test_a_token_reads_only_what_it_may(written: World) -> None:
    w = written
    other = w.get(f"/applications/{w.id(SIHEUNG)}", APP_SEJONG)
    assert other.status_code == 403
    assert other.json() == {
        "error": f"application {w.id(SIHEUNG)} is not 36110's: an applicant token sees its own only"
    }
    conflicted = w.get(f"/applications/{w.id(SIHEUNG)}", EV_JUNG)  # 경기 evaluator, 경기 applicant: never assigned
    assert conflicted.status_code == 403 and "not yours to evaluate" in conflicted.json()["error"]
    w.assign(SIHEUNG, "jung@gri.example")
    forced = w.get(f"/applications/{w.id(SIHEUNG)}", EV_JUNG)
    assert forced.status_code == 403 and "same region" in forced.json()["error"]
    assert w.get(f"/applications/{w.id(CHANGWON)}", EV_KIM).status_code == 403  # disqualified: not assigned

    missing = w.get("/applications/999999", ADMIN)
    assert missing.status_code == 404 and missing.json() == {"error": "no application 999999"}
    assert w.get("/applications/0", ADMIN).status_code == 422
    assert w.get(f"/applications/{2**63}", ADMIN).status_code == 422


@pytest.mark.routes(TIMELINE, DETAIL)
def test_the_timeline_merges_the_detail_in_time_order_as_each_token_may_see_it(written: World) -> None:
    w = written
    url = f"/applications/{w.id(SEJONG)}/timeline"
    admin = w.get(url, ADMIN)
    assert admin.status_code == 200 and admin.headers["ETag"] == f'"{w.version(SEJONG)}"'
    body = admin.json()
    detail = w.get(f"/applications/{w.id(SEJONG)}", ADMIN).json()
    assert (body["id"], body["state"], body["version"]) == (w.id(SEJONG), "written_evaluation", detail["version"])
    rows = body["timeline"]
    assert len(rows) == len(detail["history"]) + len(detail["events"]) + len(detail["notices"])
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
    assert [r["trigger"] for r in rows if r["source"] == "audit"] == [h["trigger"] for h in detail["history"]]
    assert [r["notice"] for r in rows if r["source"] == "notice"] == [n["notice"] for n in detail["notices"]]
    assert any(r["source"] == "event" and r["kind"] == "assigned" for r in rows)
    # a move's audit row comes before the notice it queued, at the same instant
    submitted = next(i for i, r in enumerate(rows) if r.get("trigger") == "submit")
    receipt = next(i for i, r in enumerate(rows) if r.get("notice") == "receipt_confirmation")
    assert submitted < receipt and rows[submitted]["at"] == rows[receipt]["at"]
    assert not any({"seq", "hash", "body_text", "body_html"} & r.keys() for r in rows)  # the chain is verify's

    # the applicant: its state changes, not the committee's events nor mail not sent yet
    mine = w.get(url, APP_SEJONG).json()["timeline"]
    assert {r["source"] for r in mine} == {"audit"}
    assert [r["trigger"] for r in mine] == ["invite", "submit", "start_review", "pass_review"]
    assert w.get(url, EV_KIM).status_code == 200
    other = w.get(f"/applications/{w.id(SIHEUNG)}/timeline", APP_SEJONG)
    assert other.status_code == 403 and "sees its own only" in other.json()["error"]
    assert w.get(f"/applications/{w.id(SIHEUNG)}/timeline", EV_JUNG).status_code == 403
    assert w.get("/applications/999999/timeline", ADMIN).json() == {"error": "no application 999999"}
    assert w.get("/applications/0/timeline", ADMIN).status_code == 422


# -- transitions ---------------------------------------------------------------------------


@pytest.mark.routes(MOVE)
def test_an_applicant_withdraws_its_own_with_the_version(written: World) -> None:
    w = written
    before = w.version(SIHEUNG)
    moved = w.move(SIHEUNG, "withdraw", APP_SIHEUNG)
    assert moved.status_code == 200, moved.text
    assert moved.json() == {
        "application_id": w.id(SIHEUNG),
        "trigger": "withdraw",
        "from_state": "written_evaluation",
        "to_state": "withdrawn",
        "version": before + 1,
        "receipt_no": w.row(SIHEUNG)["receipt_no"],  # the number the applicant knows its plan by
    }
    assert moved.json()["receipt_no"].startswith("STRONG-SMALL-2024-")
    assert moved.headers["ETag"] == f'"{before + 1}"'
    assert w.state(SIHEUNG) == "withdrawn"
    last = w.rows(AUDIT, AUDIT.c.application_id == w.id(SIHEUNG))[-1]
    assert (last["actor"], last["role"], last["trigger"]) == (SIHEUNG, "applicant", "withdraw")
    notices = w.rows(OUTBOX, OUTBOX.c.application_id == w.id(SIHEUNG))
    assert notices[-1]["notice"] == "withdrawal_confirmed"
    receipt_no = moved.json()["receipt_no"]
    assert notices[-1]["subject"].endswith(f"(접수번호 {receipt_no})"), notices[-1]["subject"]
    assert f"신청번호 {w.id(SIHEUNG)}" not in notices[-1]["subject"]


@pytest.mark.routes(MOVE)
def test_the_version_may_come_in_the_body_or_as_a_weak_etag(written: World) -> None:
    w = written
    url = f"/applications/{w.id(SIHEUNG)}/transitions"
    body = {"trigger": "disqualify", "reason": "허위 기재", "version": w.version(SIHEUNG)}
    assert w.post(url, ADMIN, json=body).status_code == 200
    url = f"/applications/{w.id(SEJONG)}/transitions"
    weak = w.post(url, ADMIN_2, json={"trigger": "withdraw"}, headers={"If-Match": f'W/"{w.version(SEJONG)}"'})
    assert weak.status_code == 200 and weak.json()["to_state"] == "withdrawn"
    actors = [(r["actor"], r["trigger"]) for r in w.rows(AUDIT, AUDIT.c.trigger.in_(["disqualify", "withdraw"]))]
    assert ("office-lee", "disqualify") in actors and ("office-choi", "withdraw") in actors


@pytest.mark.routes(MOVE)
def test_a_transition_without_a_version_is_428_and_changes_nothing(written: World) -> None:
    w = written
    url = f"/applications/{w.id(SIHEUNG)}/transitions"
    w.token(APP_SIHEUNG)
    before = w.footprint()
    refused = w.post(url, APP_SIHEUNG, json={"trigger": "withdraw"})
    assert refused.status_code == 428
    assert "If-Match" in refused.json()["error"] and "\n" not in refused.json()["error"]
    assert w.footprint() == before


@pytest.mark.routes(MOVE)
@pytest.mark.parametrize(
    ("headers", "extra", "needle"),
    [
        ({"If-Match": "*"}, {}, "If-Match"),
        ({"If-Match": '"abc"'}, {}, "If-Match"),
        ({"If-Match": '"9999999999"'}, {}, "1 to 2147483647"),
        ({"If-Match": '"3"'}, {"version": 4}, "disagree"),
        ({}, {"version": 0}, "version"),
        ({}, {"version": "three"}, "version"),
    ],
)
def test_a_malformed_version_is_422(
    written: World, headers: dict[str, str], extra: dict[str, object], needle: str
) -> None:
    w = written
    w.token(ADMIN)
    before = w.footprint()
    refused = w.post(
        f"/applications/{w.id(SIHEUNG)}/transitions", ADMIN, json={"trigger": "withdraw", **extra}, headers=headers
    )
    assert refused.status_code == 422 and needle in refused.json()["error"]
    assert w.footprint() == before


@pytest.mark.routes(MOVE)
def test_a_stale_version_is_409_and_changes_nothing(written: World) -> None:
    w = written
    w.token(ADMIN)
    stale = w.version(SIHEUNG) - 1
    before = w.footprint()
    refused = w.post(
        f"/applications/{w.id(SIHEUNG)}/transitions",
        ADMIN,
        json={"trigger": "disqualify", "reason": "늦게 본 화면"},
        headers={"If-Match": f'"{stale}"'},
    )
    assert refused.status_code == 409
    assert f"not {stale}" in refused.json()["error"] and "reload" in refused.json()["error"]
    assert w.footprint() == before


@pytest.mark.routes(DETAIL, MOVE)
def test_two_admins_on_one_version_the_first_wins(world: Callable[..., World], db_url: str) -> None:
    w = world("written", db_url)
    url = f"/applications/{w.id(SIHEUNG)}"
    seen_a = w.get(url, ADMIN).headers["ETag"]
    seen_b = w.get(url, ADMIN_2).headers["ETag"]
    assert seen_a == seen_b
    first = w.post(
        f"{url}/transitions",
        ADMIN,
        json={"trigger": "disqualify", "reason": "사업비 중복"},
        headers={"If-Match": seen_a},
    )
    assert first.status_code == 200, first.text
    second = w.post(f"{url}/transitions", ADMIN_2, json={"trigger": "withdraw"}, headers={"If-Match": seen_b})
    assert second.status_code == 409 and "someone changed it first" in second.json()["error"]
    assert w.state(SIHEUNG) == "disqualified"
    assert w.get(url, ADMIN_2).headers["ETag"] == first.headers["ETag"]
    moves = w.rows(AUDIT, AUDIT.c.application_id == w.id(SIHEUNG), AUDIT.c.trigger.in_(["disqualify", "withdraw"]))
    assert [(m["actor"], m["trigger"], m["reason"]) for m in moves] == [("office-lee", "disqualify", "사업비 중복")]


@pytest.mark.routes(MOVE)
def test_an_illegal_move_is_409_naming_application_state_and_trigger(written: World) -> None:
    w = written
    w.token(ADMIN)
    before = w.footprint()
    refused = w.move(SEJONG, "select", ADMIN)
    assert refused.status_code == 409
    body = refused.json()
    assert body["application"] == str(w.id(SEJONG)) and body["state"] == "written_evaluation"
    assert body["trigger"] == "select" and "allowed from 'written_evaluation'" in body["error"]
    assert w.footprint() == before


@pytest.mark.routes(MOVE)
def test_a_trigger_that_needs_a_reason_is_422_without_one(written: World) -> None:
    w = written
    w.token(ADMIN)
    before = w.footprint()
    for reason in (None, "   "):
        refused = w.move(SIHEUNG, "disqualify", ADMIN, reason=reason)
        assert refused.status_code == 422 and "needs a reason" in refused.json()["error"]
    assert w.footprint() == before
    assert w.move(SIHEUNG, "disqualify", ADMIN, reason="  허위 기재 ").status_code == 200
    assert w.rows(AUDIT, AUDIT.c.application_id == w.id(SIHEUNG))[-1]["reason"] == "허위 기재"


@pytest.mark.routes(MOVE)
def test_an_applicant_may_not_fire_an_admin_trigger_or_touch_another_application(written: World) -> None:
    w = written
    w.token(APP_SEJONG)
    w.token(EV_KIM)
    before = w.footprint()
    admin_only = w.move(SEJONG, "disqualify", APP_SEJONG, reason="스스로")
    assert admin_only.status_code == 403
    assert admin_only.json()["error"] == "role 'applicant' may not fire 'disqualify' (allowed: admin)"
    other = w.move(SIHEUNG, "withdraw", APP_SEJONG)
    assert other.status_code == 403 and "36110's" in other.json()["error"]
    evaluator = w.move(SEJONG, "withdraw", EV_KIM)
    assert evaluator.status_code == 403 and "allowed: admin, applicant" in evaluator.json()["error"]
    assert w.footprint() == before


@pytest.mark.routes(MOVE)
def test_a_system_trigger_or_submit_is_not_a_transition(written: World) -> None:
    w = written
    for trigger in ("start_presentation", "submit", "expire", "object"):
        refused = w.move(SEJONG, trigger, ADMIN)
        assert refused.status_code == 422, trigger
        assert "trigger" in refused.json()["error"] and repr(trigger) in refused.json()["error"]
    unknown = w.post("/applications/999999/transitions", ADMIN, json={"trigger": "withdraw", "version": 1})
    assert unknown.status_code == 404


# -- submissions -------------------------------------------------------------------------------


@pytest.mark.routes(SUBMIT, DETAIL, UPLOAD)
def test_an_applicant_submits_inside_the_window_and_not_a_second_after(
    world: Callable[..., World], db_url: str
) -> None:
    w = world("open", db_url)
    w.clock.set(kst("2024-05-29 17:59:59"))  # the last second
    w.attach(SEJONG, APP_SEJONG)
    made = w.post("/applications", APP_SEJONG, json=plan())
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["receipt_no"] == "STRONG-SMALL-2024-0001" and body["to_state"] == "receipt"
    assert made.headers["Location"] == f"/applications/{body['application_id']}"
    assert made.headers["ETag"] == f'"{body["version"]}"'
    shown = w.get(made.headers["Location"], APP_SEJONG).json()
    assert shown["receipt_no"] == body["receipt_no"] and shown["national_krw"] == 8_000_000_000
    assert shown["project_type"] == "climate_crisis" and shown["years"] == 3
    submit = w.rows(AUDIT, AUDIT.c.application_id == body["application_id"], AUDIT.c.trigger == "submit")
    assert [(a["actor"], a["role"]) for a in submit] == [(SEJONG, "applicant")]
    assert w.rows(OUTBOX, OUTBOX.c.application_id == body["application_id"])[-1]["notice"] == "receipt_confirmation"

    w.clock.set(kst("2024-05-29 18:00:01"))
    w.token(APP_SIHEUNG)
    before = w.footprint()
    late = w.post("/applications", APP_SIHEUNG, json=plan())
    assert late.status_code == 409
    assert late.json()["opens"] == "2024-05-27T09:00:00+09:00"
    assert late.json()["closes"] == "2024-05-29T18:00:00+09:00"
    assert "receipt is closed" in late.json()["error"]
    assert w.footprint() == before


@pytest.mark.routes(SUBMIT)
def test_before_the_window_opens_a_submission_is_409(opened: World) -> None:
    w = opened
    w.clock.set(kst("2024-05-27 09:00") - timedelta(seconds=1))
    early = w.post("/applications", APP_SEJONG, json=plan())
    assert early.status_code == 409 and "not open yet" in early.json()["error"]
    assert early.json()["opens"] == "2024-05-27T09:00:00+09:00"
    assert w.state(SEJONG) == "announcement"


@pytest.mark.routes(SUBMIT, UPLOAD)
def test_a_rescheduled_close_takes_a_later_plan(opened: World) -> None:
    w = opened
    calendars.reschedule(w.app, TRACK_KEY, "receipt_closes", kst("2024-05-31 18:00"), "전산 장애", "lh-office")
    w.clock.set(kst("2024-05-30 10:00"))
    w.attach(SEJONG, APP_SEJONG)  # its documents too, after the old close
    made = w.post("/applications", APP_SEJONG, json=plan())
    assert made.status_code == 201, made.text


@pytest.mark.routes(SUBMIT, UPLOAD)
def test_an_admin_submits_for_an_applicant_and_is_the_actor(opened: World) -> None:
    w = opened
    w.attach(SIHEUNG, ADMIN)
    made = w.post("/applications", ADMIN, json=plan(SIHEUNG))
    assert made.status_code == 201, made.text
    audit = w.rows(AUDIT, AUDIT.c.application_id == made.json()["application_id"], AUDIT.c.trigger == "submit")
    assert [(a["actor"], a["role"]) for a in audit] == [("office-lee", "admin")]
    again = w.post("/applications", ADMIN, json=plan(SIHEUNG))
    assert again.status_code == 409 and again.json()["state"] == "receipt" and again.json()["trigger"] == "submit"

    w.token(ADMIN)
    before = w.footprint()
    nobody = w.post("/applications", ADMIN, json=plan())
    assert nobody.status_code == 422 and "applicant" in nobody.json()["error"]
    unknown = w.post("/applications", ADMIN, json=plan("99999"))
    assert unknown.status_code == 404
    assert w.footprint() == before


@pytest.mark.routes(SUBMIT, UPLOAD)
def test_an_applicant_submits_for_itself_only(opened: World) -> None:
    w = opened
    w.token(APP_SEJONG)
    w.token(EV_KIM)
    before = w.footprint()
    other = w.post("/applications", APP_SEJONG, json=plan(SIHEUNG))
    assert other.status_code == 403
    assert other.json()["error"] == "field applicant = '41390': an applicant token submits for 36110 only"
    evaluator = w.post("/applications", EV_KIM, json=plan(SEJONG))
    assert evaluator.status_code == 403
    assert w.footprint() == before
    w.attach(SEJONG, APP_SEJONG)
    assert w.post("/applications", APP_SEJONG, json=plan(SEJONG)).status_code == 201  # its own code is fine


@pytest.mark.routes(SUBMIT)
@pytest.mark.parametrize(
    ("change", "status", "needles"),
    [
        ({"national_krw": "abc"}, 422, ["national_krw", "'abc'", "send a whole number"]),
        ({"national_krw": -1}, 422, ["national_krw", "-1"]),
        ({"local_krw": None}, 422, ["local_krw"]),
        ({"colour": "red"}, 422, ["colour", "'red'", "remove it"]),
        ({"years": 0}, 422, ["years", "0"]),
        ({"track": "Strong Small"}, 422, ["track", "'Strong Small'"]),
        ({"title": "bell\x07"}, 422, ["title"]),
        ({"project_type": "smart_farm"}, 422, ["'smart_farm'", "climate_crisis"]),
        ({"track": "no-such-track"}, 422, ["no-such-track", "strong-small-2024"]),
    ],
)
def test_an_invalid_plan_is_422_naming_the_field_and_changes_nothing(
    opened: World, change: dict[str, object], status: int, needles: list[str]
) -> None:
    w = opened
    w.token(APP_SEJONG)
    before = w.footprint()
    refused = w.post("/applications", APP_SEJONG, json={k: v for k, v in (plan() | change).items() if v is not None})
    assert refused.status_code == status, refused.text
    error = refused.json()["error"]
    assert "\n" not in error
    for needle in needles:
        assert needle in error, (needle, error)
    assert w.footprint() == before


@pytest.mark.routes(SUBMIT)
def test_a_validation_error_lists_every_problem(opened: World) -> None:
    w = opened
    refused = w.post("/applications", APP_SEJONG, json={"track": TRACK_KEY, "national_krw": "x"})
    assert refused.status_code == 422
    problems = refused.json()["errors"]
    assert {(p["field"], p["in"]) for p in problems} == {("national_krw", "body"), ("local_krw", "body")}
    assert refused.json()["error"] == "; ".join(p["message"] for p in problems)
    missing = next(p for p in problems if p["field"] == "local_krw")
    assert missing["message"] == "body field 'local_krw': Field required; add it"


# -- objections --------------------------------------------------------------------------------


@pytest.mark.routes(OBJECT)
def test_a_disqualified_applicant_objects_inside_the_window(written: World) -> None:
    w = written
    w.clock.set(kst("2024-06-04 09:00"))  # disqualified 06-03 10:00; seven days to object
    url = f"/applications/{w.id(CHANGWON)}/objections"
    filed = w.post(url, APP_CHANGWON, json={"grounds": "  2024.4. 주민등록인구 998,000명  "})
    assert filed.status_code == 201, filed.text
    objection = w.rows(OBJECTION, OBJECTION.c.id == filed.json()["objection_id"])[0]
    assert (objection["filed_by"], objection["grounds"], objection["status"]) == (
        CHANGWON,
        "2024.4. 주민등록인구 998,000명",
        "open",
    )
    event = w.rows(EVENT, EVENT.c.kind == "objection_filed")
    assert [(e["actor"], e["role"], e["application_id"]) for e in event] == [(CHANGWON, "applicant", w.id(CHANGWON))]
    assert w.rows(OUTBOX, OUTBOX.c.application_id == w.id(CHANGWON))[-1]["notice"] == "objection_received"
    again = w.post(url, APP_CHANGWON, json={"grounds": "추가 근거"})
    assert again.status_code == 409 and "already has open objection" in again.json()["error"]
    assert w.count(OBJECTION) == 1


@pytest.mark.routes(OBJECT)
def test_an_objection_outside_the_window_is_409_and_stores_nothing(written: World) -> None:
    w = written  # 06-11 14:00: the window closed on 06-10 10:00
    w.token(APP_CHANGWON)
    before = w.footprint()
    late = w.post(f"/applications/{w.id(CHANGWON)}/objections", APP_CHANGWON, json={"grounds": "늦었지만"})
    assert late.status_code == 409
    assert "objection window closed at 2024-06-10 10:00" in late.json()["error"]
    assert w.footprint() == before


@pytest.mark.routes(OBJECT)
def test_only_the_applicant_or_the_office_may_object(written: World) -> None:
    w = written
    w.clock.set(kst("2024-06-04 09:00"))
    url = f"/applications/{w.id(CHANGWON)}/objections"
    w.token(APP_SEJONG)
    w.token(EV_KIM)
    before = w.footprint()
    assert w.post(url, APP_SEJONG, json={"grounds": "대신"}).status_code == 403
    assert w.post(url, EV_KIM, json={"grounds": "대신"}).status_code == 403
    assert w.post(url, APP_CHANGWON, json={"grounds": "   "}).status_code == 422
    assert w.post(url, APP_CHANGWON, json={}).status_code == 422
    assert w.footprint() == before
    by_office = w.post(url, ADMIN, json={"grounds": "공문 접수"})
    assert by_office.status_code == 201
    assert w.rows(OBJECTION)[0]["filed_by"] == "office-lee"


@pytest.mark.routes(OBJECT)
def test_an_objection_to_an_application_in_evaluation_is_409(written: World) -> None:
    w = written
    refused = w.post(f"/applications/{w.id(SEJONG)}/objections", APP_SEJONG, json={"grounds": "?"})
    assert refused.status_code == 409
    assert refused.json()["state"] == "written_evaluation" and refused.json()["trigger"] == "object"
    assert w.count(OBJECTION) == 0


def test_the_refusal_of_an_objection_says_why_not_that_the_state_is_final(written: World) -> None:
    w = written
    refused = w.post(f"/applications/{w.id(SEJONG)}/objections", APP_SEJONG, json={"grounds": "?"})
    assert "is final" not in refused.json()["error"]
    assert "disqualified" in refused.json()["error"]


# -- free text (issue 19, wording): one rule for the CLI and the API ---------------------------

CONTROL_REFUSALS = [
    ("a\x00b", "'a\\x00b': has a control character (U+0000, NUL); delete it"),
    ("a\rb", "'a\\rb': has a control character (U+000D, carriage return); delete it"),
    ("red \x1b[31m", "'red \\x1b[31m': has a control character (U+001B, escape); delete it"),
]


@pytest.mark.routes(MOVE, SUBMIT, OBJECT)
def test_a_control_character_is_refused_by_name_and_field_not_by_a_pattern(written: World) -> None:
    w = written
    before = w.footprint()
    url = f"/applications/{w.id(SIHEUNG)}/transitions"
    for value, expected in CONTROL_REFUSALS:
        body = {"trigger": "withdraw", "reason": value, "version": w.version(SIHEUNG)}
        refused = w.post(url, ADMIN, json=body)
        assert refused.status_code == 422
        assert refused.json()["error"] == f"body field 'reason' = {expected}", refused.json()
        assert "pattern" not in refused.text and "\\x00-" not in refused.text
    submitted = w.post("/applications", ADMIN, json=plan(SUWON, title="스마트\x07시티"))
    assert submitted.status_code == 422
    assert submitted.json()["error"] == (
        "body field 'title' = '스마트\\x07시티': has a control character (U+0007); delete it"
    )
    objected = w.post(f"/applications/{w.id(CHANGWON)}/objections", APP_CHANGWON, json={"grounds": "\x00"})
    assert objected.status_code == 422
    assert (
        objected.json()["error"] == "body field 'grounds' = '\\x00': has a control character (U+0000, NUL); delete it"
    )
    assert w.footprint() == before
    kept = w.post(
        url, ADMIN, json={"trigger": "withdraw", "reason": "서류 미비\n\t(첨부 누락)", "version": w.version(SIHEUNG)}
    )
    assert kept.status_code == 200, kept.text  # a line break and a tab are text, as in the CLI
    assert w.rows(AUDIT, AUDIT.c.application_id == w.id(SIHEUNG))[-1]["reason"] == "서류 미비\n\t(첨부 누락)"
