"""The objection period ends on a working day (Korean Civil Act art. 161; issue 19,
point 11): the disqualified notice states that day and the objection window
closes then (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa

from gongmo.states.errors import OutsideWindow
from gongmo.states.lifecycle import Role
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICANT, APPLICATION, OUTBOX, TRACK
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.deadlines.ticker import Ticker
from gongmo.workflow.engine.app import App
from gongmo.workflow.stages import review
from tests.conftest import kst
from tests.workflow import plans

TRACK_KEY = "strong-small-2024"
ADMIN = Actor("park", Role.ADMIN)
CODE = "41590"  # 화성시


def _set(app: App, at: str) -> None:
    assert isinstance(app.clock, FixedClock)
    app.clock.set(kst(at))


def _disqualified_on_memorial_day_eve(app: App) -> int:
    with write(app.db) as conn:
        calendars.derive(app, conn)
    _set(app, "2024-03-29 10:00")
    Ticker(app, "w1").run_until_idle()
    _set(app, "2024-05-28 10:00")
    plans.submit(app, TRACK_KEY, CODE, 8_000_000_000, 8_000_000_000, ADMIN, "계획", "climate_crisis")
    _set(app, "2024-05-29 18:00")
    Ticker(app, "w1").run_until_idle()
    with read(app.db) as conn:
        app_id = conn.execute(
            sa.select(APPLICATION.c.id)
            .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
            .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
            .where(TRACK.c.key == TRACK_KEY, APPLICANT.c.code == CODE)
        ).scalar_one()
    _set(app, "2024-05-30 10:00")  # Thursday: 7 days end on Thursday 6.6, 현충일
    app.moves.apply(app_id, "disqualify", ADMIN, "허위 기재")
    return int(app_id)


def test_the_objection_deadline_on_a_holiday_moves_to_the_next_working_day(app: App) -> None:
    app_id = _disqualified_on_memorial_day_eve(app)
    with read(app.db) as conn:
        [notice] = conn.execute(
            sa.select(OUTBOX.c.body_text).where(OUTBOX.c.application_id == app_id, OUTBOX.c.notice == "disqualified")
        ).scalars()
    assert "2024-06-07" in notice and "2024-06-06" not in notice, notice
    applicant = Actor(CODE, Role.APPLICANT)
    _set(app, "2024-06-06 12:00")  # past the calendar count, inside the period
    assert review.file_objection(app, app_id, "기재 내용은 사실입니다", applicant) > 0


def test_the_objection_window_closes_at_the_moved_end(app: App) -> None:
    app_id = _disqualified_on_memorial_day_eve(app)
    _set(app, "2024-06-07 10:00")
    try:
        review.file_objection(app, app_id, "늦은 이의", Actor(CODE, Role.APPLICANT))
    except OutsideWindow as exc:
        assert "2024-06-07 10:00 KST" in str(exc)
    else:
        raise AssertionError("an objection after the period's end was taken")
