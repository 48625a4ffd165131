"""`gongmo` commands on deadlines and the daemon: deadlines, tick, daemon, reschedule, extend."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import typer

from gongmo.states.errors import InvalidInput
from gongmo.workflow.cli import output
from gongmo.workflow.cli.shared import ChangedJson, app, resolve, state, when
from gongmo.workflow.core.db import read
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.read import deadlines as deadline_rows


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
    from gongmo.workflow.deadlines import status as deadline_status
    from gongmo.workflow.deadlines import ticker as ticker_mod

    a = state.app()
    if fire is not None or skip is not None:
        from gongmo.workflow.runtime.daemon import worker_name

        if fire is not None and skip is not None:
            raise InvalidInput("--fire and --skip: give one of them")
        office = ticker_mod.Ticker(a, f"{worker_name()}:office")
        if skip is not None:
            office.skip(skip, reason or "")
            output.done(
                as_json,
                {"key": skip, "skipped": True, "reason": reason},
                f"{skip}: recorded as not sent ({reason}); the rest of its track goes on",
            )
            return
        assert fire is not None
        done = office.fire_now(fire)
        if done.error is not None:
            raise InvalidInput(f"--fire {fire}: failed again: {done.error}")
        output.done(as_json, {"key": fire, "fired": True, "summary": done.summary}, f"{fire}: fired: {done.summary}")
        return
    if track is not None:
        a.loaded.config.track(track)
    now = a.clock.now()
    with read(a.db) as conn:
        rows = deadline_status.annotate(deadline_rows.listing(conn, track), now)
        blocked = [b for b in deadline_status.blocked(conn, now) if track is None or b["track"] == track]
    if as_json:
        output.print_json(rows)
        return
    table = output.RichTable("due (KST)", "deadline", "action", "status", "fired (KST)", "late", "tries", "last error")
    for r in rows:
        late = "" if r["late"] is None else ("catch-up" if r["late"] else "on time")
        status = f"waiting for {r['waiting_for']}" if r["status"] == "waiting" else r["status"]
        table.add_row(
            output.kst(r["due_at"]),
            r["key"],
            r["action"],
            status,
            output.kst(r["fired_at"]),
            late,
            str(r["attempts"]),
            r["last_error"] or "",
        )
    output.console.print(table)
    for b in blocked:
        if b["kind"] == "held":
            what = f"held for the office: {b['error']}"
        else:
            what = f"failed {b['attempts']} time(s), retried at {output.kst(b['retry_at'])} KST: {b['error']}"
        line = f"blocked: {b['key']} {what}; {b['waiting']} due deadline(s) of its track wait"
        output.console.print(line, markup=False)


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
        output.print_json({"fired": rows, "next_due": due})
        return
    for f in fired:
        how = "catch-up" if f.late else "on time"
        text = f"{f.key} ({how}): {f.summary}" + (f" [{f.error}]" if f.error else "")
        output.console.print(text, markup=False)
    done = sum(1 for f in fired if f.error is None)
    held = len(fired) - done  # failed or held for the office: not fired, they hold their track back
    waiting = f", {held} failed or held (see `gongmo deadlines`)" if held else ""
    output.console.print(f"{done} deadline(s) fired{waiting}; {_next_due(due)}")


def _next_due(due: datetime | None) -> str:
    return f"next due: {output.kst(due)} KST" if due is not None else "no deadline left"


@app.command()
def daemon(
    once: Annotated[bool, typer.Option("--once", help="Catch up what is due, then exit.")] = False,
    port: Annotated[
        int | None, typer.Option("--port", help="Serve the HTTP API on this port (default: [api] port).")
    ] = None,
    no_api: Annotated[bool, typer.Option("--no-api", help="Do not serve the HTTP API.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="With --once: what fired, as one JSON object.")] = False,
) -> None:
    """Run the scheduler, the HTTP API and the office console: every deadline fires once, on time or
    caught up after downtime."""
    from gongmo.workflow.runtime.daemon import Daemon, configure_logging, run_forever
    from gongmo.workflow.web import create_app

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
    run_forever(a, api, create_app)


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
    result = calendars.reschedule(a, track, milestone, when(new_time), reason, actor)
    if as_json:
        output.print_json({"track": track, "milestone": milestone, "reason": reason, **result})
        return
    if not result["changed"]:
        output.console.print(
            f"{track} {milestone} is already {output.kst(result['new_at'])} KST: nothing changed, nobody notified",
            markup=False,
        )
    else:
        output.console.print(
            f"{track} {milestone}: {output.kst(result['old_at'])} -> {output.kst(result['new_at'])} KST;"
            f" {len(result['deadlines'])} deadline row(s) moved; {result['notified']} applicant(s) notified",
            markup=False,
        )
    for line in result["warnings"]:
        output.console.print(f"warning: {line}", markup=False)


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
    app_id = resolve(a, application)
    result = calendars.extend(a, app_id, milestone, when(new_time), reason, actor)
    output.done(
        as_json,
        {"application_id": app_id, "milestone": milestone, "reason": reason, **result},
        f"application {app_id}: {milestone} extended from {output.kst(result['old_at'])} to"
        f" {output.kst(result['new_at'])} KST; notified",
    )
