"""Kickoff: the selected file a detailed implementation plan (세부 실시계획);
the office receives it, returns it with comments, or approves it with the
funding schedule by year, which moves the application to kickoff.

Plans are accepted until the kickoff deadline's grace ends (the
`kickoff_closes` deadline then cancels what has no approved plan); a plan
received after kickoff_due is recorded as late.

Each round keeps the file it was filed with, in the blob store as the plan documents are
(core/files.py: by SHA-256, in chunks, written once), named by its kickoff_plan row (sha256,
file_name, size, file_type) and by its plan_received event; a plan received on paper (`gongmo
kickoff receive` without --file) has none. read/documents.open_plan_file serves it to the office
and the applicant, never to an evaluator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.states.documents import clean_name
from gongmo.states.eligibility import Year, check_schedule, default_schedule
from gongmo.states.errors import Conflict, IllegalMove, InvalidInput, NotFound, OutsideWindow
from gongmo.workflow.core import lookups
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.contest_config import DocumentKind, FileType, Track
from gongmo.workflow.core.csvfile import shown
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.files import store_blob
from gongmo.workflow.core.filetypes import examine
from gongmo.workflow.core.models import APPLICATION, CHUNK_BYTES, FUNDING_YEAR, KICKOFF_PLAN
from gongmo.workflow.engine import events
from gongmo.workflow.engine.uploads import Spool

if TYPE_CHECKING:
    from gongmo.workflow.engine.app import App

PlanFile = Path | BinaryIO
PLAN_KIND = "kickoff_plan"
# The plan document types (core/filetypes.py decides from the bytes).
PLAN_TYPES: tuple[FileType, ...] = ("pdf", "hwp", "hwpx", "docx")
DEFAULT_PLAN_MB = 50
SCHEDULE = re.compile(r"^\s*([0-9]{4})\s*=\s*([0-9]{1,19})\s*/\s*([0-9]{1,19})\s*$")  # [0-9]: \d takes any digit


def parse_schedule(items: list[str]) -> list[Year]:
    years = []
    for item in items:
        m = SCHEDULE.match(item.replace(",", "").replace("_", ""))
        if not m:
            raise InvalidInput(
                "{given}: write YEAR=NATIONAL/LOCAL in won, e.g. 2024=5000000000/5000000000",
                field="schedule",
                value=item,
                shown=shown(item),
            )
        years.append(Year(int(m[1]), int(m[2]), int(m[3])))
    return years


def receive(
    app: App, application_id: int, actor: Actor, file: PlanFile | None = None, file_name: str | None = None
) -> int:
    """Record a plan received; returns its round (1 for the first filing).

    `file` is the plan's file (a path, or an open binary file such as a form's spooled upload,
    then with its `file_name`), kept in the blob store and named by the round's row and its
    event; none for a plan received on paper. The round is checked (selected, the window, no
    round waiting) before a byte of the file is read, the file whole (not empty, within the
    track's largest document, a plan document type from its bytes) before anything is written,
    and again in the one transaction that stores the file and records the round: a refusal
    stores nothing."""
    if file is None:
        with write(app.db) as conn:
            return _record(app, conn, application_id, actor, None)
    name = clean_name(file_name if file_name is not None else (file.name if isinstance(file, Path) else ""))
    with read(app.db) as conn:
        _, _, _, track = _receivable(app, conn, application_id)
    spec = plan_spec(track)
    with Spool(name, spec) as spool:
        if isinstance(file, Path):
            with file.open("rb") as source:
                _copy(source, spool)
        else:
            _copy(file, spool)
        spool.close()
        kept = PlanFileInfo(spool.sha256, name, spool.size, _file_type(spool.path, name, spec, spool.size))
        with write(app.db, bulk=True) as conn:
            with spool.path.open("rb") as f:
                store_blob(conn, f, kept.sha256, kept.size, app.clock.now())
            return _record(app, conn, application_id, actor, kept)


def plan_spec(track: Track) -> DocumentKind:
    """What a plan's file is checked against: a plan document type (PLAN_TYPES), at most the largest
    file any of the track's document kinds takes (DEFAULT_PLAN_MB when it declares none)."""
    max_mb = max((d.max_mb for d in track.documents), default=DEFAULT_PLAN_MB)
    return DocumentKind(
        kind=PLAN_KIND, name_ko="세부 실시계획", name_en="implementation plan", types=list(PLAN_TYPES), max_mb=max_mb
    )


@dataclass(frozen=True)
class PlanFileInfo:
    """The kept file of a round: its SHA-256, cleaned name, size in bytes and type (from the bytes)."""

    sha256: str
    file_name: str
    size: int
    file_type: str


def _copy(source: BinaryIO, spool: Spool) -> None:
    if source.seekable():
        source.seek(0)
    while piece := source.read(min(CHUNK_BYTES, spool.room)):  # never more than 1 byte past the limit
        spool.write(piece)


def _file_type(path: Path, name: str, spec: DocumentKind, size: int) -> str:
    if size == 0:
        raise InvalidInput(
            f"{name}: the file is empty (0 bytes); send the plan's file itself", field="file", value=name
        )
    found = examine(path)
    if found.type is None or found.type not in spec.types:
        raise InvalidInput(
            f"{name} is not an accepted type: {found.why}; an implementation plan is {', '.join(spec.types)}",
            field="file",
            value=name,
        )
    return found.type


def _receivable(app: App, conn: Connection, application_id: int) -> tuple[Any, Any, Any, Track]:
    """The application, its track's row and config, once a plan may be received for it now
    (selected, before the kickoff grace ends, no round waiting for a decision)."""
    now = app.clock.now()
    row, track_row, contest, track = _selected(app, conn, application_id, "receive a plan for")
    # The kickoff grace is a period: it ends where the kickoff_closes deadline row does (Civil Act art. 161).
    closes = contest.closures().period_end(track_row["kickoff_due"], track.kickoff_grace_days, contest.timezone)
    if now >= closes:
        tz = ZoneInfo(contest.timezone)
        raise OutsideWindow(
            f"plans for track {track.key} were accepted until {closes.astimezone(tz):%Y-%m-%d %H:%M %Z}"
        )
    last = _last_plan(conn, application_id)
    if last is not None and last["status"] == "received":
        raise Conflict(f"plan round {last['round']} of application {application_id} is waiting for a decision")
    return row, track_row, contest, track


def _record(app: App, conn: Connection, application_id: int, actor: Actor, kept: PlanFileInfo | None) -> int:
    """The next round, with its file if any, and its plan_received event (under the application's lock)."""
    now = app.clock.now()
    lookups.locked_application(conn, application_id)  # two filings at once: the second waits, then is refused
    row, track_row, _, _ = _receivable(app, conn, application_id)
    last = _last_plan(conn, application_id)
    round_ = 1 if last is None else int(last["round"]) + 1
    stored = {} if kept is None else kept.__dict__
    conn.execute(
        sa.insert(KICKOFF_PLAN).values(
            application_id=application_id,
            round=round_,
            received_at=now,
            received_by=actor.name,
            status="received",
            **stored,
        )
    )
    late = now >= track_row["kickoff_due"]
    detail: dict[str, Any] = {"round": round_, "late": late}
    if kept is None:
        detail["on_paper"] = True
    else:
        detail |= {"sha256": kept.sha256, "file_name": kept.file_name, "size": kept.size, "file_type": kept.file_type}
    events.record(conn, now, actor, "plan_received", detail, row["track_id"], application_id)
    return round_


def return_plan(app: App, application_id: int, comments: str, actor: Actor) -> int:
    if not comments.strip():
        raise InvalidInput(
            "{field} is empty: say what the plan must change, e.g. {example}", field="comments", value=comments
        )
    now = app.clock.now()
    with write(app.db) as conn:
        row, track_row, _, _ = _selected(app, conn, application_id, "return the plan of")
        plan = _pending(conn, application_id)
        conn.execute(
            sa.update(KICKOFF_PLAN)
            .where(KICKOFF_PLAN.c.id == plan["id"])
            .values(status="returned", comments=comments.strip(), decided_at=now, decided_by=actor.name)
        )
        detail = {"round": plan["round"], "comments": comments.strip()}
        events.record(conn, now, actor, "plan_returned", detail, row["track_id"], application_id)
        app.moves.queue(
            conn,
            "kickoff_plan_returned",
            [application_id],
            track_row,
            now,
            {"comments": comments.strip()},
            tag=f"plan-{plan['round']}",
        )
    return int(plan["round"])


def approve(app: App, application_id: int, schedule: list[Year] | None, actor: Actor) -> list[Year]:
    """Approve the pending plan with its funding schedule; the application
    moves to kickoff in the same transaction."""
    now = app.clock.now()
    with write(app.db) as conn:
        row, _track_row, contest, track = _selected(app, conn, application_id, "approve the plan of")
        plan = _pending(conn, application_id)
        years = int(row["years"] or track.funding.years)
        national, local = int(row["national_krw"] or 0), int(row["local_krw"] or 0)
        if schedule is None:
            first = now.astimezone(ZoneInfo(contest.timezone)).year
            schedule = default_schedule(first, years, national, local)
        check_schedule(schedule, national, local, years, Fraction(str(track.funding.local_match_ratio)))
        conn.execute(
            sa.insert(FUNDING_YEAR),
            [
                {
                    "application_id": application_id,
                    "year": y.year,
                    "national_krw": y.national_krw,
                    "local_krw": y.local_krw,
                }
                for y in schedule
            ],
        )
        conn.execute(
            sa.update(KICKOFF_PLAN)
            .where(KICKOFF_PLAN.c.id == plan["id"])
            .values(status="approved", decided_at=now, decided_by=actor.name)
        )
        detail = {"round": plan["round"], "schedule": [y.__dict__ for y in schedule]}
        events.record(conn, now, actor, "plan_approved", detail, row["track_id"], application_id)
        app.moves.move(
            conn, application_id, "approve_kickoff", actor, f"implementation plan round {plan['round']} approved"
        )
    return schedule


def plans(app: App, application_id: int) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = (
            sa.select(KICKOFF_PLAN)
            .where(KICKOFF_PLAN.c.application_id == application_id)
            .order_by(KICKOFF_PLAN.c.round)
        )
        return [dict(r) for r in conn.execute(query).mappings()]


def funding(app: App, application_id: int) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = (
            sa.select(FUNDING_YEAR).where(FUNDING_YEAR.c.application_id == application_id).order_by(FUNDING_YEAR.c.year)
        )
        return [dict(r) for r in conn.execute(query).mappings()]


def _selected(app: App, conn: Connection, application_id: int, what: str) -> tuple[Any, Any, Any, Any]:
    row = conn.execute(sa.select(APPLICATION).where(APPLICATION.c.id == application_id)).mappings().first()
    if row is None:
        raise NotFound(f"no application {application_id}: see `gongmo status` or `gongmo show`")
    if row["state"] != "selected":
        raise IllegalMove(str(application_id), row["state"], what, ["only a selected application files a plan"])
    track_row = lookups.track_row(conn, row["track_id"])
    contest, track = app.loaded.config.track(track_row["key"])
    return row, track_row, contest, track


def _last_plan(conn: Connection, application_id: int) -> Any:
    query = (
        sa.select(KICKOFF_PLAN)
        .where(KICKOFF_PLAN.c.application_id == application_id)
        .order_by(KICKOFF_PLAN.c.round.desc())
        .limit(1)
    )
    return conn.execute(query).mappings().first()


def _pending(conn: Connection, application_id: int) -> Any:
    plan = _last_plan(conn, application_id)
    if plan is None or plan["status"] != "received":
        state = "no plan received yet" if plan is None else f"plan round {plan['round']} was {plan['status']}"
        raise Conflict(f"application {application_id}: {state}; record a plan first (`gongmo kickoff receive`)")
    return plan
