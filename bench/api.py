"""API latency: a transition over HTTP, next to a no-op endpoint.

The real FastAPI app (`workflow.api.create_api`) is served by uvicorn on
127.0.0.1 from a background thread; one keep-alive httpx client in the main
thread sends the requests one at a time and times each. Three series, in the
same run, on the same connection:

- GET /ping: no token, no database (the floor of any request: the baseline);
- GET /me: the token looked up in the database;
- POST /applications/{id}/transitions pass_review: one per application,
  each moved preliminary_review -> written_evaluation (lock, check, state +
  audit row + the rendered notice, commit), with If-Match.

The database is a throwaway one with the shipped config: a SQLite file in a
temporary directory, or a fresh PostgreSQL schema (dropped at the end). The
applications are submitted through the engine inside the 2024 receipt window,
each after its plan (a PDF) and budget sheet (an XLSX) are uploaded (issue 21: a
plan is received only with its documents), and moved to preliminary review by
the ticker at the receipt close. The set-up is not timed: the three series
measure what they measured before the documents (a transition's work does not
read them); the upload and download of a large file are bench/documents.py's.

    python -m bench.api [--n 1000] [--small] [--db sqlite|postgres] [--pg-url URL]
                        [--order series|interleaved] [--daemon-socket]

--small is n = 50 (CI). --daemon-socket binds the listening socket the way
`gongmo daemon` does, which (as of this writing) leaves TCP_NODELAY off, so
every answer written in two pieces waits for the client's delayed ACK
(about 40 ms on Linux): compare it with the default.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import fastapi
import httpx
import sqlalchemy as sa
import uvicorn

from bench import synthetic_applicants
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role
from gongmo.workflow.api import create_api
from gongmo.workflow.core import samples, tokens
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICANT, APPLICATION, AUDIT, DEADLINE, TRACK
from gongmo.workflow.deadlines.ticker import Ticker
from gongmo.workflow.engine import audit
from gongmo.workflow.engine.app import App
from gongmo.workflow.runtime import wiring
from gongmo.workflow.runtime.daemon import ApiServer, _listen
from gongmo.workflow.runtime.wiring import open_app

ROOT = Path(__file__).resolve().parents[1]
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TRACK_KEY = "strong-small-2024"  # receipt 2024-05-27 09:00 to 05-29 18:00 KST
KST = ZoneInfo("Asia/Seoul")
SUBMIT_AT = datetime(2024, 5, 28, 11, 0, tzinfo=KST)
AFTER_CLOSE = datetime(2024, 5, 29, 18, 5, tzinfo=KST)
OFFICE = Actor("bench-office", Role.ADMIN)
NATIONAL = 8_000_000_000  # the track's cap, matched 1:1
WARMUP = 20
Stats = dict[str, float]


# -- the database ---------------------------------------------------------------


@contextmanager
def database(kind: str, pg_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    """A throwaway database URL, and what to say about the server."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db", {}
        return
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        version = str(conn.exec_driver_sql("SHOW server_version").scalar())
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    sep = "&" if "?" in pg_url else "?"
    try:
        yield f"{pg_url}{sep}options={quote(f'-csearch_path={name}')}", {"postgresql": version, "schema": name}
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        admin.dispose()


