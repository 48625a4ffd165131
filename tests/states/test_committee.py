"""The evaluation committee: regions, conflicts, assignment; and presentation slots (pure, no database)."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from gongmo.states.calendar import plan_slots
from gongmo.states.committee import Evaluator, Seat, assign, conflict, parse_region, region_of
from gongmo.states.errors import InvalidInput

SEOUL = ZoneInfo("Asia/Seoul")


def seoul(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SEOUL)


# --------------------------------------------------------------------------
# regions
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "region"),
    [
        ("41110", "41"),  # 수원시, 경기도
        ("11680", "11"),  # 강남구, 서울
        ("42110", "51"),  # 춘천시 under the old Gangwon code
        ("51110", "51"),  # 춘천시 under the new code
        ("45111", "52"),  # 전주시 under the old Jeonbuk code
        ("52111", "52"),
    ],
)
def test_region_of_is_the_first_two_digits_with_old_codes_mapped(code: str, region: str) -> None:
    assert region_of(code) == region


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("경기도", "41"),
        ("경기", "41"),
        ("gyeonggi", "41"),
        ("Gyeonggi", "41"),
        ("GYEONGGI", "41"),
        ("41", "41"),
        (" 41 ", "41"),
        ("42", "51"),
        ("45", "52"),
        ("강원도", "51"),
        ("강원특별자치도", "51"),
        ("서울특별시", "11"),
        ("jeju", "50"),
    ],
)
def test_parse_region_accepts_names_short_names_english_names_and_codes(text: str, code: str) -> None:
    assert parse_region(text) == code


@pytest.mark.parametrize("text", ["Atlantis", "99", ""])
def test_parse_region_refuses_an_unknown_region_naming_the_value(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_region(text)
    assert str(refused.value).startswith(f"region {text!r} is not a 시·도")


# --------------------------------------------------------------------------
# conflict
# --------------------------------------------------------------------------


def test_a_declared_conflict_is_a_conflict() -> None:
    evaluator = Evaluator("kim@x", region="11", declared=frozenset({"41110"}))
    assert conflict(evaluator, "41110") == "declared a conflict with 41110"
    assert conflict(evaluator, "41110", same_region=False) == "declared a conflict with 41110"


def test_belonging_to_the_applicant_is_a_conflict() -> None:
    evaluator = Evaluator("lee@x", region="41", home_code="41110")
    assert conflict(evaluator, "41110") == "belongs to the applicant (41110)"
    assert conflict(evaluator, "41110", same_region=False) == "belongs to the applicant (41110)"


def test_the_same_region_is_a_conflict_only_when_the_track_says_so() -> None:
    evaluator = Evaluator("park@x", region="41", home_code="41130")
    assert conflict(evaluator, "41110") == "same region as the applicant (경기도)"
    assert conflict(evaluator, "41110", same_region=False) is None


def test_the_same_region_counts_under_an_old_administrative_code() -> None:
    evaluator = Evaluator("choi@x", region="51")
    assert conflict(evaluator, "42110") == "same region as the applicant (강원특별자치도)"


def test_an_evaluator_from_elsewhere_without_a_declaration_has_no_conflict() -> None:
    evaluator = Evaluator("jung@x", region="11", home_code="11680", declared=frozenset({"26110"}))
    assert conflict(evaluator, "41110") is None
    assert conflict(evaluator, "41110", same_region=False) is None


# --------------------------------------------------------------------------
# assign
# --------------------------------------------------------------------------

SEATS = [
    Seat(1, "R-1", "41110"),  # 경기 수원
    Seat(2, "R-2", "26110"),  # 부산 중구
    Seat(3, "R-3", "47110"),  # 경북 포항
    Seat(4, "R-4", "50110"),  # 제주 제주시
]
# Five evaluators from Seoul: none in conflict with any seat.
FIVE = [Evaluator(f"e{i}@x", region="11") for i in range(1, 6)]


def test_assign_balances_the_loads() -> None:
    result = assign(SEATS, FIVE, per_application=3, minimum=3)
    assert sorted(result) == [1, 2, 3, 4]
    assert all(len(keys) == 3 and len(set(keys)) == 3 for keys in result.values())
    loads = Counter(k for keys in result.values() for k in keys)
    assert sum(loads.values()) == 12
    assert set(loads) == {e.key for e in FIVE}
    assert all(load in (2, 3) for load in loads.values())


def test_assign_takes_the_least_loaded_first_then_the_key() -> None:
    result = assign(SEATS, FIVE, per_application=3, minimum=3)
    assert result == {
        1: ["e1@x", "e2@x", "e3@x"],
        2: ["e4@x", "e5@x", "e1@x"],
        3: ["e2@x", "e3@x", "e4@x"],
        4: ["e5@x", "e1@x", "e2@x"],
    }


def test_a_conflicted_evaluator_is_never_assigned() -> None:
    evaluators = [
        Evaluator("gg@x", region="41"),  # same region as R-1
        Evaluator("bs@x", region="26", home_code="26110"),  # belongs to R-2
        Evaluator("decl@x", region="11", declared=frozenset({"47110", "50110"})),
        Evaluator("s1@x", region="11"),
        Evaluator("s2@x", region="11"),
        Evaluator("s3@x", region="11"),
    ]
    result = assign(SEATS, evaluators, per_application=3, minimum=3)
    seats = {s.application_id: s for s in SEATS}
    by_key = {e.key: e for e in evaluators}
    pairs = [(app, key) for app, keys in result.items() for key in keys]
    assert len(pairs) == 12
    for app, key in pairs:
        assert conflict(by_key[key], seats[app].applicant_code) is None, (app, key)
    assert "gg@x" not in result[1]
    assert "bs@x" not in result[2]
    assert "decl@x" not in result[3] and "decl@x" not in result[4]


def test_assign_without_the_region_rule_may_seat_an_evaluator_of_the_same_region() -> None:
    evaluators = [Evaluator("gg@x", region="41"), Evaluator("s1@x", region="11")]
    assert assign([SEATS[0]], evaluators, per_application=2, minimum=2, same_region=False) == {1: ["gg@x", "s1@x"]}


def test_existing_assignments_are_kept_and_only_gaps_are_filled() -> None:
    existing = {1: ["e5@x", "e4@x", "e3@x"], 2: ["e5@x"]}
    result = assign(SEATS[:3], FIVE, per_application=3, minimum=3, existing=existing)
    assert result[1] == ["e5@x", "e4@x", "e3@x"]  # full: unchanged
    assert result[2][0] == "e5@x"  # kept, first
    assert result[2] == ["e5@x", "e1@x", "e2@x"]  # the two least loaded fill the gap
    # loads now: e1..e4 one each, e5 two; ties go by key, so e4 and e5 wait
    assert result[3] == ["e1@x", "e2@x", "e3@x"]


def test_assigning_again_with_the_result_changes_nothing() -> None:
    first = assign(SEATS, FIVE, per_application=3, minimum=3)
    assert assign(SEATS, FIVE, per_application=3, minimum=3, existing=first) == first


def test_an_application_that_cannot_get_the_minimum_is_refused_naming_it_and_the_conflicted() -> None:
    evaluators = [
        Evaluator("gg1@x", region="41"),
        Evaluator("gg2@x", region="41", home_code="41110"),
        Evaluator("s1@x", region="11", declared=frozenset({"41110"})),
        Evaluator("s2@x", region="11"),
    ]
    with pytest.raises(InvalidInput) as refused:
        assign(SEATS[:2], evaluators, per_application=3, minimum=3)
    message = str(refused.value)
    assert message == (
        "application R-1 (41110): 1 evaluator(s) without a conflict, 3 needed; in conflict:"
        " gg1@x (same region as the applicant (경기도)),"
        " gg2@x (belongs to the applicant (41110)),"
        " s1@x (declared a conflict with 41110)"
        ". Import more evaluators, or lower evaluation.minimum_evaluators; nothing assigned"
    )
    assert "R-2" not in message  # R-2 can get three: gg1, gg2, s1/s2 have no conflict with 부산


def test_every_application_short_of_the_minimum_is_named() -> None:
    evaluators = [Evaluator("gg@x", region="41"), Evaluator("bs@x", region="26")]
    with pytest.raises(InvalidInput) as refused:
        assign(SEATS[:2], evaluators, per_application=2, minimum=2)
    message = str(refused.value)
    assert "application R-1 (41110): 1 evaluator(s) without a conflict, 2 needed; in conflict: gg@x" in message
    assert "application R-2 (26110): 1 evaluator(s) without a conflict, 2 needed; in conflict: bs@x" in message
    assert message.endswith("nothing assigned")


def test_with_a_lower_minimum_an_application_gets_the_evaluators_without_a_conflict() -> None:
    evaluators = [
        Evaluator("gg@x", region="41"),
        Evaluator("s1@x", region="11"),
        Evaluator("s2@x", region="11"),
    ]
    result = assign(SEATS[:2], evaluators, per_application=3, minimum=2)
    assert result[1] == ["s1@x", "s2@x"]
    assert sorted(result[2]) == ["gg@x", "s1@x", "s2@x"]


# --------------------------------------------------------------------------
# plan_slots
# --------------------------------------------------------------------------

OFFICE = (time(9, 0), time(18, 0))
LUNCH = (time(12, 0), time(13, 0))
STARTS = seoul("2024-06-17 09:00")  # Monday
ENDS = seoul("2024-06-19 18:00")  # Wednesday
CLOSED = {date(2024, 6, 18)}  # Tuesday


def test_plan_slots_places_twelve_presentations_around_lunch_and_a_closed_day() -> None:
    slots = plan_slots(12, STARTS, ENDS, 40, 10, OFFICE, CLOSED, LUNCH)
    assert len(slots) == 12
    for start, end in slots:
        assert end - start == timedelta(minutes=40)
        assert start.tzinfo is SEOUL
        assert start >= STARTS and end <= ENDS
        assert time(9, 0) <= start.time() and end.time() <= time(18, 0)
        lunch_start = datetime.combine(start.date(), LUNCH[0], tzinfo=SEOUL)
        lunch_end = datetime.combine(start.date(), LUNCH[1], tzinfo=SEOUL)
        assert end <= lunch_start or start >= lunch_end, (start, end)
        assert start.date() != date(2024, 6, 18)
    for (_, end), (start, _) in pairwise(slots):
        assert start >= end + timedelta(minutes=10)


def test_plan_slots_gives_nine_on_monday_and_the_rest_on_wednesday() -> None:
    slots = plan_slots(12, STARTS, ENDS, 40, 10, OFFICE, CLOSED, LUNCH)
    assert [f"{s:%a %H:%M}-{e:%H:%M}" for s, e in slots] == [
        "Mon 09:00-09:40",
        "Mon 09:50-10:30",
        "Mon 10:40-11:20",
        "Mon 13:00-13:40",  # 11:30-12:10 would overlap lunch
        "Mon 13:50-14:30",
        "Mon 14:40-15:20",
        "Mon 15:30-16:10",
        "Mon 16:20-17:00",
        "Mon 17:10-17:50",
        "Wed 09:00-09:40",
        "Wed 09:50-10:30",
        "Wed 10:40-11:20",
    ]


def test_plan_slots_too_many_is_refused_saying_how_many_fit() -> None:
    with pytest.raises(ValueError, match="room for 18;") as refused:
        plan_slots(19, STARTS, ENDS, 40, 10, OFFICE, CLOSED, LUNCH)
    assert str(refused.value).startswith(
        "19 presentations of 40 min (+10 min between) do not fit the working hours 09:00-18:00"
        " from 2024-06-17 09:00 to 2024-06-19 18:00"
    )


def test_plan_slots_exactly_the_room_fits() -> None:
    slots = plan_slots(18, STARTS, ENDS, 40, 10, OFFICE, CLOSED, LUNCH)
    assert len(slots) == 18
    assert slots[-1] == (seoul("2024-06-19 17:10"), seoul("2024-06-19 17:50"))


def test_plan_slots_respects_a_window_that_starts_and_ends_mid_day() -> None:
    slots = plan_slots(3, seoul("2024-06-17 16:00"), seoul("2024-06-19 10:00"), 40, 10, OFFICE, CLOSED, LUNCH)
    assert slots == [
        (seoul("2024-06-17 16:00"), seoul("2024-06-17 16:40")),
        (seoul("2024-06-17 16:50"), seoul("2024-06-17 17:30")),
        (seoul("2024-06-19 09:00"), seoul("2024-06-19 09:40")),
    ]
    with pytest.raises(ValueError, match="room for 3;"):
        plan_slots(4, seoul("2024-06-17 16:00"), seoul("2024-06-19 10:00"), 40, 10, OFFICE, CLOSED, LUNCH)
