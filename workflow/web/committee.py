"""The office console's committee page (/office/tracks/{key}/committee): the evaluators with their
load in the track (applications assigned, sheets entered and missing, per part), the conflicts of
interest they declared, and per application how many sheets are missing. It reads
read/committee.of_track, which counts sheets as the ranking does."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.engine import Connection

from gongmo.states.errors import NotFound
from gongmo.states.lifecycle import APPLICATION as LIFECYCLE
from gongmo.workflow.core import lookups
from gongmo.workflow.core.config import ConfigError, Contest, Track
from gongmo.workflow.core.db import read
from gongmo.workflow.engine.app import App
from gongmo.workflow.read import committee as committee_rows
from gongmo.workflow.web import pages, words
from gongmo.workflow.web.auth import Office

router = APIRouter(include_in_schema=False)

words.register(
    {
        "committee.title": ("평가위원회", "Committee"),
        "committee.evaluators": ("평가위원", "Evaluators"),
        "committee.evaluator": ("평가위원", "Evaluator"),
        "committee.affiliation": ("소속", "Affiliation"),
        "committee.region": ("지역", "Region"),
        "committee.assigned": ("배정", "Assigned"),
        "committee.entered": ("입력", "Entered"),
        "committee.missing": ("미입력", "Missing"),
        "committee.conflicts": ("이해충돌", "Conflicts of interest"),
        "committee.declared": ("신고: {code} {name} ({reason}, {at})", "declared: {code} {name} ({reason}, {at})"),
        "committee.conflicted": (
            "배정 후 이해충돌: {receipt} ({why}); 점수 제외",
            "conflicted since assigned: {receipt} ({why}); not counted",
        ),
        "committee.none": ("없음", "none"),
        "committee.no_evaluators": (
            "평가위원이 없습니다: `gongmo evaluators import FILE.csv`로 등록하세요",
            "No evaluators: import the committee with `gongmo evaluators import FILE.csv`",
        ),
        "committee.applications": ("신청별 평가표", "Sheets per application"),
        "committee.no_applications": ("평가 중인 신청이 없습니다", "No application is in evaluation yet"),
        "committee.receipt": ("접수번호", "Receipt no."),
        "committee.applicant": ("신청기관", "Applicant"),
        "committee.state": ("상태", "State"),
        "committee.members": ("평가위원 수", "Evaluators"),
        "committee.not_due": ("해당 없음", "not due"),
        "committee.missing_total": (
            "미입력 평가표: 서면 {written}건, 발표 {presentation}건",
            "Sheets missing: written {written}, presentation {presentation}",
        ),
        "part.written": ("서면평가", "Written"),
        "part.presentation": ("발표평가", "Presentation"),
        "tracknav.label": ("유형 메뉴", "Track pages"),
        "tracknav.track": ("신청 목록", "Applications"),
        "tracknav.committee": ("평가위원회", "Committee"),
        "tracknav.ranking": ("순위와 선정", "Ranking and selection"),
        "tracknav.release": ("결과 공개", "Release"),
    }
)


def track_of(a: App, conn: Connection, key: str) -> tuple[Contest, Track, Any]:
    """The track's config and row, or a 404 that names where the tracks are listed."""
    try:
        contest, track = a.loaded.config.track(key)
    except ConfigError:
        raise NotFound(f"no track {key!r}: see /office") from None
    return contest, track, lookups.track_by_key(conn, a.loaded.config, key)


def heading(contest: Contest, track: Track, lang: str) -> str:
    """'contest · track' in the page's language."""
    if lang == "en":
        return f"{contest.name_en} · {track.name_en}"
    return f"{contest.name_ko} · {track.name_ko}"


def state_labels(lang: str) -> dict[str, str]:
    return {s.name: s.label_en if lang == "en" else s.label_ko for s in LIFECYCLE.states}


@router.get("/office/tracks/{key}/committee", response_class=HTMLResponse)
def committee_page(request: Request, key: str, who: Office) -> HTMLResponse:
    a = pages.gongmo(request)
    with read(a.db) as conn:
        contest, track, _ = track_of(a, conn, key)
        found = committee_rows.of_track(conn, track)
    lang = pages.language(request)
    zone = contest.timezone
    return pages.render(
        request,
        "office/committee.html",
        key=key,
        heading=heading(contest, track, lang),
        committee=found,
        parts=("written", "presentation"),
        states=state_labels(lang),
        tz=ZoneInfo(zone),
    )
