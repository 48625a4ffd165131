"""The `gongmo` command line (typer; rich tables for people, --json for scripts).

A user mistake prints one clear line per problem on stderr and exits 1;
never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import typer
import typer.main
from rich.console import Console
from rich.table import Table as _Table

import gongmo
from gongmo.states import text as free_text
from gongmo.states.errors import GongmoError, InvalidInput, NotFound
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role, mermaid
from gongmo.workflow.core import closures, loader, schema
from gongmo.workflow.core import config as config_mod
from gongmo.workflow.core import tokens as tokens_mod
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.db import make_engine, read, write
from gongmo.workflow.core.models import (
    APPLICANT,
    APPLICATION,
    DEADLINE,
    MAX_ID,
    OUTBOX,
    OUTBOX_LIST,
    OUTBOX_STATES,
    TRACK,
)
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.deadlines.plan import reminder_times
from gongmo.workflow.engine import audit as audit_mod
from gongmo.workflow.engine.app import App, open_app
from gongmo.workflow.read import visibility
from gongmo.workflow.runtime import rehearsal
from gongmo.workflow.stages import applicants as applicants_mod

app = typer.Typer(
    name="gongmo",
    help="gongmo (공모): run public funding contests end to end.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
applicants_app = typer.Typer(help="Local governments that may apply.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
templates_app = typer.Typer(help="Notice templates.", no_args_is_help=True)
app.add_typer(applicants_app, name="applicants")
app.add_typer(audit_app, name="audit")
app.add_typer(templates_app, name="templates")

# soft_wrap: a message stays one line however long its path (the terminal wraps it; a log or a pipe keeps it whole)
console = Console(highlight=False, soft_wrap=True)


class RichTable(_Table):
    """A rich table whose long values wrap onto the next line (folded inside a word that is longer
    than its column: an e-mail, a deadline key), never cut to '…' at the terminal's width."""

    def add_column(self, header: Any = "", footer: Any = "", *, overflow: Any = "fold", **kwargs: Any) -> None:
        super().add_column(header, footer, overflow=overflow, **kwargs)


# `--json` on a command that changes something: what changed, as one JSON object on stdout.
ChangedJson = Annotated[bool, typer.Option("--json", help="Print what changed as one JSON object.")]


def _done(as_json: bool, data: dict[str, Any], *lines: str) -> None:
    """What a command changed: `data` as one JSON object, or the lines for a person."""
    if as_json:
        _json(data)
        return
    for line in lines:
        console.print(line, markup=False)


class State:
    config: Path = Path("config.toml")
    now: datetime | None = None
    verbose: bool = False
    _app: App | None = None

    def app(self) -> App:
        if self._app is None:
            self._app = open_app(self.config, self.now)
        return self._app


state = State()


def _parse_now(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--now {value!r}: not an ISO date-time; write e.g. 2021-12-29T17:59:59+09:00") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo("Asia/Seoul"))
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{value!r}: too close to the ends of the calendar; write a real date-time") from None


@app.callback()
def _main(
    config: Annotated[Path, typer.Option("--config", "-c", envvar="GONGMO_CONFIG", help="The config file.")] = Path(
        "config.toml"
    ),
    now: Annotated[
        str | None,
        typer.Option(
            "--now",
            envvar="GONGMO_NOW",
            help="Run as if it were this instant (ISO; no zone means Asia/Seoul). Refused by a production config.",
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Log the libraries' INFO lines too (the scheduler's, transitions')."),
    ] = False,
) -> None:
    state.config = config
    state.now = _parse_now(now)
    state.verbose = verbose
    state._app = None


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=_default) + "\n")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _kst(value: datetime | None, zone: str = "Asia/Seoul") -> str:
    return "" if value is None else f"{value.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M}"


# -- setup -------------------------------------------------------------------


@app.command()
def init(as_json: ChangedJson = False) -> None:
    """Create or upgrade the schema and load the config's contests (idempotent)."""
    a = state.app()
    problems = a.renderer.check()
    if problems:
        raise InvalidInput("templates have problems:\n" + "\n".join(problems))
    before, after = schema.upgrade(a.db)
    with write(a.db) as conn:
        changes = loader.sync(conn, a.loaded.config)
        planned = calendars.derive(a, conn)
    url = a.db.url.render_as_string(hide_password=True)
    with read(a.db) as conn:
        kept = calendars.held(conn, a.loaded.config)
    warnings = [flag.line() for flag in _holiday_flags(a.loaded.config, kept)]
    if as_json:
        schema_change = {"database": url, "before": before, "after": after}
        _json({"schema": schema_change, "changes": changes, "deadlines": len(planned), "warnings": warnings})
        return
    console.print(f"database {url}: schema {before or 'empty'} -> {after}", markup=False)
    for line in changes or ["contests and tracks already up to date"]:
        console.print(f"  {line}", markup=False)
    console.print(f"  deadlines: {len(planned)} added or moved" if planned else "  deadlines: nothing to add or move")
    for line in warnings:
        console.print(f"  warning: {line}", markup=False)


def _holiday_flags(config: config_mod.Config, kept: dict[str, dict[str, Any]] | None = None) -> list[closures.Flag]:
    """Milestones and reminders on a closed day, of each calendar as the database
    holds it (`kept`, from calendars.held; rescheduled milestones included), else the config's."""
    found = []
    for contest in config.contests:
        shut = contest.closures()
        for track in contest.tracks:
            items = _calendar_of(track, kept)
            found += closures.flags(track.key, items, contest.timezone, shut)
            found += closures.flags(
                track.key, _reminder_times(track, contest.timezone, shut, dict(items)), contest.timezone, shut
            )
    return found


