"""Pure calendar maths: working days and reminder offsets. `now` is passed in."""

from __future__ import annotations

import re
from collections.abc import Container
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WORKING_DAYS = re.compile(r"^\s*([a-z_]+)\s*\+\s*(\d+)\s+working\s+days?\s*$")
REMINDER = re.compile(r"^\s*(?:D-(\d+)\s+(?:(working)\s+days?\s+)?(\d{1,2}):(\d{2})|-(\d+)h)\s*$")
# Bounds that keep the maths fast and inside datetime's range: a working-days
# rule spans at most about ten years, a reminder goes at most a year early.
MAX_WORKING_DAYS = 2500
MAX_REMINDER_DAYS = 365
_TOO_MANY = 10**9  # what a count of ten digits or more is read as (int() refuses 4,300 digits)


def is_working_day(day: date, closed: Container[date]) -> bool:
    return day.weekday() < 5 and day not in closed


def add_working_days(start: datetime, days: int, closed: Container[date]) -> datetime:
    """`days` working days after `start` (a local time), same time of day.

    Refuses (ValueError) a negative count, more than MAX_WORKING_DAYS, and a
    result past 9999-12-31."""
    if days < 0:
        raise ValueError("a number of working days cannot be negative")
    if days > MAX_WORKING_DAYS:
        raise ValueError(
            f"more than {MAX_WORKING_DAYS} working days (about ten years):"
            f" count at most {MAX_WORKING_DAYS}, or write the date-time itself"
        )
    current = start
    remaining = days
    try:
        while remaining:
            current += timedelta(days=1)
            if is_working_day(current.date(), closed):
                remaining -= 1
    except OverflowError:
        raise ValueError(
            f"{days} working days after {start.date().isoformat()} run past 9999-12-31: write an earlier date-time"
        ) from None
    return current


def add_local_days(instant: datetime, days: int, zone: str) -> datetime:
    """`days` calendar days later at the same wall-clock time in `zone` (18:00
    stays 18:00 across a daylight-saving change), in the instant's own zone."""
    later = instant.astimezone(ZoneInfo(zone)) + timedelta(days=days)
    return later.astimezone(instant.tzinfo)


def parse_working_days(text: str) -> tuple[str, int] | None:
    """'receipt_closes + 5 working days' -> ('receipt_closes', 5)."""
    match = WORKING_DAYS.match(text)
    return (match.group(1), _count(match.group(2))) if match else None


def _count(digits: str) -> int:
    """The number `digits` spell, or _TOO_MANY for ten digits or more."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) < 10 else _TOO_MANY


def _quoted(text: str, limit: int = 40) -> str:
    """`text` as repr() writes it (control characters escaped), shortened to `limit` characters."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def reminder_instant(spec: str, deadline_local: datetime, closed: Container[date] = ()) -> datetime:
    """When a reminder fires, in the deadline's zone.

    'D-3 09:00' is 09:00 three calendar days before the deadline's day;
    'D-2 working days 09:00' is 09:00 two working days before it (weekends
    and `closed` skipped, the same rule as 'receipt_closes + 2 working days'
    counts forward); '-3h' is three hours before the deadline.
    """
    match = REMINDER.match(spec)
    problem = (
        f"reminder {_quoted(spec)}: write 'D-N HH:MM' (e.g. 'D-3 09:00'),"
        " 'D-N working days HH:MM' (e.g. 'D-2 working days 09:00') or '-Nh' (e.g. '-3h')"
    )
    if not match:
        raise ValueError(problem)
    days, working, hour, minute, hours = match.groups()
    if _count(hours if days is None else days) > (MAX_REMINDER_DAYS if hours is None else 24 * MAX_REMINDER_DAYS):
        raise ValueError(
            f"reminder {_quoted(spec)} is too early: write at most D-{MAX_REMINDER_DAYS} HH:MM"
            f" or -{24 * MAX_REMINDER_DAYS}h (a year before the deadline)"
        )
    try:
        if hours is not None:  # elapsed hours, also across a daylight-saving change
            utc = deadline_local.astimezone(UTC) - timedelta(hours=_count(hours))
            return utc.astimezone(deadline_local.tzinfo)
        if int(hour) > 23 or int(minute) > 59:
            raise ValueError(problem + " with a time from 00:00 to 23:59")
        if working:
            day = subtract_working_days(deadline_local.date(), _count(days), closed)
        else:
            day = deadline_local.date() - timedelta(days=_count(days))
        return datetime.combine(day, time(int(hour), int(minute)), tzinfo=deadline_local.tzinfo)
    except OverflowError:
        raise ValueError(
            f"reminder {_quoted(spec)} falls before 0001-01-01 (deadline {deadline_local.isoformat(' ', 'minutes')}):"
            " write a later deadline or a smaller offset"
        ) from None


def subtract_working_days(day: date, days: int, closed: Container[date]) -> date:
    """The working day `days` working days before `day` (0: `day` itself, even if closed)."""
    current = day
    remaining = days
    while remaining:
        current -= timedelta(days=1)
        if is_working_day(current, closed):
            remaining -= 1
    return current


def plan_slots(
    count: int,
    starts: datetime,
    ends: datetime,
    minutes: int,
    gap_minutes: int,
    day_hours: tuple[time, time],
    closed: Container[date],
    lunch: tuple[time, time] | None = None,
) -> list[tuple[datetime, datetime]]:
    """`count` consecutive slots of `minutes` (with `gap_minutes` between
    them) on working days, inside office hours and outside lunch, within
    [starts, ends) given as local times. Raises ValueError when they do not fit."""
    length = timedelta(minutes=minutes)
    step = timedelta(minutes=minutes + gap_minutes)
    slots: list[tuple[datetime, datetime]] = []
    day = starts.date()
    while len(slots) < count and day <= ends.date():
        if is_working_day(day, closed):
            at = max(starts, datetime.combine(day, day_hours[0], tzinfo=starts.tzinfo))
            close = min(ends, datetime.combine(day, day_hours[1], tzinfo=starts.tzinfo))
            while len(slots) < count and at + length <= close:
                if lunch is not None:
                    lunch_start = datetime.combine(day, lunch[0], tzinfo=starts.tzinfo)
                    lunch_end = datetime.combine(day, lunch[1], tzinfo=starts.tzinfo)
                    if at < lunch_end and at + length > lunch_start:
                        at = lunch_end
                        continue
                slots.append((at, at + length))
                at += step
        day += timedelta(days=1)
    if len(slots) < count:
        raise ValueError(
            f"{count} presentations of {minutes} min (+{gap_minutes} min between) do not fit the working hours"
            f" {day_hours[0]:%H:%M}-{day_hours[1]:%H:%M} from {starts:%Y-%m-%d %H:%M} to {ends:%Y-%m-%d %H:%M}:"
            f" room for {len(slots)}; shorten the slots or widen the presentation window"
        )
    return slots
