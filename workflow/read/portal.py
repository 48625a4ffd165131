"""What the portals read: the evaluator's assignments and sheets (and, later, the applicant's).

Every function here takes the caller's Principal and reads only what visibility lets it see:
the applications come through visibility.where_visible / check_access, and an evaluator's
sheets are its own (as the API's GET /applications/{id}/scores filters them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from gongmo.notifications import reasons
from gongmo.states import visibility as rule
from gongmo.states.errors import InvalidInput, NotFound, NotVisible
from gongmo.states.scoring import PARTS, Criterion, check_sheet, parse_points
from gongmo.workflow.core import lookups
from gongmo.workflow.core.models import (
    APPLICANT,
    APPLICATION,
    ASSIGNMENT,
    DEADLINE,
    EVALUATOR,
    EVENT,
    OUTBOX,
    OUTBOX_LIST,
    SCORE,
    TRACK,
)
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.engine import intake
from gongmo.workflow.read import visibility
from gongmo.workflow.read.committee import DUE
from gongmo.workflow.read.outbox import SECRET_NOTICES
from gongmo.workflow.stages import review, selection
from gongmo.workflow.stages.committee import PART_STATE, PART_WINDOW

if TYPE_CHECKING:
    from gongmo.workflow.engine.app import App


# -- the evaluator's portal -------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A part's window of a track (UTC instants) and whether it is open at `now`."""

    part: str
    starts: datetime
    ends: datetime
    now: datetime

    @property
    def open(self) -> bool:
        return self.starts <= self.now < self.ends

    @property
    def phase(self) -> str:
        """before, open or after."""
        if self.now < self.starts:
            return "before"
        return "open" if self.now < self.ends else "after"


@dataclass(frozen=True)
class Assigned:
    """One application assigned to the evaluator, as it may see it, with its own sheets per part."""

    application_id: int
    receipt_no: str
    applicant: str
    state: str  # as the evaluator is shown it (results folded under embargo)
    sheets: dict[str, bool | None]  # part -> entered (None: that part's sheet is not due yet)


@dataclass(frozen=True)
class Part:
    """One part (written or presentation) of one track: its window, the due, entered and missing sheets."""

    part: str
    window: Window
    due: int
    entered: int
    applications: list[Assigned] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return self.due - self.entered


@dataclass(frozen=True)
class TrackWork:
    track: str
    parts: list[Part]


def evaluator_language(conn: Connection, evaluator_id: int | None) -> str | None:
    """The evaluator's language from the committee import (its row's `language`), if it has one."""
    row = conn.execute(sa.select(EVALUATOR).where(EVALUATOR.c.id == evaluator_id)).mappings().first()
    language = None if row is None else row.get("language")
    return language if language in ("ko", "en") else None


def windows_of(track_row: Mapping[Any, Any], now: datetime) -> dict[str, Window]:
    """A track row's evaluation windows by part."""
    return {p: Window(p, track_row[PART_WINDOW[p][0]], track_row[PART_WINDOW[p][1]], now) for p in PARTS}


def track_of(conn: Connection, application_id: int) -> str:
    """The key of an application's track (check_access first)."""
    return str(
        conn.execute(
            sa.select(TRACK.c.key)
            .join(APPLICATION, APPLICATION.c.track_id == TRACK.c.id)
            .where(APPLICATION.c.id == application_id)
        ).scalar_one()
    )


def windows_of_application(conn: Connection, application_id: int, now: datetime) -> dict[str, Window]:
    """The evaluation windows of an application's track (check_access first)."""
    track_row = (
        conn.execute(
            sa.select(TRACK)
            .join(APPLICATION, APPLICATION.c.track_id == TRACK.c.id)
            .where(APPLICATION.c.id == application_id)
        )
        .mappings()
        .one()
    )
    return windows_of(track_row, now)


