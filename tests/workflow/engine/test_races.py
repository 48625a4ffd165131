"""Races: admins and applicants acting on the same applications at the same
instant, from threads and from separate OS processes, on SQLite and on
PostgreSQL. For every conflicting pair exactly one wins, the loser gets a clear
refusal naming the application, the receipt numbers stay unique and gap-free,
and the audit log still replays to every application's state.

(tests/workflow/test_engine.py has the single-pair select/reject race without
a version check; these add expected versions, submissions and processes.)
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import traceback
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gongmo.states.errors import Conflict, GongmoError, IllegalMove
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICANT, APPLICATION, AUDIT, OUTBOX, TRACK
from gongmo.workflow.engine import audit
from gongmo.workflow.engine.app import App
from gongmo.workflow.engine.moves import Moved
from gongmo.workflow.runtime.wiring import open_app
from gongmo.workflow.stages import applicants
from tests.conftest import CONFIG, config_copy, kst, make_app
from tests.workflow import plans

TRACK_KEY = "strong-small-2024"
PREFIX = "STRONG-SMALL-2024"
ANNOUNCE = kst("2024-03-29 10:00")
OPEN = kst("2024-05-28 10:00")
CLOSE = kst("2024-05-29 18:00")
REASON = "인구 기준 초과"
WAIT_S = 60  # a barrier or a join that takes longer than this is a hang, not a slow machine

ADMIN_A = Actor("admin-a", Role.ADMIN)
ADMIN_B = Actor("admin-b", Role.ADMIN)
APPLICANT_ACTOR = Actor("applicant", Role.APPLICANT)


# -- set-up ------------------------------------------------------------------------


def add_applicants(app: App, first: int, count: int) -> list[str]:
    """`count` more eligible cities (codes 9xxxx), so the races have many applications."""
    rows = [
        applicants.ApplicantRow(
            code=f"9{i:04d}",
            name=f"경합시 {i}",
            kind="city",
            population=100_000 + i,
            contact_name="담당자",
            email=f"race{i}@lg.example",
            language="en" if i % 3 == 0 else "ko",
        )
        for i in range(first, first + count)
    ]
    with write(app.db) as conn:
        applicants.store(conn, rows)
    return [r.code for r in rows]


def second_app(db_url: str, clock: FixedClock) -> App:
    """Another engine on the same database: its own connection pool, as a second worker has."""
    return open_app(CONFIG, clock, database_url=db_url)


@pytest.fixture
def apps(db_url: str, clock: FixedClock) -> Iterator[tuple[App, App]]:
    first = make_app(db_url, clock)
    other = second_app(db_url, clock)
    yield first, other
    other.db.dispose()
    first.db.dispose()


def submit(app: App, code: str, actor: Actor = ADMIN_A) -> Moved:
    """The plan's documents uploaded, then the plan submitted (a set-up, not a race)."""
    return plans.submit(app, TRACK_KEY, code, 8_000_000_000, 8_000_000_000, actor, f"계획 {code}", "climate_crisis")


def submit_only(app: App, code: str, actor: Actor = ADMIN_A) -> Moved:
    """The submission itself, the documents attached before the race (attach_all): the racers
    contend for the receipt, not for the uploads (an upload after a receipt is a replacement)."""
    return app.moves.submit(TRACK_KEY, code, 8_000_000_000, 8_000_000_000, actor, f"계획 {code}", "climate_crisis")


def attach_all(app: App, clock: FixedClock, codes: list[str]) -> None:
    """Each applicant's plan and budget uploaded inside the window, its application started
    if it was not invited (a plan is received only with its documents)."""
    clock.set(OPEN)
    for code in codes:
        plans.attach(app, TRACK_KEY, code)


def in_review(app: App, clock: FixedClock, codes: list[str]) -> list[int]:
    """Each code submitted, then the receipt closed: all in preliminary review at version 3."""
    clock.set(OPEN)
    ids = [submit(app, code).application_id for code in codes]
    clock.set(CLOSE)
    assert app.moves.apply_bulk(TRACK_KEY, "start_review", "receipt") == len(ids)
    return ids


