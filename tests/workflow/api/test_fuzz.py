"""The HTTP API against its own OpenAPI document: no request makes it fail.

schemathesis reads the document `create_api` serves and, for every
operation, sends what it generates from it (its coverage cases at the
boundaries, then Hypothesis' positive and negative fuzzing) to the real app
in-process (ASGI). The property, for every answer: no server error (status
>= 500), and the answer conforms to the document (see CHECKS). Writes are
welcome: each database is a throwaway SQLite file or PostgreSQL schema.

The app holds the 2024 scenario (tests/workflow/contest_2024.py) at two
moments, each a database of its own, since what a request can reach depends
on the calendar:

- receipt: 2024-05-28 11:00 KST, the receipt window open, the 12 plans of
  the scenario received (a submission reaches the engine);
- evaluation: 2024-06-11 14:00 KST, the written evaluation open: 11 in
  written_evaluation, 수원 disqualified after a rejected objection, the
  committee assigned, every written sheet entered (transitions, sheets, the
  ranking, selection dry runs and the outbox have rows to work on).

Each moment is fuzzed with an admin, an applicant and an evaluator token:
role boundaries must refuse, never fail. The receipt moment is fuzzed once
more on PostgreSQL with the admin token (marked `postgres`: it needs
GONGMO_TEST_PG_URL, which .ci/run sets), since its INTEGER columns refuse
values SQLite stores. A random id, track key or code
almost never names a row, so in a generated positive case each such field
is, or is not, as Hypothesis draws, replaced by one that exists
(`flatmap_case`; an optional field a request needs, e.g. a transition's
If-Match, may be added, and a sheet's points made a whole valid sheet):
those requests get past the lookups into the engine.

The CI budget: GONGMO_FUZZ_EXAMPLES generated examples per operation, moment
and role (default 5), on top of schemathesis' coverage cases; derandomized,
so every run sends the same requests (about 4,700). The long run, which
prints the requests sent and the status codes seen, per operation and in
total (the same test, with a larger budget; --pg-url to run it on
PostgreSQL):

    .venv/bin/python -m bench.fuzz_api --examples 300 [--only-server-errors] [--pg-url URL]
"""

from __future__ import annotations

import copy
import csv
import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gongmo.states.lifecycle import Role
from gongmo.workflow.api import create_api
from gongmo.workflow.core import tokens
from gongmo.workflow.core.clock import FixedClock, SystemClock
from gongmo.workflow.core.config import Api
from gongmo.workflow.engine.app import App
from gongmo.workflow.runtime.metrics import Metrics
from gongmo.workflow.runtime.wiring import open_app
from gongmo.workflow.stages import committee, review
from tests.conftest import CONFIG, ROOT, SAMPLE_CSV, kst, make_app
from tests.workflow import contest_2024 as sc

EXAMPLES = int(os.environ.get("GONGMO_FUZZ_EXAMPLES", "5"))
# For bench/fuzz_api.py (unset in CI): where the tally goes (JSON), "server"
# to run the not_a_server_error check alone, and a PostgreSQL server to run on
# (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) instead of SQLite.
REPORT = os.environ.get("GONGMO_FUZZ_REPORT")
ONLY_SERVER_ERRORS = os.environ.get("GONGMO_FUZZ_CHECKS") == "server"
PG_URL = os.environ.get("GONGMO_FUZZ_PG_URL")
# The PostgreSQL leg (receipt, admin) runs on the suite's server, as in CI.
TEST_PG_URL = os.environ.get("GONGMO_TEST_PG_URL")

MOMENTS = ("receipt", "evaluation")
ROLES = (Role.ADMIN, Role.APPLICANT, Role.EVALUATOR)
# (backend, moment, role): every moment and role on SQLite (or on PG_URL);
# PostgreSQL, whose INTEGER columns refuse what SQLite stores, once more with
# the admin token, which reaches every operation.
LEGS = [pytest.param(("default", m, r), id=f"{m}-{r.value}") for m in MOMENTS for r in ROLES] + [
    pytest.param(("postgres", "receipt", Role.ADMIN), id="postgres-receipt-admin", marks=pytest.mark.postgres)
]
APPLICANT = {"receipt": "41110", "evaluation": "36110"}  # 수원 (received), 세종 (in written evaluation)
EVALUATOR = sc.EVALUATORS[0]  # kim: in conflict with no scenario applicant, so assigned to all

# The document does not depend on the data: it is read from an app on an
# in-memory database that is never opened, so the cases can be collected.
UNOPENED = open_app(CONFIG, SystemClock(), database_url="sqlite://")
DOCUMENT = create_api(UNOPENED).openapi()
schema = schemathesis.openapi.from_dict(DOCUMENT)

