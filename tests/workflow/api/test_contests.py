"""Contests, tracks and their calendars, applicants and the caller
(workflow/api/contests.py); and the check that every route has a test."""

from __future__ import annotations

import importlib
import inspect

import pytest

from gongmo.workflow.core.models import API_TOKEN, APPLICANT
from gongmo.workflow.deadlines import changes as calendars
from tests.conftest import kst
from tests.workflow.api.conftest import (
    ADMIN,
    APP_SEJONG,
    EV_JUNG,
    EV_KIM,
    JUNG,
    SEJONG,
    SUWON,
    TRACK_KEY,
    World,
    documented_routes,
)

# The modules whose tests carry routes(...) marks (test_fuzz.py is another's and marks nothing).
MODULES = ("test_applications", "test_auth", "test_contests", "test_documents", "test_evaluation", "test_operations")


def declared_routes() -> dict[str, list[str]]:
    """'METHOD /path' -> the tests marked with it, over MODULES."""
    found: dict[str, list[str]] = {}
    for name in MODULES:
        module = importlib.import_module(f"tests.workflow.api.{name}")
        for test_name, test in inspect.getmembers(module, inspect.isfunction):
            if not test_name.startswith("test_"):
                continue
            for mark in getattr(test, "pytestmark", []):
                if mark.name == "routes":
                    for route in mark.args:
                        found.setdefault(route, []).append(f"{name}::{test_name}")
    return found


def test_every_route_in_the_openapi_document_has_a_test() -> None:
    """Each documented route x method is named by at least one test's
    routes(...) mark, and each such test must reach it (conftest checks it
    when the test passes): a new route without a test fails here."""
    documented = set(documented_routes())
    declared = declared_routes()
    # POST /outbox/retry (issue 18); a plan's documents: upload, list, download; its answers: put, get (issue 21);
    # an application's timeline (issue 23)
    assert len(documented) == 30
    assert sorted(documented - set(declared)) == [], "routes without a test"
    assert sorted(set(declared) - documented) == [], "tests marked with routes the API does not have"


# -- the caller ---------------------------------------------------------------------------------------


@pytest.mark.routes("GET /me")
def test_me_names_the_token_s_role_and_subject(written: World) -> None:
    w = written
    for who in (ADMIN, EV_JUNG, APP_SEJONG):
        me = w.get("/me", who)
        assert me.status_code == 200
        token_id = tokens_of(w, who)
        assert me.json() == {"role": who[0], "subject": who[1], "token_id": token_id}
    upper = ("evaluator", JUNG.upper())
    assert w.get("/me", upper).json()["subject"] == JUNG  # an evaluator's e-mail is kept in lower case


def tokens_of(w: World, who: tuple[str, str]) -> int:
    rows = w.rows(API_TOKEN, API_TOKEN.c.role == who[0], API_TOKEN.c.subject == who[1])
    assert len(rows) == 1
    return int(rows[0]["id"])


# -- contests and tracks ----------------------------------------------------------------------------


@pytest.mark.routes("GET /contests", "GET /tracks/{track}")
def test_every_role_reads_the_contests_with_calendars_in_the_contest_s_zone(written: World) -> None:
    w = written
    listed = w.get("/contests", EV_KIM)
    assert listed.status_code == 200
    contests = listed.json()
    assert w.get("/contests", APP_SEJONG).json() == contests == w.get("/contests", ADMIN).json()
    config = w.app.loaded.config
    assert [c["key"] for c in contests] == [c.key for c in config.contests]
    tracks = {t["key"]: (c, t) for c in contests for t in c["tracks"]}
    contest, track = tracks[TRACK_KEY]
    assert contest["timezone"] == "Asia/Seoul" and contest["national_budget_krw"] > 0
    assert track["slots"] == 3 and track["eligibility"]["population_below"] == 1_000_000
    assert track["funding"]["national_cap_krw"] == 8_000_000_000
    assert track["calendar"]["receipt_opens"] == "2024-05-27T09:00:00+09:00"
    assert track["calendar"]["receipt_closes"] == "2024-05-29T18:00:00+09:00"
    assert all(v.endswith("+09:00") for t in tracks.values() for v in t[1]["calendar"].values())

    one = w.get(f"/tracks/{TRACK_KEY}", APP_SEJONG)
    assert one.status_code == 200 and one.json() == {**track, "contest": contest["key"]}


