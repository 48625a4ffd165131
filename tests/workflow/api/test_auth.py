"""Who may call what (workflow/api/deps.py) and how a refusal reads
(workflow/api/errors.py)."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from gongmo.states.errors import (
    Conflict,
    GongmoError,
    IllegalMove,
    InvalidInput,
    MissingReason,
    NotFound,
    NotPermitted,
    OutsideWindow,
)
from gongmo.workflow.api import errors
from gongmo.workflow.core import tokens
from gongmo.workflow.core.config import ConfigError
from gongmo.workflow.core.db import DatabaseError, write
from gongmo.workflow.core.models import API_TOKEN, APPLICANT, APPLICANT_CONTACT
from gongmo.workflow.stages import selection
from tests.workflow.api.conftest import (
    ADMIN,
    APP_SEJONG,
    APP_SIHEUNG,
    EV_KIM,
    SEJONG,
    SIHEUNG,
    TRACK_KEY,
    World,
    documented_routes,
)

OPEN_ROUTES = {"GET /ping", "GET /healthz"}  # /metrics needs a metrics or admin token (issue 17)
ADMIN_ONLY = [
    ("GET", "/deadlines"),
    ("GET", "/outbox"),
    ("GET", "/outbox/1"),
    ("POST", "/outbox/1/retry"),
    ("GET", f"/tracks/{TRACK_KEY}/ranking"),
    ("POST", f"/tracks/{TRACK_KEY}/selection"),
    ("GET", f"/tracks/{TRACK_KEY}/outbox/held?notice=selected"),
    ("POST", f"/tracks/{TRACK_KEY}/outbox/release"),
]
BODIES = {
    "/selection": {"confirm": True},
    "/outbox/release": {"notice": "review_passed", "count": 1},
}


def concrete(route: str) -> tuple[str, str]:
    """'GET /applications/{application_id}' -> ('GET', '/applications/1')."""
    method, path = route.split(" ", 1)
    values = {"application_id": "1", "outbox_id": "1", "track": TRACK_KEY, "code": SEJONG, "part": "written"}
    values |= {"kind": "plan"}  # a plan's documents (issue 21)
    return method, re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def body_for(path: str) -> dict[str, object] | None:
    return next((b for end, b in BODIES.items() if path.endswith(end)), None)


# -- 401 ---------------------------------------------------------------------------------------------


def test_every_route_but_ping_health_and_metrics_needs_a_token(written: World) -> None:
    w = written
    w.token(ADMIN)
    before = w.footprint()
    guarded = sorted(set(documented_routes()) - OPEN_ROUTES)
    for route in guarded:
        method, path = concrete(route)
        for who, headers in ((None, {}), (None, {"Authorization": "Basic b2ZmaWNlOmxlZQ=="}), ("gmo_not-a-token", {})):
            refused = w.call(method, path, who, headers=headers, json={})
            assert refused.status_code == 401, (route, refused.text)
            assert refused.headers["WWW-Authenticate"] == "Bearer", route
            assert "\n" not in refused.json()["error"]
    assert w.footprint() == before
    for route in sorted(OPEN_ROUTES):
        assert w.call(*concrete(route), None).status_code in (200, 503), route  # 503: no scheduler here


@pytest.mark.routes("GET /me")
def test_an_unknown_token_is_401_and_the_answer_shows_nothing_of_it(written: World) -> None:
    w = written
    real = w.token(ADMIN)
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    refused = w.get("/me", forged)
    assert refused.status_code == 401
    assert refused.json() == {"error": "the API token is unknown or revoked: ask the office for a new one"}
    assert forged[:12] not in refused.text and forged[4:10] not in refused.text  # finding 6 of issue 17
    missing = w.get("/me", None)
    assert missing.status_code == 401 and "Authorization: Bearer <token>" in missing.json()["error"]


@pytest.mark.routes("GET /me", "POST /applications/{application_id}/transitions")
def test_a_revoked_token_is_401_at_once_and_writes_nothing(written: World) -> None:
    w = written
    token = w.token(APP_SIHEUNG)
    assert w.get("/me", token).status_code == 200
    token_id = w.get("/me", token).json()["token_id"]
    tokens.revoke(w.app, token_id)
    before = w.footprint()
    assert w.get("/me", token).status_code == 401
    refused = w.move(SIHEUNG, "withdraw", token)
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
    assert w.footprint() == before and w.state(SIHEUNG) == "written_evaluation"


@pytest.mark.routes("GET /me")
def test_a_token_whose_applicant_is_gone_no_longer_authenticates(written: World) -> None:
    w = written
    seoul = ("applicant", "11000")  # 서울특별시: imported, never invited to this track
    assert w.get("/me", seoul).status_code == 200
    with write(w.app.db) as conn:
        gone = sa.select(APPLICANT.c.id).where(APPLICANT.c.code == "11000").scalar_subquery()
        conn.execute(sa.delete(APPLICANT_CONTACT).where(APPLICANT_CONTACT.c.applicant_id == gone))  # its contacts first
        conn.execute(sa.delete(APPLICANT).where(APPLICANT.c.code == "11000"))
    assert w.get("/me", seoul).status_code == 401


@pytest.mark.routes("GET /me")
def test_last_use_is_written_at_most_once_a_minute(written: World) -> None:
    w = written
    token = w.token(ADMIN)

    def last_used() -> object:
        return w.rows(API_TOKEN, API_TOKEN.c.subject == ADMIN[1])[0]["last_used_at"]

    assert last_used() is None
    first = w.clock.now()
    w.get("/me", token)
    assert last_used() == first
    w.clock.advance(timedelta(seconds=59))
    w.get("/me", token)
    assert last_used() == first
    w.clock.advance(timedelta(seconds=1))
    w.get("/me", token)
    assert last_used() == first + timedelta(minutes=1)


# -- 403 ---------------------------------------------------------------------------------------------


def test_admin_only_routes_refuse_the_other_roles_and_change_nothing(written: World) -> None:
    w = written
    for who in (ADMIN, EV_KIM, APP_SEJONG):
        w.token(who)
    before = w.footprint()
    for method, path in ADMIN_ONLY:
        for who in (EV_KIM, APP_SEJONG):
            refused = w.call(method, path, who, json=body_for(path))
            assert refused.status_code == 403, (method, path, who)
            assert f"may not {method} {path.split('?')[0]} (allowed: admin)" in refused.json()["error"]
    assert w.footprint() == before
    for method, path in ADMIN_ONLY:
        if method == "GET":
            assert w.call(method, path, ADMIN).status_code == 200, path


def test_evaluators_do_not_act_on_applications_and_applicants_do_not_score(written: World) -> None:
    w = written
    for who in (EV_KIM, APP_SEJONG):
        w.token(who)
    before = w.footprint()
    app_id = w.id(SEJONG)
    for method, path in [
        ("POST", f"/applications/{app_id}/transitions"),
        ("POST", "/applications"),
        ("POST", f"/applications/{app_id}/objections"),
        ("GET", "/applicants"),
        ("GET", f"/applicants/{SEJONG}"),
    ]:
        refused = w.call(method, path, EV_KIM, json={})
        assert refused.status_code == 403 and "(allowed: admin, applicant)" in refused.json()["error"], path
    for method, path in [("PUT", f"/applications/{app_id}/scores/written"), ("GET", f"/applications/{app_id}/scores")]:
        refused = w.call(method, path, APP_SEJONG, json={"points": {}})
        assert refused.status_code == 403 and "(allowed: admin, evaluator)" in refused.json()["error"], path
    assert w.footprint() == before


def test_the_role_refusal_uses_the_right_article(written: World) -> None:
    w = written
    assert w.get("/deadlines", EV_KIM).json()["error"].startswith("an evaluator token may not GET /deadlines")
    assert w.get("/deadlines", APP_SEJONG).json()["error"].startswith("an applicant token may not GET /deadlines")


# -- how refusals read -------------------------------------------------------------------------------


def test_every_guarded_route_documents_its_refusals(written: World) -> None:
    document = written.api.openapi()
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            if f"{method.upper()} {path}" in OPEN_ROUTES:
                continue
            assert "401" in op["responses"], (method, path)
            assert op["responses"]["401"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }
            assert op.get("security") == [{"HTTPBearer": []}], (method, path)
    assert set(document["components"]["schemas"]["Error"]["properties"]) >= {"error", "state", "opens", "errors"}


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.Unauthorized("x"), 401),
        (errors.Forbidden("x"), 403),
        (NotPermitted("t", "applicant", ["admin"]), 403),
        (NotFound("x"), 404),
        (IllegalMove("1", "receipt", "select", []), 409),
        (Conflict("x"), 409),
        (OutsideWindow("x"), 409),
        (errors.PreconditionRequired("x"), 428),
        (MissingReason("disqualify"), 422),
        (InvalidInput("x"), 422),
        (ConfigError("x"), 422),
        (DatabaseError("x"), 503),
        (GongmoError("x"), 422),
    ],
)
def test_each_domain_error_has_its_status(error: GongmoError, status: int) -> None:
    assert errors.status_of(error) == status


@pytest.mark.routes("GET /tracks/{track}/ranking")
def test_a_domain_error_of_several_lines_is_answered_on_one(written: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise InvalidInput("row 3: feasibility = 31\nrow 4: budget = x\nno score was stored")

    monkeypatch.setattr(selection, "ranking", refuse)
    answer = written.get(f"/tracks/{TRACK_KEY}/ranking", ADMIN)
    assert answer.status_code == 422
    assert answer.json() == {"error": "row 3: feasibility = 31 row 4: budget = x no score was stored"}


@pytest.mark.routes("GET /tracks/{track}/ranking")
def test_an_unexpected_error_is_500_with_a_reference_to_the_log(
    written: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def crash(*_: object) -> None:
        raise ZeroDivisionError("secret detail")

    monkeypatch.setattr(selection, "ranking", crash)
    with caplog.at_level(logging.ERROR, logger="gongmo.api"):
        answer = written.get(f"/tracks/{TRACK_KEY}/ranking", ADMIN)
    assert answer.status_code == 500
    found = re.fullmatch(
        r"internal error ([0-9a-f]{12}): nothing was changed by it; the daemon's log has the details",
        answer.json()["error"],
    )
    assert found is not None, answer.text
    assert "secret detail" not in answer.text and "Traceback" not in answer.text
    logged = [r for r in caplog.records if r.name == "gongmo.api"]
    assert len(logged) == 1 and found.group(1) in logged[0].getMessage()
    assert logged[0].exc_info is not None and "ZeroDivisionError" in caplog.text


@pytest.mark.routes("GET /applications/{application_id}", "POST /applications/{application_id}/transitions")
def test_path_and_header_validation_name_where_the_problem_is(written: World) -> None:
    w = written
    path = w.get("/applications/abc", ADMIN)
    assert path.status_code == 422
    assert path.json()["errors"] == [
        {
            "field": "application_id",
            "in": "path",
            "message": "path field 'application_id' = 'abc': Input should be a valid integer, unable to parse string"
            " as an integer; send a whole number",
        }
    ]
    too_long = {"If-Match": '"' + "9" * 50 + '"'}
    header = w.post(f"/applications/{w.id(SEJONG)}/transitions", ADMIN, json={"trigger": "withdraw"}, headers=too_long)
    assert header.status_code == 422
    assert [(e["field"], e["in"]) for e in header.json()["errors"]] == [("if-match", "header")]
    assert "at most 40 characters" in header.json()["error"]


@pytest.mark.routes("POST /applications")
def test_invalid_json_is_named_as_such(written: World) -> None:
    refused = written.post(
        "/applications", APP_SEJONG, content=b"{national_krw: 1}", headers={"Content-Type": "application/json"}
    )
    assert refused.status_code == 422
    assert "field '1'" not in refused.json()["error"] and "= {}" not in refused.json()["error"]
    assert "JSON" in refused.json()["error"]


def test_an_unknown_path_or_method_is_refused_like_everything_else(written: World) -> None:
    w = written
    missing = w.get("/applicationz", ADMIN)
    assert missing.status_code == 404 and "error" in missing.json()
    wrong = w.call("DELETE", f"/applications/{w.id(SEJONG)}", ADMIN)
    assert wrong.status_code == 405 and "error" in wrong.json()


def test_a_body_that_is_not_utf8_is_refused_like_invalid_json(written: World) -> None:
    w = written
    w.token(APP_SEJONG)
    before = w.footprint()
    refused = w.post("/applications", APP_SEJONG, content=b"\xe9_\xe9\t", headers={"Content-Type": "application/json"})
    assert w.footprint() == before
    assert refused.status_code == 422 and "error" in refused.json()
