"""The crash-and-fault harness: real daemons, SIGKILLed at random moments.

    python -m tests.chaos --db sqlite --daemons 1 --kills 25 --apps 3000 [--faults]
    python -m tests.chaos --db postgres --daemons 3 --kills 25 --apps 3000 --faults

What it does, on the real clock:

- `gongmo init` and `gongmo applicants import` (synthetic local governments: 5-digit codes, cities
  and counties under the population cap, unique addresses, a share reading English; half as many
  as the applications wanted, since both tracks invite everyone) on a config with one contest and
  two tracks, SMTP transport, leases of 10 s (the minimum), a tick of 0.5 s;
- an SMTP server in a process of its own (tests/chaos_smtp.py: tests/smtp_server.py's FaultySMTP
  plus 421s), which outlives every daemon; then N `gongmo daemon --no-api` processes;
- once they tick, the calendar is moved to start now (t0), as `gongmo init` with the rewritten
  config does: track `chaos-b` was announced two hours before (its announcement and its `-1h`
  reminder are caught up at once), track `chaos-a` is announced at t0 + 4 s, and every later
  milestone of both (receipt close, review end, written end, selection, kickoff) falls during
  the run;
- an "office" thread per track does what people do, through the engine, each step after the
  deadline it follows has fired: submits most plans (each with its plan, a PDF, and its budget
  sheet, an XLSX, uploaded first: a plan is received only with its documents; the rest
  expire), withdraws a few, passes or
  disqualifies the review, selects, waitlists, rejects, approves two kickoffs, withdraws a
  selected one (the first waitlisted is promoted) and releases the held results;
- the killer SIGKILLs a random daemon at random moments (half of them drawn to just after a
  deadline falls due) and restarts it after 0.2-1.5 s;
- with --faults the SMTP server refuses 3% of the recipients (550), answers 421 to every 5th
  connection and every 13th MAIL and 451 to every 7th DATA for the first 30% of the run, and
  goes away for a stretch;
- then waits (bounded) until every deadline fired and the outbox drained, stops the daemons with
  SIGTERM and checks, reading the database: both calls went out; every deadline fired, in
  calendar order per track, and its effect happened once; `gongmo audit verify` is clean; every
  notice the audit log and the deadlines call for is in the outbox once, and nothing else; every
  deliverable notice was received, every refused one is dead with its 550, none is stuck in
  sending; each duplicate received was caught in flight by a kill, at most one per connection
  per kill; no application was left behind by a deadline that fired.

It prints a plain-text report and exits 1 if an invariant fails. The seed fixes the data, the
faults and the kill plan; the interleaving with the daemons is the machine's.
tests/test_chaos.py runs a short form of it under pytest (marker `chaos`).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import io
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from gongmo.states.errors import GongmoError, OutsideWindow
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role
from gongmo.workflow.core import samples
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import SystemClock
from gongmo.workflow.core.db import make_engine, write
from gongmo.workflow.core.models import APPLICANT, APPLICATION, AUDIT, DEADLINE, OUTBOX, TRACK
from gongmo.workflow.deadlines.actions import SKIPPED
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox.notifier import superseded_by
from gongmo.workflow.outbox.office import release
from gongmo.workflow.runtime import wiring
from gongmo.workflow.runtime.wiring import open_app
from tests import chaos_faults as faults_
from tests.chaos_daemon import LAG_ENV, SLOW_ENV

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
OFFICE = Actor("chaos-office", Role.ADMIN)
TRACKS = ("chaos-a", "chaos-b")
SLOTS = 5
WAITLIST = 3
CAP_KRW = 2_000_000_000
BUDGET = samples.xlsx()  # every plan's budget sheet: the same bytes, stored once (content-addressed)
# The documents a plan comes with (issue 21): each required, of one type.
DOCUMENTS = """
  [[contests.documents]]
  kind = "plan"
  name_ko = "사업계획서"
  name_en = "Project plan"
  required = true
  types = ["pdf"]
  [[contests.documents]]
  kind = "budget"
  name_ko = "사업비 산출내역서"
  name_en = "Budget sheet"
  required = true
  types = ["xlsx"]
"""
# Triggers fired by a deadline (and by which one): each moves an application at most once.
DEADLINE_TRIGGERS = {
    "invite": "announce",
    "expire": "close_receipt",
    "start_review": "close_receipt",
    "start_presentation": "start_presentation",
    "cancel": "kickoff_closes",
    "lapse": "kickoff_closes",
}
FINAL_OR_HUMAN = ("expired", "withdrawn", "disqualified", "not_selected", "cancelled", "kickoff")


# -- options -----------------------------------------------------------------------------------------------


@dataclass
class Options:
    db: str = "sqlite"
    daemons: int = 1
    kills: int = 25
    apps: int = 3000  # applications wanted; applicants = apps / 2 (both tracks invite everyone)
    faults: bool = False  # SMTP faults: 421, 451, 550, an outage
    db_faults: bool = False  # PostgreSQL backends terminated mid-tick; SQLite's write lock held for a stretch
    clock_fault: bool = False  # one daemon's clock behind; a desk whose clock lags submits after the close
    term_fault: bool = False  # SIGTERM to the daemon holding a receipt close, its stop timed
    clock_lag: float = 3.0  # seconds the lagging daemon's clock is behind
    db_lock_s: float = 3.0  # how long SQLite's write lock is held each time
    stop_bound: float = 25.0  # a SIGTERMed daemon must be gone within this (stop_timeout_s 20 + exit)
    seed: int | None = None
    span: float | None = None  # seconds from the start to the last milestone; derived from kills if None
    database_url: str | None = None  # use this database (an empty one) instead of making one
    pg_url: str = field(default_factory=lambda: os.environ.get("GONGMO_TEST_PG_URL") or DEFAULT_PG_URL)
    workdir: Path | None = None
    keep: bool = False
    drain_timeout: float = 180.0
    connections: int = 4
    english: float = 0.1  # share of applicants that read English
    report_every: float = 10.0
    verbose: bool = True

    def all_faults(self) -> Options:
        self.faults = self.db_faults = self.clock_fault = self.term_fault = True
        return self

    def resolved_span(self) -> float:
        if self.span is not None:
            return self.span
        # one daemon: restart pause + boot (~3.5 s) and a life of ~4 s between kills; several take turns
        per_kill = 7.5 if self.daemons == 1 else 4.0
        return max(53.0, self.kills * per_kill + 6.0)


# -- the SMTP server ----------------------------------------------------------------------------------------------


class Sink:
    """The SMTP server, a process of its own (tests/chaos_smtp.py), and its controls."""

    def __init__(self, log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.chaos_smtp"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                cwd=ROOT,
                env=env,
            )
        self._lock = threading.Lock()
        self.port = int(self._read()["port"])

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the SMTP server process stopped (exit {self.proc.poll()})")
        return json.loads(line)

    def ask(self, *words: object) -> Any:
        with self._lock:
            assert self.proc.stdin is not None
            self.proc.stdin.write(" ".join(str(w) for w in words) + "\n")
            self.proc.stdin.flush()
            answer = self._read()
        if isinstance(answer, dict) and "error" in answer:
            raise RuntimeError(f"SMTP server: {' '.join(str(w) for w in words)[:60]}: {answer['error']}")
        return answer

    def refuse(self, addresses: list[str]) -> None:
        for i in range(0, len(addresses), 100):
            self.ask("refuse", *addresses[i : i + 100])

    def fail_data_every(self, n: int) -> None:
        self.ask("fail_data_every", n)

    def refuse_421(self, sessions_every: int, mails_every: int) -> None:
        self.ask("refuse_421", sessions_every, mails_every)

    def down(self) -> None:
        self.ask("down")

    def up(self) -> None:
        self.ask("up")

    def stats(self) -> dict[str, int]:
        return dict(self.ask("stats"))

    def received_ids(self) -> collections.Counter[str]:
        return collections.Counter(self.ask("ids"))

    def envelopes(self) -> dict[str, list[list[Any]]]:
        return dict(self.ask("envelopes"))

    def arrivals_of_duplicates(self) -> dict[str, list[float]]:
        return {str(m): [float(t) for t in times] for m, times in self.ask("dups").items()}

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.ask("quit")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- the world: config, applicants, database -------------------------------------------------------------------


def _at(t0: datetime, seconds: float) -> str:
    return (t0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Calendar:
    """Seconds after t0 of each milestone of one track (negative: before the start)."""

    announce_at: float
    receipt_closes: float
    review_ends: float
    written_ends: float
    selection_at: float
    kickoff_due: float
    reminders: tuple[str, ...] = ()

    def toml(self, t0: datetime) -> str:
        rows = {
            "announce_at": self.announce_at,
            "receipt_opens": self.announce_at,
            "receipt_closes": self.receipt_closes,
            "review_ends": self.review_ends,
            "written_starts": self.review_ends,
            "written_ends": self.written_ends,
            "presentation_starts": self.written_ends,
            "presentation_ends": self.written_ends,
            "selection_at": self.selection_at,
            "kickoff_due": self.kickoff_due,
        }
        return "\n".join(f"    {k} = {_at(t0, v)}" for k, v in rows.items())


LEASE_S = 10  # [gongmo] and [mail] lease_seconds: the minimum the config takes


def calendars_for(span: float, min_window: float = 0.0) -> dict[str, Calendar]:
    """chaos-b: announced two hours ago (caught up at start, with its reminder); chaos-a: announced
    a few seconds in. Every later milestone falls during the run, the two tracks interleaved.

    The receipt window outlasts a lease by half again (an announcement whose daemon was killed is
    taken over after its lease, and must still come before the close), and the office's steps
    (review, selection) have a gap of a lease and a half before the next deadline that needs them."""
    window = max(1.6 * LEASE_S, 0.3 * span, min_window)
    offset = max(3.0, 0.04 * span)
    gap = max(1.5 * LEASE_S, (span - 4.0 - window - offset) / 2)
    close_b = round(4.0 + window)
    close_a = round(4.0 + window + offset)

    def track(announce_at: float, close: float, reminders: tuple[str, ...] = ()) -> Calendar:
        return Calendar(
            announce_at=announce_at,
            receipt_closes=close,
            review_ends=round(close + 0.3 * gap),
            written_ends=round(close + gap),
            selection_at=round(close + 1.5 * gap),
            kickoff_due=round(close + 2 * gap),
            reminders=reminders,
        )

    return {
        "chaos-a": track(4.0, close_a),
        # the reminder is due an hour before the close: overdue at start, after the announcement
        "chaos-b": track(-7200.0, close_b, ("-1h",)),
    }


def config_text(database_url: str, smtp_port: int, t0: datetime, cals: dict[str, Calendar], connections: int) -> str:
    tracks = []
    for key, cal in cals.items():
        reminders = ", ".join(f'"{r}"' for r in cal.reminders)
        tracks.append(
            f"""
  [[contests.tracks]]
  key = "{key}"
  name_ko = "혼돈 시험 {key[-1].upper()}"
  name_en = "Chaos track {key[-1].upper()}"
  slots = {SLOTS}
  reminders = [{reminders}]
  kickoff_grace_days = 0

    [contests.tracks.eligibility]
    kinds = ["city", "county"]
    population_below = 1_000_000

    [contests.tracks.funding]
    national_cap_krw = {CAP_KRW}
    years = 1
    local_match_ratio = 1.0
    budget_national_krw = {SLOTS * CAP_KRW}

    [contests.tracks.calendar]
{cal.toml(t0)}
"""
        )
    return f"""# written by tests/chaos.py: the calendar falls during the run (t0 = {t0:%Y-%m-%d %H:%M:%S} UTC)