def assignments(app: App, conn: Connection, who: Principal) -> list[TrackWork]:
    """The evaluator's assignments free of conflict, by track (config order) and part, each part with
    its window and how many of its sheets are due, entered and missing (counted as read/committee
    counts them: a part's sheet is due once the application is in that part or past it)."""
    seer = visibility.viewer(who)
    rows = conn.execute(
        visibility.joined(
            APPLICATION.c.id,
            APPLICATION.c.receipt_no,
            APPLICATION.c.state,
            APPLICANT.c.name,
            TRACK.c.key,
            visibility.EMBARGOED.label("embargoed"),
        )
        .join(ASSIGNMENT, ASSIGNMENT.c.application_id == APPLICATION.c.id)
        .where(ASSIGNMENT.c.evaluator_id == who.evaluator_id, visibility.where_visible(app, conn, who))
        .order_by(APPLICATION.c.receipt_no, APPLICATION.c.id)
    ).all()
    mine = {
        (int(i), p)
        for i, p in conn.execute(
            sa.select(SCORE.c.application_id, SCORE.c.part).where(SCORE.c.evaluator_id == who.evaluator_id).distinct()
        )
    }
    by_track: dict[str, list[Any]] = {}
    for r in rows:
        by_track.setdefault(r.key, []).append(r)
    now = app.clock.now()
    out = []
    for contest in app.loaded.config.contests:
        for track in contest.tracks:
            if track.key not in by_track:
                continue
            track_row = conn.execute(sa.select(TRACK).where(TRACK.c.key == track.key)).mappings().one()
            windows = windows_of(track_row, now)
            listed = []
            for r in by_track[track.key]:
                sheets = {p: ((int(r.id), p) in mine if r.state in DUE[p] else None) for p in PARTS}
                shown = rule.application(seer, {"state": r.state}, bool(r.embargoed))["state"]
                listed.append(Assigned(int(r.id), r.receipt_no or str(r.id), r.name, shown, sheets))
            parts = []
            for p in PARTS:
                due = [a for a in listed if a.sheets[p] is not None]
                parts.append(Part(p, windows[p], len(due), sum(1 for a in due if a.sheets[p]), listed))
            out.append(TrackWork(track.key, parts))
    return out


@dataclass(frozen=True)
class Sheet:
    """The evaluator's own sheet of one application and part: its points (None: not entered), when,
    and, if it was corrected, the total before the last correction."""

    part: str
    points: dict[str, Decimal] | None
    entered_at: datetime | None
    corrected: bool
    previous_total: Decimal | None

    @property
    def total(self) -> Decimal | None:
        return None if self.points is None else sum(self.points.values(), Decimal(0))


def own_sheets(app: App, conn: Connection, who: Principal, application_id: int) -> dict[str, Sheet]:
    """part -> the caller's own sheet of the application (check_access first); the correction
    from the events the service recorded (score_corrected keeps the old points as `was`)."""
    visibility.check_access(app, conn, who, application_id)
    ev_email = conn.execute(sa.select(EVALUATOR.c.email).where(EVALUATOR.c.id == who.evaluator_id)).scalar_one()
    points: dict[str, dict[str, Decimal]] = {}
    entered: dict[str, datetime] = {}
    for part, criterion, x100, at in conn.execute(
        sa.select(SCORE.c.part, SCORE.c.criterion, SCORE.c.points_x100, SCORE.c.entered_at).where(
            SCORE.c.application_id == application_id, SCORE.c.evaluator_id == who.evaluator_id
        )
    ):
        points.setdefault(part, {})[criterion] = Decimal(x100) / 100
        entered[part] = max(entered.get(part, at), at)
    last: dict[str, Any] = {}  # part -> the last event that stored the sheet now kept (newest first, stop when known)
    if points:
        for kind, detail in conn.execute(
            sa.select(EVENT.c.kind, EVENT.c.detail)
            .where(EVENT.c.application_id == application_id, EVENT.c.kind.in_(("scored", "score_corrected")))
            .order_by(EVENT.c.id.desc())
            .execution_options(yield_per=50)
        ):
            parsed = _json(detail)
            part = parsed.get("part", "")
            if parsed.get("evaluator") == ev_email and part in points and part not in last:
                last[part] = (kind, parsed)
                if len(last) == len(points):
                    break
    out = {}
    for part in PARTS:
        kind, detail = last.get(part, ("", {}))
        corrected = part in points and kind == "score_corrected"
        was = detail.get("was") if corrected else None
        previous = sum((Decimal(v) for v in was.values()), Decimal(0)) if isinstance(was, dict) else None
        out[part] = Sheet(part, points.get(part), entered.get(part), corrected, previous)
    return out


def _json(value: Any) -> dict[str, Any]:
    loaded = json.loads(value) if isinstance(value, str) else value
    return loaded if isinstance(loaded, dict) else {}


