"""Receipt close: the deadline tick that moves a track's applications at once.

Two runs, each on N applications of one track: all received (to preliminary
review: state, audit row and eligibility checklist each, no notice), and
all drafts (to expired: state, audit row and a rendered `expired` notice
in the outbox each). gongmo's figure is one Ticker.tick() that claims the
close_receipt deadline, fires it (Mover.apply_bulk, chunked transactions)
and marks it fired.

The baseline writes the very rows gongmo wrote (read back, then undone)
with plain sqlite3 / psycopg executemany in one transaction; it renders
nothing, which is why the target with notices is looser.

Each variant runs twice, in two fresh databases: with the audit rows'
hash chain (core/chain.py: gongmo as it ships), and with the chain off
(the Mover given chain.NoChain, the bench's own switch: no hashes, the
bulk UPDATE ... IN of before). The "chain cost" row is on / off: at most
1.15x.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bench.db import (
    AUDIT_COLUMNS,
    OUTBOX_COLUMNS,
    Backend,
    Mark,
    Target,
    Written,
    add_deadline,
    begin,
    database,
    insert_sql,
    mark,
    open_bench_app,
    plain,
    restore,
    seed_applications,
    set_clock,
    tidy,
    track,
    written,
)
from bench.report import Goal, Row, row
from gongmo.workflow.core.chain import CHAINER, Chainer, NoChain
from gongmo.workflow.deadlines.ticker import Ticker
from gongmo.workflow.engine.app import App

CHAIN_GOAL = Goal("<=", 1.15)


@dataclass(frozen=True)
class Variant:
    name: str
    state: str  # where the applications wait for the close
    version: int  # their version there (as seed_applications writes them)
    notices: bool
    goal: Goal


VARIANTS = (
    Variant("close, no notices", "receipt", 2, False, Goal("<=", 2)),
    Variant("close, notices rendered", "announcement", 1, True, Goal("<=", 4)),
)


def run(backend: Backend, n: int = 100_000) -> list[Row]:
    rows = []
    for variant in VARIANTS:
        with database(backend) as target:
            on, on_s = _run(target, variant, n, CHAINER)
        with database(backend) as target:
            off, off_s = _run(target, variant, n, NoChain())
        cost = row(f"{variant.name}: chain on / off", target.kind, n, on_s, off_s, "s", CHAIN_GOAL)
        rows += [on, off, cost]
    return rows


def _run(target: Target, variant: Variant, n: int, chainer: Chainer) -> tuple[Row, float]:
    app = open_bench_app(target)
    try:
        ids = seed_applications(target, app, n, variant.state)
        deadline_id = add_deadline(app, "close_receipt")
        set_clock(app, track(app)["receipt_closes"] + timedelta(minutes=1))
        chain_by(app, chainer)
        tidy(target)
        before = mark(target)
        started = time.perf_counter()
        [fired] = Ticker(app, "bench").tick()
        gongmo_s = time.perf_counter() - started
    finally:
        app.db.dispose()
    assert fired.error is None, fired.error
    done = written(target, before, ids, deadline_id)
    assert len(done.audit) == n and len(done.outbox) == (n if variant.notices else 0), fired.summary
    assert all(a[-1] is not None for a in done.audit) == chainer.on  # hash, the last column
    unguarded_restore(target, before, ids, variant.state, variant.version, deadline_id)
    baseline_s = baseline(target, done, deadline_id)
    result = row(
        variant.name + ("" if chainer.on else ", chain off"),
        target.kind,
        n,
        gongmo_s,
        baseline_s,
        "s",
        variant.goal,
        summary=fired.summary,
        gongmo_per_s=round(n / gongmo_s),
        baseline_per_s=round(n / baseline_s),
    )
    return result, gongmo_s


def chain_by(app: App, chainer: Chainer) -> None:
    """The bench's switch: the Mover's steps (single moves, bulk moves, the intake) chain with `chainer`."""
    app.moves.steps.chain = chainer


def unguarded_restore(target: Target, before: Mark, ids: list[int], state: str, version: int, *rest: Any) -> None:
    """restore() with PostgreSQL's append-only trigger of the audit table off meanwhile (the
    bench's undo deletes the run's audit rows; gongmo itself never does)."""
    if target.kind == "postgres":
        _audit_trigger(target, "DISABLE")
    try:
        restore(target, before, ids, state, version, *rest)
    finally:
        if target.kind == "postgres":
            _audit_trigger(target, "ENABLE")


def _audit_trigger(target: Target, verb: str) -> None:
    with plain(target) as conn:
        conn.autocommit = True
        conn.execute(f"ALTER TABLE audit {verb} TRIGGER audit_append_only")


def baseline(target: Target, rows: Written, deadline_id: int) -> float:
    """The same rows, written with executemany in one transaction."""
    p = target.placeholder
    update = (
        f"UPDATE application SET state = {p}, version = {p}, updated_at = {p}, checklist = {p}, eligible = {p}"
        f" WHERE id = {p}"
    )
    params = [(*values, i) for i, *values in rows.applications]  # (state, version, at, checklist, eligible, id)
    assert rows.deadline is not None
    with plain(target) as conn:
        cur = conn.cursor()
        started = time.perf_counter()
        begin(conn)
        cur.execute(
            f"UPDATE deadline SET fired_at = {p}, late = {p}, claimed_by = {p}, attempts = {p} WHERE id = {p}",
            (*rows.deadline, deadline_id),
        )
        cur.executemany(update, params)
        cur.executemany(insert_sql(target, "audit", AUDIT_COLUMNS), rows.audit)
        if rows.outbox:
            cur.executemany(insert_sql(target, "outbox", OUTBOX_COLUMNS), rows.outbox)
        conn.commit()
        return time.perf_counter() - started
