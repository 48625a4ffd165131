"""A manual waitlisting takes the next position, or the one the admin gives (issue 19, point 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from gongmo.states.errors import InvalidInput
from gongmo.states.lifecycle import Role
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICATION, OUTBOX, TRACK
from gongmo.workflow.engine.app import App
from tests.conftest import config_copy, kst, make_app, run_cli

TRACK_KEY = "strong-small-2024"
ADMIN = Actor("lh-office", Role.ADMIN)


def results(app: App) -> dict[str, int]:
    """Five applications of the track, set where a selection leaves them:
    'a', 'b' selected, 'w1', 'w2' waitlisted 1 and 2, 'p' still in presentation evaluation."""
    app.clock.set(kst("2024-03-29 10:00"))  # type: ignore[attr-defined]
    app.moves.announce(TRACK_KEY, ADMIN)
    with write(app.db) as conn:
        ids = [
            int(i)
            for i in conn.execute(
                sa.select(APPLICATION.c.id)
                .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
                .where(TRACK.c.key == TRACK_KEY)
                .order_by(APPLICATION.c.id)
                .limit(5)
            ).scalars()
        ]
        named = dict(zip(("a", "b", "w1", "w2", "p"), ids, strict=True))
        for name, state, position in (
            ("a", "selected", None),
            ("b", "selected", None),
            ("w1", "waitlisted", 1),
            ("w2", "waitlisted", 2),
            ("p", "presentation_evaluation", None),
        ):
            conn.execute(
                sa.update(APPLICATION)
                .where(APPLICATION.c.id == named[name])
                .values(state=state, waitlist_position=position, receipt_no=f"R-{name}")
            )
    app.clock.set(kst("2024-06-27 10:00"))  # type: ignore[attr-defined]
    return named


def position(app: App, app_id: int) -> int | None:
    with read(app.db) as conn:
        value = conn.execute(sa.select(APPLICATION.c.waitlist_position).where(APPLICATION.c.id == app_id)).scalar()
    return None if value is None else int(value)


def waitlisted_notice(app: App, app_id: int) -> tuple[str, str]:
    with read(app.db) as conn:
        row = conn.execute(
            sa.select(OUTBOX.c.subject, OUTBOX.c.body_text).where(
                OUTBOX.c.application_id == app_id, OUTBOX.c.notice == "waitlisted"
            )
        ).one()
    return row.subject, row.body_text


def test_a_selected_application_waitlisted_by_hand_takes_the_next_position(app: App) -> None:
    named = results(app)
    app.moves.apply(named["a"], "waitlist", ADMIN, "선정 정정: 예산 재검토")
    assert position(app, named["a"]) == 3
    subject, body = waitlisted_notice(app, named["a"])
    assert "대기 3순위" in subject and "대기 순위: 3순위" in body
    assert "0순위" not in subject + body
    app.moves.apply(named["p"], "waitlist", ADMIN, "발표평가 후 대기")
    assert position(app, named["p"]) == 4


def test_the_admin_may_give_a_free_position_and_a_held_one_is_refused(app: App) -> None:
    named = results(app)
    with pytest.raises(InvalidInput) as info:
        app.moves.apply(named["a"], "waitlist", ADMIN, "정정", waitlist_position=2)
    assert str(info.value) == (
        f"waitlist_position = 2: waitlist position 2 of track {TRACK_KEY} is held by application {named['w2']};"
        " choose a free one, or leave waitlist_position out for the next (3)"
    )
    with read(app.db) as conn:
        state = conn.execute(sa.select(APPLICATION.c.state).where(APPLICATION.c.id == named["a"])).scalar_one()
    assert state == "selected" and position(app, named["a"]) is None  # nothing changed
    app.moves.apply(named["a"], "waitlist", ADMIN, "정정", waitlist_position=5)
    assert position(app, named["a"]) == 5
    assert "대기 5순위" in waitlisted_notice(app, named["a"])[0]


@pytest.mark.parametrize("given", [0, 1001])
def test_a_position_out_of_range_is_refused(app: App, given: int) -> None:
    named = results(app)
    with pytest.raises(InvalidInput, match=f"^waitlist_position = {given}: write a whole number from 1"):
        app.moves.apply(named["a"], "waitlist", ADMIN, "정정", waitlist_position=given)


def test_a_position_with_another_trigger_is_refused(app: App) -> None:
    named = results(app)
    with pytest.raises(InvalidInput, match="only with the 'waitlist' trigger, not 'reject'"):
        app.moves.apply(named["p"], "reject", ADMIN, "정정", waitlist_position=3)


def test_gongmo_trigger_waitlist_position(
    tmp_path: Path, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    config = config_copy(tmp_path)
    app = make_app(f"sqlite:///{tmp_path / 'gongmo.db'}", clock, config)
    try:
        named = results(app)
    finally:
        app.db.dispose()
    now = ("--now", "2024-06-27T10:00")
    code, out, err = run_cli(
        capsys,
        "--config",
        str(config),
        *now,
        "trigger",
        str(named["a"]),
        "waitlist",
        "--reason",
        "정정",
        "--position",
        "4",
    )
    assert code == 0, err
    assert "waitlist position 4" in out
    code, out, err = run_cli(
        capsys,
        "--config",
        str(config),
        *now,
        "trigger",
        str(named["b"]),
        "waitlist",
        "--reason",
        "정정",
        "--position",
        "4",
    )
    assert code != 0
    assert "--position 4: waitlist position 4 of track strong-small-2024 is held by application" in out + err
    assert "Traceback" not in out + err
