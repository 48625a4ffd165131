"""Deadlines fire exactly once: on time, after downtime, with two daemons."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from gongmo.states.errors import Conflict, InvalidInput, NotFound
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICATION, AUDIT, DEADLINE, OUTBOX, TRACK
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.deadlines import status
from gongmo.workflow.deadlines.ticker import Ticker
from gongmo.workflow.engine import audit
from gongmo.workflow.engine import intake as engine_module
from gongmo.workflow.engine.app import App
from tests.conftest import CONFIG, config_copy, kst
from tests.workflow import plans

TRACK_KEY = "strong-small-2024"


# The 2022 side calls (scc-2022-demonstration, issue 21): their calendars ran in 2022 too.
SIDE_CALLS = ("public-private-2022", "living-lab-2022")
PAST_2022 = ("small-medium-2022", *SIDE_CALLS)


@pytest.fixture
def derived_all(app: App) -> App:
    """Every track's deadline rows, as `gongmo init` derives them."""
    with write(app.db) as conn:
        calendars.derive(app, conn)
    return app


@pytest.fixture
def derived(derived_all: App) -> App:
    """The two reference contests' deadline rows: the tests of the ticker's mechanics are about
    them; the side calls' past calendar would only add rows to each batch (it is fired in
    test_each_deadline_fires_once_on_time, and rehearsed in gongmo rehearse)."""
    without_side_calls(derived_all)
    return derived_all


def without_side_calls(app: App) -> None:
    with write(app.db) as conn:
        side = sa.select(TRACK.c.id).where(TRACK.c.key.in_(SIDE_CALLS))
        conn.execute(sa.delete(DEADLINE).where(DEADLINE.c.track_id.in_(side)))


def fired_rows(app: App) -> list[dict]:
    with read(app.db) as conn:
        query = (
            sa.select(DEADLINE.c.key, DEADLINE.c.fired_at, DEADLINE.c.late, DEADLINE.c.attempts, DEADLINE.c.due_at)
            .where(DEADLINE.c.fired_at.is_not(None))
            .order_by(DEADLINE.c.fired_at, DEADLINE.c.id)
        )
        return [dict(r) for r in conn.execute(query).mappings()]


def audit_triggers(app: App, trigger: str) -> dict[int, int]:
    with read(app.db) as conn:
        rows = conn.execute(
            sa.select(AUDIT.c.application_id, sa.func.count())
            .where(AUDIT.c.trigger == trigger)
            .group_by(AUDIT.c.application_id)
        ).all()
    return {int(a): int(n) for a, n in rows}


def test_each_deadline_fires_once_on_time(derived_all: App, clock: FixedClock) -> None:
    derived = derived_all
    ticker = Ticker(derived, "w1")
    clock.set(kst("2024-03-29 09:59:59"))
    # The 2022 calendars are long past: each call (the small and medium city project's and the
    # two side calls'), caught up after its receipt close, is held for the office (not sent,
    # not fired), and the rest of its track waits.
    held = ticker.tick()
    assert sorted((f.key, f.late) for f in held) == [(f"{t}:announce", True) for t in sorted(PAST_2022)]
    for f in held:
        assert f.error is not None and f.error.startswith(f"held: track {f.key.split(':')[0]}: receipt closed")
    assert ticker.tick() == []
    for track in PAST_2022:
        ticker.skip(f"{track}:announce", "run in 2021-2022, before gongmo")  # the office's word
    overdue_2022 = ticker.run_until_idle()  # now the rest of them catches up (in more than one batch)
    by_track = {t: sum(f.key.startswith(f"{t}:") for f in overdue_2022) for t in PAST_2022}
    # every row but the call: 11 milestones and reminders less the call (review_starts: one more in 2022's main call)
    assert by_track == {"small-medium-2022": 10, "public-private-2022": 9, "living-lab-2022": 9}
    assert len(overdue_2022) == 28 and all(f.late and f.error is None for f in overdue_2022)
    assert ticker.tick() == []
    clock.set(kst("2024-03-29 10:00"))
    fired = ticker.tick()
    assert sorted(f.key for f in fired) == [f"{t}:announce" for t in ("diffusion-2024", "hub-2024", TRACK_KEY)]
    assert not any(f.late for f in fired)
    assert ticker.tick() == []
    clock.set(kst("2024-03-29 10:01"))
    assert ticker.tick() == []
    assert set(audit_triggers(derived, "invite").values()) == {1}
    assert all(r["attempts"] == 1 for r in fired_rows(derived) if r["key"] not in {f"{t}:announce" for t in PAST_2022})


