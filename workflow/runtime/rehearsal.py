"""Rehearse a contest's whole calendar in seconds, on a throwaway database.

The clock is a FixedClock moved from one instant to the next: each deadline
row fires through the real ticker, and (with decisions on) the human steps a
contest office would take happen in between: local governments submit,
reviewers pass or disqualify, the committee's result is entered, plans are
approved. Nothing touches the configured database.

A plan is received only with its documents and its answers (issue 21): each
submitting applicant uploads a sample PDF plan (showing its code) and an XLSX
budget sheet, and answers its track's questions with sample answers, before it
submits. Where a track has a rule on an answer (the 2022 side calls: a
consortium of a local government, a private company and a university; a
living lab that runs or is planned), one submitting applicant in five
answers so that it fails the rule, and the preliminary review disqualifies it
with the checklist's reason; the others pass it.

With a Maildir (`gongmo demo`), what the rehearsal queued is delivered there
at the end (the results held under embargo released first, as the office
would), so there is mail to read.
"""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import io
import json
import random
import re
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
from gongmo.states.eligibility import ANSWER_PREFIX
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role
from gongmo.states.questions import brn_check_digit
from gongmo.workflow.core import config as config_mod
from gongmo.workflow.core import samples
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.config import Contest, Track
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.files import current_hashes
from gongmo.workflow.core.models import APPLICANT, APPLICATION, AUDIT, DEADLINE, OUTBOX, TRACK
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
    receipt: Path | None = None  # one receipt confirmation, listing its documents' hashes


@dataclass
class Result:
    lines: list[str]
    states: dict[str, dict[str, int]]
    notices: dict[str, int]
    audit_clean: bool
    mail: Mail | None = None
    # One plan received: its receipt number and its documents as the receipt's audit row lists them.
    receipt: tuple[str, list[dict[str, Any]]] | None = None


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
            return run(app, contest_keys, applicants_csv, decide, out, maildir)
        finally:
            app.db.dispose()


def run(
    app: App,
    contest_keys: list[str],
    applicants_csv: Path,
    decide: bool = True,
    out: Callable[[str], None] = print,
    maildir: Path | None = None,
) -> Result:
    """The rehearsal on `app` (an empty database, a FixedClock: `rehearse` makes both, a test
    its own, to read the database afterwards)."""
    result = _run(app, contest_keys, applicants_csv, decide, out)
    if maildir is not None:
        tracks = [t.key for c in app.loaded.config.contests if c.key in contest_keys for t in c.tracks]
        receipt_no = result.receipt[0] if result.receipt else None
        result.mail = deliver(app, tracks, maildir, out, receipt_no)
    return result


def deliver(app: App, tracks: list[str], path: Path, out: Callable[[str], None], receipt_no: str | None = None) -> Mail:
    """Release the held results (the office's last step) and write every notice
    due into the Maildir at `path`; print where it is and how to read it, and (with
    `receipt_no`) that plan's receipt confirmation's list of documents with their hashes."""
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
        receipt_id = (
            None
            if receipt_no is None
            else conn.execute(
                sa.select(OUTBOX.c.message_id)
                .join(APPLICATION, APPLICATION.c.id == OUTBOX.c.application_id)
                .where(
                    OUTBOX.c.state == outbox_states.SENT,
                    OUTBOX.c.notice == "receipt_confirmation",
                    APPLICATION.c.receipt_no == receipt_no,
                )
                .order_by(OUTBOX.c.id.desc())  # the latest lists the current documents
                .limit(1)
            ).scalar()
        )
    delivered = by_state.pop(outbox_states.SENT, {})
    undelivered = {state: sum(per.values()) for state, per in sorted(by_state.items())}
    sample = _message_file(path, wanted)
    receipt = _message_file(path, receipt_id, fallback=False) if receipt_id else None
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
    if receipt is not None:
        out(f"  the receipt confirmation of {receipt_no}: {receipt}")
        for line in receipt_documents(receipt):
            out(f"    {line}")
    return Mail(path, delivered, undelivered, released, sample, receipt)


def receipt_documents(message: Path) -> list[str]:
    """The lines of a receipt confirmation's plain text that list its documents (for each: its
    number, kind and file name; its size; its SHA-256), as the mail indents them less the list's
    own indent; [] if it lists none."""
    parsed = email.message_from_bytes(message.read_bytes(), policy=email.policy.default)
    part = parsed.get_body(preferencelist=("plain",))
    text = str(part.get_content()) if isinstance(part, email.message.EmailMessage) else ""
    lines = text.splitlines()
    hashes = [i for i, line in enumerate(lines) if line.lstrip().startswith("SHA-256:")]
    first = next((i for i in range(hashes[0], -1, -1) if re.match(r"^\s+1\. ", lines[i])), None) if hashes else None
    if first is None:
        return []
    indent = len(lines[first]) - len(lines[first].lstrip())
    return [line[indent:] for line in lines[first : hashes[-1] + 1] if line.strip()]


