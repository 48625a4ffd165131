"""The crash harness's database and clock faults, and its record of deadline claims.

- `terminate_backends`: PostgreSQL's pg_terminate_backend on every backend of the run's daemons
  (each daemon connects with application_name `<run tag>-d<slot>.<incarnation>`, set through
  PGAPPNAME), as a restarted or failed-over database server does to a daemon mid-tick.
- `SqliteLock`: a process of its own that takes SQLite's write lock (BEGIN EXCLUSIVE) and holds it
  for a stretch, as a backup tool or a long manual UPDATE does.
- `LaggingClock`: a clock that many seconds behind the machine's: a desk (an API replica) whose
  clock lags. Daemons lag through tests/chaos_daemon.py.
- `ClaimWatch`: a thread that reads the deadline table every few tens of milliseconds and keeps
  every claim it sees (holder, attempt, lease) and when each row was first seen fired, on the
  machine's clock. The product logs neither claims nor leases, so this is the record the harness
  judges "two holders at once" and "fired after every earlier deadline" by.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from gongmo.workflow.core.models import DEADLINE

POLL_S = 0.04


def terminate_backends(db: sa.Engine, app_prefix: str, worker_app: str | None = None) -> int:
    """Terminate the daemons' PostgreSQL backends (those of one incarnation with `worker_app`);
    how many were terminated."""
    pattern = worker_app if worker_app is not None else f"{app_prefix}-%"
    with db.connect() as conn:
        done = conn.execute(
            sa.text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name LIKE :pattern AND pid <> pg_backend_pid()"
            ),
            {"pattern": pattern},
        ).scalar_one()
        conn.commit()
    return int(done or 0)


class SqliteLock:
    """Hold SQLite's write lock for `seconds` in a process of its own (started at once)."""

    SCRIPT = (
        "import sqlite3, sys, time, json\n"
        "c = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)\n"
        "t = time.time(); c.execute('BEGIN EXCLUSIVE'); got = time.time()\n"
        "print(json.dumps({'waited': got - t}), flush=True)\n"
        "time.sleep(float(sys.argv[2])); c.execute('COMMIT')\n"
        "print(json.dumps({'held': time.time() - got}), flush=True)\n"
    )

    def __init__(self, path: str, seconds: float) -> None:
        self.seconds = seconds
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self.SCRIPT, path, str(seconds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait(self, timeout: float = 120.0) -> str:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out.strip().replace("\n", " ")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class LaggingClock:
    def __init__(self, lag: timedelta) -> None:
        self.lag = lag

    def now(self) -> datetime:
        return datetime.now(UTC) - self.lag


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return float(value.timestamp())


@dataclass
class Claim:
    """One attempt of one deadline row as the watch saw it (times: epoch seconds, machine clock)."""

    attempt: int
    holder: str
    first_seen: float
    leases: list[float | None] = field(default_factory=list)  # lease_until as written, each reading
    failed: bool = False


@dataclass
class Row:
    key: str
    track_id: int
    due_at: float
    claims: list[Claim] = field(default_factory=list)
    fired_seen: float | None = None  # the first reading that found it fired


class ClaimWatch(threading.Thread):
    def __init__(self, db: sa.Engine) -> None:
        super().__init__(name="claim-watch", daemon=True)
        self.db = db
        self.rows: dict[int, Row] = {}
        self.readings = 0
        self.errors = 0
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)

    def run(self) -> None:
        cols = (
            DEADLINE.c.id,
            DEADLINE.c.key,
            DEADLINE.c.track_id,
            DEADLINE.c.due_at,
            DEADLINE.c.claimed_by,
            DEADLINE.c.lease_until,
            DEADLINE.c.attempts,
            DEADLINE.c.fired_at,
            DEADLINE.c.last_error,
        )
        query = sa.select(*cols)
        while not self._halt.wait(POLL_S):
            try:
                with self.db.connect() as conn:
                    rows = conn.execute(query).all()
            except Exception:  # the database under a fault: the next reading tries again
                self.errors += 1
                continue
            now = time.time()
            with self._lock:
                self.readings += 1
                for r in rows:
                    self._note(r, now)

    def _note(self, r: Any, now: float) -> None:
        row = self.rows.get(int(r.id))
        if row is None:
            due = _epoch(r.due_at)
            assert due is not None
            row = self.rows[int(r.id)] = Row(str(r.key), int(r.track_id), due)
        if r.claimed_by is not None and int(r.attempts or 0) > 0:
            last = row.claims[-1] if row.claims else None
            if last is None or last.attempt != int(r.attempts) or last.holder != str(r.claimed_by):
                last = Claim(int(r.attempts), str(r.claimed_by), now)
                row.claims.append(last)
            if r.fired_at is None:
                last.leases.append(_epoch(r.lease_until))
            last.failed = last.failed or r.last_error is not None
        if r.fired_at is not None and row.fired_seen is None:
            row.fired_seen = now

    def held(self, now: float) -> dict[str, list[str]]:
        """Holder -> keys of the rows it holds (claimed, unfired, lease running, not backing off)
        at the last reading."""
        out: dict[str, list[str]] = {}
        with self._lock:
            for row in self.rows.values():
                if row.fired_seen is not None or not row.claims:
                    continue
                c = row.claims[-1]
                lease = c.leases[-1] if c.leases else None
                if not c.failed and lease is not None and lease > now:
                    out.setdefault(c.holder, []).append(row.key)
        return out

    def snapshot(self) -> dict[int, Row]:
        with self._lock:
            return {
                i: Row(r.key, r.track_id, r.due_at, [Claim(**vars(c)) for c in r.claims], r.fired_seen)
                for i, r in self.rows.items()
            }


