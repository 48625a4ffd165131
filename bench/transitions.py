"""Single transitions: N admin triggers one after another, one transaction each.

Each is Mover.apply(id, "pass_review") on an application in preliminary
review: lock the row, check the move on the shared Machine, write state,
version, audit row and the rendered `review_passed` notice, commit.

The baseline writes the very rows gongmo wrote (read back, then undone),
one transaction per application: the UPDATE and the two INSERTs (audit,
outbox) in plain sqlite3 / psycopg.

Run twice, in two fresh databases: with the audit rows' hash chain (as
gongmo ships) and with it off (chain.NoChain, the bench's own switch); the
"chain cost" row is on / off: at most 1.15x.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime
from typing import Any

from bench.close import CHAIN_GOAL, chain_by, unguarded_restore
from bench.db import (
    AUDIT_COLUMNS,
    KST,
    OFFICE,
    OUTBOX_COLUMNS,
    Backend,
    Target,
    Written,
    begin,
    database,
    insert_sql,
    mark,
    open_bench_app,
    plain,
    seed_applications,
    set_clock,
    tidy,
    written,
)
from bench.report import Goal, Row, row
from gongmo.workflow.core.chain import CHAINER, Chainer, NoChain

REVIEW_AT = datetime(2024, 6, 3, 10, 0, tzinfo=KST)  # receipt closed; preliminary review under way
STATE, VERSION = "preliminary_review", 2
GOAL = Goal("<=", 3)


def run(backend: Backend, n: int = 20_000) -> list[Row]:
    with database(backend) as target:
        on, on_s = _run(target, n, CHAINER)
    with database(backend) as target:
        off, off_s = _run(target, n, NoChain())
    return [on, off, row("single transitions: chain on / off", target.kind, n, on_s, off_s, "s", CHAIN_GOAL)]


def _run(target: Target, n: int, chainer: Chainer) -> tuple[Row, float]:
    app = open_bench_app(target)
    try:
        ids = seed_applications(target, app, n, STATE)
        set_clock(app, REVIEW_AT)
        chain_by(app, chainer)
        tidy(target)
        before = mark(target)
        started = time.perf_counter()
        for i in ids:
            app.moves.apply(i, "pass_review", OFFICE)
        gongmo_s = time.perf_counter() - started
    finally:
        app.db.dispose()
    done = written(target, before, ids)
    assert len(done.audit) == n and len(done.outbox) == n
    assert all(a[-1] is not None for a in done.audit) == chainer.on  # hash, the last column
    unguarded_restore(target, before, ids, STATE, VERSION)
    baseline_s = baseline(target, done)
    result = row(
        "single transitions (pass_review)" + ("" if chainer.on else ", chain off"),
        target.kind,
        n,
        gongmo_s,
        baseline_s,
        "s",
        GOAL,
        gongmo_per_s=round(n / gongmo_s),
        baseline_per_s=round(n / baseline_s),
    )
    return result, gongmo_s


def baseline(target: Target, rows: Written) -> float:
    """Per application: UPDATE (guarded by the version) + INSERT audit + INSERT outbox, commit."""
    p = target.placeholder
    update = f"UPDATE application SET state = {p}, version = {p}, updated_at = {p} WHERE id = {p} AND version = {p}"
    audit_sql = insert_sql(target, "audit", AUDIT_COLUMNS)
    outbox_sql = insert_sql(target, "outbox", OUTBOX_COLUMNS)
    audits = _by_application(rows.audit, AUDIT_COLUMNS.index("application_id"))
    notices = _by_application(rows.outbox, OUTBOX_COLUMNS.index("application_id"))
    work = [
        ((state, version, at, i, version - 1), audits[i], notices[i])
        for i, state, version, at, _, _ in rows.applications
    ]
    with plain(target) as conn:
        cur = conn.cursor()
        started = time.perf_counter()
        for update_params, audit, outbox in work:
            begin(conn)
            cur.execute(update, update_params)
            cur.execute(audit_sql, audit)
            cur.execute(outbox_sql, outbox)
            conn.commit()
        return time.perf_counter() - started


def _by_application(rows: list[tuple[Any, ...]], column: int) -> dict[int, tuple[Any, ...]]:
    out: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for r in rows:
        out[r[column]].append(r)
    assert all(len(v) == 1 for v in out.values())
    return {k: v[0] for k, v in out.items()}