def _message_file(path: Path, message_id: str | None, fallback: bool = True) -> Path | None:
    """The file in the Maildir holding `message_id` (else, with `fallback`, the first one)."""
    files = sorted(f for sub in ("new", "cur") if (path / sub).is_dir() for f in (path / sub).iterdir())
    for f in files:
        with f.open("rb") as fh:
            headers = BytesHeaderParser().parse(fh)
        if message_id and str(headers.get("Message-ID", "")).strip() == message_id:
            return f
    return files[0] if files and fallback else None


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


def in_state(app: App, track: str, state: str) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = (
            sa.select(APPLICATION.c.id, APPLICATION.c.receipt_no, APPLICANT.c.code, APPLICANT.c.name)
            .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
            .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
            .where(TRACK.c.key == track, APPLICATION.c.state == state)
            .order_by(APPLICATION.c.id)
        )
        return [dict(r) for r in conn.execute(query).mappings()]


def _submit(app: App, track: Track) -> str:
    """Two in three invited local governments submit a plan at the cap, each with its documents
    and its answers; on a track with rules on answers, one submitting applicant in five fails one."""
    invited = in_state(app, track.key, "announcement")
    submitting = [a for i, a in enumerate(invited) if i % 3 != 2]
    types: list[str | None] = list(track.eligibility.types) or [None]
    national = track.funding.national_cap_krw
    local = int(national * track.funding.local_match_ratio)
    failing = []
    for i, a in enumerate(submitting):
        fails = bool(track.eligibility.answers) and i % 5 == 1
        prepare_plan(app, track, a, fails)
        app.moves.submit(track.key, a["code"], national, local, OFFICE, "스마트도시 조성계획", types[i % len(types)])
        if fails:
            failing.append(a["code"])
    line = f"{len(submitting)} of {len(invited)} invited submitted{_with_documents(app, track, submitting)}"
    return line + _answered(track, failing)


def _extend(app: App, track: Track, until: datetime, late: dict[str, Any]) -> str:
    """The first applicant that has not submitted gets its own receipt close, two days later."""
    waiting = in_state(app, track.key, "announcement")
    if not waiting:
        return "nobody left to extend"
    late.update(waiting[0])
    reason = "정전으로 제출 지연 (rehearsal)"
    calendars.extend(app, int(late["id"]), "receipt_closes", until, reason, OFFICE.name)
    local = until.astimezone(ZoneInfo(app.loaded.config.track(track.key)[0].timezone))
    return f"{late['code']}: receipt_closes extended to {local:%Y-%m-%d %H:%M %Z} ({reason})"


def _submit_late(app: App, track: Track, late: dict[str, Any]) -> str:
    """The extended applicant uploads its documents, answers and submits inside its own window."""
    if not late:
        return "nobody extended"
    national = track.funding.national_cap_krw
    local = int(national * track.funding.local_match_ratio)
    kind = track.eligibility.types[0] if track.eligibility.types else None
    prepare_plan(app, track, late, False)
    moved = app.moves.submit(track.key, late["code"], national, local, OFFICE, "스마트도시 조성계획", kind)
    return f"{late['code']}: {moved.receipt_no}{_with_documents(app, track, [late])}"


# -- a plan's documents and answers (issue 21) ---------------------------------------------

# The sample file of each kind the rehearsal uploads: (file name, the bytes for one applicant).
SAMPLE_DOCUMENTS: dict[str, tuple[str, Callable[[dict[str, Any], Track], bytes]]] = {
    "plan": ("사업계획서.pdf", lambda a, t: samples.pdf(text=f"{a['code']} {t.name_en}: project plan (rehearsal)")),
    "budget": ("사업비_산출내역서.xlsx", lambda a, t: samples.xlsx()),
    "annex": ("부속서류.pdf", lambda a, t: samples.pdf(text=f"{a['code']} {t.name_en}: annex (rehearsal)")),
}
COMPANIES = ("(주)스마트시티랩", "(주)도시데이터", "(주)모빌리티웍스", "(주)그린에너지솔루션", "(주)세이프티넷")
UNIVERSITIES = (
    "한국과학기술원 산학협력단",
    "서울시립대학교 산학협력단",
    "부산대학교 산학협력단",
    "전남대학교 산학협력단",
)


