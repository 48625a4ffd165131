"""Contests, tracks with their calendars, applicants, and the caller."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path

from gongmo.states.errors import NotFound
from gongmo.states.lifecycle import Role
from gongmo.workflow.api import schemas
from gongmo.workflow.api.deps import AdminOrApplicant, Anyone, Gongmo, TrackKey
from gongmo.workflow.api.errors import Forbidden, responses
from gongmo.workflow.core import closures
from gongmo.workflow.core.config import ConfigError, Contest, Track
from gongmo.workflow.core.db import read
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.read import applicants as applicants_read

router = APIRouter(tags=["contests"])


@router.get("/me", response_model=schemas.Me, responses=responses(401))
def me(who: Anyone) -> dict[str, Any]:
    """Who this token is."""
    return {"role": who.role.value, "subject": who.subject, "token_id": who.token_id}


@router.get("/contests", responses=responses(401))
def contests(a: Gongmo, who: Anyone) -> list[dict[str, Any]]:
    """Every contest with its tracks: calendar as the database holds it (in the contest's
    zone; reschedules with who and why), the closed days it falls on, slots, eligibility
    and funding rules."""
    with read(a.db) as conn:
        kept = calendars.held(conn, a.loaded.config)
    return [
        {**_contest(c), "tracks": [_track(c, t, kept.get(t.key)) for t in c.tracks]} for c in a.loaded.config.contests
    ]


@router.get("/tracks/{track}", responses=responses(401, 404, 422))
def track(a: Gongmo, who: Anyone, track: TrackKey) -> dict[str, Any]:
    """One track: its calendar as it stands (reschedules included)."""
    try:
        c, t = a.loaded.config.track(track)
    except ConfigError:
        raise NotFound(f"no track {track!r}: see GET /contests") from None
    with read(a.db) as conn:
        kept = calendars.held(conn, a.loaded.config)
    return {**_track(c, t, kept.get(t.key)), "contest": c.key}


def _contest(c: Contest) -> dict[str, Any]:
    return {
        "key": c.key,
        "name_ko": c.name_ko,
        "name_en": c.name_en,
        "ministry": c.ministry,
        "office": c.office,
        "timezone": c.timezone,
        "national_budget_krw": c.national_budget_krw,
    }


def _track(c: Contest, t: Track, kept: dict[str, Any] | None) -> dict[str, Any]:
    tz = ZoneInfo(c.timezone)

    def local(at: datetime) -> str:
        return at.astimezone(tz).isoformat()

    calendar = {m: local(at) for m, at in kept["calendar"]} if kept is not None else None
    rescheduled = {
        m: [{**move, "from": local(move["from"]), "to": local(move["to"]), "at": local(move["at"])} for move in moves]
        for m, moves in (kept["rescheduled"] if kept is not None else {}).items()
    }
    flags = closures.flags(t.key, kept["calendar"], c.timezone, c.closures()) if kept is not None else []
    return {
        "key": t.key,
        "name_ko": t.name_ko,
        "name_en": t.name_en,
        "slots": t.slots,
        "calendar": calendar,
        "rescheduled": rescheduled,
        "closed_days": [{"milestone": f.milestone, "at": f.local.isoformat(), "why": f.why} for f in flags],
        "eligibility": t.eligibility.model_dump(mode="json"),
        "funding": t.funding.model_dump(mode="json"),
    }


@router.get("/applicants", responses=responses(401, 403))
def applicants(a: Gongmo, who: AdminOrApplicant) -> list[dict[str, Any]]:
    """The local governments that may apply (an applicant token: itself)."""
    only = [who.applicant_id] if who.role == Role.APPLICANT else None
    with read(a.db) as conn:
        rows = applicants_read.listing(conn, only)
    return [{k: v for k, v in r.items() if k != "id"} for r in rows]


@router.get("/applicants/{code}", responses=responses(401, 403, 404, 422))
def applicant(a: Gongmo, who: AdminOrApplicant, code: Annotated[str, Path(pattern=r"^[0-9]{5}$")]) -> dict[str, Any]:
    if who.role == Role.APPLICANT and code != who.subject:
        raise Forbidden(f"applicant {code} is not {who.subject}: an applicant token sees itself only")
    with read(a.db) as conn:
        row = applicants_read.by_code(conn, code)
    if row is None:
        raise NotFound(f"no applicant {code}")
    return {k: v for k, v in row.items() if k != "id"}
