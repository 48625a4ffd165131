"""The office's overview of each track (the console's contests page): the slots and national
budget taken, the next deadline, and what needs the office's attention now: deadlines that
failed or are held for the office, dead mail, open objections, results under embargo.

Each figure comes from the same queries the rest of gongmo uses (deadlines/status.blocked as
`gongmo deadlines` and /healthz, stages/review.open_objections as the selection's refusal,
visibility.embargoed_tracks as every reader); only the counts per track are read here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.workflow.core.models import APPLICATION, DEADLINE, OUTBOX, TRACK
from gongmo.workflow.deadlines import status as deadline_status
from gongmo.workflow.outbox.states import DEAD
from gongmo.workflow.read import visibility
from gongmo.workflow.stages import review

# The states that hold a place and its money (as the waitlist's promotion counts them).
TAKEN = ("selected", "kickoff")


@dataclass
class TrackOverview:
    """One track as the contests page shows it."""

    key: str
    slots_used: int = 0
    national_used_krw: int = 0
    next_deadline: dict[str, Any] | None = None  # the earliest deadline not fired and not yet due
    overdue: int = 0  # not fired and due (the ticker catches them up, unless one below holds them back)
    blocked: list[dict[str, Any]] = field(default_factory=list)  # failed or held for the office
    dead_mail: int = 0
    objections: list[dict[str, Any]] = field(default_factory=list)  # open ones
    embargoed: bool = False

    @property
    def objections_listed(self) -> str:
        return ", ".join(
            f"#{o['id']} ({o['receipt_no'] or 'application ' + str(o['application_id'])})" for o in self.objections
        )

    @property
    def warnings(self) -> bool:
        return bool(self.blocked or self.dead_mail or self.objections or self.embargoed)


def tracks(conn: Connection, now: datetime) -> dict[str, TrackOverview]:
    """Every track in the database, by key."""
    rows = conn.execute(sa.select(TRACK.c.id, TRACK.c.key).order_by(TRACK.c.id)).all()
    out = {str(key): TrackOverview(str(key)) for _, key in rows}
    by_id = {int(i): out[str(key)] for i, key in rows}
    taken = conn.execute(
        sa.select(APPLICATION.c.track_id, sa.func.count(), sa.func.coalesce(sa.func.sum(APPLICATION.c.national_krw), 0))
        .where(APPLICATION.c.state.in_(TAKEN))
        .group_by(APPLICATION.c.track_id)
    )
    for track_id, count, national in taken:
        by_id[int(track_id)].slots_used, by_id[int(track_id)].national_used_krw = int(count), int(national)
    _deadlines(conn, now, by_id)
    dead = conn.execute(
        sa.select(APPLICATION.c.track_id, sa.func.count())
        .select_from(OUTBOX.join(APPLICATION, APPLICATION.c.id == OUTBOX.c.application_id))
        .where(OUTBOX.c.state == DEAD)
        .group_by(APPLICATION.c.track_id)
    )
    for track_id, count in dead:
        by_id[int(track_id)].dead_mail = int(count)
    for track_id, overview in by_id.items():
        overview.objections = review.open_objections(conn, track_id)
    for track_id in visibility.embargoed_tracks(conn):
        by_id[track_id].embargoed = True
    for b in deadline_status.blocked(conn, now):
        out[b["track"]].blocked.append(b)
    return out


def _deadlines(conn: Connection, now: datetime, by_id: dict[int, TrackOverview]) -> None:
    unfired = DEADLINE.c.fired_at.is_(None)
    overdue = conn.execute(
        sa.select(DEADLINE.c.track_id, sa.func.count())
        .where(unfired, DEADLINE.c.due_at <= now)
        .group_by(DEADLINE.c.track_id)
    )
    for track_id, count in overdue:
        by_id[int(track_id)].overdue = int(count)
    first = (
        sa.select(DEADLINE.c.track_id, sa.func.min(DEADLINE.c.due_at).label("due_at"))
        .where(unfired, DEADLINE.c.due_at > now)
        .group_by(DEADLINE.c.track_id)
        .subquery()
    )
    nexts = conn.execute(
        sa.select(DEADLINE.c.track_id, DEADLINE.c.key, DEADLINE.c.action, DEADLINE.c.milestone, DEADLINE.c.due_at)
        .join(first, (first.c.track_id == DEADLINE.c.track_id) & (first.c.due_at == DEADLINE.c.due_at))
        .where(unfired)
        .order_by(DEADLINE.c.id)
    ).mappings()
    for r in nexts:
        overview = by_id[int(r["track_id"])]
        if overview.next_deadline is None:  # two rows due at once: the first by number
            overview.next_deadline = dict(r)