def test_receipt_close_fires_once_and_moves_everyone(derived: App, clock: FixedClock) -> None:
    ticker = Ticker(derived, "w1")
    clock.set(kst("2024-03-29 10:00"))
    ticker.run_until_idle()
    clock.set(kst("2024-05-28 10:00"))
    plans.submit(derived, TRACK_KEY, "41590", 8_000_000_000, 8_000_000_000, ticker_admin(), None, "climate_crisis")
    clock.set(kst("2024-05-29 18:00"))
    fired = ticker.run_until_idle()
    close = [f for f in fired if f.key == f"{TRACK_KEY}:close_receipt"]
    assert len(close) == 1 and not close[0].late
    assert close[0].summary == "17 expired, 1 to preliminary review"
    clock.set(kst("2024-05-29 18:05"))
    assert all(f.key != f"{TRACK_KEY}:close_receipt" for f in ticker.run_until_idle())
    assert set(audit_triggers(derived, "expire").values()) == {1}


def ticker_admin():  # the office records a plan received
    from gongmo.states.lifecycle import Role
    from gongmo.workflow.core.actors import Actor

    return Actor("lh-office", Role.ADMIN)


def test_reminders_go_once_and_only_to_those_who_have_not_submitted(derived: App, clock: FixedClock) -> None:
    ticker = Ticker(derived, "w1")
    clock.set(kst("2024-03-29 10:00"))
    ticker.run_until_idle()
    clock.set(kst("2024-05-27 10:00"))
    submitted = plans.submit(derived, TRACK_KEY, "41590", 1, 1, ticker_admin(), None, "climate_crisis").application_id
    clock.set(kst("2024-05-28 09:00"))  # the working day before the close, 09:00
    ticker.run_until_idle()
    ticker.run_until_idle()
    with read(derived.db) as conn:
        rows = conn.execute(
            sa.select(OUTBOX.c.application_id, OUTBOX.c.dedup_key)
            .join(APPLICATION, APPLICATION.c.id == OUTBOX.c.application_id)
            .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
            .where(OUTBOX.c.notice == "deadline_reminder", TRACK.c.key == TRACK_KEY)
        ).all()
    assert submitted not in {r.application_id for r in rows}
    # one reminder (the working day before the close) to each of the 17 who had not submitted
    assert len(rows) == 17 and len({r.dedup_key for r in rows}) == len(rows)


def test_three_day_outage_catches_up_every_deadline_once_in_order(derived: App, clock: FixedClock) -> None:
    """Down from before the receipt reminders until three days after the close."""
    ticker = Ticker(derived, "w1")
    clock.set(kst("2024-03-29 10:00"))
    ticker.run_until_idle()
    clock.set(kst("2024-06-01 18:00"))  # back after three days
    derived.loaded.config.gongmo  # noqa: B018
    ticker.batch = 2  # bounded work per tick
    first = ticker.tick()
    assert len(first) == 2
    caught = first + ticker.run_until_idle()
    ours = [f for f in caught if f.key.startswith(f"{TRACK_KEY}:")]
    assert [f.key.split(":", 1)[1] for f in ours] == [
        "open_receipt",
        "reminder:D-1 working days 09:00",
        "reminder:-3h",
        "close_receipt",
    ]
    assert all(f.late for f in ours)
    dues = [f.due_at for f in caught]
    assert dues == sorted(dues)  # calendar order across tracks
    with read(derived.db) as conn:
        reasons = set(
            conn.execute(
                sa.select(AUDIT.c.reason)
                .join(APPLICATION, APPLICATION.c.id == AUDIT.c.application_id)
                .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
                .where(AUDIT.c.trigger == "expire", TRACK.c.key == TRACK_KEY)
            ).scalars()
        )
    [reason] = reasons
    assert "deadline strong-small-2024:close_receipt due 2024-05-29 18:00 KST" in reason
    assert "catch-up: fired 3d late" in reason
    assert all(r["attempts"] == 1 for r in fired_rows(derived))
    with read(derived.db) as conn:
        assert audit.verify(conn, TABLE).clean


