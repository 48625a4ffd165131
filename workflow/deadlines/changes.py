"""Changing a calendar: derive the deadline rows, reschedule a milestone of a
track, extend one applicant's deadline. Each change is one transaction with
its calendar_change row (the calendar's audit) and the notices it owes."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.states.errors import Conflict, InvalidInput, MissingReason, OutsideWindow
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.workflow.core import closures
from gongmo.workflow.core.config import CALENDAR_ORDER, Config
from gongmo.workflow.core.db import write
from gongmo.workflow.core.lookups import extension_until
from gongmo.workflow.core.models import APPLICATION, CALENDAR_CHANGE, TRACK
from gongmo.workflow.deadlines import plan as deadlines
from gongmo.workflow.engine.app import App

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
    planned = deadlines.plan_track(track, cfg, contest.timezone, contest.closures())
    return deadlines.sync(conn, track["id"], planned, now, f"{track['key']}:")


def reschedule(app: App, track_key: str, milestone: str, new_at: datetime, reason: str, actor: str) -> dict[str, Any]:
    """Move a milestone of a track: one transaction with its calendar_change row, the
    deadline rows moved and the notices. A move to the time it already has changes
    nothing and notifies nobody (`changed` False). `warnings`: the closed day the
    milestone falls on, if it does."""
    contest, _ = app.loaded.config.track(track_key)
    _check_milestone(milestone, CALENDAR_ORDER)
    _check_reason(reason, "reschedule")
    now = app.clock.now()
    tz = ZoneInfo(contest.timezone)
    with write(app.db) as conn:
        track = conn.execute(sa.select(TRACK).where(TRACK.c.key == track_key).with_for_update()).mappings().one()
        old_at: datetime | None = track[milestone]
        if old_at is None:
            raise InvalidInput(
                f"MILESTONE {milestone}: track {track_key} has none; add {milestone} to the track's calendar"
                " in the config and run `gongmo init`"
            )
        warnings = [
            f.line() for f in closures.flags(track_key, [(milestone, new_at)], contest.timezone, contest.closures())
        ]
        if new_at == old_at:
            return {
                "change": None,
                "old_at": old_at,
                "new_at": new_at,
                "deadlines": [],
                "notified": 0,
                "changed": False,
                "warnings": warnings,
            }
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
    return {
        "change": change_id,
        "old_at": old_at,
        "new_at": new_at,
        "deadlines": moved,
        "notified": notified,
        "changed": True,
        "warnings": warnings,
    }


def held(conn: Connection, config: Config) -> dict[str, dict[str, Any]]:
    """Each track's calendar as the database holds it (reschedules included), by
    track key: `calendar` [(milestone, UTC instant)] in calendar order (an optional
    milestone left out is not listed), and `rescheduled` {milestone: [each move,
    oldest first, with who, when and why]}. A track not loaded yet is not listed."""
    wanted = {t.key for c in config.contests for t in c.tracks}
    found: dict[str, dict[str, Any]] = {}
    ids: dict[int, str] = {}
    for row in conn.execute(sa.select(TRACK).where(TRACK.c.key.in_(wanted))).mappings():
        ids[row["id"]] = row["key"]
        calendar = [(m, row[m]) for m in CALENDAR_ORDER if row[m] is not None]
        found[row["key"]] = {"calendar": calendar, "rescheduled": {}}
    query = (
        sa.select(CALENDAR_CHANGE)
        .where(CALENDAR_CHANGE.c.application_id.is_(None), CALENDAR_CHANGE.c.track_id.in_(list(ids)))
        .order_by(CALENDAR_CHANGE.c.id)
    )
    for c in conn.execute(query).mappings():
        moves = found[ids[c["track_id"]]]["rescheduled"].setdefault(c["milestone"], [])
        moves.append({"from": c["old_at"], "to": c["new_at"], "by": c["actor"], "at": c["at"], "why": c["reason"]})
    return found


def closed_day_flags(config: Config, calendars: dict[str, dict[str, Any]] | None = None) -> list[closures.Flag]:
    """Every milestone on a closed day: of the calendar as the database holds it
    (`calendars`, from `held`) where it has the track, else of the config."""
    found = []
    for contest in config.contests:
        shut = contest.closures()
        for track in contest.tracks:
            kept = (calendars or {}).get(track.key)
            items = kept["calendar"] if kept else track.calendar.items()
            found += closures.flags(track.key, items, contest.timezone, shut)
    return found


def extend(app: App, application_id: int, milestone: str, new_at: datetime, reason: str, actor: str) -> dict[str, Any]:
    _check_milestone(milestone, EXTENDABLE)
    _check_reason(reason, "extend")
    now = app.clock.now()
    with write(app.db) as conn:
        row = conn.execute(sa.select(APPLICATION).where(APPLICATION.c.id == application_id)).mappings().first()
        if row is None:
            raise InvalidInput(f"no application {application_id}")
        track = conn.execute(sa.select(TRACK).where(TRACK.c.id == row["track_id"])).mappings().one()
        contest, cfg = app.loaded.config.track(track["key"])
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
        # The applicant's reminders follow its own close (re-planned by each extension).
        own = deadlines.plan_own_reminders(
            track, cfg, contest.timezone, contest.closures(), application_id, new_at, now
        )
        deadlines.sync(conn, track["id"], own, now, deadlines.own_reminder_prefix(application_id))
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
        count, after = app.moves.notify_chunk(
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
    order = [m for m in CALENDAR_ORDER if m == milestone or track[m] is not None]  # an optional one left out
    index = order.index(milestone)
    before = order[index - 1] if index else None
    after = order[index + 1] if index + 1 < len(order) else None
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
