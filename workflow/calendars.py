"""Changing a calendar: derive the deadline rows, reschedule a milestone of a
track, extend one applicant's deadline. Each change is one transaction with
its calendar_change row (the calendar's audit) and the notices it owes."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from states.errors import Conflict, InvalidInput, MissingReason, OutsideWindow
from states.lifecycle import APPLICATION as TABLE
from workflow import deadlines
from workflow.app import App
from workflow.config import MILESTONES
from workflow.db import write
from workflow.engine import extension_until
from workflow.models import APPLICATION, CALENDAR_CHANGE, TRACK

# Who hears of a moved milestone: everyone still in the running.
CONCERNED = tuple(s.name for s in TABLE.states if not s.final)
EXTENDABLE = ("receipt_closes",)


def derive(app: App, conn: Connection) -> list[str]:
    """(Re)derive every track's deadline rows from the calendars in the database."""
    now = app.clock.now()
    changes: list[str] = []
    for track in conn.execute(sa.select(TRACK).order_by(TRACK.c.id)).mappings():
        changes += _derive_track(app, conn, track, now)
    return changes


def _derive_track(app: App, conn: Connection, track: Any, now: datetime) -> list[str]:
    try:
        contest, cfg = app.loaded.config.track(track["key"])
    except Exception:
        return []  # a track the config no longer has keeps its rows as they are
    planned = deadlines.plan_track(track, cfg, contest.timezone)
    return deadlines.sync(conn, track["id"], planned, now, f"{track['key']}:")


def reschedule(app: App, track_key: str, milestone: str, new_at: datetime, reason: str, actor: str) -> dict[str, Any]:
    contest, _ = app.loaded.config.track(track_key)
    _check_milestone(milestone, MILESTONES)
    _check_reason(reason, "reschedule")
    now = app.clock.now()
    tz = ZoneInfo(contest.timezone)
    with write(app.db) as conn:
        track = conn.execute(sa.select(TRACK).where(TRACK.c.key == track_key).with_for_update()).mappings().one()
        old_at: datetime = track[milestone]
        if old_at <= now:
            raise OutsideWindow(
                f"{track_key} {milestone} was {_local(old_at, tz)}, already past; a past deadline cannot move"
                " (for one applicant, use `gongmo extend`)"
            )
        if new_at <= now:
            raise InvalidInput(f"NEW_TIME {_local(new_at, tz)} is already past (now {_local(now, tz)})")
        _check_order(track, milestone, new_at, tz)
        conn.execute(sa.update(TRACK).where(TRACK.c.id == track["id"]).values({milestone: new_at}))
        change_id = _record(conn, track["id"], None, milestone, old_at, new_at, reason, actor, now)
        moved = _derive_track(app, conn, {**track, milestone: new_at}, now)
        track = conn.execute(sa.select(TRACK).where(TRACK.c.id == track["id"])).mappings().one()
        notified = _notify(app, conn, track, milestone, old_at, new_at, reason, f"cc{change_id}")
    return {"change": change_id, "old_at": old_at, "new_at": new_at, "deadlines": moved, "notified": notified}


def extend(app: App, application_id: int, milestone: str, new_at: datetime, reason: str, actor: str) -> dict[str, Any]:
    _check_milestone(milestone, EXTENDABLE)
    _check_reason(reason, "extend")
    now = app.clock.now()
    with write(app.db) as conn:
        row = conn.execute(sa.select(APPLICATION).where(APPLICATION.c.id == application_id)).mappings().first()
        if row is None:
            raise InvalidInput(f"no application {application_id}")
        track = conn.execute(sa.select(TRACK).where(TRACK.c.id == row["track_id"])).mappings().one()
        contest, _ = app.loaded.config.track(track["key"])
        tz = ZoneInfo(contest.timezone)
        if row["state"] not in ("announcement", "receipt"):
            raise Conflict(
                f"application {application_id} is '{row['state']}': an extension of {milestone} is granted"
                " before its close, while the application is still open"
            )
        current = max(track[milestone], extension_until(conn, application_id, milestone) or track[milestone])
        if new_at <= current:
            raise InvalidInput(
                f"NEW_TIME {_local(new_at, tz)} must be after the current {milestone} {_local(current, tz)}"
            )
        change_id = _record(conn, track["id"], application_id, milestone, current, new_at, reason, actor, now)
        planned = deadlines.Planned(
            f"ext:{application_id}:{milestone}", "extension_closes", milestone, new_at, application_id
        )
        deadlines.add_one(conn, track["id"], planned, now)
        notified = _notify(app, conn, track, milestone, current, new_at, reason, f"cc{change_id}", application_id)
    return {"change": change_id, "old_at": current, "new_at": new_at, "notified": notified}


def _notify(
    app: App,
    conn: Connection,
    track: Any,
    milestone: str,
    old_at: datetime,
    new_at: datetime,
    reason: str,
    tag: str,
    application_id: int | None = None,
) -> int:
    extra = {"milestone_name": milestone, "old_at": old_at, "new_at": new_at, "reason": reason}
    total, after = 0, 0
    while True:
        count, after = app.engine.notify_chunk(
            conn, track, CONCERNED, "calendar_change", tag, extra, after, application_id
        )
        if count < 0:
            return total
        total += count


def _record(
    conn: Connection,
    track_id: int,
    application_id: int | None,
    milestone: str,
    old_at: datetime,
    new_at: datetime,
    reason: str,
    actor: str,
    now: datetime,
) -> int:
    values = {
        "track_id": track_id,
        "application_id": application_id,
        "milestone": milestone,
        "old_at": old_at,
        "new_at": new_at,
        "reason": reason,
        "actor": actor,
        "at": now,
    }
    return int(conn.execute(sa.insert(CALENDAR_CHANGE).values(values).returning(CALENDAR_CHANGE.c.id)).scalar_one())


def _check_order(track: Any, milestone: str, new_at: datetime, tz: ZoneInfo) -> None:
    index = MILESTONES.index(milestone)
    before = MILESTONES[index - 1] if index else None
    after = MILESTONES[index + 1] if index + 1 < len(MILESTONES) else None
    if before and new_at < track[before]:
        raise InvalidInput(
            f"NEW_TIME {_local(new_at, tz)} would put {milestone} before {before} ({_local(track[before], tz)});"
            f" move {before} first"
        )
    if after and new_at > track[after]:
        raise InvalidInput(
            f"NEW_TIME {_local(new_at, tz)} would put {milestone} after {after} ({_local(track[after], tz)});"
            f" move {after} first"
        )
    if milestone == "receipt_closes" and new_at <= track["receipt_opens"]:
        raise InvalidInput(
            f"NEW_TIME {_local(new_at, tz)} is not after receipt_opens ({_local(track['receipt_opens'], tz)}):"
            " the receipt window would be empty"
        )
    if milestone == "receipt_opens" and new_at >= track["receipt_closes"]:
        raise InvalidInput(
            f"NEW_TIME {_local(new_at, tz)} is not before receipt_closes ({_local(track['receipt_closes'], tz)}):"
            " the receipt window would be empty"
        )


def _check_milestone(milestone: str, allowed: tuple[str, ...]) -> None:
    if milestone not in allowed:
        raise InvalidInput(f"MILESTONE {milestone!r} cannot be changed here (choose one of: {', '.join(allowed)})")


def _check_reason(reason: str | None, what: str) -> None:
    if not (reason and reason.strip()):
        raise MissingReason(what)


def _local(at: datetime, tz: ZoneInfo) -> str:
    return f"{at.astimezone(tz):%Y-%m-%d %H:%M %Z}"
