"""The office console's contests page (/office): every contest and track, with the funnel of its
applications per state. The other office pages live in their own modules beside this one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gongmo.states.lifecycle import APPLICATION as LIFECYCLE
from gongmo.workflow.core.db import read
from gongmo.workflow.read import visibility
from gongmo.workflow.web import pages, words
from gongmo.workflow.web.auth import Office

router = APIRouter(include_in_schema=False)

words.register(
    {
        "contests.title": ("공모 현황", "Contests"),
        "contests.track": ("유형", "Track"),
        "contests.total": ("전체", "Total"),
        "contests.none": ("아직 신청이 없습니다", "No applications yet"),
    }
)


@router.get("/office", response_class=HTMLResponse)
def contests(request: Request, who: Office) -> HTMLResponse:
    a = pages.gongmo(request)
    with read(a.db) as conn:
        counts = visibility.state_counts(conn, who)
    states = [s.name for s in LIFECYCLE.states]
    tracks = []
    for contest in a.loaded.config.contests:
        for track in contest.tracks:
            funnel = {state: counts.get((track.key, state), 0) for state in states}
            tracks.append({"contest": contest, "track": track, "funnel": funnel, "total": sum(funnel.values())})
    return pages.render(request, "office/contests.html", tracks=tracks, states=LIFECYCLE.states)
