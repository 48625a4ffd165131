"""Days the offices are closed: Korean public holidays (holidays.KR, which
knows substitute holidays) plus the contest's own extra closures; and when a
period counted in days ends (Korean Civil Act art. 161)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import holidays

# How the last day of a period counted in days (an objection period, the
# kickoff grace) is read: "civil_act_161" moves a last day that falls on a
# Saturday, a Sunday, a public holiday or an extra closure to the next working
# day (민법 제161조: "기간의 말일이 토요일 또는 공휴일에 해당한 때에는 기간은 그
# 익일로 만료한다"; Sundays are 공휴일 under the 관공서의 공휴일에 관한 규정);
# "calendar" ends it on the day counted, whatever day that is.
PeriodEndRule = Literal["civil_act_161", "calendar"]
PERIOD_END_RULES: tuple[PeriodEndRule, ...] = ("civil_act_161", "calendar")


class Closures:
    def __init__(
        self, years: Iterable[int], extra: Iterable[date] = (), period_end_rule: PeriodEndRule = "civil_act_161"
    ) -> None:
        self._public = holidays.country_holidays("KR", years=sorted(set(years)), language="ko")
        self._extra = set(extra)
        self.period_end_rule = period_end_rule

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

    def period_end(self, start: datetime, days: int, zone: str) -> datetime:
        """The end of a period of `days` calendar days from the instant `start`: the
        same wall-clock time `days` days later in `zone`; under "civil_act_161" a last
        day on a closed day (`why` says which) moves to the next working day. Returned
        in `start`'s own zone."""
        tz = ZoneInfo(zone)
        end = start.astimezone(tz) + timedelta(days=days)
        if self.period_end_rule == "civil_act_161":
            for _ in range(366):  # a closure list longer than a year is a config error, not a loop forever
                if self.why(end.date()) is None:
                    break
                end += timedelta(days=1)
        return end.astimezone(start.tzinfo)


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
