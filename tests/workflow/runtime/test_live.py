"""`gongmo demo --live` (workflow/runtime/live.py): the moved calendar, the sample applicants and
committee stepped through it on a FixedClock (no sleeping), and one smoke run of the command."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from gongmo.states.errors import InvalidInput
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role
from gongmo.workflow.core import config as config_mod
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.config import CALENDAR_ORDER
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import APPLICATION, AUDIT, DEADLINE, SCORE
from gongmo.workflow.deadlines.plan import plan_track
from gongmo.workflow.deadlines.ticker import Fired, Ticker
from gongmo.workflow.engine import audit
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox import office
from gongmo.workflow.runtime import live, wiring
from gongmo.workflow.stages import committee, review, selection
from tests.conftest import CONFIG, ROOT, SAMPLE_CSV, run_cli

START = datetime(2026, 12, 5, 22, 12, 2, tzinfo=UTC)  # a Saturday evening in Seoul: closed days change nothing
OFFICE = Actor("newcomer@gongmo.local", Role.ADMIN)


def loaded_live(tmp_path: Path, minutes: float = 15, start: datetime = START) -> config_mod.Loaded:
    return live.live_loaded(config_mod.load(CONFIG), start, tmp_path, tmp_path / "maildir", minutes=minutes)


@pytest.mark.parametrize("minutes", [8, 15, 60])
def test_the_moved_calendar_validates_fits_and_keeps_the_order(tmp_path: Path, minutes: int) -> None:
    loaded = loaded_live(tmp_path, minutes)
    config_mod.Config.model_validate(loaded.config.model_dump())  # the config's own validation, again
    assert [t.key for c in loaded.config.contests for t in c.tracks] == [live.TRACK]  # only this track
    contest, track = loaded.config.track(live.TRACK)
    cal = dict(track.calendar.items())
    assert list(cal) == [m for m in CALENDAR_ORDER if m != "review_starts"]
    assert cal["announce_at"] - START == timedelta(minutes=1)
    assert cal["kickoff_due"] - START <= timedelta(minutes=minutes)
    times = list(cal.values())
    assert times == sorted(times) and len(set(times)) == len(times)
    # The real calendar's order of windows, each long enough to act in: two minutes or more at 15.
    shortest = timedelta(minutes=2) * (minutes - 1) / 14
    for opens, closes in (
        ("receipt_opens", "receipt_closes"),
        ("written_starts", "written_ends"),
        ("presentation_starts", "presentation_ends"),
    ):
        assert cal[closes] - cal[opens] >= shortest
    # Nothing the track plans falls past kickoff_due: the day-counted settings are set for the copy.
    assert (contest.period_end_rule, track.kickoff_grace_days) == ("calendar", 0)
    row = {"key": track.key, **cal}
    planned = plan_track(row, track, contest.timezone, contest.closures())
    assert {p.action for p in planned} >= {"announce", "close_receipt", "start_presentation", "reminder"}
    assert all(cal["announce_at"] <= p.due_at <= cal["kickoff_due"] for p in planned)
    reminders = [p.due_at for p in planned if p.action == "reminder"]
    assert len(reminders) == 1 and cal["receipt_opens"] <= reminders[0] < cal["receipt_closes"]
    assert loaded.database_url == f"sqlite:///{tmp_path / 'live.db'}"
    assert loaded.config.mail.transport == "maildir" and loaded.config.mail.maildir == str(tmp_path / "maildir")
    assert loaded.config.console_url() == f"http://127.0.0.1:{loaded.config.api.port}"  # the links in mails


@pytest.mark.parametrize("minutes", [7, 24 * 60 + 1])
def test_minutes_out_of_range_are_refused(tmp_path: Path, minutes: int) -> None:
    with pytest.raises(InvalidInput, match="--minutes"):
        loaded_live(tmp_path, minutes)


def test_a_reminder_falls_on_a_whole_minute_inside_a_short_window() -> None:
    opens = datetime(2024, 5, 27, 0, 0, 30, tzinfo=UTC)
    assert live.reminder_spec(opens, opens + timedelta(seconds=75), "Asia/Seoul") == ["D-0 09:01"]
    assert live.reminder_spec(opens, opens + timedelta(seconds=25), "Asia/Seoul") == []  # no whole minute inside
    # A close just after midnight (Seoul): the reminder is on the day before.
    closes = datetime(2024, 5, 27, 15, 0, 20, tzinfo=UTC)  # 00:00:20 KST on 5-28
    assert live.reminder_spec(closes - timedelta(minutes=3), closes, "Asia/Seoul") == ["D-1 23:59"]


# -- stepped through on a FixedClock ------------------------------------------------------------


@pytest.fixture
def stepped(tmp_path: Path) -> Iterator[tuple[App, live.Sampler, list[Fired], dict[str, datetime]]]:
    """The live track run from START to past kickoff_due: the ticker, the sampler and the office's
    decisions (as a newcomer takes them in the console) each at its moment, in time order."""
    clock = FixedClock(START)
    app = wiring.open_app(loaded_live(tmp_path), clock)
    try:
        live.prepare(app, SAMPLE_CSV)
        sampler = live.Sampler(app, out=lambda line: None)
        cal = dict(app.loaded.config.track(live.TRACK)[1].calendar.items())
        decisions: list[tuple[datetime, Callable[[], object]]] = [
            (cal["receipt_closes"] + timedelta(seconds=30), lambda: review.pass_eligible(app, live.TRACK, OFFICE)),
            (cal["written_starts"] + timedelta(seconds=5), lambda: committee.assign_track(app, live.TRACK, OFFICE)),
            (
                cal["presentation_ends"] + timedelta(seconds=20),
                lambda: selection.select(app, live.TRACK, OFFICE, confirm=True),
            ),
            (cal["selection_at"], lambda: office.release(app, live.TRACK, office.RESULTS)),
        ]
        ticker = Ticker(app, "live-test")
        fired: list[Fired] = []
        while True:
            moments = [m for m in (ticker.next_due(), sampler.next_at(), decisions[0][0] if decisions else None) if m]
            if not moments:
                break
            clock.set(min(moments))
            fired += ticker.tick()
            sampler.run_due()
            while decisions and decisions[0][0] <= clock.now():
                decisions.pop(0)[1]()
        yield app, sampler, fired, cal
    finally:
        app.db.dispose()


def test_the_sample_applicants_submit_inside_the_window_at_spread_moments(
    stepped: tuple[App, live.Sampler, list[Fired], dict[str, datetime]],
) -> None:
    app, sampler, _, cal = stepped
    with read(app.db) as conn:
        invited = conn.execute(sa.select(sa.func.count()).select_from(APPLICATION)).scalar_one()
        submitted = [r.at for r in conn.execute(sa.select(AUDIT.c.at).where(AUDIT.c.trigger == "submit"))]
    assert invited >= 6
    assert len(submitted) == len([i for i in range(invited) if i % 3 != 2])  # two in three, as the rehearsal
    assert all(cal["receipt_opens"] < at < cal["receipt_closes"] for at in submitted)
    assert len(set(submitted)) >= 4  # spread over the window, not at once
    rounds = [(at, what) for at, label, what in sampler.done if label == "sample applicants"]
    assert len(rounds) == live.SUBMIT_ROUNDS and not any("failed" in what for _, what in rounds)


def test_the_committees_sheets_land_in_their_windows(
    stepped: tuple[App, live.Sampler, list[Fired], dict[str, datetime]],
) -> None:
    app, sampler, _, cal = stepped
    seats = committee.assignments(app, live.TRACK)
    with read(app.db) as conn:
        sheets = conn.execute(
            sa.select(SCORE.c.application_id, SCORE.c.evaluator_id, SCORE.c.part, SCORE.c.entered_at).distinct()
        ).all()
        states = dict(conn.execute(sa.select(APPLICATION.c.state, sa.func.count()).group_by(APPLICATION.c.state)).all())
    assert seats
    windows = {
        "written": ("written_starts", "written_ends"),
        "presentation": ("presentation_starts", "presentation_ends"),
    }
    for part, (start, end) in windows.items():
        mine = [s for s in sheets if s.part == part]
        assert len(mine) == len(seats), part  # every assigned evaluator, one sheet each
        assert all(cal[start] <= s.entered_at < cal[end] for s in mine), part
        assert len({s.entered_at for s in mine}) >= 3, part  # the committee enters them over the window
    # So the office could rank and select: the selection's slots are filled, the rest decided.
    assert states.get("selected", 0) + states.get("cancelled", 0) >= 1
    assert "presentation_evaluation" not in states
    # The selected file their implementation plans after the selection, for the office to approve.
    filed = [(at, what) for at, label, what in sampler.done if "implementation plan(s) filed" in what]
    slots = app.loaded.config.track(live.TRACK)[1].slots
    assert filed and filed[0][1].startswith(f"{slots} implementation plan(s) filed")
    assert cal["selection_at"] < filed[0][0] < cal["kickoff_due"]


def test_the_ticker_fires_every_deadline_in_order(
    stepped: tuple[App, live.Sampler, list[Fired], dict[str, datetime]],
) -> None:
    app, _, fired, cal = stepped
    assert [f.error for f in fired] == [None] * len(fired)
    assert not any(f.late for f in fired)
    assert [f.due_at for f in fired] == sorted(f.due_at for f in fired)
    milestones = [f.milestone for f in fired if f.action != "reminder"]
    assert milestones == sorted(milestones, key=CALENDAR_ORDER.index)
    with read(app.db) as conn:
        unfired = conn.execute(sa.select(DEADLINE.c.key).where(DEADLINE.c.fired_at.is_(None))).scalars().all()
        assert audit.verify(conn, TABLE).clean
    assert unfired == []
    assert {f.action for f in fired} >= {"announce", "open_receipt", "reminder", "close_receipt", "kickoff_closes"}
    assert max(f.due_at for f in fired) == cal["kickoff_due"]


def test_a_refused_act_is_logged_and_the_sampler_goes_on(tmp_path: Path) -> None:
    """Sheets with nobody assigned, and an act that raises: said, not raised; the next act runs."""
    clock = FixedClock(START)
    app = wiring.open_app(loaded_live(tmp_path), clock)
    try:
        live.prepare(app, SAMPLE_CSV)
        sampler = live.Sampler(app, out=lambda line: None)
        first = sampler.acts[0]
        sampler.acts[0] = live.Act(first.at, first.order, "boom", lambda: 1 / 0)  # type: ignore[arg-type,return-value]
        clock.set(sampler.acts[1].at)
        lines = sampler.run_due()
        assert "boom: failed: division by zero" in lines[0]
        assert "sample applicants" in lines[1]
        written = next(a for a in sampler.acts if a.order == 2)
        clock.set(written.at)
        assert any("not assigned yet" in line for line in sampler.run_due())
    finally:
        app.db.dispose()


# -- the command ----------------------------------------------------------------------------------


def test_the_live_options_are_refused_without_live_or_out_of_range(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where a live demo's folder would go
    code, out, err = run_cli(capsys, "-c", str(CONFIG), "demo", "--port", "9999")
    assert code != 0 and "add --live" in out + err
    code, out, err = run_cli(capsys, "-c", str(CONFIG), "demo", "--live", "--minutes", "3")
    assert code != 0 and "--minutes 3" in out + err
    assert not list(tmp_path.glob("gongmo-live-*"))  # refused before any folder is made
    code, out, err = run_cli(capsys, "-c", str(CONFIG), "--now", "2024-05-27T09:00", "demo", "--live")
    assert code != 0 and "real clock" in out + err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_live_serves_the_console_and_prints_a_sign_in_link(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("GONGMO_DATABASE_URL", "GONGMO_NOW", "GONGMO_CONFIG")}
    env |= {"PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path / "live.log"
    cmd = [sys.executable, "-m", "gongmo", "-c", str(CONFIG), "demo", "--live", "--port", str(port), "--minutes", "15"]
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            started = time.monotonic()
            link = None
            while link is None:
                assert proc.poll() is None, log_path.read_text()
                assert time.monotonic() - started < 90, "no sign-in link printed:\n" + log_path.read_text()
                found = re.search(r"sign in\s+(http://\S+)", log_path.read_text())
                link = found.group(1) if found else None
                time.sleep(0.1)
            assert link.startswith(f"http://127.0.0.1:{port}/signin/")
            with urllib.request.urlopen(link, timeout=10) as page:
                assert page.status == 200
                assert "<form" in page.read().decode("utf-8")
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as health:
                assert health.status in (200, 503)
            proc.terminate()  # SIGTERM, by its PID
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    output = log_path.read_text()
    assert code == 0, output
    assert "Traceback" not in output, output
    for words in ("console   http://127.0.0.1:", "mail      ", "announce_at", "kickoff_due", "period_end_rule"):
        assert words in output, output
