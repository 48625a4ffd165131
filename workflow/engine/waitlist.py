"""The waitlist's two rules the engine keeps: the place of a manual waitlisting,
and the promotion of a waitlisted application when a selected one drops out
(an effect returning `promote` follow-ups, effects.py). A promotion's notice
explains itself with the figures the selection recorded for the application
(its "selection" event, stages/selection.py) and the place it was given."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from gongmo.notifications.reasons import Reason
from gongmo.states.errors import InvalidInput
from gongmo.states.selection import Waiting, promotion
from gongmo.workflow.core.models import APPLICATION, EVENT
from gongmo.workflow.engine.effects import FollowUp, Moving

MAX_WAITLIST_POSITION = 1000  # a manual waitlist position, at most
DROPPED_OUT = ("withdrawn", "cancelled")  # the states a selected application leaves a place in


def waitlist_place(conn: Connection, row: RowMapping, track: RowMapping, given: int | None) -> int:
    """The position of a manual waitlisting: `given` if no other application
    of the track holds it, else refused; without it, the one after the last."""
    held = {
        int(r.waitlist_position): int(r.id)
        for r in conn.execute(
            sa.select(APPLICATION.c.id, APPLICATION.c.waitlist_position).where(
                APPLICATION.c.track_id == track["id"],
                APPLICATION.c.state == "waitlisted",
                APPLICATION.c.waitlist_position.is_not(None),
                APPLICATION.c.id != row["id"],
            )
        )
    }
    following = max(held, default=0) + 1
    if given is None:
        return following
    if not 1 <= given <= MAX_WAITLIST_POSITION:
        raise InvalidInput(
            "{given}: write a whole number from 1 (the first to be promoted)"
            f" to {MAX_WAITLIST_POSITION}, or leave it out for the next free one ({following})",
            field="waitlist_position",
            value=given,
        )
    if given in held:
        raise InvalidInput(
            f"{{given}}: waitlist position {given} of track {track['key']} is held by application"
            f" {held[given]}; choose a free one, or leave {{field}} out for the next ({following})",
            field="waitlist_position",
            value=given,
        )
    return given


def promote_after_dropout(conn: Connection, moving: Moving) -> list[FollowUp]:
    """Before the promotion date, each place freed by a selected applicant goes
    to the first waitlisted one that fits the budget left: one `promote` each,
    in order, each counted as taken before the next is chosen."""
    track, track_cfg = moving.track, moving.track_cfg
    if moving.source != "selected" or moving.dest not in DROPPED_OUT or moving.now >= track[track_cfg.promotion_until]:
        return []
    taken = conn.execute(
        sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(APPLICATION.c.national_krw), 0)).where(
            APPLICATION.c.track_id == track["id"], APPLICATION.c.state.in_(("selected", "kickoff"))
        )
    ).one()
    count, national = int(taken[0]), int(taken[1])
    waiting = [
        Waiting(int(r.id), int(r.waitlist_position or 0), int(r.national_krw or 0))
        for r in conn.execute(
            sa.select(APPLICATION.c.id, APPLICATION.c.waitlist_position, APPLICATION.c.national_krw).where(
                APPLICATION.c.track_id == track["id"], APPLICATION.c.state == "waitlisted"
            )
        )
    ]
    dropped = ", ".join(str(i) for i in moving.ids)
    follow: list[FollowUp] = []
    for _ in moving.ids:
        left = track_cfg.funding.budget_national_krw - national
        pick, passed = promotion(waiting, track_cfg.slots - count, left)
        if pick is None:
            break
        reason = f"place freed by application {dropped}; waitlist position {pick.position}"
        if passed:
            reason += "; " + "; ".join(passed)
        rule = Reason(
            f"explain.rule_promoted_{'withdrawn' if moving.dest == 'withdrawn' else 'cancelled'}",
            {"position": pick.position, "left": left - pick.national_krw},
            money=("left",),
        )
        explanation = [*selection_figures(conn, track["id"], pick.application_id), rule]
        follow.append(
            FollowUp(pick.application_id, "promote", reason, {"waitlist_position": None}, {"explanation": explanation})
        )
        waiting = [w for w in waiting if w.application_id != pick.application_id]
        count, national = count + 1, national + pick.national_krw  # promoted: selected, as the next round sees it
    return follow


SELECTION_FIGURES = "figures"  # the key of the selection event's detail (stages/selection.py FIGURES)


def selection_figures(conn: Connection, track_id: int, application_id: int) -> list[Reason]:
    """The figures the latest selection of the track recorded for a waitlisted application
    (its part scores, committee score, rank, the cutoff, a tie), or none if it was waitlisted by hand."""
    details = conn.execute(
        sa.select(EVENT.c.detail)
        .where(EVENT.c.track_id == track_id, EVENT.c.kind == "selection")
        .order_by(EVENT.c.id.desc())
    ).scalars()
    for detail in details:
        figures = json.loads(detail).get(SELECTION_FIGURES, {}).get(str(application_id))
        if figures is not None:
            return [Reason.from_plain(f) for f in figures]
    return []
