"""Running the contest: deadlines, the outbox, health, metrics."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request, Response

from gongmo.states.errors import NotFound
from gongmo.workflow.api import schemas
from gongmo.workflow.api.deps import Admin, After, Gongmo, Monitor, TrackFilter, TrackKey, track_id
from gongmo.workflow.api.errors import responses
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import DEADLINE, MAX_ID, OUTBOX
from gongmo.workflow.outbox import office
from gongmo.workflow.outbox import states as outbox_states
from gongmo.workflow.read import deadlines as deadline_rows
from gongmo.workflow.read import outbox as outbox_rows
from gongmo.workflow.runtime.metrics import CONTENT_TYPE

router = APIRouter(tags=["operations"])
OutboxState = Annotated[str | None, Query(pattern="^(" + "|".join(outbox_states.STATES) + ")$")]
OutboxId = Annotated[int, Path(ge=1, le=MAX_ID, description="The outbox row's number.")]


@router.get("/ping")
def ping() -> dict[str, bool]:
    """No work at all (no token, no database): the floor of any request."""
    return {"ok": True}


@router.get(
    "/healthz",
    responses={503: {"description": "the database or the scheduler is down (with strict=true: also degraded)"}},
)
def healthz(
    request: Request,
    response: Response,
    strict: Annotated[bool, Query(description="503 when degraded too (for checks that see codes only).")] = False,
) -> dict[str, Any]:
    """For load balancers and monitoring (no token): the database answers,
    the scheduler runs, and how much mail waits. `status`: ok; degraded (200:
    this replica serves the API, but mail is not going out: the transport
    fails or delivery has stalled; or a deadline failed, or an announcement is
    held for the office, and holds its track's later deadlines back:
    `deadlines.blocked`; `problems` says what; alert on it); down
    (503: take this replica out). Reads only: it answers through a write lock."""
    a = request.app.state.gongmo
    daemon = request.app.state.daemon
    now = a.clock.now()
    body: dict[str, Any] = {"database": {"ok": False}, "scheduler": {"running": False}, "outbox": None}
    try:
        with read(a.db) as conn:
            due = OUTBOX.c.state.in_(outbox_states.DUE) & (OUTBOX.c.next_attempt_at <= now)
            waiting, oldest = conn.execute(
                sa.select(sa.func.count(), sa.func.min(OUTBOX.c.next_attempt_at)).where(due)
            ).one()
            dead = conn.execute(sa.select(sa.func.count()).where(OUTBOX.c.state == outbox_states.DEAD)).scalar_one()
            overdue = conn.execute(
                sa.select(sa.func.count()).where(DEADLINE.c.fired_at.is_(None), DEADLINE.c.due_at <= now)
            ).scalar_one()
            from gongmo.workflow.deadlines.status import blocked as blocked_deadlines

            blocked = blocked_deadlines(conn, now)
        body["database"] = {"ok": True}
        body["outbox"] = {
            "due": int(waiting),
            "oldest_due_seconds": round((now - oldest).total_seconds(), 1) if oldest is not None else 0,
            "dead": int(dead),
        }
        # A deadline that failed (or a call held for the office) holds its track back: degraded.
        body["deadlines"] = {
            "overdue": int(overdue),
            "blocked": [
                {
                    "track": b["track"],
                    "key": b["key"],
                    "kind": b["kind"],
                    "error": b["error"].splitlines()[0][:300] if b["error"] else "",
                    "attempts": b["attempts"],
                    "waiting": b["waiting"],
                }
                for b in blocked
            ],
        }
    except Exception as exc:  # health answers whatever the failure
        body["database"] = {"ok": False, "error": str(exc).splitlines()[0]}
    details = (daemon.api_settings if daemon is not None else a.loaded.config.api).health_details
    if not details and "error" in body["database"]:  # its text names the database's host and user
        blank = "not initialised" in body["database"]["error"]
        body["database"]["error"] = "not initialised: run `gongmo init`" if blank else "unreachable"
    if daemon is not None:
        body["scheduler"] = daemon.health()
        if not details:
            body["scheduler"].pop("worker", None)  # its host name and process id: [api] health_details = true
    problems = _mail_problems(a, daemon, body, now)
    problems += [  # the deadlines' part (see body["deadlines"])
        f"deadline {b['key']} {'held for the office' if b['kind'] == 'held' else 'failed'}: {b['waiting']} due"
        f" deadline(s) of track {b['track']} wait behind it; see `gongmo deadlines {b['track']}`"
        for b in (body.get("deadlines") or {}).get("blocked", [])
    ]
    ok = body["database"]["ok"] and body["scheduler"]["running"]
    body["problems"] = problems
    body["status"] = ("degraded" if problems else "ok") if ok else "down"
    response.status_code = 200 if ok and not (strict and problems) else 503
    return body


def _mail_problems(a: Any, daemon: Any, body: dict[str, Any], now: Any) -> list[str]:
    """The daemon's mail as health sees it (no database access): is the transport
    failing (paused), and has delivery stalled (mail due for longer than
    [mail] stall_factor x deliver_seconds while no delivery pass got through)?"""
    sender = getattr(daemon, "mailer", None)
    if sender is None:
        return []
    problems = []
    body["transport"] = transport = sender.pause.health(now)
    if not transport["ok"]:
        problems.append(
            f"mail transport failing ({transport['failures']} in a row since {transport['failing_since']}):"
            f" {transport['last_error']}; nothing is sent until {transport['paused_until']}"
        )
    outbox = body.get("outbox")
    if outbox is not None:
        mail = a.loaded.config.mail
        limit = mail.stall_factor * mail.deliver_seconds
        last = sender.checked_at
        outbox["last_delivery_at"] = last.isoformat() if last else None
        idle = (now - last).total_seconds() if last else None
        waited = outbox["due"] and outbox["oldest_due_seconds"] > limit
        outbox["stalled"] = bool(waited and (idle is None or idle > limit))
        if outbox["stalled"]:
            since = f"for {idle:.0f} s" if idle is not None else "since the daemon started"
            problems.append(
                f"mail delivery stalled: {outbox['due']} notice(s) due, the oldest for"
                f" {outbox['oldest_due_seconds']:.0f} s; no delivery pass got through {since} (limit {limit:.0f} s)"
            )
    return problems


@router.get(
    "/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}, **responses(401, 403)}
)
def metrics(request: Request, who: Monitor) -> Response:
    """Prometheus text format, for a `metrics` (or admin) token: counts only, no
    personal data; a metrics token sees results under embargo folded into the
    stage before them, as an applicant would."""
    return Response(request.app.state.metrics.render(who), media_type=CONTENT_TYPE)


@router.get("/deadlines", responses=responses(401, 403, 404, 422))
def deadlines(a: Gongmo, who: Admin, track: TrackFilter = None) -> list[dict[str, Any]]:
    """Every deadline row: when due, whether and when it fired, how (on time or caught up)."""
    with read(a.db) as conn:
        if track is not None:
            track_id(a, conn, track)
        return deadline_rows.shown(deadline_rows.listing(conn, track))


@router.get("/outbox", responses=responses(401, 403, 404, 422))
def outbox(
    a: Gongmo,
    who: Admin,
    state: OutboxState = None,
    track: TrackFilter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: After = 0,
) -> dict[str, Any]:
    """Outbox rows by number (a page at a time), with the totals by state."""
    with read(a.db) as conn:
        if track is not None:
            track_id(a, conn, track)
        found = outbox_rows.page(conn, state=state, track=track, limit=limit, after=after)
    rows = found["rows"]
    return {**found, "next_after": rows[-1]["id"] if len(rows) == limit else None}


@router.get("/outbox/{outbox_id}", responses=responses(401, 403, 404, 422))
def outbox_row(a: Gongmo, who: Admin, outbox_id: OutboxId) -> dict[str, Any]:
    """One rendered notice, as it will be (or was) sent."""
    with read(a.db) as conn:
        row = outbox_rows.row(conn, outbox_id)
    if row is None:
        raise NotFound(f"no outbox row {outbox_id}: see GET /outbox")
    return {**{k: v for k, v in row.items() if k != "ics"}, "has_calendar": row["ics"] is not None}


@router.post("/outbox/{outbox_id}/retry", responses=responses(401, 403, 404, 409, 422))
def outbox_retry(a: Gongmo, who: Admin, outbox_id: OutboxId) -> dict[str, Any]:
    """Send a dead (or waiting) notice again at the next delivery."""
    was = office.retry_now(a, outbox_id)
    return {"id": outbox_id, "was": was, "state": outbox_states.PENDING}


@router.post("/outbox/retry", responses=responses(401, 403, 404, 422))
def outbox_retry_all(a: Gongmo, who: Admin, body: schemas.OutboxRetryIn) -> dict[str, Any]:
    """Send every dead (or retry) notice again at the next delivery, its attempts reset:
    all of them, or those queued since an instant, or of a track. A notice that a newer
    one of its application replaced (a result since corrected) stays as it is."""
    if body.track is not None:
        with read(a.db) as conn:
            track_id(a, conn, body.track)
    retried = office.retry_all(a, body.state, since=body.since, track=body.track)
    return {"state": body.state, "since": body.since, "track": body.track, "retried": retried}


@router.get("/tracks/{track}/outbox/held", responses=responses(401, 403, 404, 422))
def outbox_held(
    a: Gongmo, who: Admin, track: TrackKey, notice: Annotated[str, Query(pattern="^[a-z_]{1,40}$")]
) -> dict[str, Any]:
    """What a release would send: counts by language and subject."""
    with read(a.db) as conn:
        track_id(a, conn, track)
    waiting = office.held(a, track, notice)
    return {"notice": notice, "count": sum(n for per in waiting.values() for n in per.values()), "by_language": waiting}


@router.post("/tracks/{track}/outbox/release", responses=responses(401, 403, 404, 409, 422))
def outbox_release(a: Gongmo, who: Admin, track: TrackKey, body: schemas.ReleaseIn) -> dict[str, Any]:
    """Let held notices go out (e.g. the selection results, once published).
    `count` must be what GET .../outbox/held showed: if it changed, nothing is released."""
    with read(a.db) as conn:
        track_id(a, conn, track)
    released = office.release(a, track, body.notice, expected=body.count)
    return {"notice": body.notice, "released": released}