# Two of schemathesis' checks are left off, for their false alarms:
# - positive_data_acceptance expects 2xx/404/409 for any schema-valid request,
#   and the API rightly answers 422 or 428 to many the document cannot rule
#   out: an unknown track key, a trigger that needs a reason, a transition
#   without If-Match or version, an admin's submission or sheet without
#   `applicant` or `evaluator`, points outside a criterion's range;
# - negative_data_rejection counts an unknown query parameter (e.g.
#   `GET /outbox?=null`) as invalid data that must be refused, while the API,
#   like any FastAPI app, ignores it (OpenAPI cannot forbid extra parameters).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
if ONLY_SERVER_ERRORS:
    CHECKS = [not_a_server_error]

# -- steering: values that name rows of the database -------------------------------

TRACKS = [t.key for c in UNOPENED.loaded.config.contests for t in c.tracks]
with SAMPLE_CSV.open(encoding="utf-8") as f:
    CODES = sorted({row["code"] for row in csv.DictReader(f)} | set(sc.NATIONAL) | {"41110"})
NOTICES = sorted(p.stem for p in (ROOT / "templates" / "ko").glob("*.txt"))
CRITERIA = list(sc.CRITERIA)  # strong-small-2024's
SHEET = {"feasibility": "24.5", "innovation": 18, "participation": 17.25, "budget": "12", "effect": 13.0}
KNOWN: dict[str, dict[str, list[Any]]] = {
    "path_parameters": {
        # Every applicant has a row in strong-small-2024 (26, the scenario's 12 among
        # them), and a few more come while fuzzing; the outbox holds 38 or 110 rows.
        "application_id": list(range(1, 31)),
        "outbox_id": list(range(1, 121)),
        "track": TRACKS,
        "code": CODES,
    },
    "query": {"track": TRACKS, "notice": NOTICES},
    "headers": {"if-match": [f'"{v}"' for v in range(1, 7)]},
    "body": {
        "track": TRACKS,
        "applicant": CODES,
        "evaluator": sc.EVALUATORS,
        "notice": NOTICES,
        "version": list(range(1, 7)),
    },
}

# Optional fields, so mostly absent, that a request needs to go through.
ABSENT: dict[str, list[tuple[str, str, list[Any]]]] = {
    "POST /applications/{application_id}/transitions": [("headers", "if-match", KNOWN["headers"]["if-match"])],
    "PUT /applications/{application_id}/scores/{part}": [("body", "evaluator", sc.EVALUATORS)],  # an admin's
    "POST /applications": [("body", "applicant", CODES)],  # an admin's
}


