"""Who sees what (issue 17): the 2024 strong-and-small scenario walked through
scoring, selection, the embargo and the release, and at each step what the
office, an applicant, an evaluator, a monitoring token and an anonymous
caller read through the API and `gongmo show` (states/visibility.py is the
rule; workflow/visibility.py reads through it)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gongmo.notifications.transport import MaildirTransport
from gongmo.workflow.core.models import OUTBOX
from gongmo.workflow.outbox.dispatch import Mailer
from tests.conftest import config_copy, run_cli
from tests.workflow import contest_2024 as sc
from tests.workflow.api.conftest import (
    ADMIN,
    APP_SEJONG,
    APP_SIHEUNG,
    EV_KIM,
    IN_EVALUATION,
    KIM,
    SEJONG,
    SIHEUNG,
    TRACK_KEY,
    World,
)

METRICS = ("metrics", "prometheus")
CHEONGJU, YEOSU = "43110", "46130"  # waitlisted first; below the minimum
APP_CHEONGJU = ("applicant", CHEONGJU)
RESULT_STATES = {"selected", "waitlisted", "not_selected"}
COMMITTEE_EVENTS = {"assigned", "unassigned", "scored", "score_corrected", "conflict_declared"}


def detail(w: World, code: str, who: Any) -> dict[str, Any]:
    answer = w.get(f"/applications/{w.id(code)}", who)
    assert answer.status_code == 200, answer.text
    assert not any(email in answer.text for email in sc.EVALUATORS) or who == ADMIN  # no evaluator named
    return dict(answer.json())


def listed(w: World, who: Any, query: str = "") -> dict[str, Any]:
    answer = w.get(f"/applications?track={TRACK_KEY}{query}", who)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def counts(w: World, who: Any) -> dict[str, float]:
    text = w.get("/metrics", who).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "gongmo_applications" and s.labels["track"] == TRACK_KEY:
                out[s.labels["state"]] = s.value
    return out


def show(w: World, capsys: pytest.CaptureFixture[str], tmp_path: Path, code: str, *as_who: str) -> dict[str, Any]:
    config = config_copy(tmp_path, database_url=str(w.app.db.url.render_as_string(hide_password=False)))
    argv = ["--config", str(config), "show", str(w.id(code)), "--json", *(["--as", *as_who] if as_who else [])]
    status, out, err = run_cli(capsys, *argv)
    assert status == 0, err
    return dict(json.loads(out))


def hidden_result(body: dict[str, Any]) -> None:
    """What an applicant or an evaluator reads of an application whose result is under embargo."""
    assert (body["state"], body["result_pending"]) == ("presentation_evaluation", True)
    assert (body["score"], body["rank"], body["waitlist_position"], body["result"]) == (None, None, None, None)
    assert not [h for h in body["history"] if h["to_state"] in RESULT_STATES or h["from_state"] in RESULT_STATES]
    assert "rank" not in json.dumps(body["history"]) and all(n["state"] == "sent" for n in body["notices"])


def essence(body: dict[str, Any]) -> dict[str, Any]:
    """What a reader is told of an application, whatever the interface's formatting."""
    return {
        **{k: body[k] for k in ("state", "result_pending", "score", "rank", "waitlist_position", "result")},
        "history": [(h["trigger"], h["from_state"], h["to_state"]) for h in body["history"]],
        "events": [e["kind"] for e in body["events"]],
        "notices": [(n["notice"], n["state"]) for n in body["notices"]],
        "actions": body["actions"],
    }


def deliver(w: World, tmp_path: Path) -> None:
    asyncio.run(Mailer(w.app, MaildirTransport(tmp_path / "maildir"), "test").deliver_due())


STEPS = ("evaluation", "embargo", "released")


def walk(w: World, tmp_path: Path, check: Callable[[str], None]) -> None:
    """The scenario from the last sheet to the release, calling check(step) at each step."""
    deliver(w, tmp_path)  # what was due so far went out: an applicant reads its sent notices
    check("evaluation")  # every sheet entered, nothing decided
    assert w.post(f"/tracks/{TRACK_KEY}/selection", ADMIN, json={"confirm": True}).status_code == 200
    check("embargo")  # the results held
    assert w.get(f"/tracks/{TRACK_KEY}/outbox/held?notice=results", ADMIN).json()["count"] == 10
    released = w.post(f"/tracks/{TRACK_KEY}/outbox/release", ADMIN, json={"notice": "results", "count": 10})
    assert released.status_code == 200 and released.json()["released"] == 10
    deliver(w, tmp_path)
    check("released")