def double_holds(
    rows: dict[int, Row], lease_s: float, lag_of: dict[str, float], gone_at: dict[str, float], tolerance: float = 0.05
) -> list[str]:
    """Claims of a row taken while another holder's lease on it still ran, on the machine's clock
    (a lease is written on its holder's clock: `lag_of` gives each holder's lag). A holder that was
    already killed or told to stop (`gone_at`) holds nothing. For each claim the watch saw, its
    instant is at most the first lease it saw minus a lease (renewals only push it later) or the
    first reading that saw it; the holder before it held at least until the last lease the watch
    saw it write."""
    found = []
    for row in rows.values():
        for before, after in zip(row.claims, row.claims[1:], strict=False):
            if before.holder == after.holder or not before.leases or before.leases[-1] is None:
                continue
            held_until = before.leases[-1] + lag_of.get(before.holder, 0.0)
            claimed_by = after.first_seen
            if after.leases and after.leases[0] is not None and not after.failed:
                claimed_by = min(claimed_by, after.leases[0] + lag_of.get(after.holder, 0.0) - lease_s)
            gone = gone_at.get(before.holder)
            if gone is not None and gone <= claimed_by:
                continue
            if claimed_by < held_until - tolerance:
                found.append(
                    f"{row.key}: attempt {after.attempt} by {after.holder} while attempt {before.attempt}"
                    f" by {before.holder} held it {held_until - claimed_by:.1f}s more"
                )
    return found


def fired_out_of_order(rows: dict[int, Row], track_of: dict[int, str]) -> list[str]:
    """Rows seen fired at a strictly earlier reading than a row of the same track due before them."""
    found = []
    by_track: dict[int, list[Row]] = {}
    for row in rows.values():
        by_track.setdefault(row.track_id, []).append(row)
    for track_id, group in by_track.items():
        group.sort(key=lambda r: r.due_at)
        for i, earlier in enumerate(group):
            for later in group[i + 1 :]:
                if later.due_at == earlier.due_at or later.fired_seen is None:
                    continue
                if earlier.fired_seen is None or later.fired_seen < earlier.fired_seen - POLL_S / 2:
                    gap = "" if earlier.fired_seen is None else f" {earlier.fired_seen - later.fired_seen:.1f}s"
                    found.append(f"{later.key} fired{gap} before {earlier.key} ({track_of.get(track_id, track_id)})")
    return found


def deadline_app_name(prefix: str, slot: int, number: int) -> str:
    return f"{prefix}-d{slot}.{number:02d}"


@contextlib.contextmanager
def watching(db: sa.Engine) -> Any:
    watch = ClaimWatch(db)
    watch.start()
    try:
        yield watch
    finally:
        watch.stop()
