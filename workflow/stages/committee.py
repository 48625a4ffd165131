"""The committee at work: evaluators, conflicts, assignments and scores.

Every score is checked where it is entered: the criteria and their ranges,
the evaluator assigned to that application and free of any conflict, the
application in the evaluation part the score is for, the time inside that
part's window, and no objection open on the track. A CSV of scores is
all-or-nothing: every row is checked, every problem reported with its row,
and nothing is stored unless all rows are good.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError
from sqlalchemy.engine import Connection

from gongmo.states.committee import Evaluator, Seat, assign, conflict, parse_region
from gongmo.states.errors import Conflict, GongmoError, InvalidInput, NotFound, OutsideWindow
from gongmo.states.lifecycle import Role
from gongmo.states.scoring import PARTS, Criterion, check_sheet, parse_points
from gongmo.workflow.core import lookups
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.config import Track
from gongmo.workflow.core.csvfile import (
    MAX_CSV_BYTES,
    Problems,
    header_of,
    header_problems,
    open_csv,
    records,
    shown,
)
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import (
    APPLICANT,
    APPLICATION,
    ASSIGNMENT,
    DECLARED_CONFLICT,
    EVALUATOR,
    MAX_ID,
    SCORE,
    TRACK,
)
from gongmo.workflow.engine import events
from gongmo.workflow.stages import review

if TYPE_CHECKING:
    from gongmo.workflow.engine.app import App

EVALUATOR_COLUMNS = ("name", "email", "affiliation", "region", "home_code", "conflicts")
EVALUATOR_OPTIONAL = ("language",)  # ko or en: the evaluator's pages and sign-in mail (ko when absent)
IMPORT = Actor("evaluators import", Role.ADMIN)
PART_STATE = {"written": "written_evaluation", "presentation": "presentation_evaluation"}
PART_WINDOW = {
    "written": ("written_starts", "written_ends"),
    "presentation": ("presentation_starts", "presentation_ends"),
}


# -- evaluators -----------------------------------------------------------------


class EvaluatorRow(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=60)
    email: EmailStr
    affiliation: str = Field(min_length=1, max_length=120)
    region: str
    home_code: str | None = Field(default=None, pattern=r"^[0-9]{5}$")  # not \d: any Unicode digit
    conflicts: list[str] = Field(default_factory=list)
    language: str | None = Field(default=None, pattern=r"^(ko|en)$")  # the portal's; None: left as it is (ko)


FIXES = {
    "name": "the evaluator's name",
    "email": "an e-mail address (it identifies the evaluator)",
    "affiliation": "university, institute or company",
    "region": "the 시·도 they live or work in, e.g. 경기도, 경기 or 41",
    "home_code": "empty, or the 5-digit code of the local government they belong to",
    "conflicts": "empty, or applicant codes separated by ';', e.g. 41110;44200",
    "language": "empty, ko or en (the language of the evaluator's pages and sign-in mail)",
}


def parse_evaluators(path: Path, max_bytes: int = MAX_CSV_BYTES) -> list[tuple[EvaluatorRow, str]]:
    """Rows with their region code; all problems at once (the first 50 and a count), or nothing."""
    rows_in = open_csv(path, max_bytes)
    header = header_of(rows_in, path)
    wrong = header_problems(header, EVALUATOR_COLUMNS[:4], EVALUATOR_COLUMNS + EVALUATOR_OPTIONAL)
    if wrong:
        raise InvalidInput(
            f"{path}: header must be {','.join(EVALUATOR_COLUMNS)} (the last two may be left out){wrong};"
            " nothing was imported"
        )
    rows: list[tuple[EvaluatorRow, str]] = []
    problems = Problems(path)
    seen: dict[str, int] = {}
    for number, cells in records(rows_in, header, path, problems):
        record: dict[str, Any] = {k: v.strip() for k, v in cells.items()}
        record["home_code"] = record.get("home_code") or None
        record["language"] = record.get("language") or None
        codes = [c.strip() for c in (record.get("conflicts") or "").replace(",", ";").split(";") if c.strip()]
        record["conflicts"] = codes
        bad = [c for c in codes if not (len(c) == 5 and c.isascii() and c.isdigit())]
        if bad:
            problems.append(f"{path}: row {number}, column conflicts = {shown(bad[0])}: expected {FIXES['conflicts']}")
            continue
        try:
            row = EvaluatorRow.model_validate(record)
            region = parse_region(row.region)
        except ValidationError as exc:
            for err in exc.errors():
                column = str(err["loc"][0]) if err["loc"] else "?"
                problems.append(
                    f"{path}: row {number}, column {column} = {shown(str(record.get(column, '')))}:"
                    f" {err['msg'].removeprefix('Value error, ')}; expected {FIXES.get(column, '')}"
                )
            continue
        except InvalidInput as exc:
            problems.append(f"{path}: row {number}, column region: {exc}")
            continue
        key = row.email.lower()
        if key in seen:
            problems.append(f"{path}: row {number}, column email = {row.email!r}: already on row {seen[key]}")
            continue
        seen[key] = number
        rows.append((row, region))
    if problems:
        raise InvalidInput(problems.refusal())
    if not rows:
        raise InvalidInput(f"{path}: no rows after the header; nothing was imported")
    return rows


def store_evaluators(conn: Connection, rows: list[tuple[EvaluatorRow, str]], now: datetime) -> tuple[int, int]:
    created = updated = 0
    for row, region in rows:
        values = {
            "email": row.email.lower(),
            "name": row.name,
            "affiliation": row.affiliation,
            "region": region,
            "home_code": row.home_code,
        }
        if row.language is not None:
            values["language"] = row.language
        existing = conn.execute(sa.select(EVALUATOR).where(EVALUATOR.c.email == values["email"])).mappings().first()
        if existing is None:
            evaluator_id = int(
                conn.execute(sa.insert(EVALUATOR).values(**values).returning(EVALUATOR.c.id)).scalar_one()
            )
            created += 1
        else:
            evaluator_id = int(existing["id"])
            if any(existing[k] != v for k, v in values.items()):
                conn.execute(sa.update(EVALUATOR).where(EVALUATOR.c.id == evaluator_id).values(**values))
                updated += 1
        for code in row.conflicts:
            if _declare(conn, evaluator_id, code, "declared in the committee list", now):
                ev = {"id": evaluator_id, "email": values["email"]}
                _withdraw_assignments(conn, ev, code, now, IMPORT)
    return created, updated


def _declare(conn: Connection, evaluator_id: int, code: str, reason: str, now: datetime) -> bool:
    exists = conn.execute(
        sa.select(DECLARED_CONFLICT.c.id).where(
            DECLARED_CONFLICT.c.evaluator_id == evaluator_id, DECLARED_CONFLICT.c.applicant_code == code
        )
    ).first()
    if exists:
        return False
    conn.execute(
        sa.insert(DECLARED_CONFLICT).values(
            evaluator_id=evaluator_id, applicant_code=code, reason=reason, declared_at=now
        )
    )
    return True


def declare_conflict(app: App, email: str, applicant_code: str, reason: str, actor: Actor) -> str:
    """Record a declared conflict; an assignment it breaks is withdrawn with its scores."""
    if not reason.strip():
        raise InvalidInput(
            "{field} is empty: say what the conflict is, e.g. {example}",
            field="reason",
            value=reason,
            example='"자문위원 위촉"',
        )
    now = app.clock.now()
    with write(app.db) as conn:
        ev = _evaluator(conn, email)
        if conn.execute(sa.select(APPLICANT.c.id).where(APPLICANT.c.code == applicant_code)).first() is None:
            raise NotFound(f"no applicant with code {applicant_code!r}: see `gongmo applicants list`")
        if not _declare(conn, ev["id"], applicant_code, reason.strip(), now):
            return f"{email} already declared a conflict with {applicant_code}"
        events.record(conn, now, actor, "conflict_declared", {"evaluator": ev["email"], "applicant": applicant_code})
        removed = _withdraw_assignments(conn, ev, applicant_code, now, actor)
    return f"conflict recorded: {email} - {applicant_code}" + (f"; {removed}" if removed else "")


def _withdraw_assignments(conn: Connection, ev: Any, applicant_code: str, now: datetime, actor: Actor) -> str:
    query = (
        sa.select(ASSIGNMENT.c.id, ASSIGNMENT.c.application_id, APPLICATION.c.track_id)
        .join(APPLICATION, APPLICATION.c.id == ASSIGNMENT.c.application_id)
        .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
        .where(ASSIGNMENT.c.evaluator_id == ev["id"], APPLICANT.c.code == applicant_code)
    )
    notes = []
    for a in conn.execute(query).all():
        scores = _unassign(conn, a.application_id, ev["id"], ev["email"], a.track_id, "conflict declared", now, actor)
        notes.append(f"application {a.application_id} unassigned ({scores} scores removed)")
    return "; ".join(notes)


def _unassign(
    conn: Connection,
    application_id: int,
    evaluator_id: int,
    email: str,
    track_id: int,
    why: str,
    now: datetime,
    actor: Actor,
) -> int:
    """Withdraw one assignment and the scores made under it; returns how many scores went."""
    mine = (SCORE.c.application_id == application_id) & (SCORE.c.evaluator_id == evaluator_id)
    scores = int(conn.execute(sa.delete(SCORE).where(mine)).rowcount)
    conn.execute(
        sa.delete(ASSIGNMENT).where(
            ASSIGNMENT.c.application_id == application_id, ASSIGNMENT.c.evaluator_id == evaluator_id
        )
    )
    detail = {"evaluator": email, "scores_removed": scores, "why": why}
    events.record(conn, now, actor, "unassigned", detail, track_id, application_id)
    return scores


def evaluators(conn: Connection, only: int | None = None) -> list[Evaluator]:
    """The committee (or, with `only`, the one evaluator of that id) with its declared conflicts."""
    conflicts = sa.select(DECLARED_CONFLICT.c.evaluator_id, DECLARED_CONFLICT.c.applicant_code)
    members = sa.select(EVALUATOR).order_by(EVALUATOR.c.id)
    if only is not None:
        conflicts = conflicts.where(DECLARED_CONFLICT.c.evaluator_id == only)
        members = members.where(EVALUATOR.c.id == only)
    declared: dict[int, set[str]] = defaultdict(set)
    for r in conn.execute(conflicts):
        declared[int(r[0])].add(r[1])
    return [Evaluator(r.email, r.region, r.home_code, frozenset(declared[int(r.id)])) for r in conn.execute(members)]


def _evaluator(conn: Connection, email: str) -> Any:
    row = conn.execute(sa.select(EVALUATOR).where(EVALUATOR.c.email == email.strip().lower())).mappings().first()
    if row is None:
        raise NotFound(f"no evaluator {email!r}: import the committee first (`gongmo evaluators import FILE.csv`)")
    return row


# -- assignment -----------------------------------------------------------------


@dataclass(frozen=True)
class AssignPlan:
    """What an assignment of a track does, worked out before anything is written: the
    assignments that go first (their evaluator is now in conflict), then the plan."""

    labels: dict[int, str]  # application id -> receipt number
    plan: dict[int, list[str]]  # application id -> its evaluators after the assignment
    kept: dict[int, list[str]]  # application id -> the evaluators it keeps
    broken: list[tuple[int, int, str, str]]  # (application id, evaluator id, e-mail, conflict) withdrawn
    evaluator_ids: dict[str, int]

    def new(self, application_id: int) -> list[str]:
        return [k for k in self.plan.get(application_id, []) if k not in self.kept.get(application_id, [])]

    @property
    def touched(self) -> list[int]:
        """The applications whose evaluators change: one gains an evaluator or loses a conflicted one."""
        lose = {b[0] for b in self.broken}
        return [a for a in self.plan if a in lose or self.new(a)]


def assign_track(app: App, track_key: str, actor: Actor) -> dict[str, list[str]]:
    """Assign evaluators to every application of the track in written
    evaluation; idempotent (fills gaps only). Returns receipt no -> emails."""
    now = app.clock.now()
    with write(app.db) as conn:
        track_row = lookups.track_by_key(conn, app.loaded.config, track_key, lock=True)
        p = _assign_plan(app, conn, track_key, track_row["id"])
        for app_id, ev_id, email, why in p.broken:  # the evaluator's details changed since: it goes, with its scores
            _unassign(conn, app_id, ev_id, email, track_row["id"], f"conflict found at assignment: {why}", now, actor)
        for app_id in p.plan:
            new = p.new(app_id)
            if new:
                conn.execute(
                    sa.insert(ASSIGNMENT),
                    [{"application_id": app_id, "evaluator_id": p.evaluator_ids[k], "assigned_at": now} for k in new],
                )
                events.record(conn, now, actor, "assigned", {"evaluators": new}, track_row["id"], app_id)
    return {p.labels[a]: keys for a, keys in p.plan.items()}


def preview_assign(app: App, track_key: str) -> AssignPlan:
    """The dry run of assign_track: what it would do now, by the same rule, refused as it would be."""
    with read(app.db) as conn:
        track_row = lookups.track_by_key(conn, app.loaded.config, track_key)
        return _assign_plan(app, conn, track_key, track_row["id"])


def _assign_plan(app: App, conn: Connection, track_key: str, track_id: int) -> AssignPlan:
    _, track = app.loaded.config.track(track_key)
    ev_cfg = track.evaluation
    review.refuse_if_objections(conn, track_id, track_key, "assignment")
    query = (
        sa.select(APPLICATION.c.id, APPLICATION.c.receipt_no, APPLICANT.c.code)
        .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
        .where(
            APPLICATION.c.track_id == track_id,
            APPLICATION.c.state.in_(("written_evaluation", "presentation_evaluation")),
        )
        .order_by(APPLICATION.c.receipt_no)
    )
    seats = [Seat(int(r.id), r.receipt_no or str(r.id), r.code) for r in conn.execute(query)]
    if not seats:
        raise InvalidInput(f"track {track_key} has no application in evaluation: pass the review first")
    pool = evaluators(conn)
    if not pool:
        raise InvalidInput("no evaluators: import the committee first (`gongmo evaluators import FILE.csv`)")
    ids = {e.email: int(e.id) for e in conn.execute(sa.select(EVALUATOR.c.id, EVALUATOR.c.email))}
    by_id = {v: k for k, v in ids.items()}
    codes = {s.application_id: s.applicant_code for s in seats}
    by_key = {e.key: e for e in pool}
    kept: dict[int, list[str]] = defaultdict(list)
    broken: list[tuple[int, int, str, str]] = []
    for r in conn.execute(
        sa.select(ASSIGNMENT.c.application_id, ASSIGNMENT.c.evaluator_id).where(
            ASSIGNMENT.c.application_id.in_([s.application_id for s in seats])
        )
    ):
        app_id, key = int(r[0]), by_id[int(r[1])]
        why = conflict(by_key[key], codes[app_id], ev_cfg.conflict_same_region)
        if why:
            broken.append((app_id, int(r[1]), key, why))
        else:
            kept[app_id].append(key)
    plan = assign(seats, pool, ev_cfg.evaluators_per_application, ev_cfg.floor, ev_cfg.conflict_same_region, kept)
    labels = {s.application_id: s.label for s in seats}
    return AssignPlan(labels, plan, dict(kept), broken, ids)


# -- scores -----------------------------------------------------------------------


@dataclass(frozen=True)
class SheetInput:
    application: str  # id or receipt number
    evaluator: str  # e-mail
    part: str
    points: dict[str, str]  # criterion -> text as typed


def criteria_of(track: Track) -> list[Criterion]:
    return [Criterion(c.key, c.points) for c in track.evaluation.criteria]


def enter_sheets(app: App, sheets: list[SheetInput], actor: Actor, where: list[str] | None = None) -> int:
    """Store whole sheets (one evaluator, one application, one part) in one
    transaction; any problem refuses all, each named with `where` (e.g. the row)."""
    now = app.clock.now()
    problems: list[str] = []
    with write(app.db) as conn:
        pool = {e.key: e for e in evaluators(conn)}
        for i, sheet in enumerate(sheets):
            label = where[i] if where else ""
            try:
                _enter(app, conn, sheet, pool, now, actor)
            except GongmoError as exc:
                problems.append(f"{label}{exc}")
        if problems:
            raise InvalidInput("\n".join(problems) + "\nno score was stored")
    return len(sheets)


def enter_sheet(app: App, sheet: SheetInput, actor: Actor) -> None:
    """One sheet in its own transaction; a refusal keeps its own kind (the API
    answers a conflict of interest or a closed window with 409)."""
    with write(app.db) as conn:
        _enter(app, conn, sheet, {e.key: e for e in evaluators(conn)}, app.clock.now(), actor)


def _enter(
    app: App, conn: Connection, sheet: SheetInput, pool: dict[str, Evaluator], now: datetime, actor: Actor
) -> None:
    if sheet.part not in PARTS:
        raise InvalidInput(f"part {sheet.part!r}: write written or presentation")
    row = _application_by_ref(conn, sheet.application)
    track_row = lookups.track_row(conn, row["track_id"])
    contest, track = app.loaded.config.track(track_row["key"])
    label = row["receipt_no"] or str(row["id"])
    if row["state"] != PART_STATE[sheet.part]:
        raise Conflict(
            f"application {label} is in '{row['state']}': {sheet.part} scores are entered while it is in"
            f" '{PART_STATE[sheet.part]}'"
        )
    start, end = (track_row[m] for m in PART_WINDOW[sheet.part])
    if not (start <= now < end):
        tz = ZoneInfo(contest.timezone)
        raise OutsideWindow(
            f"{sheet.part} scores for application {label} are accepted from {start.astimezone(tz):%Y-%m-%d %H:%M} to"
            f" {end.astimezone(tz):%Y-%m-%d %H:%M %Z} (now {now.astimezone(tz):%Y-%m-%d %H:%M})"
        )
    review.refuse_if_objections(conn, track_row["id"], track_row["key"], "scoring")
    email = sheet.evaluator.strip().lower()
    ev = pool.get(email)
    if ev is None:
        raise NotFound(f"no evaluator {sheet.evaluator!r}: see `gongmo evaluators list`")
    code = conn.execute(sa.select(APPLICANT.c.code).where(APPLICANT.c.id == row["applicant_id"])).scalar_one()
    why = conflict(ev, code, track.evaluation.conflict_same_region)
    if why:
        raise Conflict(f"{email} may not score application {label}: conflict of interest ({why})")
    ev_id = int(conn.execute(sa.select(EVALUATOR.c.id).where(EVALUATOR.c.email == email)).scalar_one())
    assigned = conn.execute(
        sa.select(ASSIGNMENT.c.id).where(ASSIGNMENT.c.application_id == row["id"], ASSIGNMENT.c.evaluator_id == ev_id)
    ).first()
    if assigned is None:
        raise Conflict(f"{email} is not assigned to application {label}: see `gongmo assign {track.key}`")
    for k, v in sheet.points.items():  # Decimal() reads any Unicode digit ('٥' is 5): points take 0-9 only
        if any(c.isdecimal() and not c.isascii() for c in v):
            raise InvalidInput(f"{k} = {shown(v)}: write points with the digits 0-9, e.g. 22.5")
    points = {k: parse_points(v, k) for k, v in sheet.points.items()}
    check_sheet(criteria_of(track), points)
    mine = (SCORE.c.application_id == row["id"]) & (SCORE.c.evaluator_id == ev_id) & (SCORE.c.part == sheet.part)
    old = {r.criterion: Decimal(r.points_x100) / 100 for r in conn.execute(sa.select(SCORE).where(mine))}
    conn.execute(sa.delete(SCORE).where(mine))
    conn.execute(
        sa.insert(SCORE),
        [
            {
                "application_id": row["id"],
                "evaluator_id": ev_id,
                "part": sheet.part,
                "criterion": k,
                "points_x100": int(v * 100),
                "entered_at": now,
                "entered_by": actor.name,
            }
            for k, v in points.items()
        ],
    )
    detail: dict[str, Any] = {"evaluator": email, "part": sheet.part, "points": {k: str(v) for k, v in points.items()}}
    if old:
        detail["was"] = {k: str(v) for k, v in old.items()}
    events.record(conn, now, actor, "score_corrected" if old else "scored", detail, row["track_id"], row["id"])


def parse_scores(path: Path, track: Track, max_bytes: int = MAX_CSV_BYTES) -> tuple[list[SheetInput], list[str]]:
    """receipt_no,evaluator,part,<one column per criterion> -> sheets with their row labels."""
    rows_in = open_csv(path, max_bytes)
    header = header_of(rows_in, path)
    keys = [c.key for c in track.evaluation.criteria]
    expected = ("receipt_no", "evaluator", "part", *keys)
    wrong = header_problems(header, expected, expected)
    if wrong:
        raise InvalidInput(
            f"{path}: header must be {','.join(expected)} (for track {track.key}){wrong}; nothing was imported"
        )
    sheets: list[SheetInput] = []
    where: list[str] = []
    seen: dict[tuple[str, str, str], int] = {}
    problems = Problems(path)
    for number, cells in records(rows_in, header, path, problems):
        record = {k: v.strip() for k, v in cells.items()}
        key = (record["receipt_no"], record["evaluator"].lower(), record["part"])
        if key in seen:
            problems.append(
                f"{path}: row {number}: the same sheet as row {seen[key]}"
                f" ({key[0]}, {key[1]}, {key[2]}); keep one row per evaluator, application and part"
            )
        seen.setdefault(key, number)
        sheets.append(
            SheetInput(record["receipt_no"], record["evaluator"], record["part"], {k: record[k] for k in keys})
        )
        where.append(f"{path}: row {number}: ")
    if problems:
        raise InvalidInput(problems.refusal())
    if not sheets:
        raise InvalidInput(f"{path}: no rows after the header; nothing was imported")
    return sheets, where


def _application_by_ref(conn: Connection, ref: str) -> Any:
    ref = ref.strip()
    by_id = ref.isascii() and ref.isdigit() and len(ref) <= 10 and int(ref) <= MAX_ID  # no id is larger
    cond = APPLICATION.c.id == int(ref) if by_id else APPLICATION.c.receipt_no == ref
    row = conn.execute(sa.select(APPLICATION).where(cond)).mappings().first()
    if row is None:
        raise NotFound(f"no application {ref!r} (give its id or receipt number, e.g. STRONG-SMALL-2024-0003)")
    return row


def assignments(app: App, track_key: str) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = (
            sa.select(APPLICATION.c.receipt_no, EVALUATOR.c.email, EVALUATOR.c.name)
            .join(ASSIGNMENT, ASSIGNMENT.c.application_id == APPLICATION.c.id)
            .join(EVALUATOR, EVALUATOR.c.id == ASSIGNMENT.c.evaluator_id)
            .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
            .where(TRACK.c.key == track_key)
            .order_by(APPLICATION.c.receipt_no, EVALUATOR.c.email)
        )
        return [dict(r) for r in conn.execute(query).mappings()]