def test_a_failing_deadline_is_kept_and_retried(
    derived: App, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticker = Ticker(derived, "w1")
    clock.set(kst("2024-03-29 10:00"))

    def broken(row, reason):  # type: ignore[no-untyped-def]
        raise RuntimeError("database went away")

    monkeypatch.setitem(ticker.actions, "announce", broken)
    failed = [f for f in ticker.tick() if f.action == "announce"]
    assert failed and all(f.error == "RuntimeError: database went away" for f in failed)
    with read(derived.db) as conn:
        row = conn.execute(sa.select(DEADLINE).where(DEADLINE.c.key == f"{TRACK_KEY}:announce")).mappings().one()
    assert row["fired_at"] is None and row["last_error"] == "RuntimeError: database went away"
    monkeypatch.undo()
    ticker = Ticker(derived, "w1")
    assert [f for f in ticker.tick() if f.key == f"{TRACK_KEY}:announce"] == []  # backing off
    clock.set(kst("2024-03-29 10:05"))
    retried = [f for f in ticker.run_until_idle() if f.key == f"{TRACK_KEY}:announce"]
    assert len(retried) == 1 and retried[0].error is None


def test_a_dead_daemons_claim_is_taken_over_after_its_lease(derived: App, clock: FixedClock) -> None:
    clock.set(kst("2024-03-29 10:00"))
    dead = Ticker(derived, "dead")
    claimed = dead._claim(clock.now())  # claimed, then the process died
    claimed = [r for r in claimed if not r["key"].startswith("small-medium-2022:")]  # held behind its late call
    assert claimed
    alive = Ticker(derived, "alive")
    assert alive.tick() == []  # the lease still holds
    clock.set(kst("2024-03-29 10:00") + alive.lease + timedelta(seconds=1))
    taken = alive.run_until_idle()
    assert {f.key for f in taken} >= {r["key"] for r in claimed}
    assert set(audit_triggers(derived, "invite").values()) == {1}


# -- two daemons, two processes ----------------------------------------------------


def _config_for(db_url: str, tmp_path: Path) -> Path:
    return config_copy(tmp_path, ("[mail]", "deadlines_per_tick = 1\n\n[mail]"), database_url=db_url)


def test_two_daemon_processes_never_fire_a_deadline_twice(db_url: str, tmp_path: Path, clock: FixedClock) -> None:
    from tests.conftest import make_app

    app = make_app(db_url, clock)
    with write(app.db) as conn:
        calendars.derive(app, conn)
    without_side_calls(app)
    clock.set(kst("2024-03-29 10:00"))
    setup = Ticker(app, "setup")
    setup.run_until_idle()  # announce 2024; 2022's call, long past, is held
    setup.skip("small-medium-2022:announce", "run in 2021, before gongmo")
    with read(app.db) as conn:
        invited = (
            conn.execute(
                sa.select(APPLICATION.c.id)
                .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
                .where(TRACK.c.key == TRACK_KEY, APPLICATION.c.state == "announcement")
            )
            .scalars()
            .all()
        )
    # one extension deadline per invited application, all due at the same instant
    for app_id in invited:
        clock.set(kst("2024-05-20 10:00"))
        calendars.extend(app, app_id, "receipt_closes", kst("2024-05-30 18:00"), "전산 장애", "lh")
    config = _config_for(db_url, tmp_path)
    env = {**os.environ, "GONGMO_CONFIG": str(config), "GONGMO_NOW": "2024-06-30T10:00:00+09:00"}
    env.pop("GONGMO_DATABASE_URL", None)
    cmd = [sys.executable, "-m", "gongmo", "tick", "--until-idle"]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    rows = fired_rows(app)
    with read(app.db) as conn:
        unfired = conn.execute(
            sa.select(sa.func.count()).where(
                DEADLINE.c.fired_at.is_(None), DEADLINE.c.due_at <= kst("2024-06-30 10:00")
            )
        ).scalar_one()
        by_worker = conn.execute(
            sa.select(DEADLINE.c.claimed_by, sa.func.count())
            .where(DEADLINE.c.key.startswith("ext:"))
            .group_by(DEADLINE.c.claimed_by)
        ).all()
        report = audit.verify(conn, TABLE)
    assert unfired == 0
    assert all(r["attempts"] == 1 for r in rows)
    assert set(audit_triggers(app, "expire").values()) == {1}
    assert report.clean, report.findings[:3]
    print(f"\n[{app.db.dialect.name}] ext deadlines per worker: {dict(by_worker)}")
    app.db.dispose()


def test_rehearsal_of_the_2022_contest_prints_its_real_calendar(capsys: pytest.CaptureFixture[str]) -> None:
    from gongmo.workflow.cli import run

    assert run(["--config", str(CONFIG), "rehearse", "scc-2022-small-medium"]) == 0
    out = capsys.readouterr().out
    for line in (
        "2021-11-23 (화) 10:00 KST  small-medium-2022  [announce]",
        "2021-12-29 (수) 18:00 KST  small-medium-2022  [close_receipt]",
        "2022-01-21 (금) 18:00 KST  small-medium-2022  [start_presentation]",
        "2022-02-04 (금) 09:00 KST  small-medium-2022  selection confirmed",
        "2022-02-04 (금) 10:00 KST  small-medium-2022  [selection_due] 0 without a result",
        "2022-03-31 (목) 18:00 KST  small-medium-2022  [kickoff_plan_due] 1 selected",
        "2022-04-14 (목) 18:00 KST  small-medium-2022  [kickoff_closes] 1 cancelled",
        "audit verify: 18 applications, 101 rows, clean",
    ):
        assert line in out, line


@pytest.mark.slow
def test_demo_runs_both_contests_and_exits_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from gongmo.workflow.cli import run

    assert run(["--config", str(CONFIG), "demo", "--maildir", str(tmp_path / "maildir")]) == 0
    out = capsys.readouterr().out
    assert "hub-2024" in out and "diffusion-2024" in out and "small-medium-2022" in out
    assert "rows, clean" in out  # audit verify
    assert f"mutt -f {tmp_path / 'maildir'}" in out


# -- calendar order under leases -------------------------------------------------------


def _hold(app: App, key: str, worker: str, until: timedelta, error: str | None = None) -> None:
    """Make `key` look claimed by `worker` (alive or dead) or backing off, for `until` from now."""
    assert isinstance(app.clock, FixedClock)
    with write(app.db) as conn:
        conn.execute(
            sa.update(DEADLINE)
            .where(DEADLINE.c.key == key)
            .values(claimed_by=worker, lease_until=app.clock.now() + until, last_error=error)
        )


def _due_order(app: App, track: str) -> list[str]:
    with read(app.db) as conn:
        query = (
            sa.select(DEADLINE.c.key)
            .join(TRACK, TRACK.c.id == DEADLINE.c.track_id)
            .where(TRACK.c.key == track, DEADLINE.c.fired_at.is_not(None))
            .order_by(DEADLINE.c.due_at, DEADLINE.c.id)
        )
        return list(conn.execute(query).scalars())


def test_a_later_deadline_waits_while_an_earlier_one_of_its_track_is_held(derived: App, clock: FixedClock) -> None:
    clock.set(kst("2024-05-29 18:00"))  # the call, the receipt and its close of every 2024 track are due
    ticker = Ticker(derived, "alive")
    ticker.late_announcements = "send"  # the calls caught up after the close go out (the office's setting)
    _hold(derived, f"{TRACK_KEY}:announce", "dead", ticker.lease)  # a daemon died holding the call
    fired = ticker.run_until_idle()
    assert fired and not [f for f in fired if f.key.startswith(TRACK_KEY)]  # nothing of its track, not the close
    assert {f.key for f in fired} >= {"hub-2024:announce", "diffusion-2024:announce"}  # other tracks go on
    clock.advance(ticker.lease + timedelta(seconds=1))  # the dead daemon's lease runs out
    late = ticker.run_until_idle()
    assert [f.key for f in late] == [k for k in _due_order(derived, TRACK_KEY)]  # in calendar order
    assert late[0].key == f"{TRACK_KEY}:announce" and f"{TRACK_KEY}:close_receipt" in [f.key for f in late]


def test_a_deadline_backing_off_after_a_failure_holds_its_track_back(derived: App, clock: FixedClock) -> None:
    clock.set(kst("2024-05-29 18:00"))
    ticker = Ticker(derived, "alive")
    ticker.late_announcements = "send"
    _hold(derived, f"{TRACK_KEY}:announce", "alive", timedelta(hours=1), error="RuntimeError: database went away")
    fired = {f.key for f in ticker.run_until_idle()}
    assert not {k for k in fired if k.startswith(f"{TRACK_KEY}:")}  # not the close, not a reminder
    assert {"hub-2024:close_receipt", "diffusion-2024:announce"} <= fired  # other tracks go on


# -- calendar order survives errors (issue 18, point 3) ----------------------------------------

LATER = ["review_due", "start_presentation", "selection_due"]


def test_a_failed_close_holds_back_the_later_deadlines_until_it_fired(
    derived: App, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The close fails once (its connection was terminated); with review_due,
    start_presentation and selection_due also due, none of them fires before it,
    neither in the same batch nor while it backs off; once it succeeds they
    follow in calendar order, and review_due counts the plans the close moved."""
    ticker = Ticker(derived, "w1")
    clock.set(kst("2024-03-29 10:00"))
    ticker.run_until_idle()
    clock.set(kst("2024-05-28 10:00"))
    plans.submit(derived, TRACK_KEY, "41590", 8_000_000_000, 8_000_000_000, ticker_admin(), None, "climate_crisis")
    clock.set(kst("2024-06-26 10:00"))  # down a month: the close and the three after it are due
    real = ticker.actions["close_receipt"]
    calls: list[str] = []

    def fails_once(row, reason):  # type: ignore[no-untyped-def]
        if row["key"] == f"{TRACK_KEY}:close_receipt" and not calls:
            calls.append(row["key"])
            raise RuntimeError("terminating connection due to administrator command")
        return real(row, reason)

    monkeypatch.setitem(ticker.actions, "close_receipt", fails_once)
    first = [f for f in ticker.run_until_idle() if f.key.startswith(f"{TRACK_KEY}:")]
    ours = [f.key.split(":", 1)[1] for f in first]
    assert ours[-1] == "close_receipt" and first[-1].error is not None, ours  # the batch stopped at the failure
    assert not set(ours) & set(LATER), ours
    with read(derived.db) as conn:
        blocked = status.blocked(conn, clock.now())
    [block] = [b for b in blocked if b["track"] == TRACK_KEY]
    assert block["key"] == f"{TRACK_KEY}:close_receipt" and block["kind"] == "failed"
    assert block["error"] == "RuntimeError: terminating connection due to administrator command"
    assert block["waiting"] == len(LATER)
    assert ticker.run_until_idle() == []  # backing off: still nothing of the track
    clock.advance(timedelta(minutes=1))  # the backoff (30 s) is over
    second = [f for f in ticker.run_until_idle() if f.key.startswith(f"{TRACK_KEY}:")]
    assert [f.key.split(":", 1)[1] for f in second] == ["close_receipt", *LATER]
    assert all(f.error is None for f in second)
    assert second[0].summary == "17 expired, 1 to preliminary review"
    assert second[1].summary.startswith("1 still in preliminary review")  # not "0": the close ran first
    assert _due_order(derived, TRACK_KEY)[-4:] == [f.key for f in second]
    with read(derived.db) as conn:
        assert [b for b in status.blocked(conn, clock.now()) if b["track"] == TRACK_KEY] == []


def test_a_failure_in_a_batch_gives_the_later_rows_of_its_track_back_unclaimed(
    derived: App, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In one batch: the close fails, so its track's rows after it are given back
    untouched (no attempt spent, no lease), not fired behind its back."""
    ticker = Ticker(derived, "w1")
    clock.set(kst("2024-03-29 10:00"))
    ticker.run_until_idle()
    clock.set(kst("2024-06-26 10:00"))

    def broken(row, reason):  # type: ignore[no-untyped-def]
        raise RuntimeError("server closed the connection unexpectedly")

    monkeypatch.setitem(ticker.actions, "close_receipt", broken)
    ticker.batch = 1000  # everything due in one claim
    ticker.tick()
    with read(derived.db) as conn:
        rows = {
            k.split(":", 1)[1]: (attempts, claimed, lease, fired)
            for k, attempts, claimed, lease, fired in conn.execute(
                sa.select(
                    DEADLINE.c.key,
                    DEADLINE.c.attempts,
                    DEADLINE.c.claimed_by,
                    DEADLINE.c.lease_until,
                    DEADLINE.c.fired_at,
                ).where(DEADLINE.c.key.like(f"{TRACK_KEY}:%"))
            )
        }
    for action in LATER:
        assert rows[action] == (0, None, None, None), (action, rows[action])
    assert rows["close_receipt"][0] == 1 and rows["close_receipt"][3] is None


# -- announcements: resumable, never silently skipped (issue 18, point 4) ---------------------


def _applications(app: App, track: str = TRACK_KEY) -> list[int]:
    with read(app.db) as conn:
        return list(
            conn.execute(
                sa.select(APPLICATION.c.id)
                .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
                .where(TRACK.c.key == track)
                .order_by(APPLICATION.c.id)
            ).scalars()
        )


def test_an_announcement_commits_chunk_by_chunk_and_a_rerun_continues(
    derived: App, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed (here: the database fails) after its first chunk: the first chunk
    stays, the deadline is unfired; the retry creates only the rest, each once."""
    monkeypatch.setattr(engine_module, "ANNOUNCE_CHUNK", 5)
    clock.set(kst("2024-03-29 10:00"))
    ticker = Ticker(derived, "w1")
    real = derived.moves.intake.create
    chunks: list[int] = []

    def dies_on_the_second_chunk(conn, track, ids, *args, **kwargs):  # type: ignore[no-untyped-def]
        if track["key"] == TRACK_KEY:
            chunks.append(len(ids))
            if len(chunks) == 2:
                raise RuntimeError("server closed the connection unexpectedly")
        return real(conn, track, ids, *args, **kwargs)

    monkeypatch.setattr(derived.moves.intake, "create", dies_on_the_second_chunk)
    [failed] = [f for f in ticker.tick() if f.key == f"{TRACK_KEY}:announce"]
    assert failed.error == "RuntimeError: server closed the connection unexpectedly"
    assert len(_applications(derived)) == 5  # the first chunk committed
    clock.advance(timedelta(minutes=1))
    [done] = [f for f in ticker.run_until_idle() if f.key == f"{TRACK_KEY}:announce"]
    assert done.error is None and done.summary == "13 applications created, each sent the call"
    assert len(_applications(derived)) == 18
    assert set(audit_triggers(derived, "invite").values()) == {1}
    with read(derived.db) as conn:
        calls = conn.execute(
            sa.select(OUTBOX.c.application_id, sa.func.count())
            .where(OUTBOX.c.notice == "call_announcement", OUTBOX.c.application_id.in_(_applications(derived)))
            .group_by(OUTBOX.c.application_id)
        ).all()
    assert len(calls) == 18 and {n for _, n in calls} == {1}


def test_an_announcement_caught_up_after_the_close_is_held_not_skipped(derived: App, clock: FixedClock) -> None:
    """Down from before the call until after the receipt close: the call is not
    recorded as fired; it stays overdue, holds its track (the close does not run
    on an empty track), and shows as held; the office then sends it."""
    clock.set(kst("2024-05-29 18:30"))  # after the 2024 closes; the calls never went out
    ticker = Ticker(derived, "w1")
    fired = {f.key: f for f in ticker.run_until_idle()}
    held = fired[f"{TRACK_KEY}:announce"]
    assert held.error is not None and held.error.startswith(f"held: track {TRACK_KEY}: receipt closed at")
    assert f"gongmo deadlines --fire {TRACK_KEY}:announce" in held.error
    assert not [k for k in fired if k.startswith(f"{TRACK_KEY}:") and k != held.key]
    assert _applications(derived) == []
    with read(derived.db) as conn:
        row = conn.execute(sa.select(DEADLINE).where(DEADLINE.c.key == held.key)).mappings().one()
        blocked = {b["key"]: b for b in status.blocked(conn, clock.now())}
    assert row["fired_at"] is None
    assert blocked[held.key]["kind"] == "held" and blocked[held.key]["waiting"] >= 4  # reminders, opening, close
    clock.advance(timedelta(hours=2))
    assert [f.key for f in ticker.run_until_idle() if f.key.startswith(f"{TRACK_KEY}:")] in ([], [held.key])
    assert _applications(derived) == []  # still held, whatever the retries

    sent = ticker.fire_now(held.key)  # the office says: send it
    assert sent.error is None and sent.summary.startswith("18 applications created")
    rest = [f.key.split(":", 1)[1] for f in ticker.run_until_idle() if f.key.startswith(f"{TRACK_KEY}:")]
    assert rest[-1] == "close_receipt"  # now the close runs, after the call
    with read(derived.db) as conn:
        assert [b for b in status.blocked(conn, clock.now()) if b["track"] == TRACK_KEY] == []


def test_late_announcements_send_sends_the_call_caught_up_after_the_close(derived: App, clock: FixedClock) -> None:
    clock.set(kst("2024-05-29 18:30"))
    ticker = Ticker(derived, "w1")
    ticker.late_announcements = "send"  # [gongmo] late_announcements = "send"
    fired = {f.key: f for f in ticker.run_until_idle()}
    assert fired[f"{TRACK_KEY}:announce"].error is None
    assert "sent late" in fired[f"{TRACK_KEY}:announce"].summary
    assert len(_applications(derived)) == 18


def test_the_office_may_skip_a_held_call_but_not_fire_out_of_order(derived: App, clock: FixedClock) -> None:
    clock.set(kst("2024-05-29 18:30"))
    ticker = Ticker(derived, "w1")
    ticker.run_until_idle()
    with pytest.raises(Conflict, match=f"waits for {TRACK_KEY}:announce of its track"):
        ticker.fire_now(f"{TRACK_KEY}:close_receipt")
    with pytest.raises(InvalidInput, match="reason is required"):
        ticker.skip(f"{TRACK_KEY}:announce", " ")
    with pytest.raises(InvalidInput, match="only an announcement may be skipped"):
        ticker.skip(f"{TRACK_KEY}:open_receipt", "x")
    ticker.skip(f"{TRACK_KEY}:announce", "sent by post")
    with pytest.raises(Conflict, match="already"):
        ticker.skip(f"{TRACK_KEY}:announce", "again")
    with pytest.raises(NotFound, match="no deadline 'nope'"):
        ticker.fire_now("nope")
    assert f"{TRACK_KEY}:close_receipt" in {f.key for f in ticker.run_until_idle()}


def test_a_long_action_keeps_its_lease_and_no_other_daemon_takes_it(
    derived: App, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.set(kst("2024-03-29 10:00"))
    ticker = Ticker(derived, "slow")
    ticker.batch = 1
    ticker.renew_every = 0.01
    with write(derived.db) as conn:  # 2022's rows are not this test's business
        conn.execute(sa.update(DEADLINE).where(DEADLINE.c.key.like("small-medium-2022:%")).values(fired_at=clock.now()))
    seen: dict[str, object] = {}

    def slow(row, reason):  # type: ignore[no-untyped-def]
        first = _lease_of(derived, row["key"])
        clock.advance(ticker.lease - timedelta(seconds=1))  # nearly the whole lease goes by
        for _ in range(500):  # the renewal thread runs every 10 ms of real time
            if _lease_of(derived, row["key"]) > first:
                break
            threading.Event().wait(0.01)
        clock.advance(timedelta(seconds=2))  # past the first lease
        seen["other"] = Ticker(derived, "other")._claim(clock.now())
        seen["key"] = row["key"]
        return "done slowly"

    monkeypatch.setitem(ticker.actions, "announce", slow)
    [done] = ticker.tick()
    assert done.key == seen["key"] and done.error is None and done.summary == "done slowly"
    assert done.key not in {r["key"] for r in seen["other"]}  # type: ignore[attr-defined]
    assert _lease_of(derived, done.key) is None and fired_rows(derived)[-1]["key"] == done.key


def _lease_of(app: App, key: str):  # type: ignore[no-untyped-def]
    with read(app.db) as conn:
        return conn.execute(sa.select(DEADLINE.c.lease_until).where(DEADLINE.c.key == key)).scalar_one()


def test_an_action_that_outlived_its_lease_does_not_claim_the_firing(
    derived: App, clock: FixedClock, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock.set(kst("2024-03-29 10:00"))
    ticker = Ticker(derived, "slow")
    key = f"{TRACK_KEY}:announce"
    real = ticker.actions["announce"]

    def overtaken(row, reason):  # type: ignore[no-untyped-def]
        summary = real(row, reason)
        if row["key"] == key:  # meanwhile its lease ran out and another daemon took the row
            with write(derived.db) as conn:
                conn.execute(sa.update(DEADLINE).where(DEADLINE.c.key == key).values(claimed_by="other"))
        return summary

    monkeypatch.setitem(ticker.actions, "announce", overtaken)
    with caplog.at_level("INFO", logger="gongmo.ticker"):
        fired = {f.key: f for f in ticker.tick()}
    assert fired[key].error == "lease lost"
    assert f"deadline {key}: done, but another daemon holds it now" in caplog.text
    assert f"deadline {key} fired" not in caplog.text
    with read(derived.db) as conn:
        row = conn.execute(sa.select(DEADLINE).where(DEADLINE.c.key == key)).mappings().one()
    assert row["fired_at"] is None and row["claimed_by"] == "other"  # the other daemon records it


def test_gongmo_deadlines_shows_what_is_blocked_and_the_office_decides(
    derived: App, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from tests.conftest import run_cli

    for name in ("GONGMO_DATABASE_URL", "GONGMO_NOW", "GONGMO_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    config = str(config_copy(tmp_path, database_url=db_url))

    def gongmo(*argv: str) -> tuple[int, str, str]:
        return run_cli(capsys, "--config", config, "--now", "2024-05-29T18:30:00+09:00", *argv)

    code, out, err = gongmo("tick", "--until-idle")
    assert code == 0, err
    code, out, err = gongmo("deadlines", TRACK_KEY)
    assert code == 0, err
    lines = [" ".join(line.split()) for line in out.splitlines()]
    blocked = [line for line in lines if line.startswith("blocked:")]
    assert blocked == [
        f"blocked: {TRACK_KEY}:announce held for the office: track {TRACK_KEY}: receipt closed at 2024-05-29 18:00 KST;"
        f" the call was never sent. The office decides: send it now (`gongmo deadlines --fire {TRACK_KEY}:announce`),"
        " move the receipt close (`gongmo reschedule`), or record it unsent"
        f" (`gongmo deadlines --skip {TRACK_KEY}:announce --reason ...`); 4 due deadline(s) of its track wait"
    ]
    code, out, err = gongmo("deadlines", TRACK_KEY, "--json")
    rows = {r["key"]: r for r in json.loads(out)}
    assert rows[f"{TRACK_KEY}:announce"]["status"] == "held"
    assert rows[f"{TRACK_KEY}:close_receipt"]["status"] == "waiting"
    assert rows[f"{TRACK_KEY}:close_receipt"]["waiting_for"] == f"{TRACK_KEY}:announce"
    assert rows[f"{TRACK_KEY}:review_due"]["status"] == "scheduled"

    code, out, err = gongmo("deadlines", "--skip", f"{TRACK_KEY}:announce")
    assert (code, out) == (1, "") and err.strip().splitlines() == [
        f"error: --skip {TRACK_KEY}:announce: --reason is required (why the call is not sent), e.g. --reason '...'"
    ]
    code, out, err = gongmo("deadlines", "--fire", f"{TRACK_KEY}:close_receipt")
    assert code == 1 and f"waits for {TRACK_KEY}:announce of its track" in err and len(err.strip().splitlines()) == 1
    code, out, err = gongmo("deadlines", "--fire", f"{TRACK_KEY}:announce")
    assert code == 0, err
    assert " ".join(out.split()).startswith(f"{TRACK_KEY}:announce: fired: 18 applications created")
    code, out, err = gongmo("tick", "--until-idle")
    code, out, err = gongmo("deadlines", TRACK_KEY, "--json")
    rows = {r["key"]: r for r in json.loads(out)}
    assert rows[f"{TRACK_KEY}:close_receipt"]["status"] == "fired"
