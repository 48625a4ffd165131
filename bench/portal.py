"""Saving a score sheet through the evaluators' portal next to the API's PUT of the same sheet (issue 24).

The daemon's one FastAPI app (`workflow.web.create_app`) is served by uvicorn on 127.0.0.1 from a
thread (bench/pages.serve); one keep-alive httpx client sends the requests one at a time:

- the portal: the form POST /evaluator/applications/{id}/scores/written (the session's cookie and
  CSRF token, one field per criterion) and the page it returns (the application page with the saved
  sheet): one save, timed from the POST's send to the page read whole;
- the API: PUT /applications/{id}/scores/written with an evaluator token, the same points as JSON.

Both go through committee.enter_sheet; sent alternately (portal, API, portal, API...) on the same
applications in turn, so every save after the first of a sheet is a correction (the old points
recorded in its event), and the load of the machine falls on both alike. p50 and p99 over 500 saves
each (50 with --small) after a warm-up. The target: the portal within 2x of the API.

The track holds N applications in the written evaluation (seeded raw, bench/db.seed_applications);
one evaluator is assigned to the first ASSIGNED of them (raw rows, as `gongmo assign` writes them),
and the clock stands inside the written window. Not measured: the seeding, the warm-up.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import sqlalchemy as sa

from bench.db import KST, Backend, Target, database, open_bench_app, seed_applications, set_clock, tidy
from bench.pages import serve
from bench.report import Goal, Row, row
from gongmo.workflow.core import sessions, tokens
from gongmo.workflow.core.db import write
from gongmo.workflow.core.models import ASSIGNMENT, EVALUATOR
from gongmo.workflow.engine.app import App
from gongmo.workflow.web.auth import COOKIE

GOAL = Goal("<=", 2.0)
SAVES = 500
SMALL_SAVES = 50
WARMUP = 20
ASSIGNED = 10  # applications assigned to the evaluator: the saves go round them
EVALUATOR_EMAIL = "bench-evaluator@univ.example"
IN_WRITTEN = datetime(2024, 6, 11, 14, 0, tzinfo=KST)  # inside the written window (06-10 09:00 to 06-12 18:00)
PART = "written"


def points(i: int) -> dict[str, str]:
    """A whole sheet of the shipped criteria (30, 20, 20, 15, 15), a little different each time."""
    return {
        "feasibility": f"{20 + i % 10}.5",
        "innovation": str(10 + i % 7),
        "participation": f"{12 + i % 5}.25",
        "budget": "12",
        "effect": str(9 + i % 6),
    }


@dataclass
class Series:
    name: str
    lat: list[int] = field(default_factory=list)  # ns

    def pct(self, q: float) -> float:
        lat = sorted(self.lat)
        return lat[max(0, math.ceil(q * len(lat)) - 1)] / 1e6


def seed(target: Target, app: App, n: int) -> list[int]:
    """n applications in the written evaluation; the evaluator, assigned to the first ASSIGNED."""
    ids = seed_applications(target, app, n, "written_evaluation")
    now = app.clock.now()
    with write(app.db) as conn:
        ev_id = conn.execute(
            sa.insert(EVALUATOR)
            .values(email=EVALUATOR_EMAIL, name="벤치위원", affiliation="시험대학교", region="11", home_code=None)
            .returning(EVALUATOR.c.id)
        ).scalar_one()
        conn.execute(
            sa.insert(ASSIGNMENT),
            [{"application_id": i, "evaluator_id": ev_id, "assigned_at": now} for i in ids[:ASSIGNED]],
        )
    return ids[:ASSIGNED]


def run(backend: Backend, n: int) -> list[Row]:
    saves = SAVES if n >= 10_000 else SMALL_SAVES
    with database(backend) as target:
        app = open_bench_app(target)
        try:
            return measure(target, app, n, saves)
        finally:
            app.db.dispose()


def measure(target: Target, app: App, n: int, saves: int) -> list[Row]:
    assigned = seed(target, app, n)
    tidy(target)
    set_clock(app, IN_WRITTEN)
    _, token = tokens.create(app, "evaluator", EVALUATOR_EMAIL, "bench")
    raw = sessions.open_session(app, "evaluator", EVALUATOR_EMAIL, client="bench")
    csrf = sessions.csrf_token(raw)
    portal, api = Series("portal"), Series("api")
    with serve(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        client.cookies.set(COOKIE, raw)
        for i in range(WARMUP + saves):
            application_id = assigned[i % len(assigned)]
            sheet = points(i)
            form = {"csrf": csrf} | {f"points.{k}": v for k, v in sheet.items()}
            t0 = time.perf_counter_ns()
            page = client.post(f"/evaluator/applications/{application_id}/scores/{PART}", data=form)
            t1 = time.perf_counter_ns()
            if page.status_code != 200 or 'id="saved-written"' not in page.text:
                raise SystemExit(f"the page after a save: {page.status_code} {page.text[:500]}")
            put = client.put(
                f"/applications/{application_id}/scores/{PART}",
                json={"points": sheet},
                headers={"Authorization": f"Bearer {token}"},
            )
            t2 = time.perf_counter_ns()
            if put.status_code != 200:
                raise SystemExit(f"API save: {put.status_code} {put.text[:500]}")
            if i >= WARMUP:
                portal.lat.append(t1 - t0)
                api.lat.append(t2 - t1)
    out = []
    for q, name in ((0.50, "p50"), (0.99, "p99")):
        out.append(
            row(
                f"score sheet saved: portal (POST + page) / API PUT, {name}",
                target.kind,
                n,
                portal.pct(q),
                api.pct(q),
                "ms",
                GOAL,
                saves=saves,
                warmup=WARMUP,
                assigned=len(assigned),
            )
        )
    return out
