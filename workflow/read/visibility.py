"""The read side of "who sees what": every reader of applications comes here.

The rule itself is pure and lives in states/visibility.py. This module reads
the rows (which applications a caller may see, the track's embargo, the
history, the events, the notices, the result's aggregates) and passes each
through that rule. The HTTP API, the CLI's `show` and the metrics use it, so a
field hidden from a role is hidden everywhere.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.states import visibility as rule
from gongmo.states.committee import conflict
from gongmo.states.errors import NotFound, NotVisible
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role
from gongmo.workflow.core import files
from gongmo.workflow.core.models import APPLICANT, APPLICATION, ASSIGNMENT, AUDIT, CALENDAR_CHANGE, OUTBOX, TRACK
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.engine import events
from gongmo.workflow.engine.uploads import stored_answers
from gongmo.workflow.stages import committee, selection

if TYPE_CHECKING:
    from gongmo.workflow.engine.app import App


# What a list of applications shows of each one.
SUMMARY = (
    APPLICATION.c.id,
    TRACK.c.key.label("track"),
    APPLICANT.c.code.label("applicant_code"),
    APPLICANT.c.name.label("applicant_name"),
    APPLICATION.c.state,
    APPLICATION.c.version,
    APPLICATION.c.receipt_no,
    APPLICATION.c.title,
    APPLICATION.c.project_type,
    APPLICATION.c.national_krw,
    APPLICATION.c.local_krw,
    APPLICATION.c.years,
    APPLICATION.c.submitted_at,
    APPLICATION.c.score,
    APPLICATION.c.rank,
    APPLICATION.c.waitlist_position,
)
# What a listing shows of each plan document; the office and the applicant see every version (and who
# uploaded it), an evaluator the current files only. Documents and answers are no result: no embargo.
DOCUMENT_FIELDS = ("id", "kind", "version", "current", "file_name", "size", "file_type", "sha256", "uploaded_at")
ALL_VERSIONS = (Role.ADMIN, Role.APPLICANT)
# The embargo holds from the first held result until the office released them all.
EMBARGOED = TRACK.c.results_embargoed_at.is_not(None) & TRACK.c.results_released_at.is_(None)


def viewer(who: Principal) -> rule.Viewer:
    return rule.Viewer(who.role, who.subject)


def joined(*cols: Any) -> sa.Select[Any]:
    return (
        sa.select(*cols)
        .select_from(APPLICATION)
        .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
        .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
    )


def embargoed_tracks(conn: Connection) -> set[int]:
    """The ids of the tracks whose results are under embargo now."""
    return {int(i) for i in conn.execute(sa.select(TRACK.c.id).where(EMBARGOED)).scalars()}


# -- which applications -------------------------------------------------------------


def evaluable(app: App, conn: Connection, who: Principal) -> dict[int, str | None]:
    """An evaluator's assigned applications -> the conflict that bars one (None: may evaluate)."""
    (ev,) = committee.evaluators(conn, only=who.evaluator_id)
    rows = conn.execute(
        sa.select(APPLICATION.c.id, APPLICANT.c.code, TRACK.c.key)
        .join(ASSIGNMENT, ASSIGNMENT.c.application_id == APPLICATION.c.id)
        .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
        .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
        .where(ASSIGNMENT.c.evaluator_id == who.evaluator_id)
    )
    out: dict[int, str | None] = {}
    for app_id, code, track_key in rows:
        _, track = app.loaded.config.track(track_key)
        out[int(app_id)] = conflict(ev, code, track.evaluation.conflict_same_region)
    return out


def where_visible(app: App, conn: Connection, who: Principal) -> Any:
    """A WHERE clause on APPLICATION: the rows this caller may see."""
    if who.role == Role.ADMIN:
        return sa.true()
    if who.role == Role.APPLICANT:
        return APPLICATION.c.applicant_id == who.applicant_id
    if who.role == Role.EVALUATOR:
        mine = [i for i, why in evaluable(app, conn, who).items() if why is None]
        return APPLICATION.c.id.in_(mine)
    return sa.false()


