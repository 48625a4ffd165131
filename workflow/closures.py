"""Days the offices are closed: Korean public holidays (holidays.KR, which
knows substitute holidays) plus the contest's own extra closures."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import holidays


class Closures:
    def __init__(self, years: Iterable[int], extra: Iterable[date] = ()) -> None:
        self._public = holidays.country_holidays("KR", years=sorted(set(years)), language="ko")
        self._extra = set(extra)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and (day in self._extra or day in self._public)

    def why(self, day: date) -> str | None:
        if day in self._extra:
            return "extra closure (config)"
        name = self._public.get(day)
        if name:
            return str(name)
        if day.weekday() >= 5:
            return "토요일" if day.weekday() == 5 else "일요일"
        return None


@dataclass(frozen=True)
class Flag:
    track: str
    milestone: str
    local: datetime
    why: str

    def line(self) -> str:
        return f"{self.track}: {self.milestone} {self.local:%Y-%m-%d %H:%M %Z} falls on a closed day ({self.why})"


def flags(track_key: str, calendar: Iterable[tuple[str, datetime]], zone: str, closures: Closures) -> list[Flag]:
    """Milestones that fall on a public holiday, an extra closure or a weekend."""
    tz = ZoneInfo(zone)
    found = []
    for milestone, at in calendar:
        local = at.astimezone(tz)
        why = closures.why(local.date())
        if why:
            found.append(Flag(track_key, milestone, local, why))
    return found
