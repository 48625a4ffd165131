"""Presentation slots of the 2024 strong-and-small track: one per application in
evaluation, inside the presentation window (2024-06-17 09:00 to 06-19 18:00
KST), on working days, outside lunch, in receipt order, each applicant
invited with an .ics.

The fixture stops after the preliminary review (2024-06-03 10:00 KST): ten
applications in written evaluation, 창원 (48120) and 수원 (41110) disqualified.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, time
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from gongmo.states.errors import InvalidInput
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import EVENT, OUTBOX, PRESENTATION_SLOT
from gongmo.workflow.engine.app import App
from gongmo.workflow.stages import presentations, review
from tests.conftest import config_copy, kst, make_app
from tests.workflow import contest_2024 as sc

OFFICE = sc.OFFICE
SEOUL = ZoneInfo("Asia/Seoul")
WINDOW = (kst("2024-06-17 09:00"), kst("2024-06-19 18:00"))
PLACE = "LH 서울지역본부 대회의실"


def _reviewed(app: App, clock: FixedClock, tmp_path: Path) -> App:
    sc.prepare(app, clock, tmp_path)
    sc.receive_all(app, clock)
    sc.at(app, clock, "2024-05-29 18:00")
    clock.set(kst("2024-06-03 10:00"))
    review.pass_eligible(app, sc.TRACK, OFFICE)
    review.disqualify_failed(app, sc.TRACK, OFFICE)
    return app


@pytest.fixture
def reviewed(app: App, clock: FixedClock, tmp_path: Path) -> App:
    return _reviewed(app, clock, tmp_path)


def _in_evaluation(app: App) -> dict[str, str]:
    """receipt_no -> code of the applications in written evaluation."""
    return {str(r["receipt_no"]): code for code, r in sc.apps(app).items() if r["state"] == "written_evaluation"}


def _count(app: App, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    with read(app.db) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one())


def _invitations(app: App) -> int:
    return _count(app, OUTBOX, OUTBOX.c.notice == "presentation_invitation")


def _local(value: datetime) -> datetime:
    return value.astimezone(SEOUL)


def test_each_application_in_evaluation_gets_one_slot_in_receipt_order(reviewed: App) -> None:
    app = reviewed
    receipts = _in_evaluation(app)
    assert len(receipts) == 10

    planned = presentations.schedule(app, sc.TRACK, OFFICE)

    assert [p["receipt_no"] for p in planned] == sorted(receipts)
    assert [(f"{_local(p['starts_at']):%m-%d %H:%M}", f"{_local(p['ends_at']):%H:%M}") for p in planned] == [
        ("06-17 09:00", "09:40"),
        ("06-17 09:50", "10:30"),
        ("06-17 10:40", "11:20"),
        ("06-17 13:00", "13:40"),  # 11:30 would run into lunch
        ("06-17 13:50", "14:30"),
        ("06-17 14:40", "15:20"),
        ("06-17 15:30", "16:10"),
        ("06-17 16:20", "17:00"),
        ("06-17 17:10", "17:50"),
        ("06-18 09:00", "09:40"),
    ]
    assert {p["place"] for p in planned} == {PLACE}
    stored = presentations.slots(app, sc.TRACK)
    assert [(s["receipt_no"], s["starts_at"], s["ends_at"]) for s in stored] == [
        (p["receipt_no"], p["starts_at"], p["ends_at"]) for p in planned
    ]
    assert [s["name"] for s in stored][:2] == ["세종특별자치시", "시흥시"]


def test_every_slot_is_inside_the_window_on_a_working_day_outside_lunch_and_apart(reviewed: App) -> None:
    planned = presentations.schedule(reviewed, sc.TRACK, OFFICE)

    for p in planned:
        starts, ends = _local(p["starts_at"]), _local(p["ends_at"])
        assert WINDOW[0] <= p["starts_at"] < p["ends_at"] <= WINDOW[1], p
        assert ends - starts == (kst("2024-06-17 09:40") - kst("2024-06-17 09:00")), p
        assert starts.date() == ends.date() and starts.weekday() < 5, p
        assert time(9, 0) <= starts.time() and ends.time() <= time(18, 0), p
        assert ends.time() <= time(12, 0) or starts.time() >= time(13, 0), p
    ordered = sorted(planned, key=lambda p: p["starts_at"])
    assert ordered == planned
    for first, second in pairwise(ordered):
        assert (second["starts_at"] - first["ends_at"]).total_seconds() >= 10 * 60, (first, second)


def test_each_applicant_is_invited_with_an_ics_of_its_slot(reviewed: App) -> None:
    app = reviewed
    planned = presentations.schedule(app, sc.TRACK, OFFICE)
    rows = sc.apps(app)

    with read(app.db) as conn:
        invitations = {
            r.application_id: r
            for r in conn.execute(
                sa.select(OUTBOX.c.application_id, OUTBOX.c.ics, OUTBOX.c.body_text, OUTBOX.c.dedup_key).where(
                    OUTBOX.c.notice == "presentation_invitation"
                )
            )
        }
    ids = {str(r["receipt_no"]): int(r["id"]) for r in rows.values()}
    assert sorted(invitations) == sorted(ids[p["receipt_no"]] for p in planned)
    for p in planned:
        app_id = ids[p["receipt_no"]]
        invitation = invitations[app_id]
        starts = _local(p["starts_at"])
        assert invitation.ics is not None
        assert invitation.ics.startswith("BEGIN:VCALENDAR")
        assert f"DTSTART;TZID=Asia/Seoul:{starts:%Y%m%dT%H%M}00" in invitation.ics
        assert f"DTEND;TZID=Asia/Seoul:{_local(p['ends_at']):%Y%m%dT%H%M}00" in invitation.ics
        assert f"UID:presentation-{app_id}@" in invitation.ics
        assert invitation.dedup_key == f"{app_id}:presentation_invitation:slot-{starts:%Y%m%dT%H%M}"
        assert p["receipt_no"] in invitation.body_text
    sejong = invitations[int(rows["36110"]["id"])]
    assert "일시: 2024-06-17 (월) 09:00 KST ~ 2024-06-17 (월) 09:40 KST" in sejong.body_text
    assert f"장소: {PLACE}" in sejong.body_text
    assert "발표평가" in (sejong.ics or "")
    assert "Presentation evaluation" in (invitations[int(rows["44130"]["id"])].ics or "")  # 천안 reads English
    for code in ("48120", "41110"):  # disqualified: not invited
        assert "presentation_invitation" not in sc.notices(app, rows[code]["id"])
    with read(app.db) as conn:
        (detail,) = conn.execute(sa.select(EVENT.c.detail).where(EVENT.c.kind == "presentations_scheduled")).scalars()
    assert detail.count("STRONG-SMALL-2024-") == 10


def test_scheduling_again_with_the_same_slots_queues_nothing_new(reviewed: App, clock: FixedClock) -> None:
    app = reviewed
    first = presentations.schedule(app, sc.TRACK, OFFICE)
    outbox_before = _count(app, OUTBOX)
    clock.set(kst("2024-06-05 11:00"))

    again = presentations.schedule(app, sc.TRACK, OFFICE)

    assert again == first
    assert _count(app, OUTBOX) == outbox_before
    assert _invitations(app) == 10
    assert _count(app, PRESENTATION_SLOT) == 10
    assert [(s["receipt_no"], s["starts_at"]) for s in presentations.slots(app, sc.TRACK)] == [
        (p["receipt_no"], p["starts_at"]) for p in first
    ]


def test_an_application_reinstated_later_gets_its_own_slot_and_invitation(reviewed: App, clock: FixedClock) -> None:
    app = reviewed
    presentations.schedule(app, sc.TRACK, OFFICE)
    changwon = int(sc.apps(app)["48120"]["id"])
    clock.set(kst("2024-06-04 09:00"))
    objection = review.file_objection(app, changwon, "2024.4. 주민등록인구 998,000명", sc.APPLICANT_ACTOR)
    review.decide_objection(app, objection, True, "인구 998,000명 확인", OFFICE)

    planned = presentations.schedule(app, sc.TRACK, OFFICE)

    assert len(planned) == 11
    assert _count(app, PRESENTATION_SLOT) == 11
    assert sc.notices(app, changwon)[-1] == "presentation_invitation"
    starts = sorted(s["starts_at"] for s in presentations.slots(app, sc.TRACK))
    assert len(set(starts)) == 11


def test_rescheduling_after_a_withdrawal_leaves_no_two_presentations_at_the_same_time(
    reviewed: App, clock: FixedClock
) -> None:
    app = reviewed
    presentations.schedule(app, sc.TRACK, OFFICE)
    clock.set(kst("2024-06-04 09:00"))
    app.moves.apply(int(sc.apps(app)["36110"]["id"]), "withdraw", sc.APPLICANT_ACTOR)

    planned = presentations.schedule(app, sc.TRACK, OFFICE)

    assert len(planned) == 9
    listed = presentations.slots(app, sc.TRACK)
    starts = [s["starts_at"] for s in listed]
    assert len(starts) == len(set(starts)), [(s["name"], f"{_local(s['starts_at']):%m-%d %H:%M}") for s in listed]


def test_a_moved_slot_cancels_the_unsent_invitation_with_the_old_time(reviewed: App, clock: FixedClock) -> None:
    app = reviewed
    presentations.schedule(app, sc.TRACK, OFFICE)
    clock.set(kst("2024-06-04 09:00"))
    app.moves.apply(int(sc.apps(app)["36110"]["id"]), "withdraw", sc.APPLICANT_ACTOR)  # everyone after moves up

    presentations.schedule(app, sc.TRACK, OFFICE)

    siheung = int(sc.apps(app)["41390"]["id"])
    with read(app.db) as conn:
        rows = conn.execute(
            sa.select(OUTBOX.c.state, OUTBOX.c.dedup_key, OUTBOX.c.last_error)
            .where(OUTBOX.c.application_id == siheung, OUTBOX.c.notice == "presentation_invitation")
            .order_by(OUTBOX.c.id)
        ).all()
    assert [r.state for r in rows] == ["cancelled", "pending"]
    assert rows[0].last_error == "superseded by 'presentation_invitation' before it was sent"
    assert rows[1].dedup_key.endswith("slot-20240617T0900")  # 시흥 now presents first


def test_scheduling_between_the_written_part_and_the_presentations_reaches_those_in_presentation_evaluation(
    reviewed: App, clock: FixedClock
) -> None:
    app = reviewed
    sc.at(app, clock, "2024-06-12 18:00")  # start_presentation: written_ends
    assert Counter(sc.states(app).values()) == {"presentation_evaluation": 10, "disqualified": 2}
    clock.set(kst("2024-06-14 16:00"))

    planned = presentations.schedule(app, sc.TRACK, OFFICE)

    assert len(planned) == 10
    assert _invitations(app) == 10


def test_scheduling_is_refused_once_the_presentation_window_has_started(reviewed: App, clock: FixedClock) -> None:
    app = reviewed
    clock.set(WINDOW[0])

    with pytest.raises(InvalidInput) as refused:
        presentations.schedule(app, sc.TRACK, OFFICE)

    assert "track strong-small-2024: the presentation evaluation has started (2024-06-17 09:00 KST)" in str(
        refused.value
    )
    assert "slots are scheduled before it" in str(refused.value)
    assert _count(app, PRESENTATION_SLOT) == 0
    assert _invitations(app) == 0
    assert _count(app, EVENT, EVENT.c.kind == "presentations_scheduled") == 0


def test_a_refused_reschedule_keeps_the_slots_already_announced(reviewed: App, clock: FixedClock) -> None:
    app = reviewed
    planned = presentations.schedule(app, sc.TRACK, OFFICE)
    clock.set(kst("2024-06-18 10:00"))

    with pytest.raises(InvalidInput, match="has started"):
        presentations.schedule(app, sc.TRACK, OFFICE)

    assert [s["starts_at"] for s in presentations.slots(app, sc.TRACK)] == [p["starts_at"] for p in planned]
    assert _invitations(app) == 10


def test_scheduling_with_no_application_in_evaluation_is_refused(app: App, clock: FixedClock, tmp_path: Path) -> None:
    sc.prepare(app, clock, tmp_path)
    clock.set(kst("2024-06-03 10:00"))

    with pytest.raises(InvalidInput, match="track strong-small-2024 has no application in evaluation to invite"):
        presentations.schedule(app, sc.TRACK, OFFICE)

    assert _count(app, PRESENTATION_SLOT) == 0


@pytest.fixture
def long_slots_app(db_url: str, clock: FixedClock, tmp_path: Path) -> Iterator[App]:
    """The shipped config with four-hour presentations: one fits a day (13:00-17:00), three in the window."""
    config = config_copy(tmp_path, ("slot_minutes = 40", "slot_minutes = 240"))
    built = make_app(db_url, clock, config)
    yield built
    built.db.dispose()


def test_more_applications_than_the_window_has_room_for_are_refused(
    long_slots_app: App, clock: FixedClock, tmp_path: Path
) -> None:
    app = _reviewed(long_slots_app, clock, tmp_path)

    with pytest.raises(InvalidInput) as refused:
        presentations.schedule(app, sc.TRACK, OFFICE)

    message = str(refused.value)
    assert message.startswith("track strong-small-2024: 10 presentations of 240 min (+10 min between)")
    assert "from 2024-06-17 09:00 to 2024-06-19 18:00: room for 3" in message
    assert "shorten the slots or widen the presentation window" in message
    assert _count(app, PRESENTATION_SLOT) == 0
    assert _invitations(app) == 0
    assert _count(app, EVENT, EVENT.c.kind == "presentations_scheduled") == 0
