"""Calendar (.ics) attachments: a track's milestones and an applicant's presentation slot.

Pure functions: no I/O and no clock reads. The caller passes `now`, which becomes DTSTAMP,
and the labels, already localised. The bytes returned are an RFC 5545 VCALENDAR with
METHOD:PUBLISH, ready to attach as ``text/calendar; method=PUBLISH; charset=UTF-8``.

Choices worth knowing:

* Times are written as local times in `zone` with a TZID parameter, and the calendar carries
  the matching VTIMEZONE (``Calendar.add_missing_timezones()``), so programs that do not know
  IANA names still place the events correctly. The VTIMEZONE covers the years of the events
  plus a year either side, instead of icalendar's fixed 1970-2038 window: the attachment stays
  small and events after 2037 are still covered.
* UIDs are derived from the data (``{track_key}-{milestone key}@{uid_domain}`` and
  ``presentation-{application_id}@{uid_domain}``), so a calendar that is sent again replaces
  the events imported earlier instead of duplicating them; DTSTAMP (= `now`, UTC) tells the
  newer copy. SEQUENCE is left at its default (0) because these functions keep no state.
* A milestone is an instant, written as a zero-length event: DTEND equal to DTSTART
  (RFC 5545 3.6.1 allows it for DATE-TIME starts). Calendar programs show that as an event at
  that time, which ``DURATION:PT0S`` or a missing DTEND do not always achieve. Milestones are
  TRANSP:TRANSPARENT so they do not mark anyone busy.
* iCalendar has whole seconds only (icalendar drops microseconds silently), so every time is
  truncated to the second before it is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Alarm, Calendar, Event

PRODID = "-//gongmo//gongmo//KO"

# How long before an event its reminder fires, by milestone key.
MILESTONE_ALARMS: dict[str, timedelta] = {"receipt_closes": timedelta(days=1)}
PRESENTATION_ALARM = timedelta(hours=1)


@dataclass(frozen=True)
class Milestone:
    key: str  # e.g. "receipt_closes"; part of the UID, so keep it stable
    label: str  # the event summary after the bracketed prefix, e.g. "접수 마감" (the caller localises)
    at: datetime  # aware; any offset, written in the calendar's zone


def track_calendar(
    *,
    contest_name: str,
    track_name: str,
    track_key: str,
    milestones: Sequence[Milestone],
    zone: str,
    uid_domain: str,
    now: datetime,
    description: str = "",
) -> bytes:
    """One VEVENT per milestone of a track; a reminder one day before the receipt closes."""
    tz = _zone(zone)
    stamp = _utc(now, "now")
    if not milestones:
        raise ValueError("milestones must not be empty: a calendar needs at least one event")
    seen: set[str] = set()
    events: list[Event] = []
    times: list[datetime] = []
    for index, milestone in enumerate(milestones):
        if milestone.key in seen:
            raise ValueError(f"milestones[{index}].key {milestone.key!r} is repeated: UIDs would collide")
        seen.add(milestone.key)
        at = _local(milestone.at, tz, f"milestones[{index}].at ({milestone.key})")
        summary = _summary(contest_name, track_name, milestone.label)
        event = _event(
            uid=f"{track_key}-{milestone.key}@{uid_domain}",
            stamp=stamp,
            summary=summary,
            starts=at,
            ends=at,
            description=description,
        )
        event.add("transp", "TRANSPARENT")
        before = MILESTONE_ALARMS.get(milestone.key)
        if before is not None:
            event.add_component(_alarm(before, summary))
        events.append(event)
        times.append(at)
    return _calendar(events, times)


def presentation_slot(
    *,
    contest_name: str,
    track_name: str,
    application_id: int,
    receipt_no: str,
    starts: datetime,
    ends: datetime,
    place: str,
    zone: str,
    uid_domain: str,
    now: datetime,
    description: str = "",
    label: str = "발표평가",
) -> bytes:
    """One VEVENT for an application's presentation slot at `place`; a reminder one hour before.

    The summary is ``[{contest_name} · {track_name}] {label} ({receipt_no})``; pass `label` to localise.
    """
    tz = _zone(zone)
    stamp = _utc(now, "now")
    local_starts = _local(starts, tz, "starts")
    local_ends = _local(ends, tz, "ends")
    if local_ends <= local_starts:
        raise ValueError(f"ends ({ends.isoformat()}) must be after starts ({starts.isoformat()})")
    summary = _summary(contest_name, track_name, f"{label} ({receipt_no})")
    event = _event(
        uid=f"presentation-{application_id}@{uid_domain}",
        stamp=stamp,
        summary=summary,
        starts=local_starts,
        ends=local_ends,
        description=description,
    )
    if place:
        event.add("location", place)
    event.add_component(_alarm(PRESENTATION_ALARM, summary))
    return _calendar([event], [local_starts, local_ends])


def _summary(contest_name: str, track_name: str, label: str) -> str:
    return f"[{contest_name} · {track_name}] {label}"


def _zone(zone: str) -> ZoneInfo:
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"zone {zone!r} is not a known IANA time zone") from exc


def _aware(value: datetime, field: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field} must be a timezone-aware datetime, got naive {value.isoformat()}")
    return value.replace(microsecond=0)


def _utc(value: datetime, field: str) -> datetime:
    return _aware(value, field).astimezone(UTC)


def _local(value: datetime, tz: ZoneInfo, field: str) -> datetime:
    return _aware(value, field).astimezone(tz)


def _event(*, uid: str, stamp: datetime, summary: str, starts: datetime, ends: datetime, description: str) -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("dtstart", starts)
    event.add("dtend", ends)
    event.add("summary", summary)
    if description:
        event.add("description", description)
    return event


def _alarm(before: timedelta, summary: str) -> Alarm:
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("trigger", -before)  # relative to DTSTART
    alarm.add("description", summary)
    return alarm


def _calendar(events: Iterable[Event], times: Iterable[datetime]) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    for event in events:
        calendar.add_component(event)
    years = [moment.year for moment in times]
    first = date(max(MINYEAR, min(years) - 1), 1, 1)
    last = date(min(MAXYEAR, max(years) + 2), 1, 1)
    # Inserted before the events; only zones named by a TZID are added (UTC times are written as ...Z).
    calendar.add_missing_timezones(first_date=first, last_date=last)
    ical: bytes = calendar.to_ical()  # typed loosely in icalendar
    return ical
