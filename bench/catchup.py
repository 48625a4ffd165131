"""Catch-up after downtime: N overdue deadlines and their notices, at start.

N applicants of one track were each granted an extension of the receipt
close; the daemon was down when every extension ran out. It starts
(Daemon.serve: the scheduler's tick catches up every overdue deadline,
while the delivery job sends the notices over at most [mail.smtp]
connections) and the clock runs until every deadline has fired and every
notice is in the sink. The N rows are due at the same instant with the same
action: the ticker fires them as one unit, two bulk moves in chunks (each
draft expires with a rendered `expired` notice), not N transactions.

Three figures, each in a fresh database of the same run:
- firing the deadlines alone (Ticker.run_until_idle, no delivery) against a
  bulk close of as many drafts (the track's close_receipt tick): at most 2x;
- the whole catch-up with delivery against delivering its notices alone (the
  daemon started once the deadlines had fired): at most 1.2x, the catch-up
  bounded by the mail rate;
- the peak of simultaneous SMTP connections, as the sink (another process)
  counts them: at most the configured bound.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bench.db import (
    NO_API,
    Backend,
    Target,
    add_deadline,
    begin,
    bulk_insert,
    database,
    open_bench_app,
    plain,
    seed_applications,
    set_clock,
    stamp,
    tidy,
    track,
    with_mail,
)
from bench.report import Goal, Row, row
from bench.sink import Sink
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import DEADLINE, OUTBOX
from gongmo.workflow.deadlines.ticker import Ticker
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox import states as outbox_states
from gongmo.workflow.runtime.daemon import Daemon

CONNECTIONS = 4  # the [mail.smtp] bound
DELIVER_S = 1.0  # the delivery job's interval (config default: 5 s)
EXTENSION = timedelta(days=1)
DOWNTIME = timedelta(days=2)  # the daemon comes back this long after the extensions ran out
POLL_S = 0.1


def run(backend: Backend, n: int = 10_000) -> list[Row]:
    fire_s, deliver_s = _fire_then_deliver(backend, n)
    close_s = _close(backend, n)
    elapsed, seen, per_tick = _catch_up(backend, n)
    return [
        row(
            "catch-up: firing the deadlines, no delivery (vs a bulk close of as many)",
            backend.kind,
            n,
            fire_s,
            close_s,
            "s",
            Goal("<=", 2),
            deadlines_per_s=round(n / fire_s, 1),
        ),
        row(
            "catch-up at start, with delivery (vs delivering its notices alone)",
            backend.kind,
            n,
            elapsed,
            deliver_s,
            "s",
            Goal("<=", 1.2),
            deadlines_per_s=round(n / elapsed, 1),
            deadlines_per_tick=per_tick,
            smtp_bound=CONNECTIONS,
            deliver_seconds=DELIVER_S,
        ),
        row(
            "catch-up: peak SMTP connections",
            backend.kind,
            n,
            seen["peak"],
            CONNECTIONS,
            "conn",
            Goal("<=", 1, f"≤ {CONNECTIONS} (the bound)"),
            connections_opened=seen["connections"],
        ),
    ]


def _overdue(target: Target, n: int) -> App:
    """A fresh app whose n drafts each had an extension of the receipt close, overdue by DOWNTIME."""
    app = open_bench_app(target)
    ids = seed_applications(target, app, n, "announcement")
    close = track(app)["receipt_closes"]
    seed_extensions(target, app, ids, close)
    set_clock(app, close + EXTENSION + DOWNTIME)
    return app


def _fire_then_deliver(backend: Backend, n: int) -> tuple[float, float]:
    """The deadlines fired by the ticker alone (no delivery), timed; then the daemon started with
    nothing left to fire, timed until it has delivered their notices: delivery alone."""
    with database(backend) as target, Sink() as sink:
        app = _overdue(target, n)
        try:
            _smtp(app, sink.port)
            tidy(target)
            started = time.perf_counter()
            fired = Ticker(app, "bench").run_until_idle()
            fire_s = time.perf_counter() - started
            assert len(fired) == n and not any(f.error for f in fired), [f.error for f in fired if f.error][:3]
            assert _count(app, OUTBOX.c.state.in_(outbox_states.DUE)) == n
            tidy(target)
            sink.reset()
            deliver_s, _ = asyncio.run(catch_up(app))
            assert sink.stats()["messages"] == n
        finally:
            app.db.dispose()
    return fire_s, deliver_s


def _close(backend: Backend, n: int) -> float:
    """A bulk close of as many drafts (the track's close_receipt: each expires, with its notice)."""
    with database(backend) as target:
        app = open_bench_app(target)
        try:
            seed_applications(target, app, n, "announcement")
            add_deadline(app, "close_receipt")
            set_clock(app, track(app)["receipt_closes"] + EXTENSION + DOWNTIME)
            tidy(target)
            started = time.perf_counter()
            [fired] = Ticker(app, "bench").tick()
            close_s = time.perf_counter() - started
            assert fired.error is None and _count(app, OUTBOX.c.notice == "expired") == n, fired.summary
        finally:
            app.db.dispose()
    return close_s


def _catch_up(backend: Backend, n: int) -> tuple[float, dict[str, int], int]:
    """The daemon started with the deadlines overdue, until every one fired and every notice is sent."""
    with database(backend) as target, Sink() as sink:
        app = _overdue(target, n)
        try:
            _smtp(app, sink.port)
            tidy(target)
            sink.reset()
            elapsed, daemon = asyncio.run(catch_up(app))
            seen = sink.stats()
            sent = _count(app, OUTBOX.c.state == outbox_states.SENT)
        finally:
            app.db.dispose()
    fired = [f for f in daemon.fired if f.action == "extension_closes"]
    assert len(fired) == n and not any(f.error for f in fired), [f.error for f in fired if f.error][:3]
    assert sent == n and seen["messages"] == n, (sent, seen)
    return elapsed, seen, app.loaded.config.gongmo.deadlines_per_tick


def seed_extensions(target: Target, app: App, ids: list[int], close: Any) -> None:
    """Each application's own close moved a day later, and its deadline row."""
    row = track(app)
    new_at, granted = stamp(target, close + EXTENSION), stamp(target, close - timedelta(hours=1))
    changes = (
        (row["id"], i, "receipt_closes", stamp(target, close), new_at, "bench: extension", "bench", granted)
        for i in ids
    )
    rows = (
        (f"ext:{i}:receipt_closes", row["id"], i, "extension_closes", "receipt_closes", new_at, 0, granted) for i in ids
    )
    with plain(target) as conn:
        begin(conn)
        columns = ("track_id", "application_id", "milestone", "old_at", "new_at", "reason", "actor", "at")
        bulk_insert(conn, target, "calendar_change", columns, changes)
        columns = ("key", "track_id", "application_id", "action", "milestone", "due_at", "attempts", "created_at")
        bulk_insert(conn, target, "deadline", columns, rows)
        conn.commit()


def _smtp(app: App, port: int) -> None:
    mail = app.loaded.config.mail
    smtp = mail.smtp.model_copy(update={"port": port, "security": "none", "connections": CONNECTIONS})
    with_mail(app, mail.model_copy(update={"transport": "smtp", "smtp": smtp, "deliver_seconds": DELIVER_S}))


async def catch_up(app: App) -> tuple[float, Daemon]:
    """Start the daemon; stop it once nothing is left to fire or to send."""
    daemon = Daemon(app, worker="bench", api=NO_API)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(daemon.serve(stop))
    while not task.done():
        await asyncio.sleep(POLL_S)
        if await asyncio.to_thread(_finished, app):
            break
    elapsed = time.perf_counter() - started
    stop.set()
    await task
    return elapsed, daemon


def _finished(app: App) -> bool:
    unfired = _count(app, DEADLINE.c.fired_at.is_(None), DEADLINE)
    return unfired == 0 and _count(app, OUTBOX.c.state.in_((*outbox_states.DUE, outbox_states.SENDING))) == 0


def _count(app: App, where: Any, table: Any = OUTBOX) -> int:
    with read(app.db) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one())
