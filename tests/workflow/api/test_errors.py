"""The API words domain errors its own way (issue 20): it names the body field
that is missing or wrong, returns the field and the value given, and never
speaks the CLI's flags ('--reason')."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gongmo.states.errors import InvalidInput, MissingReason
from gongmo.workflow.api.errors import say
from tests.workflow.api.conftest import ADMIN, APP_SEJONG, SEJONG, SIHEUNG, TRACK_KEY, World

MOVE = "POST /applications/{application_id}/transitions"
SUBMIT = "POST /applications"


def refusal(answer: httpx.Response, status: int = 422) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    assert "--" not in body["error"], body["error"]
    return body


@pytest.mark.routes(MOVE)
def test_a_missing_reason_names_the_body_field(written: World) -> None:
    w = written
    w.token(ADMIN)
    body = refusal(w.move(SIHEUNG, "disqualify", ADMIN))
    assert body["field"] == "reason" and body["value"] is None
    assert body["error"] == (
        '\'disqualify\' needs a reason: add {"reason": "..."} (the applicant\'s notice carries it)'
    )


@pytest.mark.routes(MOVE)
def test_a_waitlist_position_with_another_trigger_names_waitlist_position(written: World) -> None:
    w = written
    w.token(ADMIN)
    before = w.footprint()
    json = {"trigger": "disqualify", "reason": "허위 기재", "waitlist_position": 2}
    headers = {"If-Match": f'"{w.version(SIHEUNG)}"'}
    body = refusal(w.post(f"/applications/{w.id(SIHEUNG)}/transitions", ADMIN, json=json, headers=headers))
    assert body["field"] == "waitlist_position" and body["value"] == 2
    assert body["error"].startswith("body field 'waitlist_position' = 2: a waitlist position is given only")
    assert w.footprint() == before


@pytest.mark.routes(SUBMIT)
def test_a_bad_amount_names_national_krw(opened: World) -> None:
    w = opened
    w.token(APP_SEJONG)
    before = w.footprint()
    plan = {"track": TRACK_KEY, "national_krw": 0, "local_krw": 8_000_000_000, "project_type": "climate_crisis"}
    body = refusal(w.post("/applications", APP_SEJONG, json=plan))
    assert body["field"] == "national_krw" and body["value"] == 0
    assert body["error"].startswith("body field 'national_krw' = 0: the national share must be a positive amount")
    assert w.footprint() == before and w.state(SEJONG) == "announcement"


def test_the_api_wording_of_each_token() -> None:
    exc = InvalidInput(
        "{field:skip} k: {field} is empty, e.g. {example}; {given}", field="reason", value="", shown="''"
    )
    assert say(exc) == "body field 'skip' k: body field 'reason' is empty, e.g. {\"reason\": \"...\"};" + (
        " body field 'reason' = ''"
    )
    assert "--" not in say(MissingReason("withdraw"))