def seed(url: str, count: int) -> tuple[App, list[int]]:
    """`count` applications of one track, all in preliminary_review; their ids."""
    app = open_app(ROOT / "config.toml", FixedClock(SUBMIT_AT), database_url=url)
    assert isinstance(app.clock, FixedClock)
    wiring.prepare(app)
    with write(app.db) as conn:
        conn.execute(sa.insert(APPLICANT), synthetic_applicants(count))
        # Only this track's deadlines: the others would fire (and render) for nothing.
        other = sa.select(TRACK.c.id).where(TRACK.c.key != TRACK_KEY)
        conn.execute(sa.delete(DEADLINE).where(DEADLINE.c.track_id.in_(other)))
    # The call first, inside the receipt window: a call caught up only after the receipt close is
    # held for the office, and the close behind it with it (README, "Deadlines and the daemon").
    Ticker(app, "bench").run_until_idle()
    budget = samples.xlsx()
    invited = _invited(app)
    for i in range(count):
        code = f"{10000 + i}"
        kind = "climate_crisis" if i % 2 else "local_extinction"
        # Its documents first, through the engine (untimed set-up): its own plan, a shared budget sheet.
        plan = samples.pdf(f"bench plan {code}")
        app.moves.uploads.add(invited[code], "plan", f"사업계획서_{code}.pdf", io.BytesIO(plan), OFFICE)
        app.moves.uploads.add(invited[code], "budget", "사업비_산출내역서.xlsx", io.BytesIO(budget), OFFICE)
        app.moves.submit(TRACK_KEY, code, NATIONAL, NATIONAL, OFFICE, f"스마트도시 {i}", kind)
    app.clock.set(AFTER_CLOSE)
    Ticker(app, "bench").run_until_idle()  # close_receipt: receipt -> preliminary_review, in bulk
    with read(app.db) as conn:
        ids = list(
            conn.execute(
                sa.select(APPLICATION.c.id)
                .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
                .where(TRACK.c.key == TRACK_KEY, APPLICATION.c.state == "preliminary_review")
                .order_by(APPLICATION.c.id)
            ).scalars()
        )
    if len(ids) != count:
        raise SystemExit(f"expected {count} applications in preliminary_review after the close, found {len(ids)}")
    return app, ids


def _invited(app: App) -> dict[str, int]:
    """applicant code -> its application in the track (created by the call)."""
    with read(app.db) as conn:
        rows = conn.execute(
            sa.select(APPLICANT.c.code, APPLICATION.c.id)
            .join(APPLICATION, APPLICATION.c.applicant_id == APPLICANT.c.id)
            .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
            .where(TRACK.c.key == TRACK_KEY)
        ).all()
    return {str(code): int(i) for code, i in rows}


# -- the server -------------------------------------------------------------------


@contextmanager
def serve(app: App, daemon_socket: bool) -> Iterator[str]:
    """The real API over real HTTP on 127.0.0.1 (a free port), from a thread.

    By default uvicorn binds the socket itself, and asyncio sets TCP_NODELAY
    on every connection. With `daemon_socket`, the socket is bound the way
    `gongmo daemon` binds it (workflow.daemon._listen): a socket made with
    protocol 0, on whose connections asyncio does not set TCP_NODELAY.
    """
    config = uvicorn.Config(
        create_api(app), host="127.0.0.1", port=0, lifespan="off", access_log=False, log_level="warning"
    )
    sockets = [_listen("127.0.0.1", 0)] if daemon_socket else None
    server = ApiServer(config)  # the daemon's server: no signal handlers
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, name="bench-api", daemon=True)
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
        for sock in sockets or ():
            sock.close()


# -- measuring ----------------------------------------------------------------------


@dataclass
class Series:
    """One kind of request: the i-th one sent, and the check of its answer."""

    send: Callable[[int], httpx.Response]
    check: Callable[[httpx.Response], None]
    lat: list[int] = field(default_factory=list)  # ns, from before the send to the answer read
    spent: int = 0  # ns in this series' requests and checks (for requests/s)

    def one(self, i: int, counted: bool) -> None:
        t0 = time.perf_counter_ns()
        response = self.send(i)
        t1 = time.perf_counter_ns()
        self.check(response)
        if counted:
            self.lat.append(t1 - t0)
            self.spent += time.perf_counter_ns() - t0

    def stats(self) -> Stats:
        lat = sorted(self.lat)

        def pct(q: float) -> float:  # nearest rank
            return lat[max(0, math.ceil(q * len(lat)) - 1)] / 1e6

        return {
            "n": len(lat),
            "p50_ms": round(pct(0.50), 3),
            "p90_ms": round(pct(0.90), 3),
            "p99_ms": round(pct(0.99), 3),
            "max_ms": round(lat[-1] / 1e6, 3),
            "mean_ms": round(sum(lat) / len(lat) / 1e6, 3),
            "req_per_s": round(len(lat) / (self.spent / 1e9), 1),
        }


