"""The office console's contests page (/office): every contest and track, with the funnel of its
applications per state, the slots and national budget taken, the next deadline with a countdown,
and warnings (deadlines failed or held for the office, dead mail, open objections, results under
embargo). The other office pages live in their own modules beside this one.

Times are shown in the contest's zone (KST); the countdown is written by the server from the
clock's now, and static/console.js keeps it moving from the element's data attributes
(data-due, data-now: the injected clock's instant, so a rehearsal's clock counts right too).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gongmo.notifications.render import MILESTONES
from gongmo.states.lifecycle import APPLICATION as LIFECYCLE
from gongmo.workflow.core.db import read
from gongmo.workflow.read import overview, visibility
from gongmo.workflow.web import pages, words
from gongmo.workflow.web.auth import Office

router = APIRouter(include_in_schema=False)

words.register(
    {
        "contests.title": ("공모 현황", "Contests"),
        "contests.track": ("유형", "Track"),
        "contests.total": ("전체", "Total"),
        "contests.none": ("아직 신청이 없습니다", "No applications yet"),
        "contests.funnel": ("단계별 신청", "Applications by state"),
        "contests.slots": ("선정", "Selected"),
        "contests.slots_of": ("{used} / {slots}곳", "{used} of {slots} sites"),
        "contests.budget": ("국비", "National budget"),
        "contests.budget_of": ("{used} / {budget}원", "KRW {used} of {budget}"),
        "contests.next": ("다음 일정", "Next deadline"),
        "contests.no_next": ("남은 일정이 없습니다", "No deadline left"),
        "contests.warnings": ("확인이 필요합니다", "Needs attention"),
        "contests.ok": ("확인할 문제가 없습니다", "Nothing needs attention"),
        "warn.blocked_failed": (
            "일정 {name} 실행 실패 ({attempts}회): {error}; 뒤의 일정 {waiting}건이 대기 중",
            "deadline {name} failed ({attempts} tries): {error}; {waiting} due deadline(s) wait behind it",
        ),
        "warn.blocked_held": (
            "일정 {name} 사무국 결정 대기: {error}; 뒤의 일정 {waiting}건이 대기 중",
            "deadline {name} held for the office: {error}; {waiting} due deadline(s) wait behind it",
        ),
        "warn.dead": ("발송 실패 메일 {count}건", "{count} dead notice(s)"),
        "warn.objections": ("미결 이의신청 {count}건: {listed}", "{count} open objection(s): {listed}"),
        "warn.embargo": (
            "결과 비공개 중 (아직 발표 전): 결과 통지가 보류되어 있습니다",
            "results under embargo (not yet released): the result notices are held",
        ),
        "time.in": ("{span} 후", "in {span}"),
        "time.ago": ("{span} 지남", "{span} ago"),
        "time.now": ("지금", "now"),
        "time.d": ("{n}일", "{n} d"),
        "time.h": ("{n}시간", "{n} h"),
        "time.min": ("{n}분", "{n} min"),
    }
)


def kst(value: datetime | None, zone: str = "Asia/Seoul") -> str:
    """An instant as the office reads it: local time with the zone's abbreviation (KST)."""
    return "" if value is None else f"{value.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M %Z}"


def countdown(due: datetime, now: datetime, lang: str) -> str:
    """'in 2 h 14 min' / '3 d 2 h ago' (the two largest units; console.js writes the same)."""
    t = words.translator(lang)
    seconds = int((due - now).total_seconds())
    if abs(seconds) < 60:
        return str(t("time.now"))
    return str(t("time.in" if seconds > 0 else "time.ago", span=span(abs(seconds), lang)))


def span(seconds: float, lang: str) -> str:
    """A duration in its two largest units: '2 h 14 min', '3일 2시간' (under a minute: '0 min')."""
    t = words.translator(lang)
    left = int(seconds) // 60
    units = [("time.d", left // 1440), ("time.h", left % 1440 // 60), ("time.min", left % 60)]
    while len(units) > 1 and units[0][1] == 0:
        units.pop(0)
    return " ".join(t(key, n=n) for key, n in units[:2] if n) or str(t("time.min", n=0))


def milestone(name: str, lang: str) -> str:
    return MILESTONES.get(lang, MILESTONES["ko"]).get(name, name)


def helpers(lang: str) -> dict[str, Any]:
    """What the office's templates use to show times and milestones."""
    return {
        "kst": kst,
        "countdown": lambda due, now: countdown(due, now, lang),
        "span": lambda seconds: span(seconds, lang),
        "milestone": lambda name: milestone(name, lang),
        "epoch_ms": lambda value: int(value.timestamp() * 1000),
    }


@router.get("/office", response_class=HTMLResponse)
def contests(request: Request, who: Office) -> HTMLResponse:
    a = pages.gongmo(request)
    now = a.clock.now()
    with read(a.db) as conn:
        counts = visibility.state_counts(conn, who)
        seen = overview.tracks(conn, now)
    states = [s.name for s in LIFECYCLE.states]
    tracks = []
    for contest in a.loaded.config.contests:
        for track in contest.tracks:
            funnel = {state: counts.get((track.key, state), 0) for state in states}
            tracks.append(
                {
                    "contest": contest,
                    "track": track,
                    "funnel": funnel,
                    "total": sum(funnel.values()),
                    "seen": seen.get(track.key) or overview.TrackOverview(track.key),
                }
            )
    return pages.render(
        request, "office/contests.html", tracks=tracks, states=LIFECYCLE.states, **helpers(pages.language(request))
    )