def sheet_problems(criteria: list[Criterion], given: Mapping[str, str]) -> dict[str, str]:
    """criterion -> what is wrong with the typed points (empty: the sheet may be sent): the rules
    the service applies (states/scoring: a plain number, hundredths at most, 0 to the criterion's
    maximum, every criterion present), checked field by field so each error stands beside its
    field. The service checks the whole sheet again when it stores it."""
    problems: dict[str, str] = {}
    parsed: dict[str, Decimal] = {}
    for c in criteria:
        text = (given.get(c.key) or "").strip()
        if not text:
            problems[c.key] = f"{c.key} has no points: give 0 to {c.points}"
            continue
        if any(ch.isdecimal() and not ch.isascii() for ch in text):
            problems[c.key] = f"{c.key} = {text[:12]!r}: write points with the digits 0-9, e.g. 22.5"
            continue
        try:
            value = parse_points(text[:12], c.key)
        except InvalidInput as exc:
            problems[c.key] = str(exc)
            continue
        if len(text) > 12:
            problems[c.key] = f"{c.key}: at most 12 characters"
            continue
        if not (0 <= value <= c.points):
            problems[c.key] = f"{c.key} = {value}: out of range, give 0 to {c.points}"
            continue
        parsed[c.key] = value
    if not problems:
        check_sheet(criteria, parsed)  # the whole sheet, as the service checks it (raises if not)
    return problems


def part_state(part: str) -> str:
    """The application state in which a part's sheets are entered."""
    return PART_STATE[part]


# -- the applicant's portal -------------------------------------------------------------------

# The milestones that matter to an application in each state, in calendar order: the next one still
# ahead is the date its page shows (its own extension of a milestone replaces the track's).
NEXT_MILESTONES: dict[str, tuple[str, ...]] = {
    "announcement": ("receipt_opens", "receipt_closes"),
    "receipt": ("receipt_closes", "review_ends"),
    "preliminary_review": ("review_ends", "written_starts"),
    "written_evaluation": ("written_ends", "presentation_starts"),
    "presentation_evaluation": ("presentation_starts", "presentation_ends", "selection_at"),
    "selected": ("kickoff_due",),
    "waitlisted": ("kickoff_due",),
}


@dataclass(frozen=True)
class NextDate:
    """The next date that matters to one application: a milestone of its track's calendar (or its own
    extension of it, `extended`), its own deadline row, or the end of its objection window."""

    milestone: str
    at: datetime
    extended: bool = False


@dataclass(frozen=True)
class ReceiptWindow:
    """A track's receipt window for one applicant (its own extension of the close counts)."""

    opens: datetime
    closes: datetime
    now: datetime
    extended: bool = False
    closed_for_good: bool = False  # the close has fired for this application (a lagging clock cannot reopen it)

    @property
    def phase(self) -> str:
        """before, open or after."""
        if self.now < self.opens:
            return "before"
        return "open" if self.now < self.closes and not self.closed_for_good else "after"


def applicant_language(conn: Connection, applicant_id: int | None) -> str | None:
    """The applicant's language from its record, if it is one the portal speaks."""
    found = conn.execute(sa.select(APPLICANT.c.language).where(APPLICANT.c.id == applicant_id)).scalar()
    return found if found in ("ko", "en") else None


def my_applications(app: App, conn: Connection, who: Principal) -> list[dict[str, Any]]:
    """The caller's applications as visibility shows them (results folded under embargo), each with
    its `next` date (NextDate or None), by id."""
    _, rows = visibility.page(app, conn, who, 0, 10_000)
    now = app.clock.now()
    out = []
    for row in rows:
        track_row = conn.execute(sa.select(TRACK).where(TRACK.c.key == row["track"])).mappings().one()
        out.append(row | {"next": next_date(app, conn, row, track_row, now)})
    return out


def next_date(
    app: App, conn: Connection, row: Mapping[str, Any], track_row: Mapping[Any, Any], now: datetime
) -> NextDate | None:
    """The next date that matters to an application in the state it is shown in (see NEXT_MILESTONES):
    the earliest still ahead of its track's milestones (its own extensions first), its own unfired
    deadline rows, and, disqualified, the end of its objection window."""
    application_id = int(row["id"])
    found: list[NextDate] = []
    for milestone in NEXT_MILESTONES.get(str(row["state"]), ()):
        own = lookups.extension_until(conn, application_id, milestone)
        at = own or track_row[milestone]
        if at is not None and at > now:
            found.append(NextDate(milestone, at, own is not None))
    if row["state"] in NEXT_MILESTONES:
        for milestone, at in conn.execute(
            sa.select(DEADLINE.c.milestone, DEADLINE.c.due_at).where(
                DEADLINE.c.application_id == application_id, DEADLINE.c.fired_at.is_(None), DEADLINE.c.due_at > now
            )
        ):
            found.append(NextDate(str(milestone), at, True))
    if row["state"] == "disqualified":
        until = objection_deadline(app, conn, application_id, str(track_row["key"]))
        if until is not None and until > now:
            found.append(NextDate("objection_until", until))
    return min(found, key=lambda d: d.at) if found else None


