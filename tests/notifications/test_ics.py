"""notifications.ics: the .ics attachments for a track's milestones and a presentation slot."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Component

from gongmo.notifications.ics import Milestone, presentation_slot, track_calendar

SEOUL = "Asia/Seoul"
DOMAIN = "gongmo.example.kr"
NOW = datetime(2021, 12, 1, 0, 0, tzinfo=UTC)
CONTEST = "2022년 스마트시티 챌린지"
TRACK = "본사업"

# 2021-12-29 18:00 KST is 09:00 UTC.
MILESTONES = (
    Milestone("receipt_opens", "접수 시작", datetime(2021, 12, 20, 0, 0, tzinfo=UTC)),
    Milestone("receipt_closes", "접수 마감", datetime(2021, 12, 29, 9, 0, tzinfo=UTC)),
    Milestone("selection_at", "선정 발표", datetime(2022, 3, 2, 1, 0, tzinfo=UTC)),
)


def track(**overrides: Any) -> bytes:
    kwargs: dict[str, Any] = {
        "contest_name": CONTEST,
        "track_name": TRACK,
        "track_key": "sc2022-main",
        "milestones": MILESTONES,
        "zone": SEOUL,
        "uid_domain": DOMAIN,
        "now": NOW,
    }
    kwargs.update(overrides)
    return track_calendar(**kwargs)


def slot(**overrides: Any) -> bytes:
    kwargs: dict[str, Any] = {
        "contest_name": CONTEST,
        "track_name": TRACK,
        "application_id": 42,
        "receipt_no": "SC-2022-0042",
        "starts": datetime(2022, 2, 15, 5, 0, tzinfo=UTC),  # 14:00 KST
        "ends": datetime(2022, 2, 15, 5, 30, tzinfo=UTC),
        "place": "세종 국토교통부 대회의실",
        "zone": SEOUL,
        "uid_domain": DOMAIN,
        "now": NOW,
    }
    kwargs.update(overrides)
    return presentation_slot(**kwargs)


def events(data: bytes) -> list[Component]:
    return list(Calendar.from_ical(data).walk("VEVENT"))


def by_uid(data: bytes) -> dict[str, Component]:
    return {str(event["UID"]): event for event in events(data)}


def as_utc(value: datetime) -> datetime:
    assert value.tzinfo is not None
    return value.astimezone(UTC)


# --- track_calendar -------------------------------------------------------------------------------


def test_track_calendar_round_trips() -> None:
    data = track()
    calendar = Calendar.from_ical(data)
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert str(calendar["PRODID"]) == "-//gongmo//gongmo//KO"
    assert str(calendar["VERSION"]) == "2.0"
    parsed = events(data)
    assert len(parsed) == len(MILESTONES)
    for event, milestone in zip(parsed, MILESTONES, strict=True):
        start = event.decoded("DTSTART")
        assert as_utc(start) == milestone.at
        assert event["DTSTART"].params["TZID"] == SEOUL
        assert event.decoded("DTEND") == start  # an instant: zero-length event
        assert str(event["TRANSP"]) == "TRANSPARENT"
        assert event.decoded("DTSTAMP") == NOW
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == [SEOUL]
    assert b"DTSTART;TZID=Asia/Seoul:20211229T180000\r\n" in data
    assert b"DTSTAMP:20211201T000000Z\r\n" in data


def test_vtimezone_comes_before_the_events() -> None:
    text = track().decode()
    assert text.index("BEGIN:VTIMEZONE") < text.index("BEGIN:VEVENT")


def test_summary_prefix_and_korean_text_survive() -> None:
    summaries = [str(event["SUMMARY"]) for event in events(track())]
    assert summaries == [f"[{CONTEST} · {TRACK}] {m.label}" for m in MILESTONES]
    assert any("접수 마감" in summary for summary in summaries)


def test_long_korean_description_survives_line_folding() -> None:
    description = "제출 서류는 온라인으로만 접수합니다; 우편, 방문 접수는 받지 않습니다.\n문의: 스마트도시과 " * 5
    data = track(description=description)
    assert max(len(line) for line in data.split(b"\r\n")) <= 75  # folded to 75 octets
    for event in events(data):
        assert str(event["DESCRIPTION"]) == description


def test_no_description_property_when_empty() -> None:
    assert all("DESCRIPTION" not in event for event in events(track()))


def test_uids_are_stable_and_distinct() -> None:
    first = track()
    assert track() == first  # deterministic: same input, same bytes
    uids = [str(event["UID"]) for event in events(first)]
    assert uids == [f"sc2022-main-{m.key}@{DOMAIN}" for m in MILESTONES]
    assert len(set(uids)) == len(uids)

    later = NOW + timedelta(days=3)
    resent = track(now=later)
    assert [str(event["UID"]) for event in events(resent)] == uids
    assert {event.decoded("DTSTAMP") for event in events(resent)} == {later}
    # only DTSTAMP differs
    assert resent.replace(b"20211204T000000Z", b"20211201T000000Z") == first


def test_alarm_one_day_before_receipt_closes_only() -> None:
    parsed = by_uid(track())
    closes = parsed[f"sc2022-main-receipt_closes@{DOMAIN}"]
    [alarm] = closes.walk("VALARM")
    assert str(alarm["ACTION"]) == "DISPLAY"
    assert alarm.decoded("TRIGGER") == timedelta(days=-1)
    assert str(alarm["DESCRIPTION"]) == f"[{CONTEST} · {TRACK}] 접수 마감"
    assert b"TRIGGER:-P1D\r\n" in track()
    for uid, event in parsed.items():
        if uid != f"sc2022-main-receipt_closes@{DOMAIN}":
            assert event.walk("VALARM") == []


def test_offset_of_the_input_does_not_matter() -> None:
    shifted = tuple(Milestone(m.key, m.label, m.at.astimezone(ZoneInfo("America/New_York"))) for m in MILESTONES)
    assert track(milestones=shifted) == track()


def test_microseconds_are_truncated() -> None:
    fuzzy = tuple(Milestone(m.key, m.label, m.at + timedelta(microseconds=999_999)) for m in MILESTONES)
    for event, milestone in zip(events(track(milestones=fuzzy)), MILESTONES, strict=True):
        assert as_utc(event.decoded("DTSTART")) == milestone.at


def test_berlin_across_dst() -> None:
    summer = Milestone("receipt_opens", "Annahme beginnt", datetime(2022, 7, 1, 10, 0, tzinfo=UTC))
    winter = Milestone("receipt_closes", "Annahme endet", datetime(2022, 12, 1, 10, 0, tzinfo=UTC))
    data = track(milestones=(summer, winter), zone="Europe/Berlin")
    calendar = Calendar.from_ical(data)
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]
    starts = [event.decoded("DTSTART") for event in events(data)]
    assert [start.utcoffset() for start in starts] == [timedelta(hours=2), timedelta(hours=1)]
    assert [as_utc(start) for start in starts] == [summer.at, winter.at]
    assert b"DTSTART;TZID=Europe/Berlin:20220701T120000\r\n" in data
    assert b"DTSTART;TZID=Europe/Berlin:20221201T110000\r\n" in data
    # the VTIMEZONE itself knows both offsets
    vtimezone = calendar.walk("VTIMEZONE")[0]
    offsets = {sub.decoded("TZOFFSETTO") for sub in vtimezone.subcomponents}
    assert {timedelta(hours=1), timedelta(hours=2)} <= offsets


def test_naive_milestone_is_refused() -> None:
    naive = (*MILESTONES, Milestone("kickoff_due", "세부 실시계획 제출 기한", datetime(2022, 4, 1, 18, 0)))
    with pytest.raises(ValueError, match=r"milestones\[3\]\.at \(kickoff_due\)"):
        track(milestones=naive)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\bnow\b"):
        track(now=datetime(2021, 12, 1))


def test_repeated_milestone_key_is_refused() -> None:
    with pytest.raises(ValueError, match="receipt_closes"):
        track(milestones=(*MILESTONES, MILESTONES[1]))


def test_empty_milestones_are_refused() -> None:
    with pytest.raises(ValueError, match="milestones"):
        track(milestones=())


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="zone"):
        track(zone="Asia/Nowhere")


# --- presentation_slot ----------------------------------------------------------------------------


def test_presentation_slot() -> None:
    data = slot()
    calendar = Calendar.from_ical(data)
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == [SEOUL]
    [event] = events(data)
    assert str(event["UID"]) == f"presentation-42@{DOMAIN}"
    assert str(event["LOCATION"]) == "세종 국토교통부 대회의실"
    assert str(event["SUMMARY"]) == f"[{CONTEST} · {TRACK}] 발표평가 (SC-2022-0042)"
    assert event["DTSTART"].params["TZID"] == SEOUL
    assert event["DTEND"].params["TZID"] == SEOUL
    assert as_utc(event.decoded("DTSTART")) == datetime(2022, 2, 15, 5, 0, tzinfo=UTC)
    assert as_utc(event.decoded("DTEND")) == datetime(2022, 2, 15, 5, 30, tzinfo=UTC)
    assert b"DTSTART;TZID=Asia/Seoul:20220215T140000\r\n" in data
    assert b"DTEND;TZID=Asia/Seoul:20220215T143000\r\n" in data
    assert event.decoded("DTSTAMP") == NOW
    [alarm] = event.walk("VALARM")
    assert str(alarm["ACTION"]) == "DISPLAY"
    assert alarm.decoded("TRIGGER") == timedelta(hours=-1)
    assert b"TRIGGER:-PT1H\r\n" in data


def test_presentation_slot_label_and_description() -> None:
    [event] = events(slot(label="Presentation", description="발표 10분, 질의응답 20분"))
    assert str(event["SUMMARY"]) == f"[{CONTEST} · {TRACK}] Presentation (SC-2022-0042)"
    assert str(event["DESCRIPTION"]) == "발표 10분, 질의응답 20분"


def test_presentation_slot_uid_is_stable() -> None:
    assert slot() == slot()
    moved = slot(starts=datetime(2022, 2, 16, 5, 0, tzinfo=UTC), ends=datetime(2022, 2, 16, 6, 0, tzinfo=UTC))
    assert [str(event["UID"]) for event in events(moved)] == [f"presentation-42@{DOMAIN}"]
    assert [str(event["UID"]) for event in events(slot(application_id=43))] == [f"presentation-43@{DOMAIN}"]


@pytest.mark.parametrize("field", ["starts", "ends", "now"])
def test_presentation_slot_refuses_naive(field: str) -> None:
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        slot(**{field: datetime(2022, 2, 15, 14, 0)})


# half a second: both ends are written as the same whole second
@pytest.mark.parametrize("length", [timedelta(0), timedelta(minutes=-30), timedelta(microseconds=500_000)])
def test_presentation_slot_refuses_ends_not_after_starts(length: timedelta) -> None:
    starts = datetime(2022, 2, 15, 5, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match=r"ends .* must be after starts"):
        slot(starts=starts, ends=starts + length)


# --- layering -------------------------------------------------------------------------------------


def test_ics_does_not_import_workflow() -> None:
    source = Path(__file__).resolve().parents[2] / "notifications" / "ics.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not any(name == "workflow" or name.startswith("workflow.") for name in imported)
