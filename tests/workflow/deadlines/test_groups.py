"""Per-applicant deadlines due at the same instant with the same action (extensions closing) fire
together: one unit of the ticker, one bulk move in chunks, not a transaction each (SQLite and
PostgreSQL). Order, leases and idempotence as for any row."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import AUDIT, DEADLINE
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.deadlines.ticker import Ticker, units
from gongmo.workflow.engine import audit
from gongmo.workflow.engine.app import App
from tests.conftest import kst
from tests.workflow.deadlines.test_changes import (
    TRACK_KEY,
    announced,
    notices,
    set_clock,
    states,
    submit,
    tick,
)

EXTENDED = ("41590", "41190", "41110", "44150", "41280", "46170")  # six applicants, each given 05-30 18:00
SUBMITTED = ("41110", "46170")  # of them, these submit their plans late
OWN_CLOSE = "2024-05-30 18:00"


def ext_key(app_id: int) -> str:
    return f"ext:{app_id}:receipt_closes"


def extend(app: App, ids: dict[str, int], codes: tuple[str, ...]) -> None:
    set_clock(app, "2024-05-29 12:00")
    for code in codes:
        calendars.extend(app, ids[code], "receipt_closes", kst(OWN_CLOSE), "정전 피해", "kim")


def extended(app: App, between: Callable[[App], None] | None = None) -> dict[str, int]:
    """Announced; six applicants extended to 05-30 18:00 (`between` runs after the first three);
    the track closed on 05-29; two of the six submitted late; every reminder before 18:00 done."""
    ids = announced(app)
    extend(app, ids, EXTENDED[:3])
    if between is not None:
        between(app)
    extend(app, ids, EXTENDED[3:])
    tick(app, "2024-05-29 18:00")
    for code in SUBMITTED:
        assert submit(app, code, "2024-05-30 09:00") == "receipt"
    tick(app, "2024-05-30 17:59")
    set_clock(app, OWN_CLOSE)
    return ids


def deadline(app: App, key: str) -> dict[str, Any]:
    with read(app.db) as conn:
        return dict(conn.execute(sa.select(DEADLINE).where(DEADLINE.c.key == key)).mappings().one())


def audit_of(app: App, app_id: int) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = sa.select(AUDIT).where(AUDIT.c.application_id == app_id).order_by(AUDIT.c.id)
        return [dict(r) for r in conn.execute(query).mappings()]


def verify_clean(app: App) -> None:
    with read(app.db) as conn:
        report = audit.verify(conn, TABLE)
    assert report.clean, report.findings[:3]


def spy(monkeypatch: pytest.MonkeyPatch, app: App, **forced: Any) -> dict[str, list[Any]]:
    """Count the Mover's single and bulk moves (bulk ones called with `forced` keywords)."""
    calls: dict[str, list[Any]] = {"apply": [], "apply_bulk": []}
    apply, apply_bulk = app.moves.apply, app.moves.apply_bulk

    def single(*args: Any, **kwargs: Any) -> Any:
        calls["apply"].append(args)
        return apply(*args, **kwargs)

    def bulk(*args: Any, **kwargs: Any) -> Any:
        calls["apply_bulk"].append((args, kwargs.get("only")))
        return apply_bulk(*args, **(kwargs | forced))

    monkeypatch.setattr(app.moves, "apply", single)
    monkeypatch.setattr(app.moves, "apply_bulk", bulk)
    return calls