@pytest.mark.routes("GET /tracks/{track}")
def test_a_track_shows_its_calendar_as_rescheduled(opened: World) -> None:
    w = opened
    calendars.reschedule(w.app, TRACK_KEY, "receipt_closes", kst("2024-05-31 18:00"), "전산 장애", "lh-office")
    calendar = w.get(f"/tracks/{TRACK_KEY}", ADMIN).json()["calendar"]
    assert calendar["receipt_closes"] == "2024-05-31T18:00:00+09:00"
    assert calendar["receipt_opens"] == "2024-05-27T09:00:00+09:00"


@pytest.mark.routes("GET /contests", "GET /tracks/{track}")
def test_a_rescheduled_milestone_shows_who_why_and_the_closed_day_it_falls_on(opened: World) -> None:
    """Issue 19, point 10: the calendar as the database holds it, with every closed-day warning."""
    w = opened
    calendars.reschedule(w.app, TRACK_KEY, "review_ends", kst("2024-06-06 18:00"), "위원 일정", "lh-office")
    track = w.get(f"/tracks/{TRACK_KEY}", ADMIN).json()
    assert track["calendar"]["review_ends"] == "2024-06-06T18:00:00+09:00"
    assert track["rescheduled"] == {
        "review_ends": [
            {
                "from": "2024-06-05T18:00:00+09:00",
                "to": "2024-06-06T18:00:00+09:00",
                "by": "lh-office",
                "at": track["rescheduled"]["review_ends"][0]["at"],
                "why": "위원 일정",
            }
        ]
    }
    assert track["closed_days"] == [{"milestone": "review_ends", "at": "2024-06-06T18:00:00+09:00", "why": "현충일"}]
    listed = {t["key"]: t for c in w.get("/contests", ADMIN).json() for t in c["tracks"]}
    assert listed[TRACK_KEY]["closed_days"] == track["closed_days"]
    assert listed["hub-2024"]["closed_days"] == [] and listed["hub-2024"]["rescheduled"] == {}


@pytest.mark.routes("GET /tracks/{track}")
def test_an_unknown_or_malformed_track_is_refused(written: World) -> None:
    w = written
    unknown = w.get("/tracks/no-such-track", ADMIN)
    assert unknown.status_code == 404 and unknown.json() == {"error": "no track 'no-such-track': see GET /contests"}
    malformed = w.get("/tracks/Strong_Small", ADMIN)
    assert malformed.status_code == 422 and "'Strong_Small'" in malformed.json()["error"]
    assert w.get(f"/tracks/{TRACK_KEY}", None).status_code == 401


# -- applicants ----------------------------------------------------------------------------------------


@pytest.mark.routes("GET /applicants", "GET /applicants/{code}")
def test_the_office_reads_every_applicant_and_an_applicant_itself(written: World) -> None:
    w = written
    everyone = w.get("/applicants", ADMIN).json()
    stored = sorted(w.rows(APPLICANT), key=lambda r: r["code"])
    assert [a["code"] for a in everyone] == [r["code"] for r in stored]
    assert everyone[0] == {k: v for k, v in stored[0].items() if k != "id"}
    assert all("id" not in a for a in everyone)

    itself = w.get("/applicants", APP_SEJONG).json()
    assert [a["code"] for a in itself] == [SEJONG] and itself[0]["name"] == "세종특별자치시"
    assert w.get(f"/applicants/{SEJONG}", APP_SEJONG).json() == itself[0]
    other = w.get(f"/applicants/{SUWON}", APP_SEJONG)
    assert other.status_code == 403
    assert other.json() == {"error": f"applicant {SUWON} is not {SEJONG}: an applicant token sees itself only"}
    assert w.get(f"/applicants/{SUWON}", ADMIN).json()["population"] == 1_190_987

    assert w.get("/applicants", EV_KIM).status_code == 403
    assert w.get(f"/applicants/{SEJONG}", EV_KIM).status_code == 403
    missing = w.get("/applicants/99999", ADMIN)
    assert missing.status_code == 404 and missing.json() == {"error": "no applicant 99999"}
    assert w.get("/applicants/4111", ADMIN).status_code == 422
    assert w.get("/applicants/4111x", ADMIN).status_code == 422
