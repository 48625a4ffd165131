"""Deadline rows derived from the calendars, rescheduling a milestone of a
track, extending one applicant's deadline (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gongmo.states.errors import Conflict, IllegalMove, InvalidInput, MissingReason, OutsideWindow
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role, parse_at
from gongmo.workflow import cli
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICANT, APPLICATION, CALENDAR_CHANGE, DEADLINE, OUTBOX, TRACK
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.deadlines.ticker import Ticker
from gongmo.workflow.engine.app import App
from tests.conftest import CONFIG, config_copy, kst, make_app, run_cli
from tests.workflow import plans

ADMIN = Actor("park", Role.ADMIN)
TRACK_KEY = "strong-small-2024"
CLOSE = kst("2024-05-29 18:00")
EXTENDED = "41590"  # 화성시 (writes in English)
OTHER = "41190"  # 부천시

STRONG_SMALL_ROWS = {
    f"{TRACK_KEY}:announce": ("announce", "announce_at", kst("2024-03-29 10:00")),
    f"{TRACK_KEY}:open_receipt": ("open_receipt", "receipt_opens", kst("2024-05-27 09:00")),
    f"{TRACK_KEY}:close_receipt": ("close_receipt", "receipt_closes", kst("2024-05-29 18:00")),
    f"{TRACK_KEY}:review_due": ("review_due", "review_ends", kst("2024-06-05 18:00")),
    f"{TRACK_KEY}:selection_due": ("selection_due", "selection_at", kst("2024-06-26 10:00")),
    # the shipped reminders (issue 19): the working day before the close at 09:00, and -3h
    f"{TRACK_KEY}:reminder:D-1 working days 09:00": ("reminder", "receipt_closes", kst("2024-05-28 09:00")),
    f"{TRACK_KEY}:reminder:-3h": ("reminder", "receipt_closes", kst("2024-05-29 15:00")),
    f"{TRACK_KEY}:start_presentation": ("start_presentation", "written_ends", kst("2024-06-12 18:00")),
    f"{TRACK_KEY}:kickoff_plan_due": ("kickoff_plan_due", "kickoff_due", kst("2024-07-31 18:00")),
    f"{TRACK_KEY}:kickoff_closes": ("kickoff_closes", "kickoff_due", kst("2024-08-14 18:00")),
}


# -- helpers -----------------------------------------------------------------------


def derive(app: App) -> list[str]:
    with write(app.db) as conn:
        return calendars.derive(app, conn)


def set_clock(app: App, at: str) -> None:
    assert isinstance(app.clock, FixedClock)
    app.clock.set(kst(at))


def deadline_rows(app: App, prefix: str = f"{TRACK_KEY}:") -> dict[str, dict[str, Any]]:
    with read(app.db) as conn:
        rows = conn.execute(sa.select(DEADLINE).where(DEADLINE.c.key.startswith(prefix, autoescape=True))).mappings()
        return {r["key"]: dict(r) for r in rows}


def track_row(app: App, key: str = TRACK_KEY) -> dict[str, Any]:
    with read(app.db) as conn:
        return dict(conn.execute(sa.select(TRACK).where(TRACK.c.key == key)).mappings().one())


def snapshot(app: App) -> dict[str, Any]:
    """What a refused change must leave as it was."""
    with read(app.db) as conn:
        count = lambda table: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()  # noqa: E731
        return {
            "calendar_change": count(CALENDAR_CHANGE),
            "outbox": count(OUTBOX),
            "deadline": count(DEADLINE),
            "due": dict(conn.execute(sa.select(DEADLINE.c.key, DEADLINE.c.due_at)).all()),
            "states": dict(conn.execute(sa.select(APPLICATION.c.id, APPLICATION.c.state)).all()),
            "tracks": [dict(r) for r in conn.execute(sa.select(TRACK).order_by(TRACK.c.id)).mappings()],
        }


def ids_by_code(app: App, track: str = TRACK_KEY) -> dict[str, int]:
    with read(app.db) as conn:
        query = (
            sa.select(APPLICANT.c.code, APPLICATION.c.id)
            .join(APPLICATION, APPLICATION.c.applicant_id == APPLICANT.c.id)
            .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
            .where(TRACK.c.key == track)
        )
        return {code: int(i) for code, i in conn.execute(query).all()}


def states(app: App, track: str = TRACK_KEY) -> dict[int, str]:
    with read(app.db) as conn:
        return {
            int(i): s
            for i, s in conn.execute(
                sa.select(APPLICATION.c.id, APPLICATION.c.state)
                .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
                .where(TRACK.c.key == track)
            ).all()
        }


def notices(app: App, notice: str = "calendar_change") -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = sa.select(OUTBOX).where(OUTBOX.c.notice == notice).order_by(OUTBOX.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


def submit(app: App, code: str, at: str) -> str:
    set_clock(app, at)
    moved = plans.submit(app, TRACK_KEY, code, 8_000_000_000, 8_000_000_000, ADMIN, "계획", "climate_crisis")
    assert moved.receipt_no
    return moved.to_state


def announced(app: App) -> dict[str, int]:
    """Deadlines derived, the track announced (18 applications in 'announcement')."""
    derive(app)
    fired = tick(app, "2024-03-29 10:00")  # the announce deadlines (and the 2022 contest's, long past)
    assert f"{TRACK_KEY}:announce" in fired
    assert app.moves.announce(TRACK_KEY, ADMIN) == 0  # idempotent: the deadline did it
    ids = ids_by_code(app)
    assert len(ids) == 18
    return ids


def tick(app: App, at: str) -> dict[str, str]:
    """Fire what is due at `at`, batch after batch (the 2022 contests' past rows fill more than one
    batch of deadlines_per_tick); the keys fired without an error."""
    set_clock(app, at)
    return {f.key: f.summary for f in Ticker(app, "w1").run_until_idle() if f.error is None}


# -- derive --------------------------------------------------------------------------


def test_derive_creates_the_tracks_deadlines(app: App) -> None:
    assert deadline_rows(app) == {}
    changes = derive(app)
    assert changes
    rows = deadline_rows(app)
    assert {k: (r["action"], r["milestone"], r["due_at"]) for k, r in rows.items()} == STRONG_SMALL_ROWS
    track_id = track_row(app)["id"]
    for row in rows.values():
        assert row["track_id"] == track_id
        assert row["application_id"] is None
        assert row["fired_at"] is None and row["attempts"] == 0
    # every track of the config has its rows
    for key in ("small-medium-2022", "hub-2024", "diffusion-2024"):
        assert f"{key}:close_receipt" in deadline_rows(app, f"{key}:")


def test_derive_uses_the_resolved_working_day_rule(app: App) -> None:
    derive(app)
    rows = deadline_rows(app, "diffusion-2024:")
    assert rows["diffusion-2024:close_receipt"]["due_at"] == kst("2024-05-07 18:00")
    assert track_row(app, "diffusion-2024")["review_ends"] == kst("2024-05-10 18:00")


def test_derive_again_changes_nothing(app: App) -> None:
    derive(app)
    before = snapshot(app)
    assert derive(app) == []
    assert snapshot(app) == before


def test_derive_leaves_fired_rows_alone(app: App) -> None:
    derive(app)
    fired = tick(app, "2024-03-29 10:00")
    assert f"{TRACK_KEY}:announce" in fired
    row = deadline_rows(app)[f"{TRACK_KEY}:announce"]
    assert row["fired_at"] == kst("2024-03-29 10:00")
    with write(app.db) as conn:
        conn.execute(sa.update(TRACK).where(TRACK.c.key == TRACK_KEY).values(announce_at=kst("2024-03-30 10:00")))
    derive(app)
    assert deadline_rows(app)[f"{TRACK_KEY}:announce"]["due_at"] == kst("2024-03-29 10:00")


# -- reschedule ------------------------------------------------------------------------


@pytest.fixture
def running(app: App) -> App:
    """Announced; one applicant withdrew; the clock at 2024-05-20 10:00 KST."""
    ids = announced(app)
    set_clock(app, "2024-05-20 09:00")
    app.moves.apply(ids["47940"], "withdraw", Actor("울릉군", Role.APPLICANT))
    set_clock(app, "2024-05-20 10:00")
    return app


def test_reschedule_moves_the_track_its_deadlines_and_tells_the_applicants(running: App) -> None:
    app = running
    ids = ids_by_code(app)
    withdrawn = ids["47940"]
    result = calendars.reschedule(app, TRACK_KEY, "receipt_closes", kst("2024-05-31 18:00"), "시스템 점검", "kim")
    assert result["old_at"] == CLOSE
    assert result["new_at"] == kst("2024-05-31 18:00")
    assert result["notified"] == 17

    track = track_row(app)
    assert track["receipt_closes"] == kst("2024-05-31 18:00")
    assert track["review_ends"] == kst("2024-06-05 18:00")  # nothing else moved

    rows = deadline_rows(app)
    assert rows[f"{TRACK_KEY}:close_receipt"]["due_at"] == kst("2024-05-31 18:00")
    assert rows[f"{TRACK_KEY}:reminder:D-1 working days 09:00"]["due_at"] == kst("2024-05-30 09:00")
    assert rows[f"{TRACK_KEY}:reminder:-3h"]["due_at"] == kst("2024-05-31 15:00")
    assert rows[f"{TRACK_KEY}:start_presentation"]["due_at"] == kst("2024-06-12 18:00")
    assert len(rows) == len(STRONG_SMALL_ROWS)
    assert len(result["deadlines"]) == 3  # the close and its two reminders

    with read(app.db) as conn:
        [change] = conn.execute(sa.select(CALENDAR_CHANGE)).mappings().all()
    assert change["id"] == result["change"]
    assert change["track_id"] == track["id"]
    assert change["application_id"] is None
    assert change["milestone"] == "receipt_closes"
    assert (change["old_at"], change["new_at"]) == (CLOSE, kst("2024-05-31 18:00"))
    assert (change["reason"], change["actor"]) == ("시스템 점검", "kim")
    assert change["at"] == kst("2024-05-20 10:00")

    sent = notices(app)
    per_app: dict[int, int] = {}
    for n in sent:
        per_app[n["application_id"]] = per_app.get(n["application_id"], 0) + 1
    assert per_app == {i: 1 for i in ids.values() if i != withdrawn}
    for n in sent:
        assert "2024-05-31" in n["body_text"], n["body_text"]
        assert "2024-05-31" in n["body_html"]
        assert n["dedup_key"] == f"{n['application_id']}:calendar_change:cc{change['id']}"
    assert any("시스템 점검" in n["body_text"] for n in sent)


def test_rescheduling_again_queues_a_second_notice(running: App) -> None:
    app = running
    calendars.reschedule(app, TRACK_KEY, "receipt_closes", kst("2024-05-31 18:00"), "시스템 점검", "kim")
    second = calendars.reschedule(app, TRACK_KEY, "receipt_closes", kst("2024-05-31 17:00"), "정정", "kim")
    assert second["old_at"] == kst("2024-05-31 18:00")
    assert second["notified"] == 17
    sent = notices(app)
    assert len(sent) == 34
    assert len({n["dedup_key"] for n in sent}) == 34
    latest = [n for n in sent if n["dedup_key"].endswith(f":cc{second['change']}")]
    assert len(latest) == 17
    assert all("17:00" in n["body_text"] for n in latest)
    assert deadline_rows(app)[f"{TRACK_KEY}:reminder:-3h"]["due_at"] == kst("2024-05-31 14:00")
    with read(app.db) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(CALENDAR_CHANGE)).scalar_one() == 2


def test_submission_inside_the_rescheduled_window_is_accepted(running: App) -> None:
    app = running
    with pytest.raises(OutsideWindow):
        submit(app, OTHER, "2024-05-30 12:00")
    set_clock(app, "2024-05-20 10:00")
    calendars.reschedule(app, TRACK_KEY, "receipt_closes", kst("2024-05-31 18:00"), "시스템 점검", "kim")
    assert submit(app, OTHER, "2024-05-30 12:00") == "receipt"
    with pytest.raises(OutsideWindow):
        submit(app, "44150", "2024-05-31 18:00")


def test_rescheduled_close_fires_at_the_new_time(running: App) -> None:
    app = running
    calendars.reschedule(app, TRACK_KEY, "receipt_closes", kst("2024-05-31 18:00"), "시스템 점검", "kim")
    assert f"{TRACK_KEY}:close_receipt" not in tick(app, "2024-05-29 18:00")
    assert set(states(app).values()) == {"announcement", "withdrawn"}
    fired = tick(app, "2024-05-31 18:00")
    assert f"{TRACK_KEY}:close_receipt" in fired
    assert set(states(app).values()) == {"expired", "withdrawn"}


def test_reschedule_kickoff_due_moves_both_kickoff_rows(running: App) -> None:
    app = running
    calendars.reschedule(app, TRACK_KEY, "kickoff_due", kst("2024-08-30 18:00"), "예산 일정", "kim")
    rows = deadline_rows(app)
    assert rows[f"{TRACK_KEY}:kickoff_plan_due"]["due_at"] == kst("2024-08-30 18:00")
    assert rows[f"{TRACK_KEY}:kickoff_closes"]["due_at"] == kst("2024-09-13 18:00")


def test_reschedule_leaves_a_fired_reminder_as_history(running: App) -> None:
    app = running
    fired = tick(app, "2024-05-28 09:00")
    assert f"{TRACK_KEY}:reminder:D-1 working days 09:00" in fired
    set_clock(app, "2024-05-28 10:00")
    calendars.reschedule(app, TRACK_KEY, "receipt_closes", kst("2024-05-31 18:00"), "시스템 점검", "kim")
    rows = deadline_rows(app)
    assert rows[f"{TRACK_KEY}:reminder:D-1 working days 09:00"]["due_at"] == kst("2024-05-28 09:00")
    assert rows[f"{TRACK_KEY}:reminder:D-1 working days 09:00"]["fired_at"] == kst("2024-05-28 09:00")
    assert rows[f"{TRACK_KEY}:reminder:-3h"]["due_at"] == kst("2024-05-31 15:00")


@pytest.mark.parametrize(
    ("milestone", "new_at", "reason", "error", "match"),
    [
        ("announce_at", "2024-05-21 10:00", "정정", OutsideWindow, "already past"),
        ("receipt_opens", "2024-05-19 09:00", "정정", InvalidInput, "already past"),
        ("receipt_closes", "2024-05-20 09:59", "정정", InvalidInput, "already past"),
        ("receipt_closes", "2024-06-06 18:00", "정정", InvalidInput, "after review_ends"),
        ("receipt_closes", "2024-05-26 18:00", "정정", InvalidInput, "before receipt_opens"),
        ("review_ends", "2024-05-29 17:00", "정정", InvalidInput, "before receipt_closes"),
        ("receipt_close", "2024-05-31 18:00", "정정", InvalidInput, "choose one of"),
        ("receipt_closes", "2024-05-31 18:00", "", MissingReason, "needs a reason"),
        ("receipt_closes", "2024-05-31 18:00", "   ", MissingReason, "needs a reason"),
    ],
)
def test_reschedule_refusals_change_nothing(
    running: App, milestone: str, new_at: str, reason: str, error: type[Exception], match: str
) -> None:
    app = running
    before = snapshot(app)
    with pytest.raises(error, match=match):
        calendars.reschedule(app, TRACK_KEY, milestone, kst(new_at), reason, "kim")
    assert snapshot(app) == before


def test_reschedule_of_a_past_close_refused(running: App) -> None:
    app = running
    set_clock(app, "2024-05-29 18:00")
    before = snapshot(app)
    with pytest.raises(OutsideWindow, match="gongmo extend"):
        calendars.reschedule(app, TRACK_KEY, "receipt_closes", kst("2024-05-31 18:00"), "늦은 연장", "kim")
    assert snapshot(app) == before


def test_reschedule_refuses_an_empty_receipt_window(running: App) -> None:
    app = running
    before = snapshot(app)
    with pytest.raises(InvalidInput):
        calendars.reschedule(app, TRACK_KEY, "receipt_closes", kst("2024-05-27 09:00"), "정정", "kim")
    assert snapshot(app) == before


# -- init keeps a rescheduled milestone ---------------------------------------------------


def test_init_after_reschedule_keeps_the_rescheduled_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("GONGMO_DATABASE_URL", "GONGMO_NOW", "GONGMO_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    text = CONFIG.read_text(encoding="utf-8")
    text, n = re.subn(r"(?m)^database_url = .*$", f'database_url = "sqlite:///{tmp_path / "gongmo.db"}"', text)
    assert n == 1
    text, n = re.subn(r"(?m)^templates_dir = .*$", f'templates_dir = "{CONFIG.parent / "templates"}"', text)
    assert n == 1
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")

    def gongmo(*args: str) -> str:
        capsys.readouterr()
        try:
            code = cli.run(["--config", str(config), "--now", "2024-05-20T10:00+09:00", *args])
        finally:
            if cli.state._app is not None:
                cli.state._app.db.dispose()
                cli.state._app = None
        out, err = capsys.readouterr()
        assert code == 0, err
        return " ".join(out.split())

    gongmo("init")
    moved = gongmo("reschedule", TRACK_KEY, "receipt_closes", "2024-05-31T18:00", "--reason", "시스템 점검")
    assert "2024-05-29 18:00 -> 2024-05-31 18:00 KST" in moved

    again = gongmo("init")
    assert f"track {TRACK_KEY}: receipt_closes kept as rescheduled" in again
    assert "deadlines: nothing to add or move" in again

    capsys.readouterr()
    try:
        assert cli.run(["--config", str(config), "deadlines", TRACK_KEY, "--json"]) == 0
    finally:
        if cli.state._app is not None:
            cli.state._app.db.dispose()
            cli.state._app = None
    rows = {r["key"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[f"{TRACK_KEY}:close_receipt"]["due_at"] == "2024-05-31T09:00:00+00:00"
    assert rows[f"{TRACK_KEY}:reminder:-3h"]["due_at"] == "2024-05-31T06:00:00+00:00"


# -- extend ----------------------------------------------------------------------------------


@pytest.fixture
def extended(app: App) -> tuple[App, dict[str, int], dict[str, Any]]:
    """Announced; EXTENDED has until 2024-05-30 18:00 KST (granted on 05-29 at noon)."""
    ids = announced(app)
    set_clock(app, "2024-05-29 12:00")
    result = calendars.extend(app, ids[EXTENDED], "receipt_closes", kst("2024-05-30 18:00"), "정전 피해", "kim")
    return app, ids, result


def test_extend_records_the_change_a_deadline_and_one_notice(
    extended: tuple[App, dict[str, int], dict[str, Any]],
) -> None:
    app, ids, result = extended
    app_id = ids[EXTENDED]
    assert (result["old_at"], result["new_at"]) == (CLOSE, kst("2024-05-30 18:00"))
    assert result["notified"] == 1
    with read(app.db) as conn:
        [change] = conn.execute(sa.select(CALENDAR_CHANGE)).mappings().all()
    assert change["application_id"] == app_id
    assert (change["milestone"], change["reason"], change["actor"]) == ("receipt_closes", "정전 피해", "kim")
    assert (change["old_at"], change["new_at"]) == (CLOSE, kst("2024-05-30 18:00"))
    rows = deadline_rows(app, "ext:")
    # and the applicant's own reminder of its new close (issue 19): -3h, 05-30 15:00
    assert set(rows) == {f"ext:{app_id}:receipt_closes", f"ext:{app_id}:receipt_closes:reminder:-3h"}
    row = rows[f"ext:{app_id}:receipt_closes"]
    assert (row["action"], row["milestone"], row["application_id"]) == ("extension_closes", "receipt_closes", app_id)
    assert row["due_at"] == kst("2024-05-30 18:00")
    assert row["fired_at"] is None
    # the track's own close does not move
    assert track_row(app)["receipt_closes"] == CLOSE
    assert deadline_rows(app)[f"{TRACK_KEY}:close_receipt"]["due_at"] == CLOSE
    [notice] = notices(app)
    assert notice["application_id"] == app_id
    assert "2024-05-30" in notice["body_text"]


def test_derive_keeps_the_extension_row(extended: tuple[App, dict[str, int], dict[str, Any]]) -> None:
    app, ids, _ = extended
    assert derive(app) == []
    assert f"ext:{ids[EXTENDED]}:receipt_closes" in deadline_rows(app, "ext:")


def test_extended_applicant_submits_after_the_track_close(
    extended: tuple[App, dict[str, int], dict[str, Any]],
) -> None:
    app, ids, _ = extended
    before = states(app)
    with pytest.raises(OutsideWindow):
        submit(app, OTHER, "2024-05-29 18:00:01")
    assert states(app) == before
    assert submit(app, EXTENDED, "2024-05-29 18:00:01") == "receipt"
    assert states(app)[ids[EXTENDED]] == "receipt"


def test_extension_window_is_half_open(extended: tuple[App, dict[str, int], dict[str, Any]]) -> None:
    app, _, _ = extended
    with pytest.raises(OutsideWindow, match="2024-05-30 18:00:00 KST"):
        submit(app, EXTENDED, "2024-05-30 18:00")


def test_track_close_spares_the_extended_applicant(extended: tuple[App, dict[str, int], dict[str, Any]]) -> None:
    app, ids, _ = extended
    assert submit(app, "44150", "2024-05-29 10:00") == "receipt"
    assert f"{TRACK_KEY}:close_receipt" in tick(app, "2024-05-29 18:00")
    now = states(app)
    assert now[ids[EXTENDED]] == "announcement"
    assert now[ids["44150"]] == "preliminary_review"
    assert {s for i, s in now.items() if i not in (ids[EXTENDED], ids["44150"])} == {"expired"}
    # the extension row is not due yet
    assert deadline_rows(app, "ext:")[f"ext:{ids[EXTENDED]}:receipt_closes"]["fired_at"] is None


def test_extension_close_sends_a_submitted_applicant_to_review(
    extended: tuple[App, dict[str, int], dict[str, Any]],
) -> None:
    app, ids, _ = extended
    tick(app, "2024-05-29 18:00")
    assert submit(app, EXTENDED, "2024-05-30 09:00") == "receipt"
    assert f"ext:{ids[EXTENDED]}:receipt_closes" not in tick(app, "2024-05-30 17:59:59")
    assert states(app)[ids[EXTENDED]] == "receipt"
    fired = tick(app, "2024-05-30 18:00")
    assert f"ext:{ids[EXTENDED]}:receipt_closes" in fired
    assert states(app)[ids[EXTENDED]] == "preliminary_review"
    row = deadline_rows(app, "ext:")[f"ext:{ids[EXTENDED]}:receipt_closes"]
    assert row["fired_at"] == kst("2024-05-30 18:00")


def test_extension_close_expires_an_applicant_that_did_not_submit(
    extended: tuple[App, dict[str, int], dict[str, Any]],
) -> None:
    app, ids, _ = extended
    tick(app, "2024-05-29 18:00")
    assert states(app)[ids[EXTENDED]] == "announcement"
    fired = tick(app, "2024-05-30 18:00")
    assert f"ext:{ids[EXTENDED]}:receipt_closes" in fired
    assert states(app)[ids[EXTENDED]] == "expired"
    expired = [n for n in notices(app, "expired") if n["application_id"] == ids[EXTENDED]]
    assert len(expired) == 1


def test_a_second_extension_goes_further(extended: tuple[App, dict[str, int], dict[str, Any]]) -> None:
    app, ids, _ = extended
    app_id = ids[EXTENDED]
    result = calendars.extend(app, app_id, "receipt_closes", kst("2024-05-31 18:00"), "추가 연장", "kim")
    assert result["old_at"] == kst("2024-05-30 18:00")
    rows = deadline_rows(app, "ext:")
    assert rows[f"ext:{app_id}:receipt_closes"]["due_at"] == kst("2024-05-31 18:00")
    assert len(notices(app)) == 2
    assert submit(app, EXTENDED, "2024-05-31 12:00") == "receipt"


def test_extension_overtaken_by_a_later_track_close_does_not_expire_early(
    extended: tuple[App, dict[str, int], dict[str, Any]],
) -> None:
    app, ids, _ = extended
    calendars.reschedule(app, TRACK_KEY, "receipt_closes", kst("2024-05-31 18:00"), "시스템 점검", "kim")
    tick(app, "2024-05-30 18:00")
    assert states(app)[ids[EXTENDED]] == "announcement"
    assert submit(app, EXTENDED, "2024-05-31 12:00") == "receipt"


def test_extension_of_an_expired_application_refused(extended: tuple[App, dict[str, int], dict[str, Any]]) -> None:
    app, ids, _ = extended
    tick(app, "2024-05-29 18:00")
    assert states(app)[ids[OTHER]] == "expired"
    set_clock(app, "2024-05-29 18:30")
    before = snapshot(app)
    with pytest.raises(Conflict, match="'expired'"):
        calendars.extend(app, ids[OTHER], "receipt_closes", kst("2024-05-30 18:00"), "정전 피해", "kim")
    assert snapshot(app) == before


@pytest.mark.parametrize(
    ("code", "milestone", "new_at", "reason", "error", "match"),
    [
        (OTHER, "receipt_closes", "2024-05-29 18:00", "정전 피해", InvalidInput, "must be after the current"),
        (OTHER, "receipt_closes", "2024-05-28 18:00", "정전 피해", InvalidInput, "must be after the current"),
        (EXTENDED, "receipt_closes", "2024-05-30 12:00", "정정", InvalidInput, "2024-05-30 18:00"),
        (EXTENDED, "receipt_closes", "2024-05-30 18:00", "정정", InvalidInput, "must be after the current"),
        (OTHER, "review_ends", "2024-06-07 18:00", "정전 피해", InvalidInput, "choose one of: receipt_closes"),
        (OTHER, "receipt_closes", "2024-05-30 18:00", "", MissingReason, "needs a reason"),
        (OTHER, "receipt_closes", "2024-05-30 18:00", "  ", MissingReason, "needs a reason"),
    ],
)
def test_extension_refusals_change_nothing(
    extended: tuple[App, dict[str, int], dict[str, Any]],
    code: str,
    milestone: str,
    new_at: str,
    reason: str,
    error: type[Exception],
    match: str,
) -> None:
    app, ids, _ = extended
    before = snapshot(app)
    with pytest.raises(error, match=match):
        calendars.extend(app, ids[code], milestone, kst(new_at), reason, "kim")
    assert snapshot(app) == before


def test_extension_of_an_unknown_application_refused(app: App) -> None:
    derive(app)
    before = snapshot(app)
    with pytest.raises(InvalidInput, match="no application 999999"):
        calendars.extend(app, 999_999, "receipt_closes", kst("2024-05-30 18:00"), "정전 피해", "kim")
    assert snapshot(app) == before


# -- a reschedule to the same time (issue 19, point 9) -------------------------------------


def test_reschedule_to_the_same_time_changes_nothing_and_notifies_nobody(running: App) -> None:
    app = running
    calendars.reschedule(app, TRACK_KEY, "receipt_closes", kst("2024-05-31 18:00"), "시스템 점검", "kim")
    before = snapshot(app)
    result = calendars.reschedule(app, TRACK_KEY, "receipt_closes", kst("2024-05-31 18:00"), "시스템 점검", "kim")
    assert (result["changed"], result["change"], result["notified"], result["deadlines"]) == (False, None, 0, [])
    assert snapshot(app) == before  # no calendar_change row, no notice, no deadline moved


# -- closed days of the calendar as the database holds it (issue 19, point 10) -------------


def test_reschedule_onto_a_holiday_or_a_saturday_warns(running: App) -> None:
    app = running
    moved = calendars.reschedule(app, TRACK_KEY, "review_ends", kst("2024-06-06 18:00"), "위원 일정", "kim")
    assert moved["warnings"] == [f"{TRACK_KEY}: review_ends 2024-06-06 18:00 KST falls on a closed day (현충일)"]
    saturday = calendars.reschedule(app, TRACK_KEY, "selection_at", kst("2024-06-22 10:00"), "발표 일정", "kim")
    assert saturday["warnings"] == [f"{TRACK_KEY}: selection_at 2024-06-22 10:00 KST falls on a closed day (토요일)"]
    working = calendars.reschedule(app, TRACK_KEY, "kickoff_due", kst("2024-08-01 18:00"), "예산 일정", "kim")
    assert working["warnings"] == []


def test_held_calendar_has_the_reschedules_with_who_and_why(running: App) -> None:
    app = running
    calendars.reschedule(app, TRACK_KEY, "review_ends", kst("2024-06-06 18:00"), "위원 일정", "kim")
    with read(app.db) as conn:
        kept = calendars.held(conn, app.loaded.config)
    assert dict(kept[TRACK_KEY]["calendar"])["review_ends"] == kst("2024-06-06 18:00")
    assert kept[TRACK_KEY]["rescheduled"] == {
        "review_ends": [
            {
                "from": kst("2024-06-05 18:00"),
                "to": kst("2024-06-06 18:00"),
                "by": "kim",
                "at": kst("2024-05-20 10:00"),
                "why": "위원 일정",
            }
        ]
    }
    flags = [f.line() for f in calendars.closed_day_flags(app.loaded.config, kept) if f.track == TRACK_KEY]
    assert f"{TRACK_KEY}: review_ends 2024-06-06 18:00 KST falls on a closed day (현충일)" in flags
    assert not [f for f in calendars.closed_day_flags(app.loaded.config) if f.track == TRACK_KEY]  # the config's


def test_cli_reschedule_init_and_contests_show_the_calendar_the_database_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_copy(tmp_path)
    now = ["--config", str(config), "--now", "2024-05-20T10:00+09:00"]

    def gongmo(*args: str) -> str:
        code, out, err = run_cli(capsys, *now, *args)
        assert code == 0, err
        return " ".join(out.split())

    before = json.loads(gongmo("contests", "--json"))  # no database yet: the config's calendar
    assert not (tmp_path / "gongmo.db").exists()
    [strong] = [t for t in before[1]["tracks"] if t["track"] == TRACK_KEY]
    assert strong["calendar_source"] == "config" and strong["calendar"]["review_ends"] == "2024-06-05T09:00:00+00:00"

    gongmo("init")
    moved = gongmo(
        "reschedule", TRACK_KEY, "review_ends", "2024-06-06T18:00", "--reason", "위원 일정", "--actor", "kim"
    )
    assert "2024-06-05 18:00 -> 2024-06-06 18:00 KST" in moved
    warning = f"warning: {TRACK_KEY}: review_ends 2024-06-06 18:00 KST falls on a closed day (현충일)"
    assert warning in moved

    same = gongmo("reschedule", TRACK_KEY, "review_ends", "2024-06-06T18:00", "--reason", "위원 일정")
    assert same.startswith(
        f"{TRACK_KEY} review_ends is already 2024-06-06 18:00 KST: nothing changed, nobody notified"
    ), same
    assert "notified;" not in same and "deadline row(s) moved" not in same

    assert warning in gongmo("init")

    data = json.loads(gongmo("contests", "--json"))
    [strong] = [t for t in data[1]["tracks"] if t["track"] == TRACK_KEY]
    assert strong["calendar_source"] == "database"
    assert strong["calendar"]["review_ends"] == "2024-06-06T09:00:00+00:00"
    [move] = strong["rescheduled"]["review_ends"]
    assert (move["by"], move["why"], move["to"]) == ("kim", "위원 일정", "2024-06-06T09:00:00+00:00")
    assert {"milestone": "review_ends", "at": "2024-06-06T18:00:00+09:00", "why": "현충일"} in strong["closed_days"]

    table = gongmo("contests")
    assert f"* {TRACK_KEY} review_ends: 2024-06-05 18:00 -> 2024-06-06 18:00, rescheduled by kim" in table
    assert "위원 일정" in table and warning.removeprefix("warning: ") in table


# -- the deadline rows and the ticker's actions come from the lifecycle table (point 14) ----


def test_deadline_rows_and_ticker_actions_are_derived_from_the_lifecycle_table(app: App) -> None:
    derive(app)
    present = {"announce_at", "receipt_opens", "receipt_closes", "review_ends", "written_ends", "selection_at"}
    expected = {spec.action for spec, _, _ in TABLE.deadline_plan(present | {"kickoff_due"})}
    rows = deadline_rows(app)
    assert {r["action"] for r in rows.values() if r["action"] != "reminder"} == expected
    ticker = Ticker(app, "w1")
    assert set(ticker.actions) == {d.action for d in TABLE.deadlines} | {"reminder", "extension_closes"}
    # lapse and cancel fire at kickoff_due + kickoff_grace_days, not at kickoff_due
    assert rows[f"{TRACK_KEY}:kickoff_closes"]["due_at"] == kst("2024-08-14 18:00")
    assert str(parse_at(TABLE.trigger("lapse").milestone or "")) == "kickoff_due + kickoff_grace_days"


def test_the_kickoff_grace_ends_on_a_working_day(tmp_path: Path, db_url: str) -> None:
    """kickoff_due 2022-03-31 + 16 days is Saturday 4.16: Civil Act art. 161 ends it on Monday 4.18."""
    for rule, end in (("civil_act_161", "2022-04-18 18:00"), ("calendar", "2022-04-16 18:00")):
        config = config_copy(
            tmp_path,
            ("  kickoff_grace_days = 14\n", "  kickoff_grace_days = 16\n"),
            ('period_end_rule = "civil_act_161"\n', f'period_end_rule = "{rule}"\n'),
            name=f"{rule}.toml",
        )
        built = make_app(db_url, FixedClock(kst("2021-11-01 09:00")), config)
        try:
            derive(built)
            due = deadline_rows(built, "small-medium-2022:")["small-medium-2022:kickoff_closes"]["due_at"]
            assert due == kst(end), rule
        finally:
            built.db.dispose()


# -- the 2022 preliminary review window (issue 19, point 15) -------------------------------


def test_2022_plans_wait_in_receipt_until_the_review_opens_on_01_03(db_url: str) -> None:
    built = make_app(db_url, FixedClock(kst("2021-11-23 09:00")))
    try:
        app, key = built, "small-medium-2022"
        derive(app)
        rows = deadline_rows(app, f"{key}:")
        assert rows[f"{key}:open_review"]["due_at"] == kst("2022-01-03 09:00")
        assert (rows[f"{key}:open_review"]["action"], rows[f"{key}:open_review"]["milestone"]) == (
            "open_review",
            "review_starts",
        )
        assert track_row(app, key)["review_starts"] == kst("2022-01-03 09:00")
        tick(app, "2021-11-23 10:00")
        codes = sorted(ids_by_code(app, key))[:2]
        set_clock(app, "2021-12-28 10:00")
        for code in codes:
            plans.submit(app, key, code, 2_000_000_000, 2_000_000_000, ADMIN, "계획")
        closed = tick(app, "2021-12-29 18:00")
        assert closed[f"{key}:close_receipt"] == f"{len(ids_by_code(app, key)) - 2} expired"
        ids = ids_by_code(app, key)
        assert [states(app, key)[ids[c]] for c in codes] == ["receipt", "receipt"]
        set_clock(app, "2021-12-30 10:00")
        with pytest.raises(IllegalMove):  # the review may not be decided before it opens
            app.moves.apply(ids[codes[0]], "pass_review", ADMIN)
        assert tick(app, "2022-01-02 23:59") == {}
        opened = tick(app, "2022-01-03 09:00")
        assert opened == {f"{key}:open_review": "2 to preliminary review"}
        assert [states(app, key)[ids[c]] for c in codes] == ["preliminary_review", "preliminary_review"]
    finally:
        built.db.dispose()


def test_rehearsal_of_2022_opens_the_review_on_01_03(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--config", str(CONFIG), "rehearse", "scc-2022-small-medium")
    assert code == 0, err
    assert "2022-01-03 (월) 09:00 KST  small-medium-2022  [open_review] 13 to preliminary review" in out, out
    assert "2021-12-29 (수) 18:00 KST  small-medium-2022  [close_receipt] 5 expired\n" in out
    # One applicant's own close (12-31): its reminders follow it, and its late plan waits for 01-03 as well.
    for line in (
        "2021-12-30 (목) 09:00 KST  small-medium-2022  [reminder] 41110: 1 reminder to application 3 (its own close",
        "2021-12-31 (금) 15:00 KST  small-medium-2022  [reminder] 41110: 1 reminder to application 3 (its own close",
        "2021-12-31 (금) 18:00 KST  small-medium-2022  [extension_closes] 41110: application 3: extension ran out;"
        " its plan waits for the review to open",
    ):
        assert line in out, line
    track_reminders = [t for t in out.splitlines() if "[reminder]" in t and "41110" not in t]
    assert [t[:25] for t in track_reminders] == ["2021-12-28 (화) 09:00 KST ", "2021-12-29 (수) 15:00 KST "]


def test_review_starts_of_a_track_without_one_cannot_be_rescheduled(running: App) -> None:
    before = snapshot(running)
    with pytest.raises(InvalidInput, match=f"MILESTONE review_starts: track {TRACK_KEY} has none; add review_starts"):
        calendars.reschedule(running, TRACK_KEY, "review_starts", kst("2024-06-03 09:00"), "검토 일정", "kim")
    assert snapshot(running) == before


def test_rescheduling_review_starts_moves_its_row_and_keeps_the_order(db_url: str) -> None:
    built = make_app(db_url, FixedClock(kst("2021-12-01 09:00")))
    try:
        derive(built)
        key = "small-medium-2022"
        with pytest.raises(InvalidInput, match="would put review_starts before receipt_closes"):
            calendars.reschedule(built, key, "review_starts", kst("2021-12-29 17:00"), "검토 일정", "kim")
        moved = calendars.reschedule(built, key, "review_starts", kst("2022-01-04 09:00"), "검토 일정", "kim")
        assert moved["changed"] and moved["warnings"] == []
        assert deadline_rows(built, f"{key}:")[f"{key}:open_review"]["due_at"] == kst("2022-01-04 09:00")
        with pytest.raises(InvalidInput, match="would put review_ends before review_starts"):
            calendars.reschedule(built, key, "review_ends", kst("2022-01-03 18:00"), "검토 일정", "kim")
    finally:
        built.db.dispose()