def prepare_plan(app: App, track: Track, applicant: dict[str, Any], fails: bool) -> None:
    """What a local government sends before it submits: a file of each required kind (its name on
    the PDF plan), then its answers to the track's questions (`fails`: one rule on an answer
    is not met)."""
    application_id = int(applicant["id"])
    for spec in track.documents:
        if not spec.required:
            continue
        name, make = SAMPLE_DOCUMENTS.get(spec.kind, SAMPLE_DOCUMENTS["annex"])
        file_name = f"{applicant['name']}_{name}"
        app.moves.uploads.add(application_id, spec.kind, file_name, io.BytesIO(make(applicant, track)), OFFICE)
    if track.questions:
        app.moves.uploads.answer(application_id, sample_answers(track, applicant, fails), OFFICE)


def sample_answers(track: Track, applicant: dict[str, Any], fails: bool = False) -> dict[str, object]:
    """Sample answers to every question of the track for one applicant (a dict with `id`, `code`
    and `name`). Each meets the track's rule on it, unless `fails`: then the first rule's
    question is answered so that the rule fails (a consortium without its last required kind,
    a yes/no question answered the other way)."""
    rules = {r.question: r for r in track.eligibility.answers}
    failing = track.eligibility.answers[0].question if fails and track.eligibility.answers else None
    seed = int(applicant["id"])
    answers: dict[str, object] = {}
    for q in track.questions:
        rule = rules.get(q.key)
        if q.type == "members":
            kinds = list(q.member_kinds)
            if q.key == failing and rule is not None and rule.members_include:
                missing = rule.members_include[-1]
                kinds = [k for k in kinds if k != missing] + [k for k in kinds if k != missing][-1:]
            answers[q.key] = _consortium(applicant, kinds, seed)
        elif q.type == "yes_no":
            wanted = rule.equals if rule is not None and isinstance(rule.equals, bool) else True
            answers[q.key] = (not wanted) if q.key == failing else wanted
        elif q.type == "number":
            low = int(q.minimum) if q.minimum is not None else 0
            high = int(q.maximum) if q.maximum is not None else low + 1000
            answers[q.key] = min(high, max(low, 40 + seed * 7 % 200))
        elif q.type in ("choice", "choices"):
            wanted_option = str(rule.equals) if rule is not None and rule.equals is not None else q.options[0]
            others = [o for o in q.options if o != wanted_option] or [wanted_option]
            option = others[0] if q.key == failing else wanted_option
            answers[q.key] = option if q.type == "choice" else [option]
        else:  # text
            answers[q.key] = f"{applicant['name']}: {q.text_ko} (리허설 예시 답변)"[: q.max_length]
    return answers


def _consortium(applicant: dict[str, Any], kinds: list[str], seed: int) -> list[dict[str, str]]:
    """One member of each kind in `kinds`: the applicant itself as the local government, a company
    and a university from the sample lists; each with a business registration number whose
    check digit holds (distinct within the consortium)."""
    members = []
    for n, kind in enumerate(kinds):
        if kind == "local_government":
            name = str(applicant["name"])
        elif kind == "university":
            name = UNIVERSITIES[(seed + n) % len(UNIVERSITIES)]
        else:
            name = COMPANIES[(seed + n) % len(COMPANIES)]
        members.append({"name": name, "kind": kind, "brn": sample_brn(seed * 10 + n)})
    return members


def sample_brn(n: int) -> str:
    """A business registration number (XXX-XX-XXXXX) whose check digit holds, distinct for each n < 10^6."""
    first_nine = f"{101 + n % 800:03d}81{n // 800 % 10_000:04d}"
    return f"{first_nine[:3]}-{first_nine[3:5]}-{first_nine[5:]}{brn_check_digit(first_nine)}"


def _with_documents(app: App, track: Track, applicants: list[dict[str, Any]]) -> str:
    """' with N documents each (kinds)', from what the plans received carry."""
    if not track.documents or not applicants:
        return ""
    with read(app.db) as conn:
        per = [current_hashes(conn, int(a["id"])) for a in applicants]
    counts = {len(docs) for docs in per}
    kinds = sorted({d["kind"] for docs in per for d in docs}, key=[d.kind for d in track.documents].index)
    n = counts.pop() if len(counts) == 1 else f"{min(len(d) for d in per)}-{max(len(d) for d in per)}"
    each = " each" if len(applicants) > 1 else ""
    return f" with {n} documents{each} ({', '.join(kinds)})"


def _answered(track: Track, failing: list[str]) -> str:
    """'; its N questions answered; CODES answer against the rule answer:KEY' (or nothing)."""
    if not track.questions:
        return ""
    line = f"; its {len(track.questions)} questions answered"
    if track.eligibility.answers:
        rule = ANSWER_PREFIX + track.eligibility.answers[0].question
        line += f"; {', '.join(failing) or 'nobody'} answer against the rule {rule}"
    return line