# -- running racers ----------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    key: Any  # what the racers contend for (an application id, an applicant code)
    who: str
    result: Any  # the winner's return value; None for a loser
    error: BaseException | None

    @property
    def won(self) -> bool:
        return self.error is None


Step = tuple[threading.Barrier, Any, str, Callable[[], Any]]


def run_lanes(lanes: list[list[Step]]) -> list[Outcome]:
    """One thread per lane; each runs its steps in order, every step released by its
    barrier together with the steps it races. Every exception is an outcome."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def run(lane: list[Step]) -> None:
        for barrier, key, who, action in lane:
            barrier.wait()
            try:
                result, error = action(), None
            except BaseException as exc:
                result, error = None, exc
            with lock:
                outcomes.append(Outcome(key, who, result, error))

    threads = [threading.Thread(target=run, args=(lane,), daemon=True) for lane in lanes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=WAIT_S)
    assert not any(t.is_alive() for t in threads), "a racer hung"
    assert len(outcomes) == sum(len(lane) for lane in lanes), "a racer died without an outcome"
    return outcomes


def by_key(outcomes: list[Outcome]) -> dict[Any, list[Outcome]]:
    grouped: dict[Any, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        grouped[o.key].append(o)
    return grouped


def only_expected_refusals(outcomes: list[Outcome]) -> None:
    """A database error (locked, deadlock, unique violation) is never an acceptable loss."""
    odd = [
        (o.key, o.who, repr(o.error)) for o in outcomes if o.error is not None and not isinstance(o.error, GongmoError)
    ]
    assert not odd, odd
    refused = [o for o in outcomes if o.error is not None]
    assert all(type(o.error) in (Conflict, IllegalMove) for o in refused), [repr(o.error) for o in refused]
    assert all("\n" not in str(o.error) for o in refused)


# -- database views ------------------------------------------------------------------


def verify_clean(app: App) -> audit.Report:
    with read(app.db) as conn:
        report = audit.verify(conn, TABLE)
    assert report.clean, report.findings[:5]
    return report


def rows_by_app(app: App, column: sa.Column[Any], where: sa.ColumnElement[bool], *extra: sa.Column[Any]) -> dict:
    """application id -> [(column, *extra)] in id order, for AUDIT or OUTBOX rows."""
    table = column.table
    query = sa.select(table.c.application_id, column, *extra).where(where).order_by(table.c.id)
    grouped: dict[int, list[Any]] = defaultdict(list)
    with read(app.db) as conn:
        for row in conn.execute(query):
            grouped[int(row[0])].append(tuple(row[1:]) if extra else row[1])
    return dict(grouped)


def receipts(app: App) -> tuple[dict[int, str], int]:
    """(application id -> receipt number, the track's receipt_seq)."""
    with read(app.db) as conn:
        query = sa.select(APPLICATION.c.id, APPLICATION.c.receipt_no).where(APPLICATION.c.receipt_no.is_not(None))
        numbers = {int(i): str(n) for i, n in conn.execute(query)}
        seq = conn.execute(sa.select(TRACK.c.receipt_seq).where(TRACK.c.key == TRACK_KEY)).scalar_one()
    return {int(k): v for k, v in numbers.items()}, int(seq)


def assert_gap_free(numbers: dict[int, str], seq: int, expected: int) -> None:
    assert seq == expected
    assert sorted(numbers.values()) == [f"{PREFIX}-{i:04d}" for i in range(1, expected + 1)]


def application_ids(app: App, codes: list[str]) -> dict[str, int]:
    with read(app.db) as conn:
        rows = conn.execute(
            sa.select(APPLICANT.c.code, APPLICATION.c.id)
            .join(APPLICATION, APPLICATION.c.applicant_id == APPLICANT.c.id)
            .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
            .where(TRACK.c.key == TRACK_KEY, APPLICANT.c.code.in_(codes))
        ).all()
    return {code: int(app_id) for code, app_id in rows}


def states(app: App) -> dict[int, tuple[str, int]]:
    with read(app.db) as conn:
        return {
            int(i): (s, int(v))
            for i, s, v in conn.execute(sa.select(APPLICATION.c.id, APPLICATION.c.state, APPLICATION.c.version))
        }


# -- threads: admins -------------------------------------------------------------------

PAIRS_AT_ONCE = 4  # 8 threads: four conflicting pairs racing at every step
ROUNDS = 6  # so 24 applications


def test_admins_deciding_on_the_same_version_exactly_one_wins_each_application(
    apps: tuple[App, App], clock: FixedClock
) -> None:
    """Admin A passes, admin B disqualifies, both on version 3, same instant, on each
    of 24 applications (4 at a time, 8 threads, two connection pools)."""
    app, other = apps
    ids = in_review(app, clock, add_applicants(app, 0, PAIRS_AT_ONCE * ROUNDS))
    assert {states(app)[i] for i in ids} == {("preliminary_review", 3)}
    barriers = {i: threading.Barrier(2, timeout=WAIT_S) for i in ids}

    def pass_review(app_id: int) -> Moved:
        return app.moves.apply(app_id, "pass_review", ADMIN_A, expected_version=3)

    def disqualify(app_id: int) -> Moved:
        return other.moves.apply(app_id, "disqualify", ADMIN_B, reason=REASON, expected_version=3)

    lanes: list[list[Step]] = []
    for lane in range(2 * PAIRS_AT_ONCE):
        action, who = (pass_review, "pass_review") if lane % 2 == 0 else (disqualify, "disqualify")
        targets = [ids[r * PAIRS_AT_ONCE + lane // 2] for r in range(ROUNDS)]
        lanes.append([(barriers[i], i, who, lambda i=i, action=action: action(i)) for i in targets])
    outcomes = run_lanes(lanes)

    only_expected_refusals(outcomes)
    winner: dict[int, str] = {}
    for app_id, pair in by_key(outcomes).items():
        assert sorted(o.who for o in pair) == ["disqualify", "pass_review"]
        won = [o for o in pair if o.won]
        lost = [o for o in pair if not o.won]
        assert len(won) == 1 and len(lost) == 1, [(o.who, repr(o.error)) for o in pair]
        winner[app_id] = won[0].who
        message = str(lost[0].error)
        assert f"application {app_id} " in message
        if isinstance(lost[0].error, Conflict):  # the version check under the lock: the expected loss
            assert "is at version 4, not 3" in message and "reload and try again" in message
    assert sorted(winner) == sorted(ids)

    dest = {"pass_review": "written_evaluation", "disqualify": "disqualified"}
    notice = {"pass_review": "review_passed", "disqualify": "disqualified"}
    actor = {"pass_review": ADMIN_A.name, "disqualify": ADMIN_B.name}
    now = states(app)
    assert {i: now[i] for i in ids} == {i: (dest[w], 4) for i, w in winner.items()}
    decided = rows_by_app(app, AUDIT.c.trigger, AUDIT.c.trigger.in_(["pass_review", "disqualify"]), AUDIT.c.actor)
    assert decided == {i: [(w, actor[w])] for i, w in winner.items()}
    mails = rows_by_app(app, OUTBOX.c.notice, OUTBOX.c.notice.in_(["review_passed", "disqualified"]))
    assert mails == {i: [notice[w]] for i, w in winner.items()}
    with read(app.db) as conn:
        bodies = conn.execute(sa.select(OUTBOX.c.body_text).where(OUTBOX.c.notice == "disqualified")).scalars().all()
    assert all(REASON in b for b in bodies)
    verify_clean(app)


# -- threads: submissions ---------------------------------------------------------------


def test_the_same_applicant_submitting_twice_at_once_gets_one_receipt(apps: tuple[App, App], clock: FixedClock) -> None:
    """Eight applicants each submit twice at the same instant (two tabs, two workers):
    four were invited at the announcement, four were not (their application is
    started by the applicant, to upload its documents before it submits)."""
    app, other = apps
    invited = add_applicants(app, 0, 4)
    clock.set(ANNOUNCE)
    app.moves.announce(TRACK_KEY, ADMIN_A)
    uninvited = add_applicants(app, 100, 4)
    codes = invited + uninvited
    attach_all(app, clock, codes)
    barriers = {c: threading.Barrier(2, timeout=WAIT_S) for c in codes}
    lanes: list[list[Step]] = []
    for engine_app, tab in ((app, "tab-1"), (other, "tab-2")):
        for code in codes:
            lanes.append([(barriers[code], code, tab, lambda a=engine_app, c=code: submit_only(a, c, APPLICANT_ACTOR))])
    outcomes = run_lanes(lanes)

    only_expected_refusals(outcomes)
    ids = application_ids(app, codes)
    for code, pair in by_key(outcomes).items():
        won = [o for o in pair if o.won]
        lost = [o for o in pair if not o.won]
        assert len(won) == 1 and len(lost) == 1, (code, [repr(o.error) for o in pair])
        assert won[0].result.application_id == ids[code]
        assert isinstance(lost[0].error, IllegalMove)
        assert str(lost[0].error).startswith(f"cannot 'submit' application {ids[code]} in state 'receipt'")
    numbers, seq = receipts(app)
    assert_gap_free(numbers, seq, len(codes))
    assert {o.result.receipt_no for o in outcomes if o.won} == set(numbers.values())
    submitted = rows_by_app(app, AUDIT.c.trigger, AUDIT.c.trigger == "submit")
    assert submitted == {ids[c]: ["submit"] for c in codes}
    created = rows_by_app(app, AUDIT.c.trigger, AUDIT.c.trigger.in_(["invite", "start"]))
    assert {c: created[ids[c]] for c in codes} == {
        **{c: ["invite"] for c in invited},
        **{c: ["start"] for c in uninvited},
    }
    mails = rows_by_app(app, OUTBOX.c.notice, OUTBOX.c.notice == "receipt_confirmation")
    assert mails == {ids[c]: ["receipt_confirmation"] for c in codes}
    verify_clean(app)


def test_many_applicants_at_once_get_unique_gap_free_receipts_while_admins_withdraw_some(
    apps: tuple[App, App], clock: FixedClock
) -> None:
    """32 invited applicants submit at once from 8 threads; on 8 of them an admin
    withdraws the application (decided on its version 1) at the same instant as
    the submission. A refused submission uses no receipt number."""
    app, other = apps
    codes = add_applicants(app, 0, 32)
    clock.set(ANNOUNCE)
    app.moves.announce(TRACK_KEY, ADMIN_A)
    ids = application_ids(app, codes)
    assert {states(app)[ids[c]] for c in codes} == {("announcement", 1)}
    contested = codes[:8]
    attach_all(app, clock, codes)
    assert {states(app)[ids[c]] for c in codes} == {("announcement", 1)}  # an upload is no move

    width = 8
    tasks: list[tuple[Any, str, Callable[[], Any]]] = []  # in steps of `width`; a pair in the same step
    for code in contested:
        tasks.append((code, "submit", lambda c=code: submit_only(app, c, APPLICANT_ACTOR)))
        tasks.append(
            (code, "withdraw", lambda c=code: other.moves.apply(ids[c], "withdraw", ADMIN_B, expected_version=1))
        )
    for i, code in enumerate(codes[8:]):
        engine_app = app if i % 2 else other
        tasks.append((code, "submit", lambda a=engine_app, c=code: submit_only(a, c, APPLICANT_ACTOR)))
    assert len(tasks) % width == 0
    steps = [threading.Barrier(width, timeout=WAIT_S) for _ in range(len(tasks) // width)]
    lanes: list[list[Step]] = [
        [(steps[s], *tasks[s * width + lane]) for s in range(len(steps))] for lane in range(width)
    ]
    outcomes = run_lanes(lanes)

    only_expected_refusals(outcomes)
    grouped = by_key(outcomes)
    winner: dict[str, str] = {}
    for code in contested:
        pair = grouped[code]
        won = [o for o in pair if o.won]
        lost = [o for o in pair if not o.won]
        assert len(won) == 1 and len(lost) == 1, (code, [(o.who, repr(o.error)) for o in pair])
        winner[code] = won[0].who
        message = str(lost[0].error)
        assert f"application {ids[code]} " in message
        if lost[0].who == "withdraw":
            assert isinstance(lost[0].error, Conflict) and "is at version 2, not 1" in message
        else:
            assert isinstance(lost[0].error, IllegalMove) and "in state 'withdrawn'" in message
    assert all(o.won for c in codes[8:] for o in grouped[c])

    received = [c for c in codes if winner.get(c, "submit") == "submit"]
    numbers, seq = receipts(app)
    assert_gap_free(numbers, seq, len(received))
    assert sorted(numbers) == sorted(ids[c] for c in received)
    # the numbers follow the order the submissions committed in
    order = rows_by_app(app, AUDIT.c.id, AUDIT.c.trigger == "submit")
    by_commit = sorted(received, key=lambda c: order[ids[c]][0])
    assert [numbers[ids[c]] for c in by_commit] == sorted(numbers.values())

    expected_state = {c: ("withdrawn", 2) if winner.get(c) == "withdraw" else ("receipt", 2) for c in codes}
    now = states(app)
    assert {c: now[ids[c]] for c in codes} == expected_state
    notice = {"submit": "receipt_confirmation", "withdraw": "withdrawal_confirmed"}
    mails = rows_by_app(app, OUTBOX.c.notice, OUTBOX.c.notice.in_(list(notice.values())))
    assert {c: mails.get(ids[c]) for c in codes} == {c: [notice[winner.get(c, "submit")]] for c in codes}
    verify_clean(app)


# -- processes ---------------------------------------------------------------------------

PROCESSES = 3


def _racer_process(index: int, jobs: Any, step: Any, results: Any) -> None:
    """One OS process racing the others, one job (a database) at a time."""
    while (job := jobs.get()) is not None:
        try:
            _race_job(index, *job, step, results)
            results.put(("done", index, None, None, None, None, ""))
        except BaseException:
            results.put(("crash", index, None, None, None, None, traceback.format_exc()))


def _race_job(
    index: int,
    config_path: str,
    database_url: str,
    submit_codes: list[str],
    review_ids: list[int],
    step: Any,
    results: Any,
) -> None:
    """Its own app and clock; at every step it acts on the same applicant or
    application as the other processes: even ones pass, odd ones disqualify."""
    app = open_app(Path(config_path), FixedClock(OPEN), database_url=database_url)
    actor = Actor(f"proc-{index}", Role.ADMIN)

    def attempt(kind: str, key: Any, action: Callable[[], Moved]) -> None:
        step.wait(WAIT_S)
        try:
            moved = action()
        except BaseException as exc:
            results.put(("outcome", index, kind, key, None, type(exc).__name__, str(exc)))
        else:
            results.put(("outcome", index, kind, key, moved.receipt_no, None, ""))

    def decide(app_id: int) -> Moved:
        if index % 2 == 0:
            return app.moves.apply(app_id, "pass_review", actor, None, expected_version=3)
        return app.moves.apply(app_id, "disqualify", actor, REASON, expected_version=3)

    try:
        for code in submit_codes:
            attempt("submit", code, lambda c=code: submit_only(app, c, actor))
        for app_id in review_ids:
            attempt("pass_review" if index % 2 == 0 else "disqualify", app_id, lambda i=app_id: decide(i))
    finally:
        app.db.dispose()


class Racers:
    """PROCESSES spawned processes, started once for the module (their start-up is
    most of the cost) and given one job per database."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.step = ctx.Barrier(PROCESSES)
        self.jobs = [ctx.Queue() for _ in range(PROCESSES)]
        self.results = ctx.Queue()
        self.procs = [
            ctx.Process(target=_racer_process, args=(i, self.jobs[i], self.step, self.results), daemon=True)
            for i in range(PROCESSES)
        ]
        for p in self.procs:
            p.start()

    def run(self, job: tuple[str, str, list[str], list[int]]) -> list[tuple[Any, ...]]:
        """(index, kind, key, receipt_no, error class, message) of every attempt."""
        for q in self.jobs:
            q.put(job)
        outcomes, ended, crashes = [], set(), []
        try:
            while len(ended) < PROCESSES:
                kind, index, *rest = self.results.get(timeout=WAIT_S)
                if kind == "outcome":
                    outcomes.append((index, *rest))
                else:
                    ended.add(index)
                    if kind == "crash":
                        crashes.append(rest[-1])
        except queue.Empty:
            pytest.fail(f"racing processes hung; {len(outcomes)} outcomes so far")
        assert not crashes, crashes[0]
        return outcomes

    def stop(self) -> None:
        for q in self.jobs:
            q.put(None)
        for p in self.procs:
            p.join(timeout=WAIT_S)
            if p.is_alive():
                p.kill()


@pytest.fixture(scope="module")
def racers() -> Iterator[Racers]:
    started = Racers()
    yield started
    started.stop()


def test_processes_racing_on_the_same_applications(
    db_url: str, clock: FixedClock, tmp_path: Path, racers: Racers
) -> None:
    """Three OS processes (spawned, each with its own app): all three submit each of
    six applicants at once, then all three decide each of twelve applications in
    review at once (two passing, one disqualifying, all on version 3)."""
    app = make_app(db_url, clock)
    try:
        review_ids = in_review(app, clock, add_applicants(app, 0, 12))
        clock.set(ANNOUNCE)
        invited = add_applicants(app, 100, 3)
        app.moves.announce(TRACK_KEY, ADMIN_A)
        contested = [*invited, *add_applicants(app, 200, 3)]  # three invited, three not
        attach_all(app, clock, contested)  # the uninvited start their application to upload
        config = config_copy(tmp_path, database_url=db_url)

        outcomes = racers.run((str(config), db_url, contested, review_ids))

        assert len(outcomes) == PROCESSES * (len(contested) + len(review_ids))
        odd = [o for o in outcomes if o[4] not in (None, "Conflict", "IllegalMove")]
        assert not odd, odd  # a database error (locked, deadlock, unique violation) is never an acceptable loss
        grouped: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
        for index, what, key, receipt_no, error, message in outcomes:
            grouped[key].append((index, what, receipt_no, error, message))

        ids = application_ids(app, contested)
        for code in contested:
            won = [o for o in grouped[code] if o[3] is None]
            lost = [o for o in grouped[code] if o[3] is not None]
            assert len(won) == 1 and len(lost) == PROCESSES - 1, (code, grouped[code])
            assert all(
                o[3] == "IllegalMove" and o[4].startswith(f"cannot 'submit' application {ids[code]} in state 'receipt'")
                for o in lost
            ), lost
        winner: dict[int, tuple[int, str]] = {}
        for app_id in review_ids:
            won = [o for o in grouped[app_id] if o[3] is None]
            lost = [o for o in grouped[app_id] if o[3] is not None]
            assert len(won) == 1 and len(lost) == PROCESSES - 1, (app_id, grouped[app_id])
            assert all(f"application {app_id} " in o[4] and "\n" not in o[4] for o in lost), lost
            winner[app_id] = (won[0][0], won[0][1])

        numbers, seq = receipts(app)
        assert_gap_free(numbers, seq, len(review_ids) + len(contested))
        assert {o[2] for c in contested for o in grouped[c] if o[3] is None} == {numbers[ids[c]] for c in contested}
        submitted = rows_by_app(app, AUDIT.c.trigger, AUDIT.c.trigger == "submit")
        assert {c: submitted[ids[c]] for c in contested} == {c: ["submit"] for c in contested}
        decided = rows_by_app(app, AUDIT.c.trigger, AUDIT.c.trigger.in_(["pass_review", "disqualify"]), AUDIT.c.actor)
        assert decided == {i: [(what, f"proc-{index}")] for i, (index, what) in winner.items()}
        notice = {"pass_review": "review_passed", "disqualify": "disqualified"}
        mails = rows_by_app(app, OUTBOX.c.notice, OUTBOX.c.notice.in_(list(notice.values())))
        assert mails == {i: [notice[what]] for i, (_, what) in winner.items()}
        verify_clean(app)
    finally:
        app.db.dispose()
