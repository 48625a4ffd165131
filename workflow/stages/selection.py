"""Ranking and selection of a track: from the committee's scores to the decisions.

`ranking` reads every sheet of every application in (or past) presentation
evaluation and ranks them with the pure rules in states.scoring; the table
carries every component (each part's aggregate and how it was made, the
tie-break values), so any rank can be explained. `select` turns the ranking
into decisions with states.selection and, with confirm, applies them all in
one transaction: the moves, the audit rows, the notices (held until the
office releases them), the rank and score on each application.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.notifications import reasons
from gongmo.states.committee import conflict
from gongmo.states.errors import Conflict, InvalidInput, OutsideWindow
from gongmo.states.scoring import PARTS, Entry, PartScore, Ranked, Sheet, Weights, decisive, part_score, rank
from gongmo.states.selection import Candidate, Decision, decide
from gongmo.workflow.core import lookups
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.config import Track
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICANT, APPLICATION, ASSIGNMENT, EVALUATOR, SCORE, TRACK
from gongmo.workflow.engine import events, waitlist
from gongmo.workflow.stages import committee, review

if TYPE_CHECKING:
    from gongmo.workflow.engine.app import App

RANKED_STATES = ("presentation_evaluation", "selected", "waitlisted", "not_selected", "kickoff", "cancelled")
TRIGGER = {"select": "select", "waitlist": "waitlist", "reject": "reject"}


@dataclass(frozen=True)
class Ranking:
    track: Track
    rows: list[Ranked]
    names: dict[int, str]  # application id -> applicant name
    states: dict[int, str]
    incomplete: list[str]  # applications that cannot be ranked yet, and why

    def weights(self) -> Weights:
        e = self.track.evaluation
        return Weights(e.written_weight, e.presentation_weight)


def ranking(app: App, track_key: str) -> Ranking:
    _, track = app.loaded.config.track(track_key)
    with read(app.db) as conn:
        return ranking_in(conn, track)


def ranking_in(conn: Connection, track: Track) -> Ranking:
    """The ranking read inside the caller's transaction (one snapshot with what it reads besides)."""
    track_id = conn.execute(sa.select(TRACK.c.id).where(TRACK.c.key == track.key)).scalar_one()
    apps = conn.execute(
        sa.select(
            APPLICATION.c.id,
            APPLICATION.c.receipt_no,
            APPLICATION.c.state,
            APPLICATION.c.submitted_at,
            APPLICATION.c.national_krw,
            APPLICANT.c.name,
            APPLICANT.c.code,
        )
        .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
        .where(APPLICATION.c.track_id == track_id, APPLICATION.c.state.in_(RANKED_STATES))
        .order_by(APPLICATION.c.receipt_no)
    ).all()
    ids = [int(a.id) for a in apps]
    # Only evaluators free of any conflict count, even if one became conflicted after being assigned.
    pool = {e.key: e for e in committee.evaluators(conn)}
    codes = {int(a.id): a.code for a in apps}
    same_region = track.evaluation.conflict_same_region
    assigned: dict[int, set[str]] = defaultdict(set)
    for r in conn.execute(
        sa.select(ASSIGNMENT.c.application_id, EVALUATOR.c.email)
        .join(EVALUATOR, EVALUATOR.c.id == ASSIGNMENT.c.evaluator_id)
        .where(ASSIGNMENT.c.application_id.in_(ids))
    ):
        if conflict(pool[r[1]], codes[int(r[0])], same_region) is None:
            assigned[int(r[0])].add(r[1])
    points: dict[tuple[int, str, str], dict[str, Decimal]] = defaultdict(dict)
    for r in conn.execute(
        sa.select(SCORE.c.application_id, EVALUATOR.c.email, SCORE.c.part, SCORE.c.criterion, SCORE.c.points_x100)
        .join(EVALUATOR, EVALUATOR.c.id == SCORE.c.evaluator_id)
        .where(SCORE.c.application_id.in_(ids))
    ):
        points[(int(r[0]), r[1], r[2])][r[3]] = Decimal(r[4]) / 100
    method = track.evaluation.aggregation
    entries: list[Entry] = []
    incomplete: list[str] = []
    for a in apps:
        label = a.receipt_no or str(a.id)
        sheets = [Sheet(ev, part, p) for (i, ev, part), p in points.items() if i == a.id and ev in assigned[a.id]]
        missing = [
            f"{part} {len(assigned[a.id]) - sum(1 for s in sheets if s.part == part)} of {len(assigned[a.id])}"
            for part in PARTS
            if not assigned[a.id] or sum(1 for s in sheets if s.part == part) < len(assigned[a.id])
        ]
        if missing:
            incomplete.append(f"{label}: sheets missing ({', '.join(missing)})")
            continue
        entries.append(
            Entry(
                application_id=int(a.id),
                label=label,
                submitted_at=a.submitted_at,
                national_krw=int(a.national_krw or 0),
                written=part_score(sheets, "written", method),
                presentation=part_score(sheets, "presentation", method),
            )
        )
    e = track.evaluation
    rows = rank(entries, Weights(e.written_weight, e.presentation_weight), e.tie_breaks, e.minimum_score)
    return Ranking(track, rows, {int(a.id): a.name for a in apps}, {int(a.id): a.state for a in apps}, incomplete)


