"""Time edges: the receipt close to the millisecond (with the daemon stopped, and
with it firing the close at that instant), through the engine and the CLI; and
a contest in a zone with daylight saving (Europe/Berlin) whose deadlines stay
at their local wall times across the 2024-03-31 and 2024-10-27 changes.

The clock is injected everywhere: nothing here sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from gongmo.states.errors import IllegalMove, OutsideWindow
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import FixedClock, SystemClock
from gongmo.workflow.core.config import Api
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICANT, APPLICATION, AUDIT, DEADLINE, OUTBOX, TRACK
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.deadlines.ticker import Ticker
from gongmo.workflow.engine import audit
from gongmo.workflow.engine import intake as engine_module
from gongmo.workflow.engine.app import App
from gongmo.workflow.engine.moves import Moved
from gongmo.workflow.runtime.daemon import Daemon
from gongmo.workflow.stages import kickoff
from tests.conftest import config_copy, kst, make_app, run_cli
from tests.workflow import plans
from tests.workflow.cli.documents_args import document_args

ADMIN = Actor("lh-office", Role.ADMIN)
MS = timedelta(milliseconds=1)

TRACK_KEY = "strong-small-2024"
ANNOUNCE = kst("2024-03-29 10:00")
CLOSE = kst("2024-05-29 18:00")
WINDOW = "the window is 2024-05-27 09:00:00 KST to 2024-05-29 18:00:00 KST"


def submit(app: App, code: str, track: str = TRACK_KEY) -> Moved:
    """A plan received: its track's required documents uploaded (plans.attach), then submitted."""
    _, config = app.loaded.config.track(track)
    plans.attach(app, track, code, [d.kind for d in config.documents if d.required])
    return submit_only(app, code, track)


def submit_only(app: App, code: str, track: str = TRACK_KEY) -> Moved:
    """The submission alone, for a refusal by the window: it is checked before the documents are
    (an upload at the same instant would be refused by the same rule, or the start of an
    uninvited applicant's application, in its own words)."""
    return app.moves.submit(track, code, 8_000_000, 8_000_000, ADMIN, f"계획 {code}", None)