[gongmo]
environment = "development"
database_url = "{database_url}"
templates_dir = "{ROOT / "templates"}"
tick_seconds = 0.5
deadlines_per_tick = 20
lease_seconds = {LEASE_S}
on_time_seconds = 5

[mail]
sender = "스마트시티 공모(시험) <chaos@gongmo.example>"
transport = "smtp"
deliver_seconds = 0.2
lease_seconds = {LEASE_S}

  [mail.smtp]
  host = "127.0.0.1"
  port = {smtp_port}
  security = "none"
  connections = {connections}
  timeout_s = 5

[api]
enabled = false

[[contests]]
key = "chaos"
name_ko = "혼돈 시험 공모"
name_en = "Chaos contest"
ministry = "국토교통부 도시경제과"
office = "한국토지주택공사(LH) 스마트도시개발처"
office_phone = "044-201-3737"
portal_url = "https://www.smartcity.go.kr"
timezone = "Asia/Seoul"
# The calendar runs in minutes: a period's last day must not move to the next working day
# (Civil Act art. 161, the default), or a run on a Friday waits for Monday's kickoff close.
period_end_rule = "calendar"
national_budget_krw = {2 * SLOTS * CAP_KRW}
{DOCUMENTS}{"".join(tracks)}"""


UNINVITED = 3  # metropolitan cities: no call invites them; the lagging desk applies for them after the close


def write_applicants(path: Path, count: int, rng: random.Random, english: float) -> list[dict[str, str]]:
    """Synthetic local governments: 5-digit codes, cities and counties under the population cap,
    unique addresses; a share read English, spread among the Korean ones as in a real list. Then
    UNINVITED metropolitan cities (not returned), whom neither call invites."""
    rows = []
    for i in range(count + UNINVITED):
        code = f"{10000 + i:05d}"
        kind = "metropolitan_city" if i >= count else "city" if i % 3 else "county"
        rows.append(
            {
                "code": code,
                "name": f"혼돈{'시' if i % 3 else '군'}{i}",
                "kind": kind,
                "population": str(rng.randrange(20_000, 999_999)),
                "contact_name": f"담당자{i}",
                "email": f"smartcity{i}@lg{i % 97}.chaos.example",
                "language": "en" if rng.random() < english else "ko",
            }
        )
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows[:count]


def uninvited_codes(count: int) -> list[str]:
    return [f"{10000 + i:05d}" for i in range(count, count + UNINVITED)]


@contextlib.contextmanager
def database(options: Options, workdir: Path) -> Iterator[str]:
    """A fresh database for the run: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if options.database_url:
        yield options.database_url
        return
    if options.db == "sqlite":
        yield f"sqlite:///{workdir / 'gongmo.db'}"
        return
    name = f"chaos_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(options.pg_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    sep = "&" if "?" in options.pg_url else "?"
    try:
        yield f"{options.pg_url}{sep}options={quote(f'-csearch_path={name}')}"
    finally:
        if not options.keep:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        admin.dispose()


def gongmo_command() -> list[str]:
    """`gongmo` from this checkout (not the installed script: a scratch copy of older code runs its
    own code), through tests/chaos_daemon.py, which can set the clock behind."""
    return [sys.executable, "-m", "tests.chaos_daemon"]


# Every deadline action of the daemons starts this long after its claim (tests/chaos_daemon.py), so
# the aimed kills find deadlines held (a close of 300 was held for a few ms: none of 4 kills landed).
SLOW_FIRE_S = "0.6"


def gongmo_env(**extra: str) -> dict[str, str]:
    drop = ("GONGMO_DATABASE_URL", "GONGMO_NOW", "GONGMO_CONFIG", "PGAPPNAME", LAG_ENV, SLOW_ENV)
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**env, **extra}


def gongmo(config: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*gongmo_command(), "--config", str(config), *argv],
        env=gongmo_env(),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"gongmo {' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


# -- the daemons and the killer ------------------------------------------------------------------------------------


@dataclass
class Incarnation:
    slot: int
    number: int
    proc: subprocess.Popen[bytes]
    log: Path
    started: float
    app_name: str = ""  # its PostgreSQL application_name
    lag: float = 0.0  # seconds its clock is behind
    up_at: float | None = None  # when it logged that it ticks
    gone_at: float | None = None  # time.time() of its SIGKILL or SIGTERM

    @property
    def worker(self) -> str:
        return f"{socket.gethostname()}:{self.proc.pid}"

    def is_up(self) -> bool:
        if self.up_at is None and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                if b"ticking every" in self.log.read_bytes():
                    self.up_at = time.monotonic()
        return self.up_at is not None and self.proc.poll() is None


@dataclass
class Kill:
    at: float  # seconds after t0
    slot: int
    pid: int
    uptime: float  # seconds since it logged that it ticks (negative: killed while still starting)
    sending: list[int]  # outbox rows leased for sending when it died (any daemon's)
    deadlines: list[str]  # deadline rows it held, unfired
    wall: float = 0.0  # time.time() of the kill, the SMTP server's timebase for arrivals


@dataclass
class Stop:
    """A SIGTERM sent by the harness (the stop fault) and how the daemon took it."""

    slot: int
    number: int
    at: float  # seconds after t0
    deadlines: list[str]  # rows it held when told to stop
    took: float | None = None  # seconds until it exited (None: still going, or killed at the bound)
    exit: int | None = None
    trace: str = ""  # a traceback or CancelledError it logged after the SIGTERM


class Fleet:
    def __init__(
        self, config: Path, count: int, logdir: Path, tag: str = "chaos", lag_slot: int = 0, lag: float = 0.0
    ) -> None:
        self.config = config
        self.count = count
        self.logdir = logdir
        self.tag = tag  # application_name prefix of the daemons' PostgreSQL connections
        self.lag_slot, self.lag = lag_slot, lag
        self.live: dict[int, Incarnation] = {}
        self.all: list[Incarnation] = []
        self.unclean_stops: list[str] = []
        self.stopping: dict[int, tuple[Incarnation, float, int, Stop]] = {}  # slot -> SIGTERMed, t, log size, stop

    def start(self, slot: int) -> Incarnation:
        number = sum(1 for i in self.all if i.slot == slot) + 1
        log = self.logdir / f"daemon{slot}.{number:02d}.log"
        app_name = faults_.deadline_app_name(self.tag, slot, number)
        lag = self.lag if slot == self.lag_slot else 0.0
        env = gongmo_env(PGAPPNAME=app_name, **({LAG_ENV: str(lag)} if lag else {}), **{SLOW_ENV: SLOW_FIRE_S})
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [*gongmo_command(), "--config", str(self.config), "daemon", "--no-api"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.logdir,
            )
        inc = Incarnation(slot, number, proc, log, time.monotonic(), app_name, lag)
        self.live[slot] = inc
        self.all.append(inc)
        return inc

    def lag_of(self) -> dict[str, float]:
        return {inc.worker: inc.lag for inc in self.all}

    def gone_at(self) -> dict[str, float]:
        return {inc.worker: inc.gone_at for inc in self.all if inc.gone_at is not None}

    def by_worker(self, worker: str) -> Incarnation | None:
        return next((inc for inc in self.live.values() if inc.worker == worker), None)

    def term(self, slot: int, stop: Stop) -> None:
        """SIGTERM one daemon; `poll_stops` times its exit."""
        inc = self.live.pop(slot)
        size = inc.log.stat().st_size if inc.log.exists() else 0
        inc.gone_at = time.time()
        inc.proc.send_signal(signal.SIGTERM)
        self.stopping[slot] = (inc, time.monotonic(), size, stop)

    def poll_stops(self, bound: float) -> list[int]:
        """Slots whose SIGTERMed daemon is gone (SIGKILLed past the bound); each Stop filled in."""
        done = []
        for slot, (inc, sent, size, stop) in list(self.stopping.items()):
            took = time.monotonic() - sent
            if inc.proc.poll() is None:
                if took <= bound:
                    continue
                inc.proc.kill()
                inc.proc.wait()
            else:
                stop.took, stop.exit = took, inc.proc.returncode
            with contextlib.suppress(OSError), inc.log.open("rb") as f:
                f.seek(size)
                tail = f.read().decode("utf-8", "replace")
                hits = [ln for ln in tail.splitlines() if "Traceback" in ln or "CancelledError" in ln]
                stop.trace = "; ".join(hits[:2])
            del self.stopping[slot]
            done.append(slot)
        return done

    def start_all(self) -> None:
        for slot in range(1, self.count + 1):
            self.start(slot)

    def kill(self, slot: int) -> Incarnation:
        inc = self.live.pop(slot)
        inc.gone_at = time.time()
        inc.proc.send_signal(signal.SIGKILL)
        inc.proc.wait()
        return inc

    def stop_all(self, timeout: float = 20.0) -> None:
        for inc, _, _, _ in self.stopping.values():  # a stop fault still under way at the end
            with contextlib.suppress(subprocess.TimeoutExpired):
                inc.proc.wait(timeout)
        self.poll_stops(0.0)
        for inc in self.live.values():
            if inc.proc.poll() is None:
                inc.proc.send_signal(signal.SIGTERM)
        end = time.monotonic() + timeout
        for inc in self.live.values():
            try:
                inc.proc.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.unclean_stops.append(f"daemon {inc.slot}.{inc.number} (pid {inc.proc.pid}) ignored SIGTERM")
                inc.proc.kill()
                inc.proc.wait()
            else:
                if inc.proc.returncode not in (0, -signal.SIGTERM):
                    self.unclean_stops.append(
                        f"daemon {inc.slot}.{inc.number} (pid {inc.proc.pid}) exited {inc.proc.returncode} on SIGTERM"
                    )
        self.live.clear()

    def crashed(self) -> list[Incarnation]:
        """Daemons that died without being killed (a crash of gongmo's own)."""
        return [inc for inc in self.live.values() if inc.proc.poll() is not None]


