"""`gongmo demo --live`: the daemon with the console, on a throwaway database, running one call
(the 2024 strong-and-small track) moved to happen in about 15 minutes on the real clock.

A newcomer watches it happen and takes the office's decisions in the console. The copy of the
track is built from the loaded config (`live_loaded`) and validated as config.toml is: its
calendar starts a minute from now and keeps the real calendar's order, with the receipt window
and each evaluation window about two minutes long. The settings counted in days or working days
(the period end rule, the reminders, the kickoff grace, the objection period, the presentation
slots' office hours) are set so that nothing moves past the last milestone; `changes` says what
was set, and the intro prints it. Only this track is loaded.

The sample local governments submit their plans on their own, at spread moments inside the receipt
window (with their documents and answers, as the rehearsal's do), and the sample committee enters
its score sheets during the written and the presentation windows, as the office assigns it
(`Sampler`). The office's decisions (the review, the assignment, confirming the selection,
releasing the results) are left to the newcomer. The sampler runs in a thread on the app's clock
(a test steps a FixedClock through `run_due` instead), logs a refusal and goes on, and stops with
the daemon.

The runtime does not import the web room: the CLI passes the app factory (the API with the
console) and the sign-in link function, as `gongmo daemon` passes its app to run_forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import socket
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gongmo.states.errors import GongmoError, InvalidInput
from gongmo.states.lifecycle import Role
from gongmo.workflow.core import config as config_mod
from gongmo.workflow.core import sessions
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import SystemClock
from gongmo.workflow.core.contest_config import Calendar
from gongmo.workflow.core.db import read, write
from gongmo.workflow.engine.app import App
from gongmo.workflow.runtime import rehearsal, wiring
from gongmo.workflow.runtime.daemon import ApiApp, Daemon
from gongmo.workflow.stages import applicants, committee, kickoff

log = logging.getLogger("gongmo.live")

TRACK = "strong-small-2024"
STAFF_EMAIL = "demo@gongmo.local"
LEAD = timedelta(minutes=1)  # from the start to the announcement
DEFAULT_MINUTES = 15
MIN_MINUTES, MAX_MINUTES = 8, 24 * 60
# Each milestone's place from the announcement (0) to kickoff_due (1). At 15 minutes: the receipt
# window 2.5 minutes, the written and the presentation windows 2 minutes each, the review 2 minutes;
# the weeks between the real milestones shrink more than the windows, where the work happens.
SHARES: dict[str, float] = {
    "announce_at": 0.0,
    "receipt_opens": 1.0 / 14,
    "receipt_closes": 3.5 / 14,
    "review_ends": 5.5 / 14,
    "written_starts": 6.0 / 14,
    "written_ends": 8.0 / 14,
    "presentation_starts": 8.5 / 14,
    "presentation_ends": 10.5 / 14,
    "selection_at": 11.5 / 14,
    "kickoff_due": 1.0,
}
# The moments inside a window at which the sample applicants submit and the committee enters sheets.
SUBMIT_ROUNDS = 6
SHEET_ROUNDS = (0.2, 0.4, 0.6, 0.8, 0.95)
# ... and at which the selected file their implementation plans, between selection_at and kickoff_due.
PLAN_ROUNDS = (0.2, 0.5)


def moved_calendar(start: datetime, minutes: float = DEFAULT_MINUTES) -> dict[str, datetime]:
    """The live calendar: the announcement LEAD after `start`, kickoff_due `minutes` after it, the
    milestones between in SHARES' proportions (whole seconds)."""
    check_minutes(minutes)
    announce = start.astimezone(UTC).replace(microsecond=0) + LEAD
    span_s = minutes * 60 - LEAD.total_seconds()
    return {name: announce + timedelta(seconds=round(share * span_s)) for name, share in SHARES.items()}


def check_minutes(minutes: float) -> None:
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise InvalidInput(
            f"--minutes {minutes:g}: the live calendar takes {MIN_MINUTES} to {MAX_MINUTES} minutes"
            " (each window needs a minute or more to watch and act in)",
            field="minutes",
            value=str(minutes),
        )