def objection_deadline(app: App, conn: Connection, application_id: int, track_key: str) -> datetime | None:
    """The end of a disqualified application's objection window (review.objection_until)."""
    contest, track = app.loaded.config.track(track_key)
    return review.objection_until(conn, application_id, contest, track)


def receipt_window(
    conn: Connection, track_row: Mapping[Any, Any], application_id: int | None, now: datetime
) -> ReceiptWindow:
    """A track's receipt window as an applicant with this application (None: none yet) has it."""
    own = lookups.extension_until(conn, application_id, "receipt_closes") if application_id else None
    closes = max(own, track_row["receipt_closes"]) if own else track_row["receipt_closes"]
    fired = intake.receipt_closed_for_good(conn, track_row["id"], application_id)
    return ReceiptWindow(track_row["receipt_opens"], closes, now, own is not None, fired)


def own_application(conn: Connection, who: Principal, track_id: int) -> RowMapping | None:
    """The caller's application in a track (an applicant has at most one per track), if any."""
    query = sa.select(APPLICATION).where(
        APPLICATION.c.track_id == track_id, APPLICATION.c.applicant_id == who.applicant_id
    )
    return conn.execute(query).mappings().first()


def notices(conn: Connection, who: Principal, application_id: int | None = None) -> list[dict[str, Any]]:
    """The notices sent to the caller about its applications (of one, if given), newest first, as the
    visibility rule lets it read them: sent only (a result held under embargo is not sent)."""
    mine = sa.select(APPLICATION.c.id).where(APPLICATION.c.applicant_id == who.applicant_id)
    query = sa.select(*OUTBOX_LIST, OUTBOX.c.ics.is_not(None).label("has_ics")).where(OUTBOX.c.application_id.in_(mine))
    if application_id is not None:
        query = query.where(OUTBOX.c.application_id == application_id)
    seer = visibility.viewer(who)
    out = []
    for r in conn.execute(query.order_by(OUTBOX.c.id.desc())).mappings():
        shown = rule.notice(seer, r)
        if shown is not None:
            out.append(shown | {"application_id": r["application_id"], "has_ics": bool(r["has_ics"])})
    return out


def notice(conn: Connection, who: Principal, outbox_id: int) -> dict[str, Any]:
    """One notice sent to the caller, with its bodies and calendar file: NotFound when there is no
    such notice, or it is not one sent to the caller (another's, a sign-in link, one not sent)."""
    row = conn.execute(sa.select(OUTBOX).where(OUTBOX.c.id == outbox_id)).mappings().first()
    owner = None
    if row is not None and row["application_id"] is not None:
        owner = conn.execute(
            sa.select(APPLICATION.c.applicant_id).where(APPLICATION.c.id == row["application_id"])
        ).scalar()
    if row is None or owner is None or row["notice"] in SECRET_NOTICES:
        raise NotFound(f"no notice {outbox_id}: see /applicant/notices")
    if owner != who.applicant_id or rule.notice(visibility.viewer(who), row) is None:
        raise NotVisible(f"notice {outbox_id} is not one sent to {who.subject}: see /applicant/notices")
    shown = rule.notice(visibility.viewer(who), row) or {}
    return shown | {k: row[k] for k in ("application_id", "to_addr", "body_text", "body_html", "ics", "message_id")}


def explained_result(app: App, conn: Connection, who: Principal, application_id: int) -> list[reasons.Reason]:
    """The explained result once the caller may see it (released; check_access first): the figures
    the result notice gives (its part scores and how they were aggregated, the committee score, its
    rank, ties), from the same ranking (selection.figures). Empty before the release or unranked."""
    shown = visibility.detail(app, conn, who, application_id)
    if shown.get("result") is None:
        return []
    _, track = app.loaded.config.track(shown["track"])
    own = selection.figures(selection.ranking_in(conn, track)).get(application_id)
    if own is None:
        return []
    return [own.written, own.presentation, own.weighted, own.rank, *own.ties]
