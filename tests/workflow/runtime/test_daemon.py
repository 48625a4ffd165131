"""The daemon: APScheduler only wakes the ticker; it catches up at start and
arms one date job for the earliest deadline left."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gongmo.notifications.render import Renderer, TemplateProblem
from gongmo.states.errors import InvalidInput
from gongmo.workflow.api import create_api
from gongmo.workflow.core import tokens
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.config import Api
from gongmo.workflow.core.db import write
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.engine.app import App
from gongmo.workflow.runtime.daemon import Daemon
from tests.conftest import ROOT, kst


@pytest.fixture
def derived(app: App) -> App:
    with write(app.db) as conn:
        calendars.derive(app, conn)
    return app


async def _until(predicate, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    """Wait for the scheduler's worker thread to finish its first run."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while not predicate():
        if loop.time() > end:
            raise AssertionError("the daemon did not run its start-up tick")
        await asyncio.sleep(0.02)


def _get(port: int, path: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_daemon_catches_up_at_start_and_arms_the_next_deadline(derived: App, clock: FixedClock) -> None:
    clock.set(kst("2024-05-29 18:00"))  # down since before the 2022 call: everything until now is overdue
    daemon = Daemon(derived, "d1", api=Api(port=0), api_app=create_api)
    daemon.ticker.late_announcements = "send"  # the office's setting: calls caught up after the close go out
    scraper = tokens.create(derived, "metrics", "prometheus", "test")[1]

    async def scenario() -> tuple[list[str], datetime | None, datetime, dict[str, tuple[int, str]]]:
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.serve(stop))
        await _until(lambda: any(f.key == "strong-small-2024:close_receipt" for f in daemon.fired))
        await _until(lambda: daemon.scheduler is not None and daemon.scheduler.get_job("next-deadline") is not None)
        await _until(lambda: daemon.api_server is not None and daemon.last_tick_at is not None)
        assert daemon.scheduler is not None and daemon.api_server is not None
        job = daemon.scheduler.get_job("next-deadline")
        armed_at = datetime.now(UTC)
        port = daemon.api_server.port
        served = {path: await asyncio.to_thread(_get, port, path) for path in ("/healthz", "/metrics", "/me")}
        served["/metrics+token"] = await asyncio.to_thread(_get, port, "/metrics", scraper)
        stop.set()
        await task
        return [f.key for f in daemon.fired], job.next_run_time, armed_at, served

    keys, next_run, armed_at, served = asyncio.run(scenario())
    # The daemon serves the HTTP API on its own loop: healthy while the scheduler runs,
    # the deadlines it fired counted in its metrics, and the API asks for a token.
    status, body = served["/healthz"]
    assert status == 200, body
    health = json.loads(body)
    assert health["status"] == "ok" and health["scheduler"]["running"]
    assert "worker" not in health["scheduler"]  # its host and pid: only with [api] health_details = true
    assert health["database"]["ok"] and health["deadlines"]["overdue"] == 0
    assert served["/metrics"][0] == 401  # the metrics need a token (issue 17)
    status, text = served["/metrics+token"]
    fired = sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("gongmo_deadlines_fired_total{")
    )
    assert status == 200 and fired == len(keys)
    assert "gongmo_tick_duration_seconds_count" in text
    assert served["/me"][0] == 401
    assert len(keys) == len(set(keys))  # each once
    assert "small-medium-2022:kickoff_closes" in keys and "diffusion-2024:kickoff_plan_due" not in keys
    # the earliest deadline left is the diffusion selection on 2024-05-30 10:00 KST: 16 hours ahead
    expected = kst("2024-05-30 10:00") - clock.now()
    assert next_run is not None
    assert abs((next_run - armed_at) - expected) < timedelta(minutes=1)


def test_a_template_typo_stops_the_start_with_file_and_line(derived: App, tmp_path: Path) -> None:
    copy = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", copy)
    path = copy / "ko" / "selected.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("{{ receipt_no }}", "{{ receipt_no.nmuber }}"), "utf-8")
    derived.renderer = Renderer(copy)
    daemon = Daemon(derived, "d1")
    with pytest.raises(TemplateProblem, match=rf"{path}:\d+: .*nmuber"):
        asyncio.run(daemon.serve(asyncio.Event()))
    assert daemon.fired == []


