"""Run every benchmark scenario against its raw baseline, in this one run.

    python -m bench [--small] [--only NAME ...] [--db sqlite|postgres|both] [--pg-url URL] [--out PATH]

Prints one table (scenario, database, gongmo's figure, the baseline's, their
ratio, the target and whether it was met) and the machine, and writes the
same as JSON (bench/results/bench.json by default). --small scales every N
down so that the whole run takes seconds (CI checks that it completes, not
its figures). Each scenario makes its own throwaway database: a SQLite file
in a temporary directory, or the PostgreSQL schema bench_<pid> (dropped
after each scenario).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import catchup, close, documents, mail, memory, pages, portal, transitions, verify
from bench.db import PG_URL, ROOT, Backend, backends
from bench.report import Row, load_average, machine, print_table, write_json


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Backend, int], list[Row]]
    n: int
    small_n: int
    what: str


SCENARIOS = (
    Scenario("close", close.run, 100_000, 1_000, "receipt close (deadline tick), with and without notices"),
    Scenario("transitions", transitions.run, 20_000, 100, "admin triggers, one transaction each"),
    Scenario("verify", verify.run, 1_000_000, 1_000, "audit verify (replay and hash chains) vs a SHA-256 loop"),
    Scenario("mail", mail.run, 5_000, 100, "outbox -> SMTP sink in another process"),
    Scenario("catchup", catchup.run, 10_000, 50, "overdue deadlines and notices at start"),
    Scenario("memory", memory.run, 1_000_000, 2_000, "daemon peak RSS during a tick"),
    Scenario("documents", documents.run, 50 * 1024**2, 2 * 1024**2, "50 MiB upload + download over HTTP, daemon RSS"),
    Scenario("pages", pages.run, 100_000, 1_000, "console pages vs the API's JSON of the same rows, p50 and p99"),
    Scenario("portal", portal.run, 10_000, 100, "a score sheet saved in the evaluators' portal vs the API's PUT"),
)
NAMES = tuple(s.name for s in SCENARIOS)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="small N everywhere (CI: seconds, not figures)")
    parser.add_argument("--only", action="append", choices=NAMES, metavar="NAME", help=f"one of {', '.join(NAMES)}")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("GONGMO_TEST_PG_URL") or PG_URL,
        help=f"PostgreSQL server (default: $GONGMO_TEST_PG_URL or {PG_URL})",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bench.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.ERROR)  # "skipped: already running" while catching up
    chosen, versions = backends(args.db, args.pg_url)
    info = machine(versions)
    started_at = datetime.now(UTC)
    load_before = load_average()
    rows: list[Row] = []
    walls: list[dict[str, Any]] = []
    begun = time.perf_counter()
    for scenario in SCENARIOS:
        if args.only and scenario.name not in args.only:
            continue
        n = scenario.small_n if args.small else scenario.n
        for backend in chosen:
            print(f"{scenario.name} on {backend.kind}, N = {n:,}: {scenario.what} ...", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            for r in scenario.run(backend, n):
                r.group = scenario.name
                rows.append(r)
            wall_s = round(time.perf_counter() - t0, 1)
            walls.append({"scenario": scenario.name, "db": backend.kind, "n": n, "wall_s": wall_s})
            print(f"  {wall_s} s (load average {load_average()})", file=sys.stderr, flush=True)
    total_s = round(time.perf_counter() - begun, 1)
    load_after = load_average()
    print_table(rows, info)
    print("wall time (seeding included): " + ", ".join(f"{w['scenario']}/{w['db']} {w['wall_s']} s" for w in walls))
    print(f"total {total_s} s; load average (1, 5, 15 min) before {load_before}, after {load_after}")
    write_json(
        args.out,
        rows,
        info,
        mode="small" if args.small else "full",
        started_at=started_at.isoformat(timespec="seconds"),
        total_s=total_s,
        load_average={"before": load_before, "after": load_after},
        wall=walls,
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