@schema.hook
def flatmap_case(context: schemathesis.HookContext, case: schemathesis.Case[Any]) -> st.SearchStrategy[Any]:
    """A positive case with its fields in KNOWN and ABSENT set, each or not,
    to a value that names a row; a sheet's points put under the track's
    criteria, or made a whole valid sheet. It stays valid against the document."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return st.just(case)
    slots = [
        (where, name, values)
        for where, known in KNOWN.items()
        if isinstance(getattr(case, where), MutableMapping)
        for name, values in known.items()
        if name in getattr(case, where)
    ]
    for where, name, values in ABSENT.get(case.operation.label, []):
        container = getattr(case, where)
        if isinstance(container, MutableMapping) and name not in container:
            slots.append((where, name, values))
    points = case.body.get("points") if isinstance(case.body, MutableMapping) else None
    if isinstance(points, MutableMapping):
        slots.append(("body", "points", [dict(zip(CRITERIA, points.values(), strict=False)), SHEET]))
    if not slots:
        return st.just(case)

    def steer(choices: tuple[Any, ...]) -> schemathesis.Case[Any]:
        for (where, name, _), choice in zip(slots, choices, strict=True):
            if choice is not None:
                getattr(case, where)[name] = copy.deepcopy(choice)
        return case

    # None (leave it as generated) is one choice among the values, the last:
    # Hypothesis favours the first ones, so most fields are set.
    return st.tuples(*(st.sampled_from([*values, None]) for _, _, values in slots)).map(steer)


# -- the app at two moments --------------------------------------------------------------

# (moment, role, "METHOD /path", status) -> requests sent; 500 also counts an
# exception out of the app (the in-process transport re-raises it).
TALLY: Counter[tuple[str, str, str, int]] = Counter()


class Scheduler:
    """The daemon, as /healthz sees it: the scheduler runs (without one the
    answer is a documented 503, which is not what this run looks for)."""

    api_settings = Api()  # what /healthz reads of the daemon's [api] (health_details off)

    def health(self) -> dict[str, Any]:
        return {"running": True, "worker": "fuzz", "last_tick_at": None, "next_due": None}


@dataclass
class Moment:
    app: App
    api: FastAPI
    headers: dict[Role, dict[str, str]]


def _receipt(url: str, tmp: Path) -> App:
    clock = FixedClock(kst("2024-03-29 10:00"))
    app = sc.prepare(make_app(url, clock), clock, tmp)
    sc.receive_all(app, clock)  # the clock stays at 2024-05-28 11:00, inside the receipt window
    return app


def _evaluation(url: str, tmp: Path) -> App:
    app = _receipt(url, tmp)
    clock = app.clock
    assert isinstance(clock, FixedClock)
    sc.at(app, clock, "2024-05-29 18:00")  # the receipt closes: all 12 to preliminary review
    clock.set(kst("2024-06-03 10:00"))
    review.pass_eligible(app, sc.TRACK, sc.OFFICE)
    review.disqualify_failed(app, sc.TRACK, sc.OFFICE)  # 창원 48120 and 수원 41110
    clock.set(kst("2024-06-04 09:00"))
    rows = sc.apps(app)
    for code, uphold in (("48120", True), ("41110", False)):
        objection = review.file_objection(app, int(str(rows[code]["id"])), "인구 기준", sc.APPLICANT_ACTOR)
        review.decide_objection(app, objection, uphold, "검토 결과", sc.OFFICE)
    committee.assign_track(app, sc.TRACK, sc.OFFICE)
    receipts = {code: str(r["receipt_no"]) for code, r in sc.apps(app).items() if code in sc.TARGETS}
    clock.set(kst("2024-06-11 14:00"))
    written = sc.scores_csv(tmp / "written.csv", "written", receipts)
    sheets, where = committee.parse_scores(written, app.loaded.config.track(sc.TRACK)[1])
    committee.enter_sheets(app, sheets, sc.OFFICE, where)
    return app


class Moments:
    """Each (backend, moment) built on first use, in a directory of its own:
    a SQLite file there, or a PostgreSQL schema of its own (dropped at the end)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.built: dict[tuple[str, str], Moment] = {}
        self.schemas: list[tuple[str, str]] = []

    def url(self, server: str | None, tmp: Path) -> str:
        if not server:
            return f"sqlite:///{tmp / 'gongmo.db'}"
        schema_name = f"fuzz_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(server)
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema_name}"')
        admin.dispose()
        self.schemas.append((server, schema_name))
        sep = "&" if "?" in server else "?"
        return f"{server}{sep}options={quote(f'-csearch_path={schema_name}')}"

    def get(self, backend: str, name: str) -> Moment:
        if (backend, name) not in self.built:
            tmp = self.base / f"{backend}-{name}"
            tmp.mkdir()
            server = PG_URL if backend == "default" else PG_URL or TEST_PG_URL
            app = {"receipt": _receipt, "evaluation": _evaluation}[name](self.url(server, tmp), tmp)
            api = create_api(app, daemon=Scheduler(), metrics=Metrics(app))  # type: ignore[arg-type]
            assert api.openapi() == DOCUMENT
            subjects = {Role.ADMIN: "fuzz-office", Role.APPLICANT: APPLICANT[name], Role.EVALUATOR: EVALUATOR}
            headers = {
                role: {"Authorization": f"Bearer {tokens.create(app, role.value, subject, 'fuzz')[1]}"}
                for role, subject in subjects.items()
            }
            self.built[(backend, name)] = Moment(app, api, headers)
        return self.built[(backend, name)]

    def close(self) -> None:
        for moment in self.built.values():
            moment.app.db.dispose()
        for server, schema_name in self.schemas:
            admin = sa.create_engine(server)
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{schema_name}" CASCADE')
            admin.dispose()


@pytest.fixture(scope="module")
def moments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moments]:
    built = Moments(tmp_path_factory.mktemp("fuzz"))
    yield built
    built.close()
    if REPORT:
        rows = [{"moment": m, "role": r, "operation": o, "status": s, "cases": n} for (m, r, o, s), n in TALLY.items()]
        Path(REPORT).write_text(json.dumps(rows, indent=1), encoding="utf-8")


@pytest.mark.parametrize("leg", LEGS)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # The module-scoped database is shared on purpose; the conftest's autouse
    # route-marker fixture is function-scoped and harmless here.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_server_error(case: schemathesis.Case[Any], leg: tuple[str, str, Role], moments: Moments) -> None:
    backend, moment, role = leg
    if backend == "postgres" and not (PG_URL or TEST_PG_URL):
        pytest.skip("GONGMO_TEST_PG_URL is not set (.ci/run sets it)")
    here = moments.get(backend, moment)
    key = (moment if backend == "default" else f"{moment} ({backend})", role.value, case.operation.label)
    try:
        response = case.call(app=here.api, headers=here.headers[role])
    except Exception:
        TALLY[(*key, 500)] += 1
        raise
    TALLY[(*key, response.status_code)] += 1
    case.validate_response(response, checks=CHECKS, headers=here.headers[role], transport_kwargs={"app": here.api})
