"""Rehearse a contest's whole calendar in seconds, on a throwaway database.

The clock is a FixedClock moved from one instant to the next: each deadline
row fires through the real ticker, and (with decisions on) the human steps a
contest office would take happen in between: local governments submit,
reviewers pass or disqualify, the committee's result is entered, plans are
approved. Nothing touches the configured database.

With a Maildir (`gongmo demo`), what the rehearsal queued is delivered there
at the end (the results held under embargo released first, as the office
would), so there is mail to read.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from gongmo.notifications.transport import MaildirTransport
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role
from gongmo.workflow.core import config as config_mod
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.config import Contest, Track
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICANT, APPLICATION, DEADLINE, OUTBOX, TRACK
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.deadlines.ticker import Ticker
from gongmo.workflow.engine import audit
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox import dispatch as mailer
from gongmo.workflow.outbox import office
from gongmo.workflow.outbox import states as outbox_states
from gongmo.workflow.runtime import wiring
from gongmo.workflow.stages import applicants, committee, kickoff, presentations, review, selection

OFFICE = Actor("rehearsal-office", Role.ADMIN)
WEEKDAY = ("월", "화", "수", "목", "금", "토", "일")


@dataclass(order=True)
class Step:
    at: datetime
    order: int
    track: str = field(compare=False)
    label: str = field(compare=False)
    run: Callable[[], str] = field(compare=False)


@dataclass
class Mail:
    """What the rehearsal delivered to a Maildir."""

    path: Path
    delivered: dict[str, int]  # notice -> messages written
    undelivered: dict[str, int]  # outbox state -> rows not written (cancelled: superseded before sending)
    released: int  # results held under embargo, released at the end
    sample: Path | None  # one message to open


@dataclass
class Result:
    lines: list[str]
    states: dict[str, dict[str, int]]
    notices: dict[str, int]
    audit_clean: bool
    mail: Mail | None = None


def rehearse(
    config_path: Path,
    contest_keys: list[str],
    applicants_csv: Path,
    decide: bool = True,
    # The committee comes from evaluators.csv beside the applicants' CSV.
    out: Callable[[str], None] = print,
    maildir: Path | None = None,
) -> Result:
    """With `maildir`, deliver every notice queued to that Maildir at the end."""
    with tempfile.TemporaryDirectory(prefix="gongmo-rehearsal-") as tmp:
        loaded = config_mod.load(config_path)
        clock = wiring.clock_for(loaded, None, fixed=True)
        app = wiring.open_app(loaded, clock, database_url=f"sqlite:///{tmp}/rehearsal.db")
        try:
            result = _run(app, contest_keys, applicants_csv, decide, out)
            if maildir is not None:
                tracks = [t.key for c in app.loaded.config.contests if c.key in contest_keys for t in c.tracks]
                result.mail = deliver(app, tracks, maildir, out)
            return result
        finally:
            app.db.dispose()


def deliver(app: App, tracks: list[str], path: Path, out: Callable[[str], None]) -> Mail:
    """Release the held results (the office's last step) and write every notice
    due into the Maildir at `path`; print where it is and how to read it."""
    path = path.resolve()
    released = sum(office.release(app, key, office.RESULTS) for key in tracks)
    transport = MaildirTransport(path)

    async def send() -> mailer.Delivery:
        try:
            return await mailer.Mailer(app, transport, "gongmo-demo").deliver_due()
        finally:
            await transport.close()

    delivery = asyncio.run(send())
    with read(app.db) as conn:
        by_state: dict[str, dict[str, int]] = {}
        query = sa.select(OUTBOX.c.state, OUTBOX.c.notice, sa.func.count()).group_by(OUTBOX.c.state, OUTBOX.c.notice)
        for state, notice, n in conn.execute(query):
            by_state.setdefault(str(state), {})[str(notice)] = int(n)
        wanted = conn.execute(
            sa.select(OUTBOX.c.message_id)
            .where(OUTBOX.c.state == outbox_states.SENT)
            .order_by((OUTBOX.c.notice == "selected").desc(), OUTBOX.c.id)
            .limit(1)
        ).scalar()
    delivered = by_state.pop(outbox_states.SENT, {})
    undelivered = {state: sum(per.values()) for state, per in sorted(by_state.items())}
    sample = _message_file(path, wanted)
    out(
        f"mail: {sum(delivered.values())} notices delivered to the Maildir {path}"
        f" (results held under embargo released at the end, as the office would: {released})"
    )
    out("  per notice: " + ", ".join(f"{n} {c}" for n, c in sorted(delivered.items())))
    if undelivered:
        why = {
            outbox_states.CANCELLED: "replaced by a later notice before it went out",
            outbox_states.HELD: "still held",
            outbox_states.DEAD: "refused",
        }
        out("  not delivered: " + ", ".join(f"{c} {s} ({why.get(s, s)})" for s, c in undelivered.items()))
    for line in delivery.errors:
        out(f"  {line}")
    out(f"  read them: mutt -f {path}   (or any mail reader that opens a Maildir)")
    if sample is not None:
        out(f"  one message: {sample}")
    return Mail(path, delivered, undelivered, released, sample)


def _message_file(path: Path, message_id: str | None) -> Path | None:
    """The file in the Maildir holding `message_id` (else the first one)."""
    files = sorted(f for sub in ("new", "cur") if (path / sub).is_dir() for f in (path / sub).iterdir())
    for f in files:
        with f.open("rb") as fh:
            headers = BytesHeaderParser().parse(fh)
        if message_id and str(headers.get("Message-ID", "")).strip() == message_id:
            return f
    return files[0] if files else None


def _run(app: App, contest_keys: list[str], csv: Path, decide: bool, out: Callable[[str], None]) -> Result:
    contests = [c for c in app.loaded.config.contests if c.key in contest_keys]
    tracks = [t.key for c in contests for t in c.tracks]
    first = min(t.calendar.announce_at for c in contests for t in c.tracks)
    clock = app.clock
    assert isinstance(clock, FixedClock)
    clock.set(first - timedelta(days=1))
    wiring.prepare(app)
    with write(app.db) as conn:
        applicants.store(conn, applicants.parse(csv))
        committee_csv = csv.with_name("evaluators.csv")
        if decide and committee_csv.is_file():
            committee.store_evaluators(conn, committee.parse_evaluators(committee_csv), clock.now())
        conn.execute(sa.delete(DEADLINE).where(DEADLINE.c.track_id.in_(_track_ids(conn, tracks, invert=True))))
    zone = ZoneInfo(contests[0].timezone)
    steps = [s for c in contests for t in c.tracks for s in _human_steps(app, c, t)] if decide else []
    ticker = Ticker(app, "rehearsal")
    lines: list[str] = []

    def say(at: datetime, track: str, text: str) -> None:
        local = at.astimezone(zone)
        line = f"{local:%Y-%m-%d} ({WEEKDAY[local.weekday()]}) {local:%H:%M %Z}  {track:<18} {text}"
        lines.append(line)
        out(line)

    steps.sort()
    while True:
        due = ticker.next_due()
        step = steps[0] if steps else None
        if due is None and step is None:
            break
        if step is not None and (due is None or step.at < due):
            steps.pop(0)
            clock.set(step.at)
            say(step.at, step.track, f"{step.label}: {step.run()}")
            continue
        assert due is not None
        clock.set(due)
        for fired in ticker.tick():
            track, own = _track_of(app, fired.key)
            say(fired.due_at, track, f"[{fired.action}] {own}{fired.summary}")
    return _summary(app, tracks, lines, out)


def _human_steps(app: App, contest: Contest, track: Track) -> list[Step]:
    """What a contest office and its committee do between the deadlines."""
    cal = track.calendar
    key = track.key
    hour = timedelta(hours=1)
    # The office gives one applicant two more days (its own close), which it uses at the last minute:
    # its reminders follow its own close, not the track's.
    extended_to = cal.receipt_closes + timedelta(days=2)
    late: dict[str, Any] = {}
    return [
        Step(cal.receipt_opens + 2 * hour, 1, key, "plans received", lambda: _submit(app, track)),
        Step(cal.receipt_opens + 3 * hour, 1, key, "extension granted", lambda: _extend(app, track, extended_to, late)),
        Step(extended_to - 2 * hour, 1, key, "late plan received", lambda: _submit_late(app, track, late)),
        Step(cal.review_ends - 3 * hour, 2, key, "preliminary review", lambda: _review(app, track)),
        Step(cal.written_starts - 2 * hour, 3, key, "committee assigned", lambda: _assign(app, track)),
        Step(cal.written_starts - hour, 4, key, "presentations scheduled", lambda: _slots(app, track)),
        Step(cal.written_ends - 2 * hour, 5, key, "written scores", lambda: _scores(app, track, "written")),
        Step(cal.presentation_ends - hour, 6, key, "presentation scores", lambda: _scores(app, track, "presentation")),
        Step(cal.selection_at - hour, 7, key, "selection confirmed", lambda: _select(app, track)),
        Step(cal.kickoff_due - timedelta(days=3), 8, key, "implementation plans", lambda: _kickoff(app, track)),
    ]


def _in_state(app: App, track: str, state: str) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = (
            sa.select(APPLICATION.c.id, APPLICATION.c.receipt_no, APPLICANT.c.code)
            .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
            .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
            .where(TRACK.c.key == track, APPLICATION.c.state == state)
            .order_by(APPLICATION.c.id)
        )
        return [dict(r) for r in conn.execute(query).mappings()]


def _submit(app: App, track: Track) -> str:
    """Two in three invited local governments submit a plan at the cap."""
    invited = _in_state(app, track.key, "announcement")
    submitting = [a for i, a in enumerate(invited) if i % 3 != 2]
    types: list[str | None] = list(track.eligibility.types) or [None]
    national = track.funding.national_cap_krw
    local = int(national * track.funding.local_match_ratio)
    for i, a in enumerate(submitting):
        app.moves.submit(track.key, a["code"], national, local, OFFICE, "스마트도시 조성계획", types[i % len(types)])
    return f"{len(submitting)} of {len(invited)} invited submitted"


def _extend(app: App, track: Track, until: datetime, late: dict[str, Any]) -> str:
    """The first applicant that has not submitted gets its own receipt close, two days later."""
    waiting = _in_state(app, track.key, "announcement")
    if not waiting:
        return "nobody left to extend"
    late.update(waiting[0])
    reason = "정전으로 제출 지연 (rehearsal)"
    calendars.extend(app, int(late["id"]), "receipt_closes", until, reason, OFFICE.name)
    local = until.astimezone(ZoneInfo(app.loaded.config.track(track.key)[0].timezone))
    return f"{late['code']}: receipt_closes extended to {local:%Y-%m-%d %H:%M %Z} ({reason})"


def _submit_late(app: App, track: Track, late: dict[str, Any]) -> str:
    """The extended applicant submits inside its own window."""
    if not late:
        return "nobody extended"
    national = track.funding.national_cap_krw
    local = int(national * track.funding.local_match_ratio)
    kind = track.eligibility.types[0] if track.eligibility.types else None
    moved = app.moves.submit(track.key, late["code"], national, local, OFFICE, "스마트도시 조성계획", kind)
    return f"{late['code']}: {moved.receipt_no}"


def _review(app: App, track: Track) -> str:
    """The checklists recorded at the close decide: pass the eligible, disqualify the rest."""
    passed = review.pass_eligible(app, track.key, OFFICE)
    failed = review.disqualify_failed(app, track.key, OFFICE)
    return f"{passed} passed, {len(failed)} disqualified"


def _assign(app: App, track: Track) -> str:
    if not _in_state(app, track.key, "written_evaluation"):
        return "nobody to evaluate"
    plan = committee.assign_track(app, track.key, OFFICE)
    seats = sum(len(v) for v in plan.values())
    return f"{len(plan)} applications, {seats} seats, no evaluator in conflict"


def _slots(app: App, track: Track) -> str:
    if not _in_state(app, track.key, "written_evaluation"):
        return "nobody to invite"
    planned = presentations.schedule(app, track.key, OFFICE)
    return f"{len(planned)} invited, each with its slot (.ics)"


def _scores(app: App, track: Track, part: str) -> str:
    """Every assigned evaluator's sheet: a plan's quality (seeded by its receipt
    number) plus the evaluator's own leaning, spread over the criteria."""
    sheets = []
    for r in committee.assignments(app, track.key):
        rng = random.Random(f"{r['receipt_no']}:{part}")
        quality = Decimal(rng.randint(120, 190)) / 2
        leaning = Decimal(random.Random(r["email"]).randint(-6, 6))
        total = min(quality + leaning, track.evaluation.max_points)
        sheets.append(committee.SheetInput(r["receipt_no"], r["email"], part, _spread(track, total)))
    if not sheets:
        return "no sheets"
    committee.enter_sheets(app, sheets, OFFICE)
    return f"{len(sheets)} {part} sheets entered"


def _spread(track: Track, total: Decimal) -> dict[str, str]:
    """`total` points over the criteria in proportion to their points (halves)."""
    crits = track.evaluation.criteria
    scale = total / track.evaluation.max_points
    points = {c.key: (c.points * scale * 2).quantize(Decimal(1)) / 2 for c in crits[:-1]}
    points[crits[-1].key] = min(crits[-1].points, max(Decimal(0), total - sum(points.values())))
    return {k: str(v) for k, v in points.items()}


def _select(app: App, track: Track) -> str:
    if not _in_state(app, track.key, "presentation_evaluation"):
        return "nobody to select"
    result = selection.select(app, track.key, OFFICE, confirm=True)
    counts = (result.count("select"), result.count("waitlist"), result.count("reject"))
    return "{} selected, {} waitlisted, {} not selected".format(*counts)


def _kickoff(app: App, track: Track) -> str:
    """Every selected plan is received and approved, except (where several
    were selected) the last one, which never comes: the deadline cancels it."""
    selected = _in_state(app, track.key, "selected")
    late = selected[-1:] if len(selected) > 1 else []
    for a in selected[: len(selected) - len(late)]:
        kickoff.receive(app, a["id"], OFFICE)
        kickoff.approve(app, a["id"], None, OFFICE)
    missing = " (one plan still missing)" if late else ""
    return f"{len(selected) - len(late)} plans approved with their funding by year{missing}"


def _track_of(app: App, key: str) -> tuple[str, str]:
    """(track, "CODE: ") of a deadline row: an applicant's own row (ext:ID:...) names the applicant."""
    if not key.startswith("ext:"):
        return key.split(":")[0], ""
    with read(app.db) as conn:
        row = conn.execute(
            sa.select(TRACK.c.key, APPLICANT.c.code)
            .select_from(DEADLINE)
            .join(TRACK, TRACK.c.id == DEADLINE.c.track_id)
            .join(APPLICATION, APPLICATION.c.id == DEADLINE.c.application_id)
            .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
            .where(DEADLINE.c.key == key)
        ).one()
    return str(row.key), f"{row.code}: "


def _track_ids(conn: sa.Connection, keys: list[str], invert: bool = False) -> list[int]:
    cond = TRACK.c.key.not_in(keys) if invert else TRACK.c.key.in_(keys)
    return [int(r[0]) for r in conn.execute(sa.select(TRACK.c.id).where(cond))]


def _summary(app: App, tracks: list[str], lines: list[str], out: Callable[[str], None]) -> Result:
    with read(app.db) as conn:
        states: dict[str, dict[str, int]] = {}
        query = (
            sa.select(TRACK.c.key, APPLICATION.c.state, sa.func.count())
            .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
            .group_by(TRACK.c.key, APPLICATION.c.state)
        )
        for key, state, n in conn.execute(query):
            states.setdefault(key, {})[state] = int(n)
        notices = {
            n: int(c) for n, c in conn.execute(sa.select(OUTBOX.c.notice, sa.func.count()).group_by(OUTBOX.c.notice))
        }
        report = audit.verify(conn, TABLE)
    for key in tracks:
        per = ", ".join(f"{s} {n}" for s, n in sorted(states.get(key, {}).items()))
        out(f"final {key}: {per}")
    out("notices queued: " + ", ".join(f"{n} {c}" for n, c in sorted(notices.items())))
    out(
        f"audit verify: {report.applications} applications, {report.audit_rows} rows, "
        + ("clean" if report.clean else f"{len(report.findings)} disagree")
    )
    return Result(lines, states, notices, report.clean)