def test_a_reschedule_re_arms_the_timer(derived: App, clock: FixedClock) -> None:
    from apscheduler.schedulers.background import BackgroundScheduler

    clock.set(kst("2024-05-20 10:00"))
    daemon = Daemon(derived, "d1")
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start(paused=True)  # paused: we only read what it is armed for
    daemon.scheduler = scheduler  # type: ignore[assignment]

    def armed_in() -> timedelta:
        assert daemon.scheduler is not None
        job = daemon.scheduler.get_job("next-deadline")
        return job.trigger.run_date - datetime.now(UTC)

    daemon.ticker.late_announcements = "send"  # the calls caught up after their close go out: nothing is held
    daemon.wake()  # catches up everything before 2024-05-20 10:00, then arms
    # the receipt opening (no reminder is planned before a window opens)
    assert abs(armed_in() - (kst("2024-05-27 09:00") - clock.now())) < timedelta(minutes=1)
    for track in ("hub-2024", "strong-small-2024"):
        calendars.reschedule(derived, track, "receipt_opens", kst("2024-05-23 09:00"), "접수 조기 개시", "park")
    daemon.wake()  # the interval tick notices the moved calendar: the opening moved to 05-23
    assert abs(armed_in() - (kst("2024-05-23 09:00") - clock.now())) < timedelta(minutes=1)
    scheduler.shutdown(wait=False)


def test_a_taken_api_port_stops_the_start_before_anything_fires(derived: App, clock: FixedClock) -> None:
    clock.set(kst("2024-05-29 18:00"))  # plenty overdue: a start that went on would fire it
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = Daemon(derived, "d2", api=Api(port=port), api_app=create_api)
        with pytest.raises(InvalidInput, match=rf"\[api\] 127.0.0.1:{port}: cannot listen .*own \[api\] port"):
            asyncio.run(daemon.serve(asyncio.Event()))
    assert daemon.fired == [] and daemon.scheduler is None


def test_the_api_socket_is_tcp_so_answers_are_not_held_by_nagle() -> None:
    """asyncio turns TCP_NODELAY on for accepted connections only when the
    listening socket's protocol is IPPROTO_TCP; with 0 every answer waited
    for the client's delayed ACK (about 44 ms, even for /ping)."""
    from gongmo.workflow.runtime.daemon import _listen

    sock = _listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()


# -- a held call shows in /healthz (issue 18, points 3 and 4) --------------------------------


def test_a_call_held_after_the_close_makes_health_degraded_until_the_office_decides(
    derived: App, clock: FixedClock
) -> None:
    """Down from before the 2024 calls until after their close: each call is held
    (not fired); /healthz is degraded and lists what it holds back; the office
    skips or sends them, and health is ok again."""
    from gongmo.workflow.deadlines.ticker import Ticker

    clock.set(kst("2024-05-29 18:30"))
    daemon = Daemon(derived, "d1", api=Api(port=0), api_app=create_api)

    async def scenario() -> tuple[tuple[int, str], tuple[int, str], tuple[int, str]]:
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.serve(stop))
        await _until(lambda: daemon.api_server is not None and daemon.last_tick_at is not None)
        assert daemon.api_server is not None
        port = daemon.api_server.port
        held = await asyncio.to_thread(_get, port, "/healthz")
        strict = await asyncio.to_thread(_get, port, "/healthz?strict=true")
        office = Ticker(derived, "office")
        for past in ("small-medium-2022", "public-private-2022", "living-lab-2022"):  # the 2022 calls, side calls too
            await asyncio.to_thread(office.skip, f"{past}:announce", "run in 2021-2022, before gongmo")
        for track in ("hub-2024", "strong-small-2024", "diffusion-2024"):
            await asyncio.to_thread(office.fire_now, f"{track}:announce")
        await asyncio.to_thread(daemon.wake)
        settled = await asyncio.to_thread(_get, port, "/healthz")
        stop.set()
        await task
        return held, strict, settled

    held, strict, settled = asyncio.run(scenario())
    assert held[0] == 200 and strict[0] == 503, (held, strict)
    body = json.loads(held[1])
    assert body["status"] == "degraded"
    blocked = {b["key"]: b for b in body["deadlines"]["blocked"]}
    assert set(blocked) == {
        f"{t}:announce"
        for t in (
            "small-medium-2022",
            "hub-2024",
            "strong-small-2024",
            "diffusion-2024",
            "public-private-2022",
            "living-lab-2022",
        )
    }
    strong = blocked["strong-small-2024:announce"]
    assert strong["kind"] == "held" and strong["track"] == "strong-small-2024"
    assert strong["error"].startswith("track strong-small-2024: receipt closed at 2024-05-29 18:00 KST; the call was")
    assert strong["waiting"] == 4  # the opening, the two reminders inside the window, the close
    assert any(p.startswith("deadline strong-small-2024:announce held for the office: 4 due") for p in body["problems"])
    assert body["deadlines"]["overdue"] >= sum(b["waiting"] + 1 for b in blocked.values())
    status, text = settled
    after = json.loads(text)
    assert (status, after["status"], after["deadlines"]["blocked"]) == (200, "ok", []), text
    assert after["deadlines"]["overdue"] == 0


# -- a bounded stop (issue 18, point 5) ---------------------------------------------------------


