"""Memory: the daemon's peak RSS while a tick closes a track of N applications.

The database holds N received applications of one track and its due
close_receipt deadline. Two child processes run in turn, so the figures are
their own (the peak RSS of each, VmHWM): one imports the daemon's libraries and
stops (the baseline); the other imports the same, opens the app and runs
the daemon's tick (Daemon.wake: every due deadline), which moves all N to
preliminary review in chunks. A daemon that streams stays near the first.

    python -m bench.memory --child imports|tick [--url URL --now ISO]   (what the children run)
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the children import IMPORTS and nothing of bench's own
    from bench.db import Backend
    from bench.report import Row

ROOT = Path(__file__).resolve().parents[1]
# What `gongmo daemon` loads (the CLI, the daemon, its HTTP API) and both drivers.
IMPORTS = ("gongmo.workflow.cli", "gongmo.workflow.runtime.daemon", "gongmo.workflow.api", "psycopg", "sqlite3")


def run(backend: Backend, n: int = 1_000_000) -> list[Row]:
    from bench.db import add_deadline, database, open_bench_app, seed_applications, tidy, track
    from bench.report import Goal, row

    with database(backend) as target:
        app = open_bench_app(target)
        try:
            started = time.perf_counter()
            seed_applications(target, app, n, "receipt")
            add_deadline(app, "close_receipt")
            tidy(target)
            seed_s = time.perf_counter() - started
            now = track(app)["receipt_closes"] + timedelta(minutes=1)
        finally:
            app.db.dispose()
        # side by side: the figures are each one's own, and it saves the wait
        children = [_start("imports"), _start("tick", "--url", target.url, "--now", now.isoformat())]
        imports, tick = (_result(c) for c in children)
    assert tick["fired"] == [f"0 expired, {n} to preliminary review"], tick["fired"]
    return [
        row(
            "memory: peak RSS, tick vs imports",
            target.kind,
            n,
            tick["peak_rss_mib"],
            imports["peak_rss_mib"],
            "MiB",
            Goal("<=", 1.5),
            seed_s=round(seed_s, 1),
            tick_s=tick["tick_s"],
            rss_before_tick_mib=tick["rss_mib"],
        )
    ]


def _start(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "bench.memory", "--child", *args]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"bench.memory child {proc.args!r} failed:\n{err[-3000:]}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def _status_mib(field: str) -> float:
    """VmRSS (now) or VmHWM (the peak) of this process, from /proc. Not ru_maxrss:
    after fork and exec it still holds the parent's size at the fork."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def child(mode: str, url: str | None, now: str | None) -> dict[str, Any]:
    for name in IMPORTS:
        importlib.import_module(name)
    out: dict[str, Any] = {}
    if mode == "tick":
        assert url and now
        from gongmo.workflow.core.clock import FixedClock
        from gongmo.workflow.core.config import Api
        from gongmo.workflow.runtime.daemon import Daemon
        from gongmo.workflow.runtime.wiring import open_app

        app = open_app(ROOT / "config.toml", FixedClock(datetime.fromisoformat(now)), database_url=url)
        daemon = Daemon(app, worker="bench-memory", api=Api(enabled=False))
        daemon.check_templates()
        out["rss_mib"] = _status_mib("VmRSS")
        started = time.perf_counter()
        daemon.wake()
        out["tick_s"] = round(time.perf_counter() - started, 2)
        out["fired"] = [f.error or f.summary for f in daemon.fired]
        app.db.dispose()
    out["peak_rss_mib"] = _status_mib("VmHWM")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=("imports", "tick"), required=True)
    parser.add_argument("--url")
    parser.add_argument("--now")
    args = parser.parse_args()
    print(json.dumps(child(args.child, args.url, args.now)))


if __name__ == "__main__":
    main()