# -- the office: what people do, through the engine ------------------------------------------------------------


class Office(threading.Thread):
    """One track's human steps, each after the deadline it follows has fired."""

    def __init__(self, run: Run, track: str, rng: random.Random) -> None:
        super().__init__(name=f"office-{track}", daemon=True)
        self.run_ = run
        self.track = track
        self.rng = rng
        self.app: App = open_app(run.config, SystemClock())
        self.log: list[str] = []
        self.late: list[str] = []
        self.errors: list[str] = []
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        self.desk: list[tuple[str, str]] = []  # the lagging desk's submissions after the close: (code, outcome)

    def note(self, text: str) -> None:
        self.log.append(f"{self.run_.clock():7.1f}s {self.track}: {text}")
        if self.run_.options.verbose:
            print(f"  [office {self.run_.clock():6.1f}s] {self.track}: {text}", flush=True)

    def run(self) -> None:
        try:
            self.steps()
        except Exception as exc:  # recorded and reported: the harness itself must not die silently
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.app.db.dispose()

    def wait_fired(self, action: str) -> bool:
        key = f"{self.track}:{action}"
        while not self.run_.stopping.is_set():
            if self.run_.fired(key):
                return True
            time.sleep(0.2)
        return False

    def ids(self, state: str) -> list[int]:
        with self.app.db.connect() as conn:
            return [
                int(r[0])
                for r in conn.execute(
                    sa.select(APPLICATION.c.id)
                    .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
                    .where(TRACK.c.key == self.track, APPLICATION.c.state == state)
                    .order_by(APPLICATION.c.id)
                )
            ]

    def before(self, action: str, step: str) -> None:
        """Record a step done after the next deadline already fired (its outcome then differs)."""
        if self.run_.fired(f"{self.track}:{action}"):
            self.late.append(f"{step} done after {self.track}:{action} fired")

    def tally(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] += n

    def try_move(self, app_id: int, trigger: str, reason: str | None = None, **fields: Any) -> bool:
        try:
            if fields:
                with write(self.app.db) as conn:
                    self.app.moves.move(conn, app_id, trigger, OFFICE, reason, fields=fields, extra=fields)
            else:
                self.app.moves.apply(app_id, trigger, OFFICE, reason)
        except GongmoError as exc:
            self.tally(f"{trigger} refused")
            self.note(f"{trigger} of application {app_id} refused: {exc}")
            return False
        self.tally(trigger)
        return True

    def lagging_desk(self) -> None:
        """The clock fault at a desk: after the close fired, a desk (an API replica) whose clock is
        5 s before the close takes plans from applicants the call never invited. A window once
        closed stays closed, whatever a caller's clock says: each must be refused, by the window
        (the plans come without documents: were the window to let one through, the documents'
        check would refuse it for another reason, and the check below tells them apart)."""
        run, cal = self.run_, self.run_.calendars[self.track]
        lag = timedelta(seconds=run.clock() - cal.receipt_closes + 5.0)
        desk = open_app(run.config, faults_.LaggingClock(lag))
        try:
            for code in run.uninvited:
                try:
                    moved = desk.moves.submit(self.track, code, CAP_KRW, CAP_KRW, OFFICE, title="늦은 혼돈", years=1)
                except GongmoError as exc:
                    # the window's refusal (OutsideWindow), not a later check's (its documents missing)
                    self.desk.append((code, f"refused ({type(exc).__name__}): {str(exc)[:80]}"))
                else:
                    self.desk.append((code, f"ACCEPTED as {moved.receipt_no} (application {moved.application_id})"))
        finally:
            desk.db.dispose()
        self.note(f"a desk {lag.total_seconds():.1f}s behind after the close: {self.desk}")

    def steps(self) -> None:
        run, rng, track = self.run_, self.rng, self.track
        cal = run.calendars[track]
        # 1. the receipt window: plans come in; some never do; a few withdraw
        if not self.wait_fired("announce"):
            return
        if track == "chaos-b" and not self.wait_fired("reminder:-1h"):
            return
        drafts = self.ids("announcement")
        if not drafts:
            self.late.append("nothing left to submit when the call's deadlines had fired (the receipt had closed)")
        codes = run.codes_of(drafts)
        rng.shuffle(drafts)
        n = len(drafts)
        withdraw_early = drafts[: max(2, n // 100)]
        never = set(drafts[len(withdraw_early) : len(withdraw_early) + max(3, n * 15 // 100)])
        submit = [i for i in drafts[len(withdraw_early) :] if i not in never]
        close_at = run.t0_mono + cal.receipt_closes - 0.3
        self.note(f"{n} invited: submitting {len(submit)}, {len(never)} will not, {len(withdraw_early)} withdraw")
        for app_id in withdraw_early:
            self.try_move(app_id, "withdraw")
        withdraw_after = set(rng.sample(submit, min(len(submit), max(2, len(submit) // 200))))

        def submit_one(app_id: int) -> None:
            if time.monotonic() >= close_at:
                self.tally("too late to submit")
                return
            try:
                # its plan (a PDF of its own) and its budget sheet first, then the plan itself
                plan = samples.pdf(f"chaos plan {codes[app_id]}")
                self.app.moves.uploads.add(app_id, "plan", f"혼돈_사업계획서_{app_id}.pdf", io.BytesIO(plan), OFFICE)
                self.app.moves.uploads.add(app_id, "budget", "사업비_산출내역서.xlsx", io.BytesIO(BUDGET), OFFICE)
                self.app.moves.submit(
                    track, codes[app_id], CAP_KRW, CAP_KRW, OFFICE, title=f"스마트 혼돈 {app_id}", years=1
                )
            except GongmoError as exc:
                self.tally("submit refused")
                self.note(f"submit of {codes[app_id]} (or one of its documents) refused: {exc}")
                return
            self.tally("submit")
            if app_id in withdraw_after:
                self.try_move(app_id, "withdraw")

        # plans come in from several desks at once (PostgreSQL takes them in parallel)
        with ThreadPoolExecutor(4, thread_name_prefix=f"desk-{track}") as desks:
            list(desks.map(submit_one, submit))
        if self.counts["too late to submit"]:
            self.late.append(f"receipt closed before {self.counts['too late to submit']} plans were submitted")
        self.note(f"{self.counts['submit']} plans submitted")
        # 2. after the close: the preliminary review, passed or disqualified
        if not self.wait_fired("close_receipt"):
            return
        if run.options.clock_fault:
            self.lagging_desk()
        review = self.ids("preliminary_review")
        rng.shuffle(review)
        out = review[: max(2, len(review) // 25)]
        self.before("start_presentation", "the review")
        disq = self.app.moves.apply_bulk(
            track, "disqualify", "preliminary_review", OFFICE, "chaos: ineligible", where=APPLICATION.c.id.in_(out)
        )
        passed = self.app.moves.apply_bulk(track, "pass_review", "preliminary_review", OFFICE)
        self.counts["disqualify"] += disq
        self.counts["pass_review"] += passed
        written = self.ids("written_evaluation")
        for app_id in rng.sample(written, min(2, len(written))):
            self.try_move(app_id, "withdraw")
        self.note(f"review: {passed} passed, {disq} disqualified")
        # 3. after the written evaluation: the selection, its notices released
        if not self.wait_fired("start_presentation"):
            return
        self.before("kickoff_closes", "the selection")
        pool = self.ids("presentation_evaluation")
        chosen, waiting = pool[:SLOTS], pool[SLOTS : SLOTS + WAITLIST]
        for app_id in chosen:
            self.try_move(app_id, "select")
        for position, app_id in enumerate(waiting, 1):
            self.try_move(app_id, "waitlist", waitlist_position=position)
        rejected = self.app.moves.apply_bulk(track, "reject", "presentation_evaluation", OFFICE)
        self.counts["reject"] += rejected
        for notice in ("selected", "waitlisted", "not_selected"):
            self.counts[f"released {notice}"] += release(self.app, track, notice)
        # some plans approved; one selected withdraws: the first waitlisted is promoted
        for app_id in chosen[:2]:
            self.try_move(app_id, "approve_kickoff")
        if len(chosen) > 2:
            self.try_move(chosen[-1], "withdraw")
        self.note(f"selection: {len(chosen)} selected, {len(waiting)} waitlisted, {rejected} rejected; released")
        # 4. after the kickoff deadline: the lapsed waitlist's results go out too
        if not self.wait_fired("kickoff_closes"):
            return
        for notice in ("selected", "waitlisted", "not_selected"):
            self.counts[f"released {notice}"] += release(self.app, track, notice)
        self.note("kickoff closed; the last held notices released")


# -- one run ---------------------------------------------------------------------------------------------------------


class Run:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.seed = options.seed if options.seed is not None else random.randrange(1 << 31)
        self.rng = random.Random(self.seed)
        # the receipt window must also fit most plans: PostgreSQL takes ~25 a second per track (each
        # submission locks the track row for its receipt number), SQLite ~40
        plans = 0.84 * max(20, (options.apps + 1) // 2)
        self.calendars = calendars_for(options.resolved_span(), 4.0 + plans / (25 if options.db == "postgres" else 40))
        self.span = max(cal.kickoff_due for cal in self.calendars.values())
        self.kills: list[Kill] = []
        self.stopping = threading.Event()
        self.started = time.monotonic()
        self.t0_mono = 0.0
        self.t0 = datetime.now(UTC)
        self.config = Path()
        self.db: sa.Engine | None = None
        self.refused: set[str] = set()
        self.fault_log: list[str] = []
        self.outages: list[float] = []  # when the SMTP server went away (epoch s)
        # (start, end) epoch s of each database fault: a message sent then may never be marked sent
        self.db_windows: list[tuple[float, float]] = []
        self._codes: dict[int, str] = {}
        self._fired: set[str] = set()
        self._fired_lock = threading.Lock()
        self.tag = f"chaos-{uuid.uuid4().hex[:8]}"  # application_name prefix of this run's daemons
        self.uninvited: list[str] = []
        self.watch: faults_.ClaimWatch | None = None
        self.stops: list[Stop] = []
        self.db_hits: list[str] = []  # what each database fault did
        self.db_missed: list[str] = []  # database faults that did not land
        self._fault_threads: list[threading.Thread] = []

    def clock(self) -> float:
        """Seconds since t0 (the instant the calendar is measured from)."""
        return time.monotonic() - self.t0_mono

    def say(self, text: str) -> None:
        if self.options.verbose:
            print(f"  [{self.clock():6.1f}s] {text}", flush=True)

    def fired(self, key: str) -> bool:
        with self._fired_lock:
            if key in self._fired:
                return True
        assert self.db is not None
        with self.db.connect() as conn:
            done = conn.execute(sa.select(DEADLINE.c.fired_at).where(DEADLINE.c.key == key)).scalar() is not None
        if done:
            with self._fired_lock:
                self._fired.add(key)
        return done

    def codes_of(self, ids: list[int]) -> dict[int, str]:
        assert self.db is not None
        with self.db.connect() as conn:
            rows = conn.execute(
                sa.select(APPLICATION.c.id, APPLICANT.c.code)
                .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
                .where(APPLICATION.c.id.in_(ids))
            )
            return {int(a): str(c) for a, c in rows}

    # -- the parts ---------------------------------------------------------------------------------------------

    def execute(self) -> Result:
        options = self.options
        owned = options.workdir is None
        workdir = Path(tempfile.mkdtemp(prefix="gongmo-chaos-")) if owned else options.workdir
        assert workdir is not None
        workdir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(workdir / "logs", ignore_errors=True)  # a reused work directory starts afresh
        for old in workdir.glob("gongmo.db*"):
            old.unlink()
        (workdir / "logs").mkdir()
        server = Sink(workdir / "logs" / "smtp.log")
        fleet: Fleet | None = None
        offices: list[Office] = []
        try:
            with database(options, workdir) as url:
                self.say(f"seed {self.seed}; work in {workdir}; span {self.span:.0f}s")
                applicants = self.setup(workdir, url, server)
                self.db = make_engine(url)
                self.url = url
                # one replica of several runs behind (a single SQLite daemon has no replica to disagree with)
                lag_slot = options.daemons if options.clock_fault and options.daemons > 1 else 0
                fleet = Fleet(self.config, options.daemons, workdir / "logs", self.tag, lag_slot, options.clock_lag)
                fleet.start_all()
                self.wait_up(fleet)
                self.watch = faults_.ClaimWatch(self.db)
                self.watch.start()
                self.start_clock(url, server)
                offices = [Office(self, track, random.Random(self.rng.random())) for track in TRACKS]
                for office in offices:
                    office.start()
                drained = self.chaos(fleet, server)
                self.stopping.set()
                for office in offices:
                    office.join(30)
                fleet.stop_all()
                self.watch.stop()
                for thread in self._fault_threads:
                    thread.join(60)
                self.say("daemons stopped")
                result = check(self, fleet, server, offices, applicants, drained)
                if self.db is not None:
                    self.db.dispose()
                return result
        finally:
            self.stopping.set()
            if self.watch is not None:
                self.watch.stop()
            if fleet is not None:
                for inc in fleet.live.values():
                    if inc.proc.poll() is None:
                        inc.proc.kill()
                        inc.proc.wait()
            server.close()
            if self.db is not None:
                self.db.dispose()
            if owned and not options.keep:
                shutil.rmtree(workdir, ignore_errors=True)

    def setup(self, workdir: Path, url: str, server: Sink) -> int:
        options = self.options
        applicants = max(20, (options.apps + 1) // 2)
        rows = write_applicants(workdir / "applicants.csv", applicants, self.rng, options.english)
        # init and import on a calendar a day ahead; then the calendar is set to start now (t0), as a
        # second `gongmo init` would do it (loader sync, deadlines derived), and the daemons start
        self.config = workdir / "chaos.toml"
        self.t0 = datetime.now(UTC) + timedelta(days=1)
        self.write_config(url, server)
        gongmo(self.config, "init")
        gongmo(self.config, "applicants", "import", str(workdir / "applicants.csv"))
        self.uninvited = uninvited_codes(applicants)
        if options.faults:
            refused = self.rng.sample(rows, max(2, len(rows) * 3 // 100))
            server.refuse([row["email"] for row in refused])
            self.refused = {row["email"].lower() for row in refused}
        self.say(f"init and import of {applicants} applicants done")
        return applicants

    def wait_up(self, fleet: Fleet, timeout: float = 120.0) -> None:
        """The daemons boot on the day-ahead calendar (nothing due); wait until each ticks."""
        end = time.monotonic() + timeout
        while not all(inc.is_up() for inc in fleet.live.values()):
            dead = [inc for inc in fleet.live.values() if inc.proc.poll() is not None]
            if dead or time.monotonic() > end:
                logs = "\n".join(inc.log.read_text(errors="replace")[-2000:] for inc in dead)
                raise RuntimeError(f"the daemons did not start within {timeout:.0f}s\n{logs}")
            time.sleep(0.1)

    def start_clock(self, url: str, server: Sink) -> None:
        """Move the calendar to start now (t0), as `gongmo init` with the rewritten config would: the
        contests synced, the deadline rows derived. The running daemons' ticks find them due."""
        self.t0 = (datetime.now(UTC) + timedelta(seconds=1)).replace(microsecond=0)
        self.t0_mono = time.monotonic() + (self.t0 - datetime.now(UTC)).total_seconds()
        self.write_config(url, server)
        app = open_app(self.config, SystemClock())
        try:
            wiring.prepare(app)
        finally:
            app.db.dispose()
        self.say(f"{self.options.daemons} daemon(s) up; the calendar starts now (t0 = {self.t0:%H:%M:%S} UTC)")

    def write_config(self, url: str, server: Sink) -> None:
        text = config_text(url, server.port, self.t0, self.calendars, self.options.connections)
        self.config.write_text(text, encoding="utf-8")

    def deadlines_due(self) -> list[float]:
        """Seconds after t0 at which deadlines fall due (the killer aims some kills just after them)."""
        out = []
        for cal in self.calendars.values():
            out += [cal.announce_at, cal.receipt_closes, cal.review_ends, cal.written_ends]
            out += [cal.selection_at, cal.kickoff_due]
        return sorted(t for t in out if t > 0)

    def faults(self, server: Sink) -> Iterator[tuple[float, str, Callable[[], None]]]:
        """The fault schedule: (seconds after t0, what, do it)."""
        s = self.span
        yield from self.db_faults()
        if not self.options.faults:
            return

        def faulty() -> None:
            server.fail_data_every(7)
            server.refuse_421(5, 13)

        def healthy() -> None:
            server.fail_data_every(0)
            server.refuse_421(0, 0)

        yield 0.0, "451 to every 7th DATA; 421 to every 5th connection and every 13th MAIL", faulty
        down = max(3.0, min(8.0, 0.06 * s))

        def away() -> None:
            self.outages.append(time.time())
            server.down()

        yield 0.15 * s, f"the SMTP server goes away for {down:.0f}s", away
        yield 0.15 * s + down, "the SMTP server is back", server.up
        # retries back off 15-30 s, then 30-60 s: the faults stop in time for the drain to end
        yield 0.30 * s, "451s and 421s stop (550s go on)", healthy

    def db_faults(self) -> Iterator[tuple[float, str, Callable[[], None]]]:
        """Database faults, each when a receipt close (long form: also later deadlines) falls due,
        so a tick is at work: PostgreSQL: every backend of the daemons terminated, again and again
        for 2.5 s; SQLite: the write lock taken and held for db_lock_s."""
        if not self.options.db_faults:
            return
        b, a = self.calendars["chaos-b"], self.calendars["chaos-a"]
        when = [("chaos-b:close_receipt", b.receipt_closes)]
        if self.options.kills >= 10:
            when += [("chaos-a:start_presentation", a.written_ends), ("chaos-b:kickoff_closes", b.kickoff_due)]
        for key, at in when:
            if self.options.db == "postgres":
                yield at, f"PostgreSQL: the daemons' backends terminated for 2.5s ({key} due)", self._storm_later(key)
            else:
                what = f"SQLite: the write lock held for {self.options.db_lock_s:.0f}s ({key} due)"
                yield at, what, self._lock_later(key)

    def _background(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name="db-fault", daemon=True)
        self._fault_threads.append(thread)
        thread.start()

    def _storm_later(self, key: str) -> Callable[[], None]:
        def storm() -> None:
            assert self.db is not None
            hits, end, start = 0, time.monotonic() + 2.5, time.time()
            while time.monotonic() < end and not self.stopping.is_set():
                with contextlib.suppress(Exception):
                    hits += faults_.terminate_backends(self.db, self.tag)
                time.sleep(0.1)
            self.db_windows.append((start, time.time()))
            (self.db_hits if hits else self.db_missed).append(f"{key}: {hits} backends terminated")

        return lambda: self._background(storm)

    def _lock_later(self, key: str) -> Callable[[], None]:
        def hold() -> None:
            path = sa.engine.make_url(self.url).database
            assert path
            start = time.time()
            lock = faults_.SqliteLock(path, self.options.db_lock_s)
            out = lock.wait(self.options.db_lock_s + 90)
            self.db_windows.append((start, time.time()))
            (self.db_hits if '"held"' in out else self.db_missed).append(f"{key}: write lock {out}")

        return lambda: self._background(hold)

    def chaos(self, fleet: Fleet, server: Sink) -> bool:
        """Kill and restart daemons until the kills are spent, then wait for the drain. True if drained."""
        options, rng = self.options, self.rng
        faults = sorted(self.faults(server), key=lambda f: f[0])
        window_end = self.span + 6.0  # kills fall until a little after the last milestone
        due = self.deadlines_due()
        restarts: dict[int, float] = {}
        next_kill: float | None = None
        drain_deadline = self.span + options.drain_timeout
        last_report = last_kill = 0.0
        # kills aimed at a held deadline (its holder SIGKILLed while the watch sees it hold the row)
        aim = max(1, options.kills // 8) if options.kills else 0
        aimed = 0
        term_at = self.calendars["chaos-a"].receipt_closes if options.term_fault else None
        while True:
            now = self.clock()
            for slot in fleet.poll_stops(options.stop_bound):
                restarts[slot] = now + rng.uniform(0.2, 1.5)
            if term_at is not None and now >= term_at and self.term(fleet, give_up=now >= term_at + 4.0):
                term_at = None
            while faults and faults[0][0] <= now:
                _, what, do = faults.pop(0)
                do()
                self.fault_log.append(f"{now:6.1f}s {what}")
                self.say(f"fault: {what}")
            for slot, at in list(restarts.items()):
                if now >= at:
                    del restarts[slot]
                    fleet.start(slot)
            for inc in fleet.live.values():
                inc.is_up()  # notes the instant it logs that it ticks
            for inc in fleet.crashed():
                self.say(f"daemon {inc.slot}.{inc.number} died by itself (exit {inc.proc.returncode}); restarting")
                fleet.live.pop(inc.slot)
                fleet.unclean_stops.append(
                    f"daemon {inc.slot}.{inc.number} died on its own: exit {inc.proc.returncode}"
                )
                restarts[inc.slot] = now + 0.5
            left = options.kills - len(self.kills)
            landed = sum(1 for k in self.kills if k.deadlines)
            # Random kills leave room for the aimed ones until they landed (or the window is over): with
            # 4 kills, random ones could spend the budget before any deadline was seen held.
            reserve = max(0, aim - landed) if now < window_end else 0
            if left > 0 and aimed < aim + 8 and landed < aim and now - last_kill > 1.0:
                victim = self.holder(fleet, least_up_s=2.0)  # it did some work first (or it never would)
                if victim is not None:
                    aimed += 1
                    self.kill(fleet, victim)
                    restarts[self.kills[-1].slot] = now + rng.uniform(0.2, 1.5)
                    next_kill, last_kill = None, now
                    continue
            if left > reserve and next_kill is None:
                next_kill = self.plan_kill(fleet, due, left - reserve, window_end)
            if next_kill is not None and now >= next_kill:
                # several daemons: a victim lives a little first, or the freshest would be hit again and again
                least = 0.3 if options.daemons == 1 else 1.5
                up = [inc for inc in fleet.live.values() if inc.is_up() and self.uptime(inc) >= least]
                if up:
                    self.kill(fleet, rng.choice(up))
                    restarts[self.kills[-1].slot] = now + rng.uniform(0.2, 1.5)
                    next_kill, last_kill = None, now
            if left <= 0 and not restarts and not faults and not fleet.stopping and term_at is None:
                state = self.progress()
                if state["unfired"] == 0 and state["open_mail"] == 0 and now > self.span:
                    return True
            if now > drain_deadline:
                self.say("drain timed out")
                return False
            if now - last_report >= options.report_every:
                last_report = now
                state = self.progress()
                self.say(
                    f"kills {len(self.kills)}/{options.kills}; deadlines unfired {state['unfired']};"
                    f" outbox {state['by_state']}; received {server.stats()['received']}"
                    + (f"; retry for {[tuple(w) for w in state['retry_why']]}" if state["retry_why"] else "")
                )
            time.sleep(0.05)

    def holder(self, fleet: Fleet, key_prefix: str = "", least_up_s: float = 0.0) -> Incarnation | None:
        """A live daemon the watch sees holding a deadline (one of `key_prefix`), up for at least
        `least_up_s`, if any."""
        if self.watch is None:
            return None
        for worker, keys in sorted(self.watch.held(time.time()).items()):
            inc = fleet.by_worker(worker)
            if inc is None or not inc.is_up() or self.uptime(inc) < least_up_s:
                continue
            if any(k.startswith(key_prefix) for k in keys):
                return inc
        return None

    def term(self, fleet: Fleet, give_up: bool) -> bool:
        """The stop fault: SIGTERM the daemon holding chaos-a's receipt close (after 4 s of looking,
        the holder of any deadline, or any daemon up). True once sent."""
        inc = self.holder(fleet, "chaos-a:close_receipt") or (self.holder(fleet) if give_up else None)
        if inc is None and give_up:
            inc = next((i for i in fleet.live.values() if i.is_up()), None)
        if inc is None:
            return False
        assert self.watch is not None
        held = self.watch.held(time.time()).get(inc.worker, [])
        stop = Stop(inc.slot, inc.number, self.clock(), held)
        fleet.term(inc.slot, stop)
        self.stops.append(stop)
        self.say(f"SIGTERM daemon {inc.slot}.{inc.number}: holding {', '.join(held) or 'no deadline'}")
        return True

    def uptime(self, inc: Incarnation) -> float:
        return time.monotonic() - inc.up_at if inc.up_at is not None else -1.0

    def plan_kill(self, fleet: Fleet, due: list[float], left: int, window_end: float) -> float | None:
        """When the next SIGKILL falls. One daemon: a random life after it came up (a kill needs the
        restart pause and a boot, ~3.5 s, besides). Several: random intervals, a random victim.
        Half the time a deadline falling due before then draws the kill to just after it."""
        now = self.clock()
        per = max(0.6, (window_end - now) / left)
        if self.options.daemons == 1:
            inc = next(iter(fleet.live.values()), None)
            if inc is None or not inc.is_up():
                return None  # planned once it is up
            born = now - self.uptime(inc)
            life = max(1.0, per - 3.5)
            at = max(now, born + self.rng.uniform(0.3, 2 * life))
        else:
            at = now + self.rng.uniform(0.2, max(0.4, 2 * per - 0.2))
        at = min(at, max(now + 0.2, window_end))  # the kills are spent by the end of the window
        upcoming = [d for d in due if now < d < at]
        if upcoming and self.rng.random() < 0.5:
            at = upcoming[0] + self.rng.uniform(0.05, 1.2)  # aim at the work a deadline brings
        return at

    def kill(self, fleet: Fleet, inc: Incarnation) -> None:
        assert self.db is not None
        uptime = self.uptime(inc)
        worker = inc.worker
        fleet.kill(inc.slot)
        at, wall = self.clock(), time.time()
        with self.db.connect() as conn:
            sending = [int(r[0]) for r in conn.execute(sa.select(OUTBOX.c.id).where(OUTBOX.c.state == "sending"))]
            held = [
                str(r[0])
                for r in conn.execute(
                    sa.select(DEADLINE.c.key).where(DEADLINE.c.claimed_by == worker, DEADLINE.c.fired_at.is_(None))
                )
            ]
        self.kills.append(Kill(at, inc.slot, inc.proc.pid, uptime, sending, held, wall))
        what = ", ".join(held) if held else "no deadline"
        self.say(f"SIGKILL daemon {inc.slot}.{inc.number} after {uptime:.1f}s up: {len(sending)} sending, {what}")

    def progress(self) -> dict[str, Any]:
        assert self.db is not None
        with self.db.connect() as conn:
            unfired = conn.execute(sa.select(sa.func.count()).where(DEADLINE.c.fired_at.is_(None))).scalar_one()
            rows = conn.execute(sa.select(OUTBOX.c.state, sa.func.count()).group_by(OUTBOX.c.state))
            by_state: dict[str, int] = {str(state): int(count) for state, count in rows}
            errors = conn.execute(sa.select(OUTBOX.c.last_error).where(OUTBOX.c.state == "retry")).scalars()
            why = collections.Counter((e or "")[:40] for e in errors).most_common(2)
        open_mail = sum(n for s, n in by_state.items() if s in ("pending", "retry", "sending", "held"))
        return {"unfired": int(unfired), "by_state": by_state, "open_mail": open_mail, "retry_why": why}


# -- the checks ------------------------------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Result:
    options: Options
    seed: int
    span: float
    elapsed: float
    applicants: int
    kills: list[Kill]
    checks: list[Check]
    numbers: dict[str, Any]
    lines: list[str]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def report(self) -> str:
        return "\n".join([*self.lines, "", f"result: {'PASS' if self.ok else 'FAIL'}"])


@dataclass
class World:
    """What the database holds at the end, read once."""

    deadlines: list[dict[str, Any]]
    tracks: dict[int, str]
    apps: dict[int, dict[str, Any]]  # id -> track, state
    history: dict[int, list[tuple[datetime, str, str, str]]]  # id -> (at, trigger, to_state, actor), in order
    outbox: list[dict[str, Any]]

    def state_at(self, app_id: int, at: datetime) -> str | None:
        state = None
        for when, _, to_state, _ in self.history[app_id]:
            if when > at:
                break
            state = to_state
        return state


def read_world(db: sa.Engine, lag_of: dict[str, float] | None = None) -> World:
    """`lag_of`: each worker's clock lag; the fired_at it wrote is put on the machine's clock."""
    with db.connect() as conn:
        deadlines = [dict(r) for r in conn.execute(sa.select(DEADLINE).order_by(DEADLINE.c.due_at)).mappings()]
        for d in deadlines:
            for k in ("due_at", "fired_at"):
                d[k] = _aware(d[k]) if d[k] is not None else None
            lag = (lag_of or {}).get(str(d["claimed_by"]), 0.0)
            if d["fired_at"] is not None and lag:
                d["fired_at"] += timedelta(seconds=lag)
        tracks = {int(r.id): str(r.key) for r in conn.execute(sa.select(TRACK.c.id, TRACK.c.key))}
        apps = {
            int(r.id): {"track": tracks[int(r.track_id)], "state": str(r.state)}
            for r in conn.execute(sa.select(APPLICATION.c.id, APPLICATION.c.track_id, APPLICATION.c.state))
        }
        history: dict[int, list[tuple[datetime, str, str, str]]] = collections.defaultdict(list)
        columns = (AUDIT.c.application_id, AUDIT.c.at, AUDIT.c.trigger, AUDIT.c.to_state, AUDIT.c.actor)
        query = sa.select(*columns).order_by(AUDIT.c.application_id, AUDIT.c.id)
        for app_id, at, trigger, to_state, actor in conn.execute(query):
            history[int(app_id)].append((_aware(at), str(trigger), str(to_state), str(actor)))
        names = ("id", "application_id", "notice", "dedup_key", "message_id", "to_addr", "subject", "state", "attempts")
        outbox = [
            dict(r)
            for r in conn.execute(
                sa.select(*(OUTBOX.c[c] for c in names), OUTBOX.c.last_error).order_by(OUTBOX.c.id)
            ).mappings()
        ]
    return World(deadlines, tracks, apps, history, outbox)


class Checker:
    def __init__(
        self,
        run: Run,
        world: World,
        received: collections.Counter[str],
        arrivals: dict[str, list[float]],
        envelopes: dict[str, list[list[Any]]] | None = None,
    ) -> None:
        self.run = run
        self.world = world
        self.received = received
        self.arrivals = arrivals
        self.envelopes = envelopes or {}
        self.checks: list[Check] = []
        self.n: dict[str, Any] = {}
        self.ambiguous: set[str] = set()

    def moved_near(self, app_id: int, at: datetime) -> bool:
        """Moved by the office from 2 s before `at` to a lease after: a deadline running then may or
        may not have seen the move."""
        return any(
            -2.0 < (when - at).total_seconds() < LEASE_S and actor == OFFICE.name
            for when, _, _, actor in self.world.history[app_id]
        )

    def ok(self, name: str, good: bool, detail: str = "") -> None:
        self.checks.append(Check(name, good, "" if good else detail))

    def contest(self, applicants: int) -> None:
        w = self.world
        invited = collections.Counter(
            info["track"] for a, info in w.apps.items() if w.history[a] and w.history[a][0][1] == "invite"
        )
        self.ok(
            "both calls went out (every applicant invited in each track)",
            all(invited[t] == applicants for t in TRACKS),
            ", ".join(f"{t}: {invited[t]} of {applicants} invited" for t in TRACKS)
            + " (an announcement caught up after its receipt close is skipped)",
        )

    def deadlines(self, fleet: Fleet) -> None:
        w, t0 = self.world, self.run.t0
        fired = [d for d in w.deadlines if d["fired_at"] is not None]
        unfired = [d["key"] for d in w.deadlines if d["fired_at"] is None]
        self.ok("every deadline fired", not unfired, ", ".join(unfired))
        disorder = []
        for track_id in w.tracks:
            rows = sorted((d for d in fired if d["track_id"] == track_id), key=lambda d: (d["due_at"], d["id"]))
            for earlier, later in itertools.pairwise(rows):
                if later["fired_at"] < earlier["fired_at"]:
                    gap = (earlier["fired_at"] - later["fired_at"]).total_seconds()
                    disorder.append(
                        f"{later['key']} (due t0{_rel(later['due_at'], t0)}) fired {gap:.1f}s before"
                        f" {earlier['key']} (due t0{_rel(earlier['due_at'], t0)})"
                    )
        self.ok("each track's deadlines fired in calendar order", not disorder, "; ".join(disorder[:4]))
        # exactly once: a deadline's effect on an application (its audit row) at most once
        twice = collections.Counter(
            (app_id, trigger)
            for app_id, rows in w.history.items()
            for trigger, n in collections.Counter(t for _, t, _, _ in rows).items()
            if trigger in DEADLINE_TRIGGERS and n > 1
        )
        doubled = sorted({f"{w.apps[a]['track']}:{DEADLINE_TRIGGERS[t]}" for a, t in twice})
        self.ok(
            "each deadline's effect happened once (no application moved twice by one)",
            not twice,
            f"{len(twice)} application moves twice, by {', '.join(doubled)}",
        )
        logged = _fired_in_logs(fleet)
        twice_logged = sorted(k for k, c in logged.items() if c > 1)
        self.ok("no deadline logged 'fired' twice", not twice_logged, ", ".join(twice_logged))
        self.claims(fleet)
        self.n["deadlines"] = {
            "total": len(w.deadlines),
            "fired": len(fired),
            "once": len(fired) - len(doubled),
            "late": sum(1 for d in fired if d["late"]),
            "claimed again": sum(1 for d in w.deadlines if d["attempts"] > 1),
            "logged twice": sorted(k for k, c in logged.items() if c > 1),
            "out of order": len(disorder),
        }

    def claims(self, fleet: Fleet) -> None:
        """What the claim watch saw: no row held by two daemons at once, each row fired after every
        earlier row of its track, and kills that landed on held rows, which others took over."""
        run = self.run
        assert run.watch is not None
        rows = run.watch.snapshot()
        track_of = {i: k for i, k in self.world.tracks.items()}
        doubled = faults_.double_holds(rows, LEASE_S, fleet.lag_of(), fleet.gone_at())
        self.ok("no deadline claimed by two holders at once (the claim watch)", not doubled, "; ".join(doubled[:4]))
        order = faults_.fired_out_of_order(rows, track_of)
        self.ok(
            "each deadline fired after every earlier deadline of its track (the claim watch)",
            not order,
            "; ".join(order[:4]),
        )
        landed = [k for k in run.kills if k.deadlines]
        by_key = {r.key: r for r in rows.values()}
        not_taken = []
        for k in landed:
            victim = next(i.worker for i in fleet.all if i.proc.pid == k.pid)
            for key in k.deadlines:
                r = by_key.get(key)
                later = [c for c in (r.claims if r else []) if c.holder != victim]
                if r is None or r.fired_seen is None or not later:
                    not_taken.append(f"{key} (held by killed {victim})")
        if run.kills:
            self.ok(
                "a kill landed while a deadline was held, and another daemon took the deadline over",
                bool(landed) and not not_taken,
                "; ".join(not_taken[:4]) or f"none of {len(run.kills)} kills found a deadline held",
            )
        self.n["watch"] = {
            "readings": run.watch.readings,
            "errors": run.watch.errors,
            "claims": sum(len(r.claims) for r in rows.values()),
            "taken over": sum(1 for r in rows.values() if len({c.holder for c in r.claims}) > 1),
        }

    def faults(self, offices: list[Office]) -> None:
        """The database, clock and stop faults landed, and gongmo took them as it should."""
        run, o = self.run, self.run.options
        if o.db_faults:
            self.ok("every database fault landed", bool(run.db_hits) and not run.db_missed, "; ".join(run.db_missed))
        if o.clock_fault:
            window = f"refused ({OutsideWindow.__name__})"
            accepted = [
                f"{office.track}: {code} {what}"
                for office in offices
                for code, what in office.desk
                if not what.startswith(window)  # accepted, or refused by anything but the window
            ]
            tried = sum(len(office.desk) for office in offices)
            self.ok(
                "a closed receipt window stays closed for a desk whose clock lags (every late plan refused by it)",
                tried > 0 and not accepted,
                "; ".join(accepted[:4]) or "the lagging desk never ran",
            )
            # and nothing waits in the window's states after its close fired
            closed = {
                d["track_id"]
                for d in self.world.deadlines
                if d["action"] == "close_receipt" and d["fired_at"] is not None
            }
            tracks = {v: k for k, v in self.world.tracks.items()}
            left_open = [
                f"{a}:{info['state']}"
                for a, info in self.world.apps.items()
                if info["state"] in ("announcement", "receipt") and tracks[info["track"]] in closed
            ]
            self.ok(
                "no application in announcement or receipt after its receipt close fired",
                not left_open,
                _sample(left_open),
            )
        if o.term_fault:
            bad = [
                f"daemon {s.slot}.{s.number}: "
                + (f"not gone after {o.stop_bound:.0f}s" if s.took is None else f"exit {s.exit} after {s.took:.1f}s")
                + (f", logged {s.trace[:100]}" if s.trace else "")
                for s in run.stops
                if s.took is None or s.exit not in (0, -signal.SIGTERM) or s.trace
            ]
            self.ok(
                f"each SIGTERM stop ended within {o.stop_bound:.0f}s, cleanly, without a traceback",
                bool(run.stops) and not bad,
                "; ".join(bad) or "no SIGTERM was sent",
            )

    def expected_notices(self) -> set[str]:
        """Every notice the audit log calls for (one per move that has one, keyed by the version it
        made), and the deadline-keyed ones: a reminder to each application still in announcement when
        it fired (or invited only after: it fired out of order), a plan request to each still selected."""
        w = self.world
        expected: set[str] = set()
        ambiguous = self.ambiguous
        for app_id, rows in w.history.items():
            for version, (_, trigger, _, _) in enumerate(rows, 1):
                notice = "call_announcement" if trigger == "invite" else _notice_of(trigger)
                if notice:
                    expected.add(f"{app_id}:{notice}:{version}")
        for d in w.deadlines:
            if d["fired_at"] is None or d["action"] not in ("reminder", "kickoff_plan_due"):
                continue
            if (d["last_error"] or "").startswith(SKIPPED):
                continue  # recorded skipped (a reminder that fired after its close): nothing is sent; checked below
            notice, state = (
                ("deadline_reminder", "announcement")
                if d["action"] == "reminder"
                else ("kickoff_plan_request", "selected")
            )
            track = w.tracks[int(d["track_id"])]
            for app_id, info in w.apps.items():
                if info["track"] != track:
                    continue
                key = f"{app_id}:{notice}:{d['key']}"
                if notice == "kickoff_plan_request" and self.moved_near(app_id, d["fired_at"]):
                    ambiguous.add(key)  # the office moved it while the deadline ran: either is right
                    continue
                then = w.state_at(app_id, d["fired_at"])
                invited = bool(w.history[app_id]) and w.history[app_id][0][1] == "invite"
                if then == state or (then is None and state == "announcement" and invited):
                    expected.add(key)
        return expected

    def skipped_reminders(self) -> None:
        """A reminder is recorded skipped only when it fired at or after its track's receipt close
        (kills held it back) or gave way to a later reminder due too; never one it could still send."""
        w = self.world
        due = {d["key"]: d["due_at"] for d in w.deadlines}
        wrong, seen = [], []
        for d in w.deadlines:
            error = d["last_error"] or ""
            if d["action"] != "reminder" or not error.startswith(SKIPPED):
                continue
            seen.append(d["key"])
            close = due[f"{d['key'].split(':', 1)[0]}:close_receipt"]
            if d["fired_at"] < close and "is due too" not in error:
                wrong.append(f"{d['key']} fired {d['fired_at']} before the close {close}: {error[:80]}")
        self.ok("a reminder is skipped only after its close (or for a later one)", not wrong, "; ".join(wrong[:3]))
        self.n["skipped reminders"] = ", ".join(seen) or "none"

    def notices(self) -> None:
        self.skipped_reminders()
        expected = self.expected_notices()
        keys = collections.Counter(r["dedup_key"] for r in self.world.outbox)
        missing, extra = expected - set(keys), set(keys) - expected - self.ambiguous
        self.ok("every notice that should exist is in the outbox", not missing, _sample(missing))
        self.ok("no notice in the outbox that should not be", not extra, _sample(extra))
        # (the UNIQUE dedup key makes "no notice twice in the outbox" true by itself: not checked)
        wrong_key = [
            f"{r['id']}:{r['dedup_key']}"
            for r in self.world.outbox
            if not str(r["dedup_key"]).startswith(f"{r['application_id']}:{r['notice']}:")
        ]
        self.ok("each outbox row's dedup key names its own application and notice", not wrong_key, _sample(wrong_key))
        self.n["expected"] = len(expected) + len(self.ambiguous & set(keys))

    def delivery(self, refused: set[str]) -> None:
        outbox, received = self.world.outbox, self.received
        by_app: dict[int, list[dict[str, Any]]] = collections.defaultdict(list)
        for r in outbox:
            by_app[r["application_id"]].append(r)
        stuck, lost, wrongly_dead, not_dead, bad_cancel = [], [], [], [], []
        for r in outbox:
            error = r["last_error"] or ""
            if r["state"] in ("pending", "retry", "sending", "held"):
                stuck.append(f"{r['id']}:{r['state']}")
            elif r["state"] == "cancelled":
                family = superseded_by(r["notice"])
                newer = [x for x in by_app[r["application_id"]] if x["id"] > r["id"] and x["notice"] in family]
                if not newer or "superseded" not in error or received.get(r["message_id"]):
                    bad_cancel.append(str(r["id"]))
            elif r["to_addr"].lower() in refused:
                if r["state"] != "dead" or not error.startswith("550") or received.get(r["message_id"]):
                    not_dead.append(f"{r['id']}:{r['state']}:{error[:24]}")
            elif r["state"] == "dead":
                wrongly_dead.append(f"{r['id']}:{error[:60]}")
            elif not received.get(r["message_id"]):
                lost.append(f"{r['id']}:{r['notice']}")
        known = {r["message_id"] for r in outbox}
        phantom = [m for m in received if m not in known]
        deliverable = [r for r in outbox if r["state"] != "cancelled" and r["to_addr"].lower() not in refused]
        self.ok("nothing stuck in sending (nor pending, retry, held)", not stuck, _sample(stuck))
        self.ok("every deliverable notice was received", not lost, _sample(lost))
        self.ok("no notice dead but one to a refused recipient", not wrongly_dead, _sample(wrongly_dead))
        self.ok(
            "every notice to a refused recipient is dead with its 550, none received", not not_dead, _sample(not_dead)
        )
        self.ok(
            "every cancelled notice was superseded by a newer one, none received", not bad_cancel, _sample(bad_cancel)
        )
        self.ok("nothing received that the outbox never had", not phantom, _sample(phantom))
        # each message received went to its row's recipient, under its row's subject (every copy)
        by_mid = {r["message_id"]: r for r in outbox}
        misaddressed = []
        for mid, copies in self.envelopes.items():
            row = by_mid.get(mid)
            if row is None:
                continue
            want = row["to_addr"].lower()
            for rcpts, to, subject in copies:
                if [str(x).lower() for x in rcpts] != [want] or want not in str(to).lower():
                    misaddressed.append(f"{row['id']}: to {rcpts} / To: {str(to)[:40]} (row: {want})")
                elif " ".join(str(subject).split()) != " ".join(str(row["subject"]).split()):
                    misaddressed.append(f"{row['id']}: subject {str(subject)[:40]!r} (row: {row['subject'][:40]!r})")
        unseen = [m for m in received if m in by_mid and m not in self.envelopes]
        self.ok(
            "every message received went to its row's recipient under its row's subject",
            not misaddressed and not unseen,
            _sample(misaddressed) or f"no envelope kept for {_sample(unseen)}",
        )
        states = collections.Counter(r["state"] for r in outbox)
        self.n["outbox"] = {
            "rows": len(outbox),
            "by notice": collections.Counter(r["notice"] for r in outbox),
            "states": states,
            "dead 550": sum(1 for r in outbox if r["state"] == "dead" and (r["last_error"] or "").startswith("550")),
            "deliverable": len(deliverable),
            "delivered": sum(1 for r in deliverable if received.get(r["message_id"])),
            "received": sum(received.values()),
            "retried": sum(1 for r in outbox if r["attempts"] > 1),
        }

    def duplicates(self) -> None:
        """A duplicate is a message received more than once. The design allows one only for a
        message in flight (leased for sending) when its daemon was killed; the allowance per kill
        is one per connection, the messages that can be on the wire at once."""
        run, received = self.run, self.received
        by_mid = {r["message_id"]: r for r in self.world.outbox}
        caught: dict[int, list[int]] = collections.defaultdict(list)  # outbox id -> kills that caught it
        for k, kill in enumerate(run.kills):
            for oid in kill.sending:
                caught[oid].append(k)
        per_kill: collections.Counter[int] = collections.Counter()
        unexplained = []
        extra_copies = cut = cut_db = 0
        for mid, count in received.items():
            if count < 2:
                continue
            extra_copies += count - 1
            row = by_mid.get(mid)
            kills = caught.get(row["id"], []) if row else []
            # Each copy but the last was sent and never marked. The kill that caused it is the first
            # one after it arrived that found its row still leased (a later kill can find the row
            # leased too, before its lease ran out, but did not cause that copy). A copy stored just
            # before the server went away is explained by the outage: its 250 may never have reached
            # the sender.
            lone = 0
            for t in sorted(self.arrivals.get(mid, []))[: count - 1]:
                cause = next((k for k in kills if run.kills[k].wall >= t), None)
                if any(start - 1.0 <= t <= end + 1.0 for start, end in run.db_windows):
                    # While the daemons' connections are being cut, a sent message's mark can fail on any
                    # daemon: its lanes stop, and the row goes out again after its lease. A kill in the
                    # same seconds finds that row leased without having caused the copy.
                    cut_db += 1
                elif cause is not None:
                    per_kill[cause] += 1
                elif any(0 <= down - t < 2.0 for down in run.outages):
                    cut += 1
                else:
                    lone += 1
            if lone:
                when = ", ".join(f"t0{t - run.t0.timestamp():+.1f}s" for t in sorted(self.arrivals.get(mid, [])))
                unexplained.append(
                    f"{mid} x{count} ({lone} copies with no kill after them that found it leased; arrived {when})"
                )
        allowance = run.options.connections
        over = {k: c for k, c in per_kill.items() if c > allowance}
        # A database fault stops each daemon's lanes at their first failed mark: one copy per connection
        # per daemon per fault at most.
        db_allowance = allowance * run.options.daemons * len(run.db_windows)
        self.ok(
            f"at most one duplicate per connection and daemon at a database fault ({db_allowance} in all)",
            cut_db <= db_allowance,
            f"{cut_db} copies arrived during database faults",
        )
        self.ok("every duplicate was in flight (leased for sending) at a kill", not unexplained, _sample(unexplained))
        self.ok(
            f"at most one duplicate per message on the wire at a kill ({allowance} connections)",
            not over,
            ", ".join(f"kill {k + 1} at {run.kills[k].at:.1f}s: {c} duplicates" for k, c in sorted(over.items())[:6]),
        )
        self.n["duplicates"] = {
            "messages": sum(1 for c in received.values() if c > 1),
            "extra copies": extra_copies,
            "kills causing": len(per_kill),
            "most from one kill": max(per_kill.values(), default=0),
            "kills over": len(over),
            "allowance": allowance,
            "cut by the outage": cut,
            "cut by a database fault": cut_db,
        }

    def applications(self) -> None:
        """None left in a state a fired deadline should have moved it out of (it was there before)."""
        w = self.world
        moved_by = {
            "announcement": "close_receipt",
            "receipt": "close_receipt",
            "written_evaluation": "start_presentation",
            "selected": "kickoff_closes",
            "waitlisted": "kickoff_closes",
        }
        by_key = {d["key"]: d for d in w.deadlines}
        left, human = [], []
        for app_id, info in w.apps.items():
            if info["state"] in FINAL_OR_HUMAN:
                continue
            action = moved_by.get(info["state"])
            d = by_key.get(f"{info['track']}:{action}") if action else None
            entered = w.history[app_id][-1][0] if w.history[app_id] else None
            if d is not None and d["fired_at"] is not None and entered is not None and entered < d["fired_at"]:
                left.append(f"{app_id}:{info['state']}")
            else:
                human.append(f"{app_id}:{info['state']}")
        self.ok("no application left behind by a deadline that fired", not left, _sample(left))
        self.n["final"] = collections.Counter((info["track"], info["state"]) for info in w.apps.values())
        self.n["human"] = human

    def audit(self) -> None:
        done = gongmo(self.run.config, "audit", "verify", "--json", check=False)
        try:
            verdict = json.loads(done.stdout)
            clean = bool(verdict["clean"]) and done.returncode == 0
            text = (
                f"clean ({verdict['applications']} applications, {verdict['audit_rows']} audit rows)"
                if clean
                else f"NOT clean: {len(verdict['findings'])} findings, e.g. {verdict['findings'][:3]}"
            )
        except (json.JSONDecodeError, KeyError):
            clean, text = False, f"NOT clean: exit {done.returncode}: {(done.stdout + done.stderr)[-300:]}"
        self.ok("gongmo audit verify is clean", clean, text)
        self.n["audit"] = text


def check(run: Run, fleet: Fleet, server: Sink, offices: list[Office], applicants: int, drained: bool) -> Result:
    assert run.db is not None
    world = read_world(run.db, fleet.lag_of())
    checker = Checker(run, world, server.received_ids(), server.arrivals_of_duplicates(), server.envelopes())
    checker.contest(applicants)
    checker.deadlines(fleet)
    checker.faults(offices)
    checker.notices()
    checker.delivery(run.refused)
    checker.duplicates()
    checker.applications()
    checker.audit()
    errors = [f"{o.track}: {e}" for o in offices for e in o.errors]
    checker.ok("the office's steps ran without error", not errors, "; ".join(errors))
    checker.ok("the outbox drained and every deadline fired within the bounded wait", drained)
    checker.ok(
        "every daemon stopped cleanly on SIGTERM and none died on its own",
        not fleet.unclean_stops,
        "; ".join(fleet.unclean_stops),
    )
    elapsed = time.monotonic() - run.started
    lines = report_lines(run, checker, server.stats(), offices, fleet, applicants, elapsed)
    return Result(run.options, run.seed, run.span, elapsed, applicants, run.kills, checker.checks, checker.n, lines)


def report_lines(
    run: Run, c: Checker, stats: dict[str, int], offices: list[Office], fleet: Fleet, applicants: int, elapsed: float
) -> list[str]:
    o, n = run.options, c.n
    d, box, dup = n["deadlines"], n["outbox"], n["duplicates"]
    states = box["states"]
    held = sorted({key for k in run.kills for key in k.deadlines})
    per_state = collections.Counter(state for (_, state) in n["final"].elements())
    lines = [
        f"gongmo chaos report ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, seed {run.seed})",
        "",
        f"  backend                  {'SQLite' if o.db == 'sqlite' else 'PostgreSQL'}, {o.daemons} daemon(s)",
        f"  applications             {len(c.world.apps)} in 2 tracks ({applicants} applicants,"
        f" {o.english:.0%} reading English)",
        f"  calendar                 17 deadlines from t0 to t0 + {run.span:.0f}s (chaos-b announced 2h before t0)",
        f"  SMTP faults              {'on' if o.faults else 'off'}",
    ]
    lines += [f"                             {line}" for line in run.fault_log]
    if o.faults:
        lines.append(
            f"                             {len(run.refused)} recipients refused; the server answered"
            f" 421 x{stats['refused_421']}, 451 x{stats['data_failures']}, 550 x{stats['rcpt_refusals']}"
        )
    if o.db_faults:
        lines += [f"  database faults          {x}" for x in run.db_hits + [f"MISSED {m}" for m in run.db_missed]]
    if o.clock_fault:
        lag = [i for i in fleet.all if i.lag]
        lines.append(
            f"  clock fault              daemon {lag[0].slot} runs {o.clock_lag:.1f}s behind ({len(lag)} incarnations)"
            if lag
            else "  clock fault              no daemon lags (one daemon); a desk lags"
        )
        for office in offices:
            lines.append(
                f"                             {office.track}: a desk behind the close took"
                f" {sum(1 for _, w in office.desk if 'ACCEPTED' in w)} of {len(office.desk)} late plans"
            )
    if o.term_fault:
        for st in run.stops:
            took = f"gone after {st.took:.1f}s (exit {st.exit})" if st.took is not None else "NOT gone"
            lines.append(
                f"  SIGTERM                  daemon {st.slot}.{st.number} at {st.at:.1f}s holding"
                f" {', '.join(st.deadlines) or 'no deadline'}: {took}"
            )
    lines += [
        f"  elapsed                  {elapsed:.1f}s",
        "",
        "kills",
        f"  SIGKILL                  {len(run.kills)}, each restarted after 0.2-1.5s",
        f"  with mail leased         {sum(1 for k in run.kills if k.sending)} (rows leased for sending at the kill,"
        " any daemon's)",
        f"  holding a deadline       {sum(1 for k in run.kills if k.deadlines)}"
        + (f" ({', '.join(held)})" if held else ""),
        f"  claim watch              {n['watch']['readings']} readings ({n['watch']['errors']} failed),"
        f" {n['watch']['claims']} claims seen, {n['watch']['taken over']} rows taken over by another holder",
        "",
        "deadlines",
        f"  total / fired            {d['total']} / {d['fired']}",
        f"  fired exactly once       {d['once']}",
        f"  fired out of order       {d['out of order']}",
        f"  caught up (late)         {d['late']}",
        f"  claimed more than once   {d['claimed again']} (a kill or a lease that ran out)",
        f"  logged fired twice       {len(d['logged twice'])}"
        + (f" ({', '.join(d['logged twice'])})" if d["logged twice"] else ""),
        f"  reminders skipped        {n.get('skipped reminders', 'none')} (fired after their close: not sent)",
        "",
        "applications by final state",
    ]
    for state in sorted(per_state, key=TABLE.state_names.index):
        split = "  ".join(f"{t} {n['final'][(t, state)]}" for t in TRACKS)
        lines.append(f"  {state:<24} {per_state[state]:>6}   ({split})")
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(box["by notice"].items()))
    lines += [
        "",
        "notices",
        f"  expected                 {n['expected']}",
        f"  in outbox                {box['rows']}",
        f"                           ({kinds})",
        f"  sent                     {states.get('sent', 0)}",
        f"  dead                     {states.get('dead', 0)} (with 550: {box['dead 550']})",
        f"  cancelled (superseded)   {states.get('cancelled', 0)}",
        f"  deliverable              {box['deliverable']}",
        f"  delivered                {box['delivered']} (messages received: {box['received']})",
        f"  duplicated               {dup['messages']} messages, {dup['extra copies']} extra copies;"
        f" {dup['kills causing']} kills caused them, at most {dup['most from one kill']} from one"
        f" (allowance {dup['allowance']})"
        + (f"; {dup['cut by the outage']} cut by the outage" if dup["cut by the outage"] else "")
        + (
            f"; {dup['cut by a database fault']} sent during a database fault" if dup["cut by a database fault"] else ""
        ),
        f"  retried                  {box['retried']}",
        f"  stuck in sending         {states.get('sending', 0)}"
        f" (pending {states.get('pending', 0)}, retry {states.get('retry', 0)}, held {states.get('held', 0)})",
        "",
        f"audit verify               {n['audit']}",
    ]
    late = [f"{o.track}: {x}" for o in offices for x in o.late]
    if late or n["human"]:
        lines += ["", "office (the human steps)"]
        lines += [f"  {x}" for x in late]
        if n["human"]:
            lines.append(f"  left in a state only people move on: {_sample(n['human'], 4)}")
    problems = _log_problems(fleet)
    if problems:
        lines += ["", "daemon logs: warnings and errors"]
        lines += [f"  {count:>5} x {text}" for text, count in problems.most_common(10)]
    lines += ["", "invariants"]
    for chk in c.checks:
        lines.append(f"  {'PASS' if chk.ok else 'FAIL'}  {chk.name}" + (f": {chk.detail}" if chk.detail else ""))
    return lines


def _rel(at: datetime, t0: datetime) -> str:
    seconds = (at - t0).total_seconds()
    return f"{seconds:+.0f}s" if abs(seconds) < 3600 else f"{seconds / 3600:+.1f}h"


def _notice_of(trigger: str) -> str | None:
    if not TABLE.has_trigger(trigger):
        return None
    return TABLE.trigger(trigger).notice


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _sample(items: Any, n: int = 6) -> str:
    items = sorted(items, key=str)
    text = ", ".join(str(i) for i in items[:n])
    return f"{len(items)}: {text}" + (" ..." if len(items) > n else "") if items else ""


FIRED_LINE = re.compile(r"gongmo\.ticker INFO deadline (\S+) fired")


def _fired_in_logs(fleet: Fleet) -> collections.Counter[str]:
    counts: collections.Counter[str] = collections.Counter()
    for inc in fleet.all:
        with contextlib.suppress(OSError):
            for match in FIRED_LINE.finditer(inc.log.read_text(encoding="utf-8", errors="replace")):
                counts[match.group(1)] += 1
    return counts


PROBLEM = re.compile(r"(WARNING|ERROR|CRITICAL) (.*)")


def _log_problems(fleet: Fleet) -> collections.Counter[str]:
    """Warnings and errors the daemons logged, by kind (numbers and addresses folded)."""
    counts: collections.Counter[str] = collections.Counter()
    for inc in fleet.all:
        with contextlib.suppress(OSError):
            text = inc.log.read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            match = PROBLEM.search(line)
            if match and "maximum number of running instances reached" not in line:  # APScheduler: a busy job
                kind = re.sub(r"\d+", "N", match.group(2))
                kind = re.sub(r"smartcityN@lgN\.chaos\.example", "ADDR", kind)
                counts[f"{match.group(1)} {kind[:140]}"] += 1
            elif line.startswith("Traceback"):
                counts["Traceback"] += 1
    return counts


# -- the command -------------------------------------------------------------------------------------------------------


def run(options: Options) -> Result:
    return Run(options).execute()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--daemons", type=int, default=None, help="daemon processes (default 1 sqlite, 3 postgres)")
    parser.add_argument("--kills", type=int, default=25)
    parser.add_argument("--apps", type=int, default=3000, help="applications (two tracks; half as many applicants)")
    parser.add_argument(
        "--faults",
        action="store_true",
        help="every fault kind: SMTP (421, 451, 550, an outage), database (PostgreSQL backends terminated,"
        " SQLite's write lock held), clock (a daemon and a desk behind), stop (SIGTERM during a receipt close)",
    )
    parser.add_argument(
        "--fault-kinds", default=None, help="with --faults, only these: a comma list of smtp, db, clock, stop"
    )
    parser.add_argument("--clock-lag", type=float, default=3.0, help="seconds the lagging daemon is behind (3)")
    parser.add_argument("--db-lock-s", type=float, default=3.0, help="seconds SQLite's write lock is held (3)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--span", type=float, default=None, help="seconds from the start to the last milestone")
    parser.add_argument("--pg-url", default=os.environ.get("GONGMO_TEST_PG_URL") or DEFAULT_PG_URL)
    parser.add_argument("--workdir", type=Path, default=None, help="keep config, CSV, logs (and SQLite file) here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and the PostgreSQL schema")
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument("--english", type=float, default=0.1, help="share of applicants reading English (0.1)")
    parser.add_argument(
        "--connections", type=int, default=4, help="SMTP connections per daemon (the duplicate allowance per kill)"
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    options = Options(
        db=args.db,
        daemons=args.daemons or (1 if args.db == "sqlite" else 3),
        kills=args.kills,
        apps=args.apps,
        seed=args.seed,
        clock_lag=args.clock_lag,
        db_lock_s=args.db_lock_s,
        span=args.span,
        pg_url=args.pg_url,
        workdir=args.workdir,
        keep=args.keep,
        drain_timeout=args.drain_timeout,
        english=args.english,
        connections=args.connections,
        verbose=not args.quiet,
    )
    if args.faults:
        kinds = set((args.fault_kinds or "smtp,db,clock,stop").split(","))
        unknown = kinds - {"smtp", "db", "clock", "stop"}
        if unknown:
            parser.error(f"--fault-kinds {','.join(sorted(unknown))}: the kinds are smtp, db, clock, stop")
        options.faults, options.db_faults = "smtp" in kinds, "db" in kinds
        options.clock_fault, options.term_fault = "clock" in kinds, "stop" in kinds
    result = run(options)
    print(result.report())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
