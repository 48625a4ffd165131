"""Stage effects return follow-up moves (engine/effects.py, waitlist.py); notices go
through the queue hook the Mover is given (engine/hooks.py). SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from gongmo.states.errors import IllegalMove
from gongmo.workflow.core.actors import SYSTEM
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.lookups import track_by_key
from gongmo.workflow.core.models import APPLICATION, AUDIT, OUTBOX
from gongmo.workflow.engine.app import App
from gongmo.workflow.engine.effects import FollowUp, Moving
from gongmo.workflow.engine.moves import EFFECTS, Mover
from gongmo.workflow.engine.waitlist import promote_after_dropout
from tests.workflow.engine.test_moves import ADMIN, TRACK_KEY, counts, submit, verify_clean


def states(app: App, ids: list[int]) -> list[str]:
    with read(app.db) as conn:
        rows = dict(
            conn.execute(sa.select(APPLICATION.c.id, APPLICATION.c.state).where(APPLICATION.c.id.in_(ids))).all()
        )
    return [rows[i] for i in ids]


def mover(app: App, **kwargs: Any) -> Mover:
    """Another Mover on the same database, config and clock."""
    kwargs.setdefault("queue", app.moves.queue)
    return Mover(app.db, app.loaded, app.clock, **kwargs)


class Recorder:
    """A NoticeQueue that writes nothing and remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, list[int], str, dict[str, Any]]] = []

    def __call__(
        self,
        conn: Connection,
        notice: str | None,
        ids: list[int],
        track: RowMapping,
        now: datetime,
        extra: Mapping[str, Any] | None = None,
        tag: str | None = None,
        party: Mapping[str, Any] | None = None,
    ) -> int:
        self.calls.append((notice, list(ids), str(track["key"]), dict(extra or {})))
        return len(ids)


def test_notices_go_through_the_queue_it_is_given(app: App) -> None:
    app_id = submit(app, "41590")
    app.moves.apply(app_id, "start_review", SYSTEM)
    recorder = Recorder()
    moved = mover(app, queue=recorder).apply(app_id, "pass_review", ADMIN)
    assert moved.to_state == "written_evaluation"
    assert recorder.calls == [("review_passed", [app_id], TRACK_KEY, {"reason": ""})]
    with read(app.db) as conn:
        sent = conn.execute(sa.select(OUTBOX.c.notice).where(OUTBOX.c.application_id == app_id)).scalars().all()
    assert sent == ["receipt_confirmation"]  # the recorder queued nothing


def test_the_checklist_is_recorded_on_entering_preliminary_review(app: App) -> None:
    app_id = submit(app, "41590")
    app.moves.apply(app_id, "start_review", SYSTEM)
    with read(app.db) as conn:
        row = conn.execute(sa.select(APPLICATION).where(APPLICATION.c.id == app_id)).mappings().one()
    assert row["eligible"] is True and row["checklist"]


def test_a_follow_up_is_moved_by_the_system_in_the_same_transaction(app: App) -> None:
    first, second = submit(app, "41590"), submit(app, "41190")

    def review_the_other(conn: Connection, moving: Moving) -> list[FollowUp]:
        if moving.dest == "preliminary_review" and moving.ids == [first]:
            return [FollowUp(second, "start_review", f"follows application {first}")]
        return []

    mover(app, effects=(*EFFECTS, review_the_other)).apply(first, "start_review", SYSTEM)
    assert states(app, [first, second]) == ["preliminary_review", "preliminary_review"]
    with read(app.db) as conn:
        last = conn.execute(sa.select(AUDIT).order_by(AUDIT.c.id.desc()).limit(1)).mappings().one()
    assert (last["application_id"], last["trigger"], last["actor"]) == (second, "start_review", "scheduler")
    assert last["reason"] == f"follows application {first}"
    verify_clean(app)


def test_a_refused_follow_up_rolls_the_whole_move_back(app: App) -> None:
    first, second = submit(app, "41590"), submit(app, "41190")
    before = counts(app)

    def impossible(conn: Connection, moving: Moving) -> list[FollowUp]:
        return [FollowUp(second, "expire")] if moving.ids == [first] else []

    with pytest.raises(IllegalMove, match=f"cannot 'expire' application {second}"):
        mover(app, effects=(impossible,)).apply(first, "start_review", SYSTEM)
    assert counts(app) == before


def _set(conn: Connection, app_id: int, state: str, position: int | None = None, national: int | None = None) -> None:
    values: dict[str, Any] = {"state": state, "waitlist_position": position}
    if national is not None:
        values["national_krw"] = national
    conn.execute(sa.update(APPLICATION).where(APPLICATION.c.id == app_id).values(**values))


def test_each_place_freed_promotes_the_next_waitlisted_that_fits(app: App) -> None:
    """Three slots in 24 bn, one selected (8 bn) stays and two leave: position 1 (9 bn)
    takes the first place; position 2 (8 bn) no longer fits the 7 bn left, so the
    second place goes to position 3 (7 bn), as one promotion after the other would."""
    ids = [submit(app, code) for code in ("41590", "41190", "44150", "41110", "41280", "48120")]
    gone, kept, (w1, w2, w3) = ids[:2], ids[2], ids[3:]
    _, track_cfg = app.loaded.config.track(TRACK_KEY)
    with write(app.db) as conn:
        for i in gone:
            _set(conn, i, "withdrawn")
        _set(conn, kept, "selected")
        _set(conn, w1, "waitlisted", 2, national=8_000_000_000)
        _set(conn, w2, "waitlisted", 1, national=9_000_000_000)
        _set(conn, w3, "waitlisted", 3, national=7_000_000_000)
        track = track_by_key(conn, app.loaded.config, TRACK_KEY)
        moving = Moving(gone, "selected", "withdrawn", track, track_cfg, app.clock.now())
        follow = promote_after_dropout(conn, moving)
        late = Moving(gone, "selected", "withdrawn", track, track_cfg, track[track_cfg.promotion_until])
        assert promote_after_dropout(conn, late) == []  # on the promotion date: none
        other = Moving(gone, "waitlisted", "withdrawn", track, track_cfg, app.clock.now())
        assert promote_after_dropout(conn, other) == []  # only a selected one frees a place
    assert [(f.application_id, f.trigger, f.fields) for f in follow] == [
        (w2, "promote", {"waitlist_position": None}),
        (w3, "promote", {"waitlist_position": None}),
    ]
    freed = f"place freed by application {gone[0]}, {gone[1]}"
    assert follow[0].reason == f"{freed}; waitlist position 1"
    assert follow[1].reason is not None and follow[1].reason.startswith(f"{freed}; waitlist position 3; ")
    assert f"waitlist position 2 (application {w1}) passed over" in follow[1].reason


def test_the_engine_imports_no_room_above_it() -> None:
    """core <- engine: importing the Mover loads no stage, outbox, deadline, read, runtime, CLI or API module."""
    code = (
        "import sys; import gongmo.workflow.engine.moves, gongmo.workflow.engine.app;"
        "print(sorted(m for m in sys.modules if m.startswith('gongmo.workflow.')"
        " and m.split('.')[2] not in ('core', 'engine')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
