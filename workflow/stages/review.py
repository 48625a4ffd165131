"""The preliminary review: the eligibility checklist and the objection window.

Entering preliminary review records each application's checklist (every rule
of its track, passed or failed, with the values) in the same transaction as
the move. The office then passes or disqualifies, one by one or in bulk.

A disqualified applicant may object within the track's `objection_days` of
the decision. While an objection is open, the track's evaluation cannot
start (no assignment, no score); an upheld objection reinstates the
application onto the evaluation path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.notifications import reasons
from gongmo.states.eligibility import Check, Facts, failures
from gongmo.states.errors import Conflict, IllegalMove, InvalidInput, NotFound, OutsideWindow
from gongmo.workflow.core import lookups
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.config import Contest, Track
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICANT, APPLICATION, AUDIT, OBJECTION, TRACK
from gongmo.workflow.engine import events
from gongmo.workflow.engine.checklist import FACTS, facts_of, rules_of

if TYPE_CHECKING:
    from gongmo.workflow.engine.app import App


@dataclass(frozen=True)
class Checked:
    application_id: int
    receipt_no: str | None
    applicant: str
    state: str
    eligible: bool | None
    checks: list[dict[str, Any]]

    @property
    def failed(self) -> str:
        return failures([Check(**c) for c in self.checks])


def checklists(app: App, track_key: str, states: tuple[str, ...] = ("preliminary_review",)) -> list[Checked]:
    app.loaded.config.track(track_key)
    with read(app.db) as conn:
        query = (
            sa.select(
                APPLICATION.c.id,
                APPLICATION.c.receipt_no,
                APPLICATION.c.state,
                APPLICATION.c.eligible,
                APPLICATION.c.checklist,
                APPLICANT.c.name,
            )
            .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
            .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
            .where(TRACK.c.key == track_key, APPLICATION.c.state.in_(states))
            .order_by(APPLICATION.c.receipt_no, APPLICATION.c.id)
        )
        return [
            Checked(r.id, r.receipt_no, r.name, r.state, r.eligible, json.loads(r.checklist or "[]"))
            for r in conn.execute(query)
        ]


# Who a review pass moves: in preliminary review (its from-state), every check passed.
PASSABLE = APPLICATION.c.eligible.is_(True)


def pass_eligible(app: App, track_key: str, actor: Actor) -> int:
    """Pass every application in preliminary review whose checks all passed."""
    return app.moves.apply_bulk(track_key, "pass_review", "preliminary_review", actor, where=PASSABLE)


def to_pass(app: App, track_key: str) -> list[Checked]:
    """The dry run of pass_eligible: the applications it would pass now, by the same rule."""
    return [c for c in checklists(app, track_key) if c.eligible is True]


def to_disqualify(app: App, track_key: str) -> list[Checked]:
    """The dry run of disqualify_failed: the applications it would disqualify now (a check failed)."""
    return [c for c in checklists(app, track_key) if c.eligible is False]


def disqualify_failed(app: App, track_key: str, actor: Actor) -> list[tuple[str, str]]:
    """Disqualify every application whose checks failed; the reason is its failed rules."""
    done = []
    _, track = app.loaded.config.track(track_key)
    for c in to_disqualify(app, track_key):
        reason = f"eligibility: {c.failed}"  # the audit's line; the applicant reads the catalogue's
        with write(app.db) as conn:
            why = reasons.eligibility(rules_of(track), _facts(conn, c.application_id, track))
            app.moves.move(conn, c.application_id, "disqualify", actor, reason, extra={"reason": why or reason})
        done.append((c.receipt_no or str(c.application_id), reason))
    return done


def _facts(conn: Connection, application_id: int, track: Track) -> Facts:
    """What the checklist was made of, for the reasons an applicant reads."""
    return facts_of(conn.execute(FACTS.where(APPLICATION.c.id == application_id)).one(), track)


# -- objections ---------------------------------------------------------------


def objection_until(conn: Connection, application_id: int, contest: Contest, track: Track) -> datetime | None:
    """The end of the objection window: the last disqualification plus objection_days, a
    last day on a closed day moved to the next working day (Contest.period_end_rule, Civil
    Act art. 161): the deadline the disqualified notice states."""
    at = conn.execute(
        sa.select(sa.func.max(AUDIT.c.at)).where(
            AUDIT.c.application_id == application_id, AUDIT.c.trigger == "disqualify"
        )
    ).scalar()
    if at is None:
        return None
    value: datetime = contest.closures().period_end(at, track.objection_days, contest.timezone)
    return value


def open_objections(conn: Connection, track_id: int) -> list[dict[str, Any]]:
    query = (
        sa.select(OBJECTION.c.id, OBJECTION.c.application_id, OBJECTION.c.filed_at, APPLICATION.c.receipt_no)
        .join(APPLICATION, APPLICATION.c.id == OBJECTION.c.application_id)
        .where(OBJECTION.c.track_id == track_id, OBJECTION.c.status == "open")
        .order_by(OBJECTION.c.id)
    )
    return [dict(r) for r in conn.execute(query).mappings()]


def refuse_if_objections(conn: Connection, track_id: int, track_key: str, what: str) -> None:
    pending = open_objections(conn, track_id)
    if pending:
        listed = ", ".join(f"#{o['id']} (application {o['receipt_no'] or o['application_id']})" for o in pending)
        raise Conflict(
            f"track {track_key}: {what} cannot start while objections are open: {listed};"
            " decide them first: uphold or reject each one, with a reason"
        )


def file_objection(app: App, application_id: int, grounds: str, actor: Actor) -> int:
    if not grounds.strip():
        raise InvalidInput(
            "{field} is empty: state why the decision is wrong, e.g. {example}", field="grounds", value=grounds
        )
    now = app.clock.now()
    with write(app.db) as conn:
        row = _application(conn, application_id)
        contest, track = _track_of(app, conn, row["track_id"])
        if row["state"] != "disqualified":
            raise IllegalMove(
                str(application_id), row["state"], "object", [], hint="only a disqualified application may object"
            )
        until = objection_until(conn, application_id, contest, track)
        if until is None or now >= until:
            raise OutsideWindow(
                f"application {application_id}: the objection window closed at {_local(until, contest.timezone)}"
                f" ({track.objection_days} days after the disqualification)"
            )
        already = conn.execute(
            sa.select(OBJECTION.c.id).where(OBJECTION.c.application_id == application_id, OBJECTION.c.status == "open")
        ).scalar()
        if already is not None:
            raise Conflict(f"application {application_id} already has open objection #{already}; wait for its decision")
        decided = _decided_objection(conn, application_id)
        if decided is not None:  # one objection per disqualification (이의신청은 처분당 1회)
            raise Conflict(
                f"application {application_id}: objection #{decided['id']} to its disqualification was already"
                f" {decided['status']} on {_local(decided['decided_at'], contest.timezone)}; one objection per"
                " disqualification (a new disqualification may be objected to again)"
            )
        objection_id = int(
            conn.execute(
                sa.insert(OBJECTION)
                .values(
                    application_id=application_id,
                    track_id=row["track_id"],
                    filed_at=now,
                    filed_by=actor.name,
                    grounds=grounds.strip(),
                    status="open",
                )
                .returning(OBJECTION.c.id)
            ).scalar_one()
        )
        detail = {"objection": objection_id, "grounds": grounds.strip(), "until": until}
        events.record(conn, now, actor, "objection_filed", detail, row["track_id"], application_id)
        track_row = lookups.track_row(conn, row["track_id"])
        extra = {"objection_id": objection_id}
        app.moves.queue(conn, "objection_received", [application_id], track_row, now, extra, tag=_tag(objection_id))
    return objection_id


def decide_objection(app: App, objection_id: int, uphold: bool, reason: str, actor: Actor) -> str:
    """Uphold (the application goes back to evaluation) or reject (it stays
    disqualified; the applicant is told why). One transaction either way."""
    if not reason.strip():
        raise InvalidInput(
            "{field} is empty: the applicant is told the decision and its reason, e.g. {example}",
            field="reason",
            value=reason,
        )
    now = app.clock.now()
    with write(app.db) as conn:
        obj = conn.execute(sa.select(OBJECTION).where(OBJECTION.c.id == objection_id)).mappings().first()
        if obj is None:
            raise NotFound(f"no objection #{objection_id}: see `gongmo objection list`")
        if obj["status"] != "open":
            contest, _ = _track_of(app, conn, obj["track_id"])
            when = _local(obj["decided_at"], contest.timezone)
            raise Conflict(f"objection #{objection_id} was already {obj['status']} on {when}")
        status = "upheld" if uphold else "rejected"
        result = conn.execute(
            sa.update(OBJECTION)
            .where(OBJECTION.c.id == objection_id, OBJECTION.c.status == "open")
            .values(status=status, decided_at=now, decided_by=actor.name, decision=reason.strip())
        )
        if result.rowcount != 1:
            raise Conflict(f"objection #{objection_id} was decided meanwhile; reload")
        app_id = int(obj["application_id"])
        detail = {"objection": objection_id, "decision": status, "reason": reason.strip()}
        events.record(conn, now, actor, f"objection_{status}", detail, obj["track_id"], app_id)
        if uphold:
            app.moves.move(conn, app_id, "reinstate", actor, f"objection #{objection_id} upheld: {reason.strip()}")
        else:
            track_row = lookups.track_row(conn, obj["track_id"])
            extra = {"reason": reason.strip()}
            app.moves.queue(conn, "objection_rejected", [app_id], track_row, now, extra, tag=_tag(objection_id))
    return status


def _tag(objection_id: int) -> str:
    """The round of an objection's notices: each objection has its own keys, so
    they never depend on the application's version (which a filing does not move)."""
    return f"objection-{objection_id}"