def _calendar_of(track: config_mod.Track, kept: dict[str, dict[str, Any]] | None) -> list[tuple[str, datetime]]:
    """A track's calendar as the database holds it, or the config's if the database has not got it."""
    held = (kept or {}).get(track.key)
    return list(held["calendar"]) if held else track.calendar.items()


def _reminder_times(
    track: config_mod.Track, zone: str, shut: closures.Closures, cal: dict[str, datetime] | None = None
) -> list[tuple[str, datetime]]:
    """The reminders a track plans, as ('reminder SPEC', instant), for the closed-day warnings."""
    cal = cal or dict(track.calendar.items())
    found = reminder_times(track.reminders, cal["receipt_opens"], cal["receipt_closes"], zone, shut)
    return [(f"reminder {spec}", at) for spec, at in found]


def _held_calendars(loaded: config_mod.Loaded) -> dict[str, dict[str, Any]]:
    """calendars.held from the config's database, or {} when there is none yet (nothing is created)."""
    url = loaded.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return {}
    engine = make_engine(url)
    try:
        with read(engine) as conn:
            return calendars.held(conn, loaded.config)
    except (GongmoError, sa.exc.SQLAlchemyError):  # not initialised, or out of reach: the config's calendar
        return {}
    finally:
        engine.dispose()


