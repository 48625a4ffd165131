"""The property-based run of the HTTP API, long: how many cases, which answers.

Runs tests/workflow/api/test_fuzz.py (schemathesis over every operation of
the OpenAPI document, at two moments of the 2024 scenario, with an admin, an
applicant and an evaluator token) with a larger Hypothesis budget, then
prints, per operation and in total, the requests sent and the status codes
answered. A status of 500 counts an exception out of the app as well; the
pytest output above the tables shows each failure, with a curl command
that reproduces it and the app's traceback.

    python -m bench.fuzz_api [--examples 300] [--only-server-errors] [--pg-url URL] [-k EXPR] [--json PATH]

--examples is the number of generated examples per operation, moment and
role (schemathesis' coverage cases come on top; an operation whose inputs
are few runs out sooner). --only-server-errors runs the not_a_server_error
check alone (the CI test also checks conformance to the document, and stops
an operation at its first failure of any kind). --pg-url runs the app on
fresh schemas of that PostgreSQL server (e.g.
postgresql+psycopg://postgres@127.0.0.1:5432/test, dropped at the end)
instead of SQLite files; the test's own PostgreSQL leg (receipt, admin)
runs when GONGMO_TEST_PG_URL or --pg-url is set, and is skipped otherwise.
Exit status: 1 if any answer was a 5xx or pytest failed, else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST = ROOT / "tests" / "workflow" / "api" / "test_fuzz.py"


def _codes(counts: Counter[int]) -> str:
    return " ".join(f"{status}x{n}" for status, n in sorted(counts.items()))


def report(rows: list[dict[str, object]]) -> tuple[int, int]:
    """Print the tables; return (cases, server errors)."""
    by_op: dict[str, Counter[int]] = defaultdict(Counter)
    by_who: dict[str, Counter[int]] = defaultdict(Counter)
    total: Counter[int] = Counter()
    for r in rows:
        status, n = int(str(r["status"])), int(str(r["cases"]))
        by_op[str(r["operation"])][status] += n
        by_who[f"{r['moment']} / {r['role']}"][status] += n
        total[status] += n
    width = max((len(op) for op in by_op), default=10)
    print(f"\n{'operation':<{width}}  {'cases':>7}  status codes (code x cases)")
    for op in sorted(by_op, key=lambda o: (o.split(" ", 1)[1], o)):
        print(f"{op:<{width}}  {sum(by_op[op].values()):>7}  {_codes(by_op[op])}")
    print(f"{'total':<{width}}  {sum(total.values()):>7}  {_codes(total)}")
    print(f"\n{'moment / role':<{width}}  {'cases':>7}  status codes")
    for who in sorted(by_who):
        print(f"{who:<{width}}  {sum(by_who[who].values()):>7}  {_codes(by_who[who])}")
    errors = sum(n for status, n in total.items() if status >= 500)
    return sum(total.values()), errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=300, help="generated examples per operation, moment and role")
    parser.add_argument("--only-server-errors", action="store_true", help="check for 5xx only")
    parser.add_argument("--pg-url", help="run on PostgreSQL (a fresh schema per moment) instead of SQLite")
    parser.add_argument("-k", dest="keyword", help="pytest -k expression (e.g. 'scores and evaluation')")
    parser.add_argument("--json", type=Path, help="also write the tally here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tally = Path(tmp) / "tally.json"
        os.environ["GONGMO_FUZZ_EXAMPLES"] = str(args.examples)
        os.environ["GONGMO_FUZZ_REPORT"] = str(tally)
        if args.only_server_errors:
            os.environ["GONGMO_FUZZ_CHECKS"] = "server"
        if args.pg_url:
            os.environ["GONGMO_FUZZ_PG_URL"] = args.pg_url
        argv = [str(TEST), "-p", "no:cacheprovider", "--rootdir", str(ROOT)]
        if args.keyword:
            argv += ["-k", args.keyword]
        started = time.perf_counter()
        code = pytest.main(argv)
        seconds = time.perf_counter() - started
        rows = json.loads(tally.read_text(encoding="utf-8")) if tally.exists() else []
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    cases, errors = report(rows)
    checks = "not_a_server_error" if args.only_server_errors else "all of test_fuzz.CHECKS"
    db = "SQLite" if not args.pg_url else "PostgreSQL"
    if os.environ.get("GONGMO_TEST_PG_URL") or args.pg_url:
        db += " (and the postgres leg on PostgreSQL)"
    print(
        f"\n{cases} requests in {seconds:.0f} s on {db} ({args.examples} examples per operation, moment and role;"
        f" checks: {checks}); server errors: {errors}; pytest exit status: {int(code)}"
    )
    sys.exit(1 if errors or code != 0 else 0)


if __name__ == "__main__":
    main()