def reminder_spec(opens: datetime, closes: datetime, zone: str) -> list[str]:
    """One reminder about a minute before the receipt close, as a 'D-N HH:MM' the config takes (its
    reminders count whole minutes of the close's day, or hours): the latest whole minute that is a
    minute or more before the close and not before the opening; none if the window has no such minute."""
    tz = ZoneInfo(zone)
    close_local = closes.astimezone(tz)
    at = (close_local - timedelta(minutes=1)).replace(second=0, microsecond=0)
    first = opens.astimezone(tz)
    if first.second or first.microsecond:
        first = first.replace(second=0, microsecond=0) + timedelta(minutes=1)
    at = max(at, first)
    if at >= close_local:
        return []
    return [f"D-{(close_local.date() - at.date()).days} {at:%H:%M}"]


# What the live copy sets, and why: printed in the intro.
CHANGES = (
    "only this track is loaded (the other calls are not), on a new SQLite database",
    'period_end_rule = "calendar": a period counted in days ends on its day (no Civil Act art. 161 move)',
    "reminders: one, a minute before the receipt close (the real track: D-1 working days 09:00 and -3h)",
    "kickoff_grace_days = 0: selected applicants without an approved plan are cancelled at kickoff_due",
    "objection_days = 1 (calendar day): the rest of the calendar does not wait for it",
    "presentation slots: any hour (00:00-23:59), no lunch, 5 minutes each; they do not fit the"
    " 2-minute window (the presentation evaluation needs no slots)",
)


def live_loaded(
    loaded: config_mod.Loaded,
    start: datetime,
    folder: Path,
    maildir: Path,
    *,
    minutes: float = DEFAULT_MINUTES,
    port: int | None = None,
    track_key: str = TRACK,
) -> config_mod.Loaded:
    """The config of the live demo: only `track_key`'s contest with only that track, its calendar
    moved (moved_calendar), the day-counted settings set as CHANGES says; the database a SQLite
    file in `folder`, the mail the Maildir `maildir`, the API (and console) on loopback at `port`
    (default: the config's). Validated as config.toml is (a refusal names the key path)."""
    contest, track = loaded.config.track(track_key)
    cal = moved_calendar(start, minutes)
    evaluation = track.evaluation.model_copy(
        update={"office_hours": (time(0), time(23, 59)), "lunch": None, "slot_minutes": 5, "slot_gap_minutes": 0}
    )
    moved = track.model_copy(
        update={
            "calendar": Calendar.model_validate(cal),
            "reminders": reminder_spec(cal["receipt_opens"], cal["receipt_closes"], contest.timezone),
            "kickoff_grace_days": 0,
            "objection_days": 1,
            "evaluation": evaluation,
        }
    )
    one = contest.model_copy(update={"tracks": [moved], "period_end_rule": "calendar", "extra_closures": []})
    cfg = loaded.config
    api = {"enabled": True, "host": "127.0.0.1", "port": cfg.api.port if port is None else port}
    mail = {"transport": "maildir", "maildir": str(maildir), "deliver_seconds": 2.0}
    data = cfg.model_copy(
        update={
            "contests": [one],
            "gongmo": cfg.gongmo.model_copy(update={"environment": "rehearsal", "tick_seconds": 5.0}),
            "mail": cfg.mail.model_copy(update=mail),
            "api": cfg.api.model_copy(update=api),
            # The links in mails name this console (http://127.0.0.1:<port>), never a deployment's own address.
            "console": cfg.console.model_copy(update={"base_url": None}),
        }
    ).model_dump()
    try:
        config = config_mod.Config.model_validate(data)
    except ValueError as exc:  # pydantic's ValidationError
        raise config_mod.ConfigError(f"the live copy of {track_key} does not validate: {exc}") from None
    return config_mod.Loaded(
        path=loaded.path,
        config=config,
        database_url=f"sqlite:///{folder / 'live.db'}",
        templates_dir=loaded.templates_dir,
    )


# -- the sample applicants and committee ------------------------------------------------------


@dataclass(order=True)
class Act:
    """Something a sample applicant or evaluator does at `at`."""

    at: datetime
    order: int
    label: str = field(compare=False)
    run: Callable[[], str] = field(compare=False)