@app.command()
def contests(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The contests and tracks, with each calendar as the database holds it (reschedules,
    with who and why; the config's before `gongmo init`) and the closed days it falls on."""
    loaded = config_mod.load(state.config)
    kept = _held_calendars(loaded)
    data: list[dict[str, Any]] = [
        {
            "contest": c.key,
            "name": c.name_ko,
            "timezone": c.timezone,
            "national_budget_krw": c.national_budget_krw,
            "tracks": [
                {
                    "track": t.key,
                    "name": t.name_ko,
                    "slots": t.slots,
                    "kinds": [k.value for k in t.eligibility.kinds],
                    "population_below": t.eligibility.population_below,
                    "types": t.eligibility.types,
                    "national_cap_krw": t.funding.national_cap_krw,
                    "national_min_krw": t.funding.national_min_krw,
                    "years": t.funding.years,
                    "local_match_ratio": t.funding.local_match_ratio,
                    "budget_national_krw": t.funding.budget_national_krw,
                    "calendar": dict(_calendar_of(t, kept)),
                    "calendar_source": "database" if t.key in kept else "config",
                    "rescheduled": kept[t.key]["rescheduled"] if t.key in kept else {},
                    "closed_days": [
                        {"milestone": f.milestone, "at": f.local, "why": f.why}
                        for f in _holiday_flags(loaded.config, kept)
                        if f.track == t.key
                    ],
                }
                for t in c.tracks
            ],
        }
        for c in loaded.config.contests
    ]
    if as_json:
        _json(data)
        return
    for c, contest in zip(data, loaded.config.contests, strict=True):
        table = RichTable(title=f"{contest.name_ko} ({contest.key}) · 국비 {contest.national_budget_krw:,}원")
        table.add_column("milestone")
        for t in contest.tracks:
            table.add_column(
                f"{t.key}\n{t.name_ko}\nslots {t.slots}, cap {t.funding.national_cap_krw / 1e9:g} bn/{t.funding.years}y"
            )
        for m in config_mod.CALENDAR_ORDER:
            cells = []
            for t in c["tracks"]:
                at = t["calendar"].get(m)
                mark = " *" if m in t["rescheduled"] else ""
                cells.append("-" if at is None else _kst(at, contest.timezone) + mark)
            table.add_row(m, *cells)
        console.print(table)
        sources = {t["calendar_source"] for t in c["tracks"]}
        source = "as the database holds it" if sources == {"database"} else "the config's (run `gongmo init`)"
        console.print(f"times in {c['timezone']}; calendar {source}", markup=False)
        for t in c["tracks"]:
            for m, moves in t["rescheduled"].items():
                for move in moves:
                    zone = contest.timezone
                    console.print(
                        f"* {t['track']} {m}: {_kst(move['from'], zone)} -> {_kst(move['to'], zone)},"
                        f" rescheduled by {move['by']} on {_kst(move['at'], zone)}: {move['why']}",
                        markup=False,
                    )
    for flag in _holiday_flags(loaded.config, kept):
        console.print(f"warning: {flag.line()}", markup=False)


# -- applicants ----------------------------------------------------------------


@applicants_app.command("import")
def applicants_import(file: Path, as_json: ChangedJson = False) -> None:
    """Import local governments from CSV (all rows or none; by code)."""
    a = state.app()
    rows = applicants_mod.parse(file, a.loaded.config.gongmo.max_csv_bytes)
    with write(a.db) as conn:
        result = applicants_mod.store(conn, rows)
    counts = {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}
    _done(
        as_json,
        {"file": str(file), "rows": len(rows), **counts},
        f"{file}: {len(rows)} rows: {result.created} created, {result.updated} updated, {result.unchanged} unchanged",
    )


@applicants_app.command("list")
def applicants_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The imported local governments."""
    a = state.app()
    with read(a.db) as conn:
        rows = [dict(r) for r in conn.execute(sa.select(APPLICANT).order_by(APPLICANT.c.code)).mappings()]
    if as_json:
        _json(rows)
        return
    table = RichTable("code", "name", "kind", "population", "contact", "e-mail", "lang")
    for r in rows:
        table.add_row(
            r["code"], r["name"], r["kind"], f"{r['population']:,}", r["contact_name"], r["email"], r["language"]
        )
    console.print(table)


# -- the lifecycle --------------------------------------------------------------


@app.command()
def announce(
    track: str,
    actor: Annotated[str, typer.Option(help="Who publishes the call.")] = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Publish a track's call: an application per applicant on its mailing list."""
    a = state.app()
    created = a.moves.announce(track, Actor(actor, Role.ADMIN))
    _done(
        as_json,
        {"track": track, "created": created, "state": "announcement"},
        f"{track}: {created} applications created in 'announcement', each sent the call",
    )


@app.command()
def start(
    track: str, applicant: str, actor: Annotated[str, typer.Option()] = "applicant", as_json: ChangedJson = False
) -> None:
    """An applicant starts an application while the call is open."""
    a = state.app()
    app_id = a.moves.start(track, applicant, Actor(actor, Role.APPLICANT))
    _done(
        as_json,
        {"application_id": app_id, "track": track, "applicant": applicant, "state": "announcement"},
        f"application {app_id} started for {applicant} in {track}",
    )


@app.command("apply")
def apply_cmd(
    track: str,
    applicant: str,
    national: Annotated[int, typer.Option("--national", help="National share requested, in won.")],
    local: Annotated[int, typer.Option("--local", help="Local share, in won.")],
    title: Annotated[str | None, typer.Option("--title")] = None,
    project_type: Annotated[str | None, typer.Option("--type", help="The type chosen, if the track has types.")] = None,
    years: Annotated[int | None, typer.Option("--years", help="Build years planned (default: the program's).")] = None,
    actor: Annotated[str, typer.Option(help="Who records the receipt.")] = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Record a plan received inside the receipt window; prints the receipt number."""
    a = state.app()
    moved = a.moves.submit(track, applicant, national, local, Actor(actor, Role.ADMIN), title, project_type, years)
    _done(
        as_json,
        {**_moved(moved), "track": track, "applicant": applicant},
        f"application {moved.application_id} received: receipt number {moved.receipt_no}",
    )


def _moved(moved: Any) -> dict[str, Any]:
    """A move (engine.Moved) as --json prints it."""
    return {
        "application_id": moved.application_id,
        "receipt_no": moved.receipt_no,
        "trigger": moved.trigger,
        "from_state": moved.from_state,
        "to_state": moved.to_state,
        "version": moved.version,
    }


@app.command()
def trigger(
    application: str,
    event: str,
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    actor: Annotated[str, typer.Option("--actor")] = "admin",
    role: Annotated[Role, typer.Option("--role")] = Role.ADMIN,
    version: Annotated[
        int | None, typer.Option("--version", help="Refuse if the application is not at this version.")
    ] = None,
    position: Annotated[
        int | None,
        typer.Option(
            "--position", help="With 'waitlist': the waitlist position to take (default: the next after the last)."
        ),
    ] = None,
    as_json: ChangedJson = False,
) -> None:
    """Fire a trigger on one application (e.g. pass_review, disqualify, select)."""
    if version is not None:
        _bounded(version, "--version")
    a = state.app()
    app_id = _resolve(a, application)
    moved = a.moves.apply(app_id, event, Actor(actor, role), reason, version, waitlist_position=position)
    place = None
    if moved.to_state == "waitlisted":
        with read(a.db) as conn:
            place = conn.execute(sa.select(APPLICATION.c.waitlist_position).where(APPLICATION.c.id == app_id)).scalar()
    receipt = f", receipt number {moved.receipt_no}" if moved.receipt_no else ""
    _done(
        as_json,
        {**_moved(moved), "reason": reason} | ({"waitlist_position": place} if place is not None else {}),
        f"application {app_id}: {moved.from_state} -> {moved.to_state} ({event}), version {moved.version}{receipt}",
        *([f"waitlist position {place}"] if place is not None else []),
    )


@app.command()
def bulk(
    track: str,
    event: str,
    from_state: Annotated[str, typer.Option("--from", help="Move every application in this state.")],
    reason: Annotated[str | None, typer.Option("--reason")] = None,
    actor: Annotated[str, typer.Option("--actor")] = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Apply one trigger to every application of a track in a state (deadline moves)."""
    a = state.app()
    if from_state not in TABLE.state_names:
        raise InvalidInput(f"--from {from_state!r} is not a state (states: {', '.join(TABLE.state_names)})")
    spec = a.moves.spec(event)
    role = Role.SYSTEM if spec.automatic else Role.ADMIN
    moved = a.moves.apply_bulk(track, event, from_state, Actor(actor, role), reason)
    dest = TABLE.dest(from_state, event)
    _done(
        as_json,
        {"track": track, "trigger": event, "from_state": from_state, "to_state": dest, "moved": moved},
        f"{track}: {moved} applications moved {from_state} -> {dest} ({event})",
    )


def _bounded(value: int, name: str) -> int:
    """An id or a count as the database holds it (an INTEGER), or a one-line refusal."""
    if not 1 <= value <= MAX_ID:
        raise InvalidInput(f"{name} {applicants_mod.shown(value)}: write a whole number from 1 to {MAX_ID}")
    return value


def _resolve(a: App, ref: str) -> int:
    """An application by number or by receipt number."""
    if ref.isascii() and ref.isdigit():
        if len(ref) > 10 or int(ref) > MAX_ID:
            raise NotFound(f"no application {applicants_mod.shown(ref)}: application numbers go up to {MAX_ID}")
        return int(ref)
    with read(a.db) as conn:
        found = conn.execute(sa.select(APPLICATION.c.id).where(APPLICATION.c.receipt_no == ref)).scalar()
    if found is None:
        raise NotFound(f"no application with number or receipt number {ref!r}")
    return int(found)


@app.command()
def show(
    application: str,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    as_who: Annotated[
        str,
        typer.Option(
            "--as",
            help="Show it as this reader sees it: admin (the default), applicant:CODE or evaluator:EMAIL",
        ),
    ] = "admin",
) -> None:
    """One application with its full history and its notices (as the office sees it, or as --as)."""
    a = state.app()
    app_id = _resolve(a, application)
    role, _, subject = as_who.partition(":")
    with read(a.db) as conn:
        who = tokens_mod.principal(conn, role, subject)
        data = visibility.detail(a, conn, who, app_id)
    history, notices, decisions = data["history"], data["notices"], data["events"]
    data = row = {**data, "code": data["applicant_code"], "name": data["applicant_name"]}
    if as_json:
        _json(data)
        return
    pending = " (result pending: under embargo)" if row["result_pending"] else ""
    console.print(
        f"application {row['id']} · {row['track']} · {row['name']} ({row['code']}) · state [bold]{row['state']}[/]"
        f"{pending} · version {row['version']} · receipt {row['receipt_no'] or '-'}"
    )
    if row["national_krw"] is not None:
        console.print(
            f"requested: national {row['national_krw']:,} won, local {row['local_krw']:,} won;"
            f" title {row['title'] or '-'}"
        )
    _print_rows(
        "history (KST)",
        ["at", "actor", "role", "trigger", "from", "to", "reason"],
        [
            [
                _kst(h["at"]),
                h["actor"],
                h["role"],
                h["trigger"],
                h["from_state"] or "",
                h["to_state"],
                h["reason"] or "",
            ]
            for h in history
        ],
    )
    if data["checklist"]:
        verdict = "eligible" if row["eligible"] else "NOT eligible"
        _print_rows(
            f"preliminary review checklist: {verdict}",
            ["rule", "result", "value", "required"],
            [[c["rule"], "pass" if c["passed"] else "FAIL", c["value"], c["expected"]] for c in data["checklist"]],
        )
    result = row["result"]
    if result:
        console.print(
            f"committee score {result['committee_score']} (written {result['written_score']}, presentation"
            f" {result['presentation_score']}), rank {result['rank']} of {result['ranked']}; minimum"
            f" {result['minimum_score']}, last selected {result['last_selected_score'] or '-'}",
            markup=False,
        )
    if data["calendar_changes"]:  # one line each: a table of seven columns is cut at 80
        console.print("calendar changes (KST): the track's reschedules and this application's extensions")
        for c in data["calendar_changes"]:
            console.print(
                f"  {_kst(c['at'])} {c['actor']}: {c['kind']} of {c['milestone']}"
                f" {_kst(c['old_at'])} -> {_kst(c['new_at'])}; reason: {c['reason']}",
                markup=False,
            )
    if decisions:
        _print_rows(
            "decisions (KST)",
            ["at", "actor", "what", "detail"],
            [[_kst(e["at"]), e["actor"], e["kind"], json.dumps(e["detail"], ensure_ascii=False)] for e in decisions],
        )
    _print_rows(
        "notices",
        ["id", "notice", "state", "subject"],
        [[str(n["id"]), n["notice"], n["state"], n["subject"]] for n in notices],
    )


def _print_rows(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    table = RichTable(*header, title=title)
    for r in rows:
        table.add_row(*r)
    console.print(table)


@app.command()
def status(
    track: Annotated[str | None, typer.Argument()] = None, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Applications per state, per track."""
    a = state.app()
    if track is not None:
        a.loaded.config.track(track)
    query = (
        sa.select(TRACK.c.key, APPLICATION.c.state, sa.func.count())
        .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
        .group_by(TRACK.c.key, APPLICATION.c.state)
    )
    if track is not None:
        query = query.where(TRACK.c.key == track)
    with read(a.db) as conn:
        counts: dict[str, dict[str, int]] = {}
        for key, st, n in conn.execute(query):
            counts.setdefault(key, {})[st] = int(n)
    if as_json:
        _json(counts)
        return
    tracks = sorted(counts)
    table = RichTable("state", *tracks)
    for st in TABLE.state_names:
        if any(st in counts[k] for k in tracks):
            table.add_row(st, *[str(counts[k].get(st, 0)) for k in tracks])
    table.add_row("total", *[str(sum(counts[k].values())) for k in tracks])
    console.print(table)


@audit_app.command("verify")
def audit_verify(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Replay the audit log; exit 1 if any state disagrees with it."""
    a = state.app()
    with read(a.db) as conn:
        report = audit_mod.verify(conn, TABLE)
    if as_json:
        _json(
            {
                "applications": report.applications,
                "audit_rows": report.audit_rows,
                "clean": report.clean,
                "findings": [f.__dict__ for f in report.findings],
            }
        )
    else:
        for f in report.findings:
            console.print(f"application {f.application_id}: {f.problem}", markup=False)
        verdict = "clean" if report.clean else f"{len(report.findings)} application(s) disagree"
        console.print(f"audit verify: {report.applications} applications, {report.audit_rows} audit rows: {verdict}")
    if not report.clean:
        raise typer.Exit(1)


@app.command()
def graph() -> None:
    """The lifecycle as a Mermaid state diagram, drawn from the transition table: each
    automatic trigger at its real milestone, and the deadline rows of a track."""
    sys.stdout.write(mermaid(TABLE))


@templates_app.command("check")
def templates_check() -> None:
    """Check every notice template against its variables and render it once."""
    loaded = config_mod.load(state.config)
    from gongmo.notifications.render import Renderer

    problems = Renderer(loaded.templates_dir).check()
    if problems:
        raise InvalidInput("\n".join(problems))
    console.print(f"{loaded.templates_dir}: every template renders")


# -- deadlines, the daemon, calendars ------------------------------------------------


def _when(value: str, name: str = "NEW_TIME") -> datetime:
    parsed = _parse_now(value)
    if parsed is None:
        raise InvalidInput(f"{name} is empty; write e.g. 2024-05-31T18:00 (Asia/Seoul)")
    return parsed


@app.command()
def deadlines(
    track: Annotated[str | None, typer.Argument()] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    fire: Annotated[
        str | None,
        typer.Option(
            "--fire",
            metavar="KEY",
            help="Fire this due deadline now, ahead of its retry; a held announcement is sent as a real (late) call.",
        ),
    ] = None,
    skip: Annotated[
        str | None,
        typer.Option("--skip", metavar="KEY", help="Record a held announcement as not sent (needs --reason)."),
    ] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why a held announcement is skipped.")] = None,
) -> None:  # --json: the rows; with --fire or --skip, what changed (one object)
    """Every deadline row: when it is due (KST), whether it fired, and how; a row
    that failed (or a call held for the office) and the rows waiting behind it."""
    from gongmo.workflow.deadlines import ticker as ticker_mod

    a = state.app()
    if fire is not None or skip is not None:
        from gongmo.workflow.runtime.daemon import worker_name

        if fire is not None and skip is not None:
            raise InvalidInput("--fire and --skip: give one of them")
        office = ticker_mod.Ticker(a, f"{worker_name()}:office")
        if skip is not None:
            office.skip(skip, reason or "")
            _done(
                as_json,
                {"key": skip, "skipped": True, "reason": reason},
                f"{skip}: recorded as not sent ({reason}); the rest of its track goes on",
            )
            return
        assert fire is not None
        done = office.fire_now(fire)
        if done.error is not None:
            raise InvalidInput(f"--fire {fire}: failed again: {done.error}")
        _done(as_json, {"key": fire, "fired": True, "summary": done.summary}, f"{fire}: fired: {done.summary}")
        return
    query = (
        sa.select(DEADLINE, TRACK.c.key.label("track"))
        .join(TRACK, TRACK.c.id == DEADLINE.c.track_id)
        .order_by(DEADLINE.c.due_at, DEADLINE.c.id)
    )
    if track is not None:
        a.loaded.config.track(track)
        query = query.where(TRACK.c.key == track)
    now = a.clock.now()
    with read(a.db) as conn:
        rows = ticker_mod.annotate([dict(r) for r in conn.execute(query).mappings()], now)
        blocked = [b for b in ticker_mod.blocked(conn, now) if track is None or b["track"] == track]
    if as_json:
        _json(rows)
        return
    table = RichTable("due (KST)", "deadline", "action", "status", "fired (KST)", "late", "tries", "last error")
    for r in rows:
        late = "" if r["late"] is None else ("catch-up" if r["late"] else "on time")
        status = f"waiting for {r['waiting_for']}" if r["status"] == "waiting" else r["status"]
        table.add_row(
            _kst(r["due_at"]),
            r["key"],
            r["action"],
            status,
            _kst(r["fired_at"]),
            late,
            str(r["attempts"]),
            r["last_error"] or "",
        )
    console.print(table)
    for b in blocked:
        if b["kind"] == "held":
            what = f"held for the office: {b['error']}"
        else:
            what = f"failed {b['attempts']} time(s), retried at {_kst(b['retry_at'])} KST: {b['error']}"
        console.print(f"blocked: {b['key']} {what}; {b['waiting']} due deadline(s) of its track wait", markup=False)


@app.command()
def tick(
    until_idle: Annotated[bool, typer.Option("--until-idle", help="Keep ticking until nothing is due.")] = False,
    as_json: ChangedJson = False,
) -> None:
    """Fire the deadlines due now (one bounded batch), as the daemon would."""
    from gongmo.workflow.deadlines.ticker import Ticker
    from gongmo.workflow.runtime.daemon import worker_name

    a = state.app()
    ticker = Ticker(a, worker_name())
    fired = ticker.run_until_idle() if until_idle else ticker.tick()
    _fired(as_json, fired, ticker.next_due())


def _fired(as_json: bool, fired: Sequence[Any], due: datetime | None) -> None:
    """What a tick (or `daemon --once`) fired, and when the next deadline is due."""
    if as_json:
        rows = [{"key": f.key, "late": f.late, "summary": f.summary, "error": f.error} for f in fired]
        _json({"fired": rows, "next_due": due})
        return
    for f in fired:
        how = "catch-up" if f.late else "on time"
        text = f"{f.key} ({how}): {f.summary}" + (f" [{f.error}]" if f.error else "")
        console.print(text, markup=False)
    done = sum(1 for f in fired if f.error is None)
    held = len(fired) - done  # failed or held for the office: not fired, they hold their track back
    waiting = f", {held} failed or held (see `gongmo deadlines`)" if held else ""
    console.print(f"{done} deadline(s) fired{waiting}; {_next_due(due)}")


def _next_due(due: datetime | None) -> str:
    return f"next due: {_kst(due)} KST" if due is not None else "no deadline left"


@app.command()
def daemon(
    once: Annotated[bool, typer.Option("--once", help="Catch up what is due, then exit.")] = False,
    port: Annotated[
        int | None, typer.Option("--port", help="Serve the HTTP API on this port (default: [api] port).")
    ] = None,
    no_api: Annotated[bool, typer.Option("--no-api", help="Do not serve the HTTP API.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --once: what fired, as one JSON object.")] = False,
) -> None:
    """Run the scheduler and the HTTP API: every deadline fires once, on time or caught up after downtime."""
    from gongmo.workflow.runtime.daemon import Daemon, configure_logging, run_forever

    configure_logging(state.verbose)
    a = state.app()
    if once:
        d = Daemon(a)
        d.check_templates()
        _fired(as_json, d.ticker.run_until_idle(), d.ticker.next_due())
        return
    if as_json:
        raise InvalidInput("--json: only with --once (a running daemon logs what it does)")
    if state.now is not None:
        raise InvalidInput("--now: the daemon runs on the real clock; rehearse with `gongmo rehearse` or `tick`")
    api = a.loaded.config.api
    if port is not None:
        if not 0 <= port <= 65535:
            raise InvalidInput(f"--port {port}: a TCP port is 0 to 65535")
        api = api.model_copy(update={"port": port})
    if no_api:
        api = api.model_copy(update={"enabled": False})
    run_forever(a, api)


@app.command()
def reschedule(
    track: str,
    milestone: str,
    new_time: str,
    reason: Annotated[str, typer.Option("--reason", help="Why; the applicants' notice carries it.")],
    actor: Annotated[str, typer.Option("--actor")] = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Move a milestone of a track's calendar; notify the applicants it concerns."""
    a = state.app()
    result = calendars.reschedule(a, track, milestone, _when(new_time), reason, actor)
    if as_json:
        _json({"track": track, "milestone": milestone, "reason": reason, **result})
        return
    if not result["changed"]:
        console.print(
            f"{track} {milestone} is already {_kst(result['new_at'])} KST: nothing changed, nobody notified",
            markup=False,
        )
    else:
        console.print(
            f"{track} {milestone}: {_kst(result['old_at'])} -> {_kst(result['new_at'])} KST;"
            f" {len(result['deadlines'])} deadline row(s) moved; {result['notified']} applicant(s) notified",
            markup=False,
        )
    for line in result["warnings"]:
        console.print(f"warning: {line}", markup=False)


@app.command()
def extend(
    application: str,
    milestone: str,
    new_time: str,
    reason: Annotated[str, typer.Option("--reason", help="Why this applicant gets more time.")],
    actor: Annotated[str, typer.Option("--actor")] = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Grant one applicant an extension of a deadline (e.g. receipt_closes)."""
    a = state.app()
    app_id = _resolve(a, application)
    result = calendars.extend(a, app_id, milestone, _when(new_time), reason, actor)
    _done(
        as_json,
        {"application_id": app_id, "milestone": milestone, "reason": reason, **result},
        f"application {app_id}: {milestone} extended from {_kst(result['old_at'])} to"
        f" {_kst(result['new_at'])} KST; notified",
    )


@app.command()
def rehearse(
    contest: Annotated[list[str], typer.Argument(help="Contest key(s); all contests if none.")] = [],  # noqa: B006
    decide: Annotated[bool, typer.Option("--decide/--no-decide", help="Take the human steps too.")] = True,
    applicants_csv: Annotated[Path | None, typer.Option("--applicants", help="Default: the sample CSV.")] = None,
) -> None:
    """Run a contest's whole calendar on a throwaway database and print the timeline."""
    loaded = config_mod.load(state.config)
    known = [c.key for c in loaded.config.contests]
    for key in contest:
        if key not in known:
            raise InvalidInput(f"unknown contest {key!r} (contests: {', '.join(known)})")
    csv_path = applicants_csv or _sample_csv()
    result = rehearsal.rehearse(state.config, contest or known, csv_path, decide, _line)
    if not result.audit_clean:
        raise typer.Exit(1)


def _line(text: str) -> None:
    sys.stdout.write(text + "\n")


def _sample_csv() -> Path:
    """examples/applicants.csv beside the config, else the one shipped with gongmo."""
    for base in (state.config.resolve().parent, gongmo.defaults_dir()):
        if (base / "examples" / "applicants.csv").is_file():
            return base / "examples" / "applicants.csv"
    raise InvalidInput("no examples/applicants.csv beside the config: pass --applicants FILE.csv")


@app.command()
def demo(
    maildir: Annotated[
        Path | None,
        typer.Option("--maildir", help="Deliver the notices to this Maildir (default: a new folder, kept)."),
    ] = None,
) -> None:
    """Rehearse both reference contests end to end with every human step, and deliver
    every notice to a Maildir to read; exit 0 if all holds."""
    import tempfile

    loaded = config_mod.load(state.config)
    keys = [c.key for c in loaded.config.contests]
    csv_path = _sample_csv()
    if maildir is not None and maildir.exists() and not maildir.is_dir():
        raise InvalidInput(f"--maildir {str(maildir)!r} is a file: name a folder (it is created if missing)")
    box = maildir if maildir is not None else Path(tempfile.mkdtemp(prefix="gongmo-demo-")) / "maildir"
    result = rehearsal.rehearse(state.config, keys, csv_path, True, _line, maildir=box)
    if not result.audit_clean:
        raise typer.Exit(1)


# -- the outbox ---------------------------------------------------------------------

outbox_app = typer.Typer(help="The outbox: rendered notices and their delivery.", invoke_without_command=True)
app.add_typer(outbox_app, name="outbox")


@outbox_app.callback()
def outbox_list(
    ctx: typer.Context,
    only: Annotated[
        str | None, typer.Option("--state", help="pending, held, sending, sent, retry, dead or cancelled")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    limit: Annotated[int, typer.Option("--limit")] = 200,
) -> None:
    """List outbox rows (newest first)."""
    if ctx.invoked_subcommand is not None:
        return
    _bounded(limit, "--limit")
    if only is not None and only not in OUTBOX_STATES:
        raise InvalidInput(f"--state {only!r}: choose one of {', '.join(OUTBOX_STATES)}")
    a = state.app()
    query = sa.select(*OUTBOX_LIST).order_by(OUTBOX.c.id.desc()).limit(limit)
    if only is not None:
        query = query.where(OUTBOX.c.state == only)
    with read(a.db) as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
        totals: dict[str, int] = {
            str(k): int(v) for k, v in conn.execute(sa.select(OUTBOX.c.state, sa.func.count()).group_by(OUTBOX.c.state))
        }
    if as_json:
        _json({"totals": totals, "rows": rows})
        return
    table = RichTable("id", "app", "notice", "to", "state", "tries", "last error")
    for r in rows:
        table.add_row(
            str(r["id"]),
            str(r["application_id"]),
            r["notice"],
            r["to_addr"],
            r["state"],
            str(r["attempts"]),
            r["last_error"] or "",
        )
    console.print(table)
    console.print("totals: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())), markup=False)


@outbox_app.command("show")
def outbox_show(outbox_id: int) -> None:
    """One rendered mail, as it will be (or was) sent."""
    from gongmo.notifications.compose import compose

    _bounded(outbox_id, "OUTBOX_ID")
    a = state.app()
    with read(a.db) as conn:
        row = conn.execute(sa.select(OUTBOX).where(OUTBOX.c.id == outbox_id)).mappings().first()
    if row is None:
        raise NotFound(f"no outbox row {outbox_id}: see `gongmo outbox`")
    console.print(
        f"outbox {row['id']} · {row['notice']} · {row['state']} · tries {row['attempts']}"
        + (f" · last error: {row['last_error']}" if row["last_error"] else ""),
        markup=False,
    )
    envelope = compose(dict(row), a.loaded.config.mail.sender, a.clock.now())
    import email
    from email import policy

    parsed = email.message_from_bytes(envelope.data, policy=policy.default)
    for name in ("From", "To", "Subject", "Message-ID", "Date"):
        sys.stdout.write(f"{name}: {parsed[name]}\n")
    sys.stdout.write("\n" + row["body_text"])
    if row["ics"]:
        sys.stdout.write(f"\n[attachment gongmo.ics, {len(row['ics'])} bytes]\n")


@outbox_app.command("retry")
def outbox_retry(
    outbox_id: Annotated[int | None, typer.Argument(help="One row (see `gongmo outbox`); or --state for many.")] = None,
    only: Annotated[str | None, typer.Option("--state", help="Every row in this state: dead (or retry).")] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="With --state: queued at or after this instant (ISO; KST if no zone).")
    ] = None,
    track: Annotated[str | None, typer.Option("--track", help="With --state: only this track's notices.")] = None,
    as_json: ChangedJson = False,
) -> None:
    """Send a dead (or waiting) row again at the next delivery; with --state dead, every dead row (bulk)."""
    from gongmo.workflow.outbox.dispatch import retry_all, retry_now

    if outbox_id is not None:
        if only is not None or since is not None or track is not None:
            raise InvalidInput(f"OUTBOX_ID {outbox_id} with --state/--since/--track: retry one row or many, not both")
        _bounded(outbox_id, "OUTBOX_ID")
        a = state.app()
        was = retry_now(a, outbox_id)
        _done(
            as_json,
            {"retried": 1, "outbox_id": outbox_id, "from_state": was, "to_state": "pending"},
            f"outbox {outbox_id}: {was} -> pending",
        )
        return
    if only is None:
        raise InvalidInput("outbox retry: name an OUTBOX_ID, or --state dead to retry every dead notice")
    after = None
    if since is not None:
        try:
            after = _when(since, "--since")
        except InvalidInput:
            raise InvalidInput(f"--since {since!r}: not an ISO date-time; write e.g. 2024-05-29T18:00 (KST)") from None
    a = state.app()
    count = retry_all(a, only, since=after, track=track)
    scope = "".join((f" of {track}" if track else "", f" queued since {_kst(after)} KST" if after else ""))
    _done(
        as_json,
        {"retried": count, "from_state": only, "to_state": "pending", "track": track, "since": after},
        f"{count} {only} notice(s){scope} -> pending (sent at the next delivery)",
    )


@outbox_app.command("release")
def outbox_release(
    track: str,
    notice: str,
    yes: Annotated[bool, typer.Option("--yes", help="Release without asking.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print what was released as one JSON object (needs --yes).")
    ] = False,
) -> None:
    """Let held notices (e.g. selection results) go out, after showing who gets what."""
    from gongmo.workflow.outbox.dispatch import held, release

    if as_json and not yes:
        raise InvalidInput("--json: add --yes (a script cannot answer the question; run without --json to see it)")
    a = state.app()
    waiting = held(a, track, notice)
    total = sum(n for per in waiting.values() for n in per.values())
    if not total:
        raise InvalidInput(f"no held '{notice}' notices in {track}")
    if not as_json:
        for language, subjects in sorted(waiting.items()):
            for subject, n in sorted(subjects.items()):
                console.print(f"  {n:>5} x [{language}] {subject}", markup=False)
    if not yes and not typer.confirm(f"send these {total} notices now?"):
        raise typer.Abort()
    released = release(a, track, notice)
    _done(
        as_json,
        {"track": track, "notice": notice, "released": released, "held": waiting},
        f"{track}: {released} '{notice}' notices released",
    )


@app.command()
def deliver(as_json: ChangedJson = False) -> None:
    """Send what the outbox has due now (the daemon does this every few seconds)."""
    import asyncio

    from gongmo.workflow.outbox.dispatch import Mailer, transport_for
    from gongmo.workflow.runtime.daemon import worker_name

    a = state.app()

    async def go() -> Any:
        mailer = Mailer(a, transport_for(a), worker_name())
        try:
            return await mailer.deliver_due()
        finally:
            await mailer.transport.close()

    result = asyncio.run(go())
    _done(
        as_json,
        {"sent": result.sent, "retry": result.retry, "dead": result.dead, "errors": result.errors},
        *result.errors,
        f"{result.sent} sent, {result.retry} to retry, {result.dead} dead",
    )


# -- the HTTP API -------------------------------------------------------------------

tokens_app = typer.Typer(help="API tokens for the HTTP API (served by `gongmo daemon`).", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def tokens_create(
    role: Annotated[str, typer.Option("--role", help="admin, evaluator or applicant.")],
    subject: Annotated[
        str, typer.Option("--subject", help="admin: the person; evaluator: the e-mail; applicant: the code.")
    ],
    note: Annotated[str | None, typer.Option("--note", help="What the token is for.")] = None,
    actor: Annotated[str, typer.Option("--actor", help="Who creates it.")] = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Create a token; it is printed once and only its SHA-256 is kept."""
    from gongmo.workflow.core import tokens

    a = state.app()
    token_id, token = tokens.create(a, role, subject, actor, note)
    if as_json:  # the token is in it: shown once
        _json({"id": token_id, "token": token, "role": role, "subject": subject.strip(), "note": note})
        return
    console.print(f"token {token_id} ({role}, {subject.strip()}): shown once, keep it now:", markup=False)
    sys.stdout.write(token + "\n")


@tokens_app.command("list")
def tokens_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every token (never the token itself): role, subject, created, last used, revoked."""
    from gongmo.workflow.core import tokens

    rows = tokens.listing(state.app())
    if as_json:
        _json(rows)
        return
    _print_rows(
        "API tokens (KST)",
        ["id", "prefix", "role", "subject", "created", "last used", "revoked", "note"],
        [
            [
                str(r["id"]),
                r["prefix"] + "...",
                r["role"],
                r["subject"],
                _kst(r["created_at"]),
                _kst(r["last_used_at"]),
                _kst(r["revoked_at"]),
                r["note"] or "",
            ]
            for r in rows
        ],
    )


@tokens_app.command("revoke")
def tokens_revoke(token_id: int, as_json: ChangedJson = False) -> None:
    """Revoke a token at once: its next request gets 401."""
    from gongmo.workflow.core import tokens

    _bounded(token_id, "TOKEN_ID")
    row = tokens.revoke(state.app(), token_id)
    _done(
        as_json,
        {
            "id": token_id,
            "role": row["role"],
            "subject": row["subject"],
            "revoked": True,
            "revoked_at": row["revoked_at"],
        },
        f"token {token_id} ({row['role']}, {row['subject']}) revoked",
    )


@app.command()
def openapi() -> None:
    """Print the HTTP API's OpenAPI document (JSON)."""
    from gongmo.workflow.api import create_api

    _json(create_api(state.app()).openapi())


# -- entry point -----------------------------------------------------------------


def _check_controls(args: Sequence[str]) -> None:
    """Refuse an argument with a control character, naming its option (or its place) and the value.
    Every argument follows the free-text rule of the HTTP API's text fields (states/text.py): a tab
    and a line break are text; PostgreSQL refuses a NUL even in a look-up, and no other belongs in a
    reason or a name."""
    for i, arg in enumerate(args):
        what = free_text.problem(arg)
        if what is None:
            continue
        option, eq, value = arg.partition("=")
        if not (arg.startswith("--") and eq):
            before = args[i - 1] if i else ""
            takes_value = before.startswith("-") and "=" not in before and before not in _flags()
            option, value = (before if takes_value else f"argument {i + 1}"), arg
        raise InvalidInput(f"{option} {applicants_mod.shown(value)}: {what}")


def _flags() -> set[str]:
    """Every option of every command that takes no value (--json, --yes, ...)."""
    found = {"--help"}
    todo = [typer.main.get_command(app)]
    while todo:
        command = todo.pop()
        for param in command.params:
            if getattr(param, "is_flag", False):  # an option (typer brings its own click)
                found.update(param.opts, param.secondary_opts)
        todo.extend(getattr(command, "commands", {}).values())
    return found


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code. User mistakes never raise.

    Everything gongmo creates while it runs (the database, its WAL, the
    Maildir and its messages, exports) is its owner's only: the umask is 077
    for the run (the daemon runs inside it) and is given back afterwards."""
    args = list(argv) if argv is not None else sys.argv[1:]
    umask = os.umask(0o077)
    try:
        return _run(args)
    finally:
        os.umask(umask)


def _run(args: list[str]) -> int:
    try:
        _check_controls(args)
        result = app(args=args, prog_name="gongmo", standalone_mode=False)
    except GongmoError as exc:
        for line in str(exc).splitlines():
            sys.stderr.write(f"error: {line}\n")
        return 1
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        return 130
    except typer.TyperException as exc:  # usage errors: wrong option, missing argument
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            sys.stderr.write(f"error: {exc.format_message()}\n")
        return int(exc.exit_code)
    return int(result) if isinstance(result, int) else 0


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    sys.exit(run())


# The review, committee, selection and kickoff commands register themselves on `app`.
from gongmo.workflow.cli import evaluation as cli_evaluation  # noqa: E402, F401
