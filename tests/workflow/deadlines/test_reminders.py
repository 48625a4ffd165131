"""Reminders before the receipt close (issue 19, points 1-3): never after the
close, never before the window opens, each applicant's following its own
extension, offsets in working days, closed-day warnings."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICATION, DEADLINE, OUTBOX, TRACK
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.deadlines import plan as deadlines
from gongmo.workflow.deadlines.status import annotate
from gongmo.workflow.deadlines.ticker import Ticker
from gongmo.workflow.engine.app import App
from tests.conftest import config_copy, kst, run_cli

TRACK_KEY = "strong-small-2024"  # receipt 2024-05-27 09:00 .. 05-29 18:00 KST (Mon..Wed)


@pytest.fixture
def derived(app: App) -> App:
    with write(app.db) as conn:
        calendars.derive(app, conn)
    return app


def announced(app: App, clock: FixedClock) -> Ticker:
    ticker = Ticker(app, "w1")
    clock.set(kst("2024-03-29 10:00"))
    ticker.run_until_idle()
    return ticker


def reminders_sent(app: App, track: str = TRACK_KEY) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = (
            sa.select(OUTBOX.c.application_id, OUTBOX.c.dedup_key, OUTBOX.c.body_text, OUTBOX.c.subject)
            .join(APPLICATION, APPLICATION.c.id == OUTBOX.c.application_id)
            .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
            .where(OUTBOX.c.notice == "deadline_reminder", TRACK.c.key == track)
            .order_by(OUTBOX.c.id)
        )
        return [dict(r) for r in conn.execute(query).mappings()]


def reminder_rows(app: App, prefix: str = f"{TRACK_KEY}:reminder:") -> dict[str, dict[str, Any]]:
    with read(app.db) as conn:
        query = sa.select(DEADLINE).where(DEADLINE.c.key.startswith(prefix)).order_by(DEADLINE.c.due_at, DEADLINE.c.id)
        return {r["key"]: dict(r) for r in conn.execute(query).mappings()}


def application_ids(app: App) -> list[int]:
    with read(app.db) as conn:
        return [
            int(i)
            for i in conn.execute(
                sa.select(APPLICATION.c.id)
                .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
                .where(TRACK.c.key == TRACK_KEY)
                .order_by(APPLICATION.c.id)
            ).scalars()
        ]


# -- 1. stale reminders after downtime -------------------------------------------------


def test_a_reminder_caught_up_after_the_close_is_recorded_skipped_and_never_sent(
    derived: App, clock: FixedClock
) -> None:
    ticker = announced(derived, clock)
    clock.set(kst("2024-06-01 18:00"))  # down from before the first reminder until after the close
    fired = {f.key: f for f in ticker.run_until_idle()}
    assert reminders_sent(derived) == []
    rows = reminder_rows(derived)
    assert rows, "the track plans reminders"
    for key, row in rows.items():
        assert row["fired_at"] == kst("2024-06-01 18:00"), key
        assert row["last_error"].startswith("skipped, not sent: the receipt closed at 2024-05-29 18:00 KST"), row
        assert fired[key].error is None and fired[key].summary.startswith("skipped")
    # the close after them still ran (a skipped reminder does not hold its track back)
    assert fired[f"{TRACK_KEY}:close_receipt"].error is None
    with read(derived.db) as conn:
        listed = [
            dict(r) for r in conn.execute(sa.select(DEADLINE).order_by(DEADLINE.c.due_at, DEADLINE.c.id)).mappings()
        ]
    statuses = {r["key"]: r["status"] for r in annotate(listed, clock.now())}
    assert {statuses[k] for k in rows} == {"skipped"}


def test_a_reminder_caught_up_while_a_later_one_is_due_too_gives_way_to_it(derived: App, clock: FixedClock) -> None:
    ticker = announced(derived, clock)
    clock.set(kst("2024-05-29 16:00"))  # every reminder due at once, the close still ahead
    ticker.run_until_idle()
    rows = reminder_rows(derived)
    *earlier, last = rows.values()
    assert earlier, "more than one reminder is planned"
    assert last["last_error"] is None and last["fired_at"] is not None
    for row in earlier:
        assert row["last_error"].startswith(f"skipped, not sent: {last['key']} is due too"), row
    sent = reminders_sent(derived)
    assert len(sent) == 18 and {s["dedup_key"].split(":", 2)[2] for s in sent} == {last["key"]}


# -- 2. reminders follow an applicant's own extension ----------------------------------------


def test_an_extended_applicant_is_reminded_of_its_own_close_and_each_extension_replans(
    derived: App, clock: FixedClock
) -> None:
    ticker = announced(derived, clock)
    ids = application_ids(derived)
    extended = ids[0]
    clock.set(kst("2024-05-27 10:00"))
    calendars.extend(derived, extended, "receipt_closes", kst("2024-06-03 18:00"), "정전 피해", "kim")
    own = reminder_rows(derived, f"ext:{extended}:")
    own_reminders = {k: r for k, r in own.items() if r["action"] == "reminder"}
    assert own_reminders, own
    assert {r["application_id"] for r in own_reminders.values()} == {extended}
    assert max(r["due_at"] for r in own_reminders.values()) < kst("2024-06-03 18:00")
    assert min(r["due_at"] for r in own_reminders.values()) > kst("2024-05-29 18:00")  # after the track's close

    clock.set(kst("2024-05-29 17:00"))  # the track's reminders: not to the extended applicant
    ticker.run_until_idle()
    track_sent = reminders_sent(derived)
    assert track_sent and extended not in {s["application_id"] for s in track_sent}

    clock.set(kst("2024-06-01 12:00"))  # a second extension re-plans its unfired reminders
    calendars.extend(derived, extended, "receipt_closes", kst("2024-06-05 18:00"), "추가 연장", "kim")
    unfired = {k: r for k, r in reminder_rows(derived, f"ext:{extended}:").items() if r["action"] == "reminder"}
    assert unfired and all(r["fired_at"] is None for r in unfired.values())
    assert max(r["due_at"] for r in unfired.values()) < kst("2024-06-05 18:00")
    assert max(r["due_at"] for r in unfired.values()) > kst("2024-06-03 18:00")

    clock.set(kst("2024-06-05 17:00"))
    ticker.run_until_idle()
    mine = [s for s in reminders_sent(derived) if s["application_id"] == extended]
    assert len(mine) == 1  # the reminders due at once: the latest goes
    assert "2024-06-05" in mine[0]["subject"] and "2024-05-29" not in mine[0]["body_text"]


def test_an_extended_applicant_does_not_get_the_tracks_reminders(derived: App, clock: FixedClock) -> None:
    ticker = announced(derived, clock)
    ids = application_ids(derived)
    clock.set(kst("2024-05-27 10:00"))
    calendars.extend(derived, ids[1], "receipt_closes", kst("2024-06-03 18:00"), "정전 피해", "kim")
    for at in ("2024-05-28 09:00", "2024-05-29 15:00"):
        clock.set(kst(at))
        ticker.run_until_idle()
    sent = reminders_sent(derived)
    assert sent and ids[1] not in {s["application_id"] for s in sent}
    assert all("2024-05-29" in s["subject"] for s in sent)


# -- 3. odd moments ------------------------------------------------------------------------


def _planned(app: App, reminders: list[str], track_key: str = TRACK_KEY) -> dict[str, datetime]:
    contest, cfg = app.loaded.config.track(track_key)
    cfg = cfg.model_copy(update={"reminders": reminders})
    with read(app.db) as conn:
        track = conn.execute(sa.select(TRACK).where(TRACK.c.key == track_key)).mappings().one()
    plan = deadlines.plan_track(dict(track), cfg, contest.timezone, contest.closures())
    return {p.key.split(":reminder:")[1]: p.due_at for p in plan if p.action == "reminder"}


def test_no_reminder_is_planned_before_the_receipt_window_opens(app: App) -> None:
    # D-3 09:00 of the 05-29 close is Sunday 05-26, the day before the receipt opens
    planned = _planned(app, ["D-3 09:00", "D-1 09:00", "-3h"])
    assert planned == {"D-1 09:00": kst("2024-05-28 09:00"), "-3h": kst("2024-05-29 15:00")}
    # 2022: D-3 09:00 of the 12-29 close is Sunday 2021-12-26, before the 12-27 opening
    assert "D-3 09:00" not in _planned(app, ["D-3 09:00"], "small-medium-2022")


def test_reminders_counted_in_working_days_skip_weekends_and_holidays(app: App) -> None:
    planned = _planned(app, ["D-2 working days 09:00", "D-1 working days 09:00"])
    assert planned == {
        "D-2 working days 09:00": kst("2024-05-27 09:00"),
        "D-1 working days 09:00": kst("2024-05-28 09:00"),
    }


@pytest.fixture
def monday_close(tmp_path: Path) -> Path:
    """strong-small-2024 closing on Monday 2024-06-03, reminded D-1 09:00 (Sunday) and -3h."""
    close = "receipt_closes = 2024-05-29T18:00:00\n"
    text = Path(config_copy(tmp_path)).read_text(encoding="utf-8")
    blocks = text.split('key = "strong-small-2024"')
    assert len(blocks) == 2
    tail = blocks[1].replace(close, close.replace("2024-05-29T18:00:00", "2024-06-03T18:00:00"), 1)
    assert tail != blocks[1]
    shipped = 'reminders = ["D-1 working days 09:00", "-3h"]'
    assert shipped in tail
    tail = tail.replace(shipped, 'reminders = ["D-1 09:00", "-3h"]', 1)  # calendar days: D-1 is Sunday
    path = tmp_path / "monday.toml"
    path.write_text(blocks[0] + 'key = "strong-small-2024"' + tail, encoding="utf-8")
    return path


def test_init_and_contests_warn_about_a_reminder_on_a_closed_day(
    monday_close: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = "strong-small-2024: reminder D-1 09:00 2024-06-02 09:00 KST falls on a closed day (일요일)"
    code, out, err = run_cli(capsys, "--config", str(monday_close), "init")
    assert code == 0, err
    assert line in out
    code, out, err = run_cli(capsys, "--config", str(monday_close), "contests")
    assert code == 0, err
    assert line in out
    code, out, err = run_cli(capsys, "--config", str(monday_close), "contests", "--json")
    assert code == 0, err
    assert '"milestone": "reminder D-1 09:00"' in out