@dataclass(frozen=True)
class Selection:
    ranking: Ranking
    decisions: list[Decision]
    applied: bool

    def count(self, outcome: str) -> int:
        return sum(1 for d in self.decisions if d.outcome == outcome)

    @property
    def plan(self) -> str:
        """A digest of the decisions (who, what, rank, waitlist position): what a person confirming
        saw in the dry run, so a confirmation refuses any change since, not only another count."""
        return plan_of(self.decisions)


def plan_of(decisions: list[Decision]) -> str:
    text = ";".join(f"{d.application_id}:{d.outcome}:{d.rank}:{d.waitlist_position or ''}" for d in decisions)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def select(
    app: App,
    track_key: str,
    actor: Actor,
    confirm: bool = False,
    expected: int | None = None,
    plan: str | None = None,
) -> Selection:
    """The decisions for every application in presentation evaluation: without `confirm` a dry run
    (the same reads and rules, in a read transaction: nothing is written); with it, applied in one
    transaction. With `expected` (how many decisions the person confirming saw in a dry run), a
    confirmation that would decide another number of applications is refused, nothing changed; with
    `plan` (the dry run's Selection.plan), one whose decisions differ in any way (a score corrected
    since moves someone past the cutoff) is refused too."""
    contest, track = app.loaded.config.track(track_key)
    now = app.clock.now()
    with write(app.db) if confirm else read(app.db) as conn:
        track_row = lookups.track_by_key(conn, app.loaded.config, track_key, lock=confirm)
        if confirm and now < track_row["presentation_ends"]:
            tz = ZoneInfo(contest.timezone)
            raise OutsideWindow(
                f"track {track_key}: the presentation evaluation runs until"
                f" {track_row['presentation_ends'].astimezone(tz):%Y-%m-%d %H:%M %Z}; select after it"
            )
        review.refuse_if_objections(conn, track_row["id"], track_key, "selection")
        result = ranking_in(conn, track)
        waiting = [r for r in result.rows if result.states[r.entry.application_id] == "presentation_evaluation"]
        if result.incomplete:
            raise InvalidInput(
                f"track {track_key}: cannot rank every application yet: "
                + "; ".join(result.incomplete)
                + " (enter the missing scores with `gongmo score` or `gongmo scores import`)"
            )
        if not waiting:
            raise Conflict(
                f"track {track_key}: no application is waiting in presentation evaluation (already selected?)"
            )
        e = track.evaluation
        candidates = [
            Candidate(r.entry.application_id, r.entry.label, r.rank, r.total, r.qualified, r.entry.national_krw)
            for r in waiting
        ]
        decisions = decide(candidates, track.slots, track.funding.budget_national_krw, e.waitlist, e.minimum_score)
        if confirm and expected is not None and len(decisions) != expected:
            raise Conflict(
                f"track {track_key}: the selection would decide {len(decisions)} applications, not the {expected}"
                " of the dry run you saw: look at the dry run again; nothing was changed"
            )
        if confirm and plan is not None and plan_of(decisions) != plan:
            raise Conflict(
                f"track {track_key}: the decisions changed since the dry run you saw (a score entered or corrected"
                " since?): look at the dry run again; nothing was changed"
            )
        if confirm:
            _apply(app, conn, track_row, result, decisions, actor, now)
    return Selection(result, decisions, confirm)


def _apply(
    app: App,
    conn: Connection,
    track_row: Any,
    result: Ranking,
    decisions: list[Decision],
    actor: Actor,
    now: datetime,
) -> None:
    totals = {r.entry.application_id: r for r in result.rows}
    of = len(result.rows)
    contest, _ = app.loaded.config.track(track_row["key"])
    until = track_row[result.track.promotion_until]
    explained = explain(result, decisions, until, contest.timezone)
    for d in decisions:
        r = totals[d.application_id]
        reason = f"committee score {r.total}, rank {d.rank} of {of}; {d.note}"
        fields = {"rank": d.rank, "score": str(r.total), "waitlist_position": d.waitlist_position}
        extra = {
            "waitlist_position": d.waitlist_position or 0,
            "reason": _why(d, r.total, of, app, track_row),
            "explanation": [*explained[d.application_id].figures, *explained[d.application_id].rule],
        }
        app.moves.move(conn, d.application_id, TRIGGER[d.outcome], actor, reason, extra=extra, fields=fields)
    summary = {
        "selected": [d.label for d in decisions if d.outcome == "select"],
        "waitlisted": [d.label for d in decisions if d.outcome == "waitlist"],
        "not_selected": [d.label for d in decisions if d.outcome == "reject"],
        # the waitlisted ones' figures, for the explanation of a later promotion (engine/waitlist.py)
        FIGURES: {
            str(d.application_id): [f.plain() for f in explained[d.application_id].figures]
            for d in decisions
            if d.outcome == "waitlist"
        },
    }
    events.record(conn, now, actor, "selection", summary, track_row["id"])


