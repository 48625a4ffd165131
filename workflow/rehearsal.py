"""Rehearse a contest's whole calendar in seconds, on a throwaway database.

The clock is a FixedClock moved from one instant to the next: each deadline
row fires through the real ticker, and (with decisions on) the human steps a
contest office would take happen in between: local governments submit,
reviewers pass or disqualify, the committee's result is entered, plans are
approved. Nothing touches the configured database.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from states.lifecycle import APPLICATION as TABLE
from states.lifecycle import Role
from workflow import applicants, audit, calendars, loader, schema
from workflow.app import App, open_app
from workflow.clock import FixedClock
from workflow.config import Contest, Track
from workflow.db import read, write
from workflow.engine import Actor
from workflow.models import APPLICANT, APPLICATION, DEADLINE, OUTBOX, TRACK
from workflow.ticker import Ticker

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
class Result:
    lines: list[str]
    states: dict[str, dict[str, int]]
    notices: dict[str, int]
    audit_clean: bool


def rehearse(
    config_path: Path,
    contest_keys: list[str],
    applicants_csv: Path,
    decide: bool = True,
    out: Callable[[str], None] = print,
) -> Result:
    with tempfile.TemporaryDirectory(prefix="gongmo-rehearsal-") as tmp:
        app = open_app(config_path, database_url=f"sqlite:///{tmp}/rehearsal.db", fixed_clock=True)
        try:
            return _run(app, contest_keys, applicants_csv, decide, out)
        finally:
            app.db.dispose()


def _run(app: App, contest_keys: list[str], csv: Path, decide: bool, out: Callable[[str], None]) -> Result:
    contests = [c for c in app.loaded.config.contests if c.key in contest_keys]
    tracks = [t.key for c in contests for t in c.tracks]
    first = min(t.calendar.announce_at for c in contests for t in c.tracks)
    clock = app.clock
    assert isinstance(clock, FixedClock)
    clock.set(first - timedelta(days=1))
    schema.upgrade(app.db)
    with write(app.db) as conn:
        loader.sync(conn, app.loaded.config)
        applicants.store(conn, applicants.parse(csv))
        calendars.derive(app, conn)
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
            track = fired.key.split(":")[0]
            say(fired.due_at, track, f"[{fired.action}] {fired.summary}")
    return _summary(app, tracks, lines, out)


def _human_steps(app: App, contest: Contest, track: Track) -> list[Step]:
    cal = track.calendar
    key = track.key
    return [
        Step(cal.receipt_opens + timedelta(hours=2), 1, key, "plans received", lambda: _submit(app, track)),
        Step(cal.review_ends - timedelta(hours=3), 2, key, "preliminary review", lambda: _review(app, track)),
        Step(cal.selection_at - timedelta(hours=1), 3, key, "selection confirmed", lambda: _select(app, track)),
        Step(cal.kickoff_due - timedelta(days=3), 4, key, "implementation plans", lambda: _kickoff(app, track)),
    ]


def _in_state(app: App, track: str, state: str) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = (
            sa.select(APPLICATION.c.id, APPLICANT.c.code, APPLICANT.c.kind, APPLICANT.c.population)
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
        app.engine.submit(track.key, a["code"], national, local, OFFICE, "스마트도시 조성계획", types[i % len(types)])
    return f"{len(submitting)} of {len(invited)} invited submitted"


def _review(app: App, track: Track) -> str:
    """A reviewer's reading of the two rules every track has: kind and population."""
    passed = failed = 0
    cap = track.eligibility.population_below
    for a in _in_state(app, track.key, "preliminary_review"):
        if cap is not None and a["population"] >= cap:
            reason = f"인구 {a['population']:,}명: 기준 {cap:,}명 미만이 아님"
            app.engine.apply(a["id"], "disqualify", OFFICE, reason)
            failed += 1
        else:
            app.engine.apply(a["id"], "pass_review", OFFICE)
            passed += 1
    return f"{passed} passed, {failed} disqualified"


def _select(app: App, track: Track) -> str:
    """Placeholder ranking (receipt order) until committee scoring exists:
    the first `slots` selected, the next two waitlisted, the rest not."""
    ranked = _in_state(app, track.key, "presentation_evaluation")
    counts = {"select": 0, "waitlist": 0, "reject": 0}
    for i, a in enumerate(ranked):
        trigger = "select" if i < track.slots else "waitlist" if i < track.slots + 2 else "reject"
        app.engine.apply(a["id"], trigger, OFFICE)
        counts[trigger] += 1
    return f"{counts['select']} selected, {counts['waitlist']} waitlisted, {counts['reject']} not selected"


def _kickoff(app: App, track: Track) -> str:
    """Every selected plan is approved, except (where several were selected)
    the last one, which never comes: the kickoff deadline cancels it."""
    selected = _in_state(app, track.key, "selected")
    late = selected[-1:] if len(selected) > 1 else []
    for a in selected[: len(selected) - len(late)]:
        app.engine.apply(a["id"], "approve_kickoff", OFFICE)
    missing = " (one plan still missing)" if late else ""
    return f"{len(selected) - len(late)} plans approved{missing}"


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