class Sampler:
    """The sample local governments and committee of one track, acting on the app's clock.

    Applicants: at the first of SUBMIT_ROUNDS moments in the receipt window, two in three of the
    invited are chosen (as the rehearsal chooses); each moment, a share of those left submits its
    plan with its documents and answers. Evaluators: at each of SHEET_ROUNDS in the written and the
    presentation windows, more of the committee enter their sheets of the applications they are
    assigned to (a sheet once entered is not entered again; the last round, every evaluator). The
    selected file their implementation plans at PLAN_ROUNDS between selection_at and kickoff_due."""

    def __init__(self, app: App, track_key: str = TRACK, out: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.contest, self.track = app.loaded.config.track(track_key)
        self.out = out or log.info
        self.zone = ZoneInfo(self.contest.timezone)
        self.acts = sorted(self._plan())
        self.done: list[tuple[datetime, str, str]] = []  # (when, act, what it did or why not)
        self._submitters: list[dict[str, Any]] | None = None
        self._entered: set[tuple[str, str, str]] = set()  # (receipt_no, evaluator, part)
        self._filed: set[int] = set()  # applications whose implementation plan was filed

    def _plan(self) -> list[Act]:
        cal = self.track.calendar
        acts = []
        window = cal.receipt_closes - cal.receipt_opens
        for k in range(SUBMIT_ROUNDS):
            at = cal.receipt_opens + window * (k + 1) / (SUBMIT_ROUNDS + 1)
            acts.append(Act(at, 1, "sample applicants", lambda k=k: self.submit_round(k)))  # type: ignore[misc]
        for order, part, (start, end) in (
            (2, "written", (cal.written_starts, cal.written_ends)),
            (3, "presentation", (cal.presentation_starts, cal.presentation_ends)),
        ):
            for k, share in enumerate(SHEET_ROUNDS):
                at = start + (end - start) * share
                acts.append(Act(at, order, "sample committee", lambda p=part, k=k: self.sheet_round(p, k)))  # type: ignore[misc]
        for share in PLAN_ROUNDS:
            at = cal.selection_at + (cal.kickoff_due - cal.selection_at) * share
            acts.append(Act(at, 4, "selected applicants", self.file_plans))
        return acts

    def next_at(self) -> datetime | None:
        return self.acts[0].at if self.acts else None

    def run_due(self) -> list[str]:
        """Run every act due by the clock, in order; a refusal is logged, never raised."""
        lines = []
        while self.acts and self.acts[0].at <= self.app.clock.now():
            act = self.acts.pop(0)
            try:
                what = act.run()
            except Exception as exc:  # never the daemon's end: say why and go on
                log.warning("live demo: %s at %s failed: %s", act.label, act.at.isoformat(), exc, exc_info=True)
                what = f"failed: {exc}"
            self.done.append((self.app.clock.now(), act.label, what))
            local = self.app.clock.now().astimezone(self.zone)
            line = f"{local:%H:%M:%S}  {act.label}: {what}"
            lines.append(line)
            self.out(line)
        return lines

    def run(self, stop: threading.Event) -> None:
        """Wait for each act on the real clock and run it, until the acts are done or `stop` is set."""
        while not stop.is_set():
            at = self.next_at()
            if at is None:
                return
            delay = (at - self.app.clock.now()).total_seconds()
            if stop.wait(max(0.0, min(delay, 1.0))):  # a second at most: a stop is seen at once
                return
            self.run_due()

    # -- the acts --

    def submit_round(self, k: int) -> str:
        if self._submitters is None:
            invited = rehearsal.in_state(self.app, self.track.key, "announcement")
            self._submitters = [a for i, a in enumerate(invited) if i % 3 != 2]
        if not self._submitters:
            return "no plan this time"
        left = max(SUBMIT_ROUNDS - k, 1)
        going = self._submitters[: math.ceil(len(self._submitters) / left)]
        del self._submitters[: len(going)]
        got = [r for r in (self._submit(i, a) for i, a in enumerate(going)) if r]
        return f"{len(got)} plan(s) received with their documents: " + (", ".join(got) or "none")

    def _submit(self, i: int, a: dict[str, Any]) -> str | None:
        """One local government uploads its plan and budget sheet, answers, and submits (as itself)."""
        track = self.track
        who = Actor(str(a["code"]), Role.APPLICANT)
        types: list[str | None] = list(track.eligibility.types) or [None]
        national = track.funding.national_cap_krw
        try:
            rehearsal.prepare_plan(self.app, track, a, fails=False)
            moved = self.app.moves.submit(
                track.key,
                str(a["code"]),
                national,
                int(national * track.funding.local_match_ratio),
                who,
                "스마트도시 조성계획",
                types[(int(a["id"]) + i) % len(types)],
            )
        except GongmoError as exc:
            log.warning("live demo: %s %s did not submit: %s", a["code"], a["name"], exc)
            return None
        return f"{a['name']} {moved.receipt_no}"

    def file_plans(self) -> str:
        """Each selected applicant that has not yet filed its implementation plan files it (the office
        approves it, or returns it with comments)."""
        selected = [a for a in rehearsal.in_state(self.app, self.track.key, "selected") if a["id"] not in self._filed]
        if not selected:
            return "no implementation plan to file (nobody newly selected: the office confirms the selection)"
        filed = []
        for a in selected:
            try:
                kickoff.receive(self.app, int(a["id"]), Actor(str(a["code"]), Role.APPLICANT))
            except GongmoError as exc:
                log.info("live demo: %s did not file its implementation plan: %s", a["receipt_no"], exc)
                continue
            self._filed.add(int(a["id"]))
            filed.append(f"{a['name']} {a['receipt_no']}")
        return f"{len(filed)} implementation plan(s) filed, for the office to approve: " + (", ".join(filed) or "none")

    def sheet_round(self, part: str, k: int) -> str:
        """The evaluators of this round (every one by the last) enter each sheet they owe of `part`."""
        rows = committee.assignments(self.app, self.track.key)
        if not rows:
            return f"no {part} sheet: the committee is not assigned yet (the office assigns it)"
        emails = sorted({str(r["email"]) for r in rows})
        last = k == len(SHEET_ROUNDS) - 1
        acting = {e for n, e in enumerate(emails) if last or n % len(SHEET_ROUNDS) <= k}
        entered = refused = 0
        for r in rows:
            key = (str(r["receipt_no"]), str(r["email"]), part)
            if r["email"] not in acting or key in self._entered:
                continue
            sheet = rehearsal.sample_sheet(self.track, key[0], key[1], part)
            try:
                committee.enter_sheet(self.app, sheet, Actor(key[1], Role.EVALUATOR))
            except GongmoError as exc:  # not in that part (yet), in conflict, the window: say so and go on
                refused += 1
                log.info("live demo: %s %s sheet of %s not entered: %s", key[1], part, key[0], exc)
                continue
            self._entered.add(key)
            entered += 1
        total = sum(1 for key in self._entered if key[2] == part)
        line = f"{entered} {part} sheet(s) entered ({total} in all)"
        return line + (f"; {refused} not accepted (see the log)" if refused else "")


# -- the demo ----------------------------------------------------------------------------------


def prepare(app: App, applicants_csv: Path) -> None:
    """Schema, the track and its deadlines, the sample applicants and committee (evaluators.csv
    beside the applicants' CSV)."""
    wiring.prepare(app)
    with write(app.db) as conn:
        applicants.store(conn, applicants.parse(applicants_csv))
        evaluators_csv = applicants_csv.with_name("evaluators.csv")
        if evaluators_csv.is_file():
            committee.store_evaluators(conn, committee.parse_evaluators(evaluators_csv), app.clock.now())


def intro(app: App, base_url: str, signin_url: str, folder: Path, maildir: Path) -> list[str]:
    """What the newcomer reads first: where things are, the calendar, what to do when."""
    contest, track = app.loaded.config.track(TRACK)
    tz = ZoneInfo(contest.timezone)
    cal = dict(track.calendar.items())

    def at(name: str) -> str:
        return f"{cal[name].astimezone(tz):%H:%M:%S}"

    todo = {
        "announce_at": "the call goes to every eligible sample local government (mail)",
        "receipt_opens": "the sample applicants submit their plans, spread over the window",
        "receipt_closes": "the receipt closes; the plans go to preliminary review. You: pass the eligible ones",
        "review_ends": "the review should be done. You: assign the committee (before the written window ends)",
        "written_starts": "the committee enters its written sheets as it is assigned",
        "written_ends": "the written evaluation closes; the plans go to presentation",
        "presentation_starts": "the committee enters its presentation sheets",
        "presentation_ends": "You: rank, dry-run and confirm the selection, then release the results",
        "selection_at": "the results should be out (held under embargo until you release them)",
        "kickoff_due": "selected plans without an approved implementation plan are cancelled",
    }
    lines = [
        f"gongmo live demo: {contest.name_ko} / {track.name_ko} ({track.key}), moved to run in"
        f" {(cal['kickoff_due'] - cal['announce_at'] + LEAD).total_seconds() / 60:.0f} minutes on the real clock",
        f"  console   {base_url}/",
        f"  sign in   {signin_url}",
        f"            (as {STAFF_EMAIL}: the link works once, within 15 minutes; a new one: {base_url}/signin)",
        f"  mail      {maildir}   (read it: mutt -f {maildir})",
        f"  database  {folder / 'live.db'} (throwaway)",
        f"  API       {base_url}/docs, health {base_url}/healthz",
        f"calendar ({contest.timezone}):",
    ]
    lines += [f"  {at(name)}  {name:<20} {todo[name]}" for name in cal]
    lines.append("set for the live copy (so that nothing moves past the last milestone):")
    lines += [f"  - {c}" for c in CHANGES]
    lines.append("stop with Ctrl-C (the database and the Maildir stay)")
    return lines


@dataclass
class Live:
    """A live demo being set up: its app (on the real clock), folder and Maildir."""

    app: App
    folder: Path
    maildir: Path


def open_live(
    config: Path, applicants_csv: Path, maildir: Path | None, minutes: float = DEFAULT_MINUTES, port: int | None = None
) -> Live:
    """A new folder (under the system's temporary directory, kept) with the live demo's database, its
    Maildir (there, or `maildir`), the track loaded, its deadlines planned from now on the real clock,
    the sample applicants and committee stored."""
    check_minutes(minutes)
    loaded = config_mod.load(config)
    folder = Path(tempfile.mkdtemp(prefix="gongmo-live-"))
    box = (maildir if maildir is not None else folder / "maildir").resolve()
    clock = SystemClock()
    if port == 0:  # a free port now, so that the links in mails name the one served
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
    app = wiring.open_app(live_loaded(loaded, clock.now(), folder, box, minutes=minutes, port=port), clock)
    try:
        prepare(app, applicants_csv)
    except BaseException:
        app.db.dispose()
        raise
    return Live(app, folder, box)


def signin_path(app: App) -> str:
    """The newcomer's staff account (STAFF_EMAIL, made if missing) and a one-time sign-in link for
    it, as `gongmo console link` makes one: its path, /signin/TOKEN."""
    with read(app.db) as conn:
        known = sessions.active_staff(conn, STAFF_EMAIL) is not None
    if not known:
        sessions.add_staff(app, STAFF_EMAIL, name="Demo", created_by="gongmo demo --live")
    return sessions.link_url("", sessions.staff_link(app, STAFF_EMAIL))


def run(live: Live, api_app: ApiApp, out: Callable[[str], None] = print) -> None:
    """Serve the daemon (scheduler, API and console) on `live.app` until SIGINT or SIGTERM, with the
    Sampler in a thread. Once the console answers, print the intro with a sign-in link."""
    app = live.app
    daemon = Daemon(app, api=app.loaded.config.api, api_app=api_app)
    sampler = Sampler(app, out=out)
    stop_sampling = threading.Event()
    worker = threading.Thread(target=sampler.run, args=(stop_sampling,), name="gongmo-live-sampler", daemon=True)

    async def announce_when_served() -> None:
        while daemon.api_server is None:
            await asyncio.sleep(0.05)
        base = app.loaded.config.console_url()
        path = await asyncio.to_thread(signin_path, app)
        for line in intro(app, base, base + path, live.folder, live.maildir):
            out(line)
        worker.start()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        shown = asyncio.create_task(announce_when_served())
        try:
            await daemon.serve(stop)
        finally:
            shown.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await shown
            stop_sampling.set()
            if worker.is_alive():
                await asyncio.to_thread(worker.join, 10)

    asyncio.run(main())
    out("gongmo live demo stopped; the database and the Maildir stay: " + str(live.folder))