@pytest.mark.slow
def test_sigterm_during_a_large_close_exits_within_the_bound_and_a_rerun_finishes_it(
    tmp_path: Path, clock: FixedClock
) -> None:
    """A real `gongmo daemon` on a SQLite file catches up a receipt close of 60,000
    plans (many seconds of work); SIGTERM once the first chunk committed. It exits
    within [gongmo] stop_timeout_s, with code 0 and no traceback; the chunks done
    stay, the deadline is unfired and unclaimed (no lease left), and a rerun
    finishes the close: every plan moved exactly once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import sqlalchemy as sa

    from gongmo.states.lifecycle import APPLICATION as TABLE
    from gongmo.workflow.core.db import read
    from gongmo.workflow.core.models import APPLICATION, AUDIT, DEADLINE
    from gongmo.workflow.deadlines.ticker import Ticker
    from gongmo.workflow.engine import audit
    from tests.conftest import config_copy, make_app
    from tests.workflow.engine.test_moves import seed_received

    n, bound = 60_000, 3.0
    key = "strong-small-2024:close_receipt"
    url = f"sqlite:///{tmp_path / 'gongmo.db'}"
    app = make_app(url, clock)
    with write(app.db) as conn:
        calendars.derive(app, conn)
    seed_received(app, n)
    real_now = datetime.now(UTC)
    with write(app.db) as conn:  # only the close is left, due a minute ago on the real clock
        conn.execute(sa.update(DEADLINE).where(DEADLINE.c.key != key).values(fired_at=clock.now()))
        conn.execute(sa.update(DEADLINE).where(DEADLINE.c.key == key).values(due_at=real_now - timedelta(minutes=1)))

    def in_state(state: str) -> int:
        with read(app.db) as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(APPLICATION.c.state == state)).scalar_one())

    config = config_copy(tmp_path, ("[mail]", f"stop_timeout_s = {bound}\n\n[mail]"), database_url=url)
    env = {k: v for k, v in os.environ.items() if k not in ("GONGMO_DATABASE_URL", "GONGMO_NOW")}
    env["GONGMO_CONFIG"] = str(config)
    env["PYTHONPATH"] = str(ROOT)  # this checkout's code, whatever is installed
    log_path = tmp_path / "daemon.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gongmo", "daemon", "--no-api"],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
        try:
            started = time.monotonic()
            while in_state("preliminary_review") == 0:  # the first chunk committed
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() - started < 120, "the close did not start"
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            code = proc.wait(timeout=60)
            took = time.monotonic() - signalled
        finally:
            if proc.poll() is None:
                proc.kill()
    output = log_path.read_text()
    moved = in_state("preliminary_review")
    print(f"\nSIGTERM after the first chunk: exit {code} in {took:.2f} s (bound {bound} s); {moved:,} of {n:,} moved")
    assert code == 0, output
    assert took < bound + 1.0, output  # the process's own exit (interpreter, pools) has a second
    assert "Traceback" not in output and "CancelledError" not in output, output
    assert "stopped after" in output  # the chunk in hand committed, the rest waits
    assert 0 < moved < n  # the close was cut short, not run to the end
    assert moved + in_state("receipt") == n
    with read(app.db) as conn:
        row = conn.execute(sa.select(DEADLINE).where(DEADLINE.c.key == key)).mappings().one()
        assert (row["fired_at"], row["claimed_by"], row["lease_until"], row["last_error"]) == (None, None, None, None)
        assert audit.verify(conn, TABLE).clean
    # the next start (here: a tick) takes the row at once and finishes the close
    clock.set(datetime.now(UTC))
    [done] = Ticker(app, "next").run_until_idle()
    assert done.key == key and done.error is None
    assert (in_state("receipt"), in_state("preliminary_review")) == (0, n)
    with read(app.db) as conn:
        twice = conn.execute(
            sa.select(sa.func.count()).select_from(
                sa.select(AUDIT.c.application_id)
                .where(AUDIT.c.trigger == "start_review")
                .group_by(AUDIT.c.application_id)
                .having(sa.func.count() > 1)
                .subquery()
            )
        ).scalar_one()
        assert twice == 0 and audit.verify(conn, TABLE).clean
    app.db.dispose()


def test_a_held_or_failed_deadline_is_not_counted_as_fired(derived: App, clock: FixedClock) -> None:
    clock.set(kst("2024-05-29 18:30"))  # every call caught up after its close: held, none fired
    daemon = Daemon(derived, "d1", api=Api(enabled=False))
    daemon.wake()
    held = [f for f in daemon.fired if f.error is not None]
    assert held and all(f.action == "announce" for f in held)
    sample = daemon.metrics.registry.get_sample_value
    assert sample("gongmo_deadlines_fired_total", {"action": "announce", "timing": "late"}) in (None, 0.0)
