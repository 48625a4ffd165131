"""`gongmo` commands on the outbox: outbox (the list), outbox show/retry/release, deliver."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from gongmo.states.errors import InvalidInput, NotFound
from gongmo.workflow.cli import output
from gongmo.workflow.cli.shared import ChangedJson, app, bounded, state, when
from gongmo.workflow.core.db import read
from gongmo.workflow.outbox import states as outbox_states
from gongmo.workflow.read import outbox as outbox_rows

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
    bounded(limit, "--limit")
    if only is not None and only not in outbox_states.STATES:
        raise InvalidInput(f"--state {only!r}: choose one of {', '.join(outbox_states.STATES)}")
    a = state.app()
    with read(a.db) as conn:
        found = outbox_rows.page(conn, state=only, limit=limit, newest_first=True)
    rows, totals = found["rows"], found["totals"]
    if as_json:
        output.print_json({"totals": totals, "rows": rows})
        return
    table = output.RichTable("id", "app", "notice", "to", "state", "tries", "last error")
    for r in rows:
        table.add_row(
            str(r["id"]),
            "-" if r["application_id"] is None else str(r["application_id"]),
            r["notice"],
            r["to_addr"],
            r["state"],
            str(r["attempts"]),
            r["last_error"] or "",
        )
    output.console.print(table)
    output.console.print("totals: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())), markup=False)


@outbox_app.command("show")
def outbox_show(outbox_id: int) -> None:
    """One rendered mail, as it will be (or was) sent."""
    from gongmo.notifications.compose import compose

    bounded(outbox_id, "OUTBOX_ID")
    a = state.app()
    with read(a.db) as conn:
        row = outbox_rows.row(conn, outbox_id)
    if row is None:
        raise NotFound(f"no outbox row {outbox_id}: see `gongmo outbox`")
    output.console.print(
        f"outbox {row['id']} · {row['notice']} · {row['state']} · tries {row['attempts']}"
        + (f" · last error: {row['last_error']}" if row["last_error"] else ""),
        markup=False,
    )
    envelope = compose(row, a.loaded.config.mail.sender, a.clock.now())
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
    from gongmo.workflow.outbox.office import retry_all, retry_now

    if outbox_id is not None:
        if only is not None or since is not None or track is not None:
            raise InvalidInput(f"OUTBOX_ID {outbox_id} with --state/--since/--track: retry one row or many, not both")
        bounded(outbox_id, "OUTBOX_ID")
        a = state.app()
        was = retry_now(a, outbox_id)
        output.done(
            as_json,
            {"retried": 1, "outbox_id": outbox_id, "from_state": was, "to_state": outbox_states.PENDING},
            f"outbox {outbox_id}: {was} -> pending",
        )
        return
    if only is None:
        raise InvalidInput("outbox retry: name an OUTBOX_ID, or --state dead to retry every dead notice")
    after = None
    if since is not None:
        try:
            after = when(since, "--since")
        except InvalidInput:
            raise InvalidInput(f"--since {since!r}: not an ISO date-time; write e.g. 2024-05-29T18:00 (KST)") from None
    a = state.app()
    count = retry_all(a, only, since=after, track=track)
    scope = "".join((f" of {track}" if track else "", f" queued since {output.kst(after)} KST" if after else ""))
    output.done(
        as_json,
        {"retried": count, "from_state": only, "to_state": outbox_states.PENDING, "track": track, "since": after},
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
    from gongmo.workflow.outbox.office import held, release

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
                output.console.print(f"  {n:>5} x [{language}] {subject}", markup=False)
    if not yes and not typer.confirm(f"send these {total} notices now?"):
        raise typer.Abort()
    released = release(a, track, notice)
    output.done(
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
    output.done(
        as_json,
        {"sent": result.sent, "retry": result.retry, "dead": result.dead, "errors": result.errors},
        *result.errors,
        f"{result.sent} sent, {result.retry} to retry, {result.dead} dead",
    )