def ok(response: httpx.Response) -> None:
    if response.status_code != 200:
        raise SystemExit(f"{response.request.method} {response.request.url}: {response.status_code} {response.text}")


def run(client: httpx.Client, token: str, ids: list[int], n: int, order: str) -> tuple[dict[str, Stats], int]:
    """ids[:WARMUP] are moved while warming up, ids[WARMUP:] while measuring."""
    auth = {"Authorization": f"Bearer {token}"}
    first = client.get(f"/applications/{ids[0]}", headers=auth)
    ok(first)
    etag = first.headers["ETag"]  # '"3"': created, submitted, sent to review
    version = int(etag.strip('"'))
    move_headers = {**auth, "If-Match": etag}

    def moved(response: httpx.Response) -> None:
        ok(response)
        body = response.json()
        if body["to_state"] != "written_evaluation" or body["version"] != version + 1:
            raise SystemExit(f"unexpected answer to pass_review: {body}")

    series = {
        "noop": Series(lambda i: client.get("/ping"), ok),
        # the first /me also writes the token's last_used_at (then at most once a minute)
        "me": Series(lambda i: client.get("/me", headers=auth), ok),
        "transition": Series(
            lambda i: client.post(
                f"/applications/{ids[i]}/transitions", json={"trigger": "pass_review"}, headers=move_headers
            ),
            moved,
        ),
    }
    if order == "series":  # all the no-ops, then all the reads, then all the transitions
        for one in series.values():
            for i in range(WARMUP + n):
                one.one(i, i >= WARMUP)
    else:  # round robin: drift of the machine falls on every series alike
        for i in range(WARMUP + n):
            for one in series.values():
                one.one(i, i >= WARMUP)
    return {key: one.stats() for key, one in series.items()}, version


def check_audit(app: App, ids: list[int]) -> dict[str, Any]:
    with read(app.db) as conn:
        report = audit.verify(conn, TABLE)
        passed = conn.execute(
            sa.select(AUDIT.c.application_id, sa.func.count())
            .where(AUDIT.c.trigger == "pass_review")
            .group_by(AUDIT.c.application_id)
        ).all()
        left = conn.execute(
            sa.select(sa.func.count()).select_from(APPLICATION).where(APPLICATION.c.state == "preliminary_review")
        ).scalar_one()
    per_app: dict[int, int] = {int(a): int(c) for a, c in passed}
    once = all(per_app.get(i) == 1 for i in ids) and len(per_app) == len(ids)
    return {
        "clean": report.clean,
        "applications": report.applications,
        "audit_rows": report.audit_rows,
        "findings": [f.__dict__ for f in report.findings[:5]],
        "pass_review_rows": sum(c for _, c in passed),
        "each_application_passed_once": once,
        "left_in_preliminary_review": int(left),
    }


# -- the table ------------------------------------------------------------------------