def check_access(app: App, conn: Connection, who: Principal, application_id: int) -> None:
    """NotFound if there is no such application; Forbidden if it is not the caller's to see."""
    row = conn.execute(sa.select(APPLICATION.c.applicant_id).where(APPLICATION.c.id == application_id)).first()
    if row is None:
        raise NotFound(f"no application {application_id}")
    if who.role == Role.APPLICANT and row.applicant_id != who.applicant_id:
        raise NotVisible(f"application {application_id} is not {who.subject}'s: an applicant token sees its own only")
    if who.role == Role.EVALUATOR:
        why = evaluable(app, conn, who).get(application_id, "not assigned to you")
        if why is not None:
            raise NotVisible(f"application {application_id} is not yours to evaluate ({why})")
    if who.role not in (Role.ADMIN, Role.APPLICANT, Role.EVALUATOR):
        raise NotVisible(f"a {who.role.value} token reads no application")


# -- what of them ----------------------------------------------------------------------


def page(
    app: App,
    conn: Connection,
    who: Principal,
    after: int,
    size: int,
    track_id: int | None = None,
    state: str | None = None,
    search: str | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """(total, up to size + 1 rows after `after`) of the applications the caller
    may see; a `state` filter matches the state the caller is shown; `search` a part
    of the applicant's name or of the receipt number (any case)."""
    seer = viewer(who)
    where = [where_visible(app, conn, who)]
    if track_id is not None:
        where.append(APPLICATION.c.track_id == track_id)
    if state is not None:
        where.append(_shown_state_is(seer, state))
    if search:
        where.append(_matches(search))
    total = int(conn.execute(joined(sa.func.count()).where(*where)).scalar_one())
    rows = conn.execute(
        joined(*SUMMARY, EMBARGOED.label("embargoed"))
        .where(*where, APPLICATION.c.id > after)
        .order_by(APPLICATION.c.id)
        .limit(size + 1)
    ).mappings()
    items = []
    for r in rows:
        items.append(rule.application(seer, {k: v for k, v in r.items() if k != "embargoed"}, bool(r["embargoed"])))
    return total, items


def _matches(search: str) -> Any:
    """Rows whose applicant name or receipt number holds `search` (LIKE's wildcards taken literally)."""
    return APPLICANT.c.name.contains(search, autoescape=True) | APPLICATION.c.receipt_no.icontains(
        search, autoescape=True
    )


def _shown_state_is(seer: rule.Viewer, state: str) -> Any:
    """Rows whose state, as this viewer is shown it, is `state` (a filter must not tell
    an applicant which rows hide a result)."""
    stored = APPLICATION.c.state == state
    if seer.insider:
        return stored
    if state in rule.RESULT_STATES:
        return stored & ~EMBARGOED
    if state == rule.BEFORE_RESULT:
        return stored | (APPLICATION.c.state.in_(sorted(rule.RESULT_STATES)) & EMBARGOED)
    return stored


def detail(app: App, conn: Connection, who: Principal, application_id: int) -> dict[str, Any]:
    """One application as the caller may see it: its fields, history, decisions,
    notices, the result's aggregates once released, and the triggers it may fire."""
    check_access(app, conn, who, application_id)
    row = (
        conn.execute(
            joined(
                *SUMMARY,
                APPLICATION.c.created_at,
                APPLICATION.c.eligible,
                APPLICATION.c.checklist,
                APPLICATION.c.answers,
                TRACK.c.id.label("track_id"),
                EMBARGOED.label("embargoed"),
            ).where(APPLICATION.c.id == application_id)
        )
        .mappings()
        .one()
    )
    embargoed = bool(row["embargoed"])
    seer = viewer(who)
    fields = {k: v for k, v in row.items() if k not in ("embargoed", "track_id", "answers")}
    shown = rule.application(seer, fields, embargoed)
    shown["checklist"] = json.loads(row["checklist"]) if row["checklist"] else None
    shown["documents"] = documents(conn, who, application_id)
    shown["answers"] = stored_answers(row)
    audit = sa.select(AUDIT).where(AUDIT.c.application_id == application_id).order_by(AUDIT.c.id)
    shown["history"] = [
        h for r in conn.execute(audit).mappings() if (h := rule.audit_row(seer, r, embargoed)) is not None
    ]
    shown["events"] = [e for e in events.of_application(conn, application_id) if rule.event(seer, e, embargoed)]
    changes = _calendar_changes(conn, row["track_id"], application_id)
    shown["calendar_changes"] = [_calendar_change(r) for r in changes if rule.calendar_change(seer, r)]
    notices = sa.select(OUTBOX).where(OUTBOX.c.application_id == application_id).order_by(OUTBOX.c.id)
    shown["notices"] = [n for r in conn.execute(notices).mappings() if (n := rule.notice(seer, r)) is not None]
    shown["result"] = _result(app, conn, row) if (seer.insider or not embargoed) else None
    shown["actions"] = [
        t for t in TABLE.triggers_from(shown["state"]) if t != "submit" and who.role in TABLE.trigger(t).roles
    ]
    return shown


def documents(conn: Connection, who: Principal, application_id: int) -> list[dict[str, Any]]:
    """An application's documents as this caller may see them (check_access first), by kind and
    version: every version to the office and the applicant, the current files to an evaluator."""
    insider = who.role in ALL_VERSIONS
    out = []
    for r in files.documents(conn, application_id, current_only=not insider):
        item = {k: r[k] for k in DOCUMENT_FIELDS}
        if insider:
            item |= {"actor": r["actor"], "role": r["role"]}
        out.append(item)
    return out


def _calendar_changes(conn: Connection, track_id: int, application_id: int) -> list[Any]:
    """Every calendar change that touched the application: the track's reschedules
    and its own extensions, in the order they were made."""
    query = (
        sa.select(CALENDAR_CHANGE)
        .where(
            CALENDAR_CHANGE.c.track_id == track_id,
            sa.or_(CALENDAR_CHANGE.c.application_id.is_(None), CALENDAR_CHANGE.c.application_id == application_id),
        )
        .order_by(CALENDAR_CHANGE.c.at, CALENDAR_CHANGE.c.id)
    )
    return list(conn.execute(query).mappings())


def _calendar_change(row: Any) -> dict[str, Any]:
    return {
        "kind": "reschedule" if row["application_id"] is None else "extension",
        "milestone": row["milestone"],
        "old_at": row["old_at"],
        "new_at": row["new_at"],
        "reason": row["reason"],
        "actor": row["actor"],
        "at": row["at"],
    }


def _result(app: App, conn: Connection, row: Any) -> dict[str, Any] | None:
    """The explained result (aggregates only): part scores, committee score,
    rank of N, the minimum and the last selected score; no evaluator, no sheet."""
    if row["rank"] is None:
        return None
    _, track = app.loaded.config.track(row["track"])
    ranked = selection.ranking_in(conn, track)  # the same read transaction, not a second connection
    mine = next((r for r in ranked.rows if r.entry.application_id == row["id"]), None)
    of_track = APPLICATION.c.track_id == row["track_id"]
    count = conn.execute(
        sa.select(sa.func.count()).select_from(APPLICATION).where(of_track, APPLICATION.c.rank.is_not(None))
    ).scalar_one()
    selected_scores = [
        str(s)
        for s in conn.execute(
            sa.select(APPLICATION.c.score).where(of_track, APPLICATION.c.state.in_(("selected", "kickoff")))
        ).scalars()
        if s is not None
    ]
    return {
        "committee_score": row["score"],
        "written_score": str(mine.entry.written.score) if mine else None,
        "presentation_score": str(mine.entry.presentation.score) if mine else None,
        "rank": row["rank"],
        "ranked": int(count),
        "minimum_score": str(track.evaluation.minimum_score),
        "last_selected_score": min(selected_scores, key=Decimal) if selected_scores else None,
        "waitlist_position": row["waitlist_position"],
    }


def state_counts(conn: Connection, who: Principal, track: str | None = None) -> dict[tuple[str, str], int]:
    """(track, state) -> applications, as the caller may count them (metrics, `gongmo status`);
    of one track if given."""
    seer = viewer(who)
    query = (
        sa.select(TRACK.c.key, APPLICATION.c.state, EMBARGOED.label("embargoed"), sa.func.count())
        .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
        .group_by(TRACK.c.key, APPLICATION.c.state, TRACK.c.results_embargoed_at, TRACK.c.results_released_at)
    )
    if track is not None:
        query = query.where(TRACK.c.key == track)
    out: dict[tuple[str, str], int] = {}
    for key, state, embargoed, n in conn.execute(query):
        shown = rule.state_count(seer, state, bool(embargoed))
        out[(key, shown)] = out.get((key, shown), 0) + int(n)
    return out
