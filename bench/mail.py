"""Mail delivery: gongmo's outbox -> SMTP, next to a plain aiosmtplib loop.

Both send the same N messages to an aiosmtpd sink running in another
process, in the same run, with the same number of reused connections.
gongmo's figure includes what the baseline does not: leasing rows from the
outbox, composing each MIME message and marking it sent in the database.

    python -m bench.mail [--n 5000] [--connections 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiosmtplib
import sqlalchemy as sa

from bench import synthetic_applicants
from notifications.compose import compose
from notifications.transport import SMTPSettings, SMTPTransport
from states.lifecycle import Role
from workflow import loader, schema
from workflow.actors import Actor
from workflow.app import open_app
from workflow.clock import FixedClock
from workflow.db import read, write
from workflow.mailer import Mailer
from workflow.models import APPLICANT, OUTBOX

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sink(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Sink"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("the aiosmtpd sink did not start")


def seed(tmp: Path, n: int):  # type: ignore[no-untyped-def]
    app = open_app(ROOT / "config.toml", database_url=f"sqlite:///{tmp}/bench.db", fixed_clock=True)
    assert isinstance(app.clock, FixedClock)
    app.clock.set(datetime(2024, 3, 29, 1, 0, tzinfo=UTC))  # 10:00 KST: the 2024 call
    schema.upgrade(app.db)
    with write(app.db) as conn:
        loader.sync(conn, app.loaded.config)
        rows = synthetic_applicants(n)
        conn.execute(sa.insert(APPLICANT), rows)
    app.engine.announce("strong-small-2024", Actor("bench", Role.ADMIN))
    return app


async def gongmo_send(app, port: int, connections: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    transport = SMTPTransport(SMTPSettings(port=port, security="none", connections=connections))
    mailer = Mailer(app, transport, "bench", batch=500)
    started = time.perf_counter()
    result = await mailer.deliver_due()
    elapsed = time.perf_counter() - started
    await transport.close()
    assert result.dead == 0 and result.retry == 0, result.errors[:3]
    return elapsed, transport.peak


async def baseline_send(messages: list[tuple[str, list[str], bytes]], port: int, connections: int) -> float:
    queue: asyncio.Queue[tuple[str, list[str], bytes]] = asyncio.Queue()
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
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "mail.json")
    args = parser.parse_args()
    port = free_port()
    sink = start_sink(port)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app = seed(Path(tmp), args.n)
            with read(app.db) as conn:
                rows = [dict(r) for r in conn.execute(sa.select(OUTBOX)).mappings()]
            sender = app.loaded.config.mail.sender
            prepared = []
            for row in rows:
                env = compose(row, sender, app.clock.now())
                prepared.append((env.sender, list(env.recipients), env.data))
            base_s = asyncio.run(baseline_send(prepared, port, args.connections))
            gongmo_s, peak = asyncio.run(gongmo_send(app, port, args.connections))
            app.db.dispose()
    finally:
        sink.terminate()
        sink.wait()
    n = len(rows)
    table = {
        "scenario": f"mail delivery, {n} notices (text+HTML+.ics), {args.connections} connections",
        "gongmo_msgs_per_s": round(n / gongmo_s, 1),
        "baseline_msgs_per_s": round(n / base_s, 1),
        "ratio": round((n / gongmo_s) / (n / base_s), 3),
        "peak_connections": peak,
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "aiosmtplib": aiosmtplib.__version__,
        },
    }
    print(f"{'scenario':<62} {'gongmo':>10} {'baseline':>10} {'ratio':>6}")
    print(
        f"{table['scenario']:<62} {table['gongmo_msgs_per_s']:>8}/s {table['baseline_msgs_per_s']:>8}/s"
        f" {table['ratio']:>6}"
    )
    print(f"peak simultaneous SMTP connections: {peak} (bound {args.connections}); machine: {table['machine']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(table, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