def test_same_instant_extensions_fire_as_one_bulk_move_each_row_once(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = extended(app)
    mine = sorted(ids[c] for c in EXTENDED)
    calls = spy(monkeypatch, app)
    ticker = Ticker(app, "w1")
    ticker.batch = 2  # the claim takes the rest of the run with it
    fired = ticker.tick()
    assert [f.key for f in fired] == [ext_key(ids[c]) for c in EXTENDED]  # in the rows' order
    assert not any(f.error for f in fired)
    assert {f.summary for f in fired} == {"6 applications: extensions ran out, 4 expired, 2 to preliminary review"}
    assert calls["apply"] == []
    assert [(args[1], args[2], sorted(only)) for args, only in calls["apply_bulk"]] == [
        ("expire", "announcement", mine),
        ("start_review", "receipt", mine),
    ]
    now = states(app)
    assert {now[ids[c]] for c in EXTENDED if c not in SUBMITTED} == {"expired"}
    assert {now[ids[c]] for c in SUBMITTED} == {"preliminary_review"}
    for app_id in mine:
        row = deadline(app, ext_key(app_id))
        assert (row["fired_at"], row["attempts"], row["lease_until"], row["late"]) == (kst(OWN_CLOSE), 1, None, False)
        [moved] = [a for a in audit_of(app, app_id) if a["at"] == kst(OWN_CLOSE)]
        assert moved["reason"] == (
            "deadline extension_closes (receipt_closes, the application's own) due 2024-05-30 18:00 KST"
        )
    expired = [n["application_id"] for n in notices(app, "expired") if n["application_id"] in mine]
    assert sorted(expired) == sorted(ids[c] for c in EXTENDED if c not in SUBMITTED)
    assert ticker.tick() == []  # nothing left, nothing twice
    verify_clean(app)


def review_due_between(app: App) -> None:
    """Another action of the same track at the same instant, between the extension rows (by id)."""
    with write(app.db) as conn:
        track_id = conn.execute(sa.select(DEADLINE.c.track_id).where(DEADLINE.c.key.like("ext:%"))).scalar()
        conn.execute(
            sa.insert(DEADLINE).values(
                key="probe:review_due",
                track_id=track_id,
                application_id=None,
                action="review_due",
                milestone="review_ends",
                due_at=kst(OWN_CLOSE),
                attempts=0,
                created_at=app.clock.now(),
            )
        )


def test_another_action_at_the_same_instant_keeps_its_place(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = extended(app, between=review_due_between)
    first, then = sorted(ids[c] for c in EXTENDED[:3]), sorted(ids[c] for c in EXTENDED[3:])
    calls = spy(monkeypatch, app)
    ticker = Ticker(app, "w1")
    ticker.batch = 2
    assert [f.key for f in ticker.tick()] == [ext_key(ids[c]) for c in EXTENDED[:3]]  # stops at the other action
    assert deadline(app, "probe:review_due")["fired_at"] is None
    second = ticker.tick()
    assert [f.key for f in second] == ["probe:review_due", *(ext_key(ids[c]) for c in EXTENDED[3:])]
    assert second[0].summary.startswith("1 still in preliminary review")  # the first three's late plan only
    assert [sorted(only) for _, only in calls["apply_bulk"]] == [first, first, then, then]
    verify_clean(app)


class Crash(BaseException):
    """The daemon's process dies here (nothing of it runs after: no release, no mark)."""


def test_a_group_taken_over_after_its_lease_is_finished_by_the_other_daemon_once(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = extended(app)
    mine = sorted(ids[c] for c in EXTENDED)
    chunks: list[int] = []

    def dies_after_two_chunks() -> bool:
        chunks.append(1)
        if len(chunks) > 2:
            raise Crash
        return False

    spy(monkeypatch, app, chunk=2, should_stop=dies_after_two_chunks)
    dead = Ticker(app, "dead")
    with pytest.raises(Crash):
        dead.tick()
    expired_before = [i for i, s in states(app).items() if i in mine and s == "expired"]
    assert 0 < len(expired_before) < 4  # two chunks of two (of those still drafts) committed, then the crash
    assert {deadline(app, ext_key(i))["claimed_by"] for i in mine} == {"dead"}
    assert {deadline(app, ext_key(i))["fired_at"] for i in mine} == {None}
    monkeypatch.undo()
    alive = Ticker(app, "alive")
    assert alive.tick() == []  # the dead daemon's lease still holds the group
    set_clock(app, OWN_CLOSE)
    app.clock.advance(alive.lease + timedelta(seconds=1))  # type: ignore[attr-defined]
    fired = [f for f in alive.tick() if f.key.startswith("ext:")]  # (the 2022 calls, held, come round too)
    assert sorted(f.key for f in fired) == sorted(ext_key(i) for i in mine) and not any(f.error for f in fired)
    rest = 4 - len(expired_before)
    assert fired[0].summary == f"6 applications: extensions ran out, {rest} expired, 2 to preliminary review"
    for app_id in mine:
        row = deadline(app, ext_key(app_id))
        assert (row["claimed_by"], row["attempts"], row["late"]) == ("alive", 2, True)
        moves = [a["trigger"] for a in audit_of(app, app_id) if a["trigger"] in ("expire", "start_review")]
        assert len(moves) == 1  # each moved once, by one daemon or the other
    expired = [n["application_id"] for n in notices(app, "expired") if n["application_id"] in mine]
    assert len(expired) == len(set(expired)) == 4
    # the dead daemon, had it come back to mark its unit, finds every row taken: nothing twice
    marked = {i: deadline(app, ext_key(i))["fired_at"] for i in mine}
    app.clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    rows = [dict(deadline(app, ext_key(i)), track_key=TRACK_KEY) for i in mine]
    assert {f.error for f in dead._mark(rows, app.clock.now(), True, "late")} == {"lease lost"}
    assert {i: deadline(app, ext_key(i))["fired_at"] for i in mine} == marked
    verify_clean(app)


def row(rid: int, track: int, action: str, due: datetime) -> dict[str, Any]:
    return {"id": rid, "track_id": track, "action": action, "due_at": due, "key": f"k{rid}"}


def test_units_group_runs_per_track_and_keep_each_tracks_order() -> None:
    at, later = kst("2024-05-30 18:00"), kst("2024-05-30 18:01")
    rows = [
        row(1, 1, "extension_closes", at),
        row(2, 2, "extension_closes", at),  # another track between them: its own run
        row(3, 1, "extension_closes", at),
        row(4, 1, "review_due", at),  # another action of track 1: the run ends
        row(5, 1, "extension_closes", at),
        row(6, 2, "extension_closes", at),
        row(7, 1, "extension_closes", later),  # another instant: a run of its own
        row(8, 1, "reminder", later),
        row(9, 1, "reminder", later),  # not a grouped action: alone
    ]
    got = [[r["id"] for r in unit] for unit in units(rows, {"extension_closes": object()})]
    assert got == [[1, 3], [2, 6], [4], [5], [7], [8], [9]]
