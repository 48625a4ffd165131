"""Pure calendar maths: working days and reminder offsets (no database, no clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gongmo.states.calendar import (
    MAX_REMINDER_DAYS,
    MAX_WORKING_DAYS,
    add_working_days,
    is_working_day,
    parse_working_days,
    reminder_instant,
)

SEOUL = ZoneInfo("Asia/Seoul")
BERLIN = ZoneInfo("Europe/Berlin")

# Closed days of our own making (no holidays library): Children's Day's
# substitute holiday and Memorial Day 2024, and an office closure.
CLOSED = {date(2024, 5, 6), date(2024, 6, 6), date(2024, 5, 8)}


def seoul(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SEOUL)


# --------------------------------------------------------------------------
# is_working_day / add_working_days
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2024, 5, 3), True),  # Friday
        (date(2024, 5, 4), False),  # Saturday
        (date(2024, 5, 5), False),  # Sunday
        (date(2024, 5, 6), False),  # Monday, closed
        (date(2024, 5, 7), True),  # Tuesday
        (date(2024, 5, 8), False),  # Wednesday, closed
    ],
)
def test_is_working_day(day: date, working: bool) -> None:
    assert is_working_day(day, CLOSED) is working


def test_friday_plus_one_working_day_is_monday() -> None:
    friday = seoul("2024-05-10 18:00")
    assert add_working_days(friday, 1, set()) == seoul("2024-05-13 18:00")


def test_add_working_days_skips_weekend_and_closed_days_keeping_the_time() -> None:
    # Fri 05-03 +1: Sat, Sun, Mon (closed) skipped -> Tue 05-07
    assert add_working_days(seoul("2024-05-03 18:00"), 1, CLOSED) == seoul("2024-05-07 18:00")
    # +2: Wed 05-08 closed too -> Thu 05-09
    assert add_working_days(seoul("2024-05-03 18:00"), 2, CLOSED) == seoul("2024-05-09 18:00")
    # +5 from Tue 06-04 09:30: Wed 05, (Thu 06 closed), Fri 07, Mon 10, Tue 11, Wed 12
    result = add_working_days(seoul("2024-06-04 09:30"), 5, CLOSED)
    assert result == seoul("2024-06-12 09:30")
    assert (result.hour, result.minute) == (9, 30)
    assert result.tzinfo is SEOUL


def test_add_working_days_without_closed_days_counts_weekdays_only() -> None:
    assert add_working_days(seoul("2024-05-03 18:00"), 1, set()) == seoul("2024-05-06 18:00")
    assert add_working_days(seoul("2024-05-03 18:00"), 10, set()) == seoul("2024-05-17 18:00")


def test_add_working_days_starting_on_a_weekend() -> None:
    # counted from Saturday: Monday is the first working day after it
    assert add_working_days(seoul("2024-05-04 12:00"), 1, set()) == seoul("2024-05-06 12:00")


def test_zero_working_days_returns_the_start_even_on_a_closed_day() -> None:
    start = seoul("2024-05-06 18:00")  # a closed Monday
    assert add_working_days(start, 0, CLOSED) == start


def test_negative_working_days_refused() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        add_working_days(seoul("2024-05-03 18:00"), -1, CLOSED)


def test_add_working_days_keeps_wall_time_across_a_dst_change() -> None:
    # Fri 2024-03-29 18:00 CET + 1 working day = Mon 04-01 18:00 CEST
    start = datetime(2024, 3, 29, 18, tzinfo=BERLIN)
    result = add_working_days(start, 1, set())
    assert (result.date(), result.hour) == (date(2024, 4, 1), 18)
    assert result.utcoffset() == timedelta(hours=2)


class CountingClosures:
    """A Container of closed days that counts how often it is asked."""

    def __init__(self) -> None:
        self.asked = 0

    def __contains__(self, day: object) -> bool:
        self.asked += 1
        return False


def test_add_working_days_up_to_the_bound() -> None:
    assert MAX_WORKING_DAYS == 2500
    # 2500 weekdays are 500 weeks
    assert add_working_days(seoul("2024-05-03 18:00"), 2500, set()) == seoul("2024-05-03 18:00") + timedelta(weeks=500)


def test_add_working_days_refuses_more_than_the_bound_without_counting() -> None:
    closed = CountingClosures()
    with pytest.raises(ValueError) as info:
        add_working_days(seoul("2024-05-03 18:00"), 3_000_000, closed)
    assert str(info.value) == (
        "more than 2500 working days (about ten years): count at most 2500, or write the date-time itself"
    )
    assert closed.asked == 0


def test_add_working_days_past_9999_12_31_is_a_value_error() -> None:
    with pytest.raises(ValueError) as info:
        add_working_days(seoul("9999-12-01 18:00"), 30, set())
    assert str(info.value) == "30 working days after 9999-12-01 run past 9999-12-31: write an earlier date-time"


# --------------------------------------------------------------------------
# parse_working_days
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("receipt_closes + 5 working days", ("receipt_closes", 5)),
        ("receipt_closes + 1 working day", ("receipt_closes", 1)),
        ("  review_ends+3   working   days  ", ("review_ends", 3)),
        ("receipt_closes + 0 working days", ("receipt_closes", 0)),
    ],
)
def test_parse_working_days_accepts(text: str, parsed: tuple[str, int]) -> None:
    assert parse_working_days(text) == parsed


@pytest.mark.parametrize(
    "text",
    [
        "",
        "receipt_closes",
        "receipt_closes + 5 days",
        "receipt_closes - 5 working days",
        "receipt_closes + five working days",
        "receipt_closes + 5 business days",
        "receipt_closes + 5 working days later",
        "Receipt_Closes + 5 working days",
        "+ 5 working days",
        "2024-05-07T18:00:00",
    ],
)
def test_parse_working_days_refuses_other_text(text: str) -> None:
    assert parse_working_days(text) is None


def test_parse_working_days_reads_a_count_int_cannot_as_too_many() -> None:
    """int() refuses a string of more than 4,300 digits: such a count is read as 10**9 (then refused)."""
    assert parse_working_days(f"receipt_closes + {'9' * 5000} working days") == ("receipt_closes", 10**9)
    assert parse_working_days("receipt_closes + 000000000000003 working days") == ("receipt_closes", 3)


# --------------------------------------------------------------------------
# reminder_instant
# --------------------------------------------------------------------------

CLOSE = seoul("2024-05-29 18:00")


def test_d_minus_reminder_is_that_time_days_before() -> None:
    assert reminder_instant("D-3 09:00", CLOSE) == seoul("2024-05-26 09:00")
    assert reminder_instant("D-1 09:00", CLOSE) == seoul("2024-05-28 09:00")
    assert reminder_instant("D-0 09:30", CLOSE) == seoul("2024-05-29 09:30")


def test_d_minus_reminder_keeps_the_deadlines_zone() -> None:
    at = reminder_instant("D-3 09:00", CLOSE)
    assert at.tzinfo is SEOUL
    assert at.astimezone(UTC) == datetime(2024, 5, 26, 0, 0, tzinfo=UTC)


def test_hours_reminder_is_hours_before() -> None:
    assert reminder_instant("-3h", CLOSE) == seoul("2024-05-29 15:00")
    assert reminder_instant(" -24h ", CLOSE) == seoul("2024-05-28 18:00")


def test_d_minus_reminder_crosses_a_month() -> None:
    assert reminder_instant("D-3 09:00", seoul("2024-06-01 18:00")) == seoul("2024-05-29 09:00")


@pytest.mark.parametrize("spec", ["D3", "3h", "D-1 9", "D-1", "D-1 09", "-3", "D-3 09:00 extra", "", "h-3", "+3h"])
def test_invalid_reminder_spec_refused_with_the_accepted_forms(spec: str) -> None:
    with pytest.raises(ValueError) as info:
        reminder_instant(spec, CLOSE)
    message = str(info.value)
    assert repr(spec) in message
    assert "D-N HH:MM" in message and "-Nh" in message


def test_out_of_range_time_refused_with_the_accepted_forms() -> None:
    with pytest.raises(ValueError, match="D-N HH:MM"):
        reminder_instant("D-1 24:00", CLOSE)


@pytest.mark.parametrize(
    ("spec", "at"),
    [("D-365 09:00", seoul("2023-05-30 09:00")), ("-8760h", seoul("2023-05-30 18:00"))],
)
def test_a_reminder_up_to_a_year_before(spec: str, at: datetime) -> None:
    assert MAX_REMINDER_DAYS == 365
    assert reminder_instant(spec, CLOSE) == at


@pytest.mark.parametrize("spec", ["D-366 09:00", "-8761h", "D-99999999 09:00", "-999999999999h", f"-{'9' * 5000}h"])
def test_a_reminder_more_than_a_year_before_is_refused(spec: str) -> None:
    with pytest.raises(ValueError) as info:
        reminder_instant(spec, CLOSE)
    shown = repr(spec) if len(repr(spec)) <= 40 else repr(spec)[:37] + "..."
    assert str(info.value) == (
        f"reminder {shown} is too early: write at most D-365 HH:MM or -8760h (a year before the deadline)"
    )


@pytest.mark.parametrize("spec", ["D-3 09:00", "-72h"])
def test_a_reminder_before_0001_01_01_is_a_value_error(spec: str) -> None:
    deadline = datetime(1, 1, 2, 18, tzinfo=UTC)
    with pytest.raises(ValueError) as info:
        reminder_instant(spec, deadline)
    assert str(info.value) == (
        f"reminder {spec!r} falls before 0001-01-01 (deadline 0001-01-02 18:00+00:00):"
        " write a later deadline or a smaller offset"
    )


def test_a_long_reminder_spec_is_shortened_in_the_refusal() -> None:
    with pytest.raises(ValueError) as info:
        reminder_instant("x" * 500, CLOSE)
    assert (
        str(info.value) == "reminder '" + "x" * 36 + "...: write 'D-N HH:MM' (e.g. 'D-3 09:00'),"
        " 'D-N working days HH:MM' (e.g. 'D-2 working days 09:00') or '-Nh' (e.g. '-3h')"
    )


def test_d_minus_reminder_across_a_dst_change() -> None:
    # Europe/Berlin goes to summer time on 2024-03-31 at 02:00
    deadline = datetime(2024, 3, 31, 18, tzinfo=BERLIN)
    assert deadline.utcoffset() == timedelta(hours=2)  # CEST
    at = reminder_instant("D-1 09:00", deadline)
    assert (at.year, at.month, at.day, at.hour, at.minute) == (2024, 3, 30, 9, 0)
    assert at.utcoffset() == timedelta(hours=1)  # CET
    assert at.astimezone(UTC) == datetime(2024, 3, 30, 8, 0, tzinfo=UTC)


def test_hours_reminder_across_a_dst_change_is_elapsed_hours() -> None:
    deadline = datetime(2024, 3, 31, 4, tzinfo=BERLIN)  # 04:00 CEST = 02:00 UTC
    at = reminder_instant("-3h", deadline)
    assert deadline.astimezone(UTC) - at.astimezone(UTC) == timedelta(hours=3)
    assert at.astimezone(UTC) == datetime(2024, 3, 30, 23, 0, tzinfo=UTC)


def test_add_local_days_keeps_the_wall_clock_across_a_daylight_saving_change() -> None:
    from datetime import UTC, datetime

    from gongmo.states.calendar import add_local_days

    due = datetime(2024, 10, 20, 16, 0, tzinfo=UTC)  # 18:00 CEST in Berlin
    assert add_local_days(due, 14, "Europe/Berlin") == datetime(2024, 11, 3, 17, 0, tzinfo=UTC)  # 18:00 CET
    assert add_local_days(due, 14, "Asia/Seoul") == datetime(2024, 11, 3, 16, 0, tzinfo=UTC)  # no change in Seoul


# --------------------------------------------------------------------------
# reminders counted in working days (issue 19, point 3)
# --------------------------------------------------------------------------


def test_working_days_reminder_skips_the_weekend() -> None:
    monday_close = seoul("2024-06-03 18:00")
    # two working days before Monday 06-03 is Thursday 05-30 (not Saturday 06-01)
    assert reminder_instant("D-2 working days 09:00", monday_close, CLOSED) == seoul("2024-05-30 09:00")
    assert reminder_instant("D-1 working day 09:00", monday_close, CLOSED) == seoul("2024-05-31 09:00")
    assert reminder_instant("D-0 working days 09:00", monday_close, CLOSED) == seoul("2024-06-03 09:00")


def test_working_days_reminder_skips_the_closed_days_the_rules_skip() -> None:
    # Friday 06-07 close: the working day before is Wednesday 06-05 (06-06 is Memorial Day)
    assert reminder_instant("D-1 working days 10:30", seoul("2024-06-07 18:00"), CLOSED) == seoul("2024-06-05 10:30")
    # the same closed days as 'receipt_closes + 1 working days' forward
    start = seoul("2024-06-05 10:30")
    assert add_working_days(start, 1, CLOSED) == seoul("2024-06-07 10:30")


def test_working_days_reminder_without_closed_days_counts_weekdays() -> None:
    assert reminder_instant("D-3 working days 09:00", CLOSE) == seoul("2024-05-24 09:00")  # Wed -> Fri before


def test_working_days_reminder_is_bounded_like_the_calendar_form() -> None:
    with pytest.raises(ValueError, match="too early"):
        reminder_instant("D-366 working days 09:00", CLOSE)
    with pytest.raises(ValueError, match="D-N working days HH:MM"):
        reminder_instant("D-2 working days 25:00", CLOSE)