def _decided_objection(conn: Connection, application_id: int) -> dict[str, Any] | None:
    """The objection already decided against the application's latest
    disqualification, if any: that decision may be objected to once."""
    since = sa.select(sa.func.max(AUDIT.c.at)).where(
        AUDIT.c.application_id == application_id, AUDIT.c.trigger == "disqualify"
    )
    row = (
        conn.execute(
            sa.select(OBJECTION.c.id, OBJECTION.c.status, OBJECTION.c.decided_at)
            .where(
                OBJECTION.c.application_id == application_id,
                OBJECTION.c.status != "open",
                OBJECTION.c.filed_at >= since.scalar_subquery(),
            )
            .order_by(OBJECTION.c.id.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def objections(app: App, track_key: str | None = None) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = (
            sa.select(OBJECTION, APPLICATION.c.receipt_no, TRACK.c.key.label("track"))
            .join(APPLICATION, APPLICATION.c.id == OBJECTION.c.application_id)
            .join(TRACK, TRACK.c.id == OBJECTION.c.track_id)
            .order_by(OBJECTION.c.id)
        )
        if track_key:
            query = query.where(TRACK.c.key == track_key)
        return [dict(r) for r in conn.execute(query).mappings()]


def _application(conn: Connection, application_id: int) -> dict[str, Any]:
    row = conn.execute(sa.select(APPLICATION).where(APPLICATION.c.id == application_id)).mappings().first()
    if row is None:
        raise NotFound(f"no application {application_id}: see `gongmo status` or `gongmo show`")
    return dict(row)


def _track_of(app: App, conn: Connection, track_id: int) -> tuple[Any, Track]:
    key = conn.execute(sa.select(TRACK.c.key).where(TRACK.c.id == track_id)).scalar_one()
    return app.loaded.config.track(key)


def _local(value: datetime | None, zone: str) -> str:
    return "-" if value is None else f"{value.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M %Z}"