def application(app: App, code: str, track: str = TRACK_KEY) -> dict[str, Any] | None:
    with read(app.db) as conn:
        row = (
            conn.execute(
                sa.select(APPLICATION)
                .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
                .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
                .where(APPLICANT.c.code == code, TRACK.c.key == track)
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


def snapshot(app: App) -> dict[str, Any]:
    with read(app.db) as conn:
        return {
            "applications": sorted((i, s) for i, s in conn.execute(sa.select(APPLICATION.c.id, APPLICATION.c.state))),
            "audit": conn.execute(sa.select(sa.func.count()).select_from(AUDIT)).scalar_one(),
            "outbox": conn.execute(sa.select(sa.func.count()).select_from(OUTBOX)).scalar_one(),
            "seq": conn.execute(sa.select(TRACK.c.receipt_seq).where(TRACK.c.key == TRACK_KEY)).scalar_one(),
        }


def verify_clean(app: App) -> None:
    with read(app.db) as conn:
        report = audit.verify(conn, TABLE)
    assert report.clean, report.findings[:5]


def refused_at_the_close(app: App, clock: FixedClock, code: str) -> OutsideWindow:
    """A plan at exactly the close: refused with the window, nothing written."""
    clock.set(CLOSE)
    before = snapshot(app)
    with pytest.raises(OutsideWindow) as refused:
        submit_only(app, code)
    message = str(refused.value)
    assert message.startswith(f"receipt is closed: {WINDOW} (now 2024-05-29 18:00:00 KST)")
    assert "\n" not in message
    assert (refused.value.opens, refused.value.closes) == ("2024-05-27T09:00:00+09:00", "2024-05-29T18:00:00+09:00")
    assert snapshot(app) == before
    return refused.value


def daemon_of(app: App) -> Daemon:
    """The daemon's own tick (Daemon.wake), without its scheduler or API: the clock is ours."""
    with write(app.db) as conn:
        calendars.derive(app, conn)
    return Daemon(app, "d1", api=Api(enabled=False))


# -- the close, with the daemon stopped ---------------------------------------------------


def test_just_before_the_close_accepted_at_the_close_refused_daemon_stopped(app: App, clock: FixedClock) -> None:
    daemon = daemon_of(app)
    clock.set(ANNOUNCE)
    daemon.wake()  # the daemon sent the call, then was stopped
    for code, early, receipt_no in (("41590", MS, "0001"), ("44150", timedelta(microseconds=1), "0002")):
        clock.set(CLOSE - early)
        moved = submit(app, code)
        assert (moved.receipt_no, moved.to_state) == (f"STRONG-SMALL-2024-{receipt_no}", "receipt")
        stored = application(app, code)
        assert stored is not None and stored["submitted_at"] == CLOSE - early  # kept to the microsecond

    refused_at_the_close(app, clock, "41190")
    refused_at_the_close(app, clock, "11000")  # not on the mailing list: refused the same way

    # the daemon comes back two hours later: the close is caught up, the plans go to review
    clock.set(CLOSE + timedelta(hours=2))
    daemon.wake()
    [close] = [f for f in daemon.fired if f.key == f"{TRACK_KEY}:close_receipt"]
    assert close.late and close.error is None and close.summary == "16 expired, 2 to preliminary review"
    assert application(app, "41590")["state"] == "preliminary_review"  # type: ignore[index]
    assert application(app, "44150")["state"] == "preliminary_review"  # type: ignore[index]
    assert application(app, "41190")["state"] == "expired"  # type: ignore[index]
    with pytest.raises(OutsideWindow, match="receipt is closed"):
        submit_only(app, "41190")
    with pytest.raises(OutsideWindow, match="receipt is closed"):
        plans.attach(app, TRACK_KEY, "41190")  # its documents neither
    verify_clean(app)


# -- the close, with the daemon firing it at that instant -------------------------------------


def test_close_fired_by_the_daemon_at_the_instant(app: App, clock: FixedClock) -> None:
    daemon = daemon_of(app)
    clock.set(ANNOUNCE)
    daemon.wake()
    clock.set(CLOSE - MS)
    on_time = submit(app, "41590")
    daemon.wake()  # one millisecond before: the close is not due
    assert f"{TRACK_KEY}:close_receipt" not in {f.key for f in daemon.fired}
    assert application(app, "41590")["state"] == "receipt"  # type: ignore[index]

    clock.set(CLOSE)
    daemon.wake()
    [close] = [f for f in daemon.fired if f.key == f"{TRACK_KEY}:close_receipt"]
    assert (close.due_at, close.fired_at, close.late, close.error) == (CLOSE, CLOSE, False, None)
    assert close.summary == "17 expired, 1 to preliminary review"

    # the plan that arrived a millisecond before the tick is in preliminary review
    row = application(app, "41590")
    assert row is not None and (row["id"], row["state"], row["receipt_no"]) == (
        on_time.application_id,
        "preliminary_review",
        "STRONG-SMALL-2024-0001",
    )
    with read(app.db) as conn:
        [(at, reason)] = conn.execute(
            sa.select(AUDIT.c.at, AUDIT.c.reason).where(
                AUDIT.c.application_id == row["id"], AUDIT.c.trigger == "start_review"
            )
        ).all()
    assert at == CLOSE
    assert reason == f"deadline {TRACK_KEY}:close_receipt due 2024-05-29 18:00 KST"  # on time: no catch-up

    # late plans, at the very instant of the tick, are still refused by the window (not by the state)
    refused_at_the_close(app, clock, "41190")  # invited, now expired
    refused_at_the_close(app, clock, "11000")  # never invited
    verify_clean(app)


def stamped_before_the_tick(app: App, clock: FixedClock, monkeypatch: pytest.MonkeyPatch, code: str) -> Any:
    """A plan whose request reads the clock at close - 1 ms; before its transaction
    starts (a wait for the lock, a preemption), real time reaches the close and the
    daemon's tick fires it. Returns the Moved, or the refusal. Its documents were
    uploaded just before (an uninvited applicant started its application to upload them)."""
    daemon = daemon_of(app)
    clock.set(ANNOUNCE)
    daemon.wake()
    real_write = engine_module.write
    ticked: list[bool] = []

    @contextmanager
    def the_tick_gets_the_database_first(db: Any) -> Iterator[Any]:
        if not ticked:
            ticked.append(True)
            clock.set(CLOSE)
            daemon.wake()
        with real_write(db) as conn:
            yield conn

    clock.set(CLOSE - MS)
    plans.attach(app, TRACK_KEY, code)
    monkeypatch.setattr(engine_module, "write", the_tick_gets_the_database_first)
    try:
        return submit_only(app, code)
    except (OutsideWindow, IllegalMove) as exc:
        return exc
    finally:
        monkeypatch.undo()
        assert ticked and f"{TRACK_KEY}:close_receipt" in {f.key for f in daemon.fired}


def test_a_plan_stamped_before_the_close_but_written_after_the_close_tick_is_not_stranded(
    app: App, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused, or accepted and sent to review with the others; never accepted into
    'receipt' after the close has fired (nothing would ever move it on)."""
    outcome = stamped_before_the_tick(app, clock, monkeypatch, "11000")  # uninvited: started to upload its plan
    row = application(app, "11000")
    if isinstance(outcome, Moved):
        assert row is not None and row["state"] == "preliminary_review", (row and row["state"], outcome)
    else:
        assert row is None or row["state"] != "receipt"
    verify_clean(app)


def test_an_invited_plan_stamped_before_the_close_but_written_after_the_tick_is_refused(
    app: App, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same interleaving for an invited applicant: the tick expired its
    application first, so the plan is refused and nothing is written."""
    outcome = stamped_before_the_tick(app, clock, monkeypatch, "41190")
    row = application(app, "41190")
    assert row is not None and (row["state"], row["receipt_no"]) == ("expired", None)
    assert isinstance(outcome, (OutsideWindow, IllegalMove)), outcome
    message = str(outcome)
    assert message.startswith(f"receipt is closed: {WINDOW}") or message.startswith(
        f"cannot 'submit' application {row['id']} in state 'expired'"
    )
    assert snapshot(app)["seq"] == 0
    verify_clean(app)


# -- the close through the CLI ----------------------------------------------------------------


def test_cli_now_with_milliseconds_at_the_close(
    app: App, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--now` takes milliseconds (with a zone, or none meaning Asia/Seoul); the
    database is the `app` fixture's (initialised, applicants imported)."""
    for name in ("GONGMO_DATABASE_URL", "GONGMO_NOW", "GONGMO_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    config = str(config_copy(tmp_path, database_url=db_url))

    def gongmo(*argv: str, now: str) -> tuple[int, str, str]:
        return run_cli(capsys, "--config", config, "--now", now, *argv)

    assert gongmo("announce", TRACK_KEY, now="2024-03-29T10:00:00+09:00")[0] == 0
    money = ("--national", "8000000000", "--local", "8000000000", "--type", "climate_crisis")
    for code, now, receipt_no in (
        ("41590", "2024-05-29T17:59:59.999+09:00", "0001"),
        ("44150", "2024-05-29T08:59:59.999Z", "0002"),  # the same instant, in UTC
    ):
        status, out, err = gongmo("apply", TRACK_KEY, code, *money, *document_args(tmp_path), now=now)
        assert status == 0, err
        assert f"receipt number STRONG-SMALL-2024-{receipt_no}" in " ".join(out.split())

    for now in ("2024-05-29T18:00:00.000+09:00", "2024-05-29T18:00:00.000"):
        status, out, err = gongmo("apply", TRACK_KEY, "41190", *money, now=now)
        assert (status, out) == (1, ""), (now, err)
        [line] = err.splitlines()
        assert line.startswith(f"error: receipt is closed: {WINDOW} (now 2024-05-29 18:00:00 KST)"), line
    assert application(app, "41190")["state"] == "announcement"  # type: ignore[index]
    assert snapshot(app)["seq"] == 2


# -- a clock that lags cannot reopen a window (issue 18, point 2) -------------------------------


def test_a_lagging_clock_cannot_reopen_the_receipt_after_the_close_fired(app: App, clock: FixedClock) -> None:
    """A replica whose clock is an hour behind, after the close fired: a plan (and a
    new application) is refused; no receipt number, no notice, nothing written."""
    daemon = daemon_of(app)
    clock.set(ANNOUNCE)
    daemon.wake()
    clock.set(CLOSE)
    daemon.wake()
    assert f"{TRACK_KEY}:close_receipt" in {f.key for f in daemon.fired if f.error is None}
    clock.set(CLOSE - timedelta(hours=1))  # the lagging replica's idea of now: receipt still open
    before = snapshot(app)
    with pytest.raises(OutsideWindow) as refused:
        submit_only(app, "11000")  # not invited: submit would create its application and give it a number
    message = str(refused.value)
    assert message.startswith(f"receipt of track {TRACK_KEY} is closed: its close (2024-05-29 18:00:00 KST) has fired")
    assert "\n" not in message and refused.value.closes == "2024-05-29T18:00:00+09:00"
    with pytest.raises(OutsideWindow, match="has fired"):
        app.moves.start(TRACK_KEY, "11000", ADMIN)
    assert snapshot(app) == before and application(app, "11000") is None
    verify_clean(app)


def test_an_extension_still_running_takes_its_plan_after_the_close_fired(app: App, clock: FixedClock) -> None:
    """The floor is the close that fired, not the applicant's own: an extension
    still unfired keeps its plan open; once it fired, a lagging clock is refused."""
    daemon = daemon_of(app)
    clock.set(ANNOUNCE)
    daemon.wake()
    own = application(app, "41190")
    assert own is not None
    clock.set(CLOSE - timedelta(days=1))
    calendars.extend(app, own["id"], "receipt_closes", CLOSE + timedelta(days=1), "정전", "lh-office")
    clock.set(CLOSE)
    daemon.wake()
    clock.set(CLOSE + timedelta(hours=1))
    assert submit(app, "41190").to_state == "receipt"
    clock.set(CLOSE + timedelta(days=1))
    daemon.wake()  # its own close: the plan goes to review
    assert application(app, "41190")["state"] == "preliminary_review"  # type: ignore[index]


class LaggingClock(SystemClock):
    """The real wall clock of a replica whose time is an hour behind."""

    def now(self) -> datetime:
        return super().now() - timedelta(hours=1)


def test_on_postgresql_the_database_clock_is_the_floor_of_a_window_check(
    app: App, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The close is 30 minutes past on the real clock and has not fired yet (the
    daemon is down); a replica an hour behind thinks the window is open. On
    PostgreSQL the database's clock (statement_timestamp()) is the floor: refused,
    and the skew is logged. SQLite has one machine's clock: the process's is used."""
    real = datetime.now(UTC)
    with write(app.db) as conn:
        conn.execute(
            sa.update(TRACK)
            .where(TRACK.c.key == TRACK_KEY)
            .values(
                announce_at=real - timedelta(hours=4),
                receipt_opens=real - timedelta(hours=3),
                receipt_closes=real - timedelta(minutes=30),
            )
        )
    lagging = LaggingClock()
    app.clock = app.moves.clock = lagging
    before = snapshot(app)
    caplog.set_level("WARNING", logger="gongmo.clock")
    engine_module._skew_warned_at = 0.0
    if db_url.startswith("postgresql"):
        with pytest.raises(OutsideWindow, match="receipt is closed: the window is"):
            submit_only(app, "11000")
        assert snapshot(app) == before
        [warning] = [r.getMessage() for r in caplog.records if r.name == "gongmo.clock"]
        assert "s behind the database's (more than [gongmo] max_clock_skew_s = 5.0)" in warning
    else:
        assert submit(app, "11000").to_state == "receipt"


# -- daylight saving: Europe/Berlin ----------------------------------------------------------

BERLIN_TRACK = "berlin-2024"
BERLIN_CONFIG = """
[gongmo]
environment = "development"
database_url = "sqlite:///var/gongmo.db"
templates_dir = "templates"

[mail]
sender = "Wettbewerb <contest@berlin.example>"

[api]
enabled = false

[[contests]]
key = "berlin-contest-2024"
name_ko = "베를린 스마트시티 공모"
name_en = "Berlin smart city contest"
ministry = "Senatsverwaltung"
office = "Geschäftsstelle"
office_phone = "+49 30 0000"
portal_url = "https://contest.berlin.example"
timezone = "Europe/Berlin"
national_budget_krw = 10_000_000_000

  [[contests.tracks]]
  key = "berlin-2024"
  name_ko = "베를린 트랙"
  name_en = "Berlin track"
  slots = 2
  reminders = ["D-3 19:00", "D-2 09:00", "D-1 09:00", "-3h"]

    [contests.tracks.eligibility]
    kinds = ["city", "county"]

    [contests.tracks.funding]
    national_cap_krw = 1_000_000_000
    years = 1
    budget_national_krw = 2_000_000_000

    # Berlin: CET (UTC+1) until 2024-03-31 02:00, CEST (UTC+2) until 2024-10-27 03:00, then CET
    [contests.tracks.calendar]
    announce_at = 2024-03-26T10:00:00
    receipt_opens = 2024-03-30T18:00:00
    receipt_closes = 2024-04-02T18:00:00
    review_ends = 2024-04-05T18:00:00
    written_starts = 2024-09-02T09:00:00
    written_ends = 2024-09-06T18:00:00
    presentation_starts = 2024-09-09T09:00:00
    presentation_ends = 2024-09-11T18:00:00
    selection_at = 2024-09-20T10:00:00
    kickoff_due = 2024-10-21T18:00:00
"""
BERLIN = ZoneInfo("Europe/Berlin")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# The instants, worked out by hand from the local wall times (the oracle).
BERLIN_MILESTONES = {
    "announce_at": utc("2024-03-26 09:00"),  # 10:00 CET
    "receipt_opens": utc("2024-03-30 17:00"),  # 18:00 CET, the evening before the change
    "receipt_closes": utc("2024-04-02 16:00"),  # 18:00 CEST
    "review_ends": utc("2024-04-05 16:00"),
    "written_starts": utc("2024-09-02 07:00"),
    "written_ends": utc("2024-09-06 16:00"),
    "presentation_starts": utc("2024-09-09 07:00"),
    "presentation_ends": utc("2024-09-11 16:00"),
    "selection_at": utc("2024-09-20 08:00"),
    "kickoff_due": utc("2024-10-21 16:00"),  # 18:00 CEST, a week before the change back
}
BERLIN_DEADLINES = {
    f"{BERLIN_TRACK}:announce": utc("2024-03-26 09:00"),
    f"{BERLIN_TRACK}:open_receipt": utc("2024-03-30 17:00"),
    # 19:00 CET: after the opening (a reminder is never planned before the window opens)
    f"{BERLIN_TRACK}:reminder:D-3 19:00": utc("2024-03-30 18:00"),
    f"{BERLIN_TRACK}:reminder:D-2 09:00": utc("2024-03-31 07:00"),  # 09:00 CEST, the day of the change
    f"{BERLIN_TRACK}:reminder:D-1 09:00": utc("2024-04-01 07:00"),  # 09:00 CEST
    f"{BERLIN_TRACK}:reminder:-3h": utc("2024-04-02 13:00"),  # 15:00 CEST
    f"{BERLIN_TRACK}:close_receipt": utc("2024-04-02 16:00"),
    f"{BERLIN_TRACK}:review_due": utc("2024-04-05 16:00"),
    f"{BERLIN_TRACK}:start_presentation": utc("2024-09-06 16:00"),
    f"{BERLIN_TRACK}:selection_due": utc("2024-09-20 08:00"),
    f"{BERLIN_TRACK}:kickoff_plan_due": utc("2024-10-21 16:00"),
}
# kickoff_due + 14 days (kickoff_grace_days) is 2024-11-04 18:00 local, now CET again
BERLIN_KICKOFF_CLOSES = (f"{BERLIN_TRACK}:kickoff_closes", utc("2024-11-04 17:00"))


@pytest.fixture
def berlin(db_url: str, clock: FixedClock, tmp_path: Path) -> Iterator[App]:
    config = config_copy(tmp_path, text=BERLIN_CONFIG, database_url=db_url, name="berlin.toml")
    built = make_app(db_url, clock, config)
    with write(built.db) as conn:
        calendars.derive(built, conn)
    yield built
    built.db.dispose()


def deadline_rows(app: App) -> dict[str, datetime]:
    with read(app.db) as conn:
        return {k: d for k, d in conn.execute(sa.select(DEADLINE.c.key, DEADLINE.c.due_at))}


def local(at: datetime) -> str:
    return f"{at.astimezone(BERLIN):%Y-%m-%d %H:%M %Z}"


def test_berlin_calendar_is_held_at_the_right_utc_instants(berlin: App) -> None:
    _, track = berlin.loaded.config.track(BERLIN_TRACK)
    assert dict(track.calendar.items()) == BERLIN_MILESTONES
    with read(berlin.db) as conn:
        row = conn.execute(sa.select(TRACK).where(TRACK.c.key == BERLIN_TRACK)).mappings().one()
    assert {m: row[m] for m in BERLIN_MILESTONES} == BERLIN_MILESTONES  # as the database gives them back
    assert local(row["receipt_opens"]) == "2024-03-30 18:00 CET"
    assert local(row["receipt_closes"]) == "2024-04-02 18:00 CEST"


def test_berlin_deadline_rows_keep_their_local_wall_times(berlin: App) -> None:
    rows = deadline_rows(berlin)
    rows.pop(BERLIN_KICKOFF_CLOSES[0])  # see test_berlin_kickoff_grace_keeps_the_local_time
    assert rows == BERLIN_DEADLINES
    reminders = {k.split(":reminder:")[1]: local(v) for k, v in rows.items() if ":reminder:" in k}
    assert reminders == {
        "D-3 19:00": "2024-03-30 19:00 CET",
        "D-2 09:00": "2024-03-31 09:00 CEST",
        "D-1 09:00": "2024-04-01 09:00 CEST",
        "-3h": "2024-04-02 15:00 CEST",
    }


def test_berlin_kickoff_grace_keeps_the_local_time(berlin: App, clock: FixedClock) -> None:
    key, due = BERLIN_KICKOFF_CLOSES
    assert local(due) == "2024-11-04 18:00 CET"
    assert deadline_rows(berlin)[key] == due, local(deadline_rows(berlin)[key])
    ticker = Ticker(berlin, "t")
    ticker.late_announcements = "send"  # the call, first caught up months late, goes out (else it holds the track)
    clock.set(due - timedelta(seconds=1))
    assert key not in {f.key for f in ticker.run_until_idle()}
    clock.set(due)
    assert key in {f.key for f in ticker.run_until_idle()}


def test_berlin_kickoff_plans_are_received_until_the_local_end_of_grace(berlin: App, clock: FixedClock) -> None:
    clock.set(BERLIN_MILESTONES["receipt_opens"])
    app_id = submit(berlin, "41590", BERLIN_TRACK).application_id
    clock.set(BERLIN_MILESTONES["receipt_closes"])
    berlin.moves.apply_bulk(BERLIN_TRACK, "start_review", "receipt")
    berlin.moves.apply(app_id, "pass_review", ADMIN)
    berlin.moves.apply_bulk(BERLIN_TRACK, "start_presentation", "written_evaluation")
    berlin.moves.apply(app_id, "select", ADMIN)
    _, closes = BERLIN_KICKOFF_CLOSES
    clock.set(closes - timedelta(minutes=30))  # 17:30 CET: inside the grace that ends at 18:00 local
    assert kickoff.receive(berlin, app_id, ADMIN) == 1


def test_berlin_ticker_fires_each_deadline_at_its_instant_not_an_hour_off(berlin: App, clock: FixedClock) -> None:
    ticker = Ticker(berlin, "t")
    for key, due in sorted(BERLIN_DEADLINES.items(), key=lambda kv: kv[1]):
        clock.set(due - timedelta(seconds=1))
        early = ticker.run_until_idle()
        assert key not in {f.key for f in early}, f"{key} fired before {local(due)}"
        assert all(f.due_at <= clock.now() for f in early)
        clock.set(due)
        [fired] = [f for f in ticker.run_until_idle() if f.key == key]
        assert (fired.due_at, fired.fired_at, fired.late, fired.error) == (due, due, False, None), fired
    with read(berlin.db) as conn:
        reasons = set(conn.execute(sa.select(AUDIT.c.reason).where(AUDIT.c.trigger == "expire")).scalars())
    assert reasons == {f"deadline {BERLIN_TRACK}:close_receipt due 2024-04-02 18:00 CEST"}
    verify_clean(berlin)


def test_berlin_receipt_window_edges_across_the_change(berlin: App, clock: FixedClock) -> None:
    window = "the window is 2024-03-30 18:00:00 CET to 2024-04-02 18:00:00 CEST"
    opens, closes = BERLIN_MILESTONES["receipt_opens"], BERLIN_MILESTONES["receipt_closes"]
    clock.set(opens - MS)
    with pytest.raises(OutsideWindow) as early:
        submit_only(berlin, "41590", BERLIN_TRACK)
    assert str(early.value).startswith(f"receipt is not open yet: {window} (now 2024-03-30 17:59:59 CET)")
    assert (early.value.opens, early.value.closes) == ("2024-03-30T18:00:00+01:00", "2024-04-02T18:00:00+02:00")
    clock.set(opens)
    assert submit(berlin, "41590", BERLIN_TRACK).receipt_no == "BERLIN-2024-0001"
    clock.set(closes - MS)  # 17:59:59.999 CEST; read with the winter offset it would be past the close
    assert submit(berlin, "41190", BERLIN_TRACK).receipt_no == "BERLIN-2024-0002"
    clock.set(closes)
    with pytest.raises(OutsideWindow) as late:
        submit_only(berlin, "44150", BERLIN_TRACK)
    assert str(late.value).startswith(f"receipt is closed: {window} (now 2024-04-02 18:00:00 CEST)")


def test_berlin_notices_show_the_local_time_with_cet_or_cest(berlin: App, clock: FixedClock) -> None:
    ticker = Ticker(berlin, "t")
    for at, code in (
        (BERLIN_DEADLINES[f"{BERLIN_TRACK}:announce"], None),
        (BERLIN_DEADLINES[f"{BERLIN_TRACK}:reminder:D-3 19:00"], None),
        (utc("2024-03-30 19:00"), "46820"),  # 20:00 CET
        (BERLIN_DEADLINES[f"{BERLIN_TRACK}:reminder:D-2 09:00"], None),
        (utc("2024-03-31 08:00"), "41590"),  # 10:00 CEST, hours after the change
        (BERLIN_DEADLINES[f"{BERLIN_TRACK}:reminder:D-1 09:00"], None),
    ):
        clock.set(at)
        if code:
            submit(berlin, code, BERLIN_TRACK)
        else:
            assert ticker.run_until_idle()

    def mails(notice: str, code: str) -> list[dict[str, Any]]:
        with read(berlin.db) as conn:
            rows = conn.execute(
                sa.select(OUTBOX.c.subject, OUTBOX.c.body_text, OUTBOX.c.created_at, OUTBOX.c.dedup_key)
                .join(APPLICATION, APPLICATION.c.id == OUTBOX.c.application_id)
                .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
                .where(OUTBOX.c.notice == notice, APPLICANT.c.code == code)
                .order_by(OUTBOX.c.id)
            )
            return [dict(r) for r in rows.mappings()]

    [call_en] = mails("call_announcement", "46820")
    assert call_en["subject"].endswith("Call for proposals (receipt closes 2024-04-02 (Tue) 18:00 CEST)")
    assert "Receipt opens: 2024-03-30 (Sat) 18:00 CET\n" in call_en["body_text"]
    assert "Receipt closes: 2024-04-02 (Tue) 18:00 CEST\n" in call_en["body_text"]
    [call_ko] = mails("call_announcement", "41190")
    assert call_ko["subject"].endswith("공모 안내 (접수 마감 2024-04-02 (화) 18:00 CEST)")
    assert "접수 시작: 2024-03-30 (토) 18:00 CET\n" in call_ko["body_text"]

    [before_change] = mails("receipt_confirmation", "46820")
    assert "Submitted: 2024-03-30 (Sat) 20:00 CET\n" in before_change["body_text"]
    [after_change] = mails("receipt_confirmation", "41590")
    assert "Submitted: 2024-03-31 (Sun) 10:00 CEST\n" in after_change["body_text"]

    # 41190 never submitted: reminded at 19:00 local on D-3 (CET), at 09:00 on D-2 and D-1 (CEST)
    reminders = mails("deadline_reminder", "41190")
    assert [local(r["created_at"]) for r in reminders] == [
        "2024-03-30 19:00 CET",
        "2024-03-31 09:00 CEST",
        "2024-04-01 09:00 CEST",
    ]
    assert all(r["subject"].endswith("(접수 마감: 2024-04-02 (화) 18:00 CEST)") for r in reminders)
    [reminder_en] = [r for r in mails("deadline_reminder", "46820")]  # D-3 only: it submitted that evening
    assert reminder_en["subject"].endswith("Reminder — receipt closes: 2024-04-02 (Tue) 18:00 CEST")
    assert "Deadline: 2024-04-02 (Tue) 18:00 CEST\n" in reminder_en["body_text"]
