"""Mail delivery: gongmo's outbox -> SMTP, next to a plain aiosmtplib loop.

Both send the same N messages to an aiosmtpd sink running in another
process (bench/sink.py), in the same run, with the same number of reused
connections. gongmo's figure includes what the baseline does not: leasing
rows from the outbox, composing each MIME message (from the skeleton,
notifications/compose.py) and marking it sent in the database before its
connection sends again. The baseline sends the very same bytes, composed in
advance. The notices are the call of the 2024 strong-and-small track
(text + HTML + .ics), queued by Mover.announce.

    python -m bench.mail [--n 5000] [--connections 4] [--db sqlite|postgres|both] [--pg-url URL] [--json PATH]

(the same as `python -m bench --only mail`, with its own sizes)
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime
from pathlib import Path

import aiosmtplib
import sqlalchemy as sa

from bench import synthetic_applicants
from bench.db import KST, OFFICE, PG_URL, ROOT, TRACK_KEY, Backend, backends, database, open_bench_app
from bench.report import Goal, Row, row
from bench.sink import Sink
from gongmo.notifications.compose import compose
from gongmo.notifications.transport import SMTPSettings, SMTPTransport
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICANT, OUTBOX
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox.dispatch import Mailer

ANNOUNCE_AT = datetime(2024, 3, 29, 10, 0, tzinfo=KST)  # the 2024 call
GOAL = Goal(">=", 0.8)
Message = tuple[str, list[str], bytes]


def run(backend: Backend, n: int = 5000, connections: int = 4) -> list[Row]:
    with database(backend) as target, Sink() as sink:
        app = open_bench_app(target, ANNOUNCE_AT)
        try:
            seed(app, n)
            prepared = prepare(app)
            sink.reset()
            base_s = asyncio.run(baseline_send(prepared, sink.port, connections))
            base_seen = sink.stats()
            sink.reset()
            gongmo_s, client_peak = asyncio.run(gongmo_send(app, sink.port, connections))
            gongmo_seen = sink.stats()
        finally:
            app.db.dispose()
    count = len(prepared)
    assert base_seen["messages"] == count and gongmo_seen["messages"] == count, (base_seen, gongmo_seen)
    return [
        row(
            f"mail delivery, {connections} connections",
            target.kind,
            count,
            count / gongmo_s,
            count / base_s,
            "msg/s",
            GOAL,
            peak_connections_gongmo=gongmo_seen["peak"],
            peak_connections_baseline=base_seen["peak"],
            client_peak=client_peak,
        )
    ]


def seed(app: App, n: int) -> None:
    """n local governments, each sent the call (one outbox row each)."""
    with write(app.db) as conn:
        conn.execute(sa.insert(APPLICANT), synthetic_applicants(n))
    created = app.moves.announce(TRACK_KEY, OFFICE)
    assert created == n, (created, n)


def prepare(app: App) -> list[Message]:
    """Every pending notice composed in advance, for the baseline."""
    with read(app.db) as conn:
        rows = [dict(r) for r in conn.execute(sa.select(OUTBOX).where(OUTBOX.c.state == "pending")).mappings()]
    sender = app.loaded.config.mail.sender
    prepared = []
    for r in rows:
        env = compose(r, sender, app.clock.now())
        prepared.append((env.sender, list(env.recipients), env.data))
    return prepared


async def gongmo_send(app: App, port: int, connections: int) -> tuple[float, int]:
    transport = SMTPTransport(SMTPSettings(port=port, security="none", connections=connections))
    mailer = Mailer(app, transport, "bench", batch=500)
    started = time.perf_counter()
    result = await mailer.deliver_due()
    elapsed = time.perf_counter() - started
    await transport.close()
    assert result.dead == 0 and result.retry == 0, result.errors[:3]
    return elapsed, transport.peak


async def baseline_send(messages: list[Message], port: int, connections: int) -> float:
    queue: asyncio.Queue[Message] = asyncio.Queue()
    for m in messages:
        queue.put_nowait(m)

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, local_hostname="bench.localdomain")
        await client.connect()
        while not queue.empty():
            sender, rcpts, data = queue.get_nowait()
            await client.sendmail(sender, rcpts, data)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - started


def main() -> None:
    from bench.report import machine, print_table, write_json

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "mail.json")
    args = parser.parse_args()
    rows: list[Row] = []
    chosen, versions = backends(args.db, args.pg_url)
    for backend in chosen:
        rows += run(backend, args.n, args.connections)
    info = machine(versions)
    print_table(rows, info)
    write_json(args.json, rows, info)


if __name__ == "__main__":
    main()