ROWS = (
    ("noop", "GET /ping (no-op: no token, no database)"),
    ("me", "GET /me (token looked up)"),
    ("transition", "POST /applications/{id}/transitions pass_review"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="requests per series (and applications moved)")
    parser.add_argument("--small", action="store_true", help="n = 50, for CI")
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("GONGMO_TEST_PG_URL", PG_URL))
    parser.add_argument(
        "--order",
        choices=("series", "interleaved"),
        default="series",
        help="series: N no-ops, then N reads, then N transitions; interleaved: one of each per round",
    )
    parser.add_argument(
        "--daemon-socket",
        action="store_true",
        help="bind the socket as `gongmo daemon` does (workflow.daemon._listen: no TCP_NODELAY)",
    )
    parser.add_argument("--json", type=Path, default=None, help="default bench/results/api-<db>.json")
    args = parser.parse_args()
    n = 50 if args.small else args.n
    if not 1 <= n <= 80_000:
        parser.error("--n must be between 1 and 80000 (5-digit applicant codes)")
    name = f"api-{args.db}" + ("-daemon-socket" if args.daemon_socket else "")
    name += "-interleaved" if args.order == "interleaved" else ""
    out = args.json or ROOT / "bench" / "results" / f"{name}.json"
    how = (
        "socket bound as `gongmo daemon` binds it (protocol 0: no TCP_NODELAY)"
        if args.daemon_socket
        else "socket bound by uvicorn (TCP_NODELAY)"
    )

    load_before = os.getloadavg()
    with database(args.db, args.pg_url) as (url, info):
        server_info = {k: v for k, v in info.items() if k != "schema"}
        t0 = time.perf_counter()
        app, ids = seed(url, n + WARMUP)
        setup_s = time.perf_counter() - t0
        try:
            _, token = tokens.create(app, "admin", "bench", "bench")
            with serve(app, args.daemon_socket) as base, httpx.Client(base_url=base, timeout=30) as client:
                results, version = run(client, token, ids, n, args.order)
            checked = check_audit(app, ids)
        finally:
            app.db.dispose()

    ratio = round(results["transition"]["p50_ms"] / results["noop"]["p50_ms"], 1)
    machine = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        **server_info,
        "uvicorn": uvicorn.__version__,
        "fastapi": fastapi.__version__,
        "httpx": httpx.__version__,
        "sqlalchemy": sa.__version__,
        # other work on the machine widens the tails: the 1-minute load average before and after
        "load_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }
    table = {
        "scenario": (
            f"API latency over HTTP on 127.0.0.1, {args.db}, {how}, one keep-alive connection, requests one at a time,"
            f" {args.order}; {n} per series after {WARMUP} warm-up; transition = pass_review of {n} applications"
            f' (If-Match "{version}"), {TRACK_KEY}'
        ),
        "db": args.db,
        "n": n,
        "warmup": WARMUP,
        "order": args.order,
        "socket": "daemon" if args.daemon_socket else "uvicorn",
        "pg_schema": info.get("schema"),
        "setup_s": round(setup_s, 1),
        "results": results,
        "transition_p50_over_noop_p50": ratio,
        "audit": checked,
        "machine": machine,
    }

    print(table["scenario"])
    head = f"{'request':<50} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8} {'mean':>8} {'req/s':>8}"
    print(head)
    print("-" * len(head))
    for key, label in ROWS:
        r = results[key]
        print(
            f"{label:<50} {r['p50_ms']:>8.3f} {r['p90_ms']:>8.3f} {r['p99_ms']:>8.3f}"
            f" {r['max_ms']:>8.3f} {r['mean_ms']:>8.3f} {r['req_per_s']:>8.1f}"
        )
    print("(milliseconds; req/s = requests / time spent sending them and reading and checking the answers)")
    print(f"transition p50 / no-op p50: {ratio}x")
    verdict = "clean" if checked["clean"] else f"{len(checked['findings'])}+ application(s) disagree"
    print(
        f"audit verify: {checked['applications']} applications, {checked['audit_rows']} audit rows: {verdict};"
        f" pass_review rows: {checked['pass_review_rows']} ({n} measured + {WARMUP} warm-up),"
        f" each once: {checked['each_application_passed_once']},"
        f" left in preliminary_review: {checked['left_in_preliminary_review']}"
    )
    print(f"setup (seed {n + WARMUP} applications): {table['setup_s']} s; machine: {machine}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(table, indent=2, ensure_ascii=False), encoding="utf-8")
    if not (checked["clean"] and checked["each_application_passed_once"] and checked["pass_review_rows"] == n + WARMUP):
        raise SystemExit("the audit check failed")


if __name__ == "__main__":
    main()