@dataclass(frozen=True)
class Explained:
    """How one application's result was reached: its figures from the ranking rows, and the rule that decided."""

    figures: list[reasons.Reason]
    rule: list[reasons.Reason]


@dataclass(frozen=True)
class Figures:
    """One ranked application's own figures, worded by the catalogue (notifications/reasons.py) and
    needing no decision: each part's score and how it was aggregated, the weighted committee score,
    its rank among the qualified (or below the minimum), and a tie with a neighbour with the
    tie-break that decided it. The notices' explanation and the console's ranking page show them."""

    written: reasons.Reason
    presentation: reasons.Reason
    weighted: reasons.Reason
    rank: reasons.Reason
    ties: list[reasons.Reason]


def figures(result: Ranking) -> dict[int, Figures]:
    """Every ranked application's figures (see Figures), by application id."""
    rows = result.rows
    weights = result.weights()
    e = result.track.evaluation
    qualified = sum(1 for r in rows if r.qualified)
    base = {"minimum": str(e.minimum_score), "qualified": qualified, "below": len(rows) - qualified}
    criteria = {c.key: {"ko": c.name_ko, "en": c.name_en} for c in e.criteria}
    out: dict[int, Figures] = {}
    for i, r in enumerate(rows):
        weighted = reasons.Reason(
            "explain.weighted",
            {
                "written": str(r.entry.written.score),
                "written_weight": str(weights.written),
                "presentation": str(r.entry.presentation.score),
                "presentation_weight": str(weights.presentation),
                "score": str(r.total),
            },
        )
        rank = (
            reasons.Reason("explain.rank", {**base, "rank": r.rank})
            if r.qualified
            else reasons.Reason("explain.rank_unqualified", base)
        )
        ties = _ties(rows, i, weights, e.tie_breaks, criteria)
        out[r.entry.application_id] = Figures(_part(r.entry.written), _part(r.entry.presentation), weighted, rank, ties)
    return out


def explain(result: Ranking, decisions: list[Decision], promotion_until: datetime, zone: str) -> dict[int, Explained]:
    """Each decided application's explanation, from the ranking rows (`ranking_in`, the rows `gongmo
    rank` prints) and the decisions: its own part scores and how each was aggregated, the weighted
    committee score, its rank among the qualified, the cutoff (the committee score of the last
    selected application), a tie with a neighbour and the tie-break that decided it (the other
    application only by its figure), and the rule. Never an evaluator or a single sheet."""
    rows = result.rows
    qualified = sum(1 for r in rows if r.qualified)
    selected = {d.application_id for d in decisions if d.outcome == "select"}
    chosen = [r.total for r in rows if r.entry.application_id in selected]
    cutoff = (
        reasons.Reason("explain.cutoff", {"cutoff": str(min(chosen))})
        if chosen
        else reasons.Reason("explain.no_cutoff")
    )
    until = f"{promotion_until.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M %Z}"
    by_id = {r.entry.application_id: r for r in rows}
    own = figures(result)
    out: dict[int, Explained] = {}
    for d in decisions:
        f = own[d.application_id]
        shown = [f.written, f.presentation, f.weighted, f.rank, cutoff, *f.ties]
        out[d.application_id] = Explained(shown, [_rule(d, by_id[d.application_id], qualified, result.track, until)])
    return out


FIGURES = waitlist.SELECTION_FIGURES  # the selection event's key for the waitlisted applications' figures


def _part(part: PartScore) -> reasons.Reason:
    values = {"part": part.part, "score": str(part.score), "sheets": part.evaluators}
    if part.dropped:
        return reasons.Reason(
            "explain.part_trimmed", {**values, "counted": part.evaluators - len(part.dropped)}, ("part",)
        )
    return reasons.Reason("explain.part_mean", values, ("part",))