def every_reader(w: World, who: Any) -> dict[str, int]:
    """The status each reader of the issue answers this caller (the application: 세종's)."""
    app = w.id(SEJONG)
    return {
        "list": w.get(f"/applications?track={TRACK_KEY}", who).status_code,
        "detail": w.get(f"/applications/{app}", who).status_code,
        "scores": w.get(f"/applications/{app}/scores", who).status_code,
        "ranking": w.get(f"/tracks/{TRACK_KEY}/ranking", who).status_code,
        "outbox": w.get("/outbox", who).status_code,
        "metrics": w.get("/metrics", who).status_code,
    }


WALKED = pytest.mark.routes(
    "GET /applications",
    "GET /applications/{application_id}",
    "GET /applications/{application_id}/scores",
    "GET /tracks/{track}/ranking",
    "GET /outbox",
    "GET /metrics",
    "POST /tracks/{track}/selection",
    "GET /tracks/{track}/outbox/held",
    "POST /tracks/{track}/outbox/release",
)


@WALKED
def test_the_office_sees_everything_at_every_step(
    world: Callable[..., World], db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    w = world("presentation", db_url)

    def check(step: str) -> None:
        assert every_reader(w, ADMIN) == dict.fromkeys(
            ("list", "detail", "scores", "ranking", "outbox", "metrics"), 200
        )
        office = detail(w, SEJONG, ADMIN)
        assert {e["kind"] for e in office["events"]} >= {"assigned", "scored"}
        assert len({s["evaluator"] for s in w.get(f"/applications/{w.id(SEJONG)}/scores", ADMIN).json()}) == 5
        cli = show(w, capsys, tmp_path, SEJONG)
        assert (cli["state"], cli["rank"], cli["score"]) == (office["state"], office["rank"], office["score"])
        if step == "evaluation":
            assert (office["state"], office["rank"], office["result"]) == ("presentation_evaluation", None, None)
            return
        assert (office["state"], office["rank"], office["score"], office["result_pending"]) == (
            "selected",
            1,
            "90.53",
            False,
        )
        assert office["result"]["committee_score"] == "90.53" and office["result"]["ranked"] == 10
        held = "held" if step == "embargo" else "sent"
        assert [n["state"] for n in office["notices"] if n["notice"] == "selected"] == [held]
        assert listed(w, ADMIN, "&state=selected")["total"] == 3
        assert counts(w, ADMIN) == {
            "selected": 3,
            "waitlisted": 2,
            "not_selected": 5,
            "disqualified": 2,
            "expired": 14,
        }

    walk(w, tmp_path, check)


@WALKED
def test_an_applicant_sees_its_own_and_its_result_only_after_the_release(
    world: Callable[..., World], db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    w = world("presentation", db_url)

    def check(step: str) -> None:
        assert every_reader(w, APP_SEJONG) == {
            "list": 200,
            "detail": 200,
            "scores": 403,
            "ranking": 403,
            "outbox": 403,
            "metrics": 403,
        }
        assert w.get(f"/applications/{w.id(SIHEUNG)}", APP_SEJONG).status_code == 403
        mine = detail(w, SEJONG, APP_SEJONG)
        cli = show(w, capsys, tmp_path, SEJONG, "applicant:36110")
        assert essence(cli) == essence(mine)  # gongmo show --as reads through the same rule
        assert {e["kind"] for e in mine["events"]} & COMMITTEE_EVENTS == set()  # finding 1
        assert set(mine["notices"][0]) == {"id", "notice", "language", "state", "subject", "created_at", "sent_at"}
        (item,) = listed(w, APP_SEJONG)["items"]
        if step == "evaluation":
            assert (mine["state"], mine["result_pending"], mine["score"], mine["result"]) == (
                "presentation_evaluation",
                False,
                None,
                None,
            )
            assert [n["notice"] for n in mine["notices"]] == [
                "call_announcement",
                "receipt_confirmation",
                "review_passed",
            ]
        elif step == "embargo":
            hidden_result(mine)  # finding 2: state, rank, score, position, held notice
            hidden_result(detail(w, CHEONGJU, APP_CHEONGJU))
            assert not [e for e in mine["events"] if e["kind"] == "selection"]
            assert "90.53" not in w.get(f"/applications/{w.id(SEJONG)}", APP_SEJONG).text
            assert (item["state"], item["score"], item["rank"], item["result_pending"]) == (
                "presentation_evaluation",
                None,
                None,
                True,
            )
            assert listed(w, APP_SEJONG, "&state=selected")["total"] == 0  # a filter tells nothing either
            assert listed(w, APP_SEJONG, "&state=presentation_evaluation")["total"] == 1
        else:
            assert (mine["state"], mine["rank"], mine["score"], mine["result_pending"]) == (
                "selected",
                1,
                "90.53",
                False,
            )
            assert mine["result"] == {
                "committee_score": "90.53",
                "written_score": str(sc.expected(SEJONG, "written")),
                "presentation_score": str(sc.expected(SEJONG, "presentation")),
                "rank": 1,
                "ranked": 10,
                "minimum_score": "70",
                "last_selected_score": detail(w, "44130", ADMIN)["score"],
                "waitlist_position": None,
            }
            assert (mine["notices"][-1]["notice"], mine["notices"][-1]["state"]) == ("selected", "sent")
            assert detail(w, CHEONGJU, APP_CHEONGJU)["waitlist_position"] == 1
            assert (item["state"], item["rank"]) == ("selected", 1)

    walk(w, tmp_path, check)


@WALKED
def test_an_evaluator_sees_its_assignments_and_own_sheets_and_no_result_before_the_release(
    world: Callable[..., World], db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    w = world("presentation", db_url)

    def check(step: str) -> None:
        assert every_reader(w, EV_KIM) == {
            "list": 200,
            "detail": 200,
            "scores": 200,
            "ranking": 403,
            "outbox": 403,
            "metrics": 403,
        }
        sheets = w.get(f"/applications/{w.id(SEJONG)}/scores", EV_KIM).json()
        assert {s["evaluator"] for s in sheets} == {KIM} and len(sheets) == 2  # its own written and presentation
        seen = detail(w, SEJONG, EV_KIM)
        cli = show(w, capsys, tmp_path, SEJONG, f"evaluator:{KIM}")
        assert essence(cli) == essence(seen)
        assert (seen["events"], seen["notices"]) == ([], [])
        kim = listed(w, EV_KIM)
        assert kim["total"] == len(IN_EVALUATION) == 10  # all ten scored; 창원 and 수원 were disqualified
        if step == "evaluation":
            assert (seen["state"], seen["result_pending"], seen["score"]) == ("presentation_evaluation", False, None)
        elif step == "embargo":
            hidden_result(seen)
            hidden_result(detail(w, YEOSU, EV_KIM))
            assert {(i["state"], i["score"], i["rank"]) for i in kim["items"]} == {
                ("presentation_evaluation", None, None)
            }
        else:
            assert (seen["state"], seen["rank"], seen["score"]) == ("selected", 1, "90.53")
            assert {i["state"] for i in kim["items"]} == RESULT_STATES

    walk(w, tmp_path, check)


@WALKED
def test_a_metrics_token_counts_and_an_anonymous_caller_sees_no_decision(
    world: Callable[..., World], db_url: str, tmp_path: Path
) -> None:
    w = world("presentation", db_url)

    def check(step: str) -> None:
        assert every_reader(w, METRICS) == {
            "list": 403,
            "detail": 403,
            "scores": 403,
            "ranking": 403,
            "outbox": 403,
            "metrics": 200,
        }
        assert set(every_reader(w, None).values()) == {401}
        health = w.get("/healthz", None).json()
        assert "worker" not in (health.get("scheduler") or {})
        assert not any(state in w.get("/healthz", None).text for state in RESULT_STATES)
        counted = counts(w, METRICS)
        if step == "released":
            assert counted == {"selected": 3, "waitlisted": 2, "not_selected": 5, "disqualified": 2, "expired": 14}
        else:
            assert counted == {"presentation_evaluation": 10, "disqualified": 2, "expired": 14}

    walk(w, tmp_path, check)


@pytest.mark.routes("POST /applications/{application_id}/transitions", "POST /tracks/{track}/outbox/release")
def test_a_withdrawal_during_the_embargo_holds_the_promotion_and_cancels_its_own_result(
    world: Callable[..., World], db_url: str, tmp_path: Path
) -> None:
    """Findings 3 and 4: 시흥 (selected) withdraws while the results are held."""
    w = world("presentation", db_url)
    assert w.post(f"/tracks/{TRACK_KEY}/selection", ADMIN, json={"confirm": True}).status_code == 200
    assert w.move(SIHEUNG, "withdraw", APP_SIHEUNG).status_code == 200
    assert w.state(CHEONGJU) == "selected"  # promoted from the waitlist

    def notice(code: str, name: str) -> dict[str, Any]:
        (row,) = w.rows(OUTBOX, OUTBOX.c.application_id == w.id(code), OUTBOX.c.notice == name)
        return row

    assert notice(CHEONGJU, "promoted")["state"] == "held"  # waits with the others (finding 3)
    assert (notice(CHEONGJU, "waitlisted")["state"], notice(CHEONGJU, "waitlisted")["superseded_by"]) == (
        "cancelled",
        "promoted",
    )
    selected = notice(SIHEUNG, "selected")  # never "selected" after "withdrawal confirmed" (finding 4)
    assert (selected["state"], selected["superseded_by"]) == ("cancelled", "withdrawal_confirmed")
    assert notice(SIHEUNG, "withdrawal_confirmed")["state"] == "pending"  # its own act: told at once
    deliver(w, tmp_path)
    assert (
        w.count(
            OUTBOX,
            OUTBOX.c.notice.in_(["selected", "promoted", "waitlisted", "not_selected"]),
            OUTBOX.c.state == "sent",
        )
        == 0
    )
    hidden_result(detail(w, CHEONGJU, APP_CHEONGJU))
    mine = detail(w, SIHEUNG, APP_SIHEUNG)
    assert mine["state"] == "withdrawn" and mine["history"][-1]["from_state"] == "presentation_evaluation"

    count = w.get(f"/tracks/{TRACK_KEY}/outbox/held?notice=results", ADMIN).json()["count"]
    assert count == 2 + 1 + 1 + 5  # selected (시흥's cancelled), promoted, waitlisted (화성), not selected
    w.post(f"/tracks/{TRACK_KEY}/outbox/release", ADMIN, json={"notice": "results", "count": count})
    assert notice(SIHEUNG, "selected")["state"] == "cancelled"
    assert notice(CHEONGJU, "promoted")["state"] == "pending"
    assert detail(w, CHEONGJU, APP_CHEONGJU)["state"] == "selected"


@pytest.mark.routes("POST /tracks/{track}/outbox/release")
def test_a_release_of_one_kind_keeps_the_embargo_until_the_last(presentation: World) -> None:
    w = presentation
    w.post(f"/tracks/{TRACK_KEY}/selection", ADMIN, json={"confirm": True})
    for notice, n in (("selected", 3), ("waitlisted", 2)):
        assert (
            w.post(f"/tracks/{TRACK_KEY}/outbox/release", ADMIN, json={"notice": notice, "count": n}).status_code == 200
        )
        hidden_result(detail(w, SEJONG, APP_SEJONG))
    w.post(f"/tracks/{TRACK_KEY}/outbox/release", ADMIN, json={"notice": "not_selected", "count": 5})
    assert detail(w, SEJONG, APP_SEJONG)["state"] == "selected"


# -- each finding on its own ------------------------------------------------------------------


@pytest.mark.routes("GET /applications/{application_id}", "GET /applications", "GET /metrics")
def test_finding_2_a_held_result_is_shown_to_no_one_but_the_office(presentation: World) -> None:
    w = presentation
    w.post(f"/tracks/{TRACK_KEY}/selection", ADMIN, json={"confirm": True})
    for code, who in ((SEJONG, APP_SEJONG), (CHEONGJU, APP_CHEONGJU), (SEJONG, EV_KIM)):
        body = w.get(f"/applications/{w.id(code)}", who).json()
        assert (body["state"], body["rank"], body["score"], body["waitlist_position"]) == (
            "presentation_evaluation",
            None,
            None,
            None,
        ), (code, who)
        assert not [n for n in body["notices"] if n["state"] == "held"]
    assert {i["score"] for i in w.get("/applications", EV_KIM).json()["items"]} == {None}
    assert w.get("/metrics", None).status_code == 401


@pytest.mark.routes("POST /applications/{application_id}/transitions")
def test_finding_4_a_withdrawal_cancels_its_own_held_result(presentation: World) -> None:
    w = presentation
    w.post(f"/tracks/{TRACK_KEY}/selection", ADMIN, json={"confirm": True})
    assert w.move(SIHEUNG, "withdraw", APP_SIHEUNG).status_code == 200
    (selected,) = w.rows(OUTBOX, OUTBOX.c.application_id == w.id(SIHEUNG), OUTBOX.c.notice == "selected")
    assert selected["state"] == "cancelled"
