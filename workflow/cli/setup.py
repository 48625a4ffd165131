"""`gongmo` commands that set up and try a contest: init, contests, graph, templates check,
rehearse, demo, openapi.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer

import gongmo
from gongmo.states.errors import GongmoError, InvalidInput
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import mermaid
from gongmo.workflow.cli import output
from gongmo.workflow.cli.shared import ChangedJson, app, state
from gongmo.workflow.core import closures, starter
from gongmo.workflow.core import config as config_mod
from gongmo.workflow.core.db import make_engine, read
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.deadlines.plan import reminder_times
from gongmo.workflow.runtime import rehearsal, wiring

templates_app = typer.Typer(help="Notice templates.", no_args_is_help=True)
app.add_typer(templates_app, name="templates")


@app.command()
def init(as_json: ChangedJson = False) -> None:
    """Write a starting config.toml if this folder has none, create or upgrade the schema and
    load the config's contests (idempotent)."""
    written = starter.write_default_if_missing(state.config)
    a = state.app()
    problems = a.renderer.check()
    if problems:
        raise InvalidInput("templates have problems:\n" + "\n".join(problems))
    prepared = wiring.prepare(a)
    before, after = prepared.schema_before, prepared.schema_after
    changes, planned = prepared.changes, prepared.planned
    url = a.db.url.render_as_string(hide_password=True)
    with read(a.db) as conn:
        kept = calendars.held(conn, a.loaded.config)
    warnings = [flag.line() for flag in _holiday_flags(a.loaded.config, kept)]
    if as_json:
        schema_change = {"database": url, "before": before, "after": after}
        output.print_json(
            {"schema": schema_change, "changes": changes, "deadlines": len(planned), "warnings": warnings}
            | {"config_written": None if written is None else str(written)}
        )
        return
    if written is not None:
        output.console.print(starter.written_note(written), markup=False)
    output.console.print(f"database {url}: schema {before or 'empty'} -> {after}", markup=False)
    for line in changes or ["contests and tracks already up to date"]:
        output.console.print(f"  {line}", markup=False)
    output.console.print(
        f"  deadlines: {len(planned)} added or moved" if planned else "  deadlines: nothing to add or move"
    )
    for line in warnings:
        output.console.print(f"  warning: {line}", markup=False)


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
        output.print_json(data)
        return
    for c, contest in zip(data, loaded.config.contests, strict=True):
        table = output.RichTable(title=f"{contest.name_ko} ({contest.key}) · 국비 {contest.national_budget_krw:,}원")
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
                cells.append("-" if at is None else output.kst(at, contest.timezone) + mark)
            table.add_row(m, *cells)
        output.console.print(table)
        sources = {t["calendar_source"] for t in c["tracks"]}
        source = "as the database holds it" if sources == {"database"} else "the config's (run `gongmo init`)"
        output.console.print(f"times in {c['timezone']}; calendar {source}", markup=False)
        for t in c["tracks"]:
            for m, moves in t["rescheduled"].items():
                for move in moves:
                    zone = contest.timezone
                    output.console.print(
                        f"* {t['track']} {m}: {output.kst(move['from'], zone)} -> {output.kst(move['to'], zone)},"
                        f" rescheduled by {move['by']} on {output.kst(move['at'], zone)}: {move['why']}",
                        markup=False,
                    )
    for flag in _holiday_flags(loaded.config, kept):
        output.console.print(f"warning: {flag.line()}", markup=False)


@app.command()
def graph() -> None:
    """The lifecycle as a Mermaid state diagram, drawn from the transition table: each
    automatic trigger at its real milestone, and the deadline rows of a track."""
    sys.stdout.write(mermaid(TABLE))


@templates_app.command("check")
def templates_check() -> None:
    """Check every notice template against its variables and render it once; say which file
    each notice uses (the folder's own, or gongmo's packaged one)."""
    loaded = config_mod.load(state.config)
    from gongmo.notifications.render import Renderer

    renderer = Renderer(loaded.templates_dir)
    problems = renderer.check()
    if problems:
        raise InvalidInput("\n".join(problems))
    for line in renderer.source_lines():
        output.console.print(line, markup=False)
    output.console.print("every template renders", markup=False)


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
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Run the daemon with the console instead, on one call moved to happen in --minutes on the real"
            " clock: sample applicants and evaluators act on their own, you take the office's decisions.",
        ),
    ] = False,
    port: Annotated[
        int | None, typer.Option("--port", help="With --live: serve the console on this port (default: [api] port).")
    ] = None,
    minutes: Annotated[
        float, typer.Option("--minutes", help="With --live: from now to the last milestone, in minutes.")
    ] = 15,
) -> None:
    """Rehearse both reference contests end to end with every human step, and deliver
    every notice to a Maildir to read; exit 0 if all holds. With --live: watch one call happen
    in the console, live, and take the office's decisions."""
    import tempfile

    csv_path = _sample_csv()
    if maildir is not None and maildir.exists() and not maildir.is_dir():
        raise InvalidInput(f"--maildir {str(maildir)!r} is a file: name a folder (it is created if missing)")
    if live:
        _demo_live(csv_path, maildir, port, minutes)
        return
    if port is not None or minutes != 15:
        raise InvalidInput("--port and --minutes are for the live demo: add --live")
    loaded = config_mod.load(state.config)
    keys = [c.key for c in loaded.config.contests]
    box = maildir if maildir is not None else Path(tempfile.mkdtemp(prefix="gongmo-demo-")) / "maildir"
    result = rehearsal.rehearse(state.config, keys, csv_path, True, _line, maildir=box)
    if not result.audit_clean:
        raise typer.Exit(1)


def _demo_live(csv_path: Path, maildir: Path | None, port: int | None, minutes: float) -> None:
    """`demo --live`: the daemon, API and console on a throwaway database (runtime/live.py)."""
    from gongmo.workflow.runtime import live
    from gongmo.workflow.runtime.daemon import configure_logging
    from gongmo.workflow.web import create_app

    if state.now is not None:
        raise InvalidInput("--now: the live demo runs on the real clock; `gongmo demo` rehearses at any instant")
    if port is not None and not 0 <= port <= 65535:
        raise InvalidInput(f"--port {port}: a TCP port is 0 to 65535")
    configure_logging(state.verbose)
    demo = live.open_live(state.config, csv_path, maildir, minutes, port)
    try:
        live.run(demo, create_app, _line)
    finally:
        demo.app.db.dispose()


@app.command()
def openapi() -> None:
    """Print the HTTP API's OpenAPI document (JSON)."""
    from gongmo.workflow.api import create_api

    output.print_json(create_api(state.app()).openapi())