def _review(app: App, track: Track) -> str:
    """The checklists recorded at the close decide: pass the eligible, disqualify the rest. A rule
    on an answer that failed is named with the checklist's reason."""
    passed = review.pass_eligible(app, track.key, OFFICE)
    failed = review.disqualify_failed(app, track.key, OFFICE)
    line = f"{passed} passed, {len(failed)} disqualified"
    by_reason: dict[str, list[str]] = {}
    for receipt, reason in failed:
        if ANSWER_PREFIX in reason:
            by_reason.setdefault(reason.removeprefix("eligibility: "), []).append(receipt)
    for reason, receipts in by_reason.items():
        line += f"; {', '.join(receipts)} failed a rule on an answer: {reason}"
    return line


def _assign(app: App, track: Track) -> str:
    if not in_state(app, track.key, "written_evaluation"):
        return "nobody to evaluate"
    plan = committee.assign_track(app, track.key, OFFICE)
    seats = sum(len(v) for v in plan.values())
    return f"{len(plan)} applications, {seats} seats, no evaluator in conflict"


def _slots(app: App, track: Track) -> str:
    if not in_state(app, track.key, "written_evaluation"):
        return "nobody to invite"
    planned = presentations.schedule(app, track.key, OFFICE)
    return f"{len(planned)} invited, each with its slot (.ics)"


def _scores(app: App, track: Track, part: str) -> str:
    """Every assigned evaluator's sheet: a plan's quality (seeded by its receipt
    number) plus the evaluator's own leaning, spread over the criteria."""
    sheets = [sample_sheet(track, r["receipt_no"], r["email"], part) for r in committee.assignments(app, track.key)]
    if not sheets:
        return "no sheets"
    committee.enter_sheets(app, sheets, OFFICE)
    return f"{len(sheets)} {part} sheets entered"


def sample_sheet(track: Track, receipt_no: str, email: str, part: str) -> committee.SheetInput:
    """One evaluator's sample sheet of one part: the plan's quality (seeded by its receipt number)
    plus the evaluator's own leaning (seeded by the e-mail), spread over the criteria."""
    rng = random.Random(f"{receipt_no}:{part}")
    quality = Decimal(rng.randint(120, 190)) / 2
    leaning = Decimal(random.Random(email).randint(-6, 6))
    total = min(quality + leaning, track.evaluation.max_points)
    return committee.SheetInput(receipt_no, email, part, _spread(track, total))


def _spread(track: Track, total: Decimal) -> dict[str, str]:
    """`total` points over the criteria in proportion to their points (halves)."""
    crits = track.evaluation.criteria
    scale = total / track.evaluation.max_points
    points = {c.key: (c.points * scale * 2).quantize(Decimal(1)) / 2 for c in crits[:-1]}
    points[crits[-1].key] = min(crits[-1].points, max(Decimal(0), total - sum(points.values())))
    return {k: str(v) for k, v in points.items()}


def _select(app: App, track: Track) -> str:
    if not in_state(app, track.key, "presentation_evaluation"):
        return "nobody to select"
    result = selection.select(app, track.key, OFFICE, confirm=True)
    counts = (result.count("select"), result.count("waitlist"), result.count("reject"))
    return "{} selected, {} waitlisted, {} not selected".format(*counts)


def _kickoff(app: App, track: Track) -> str:
    """Every selected plan is received and approved, except (where several
    were selected) the last one, which never comes: the deadline cancels it."""
    selected = in_state(app, track.key, "selected")
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
        receipt = _one_receipt(conn, tracks)
    for key in tracks:
        per = ", ".join(f"{s} {n}" for s, n in sorted(states.get(key, {}).items()))
        out(f"final {key}: {per}")
    out("notices queued: " + ", ".join(f"{n} {c}" for n, c in sorted(notices.items())))
    out(
        f"audit verify: {report.applications} applications, {report.audit_rows} rows, "
        + ("clean" if report.clean else f"{len(report.findings)} disagree")
    )
    if receipt is not None:
        receipt_no, documents = receipt
        out(f"documents of receipt {receipt_no}, as its audit row records them (kind, file, size, SHA-256):")
        for d in documents:
            out(f"  {d['kind']:<7} {d['file_name']}  {int(d['size']):,} bytes  {d['sha256']}")
    return Result(lines, states, notices, report.clean, receipt=receipt)


def _one_receipt(conn: sa.Connection, tracks: list[str]) -> tuple[str, list[dict[str, Any]]] | None:
    """The first plan received in the rehearsed tracks: its receipt number and the documents its
    receipt's audit row lists (the same hashes as its receipt confirmation)."""
    row = conn.execute(
        sa.select(APPLICATION.c.receipt_no, AUDIT.c.detail)
        .join(APPLICATION, APPLICATION.c.id == AUDIT.c.application_id)
        .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
        .where(TRACK.c.key.in_(tracks), AUDIT.c.trigger == "submit", AUDIT.c.detail.is_not(None))
        .order_by(AUDIT.c.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    return str(row.receipt_no), list(json.loads(row.detail).get("documents", []))
