"""Shared setup for the HTTP API tests: the 2024 strong-and-small scenario
(tests/workflow/contest_2024.py) at a few stages, tokens, and a client that
records which routes a test reached.

A stage is built once per session on SQLite and copied into each test's own
file (a copy costs milliseconds, a build most of a second); on PostgreSQL
(the `db_url` fixture's second param) it is built live in the test's schema.

Stages (each with the clock set to a moment inside it; the worlds of one test share its clock):
- "open": the call announced, nothing received; receipt window open (2024-05-28 11:00);
- "written": 12 received, 10 passed, 48120 and 41110 disqualified on 06-03 10:00,
  evaluators assigned; inside the written window (06-11 14:00);
- "presentation": every written and presentation sheet entered; the
  presentation window over, before the selection day (06-26 09:00).

A test names the routes it covers with `@pytest.mark.routes("GET /path", ...)`;
the check at its end fails if it never reached one of them, and
test_contests.py::test_every_route_in_the_openapi_document_has_a_test compares
the union of these marks with the OpenAPI document.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gongmo.workflow.api import create_api
from gongmo.workflow.core import samples as sample_files
from gongmo.workflow.core import tokens
from gongmo.workflow.core.clock import FixedClock, SystemClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import (
    APPLICANT,
    APPLICATION,
    ASSIGNMENT,
    AUDIT,
    EVALUATOR,
    EVENT,
    OBJECTION,
    OUTBOX,
    SCORE,
    TRACK,
)
from gongmo.workflow.engine.app import App
from gongmo.workflow.runtime.daemon import Daemon
from gongmo.workflow.runtime.wiring import open_app
from gongmo.workflow.stages import committee, review
from tests.conftest import CONFIG, kst, make_app
from tests.workflow import contest_2024 as sc

TRACK_KEY = sc.TRACK
Who = tuple[str, str] | str | None

ADMIN = ("admin", "office-lee")
ADMIN_2 = ("admin", "office-choi")
KIM, LEE, PARK, CHOI, JUNG = sc.EVALUATORS
# Evaluator tokens: kim is assigned to all 10 in evaluation; jung (경기) to the 8 outside 경기.
EV_KIM = ("evaluator", KIM)
EV_JUNG = ("evaluator", JUNG)
SEJONG, SIHEUNG, CHANGWON, SUWON = "36110", "41390", "48120", "41110"
APP_SEJONG = ("applicant", SEJONG)
APP_SIHEUNG = ("applicant", SIHEUNG)
APP_CHANGWON = ("applicant", CHANGWON)
# The 10 in written evaluation after the review (창원 and 수원 disqualified).
IN_EVALUATION = [code for code in sc.TARGETS if code != CHANGWON]
POINTS = {"feasibility": "24.5", "innovation": "18", "participation": "17.25", "budget": "12", "effect": "13"}

STAGES = ("open", "written", "presentation")
STAGE_TIME = {"open": "2024-05-28 11:00", "written": "2024-06-11 14:00", "presentation": "2024-06-26 09:00"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "routes(*routes): the API routes ('METHOD /path') a test reaches")


# -- driving the scenario ---------------------------------------------------------


def drive(app: App, clock: FixedClock, stage: str, tmp_path: Path) -> None:
    """From a fresh database (make_app) to `stage`, through the real engine, ticker and committee."""
    sc.prepare(app, clock, tmp_path)
    if stage == "open":
        return
    sc.receive_all(app, clock)
    sc.at(app, clock, "2024-05-29 18:00")
    clock.set(kst("2024-06-03 10:00"))
    review.pass_eligible(app, TRACK_KEY, sc.OFFICE)
    review.disqualify_failed(app, TRACK_KEY, sc.OFFICE)
    committee.assign_track(app, TRACK_KEY, sc.OFFICE)
    if stage == "written":
        return
    receipts = {code: str(r["receipt_no"]) for code, r in sc.apps(app).items() if code in IN_EVALUATION}
    track = app.loaded.config.track(TRACK_KEY)[1]
    clock.set(kst("2024-06-11 14:00"))
    sheets, where = committee.parse_scores(sc.scores_csv(tmp_path / "w.csv", "written", receipts), track)
    committee.enter_sheets(app, sheets, sc.OFFICE, where)
    sc.at(app, clock, "2024-06-12 18:00")  # start_presentation
    clock.set(kst("2024-06-19 17:00"))
    sheets, where = committee.parse_scores(sc.scores_csv(tmp_path / "p.csv", "presentation", receipts), track)
    committee.enter_sheets(app, sheets, sc.OFFICE, where)


@pytest.fixture(scope="session")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """stage -> a SQLite file at that stage, built on first use."""
    built: dict[str, Path] = {}

    def template(stage: str) -> Path:
        if stage not in built:
            where = tmp_path_factory.mktemp(f"stage-{stage}")
            path = where / "gongmo.db"
            app = make_app(f"sqlite:///{path}", FixedClock(kst("2024-03-29 10:00")))
            try:
                drive(app, app.clock, stage, where)  # type: ignore[arg-type]
            finally:
                app.db.dispose()
            built[stage] = path
        return built[stage]

    return template


def copy_sqlite(source: Path, target: Path) -> None:
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


# -- the client --------------------------------------------------------------------

HITS: set[str] = set()


@functools.cache
def documented_routes() -> dict[str, re.Pattern[str]]:
    """'METHOD /template' -> a pattern of the paths it serves, from the OpenAPI document
    (the same for every app: built once, as the document takes a fifth of a second)."""
    api = create_api(open_app(CONFIG, SystemClock(), database_url="sqlite://"))
    out = {}
    for path, operations in api.openapi()["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\{[^}/]+\\}", "[^/]+", re.escape(path)) + "$")
        for method in operations:
            out[f"{method.upper()} {path}"] = pattern
    return out


def route_of(routes: dict[str, re.Pattern[str]], method: str, path: str) -> str | None:
    """The documented route that serves this request, if any."""
    for route, pattern in routes.items():
        if route.split(" ", 1)[0] == method and pattern.match(path):
            return route
    return None


class World:
    """One app at one stage, its API under a TestClient, and helpers to look at the database."""

    def __init__(self, app: App, clock: FixedClock, daemon: Daemon | None = None) -> None:
        self.app = app
        self.clock = clock
        self.routes = documented_routes()
        self._tokens: dict[tuple[str, str], str] = {}
        self.serve(daemon)

    def serve(self, daemon: Daemon | None = None) -> None:
        """(Re)build the API, under a daemon (its health and metrics) if one is given."""
        self.api = create_api(self.app, daemon)
        self.http = TestClient(self.api, raise_server_exceptions=False)

    # requests

    def token(self, who: tuple[str, str]) -> str:
        if who not in self._tokens:
            self._tokens[who] = tokens.create(self.app, who[0], who[1], "test")[1]
        return self._tokens[who]

    def call(self, method: str, url: str, who: Who, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        headers = dict(headers or {})
        if isinstance(who, tuple):
            headers["Authorization"] = f"Bearer {self.token(who)}"
        elif isinstance(who, str):
            headers["Authorization"] = f"Bearer {who}"
        route = route_of(self.routes, method, url.split("?", 1)[0])
        if route is not None:
            HITS.add(route)
        return self.http.request(method, url, headers=headers, **kw)

    def get(self, url: str, who: Who, **kw: Any) -> httpx.Response:
        return self.call("GET", url, who, **kw)

    def post(self, url: str, who: Who, **kw: Any) -> httpx.Response:
        return self.call("POST", url, who, **kw)

    def put(self, url: str, who: Who, **kw: Any) -> httpx.Response:
        return self.call("PUT", url, who, **kw)

    def move(self, code: str, trigger: str, who: Who, reason: str | None = None) -> httpx.Response:
        """Fire a trigger on `code`'s application with its current version (If-Match)."""
        body: dict[str, Any] = {"trigger": trigger} | ({"reason": reason} if reason else {})
        headers = {"If-Match": f'"{self.version(code)}"'}
        return self.post(f"/applications/{self.id(code)}/transitions", who, json=body, headers=headers)

    def attach(self, code: str, who: Who) -> None:
        """Upload a sample plan (PDF) and budget sheet (XLSX) to `code`'s application, multipart, as
        `who`: a plan is received only with its documents (issue 21). Marks the test as reaching
        POST /applications/{application_id}/documents/{kind}."""
        for kind, name, data in (
            ("plan", "사업계획서.pdf", sample_files.pdf(f"plan of {code}")),
            ("budget", "사업비_산출내역서.xlsx", sample_files.xlsx()),
        ):
            files = {"file": (name, data, "application/octet-stream")}
            uploaded = self.post(f"/applications/{self.id(code)}/documents/{kind}", who, files=files)
            assert uploaded.status_code == 201, uploaded.text

    # the database

    def row(self, code: str) -> dict[str, Any]:
        with read(self.app.db) as conn:
            found = (
                conn.execute(
                    sa.select(APPLICATION)
                    .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
                    .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
                    .where(TRACK.c.key == TRACK_KEY, APPLICANT.c.code == code)
                )
                .mappings()
                .one()
            )
        return dict(found)

    def id(self, code: str) -> int:
        return int(self.row(code)["id"])

    def version(self, code: str) -> int:
        return int(self.row(code)["version"])

    def state(self, code: str) -> str:
        return str(self.row(code)["state"])

    def rows(self, table: sa.Table, *where: Any) -> list[dict[str, Any]]:
        with read(self.app.db) as conn:
            return [dict(r) for r in conn.execute(sa.select(table).where(*where).order_by(table.c.id)).mappings()]

    def count(self, table: sa.Table, *where: Any) -> int:
        with read(self.app.db) as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())

    def footprint(self) -> dict[str, Any]:
        """What a refused write must leave as it was: every application's
        state and version, and the audit, outbox, event, score, objection and
        assignment rows (tokens may come and be touched: they are no decision)."""
        with read(self.app.db) as conn:
            apps = sorted(
                tuple(r) for r in conn.execute(sa.select(APPLICATION.c.id, APPLICATION.c.state, APPLICATION.c.version))
            )
            counts = {
                t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
                for t in (AUDIT, OUTBOX, EVENT, SCORE, OBJECTION, ASSIGNMENT, APPLICANT, EVALUATOR)
            }
            outbox = sorted(tuple(r) for r in conn.execute(sa.select(OUTBOX.c.id, OUTBOX.c.state)))
            scores = sorted(
                tuple(r)
                for r in conn.execute(sa.select(SCORE.c.application_id, SCORE.c.criterion, SCORE.c.points_x100))
            )
        return {"applications": apps, "counts": counts, "outbox": outbox, "scores": scores}

    def assign(self, code: str, email: str) -> None:
        """An assignment the committee code would never make (e.g. to a conflicted evaluator)."""
        with write(self.app.db) as conn:
            ev = conn.execute(sa.select(EVALUATOR.c.id).where(EVALUATOR.c.email == email)).scalar_one()
            conn.execute(
                sa.insert(ASSIGNMENT).values(
                    application_id=self.id(code), evaluator_id=ev, assigned_at=self.clock.now()
                )
            )

    def close(self) -> None:
        self.http.close()
        self.app.db.dispose()