def _ties(
    rows: list[Ranked], i: int, weights: Weights, tie_breaks: list[str], criteria: dict[str, dict[str, str]]
) -> list[reasons.Reason]:
    """One line for each neighbour of the same committee score: the tie-break that ordered the two."""
    me = rows[i]
    tied = [r for r in rows if r.total == me.total]
    out = []
    for j in (i - 1, i + 1):
        if not 0 <= j < len(rows) or rows[j].total != me.total:
            continue
        above, below = (rows[j], me) if j < i else (me, rows[j])
        base = {"score": str(me.total), "others": len(tied) - 1}
        found = decisive(above.entry, below.entry, weights, tie_breaks)
        if found is None:
            out.append(reasons.Reason("explain.tie_undecided", base))
            continue
        name, above_shown, below_shown = found
        mine, theirs = (below_shown, above_shown) if j < i else (above_shown, below_shown)
        if mine == theirs:  # the receipt, within one second: the receipt number decided
            out.append(reasons.Reason("explain.tie_same_second", {**base, "mine": mine}))
        else:
            tiebreak = reasons.tie_break_name(name, criteria)
            out.append(reasons.Reason("explain.tie", {**base, "tiebreak": tiebreak, "mine": mine, "theirs": theirs}))
    return out


def _rule(d: Decision, r: Ranked, qualified: int, track: Track, until: str) -> reasons.Reason:
    """The rule that decided, one line."""
    e = track.evaluation
    base = {"rank": d.rank, "qualified": qualified, "slots": track.slots}
    money = ("national", "left")
    if d.cause == "minimum":
        return reasons.Reason("explain.rule_below_minimum", {"score": str(r.total), "minimum": str(e.minimum_score)})
    if d.outcome == "select":
        return reasons.Reason("explain.rule_selected", base)
    skipped = {"rank": d.rank, "national": r.entry.national_krw, "left": d.left_krw}
    if d.outcome == "waitlist":
        if d.cause == "budget":
            values = {**skipped, "position": d.waitlist_position or 0, "until": until}
            return reasons.Reason("explain.rule_waitlisted_budget", values, money=money)
        return reasons.Reason("explain.rule_waitlisted", {**base, "position": d.waitlist_position or 0, "until": until})
    if d.cause == "budget":
        return reasons.Reason("explain.rule_budget_skip", {**skipped, "waitlist": e.waitlist}, money=money)
    return reasons.Reason("explain.rule_slots_full", {**base, "waitlist": e.waitlist})


_BUDGET = re.compile(r"national share of ([\d,]+) won exceeds the ([\d,]+) won left")


def _why(d: Decision, score: Any, of: int, app: App, track_row: Any) -> list[reasons.Reason]:
    """The decision's reason as the applicant reads it (the catalogue's, in its language)."""
    _, track = app.loaded.config.track(track_row["key"])
    base = {"score": str(score), "rank": d.rank, "of": of}
    budget = _BUDGET.search(d.note)
    if "below the qualifying minimum" in d.note:
        return [reasons.Reason("selection.below_minimum", {**base, "minimum": str(track.evaluation.minimum_score)})]
    if d.outcome == "select":
        return [reasons.Reason("selection.selected", {**base, "slots": track.slots})]
    if budget:
        national, left = (int(g.replace(",", "")) for g in budget.groups())
        why = [reasons.Reason("selection.budget_skip", {**base, "national": national, "left": left})]
    else:
        why = [reasons.Reason("selection.slots_full", {**base, "slots": track.slots})]
    if d.outcome == "waitlist":
        return [*why, reasons.Reason("selection.waitlist_position", {"position": d.waitlist_position or 0})]
    return [*why, reasons.Reason("selection.waitlist_full", {"waitlist": track.evaluation.waitlist})]


def table(result: Ranking, decisions: list[Decision] | None = None) -> list[dict[str, Any]]:
    """One row per ranked application with every component (for the CLI, JSON and exports)."""
    by_id = {d.application_id: d for d in decisions or []}
    weights = result.weights()
    crit = [c.key for c in result.track.evaluation.criteria]
    out = []
    for r in result.rows:
        e = r.entry
        d = by_id.get(e.application_id)
        out.append(
            {
                "rank": r.rank,
                "receipt_no": e.label,
                "applicant": result.names[e.application_id],
                "state": result.states[e.application_id],
                "written": str(e.written.score),
                "written_how": e.written.how,
                "presentation": str(e.presentation.score),
                "presentation_how": e.presentation.how,
                "score": str(r.total),
                "qualified": r.qualified,
                **{f"criterion:{k}": str(e.criterion(k, weights)) for k in crit},
                "national_krw": e.national_krw,
                "submitted_at": e.submitted_at,
                "tie": r.tie or "",
                "decision": {"select": "selected", "waitlist": "waitlisted", "reject": "not selected"}.get(
                    d.outcome if d else "", ""
                ),
                "note": d.note if d else "",
            }
        )
    return out
