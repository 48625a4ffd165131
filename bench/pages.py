"""The console's pages next to the API's JSON of the same rows (issue 23).

The daemon's one FastAPI app (`workflow.web.create_app`: the API with the pages beside it) is
served by uvicorn on 127.0.0.1 from a thread; one keep-alive httpx client sends the requests one
at a time: the pages with an office session's cookie (a staff account, core/sessions), the JSON
with an admin token. Three pairs of series, all six sent round robin (page, JSON, page, JSON...)
so that the load of the machine falls on both alike:

- the track page, first page: GET /office/tracks/{key} vs GET /applications?track={key}&limit=50;
- the track page deep in the list: the same with ?after=<an id 100 from the end>;
- the application page with 200 timeline rows: GET /office/applications/{id} vs
  GET /applications/{id}/timeline (read/timeline, the same read model).

Each series: p50 and p99 over 200 requests (20 with --small) after a warm-up. The target: each
page within 2x of its JSON (the ratio of the p50s, and of the p99s).

The track holds N applications (100,000), seeded raw (bench/db.seed_applications). The one
application with the long timeline is made through the services, so its hash chains stay valid:
the call (the announce deadline) invites it, its plan and budget sheet are uploaded, it is
submitted, the receipt close moves it to the preliminary review, the office passes it, and the
office downloads its documents (each download an event row) until its timeline holds 200 rows.
Not measured: the seeding, the warm-up.
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import sqlalchemy as sa
import uvicorn

from bench import synthetic_applicants
from bench.db import (
    KST,
    NATIONAL_KRW,
    OFFICE,
    TRACK_KEY,
    Backend,
    Target,
    add_deadline,
    database,
    open_bench_app,
    seed_applications,
    set_clock,
    tidy,
)
from bench.report import Goal, Row, row
from gongmo.states.lifecycle import Role
from gongmo.workflow.core import samples, sessions, tokens
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICANT, APPLICATION
from gongmo.workflow.deadlines.ticker import Ticker
from gongmo.workflow.engine.app import App
from gongmo.workflow.read import documents, timeline
from gongmo.workflow.runtime.daemon import ApiServer
from gongmo.workflow.web import create_app
from gongmo.workflow.web.auth import COOKIE

GOAL = Goal("<=", 2.0)
REQUESTS = 200
SMALL_REQUESTS = 20
WARMUP = 20
TIMELINE_ROWS = 200
PAGE = 50  # the track page's rows (workflow/web/tracks.PAGE_SIZE), asked of the API as limit
DEEP = 100  # the deep page starts this many applications from the end
STAFF_EMAIL = "bench-office@molit.go.kr"
CODE = "10000"  # the one applicant with the long timeline (bench.synthetic_applicants' first)
AFTER_CLOSE = datetime(2024, 5, 29, 18, 5, tzinfo=KST)  # the track's receipt closed 18:00


# -- the database -------------------------------------------------------------------------------


def story(app: App) -> int:
    """One application of the track made through the services, with TIMELINE_ROWS timeline rows; its id."""
    with write(app.db) as conn:
        conn.execute(sa.insert(APPLICANT), synthetic_applicants(1))
    add_deadline(app, "announce")
    Ticker(app, "bench").run_until_idle()  # the call (caught up inside the receipt window): invited
    with read(app.db) as conn:
        application_id = int(
            conn.execute(
                sa.select(APPLICATION.c.id)
                .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
                .where(APPLICANT.c.code == CODE)
            ).scalar_one()
        )
    plan = samples.pdf(f"bench plan {CODE}")
    app.moves.uploads.add(application_id, "plan", f"사업계획서_{CODE}.pdf", io.BytesIO(plan), OFFICE)
    app.moves.uploads.add(application_id, "budget", "사업비_산출내역서.xlsx", io.BytesIO(samples.xlsx()), OFFICE)
    app.moves.submit(TRACK_KEY, CODE, NATIONAL_KRW, NATIONAL_KRW, OFFICE, "스마트도시 시험 사업", "climate_crisis")
    add_deadline(app, "close_receipt")
    set_clock(app, AFTER_CLOSE)
    Ticker(app, "bench").run_until_idle()  # receipt -> preliminary_review
    with read(app.db) as conn:
        version = int(
            conn.execute(sa.select(APPLICATION.c.version).where(APPLICATION.c.id == application_id)).scalar_one()
        )
    app.moves.apply(application_id, "pass_review", OFFICE, "bench: the plan is complete", version)
    office = tokens.Principal(0, Role.ADMIN, OFFICE.name)
    at = AFTER_CLOSE
    while (count := rows_of(app, office, application_id)) < TIMELINE_ROWS:
        for _ in range(TIMELINE_ROWS - count):  # an evaluator's copy, the office's: a row each
            at += timedelta(minutes=7)
            set_clock(app, at)
            documents.open_download(app, office, application_id, "plan" if at.minute % 2 else "budget", None)
    if count != TIMELINE_ROWS:
        raise SystemExit(f"the application's timeline has {count} rows, not {TIMELINE_ROWS}")
    return application_id


def rows_of(app: App, who: tokens.Principal, application_id: int) -> int:
    with read(app.db) as conn:
        return len(timeline.of_application(app, conn, who, application_id)["timeline"])


# -- the server ---------------------------------------------------------------------------------


@contextmanager
def serve(app: App) -> Iterator[str]:
    """The console and the API (web.create_app) over real HTTP on 127.0.0.1 (a free port), from a thread."""
    config = uvicorn.Config(
        create_app(app), host="127.0.0.1", port=0, lifespan="off", access_log=False, log_level="warning"
    )
    server = ApiServer(config)
    thread = threading.Thread(target=server.run, name="bench-pages", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


# -- measuring ----------------------------------------------------------------------------------


@dataclass
class Series:
    name: str
    url: str
    headers: dict[str, str]
    check: Callable[[httpx.Response], None]
    lat: list[int] = field(default_factory=list)  # ns, from before the send to the whole answer read

    def one(self, client: httpx.Client, counted: bool) -> None:
        t0 = time.perf_counter_ns()
        response = client.get(self.url, headers=self.headers)
        t1 = time.perf_counter_ns()
        if response.status_code != 200:
            raise SystemExit(f"GET {self.url}: {response.status_code} {response.text[:500]}")
        self.check(response)
        if counted:
            self.lat.append(t1 - t0)

    def pct(self, q: float) -> float:
        """Milliseconds, nearest rank."""
        lat = sorted(self.lat)
        return lat[max(0, math.ceil(q * len(lat)) - 1)] / 1e6


def expect_items(count: int) -> Callable[[httpx.Response], None]:
    def check(response: httpx.Response) -> None:
        got = len(response.json()["items"])
        if got != count:
            raise SystemExit(f"GET {response.request.url}: {got} applications, expected {count}")

    return check


def expect_rows(response: httpx.Response) -> None:
    got = len(response.json()["timeline"])
    if got != TIMELINE_ROWS:
        raise SystemExit(f"GET {response.request.url}: {got} timeline rows, expected {TIMELINE_ROWS}")


def expect_html(response: httpx.Response) -> None:
    if not response.headers.get("content-type", "").startswith("text/html"):
        raise SystemExit(f"GET {response.request.url}: {response.headers.get('content-type')}, not a page")


def expect_timeline(response: httpx.Response) -> None:
    expect_html(response)
    got = response.text.count('<tr class="row-')
    if got != TIMELINE_ROWS:
        raise SystemExit(f"GET {response.request.url}: the page shows {got} timeline rows, expected {TIMELINE_ROWS}")


def same_rows(client: httpx.Client, page: Series, api: Series, key: str) -> None:
    """The page shows the rows the JSON lists (checked once, before the timing)."""
    html = client.get(page.url, headers=page.headers).text
    body = client.get(api.url, headers=api.headers).json()
    rows = body.get("items") or body.get("timeline") or []
    wanted = [r[key] for r in rows if r.get(key)]
    missing = [w for w in wanted if str(w) not in html]
    if not wanted or missing:
        raise SystemExit(f"{page.url} does not show what {api.url} lists: {missing[:3] or 'nothing to compare'}")


def run(backend: Backend, n: int) -> list[Row]:
    requests = REQUESTS if n >= 10_000 else SMALL_REQUESTS
    with database(backend) as target:
        app = open_bench_app(target)
        try:
            return measure(target, app, n, requests)
        finally:
            app.db.dispose()


def measure(target: Target, app: App, n: int, requests: int) -> list[Row]:
    application_id = story(app)
    ids = seed_applications(target, app, n, "preliminary_review")
    tidy(target)
    _, token = tokens.create(app, "admin", "bench-office", "bench")
    sessions.add_staff(app, STAFF_EMAIL, created_by="bench")
    cookie = sessions.open_session(app, "admin", STAFF_EMAIL, client="bench")
    page = {"Cookie": f"{COOKIE}={cookie}", "Accept": "text/html"}
    api = {"Authorization": f"Bearer {token}"}
    after = ids[-DEEP]
    pairs = {
        "track page, first page": (
            Series("page", f"/office/tracks/{TRACK_KEY}", page, expect_html),
            Series("json", f"/applications?track={TRACK_KEY}&limit={PAGE}", api, expect_items(PAGE)),
            "receipt_no",
        ),
        "track page, deep": (
            Series("page", f"/office/tracks/{TRACK_KEY}?after={after}", page, expect_html),
            Series("json", f"/applications?track={TRACK_KEY}&limit={PAGE}&after={after}", api, expect_items(PAGE)),
            "receipt_no",
        ),
        f"application page, {TIMELINE_ROWS} timeline rows": (
            Series("page", f"/office/applications/{application_id}", page, expect_timeline),
            Series("json", f"/applications/{application_id}/timeline", api, expect_rows),
            "to_addr",
        ),
    }
    with serve(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        for page_series, api_series, key in pairs.values():
            same_rows(client, page_series, api_series, key)
        for i in range(WARMUP + requests):  # round robin: page, JSON, page, JSON...
            for page_series, api_series, _ in pairs.values():
                page_series.one(client, i >= WARMUP)
                api_series.one(client, i >= WARMUP)
    out = []
    for label, (page_series, api_series, _) in pairs.items():
        for q, name in ((0.50, "p50"), (0.99, "p99")):
            out.append(
                row(
                    f"{label}: page / JSON, {name}",
                    target.kind,
                    n,
                    page_series.pct(q),
                    api_series.pct(q),
                    "ms",
                    GOAL,
                    requests=requests,
                    warmup=WARMUP,
                    page=page_series.url,
                    json=api_series.url,
                )
            )
    return out