@pytest.fixture
def world(clock: FixedClock, tmp_path: Path, templates: Callable[[str], Path]) -> Iterator[Callable[..., World]]:
    """world(stage, url=None) -> a World; SQLite (a copy of the stage) unless a PostgreSQL url is given."""
    made: list[World] = []

    def build(stage: str, url: str | None = None) -> World:
        assert stage in STAGES, stage
        url = url or f"sqlite:///{tmp_path / f'{stage}-{len(made)}.db'}"
        if url.startswith("sqlite"):
            path = sa.engine.make_url(url).database
            assert path is not None
            copy_sqlite(templates(stage), Path(path))
            app = open_app(CONFIG, clock, database_url=url)
        else:
            app = make_app(url, clock)
            drive(app, clock, stage, tmp_path)
        clock.set(kst(STAGE_TIME[stage]))
        made.append(World(app, clock))
        return made[-1]

    yield build
    for w in made:
        w.close()


@pytest.fixture
def opened(world: Callable[..., World]) -> World:
    return world("open")


@pytest.fixture
def written(world: Callable[..., World]) -> World:
    return world("written")


@pytest.fixture
def presentation(world: Callable[..., World]) -> World:
    return world("presentation")


PASSED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when == "call":
        item.stash[PASSED] = report.passed
    return report


@pytest.fixture(autouse=True)
def _routes_reached(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test marked routes(...) that passed must have reached every route it names."""
    HITS.clear()
    yield
    marker = request.node.get_closest_marker("routes")
    if marker is not None and request.node.stash.get(PASSED, False):
        missing = set(marker.args) - HITS
        assert not missing, f"{request.node.name} is marked with routes it never reached: {sorted(missing)}"
