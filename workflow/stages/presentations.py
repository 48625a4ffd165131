"""Presentation slots: scheduled on working days inside the presentation
window, stored, and announced to each applicant with an .ics invitation.

Scheduling again replaces the unannounced plan; a slot that moved is
announced again (its notice is keyed by the slot's start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from gongmo.states.calendar import plan_slots
from gongmo.states.errors import InvalidInput
from gongmo.workflow.core import lookups
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICANT, APPLICATION, PRESENTATION_SLOT, TRACK
from gongmo.workflow.engine import events

if TYPE_CHECKING:
    from gongmo.workflow.engine.app import App

PRESENTING = ("written_evaluation", "presentation_evaluation")


def schedule(app: App, track_key: str, actor: Actor) -> list[dict[str, Any]]:
    """One slot per application in evaluation, in receipt order; each applicant invited."""
    contest, track = app.loaded.config.track(track_key)
    ev = track.evaluation
    tz = ZoneInfo(contest.timezone)
    now = app.clock.now()
    with write(app.db) as conn:
        track_row = lookups.track_by_key(conn, app.loaded.config, track_key, lock=True)
        if now >= track_row["presentation_starts"]:
            raise InvalidInput(
                f"track {track_key}: the presentation evaluation has started"
                f" ({track_row['presentation_starts'].astimezone(tz):%Y-%m-%d %H:%M %Z}); slots are scheduled before it"
            )
        apps = conn.execute(
            sa.select(APPLICATION.c.id, APPLICATION.c.receipt_no)
            .where(APPLICATION.c.track_id == track_row["id"], APPLICATION.c.state.in_(PRESENTING))
            .order_by(APPLICATION.c.receipt_no)
        ).all()
        if not apps:
            raise InvalidInput(f"track {track_key} has no application in evaluation to invite")
        try:
            slots = plan_slots(
                len(apps),
                track_row["presentation_starts"].astimezone(tz),
                track_row["presentation_ends"].astimezone(tz),
                ev.slot_minutes,
                ev.slot_gap_minutes,
                ev.office_hours,
                contest.closures(),
                ev.lunch,
            )
        except ValueError as exc:
            raise InvalidInput(f"track {track_key}: {exc}") from None
        of_track = sa.select(APPLICATION.c.id).where(APPLICATION.c.track_id == track_row["id"])
        conn.execute(sa.delete(PRESENTATION_SLOT).where(PRESENTATION_SLOT.c.application_id.in_(of_track)))
        planned = []
        for a, (starts, ends) in zip(apps, slots, strict=True):
            values = {"application_id": a.id, "starts_at": starts, "ends_at": ends, "place": ev.place}
            conn.execute(sa.insert(PRESENTATION_SLOT).values(**values))
            extra = {"slot_starts": starts, "slot_ends": ends, "place": ev.place}
            app.moves.queue(
                conn, "presentation_invitation", [a.id], track_row, now, extra, tag=f"slot-{starts:%Y%m%dT%H%M}"
            )
            planned.append({"receipt_no": a.receipt_no, "starts_at": starts, "ends_at": ends, "place": ev.place})
        events.record(conn, now, actor, "presentations_scheduled", {"slots": planned}, track_row["id"])
    return planned


def slots(app: App, track_key: str) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = (
            sa.select(
                APPLICATION.c.receipt_no,
                APPLICANT.c.name,
                PRESENTATION_SLOT.c.starts_at,
                PRESENTATION_SLOT.c.ends_at,
                PRESENTATION_SLOT.c.place,
            )
            .join(APPLICATION, APPLICATION.c.id == PRESENTATION_SLOT.c.application_id)
            .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
            .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
            .where(TRACK.c.key == track_key)
            .order_by(PRESENTATION_SLOT.c.starts_at)
        )
        return [dict(r) for r in conn.execute(query).mappings()]
