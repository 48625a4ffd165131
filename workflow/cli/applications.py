"""`gongmo` commands on applicants and applications: applicants import/list, announce, start,
apply, trigger, bulk, show, status, audit verify and anchor.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from gongmo.states.errors import InvalidInput
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role
from gongmo.workflow.cli import documents, output
from gongmo.workflow.cli.shared import ChangedJson, app, bounded, resolve, state
from gongmo.workflow.core import tokens as tokens_mod
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.db import read, write
from gongmo.workflow.engine import audit as audit_mod
from gongmo.workflow.read import applicants as applicants_read
from gongmo.workflow.read import applications, visibility
from gongmo.workflow.stages import applicants as applicants_mod

applicants_app = typer.Typer(help="Local governments that may apply.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(applicants_app, name="applicants")
app.add_typer(audit_app, name="audit")


@applicants_app.command("import")
def applicants_import(file: Path, as_json: ChangedJson = False) -> None:
    """Import local governments from CSV (all rows or none; by code)."""
    a = state.app()
    rows = applicants_mod.parse(file, a.loaded.config.gongmo.max_csv_bytes)
    with write(a.db) as conn:
        result = applicants_mod.store(conn, rows)
    counts = {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}
    output.done(
        as_json,
        {"file": str(file), "rows": len(rows), **counts},
        f"{file}: {len(rows)} rows: {result.created} created, {result.updated} updated, {result.unchanged} unchanged",
    )


@applicants_app.command("list")
def applicants_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The imported local governments."""
    a = state.app()
    with read(a.db) as conn:
        rows = applicants_read.listing(conn)
    if as_json:
        output.print_json(rows)
        return
    table = output.RichTable("code", "name", "kind", "population", "contact", "e-mail", "lang")
    for r in rows:
        table.add_row(
            r["code"], r["name"], r["kind"], f"{r['population']:,}", r["contact_name"], r["email"], r["language"]
        )
    output.console.print(table)


contact_app = typer.Typer(
    help="The people who sign in to an applicant's pages (its contacts; the row's own e-mail is one).",
    no_args_is_help=True,
)
applicants_app.add_typer(contact_app, name="contact")


@contact_app.command("add")
def contact_add(
    code: str,
    email: str,
    name: Annotated[str | None, typer.Option(help="The person's name.")] = None,
    as_json: ChangedJson = False,
) -> None:
    """One more contact: signs in by an e-mailed link and sees the applicant's applications."""
    row = applicants_mod.add_contact(state.app(), code, email, name)
    output.done(as_json, row, f"{row['email']}: now a contact of applicant {code}")


@contact_app.command("remove")
def contact_remove(code: str, email: str, as_json: ChangedJson = False) -> None:
    """A contact no more: it cannot sign in for the applicant, and its sessions end at once."""
    row = applicants_mod.remove_contact(state.app(), code, email)
    output.done(
        as_json,
        row,
        f"{row['email']}: no longer a contact of applicant {code} ({row['sessions_ended']} session(s) ended)",
    )


@contact_app.command("list")
def contact_list(code: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The contacts of one applicant, its own e-mail (where notices go) first."""
    a = state.app()
    with read(a.db) as conn:
        rows = applicants_mod.contacts_of(conn, code)
    if as_json:
        output.print_json(rows)
        return
    table = output.RichTable("e-mail", "name", "notices")
    for r in rows:
        table.add_row(r["email"], r["name"] or "-", "yes" if r["own"] else "")
    output.console.print(table)


@app.command()
def announce(
    track: str,
    actor: Annotated[str, typer.Option(help="Who publishes the call.")] = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Publish a track's call: an application per applicant on its mailing list."""
    a = state.app()
    created = a.moves.announce(track, Actor(actor, Role.ADMIN))
    output.done(
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
    output.done(
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
    document: Annotated[
        list[str] | None,
        typer.Option("--document", help="KIND=FILE: upload FILE as KIND before the plan (repeatable)."),
    ] = None,
    answers_file: Annotated[
        Path | None, typer.Option("--answers", help="A JSON object of answers to the track's questions.")
    ] = None,
    answer: Annotated[
        list[str] | None, typer.Option("--answer", help="KEY=VALUE: one answer (repeatable; wins over --answers).")
    ] = None,
    as_json: ChangedJson = False,
) -> None:
    """Record a plan received inside the receipt window, with its documents (uploaded first) and
    answers; prints the receipt number and each document's SHA-256."""
    a = state.app()
    who = Actor(actor, Role.ADMIN)
    files = documents.document_pairs(document or [])
    answers = documents.gather_answers(a, track, answers_file, answer or [], "--answer")
    uploaded = documents.upload_for(a, track, applicant, files, who)
    moved = a.moves.submit(track, applicant, national, local, who, title, project_type, years, answers=answers or None)
    output.done(
        as_json,
        {**_moved(moved), "track": track, "applicant": applicant}
        | ({"documents": [documents.uploaded_json(u) for u in uploaded]} if uploaded else {}),
        *[f"uploaded {documents.uploaded_line(u)}" for u in uploaded],
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
        bounded(version, "--version")
    a = state.app()
    app_id = resolve(a, application)
    moved = a.moves.apply(app_id, event, Actor(actor, role), reason, version, waitlist_position=position)
    place = None
    if moved.to_state == "waitlisted":
        with read(a.db) as conn:
            place = applications.waitlist_position(conn, app_id)
    receipt = f", receipt number {moved.receipt_no}" if moved.receipt_no else ""
    output.done(
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
    output.done(
        as_json,
        {"track": track, "trigger": event, "from_state": from_state, "to_state": dest, "moved": moved},
        f"{track}: {moved} applications moved {from_state} -> {dest} ({event})",
    )


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
    app_id = resolve(a, application)
    role, _, subject = as_who.partition(":")
    with read(a.db) as conn:
        who = tokens_mod.principal(conn, role, subject)
        data = visibility.detail(a, conn, who, app_id)
    history, notices, decisions = data["history"], data["notices"], data["events"]
    data = row = {**data, "code": data["applicant_code"], "name": data["applicant_name"]}
    if as_json:
        output.print_json(data)
        return
    pending = " (result pending: under embargo)" if row["result_pending"] else ""
    output.console.print(
        f"application {row['id']} · {row['track']} · {row['name']} ({row['code']}) · state [bold]{row['state']}[/]"
        f"{pending} · version {row['version']} · receipt {row['receipt_no'] or '-'}"
    )
    if row["national_krw"] is not None:
        output.console.print(
            f"requested: national {row['national_krw']:,} won, local {row['local_krw']:,} won;"
            f" title {row['title'] or '-'}"
        )
    output.print_rows(
        "history (KST)",
        ["at", "actor", "role", "trigger", "from", "to", "reason"],
        [
            [
                output.kst(h["at"]),
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
        output.print_rows(
            f"preliminary review checklist: {verdict}",
            ["rule", "result", "value", "required"],
            [[c["rule"], "pass" if c["passed"] else "FAIL", c["value"], c["expected"]] for c in data["checklist"]],
        )
    result = row["result"]
    if result:
        output.console.print(
            f"committee score {result['committee_score']} (written {result['written_score']}, presentation"
            f" {result['presentation_score']}), rank {result['rank']} of {result['ranked']}; minimum"
            f" {result['minimum_score']}, last selected {result['last_selected_score'] or '-'}",
            markup=False,
        )
    if data["calendar_changes"]:  # one line each: a table of seven columns is cut at 80
        output.console.print("calendar changes (KST): the track's reschedules and this application's extensions")
        for c in data["calendar_changes"]:
            output.console.print(
                f"  {output.kst(c['at'])} {c['actor']}: {c['kind']} of {c['milestone']}"
                f" {output.kst(c['old_at'])} -> {output.kst(c['new_at'])}; reason: {c['reason']}",
                markup=False,
            )
    if decisions:
        output.print_rows(
            "decisions (KST)",
            ["at", "actor", "what", "detail"],
            [
                [output.kst(e["at"]), e["actor"], e["kind"], json.dumps(e["detail"], ensure_ascii=False)]
                for e in decisions
            ],
        )
    output.print_rows(
        "notices",
        ["id", "notice", "state", "subject"],
        [[str(n["id"]), n["notice"], n["state"], n["subject"]] for n in notices],
    )
    documents.print_current(data["documents"])
    documents.print_answers(a, row["track"], data["answers"])


@app.command()
def status(
    track: Annotated[str | None, typer.Argument()] = None, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """Applications per state, per track."""
    a = state.app()
    if track is not None:
        a.loaded.config.track(track)
    counts: dict[str, dict[str, int]] = {}
    with read(a.db) as conn:
        office = tokens_mod.principal(conn, "admin", "")
        for (key, st), n in visibility.state_counts(conn, office, track).items():
            counts.setdefault(key, {})[st] = n
    if as_json:
        output.print_json(counts)
        return
    tracks = sorted(counts)
    table = output.RichTable("state", *tracks)
    for st in TABLE.state_names:
        if any(st in counts[k] for k in tracks):
            table.add_row(st, *[str(counts[k].get(st, 0)) for k in tracks])
    table.add_row("total", *[str(sum(counts[k].values())) for k in tracks])
    output.console.print(table)


@audit_app.command("verify")
def audit_verify(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    anchor: Annotated[
        str | None, typer.Option("--anchor", metavar="DIGEST", help="Prove nothing this anchor covered changed.")
    ] = None,
    actor: Annotated[str, typer.Option("--actor", help="Who runs the check (recorded with its result).")] = "cli",
) -> None:
    """Replay the audit log and walk every hash chain; exit 1 on the first row of each chain that
    does not match. With --anchor DIGEST: recompute what that anchor covered instead. Each run
    (not --anchor) is recorded: the console's health page shows the last one and when it ran."""
    a = state.app()
    if anchor is not None:
        _audit_verify_anchor(a, anchor, as_json)
        return
    report = audit_mod.check(a.db, TABLE, a.clock.now(), actor)
    if as_json:
        output.print_json(
            {
                "applications": report.applications,
                "audit_rows": report.audit_rows,
                "event_rows": report.event_rows,
                "chains": report.chains,
                "clean": report.clean,
                "findings": [f.__dict__ for f in report.findings],
            }
        )
    else:
        for f in report.findings:
            output.console.print(_finding_line(f), markup=False)
        verdict = "clean" if report.clean else f"{len(report.findings)} problem(s)"
        output.console.print(
            f"audit verify: {report.applications} applications, {report.audit_rows} audit rows,"
            f" {report.event_rows} event rows, {report.chains} chains: {verdict}"
        )
    if not report.clean:
        raise typer.Exit(1)


def _finding_line(f: audit_mod.Finding) -> str:
    return audit_mod.finding_line(f)


def _audit_verify_anchor(a: Any, digest: str, as_json: bool) -> None:
    with audit_mod.snapshot(a.db) as conn:
        report = audit_mod.verify_anchor(conn, digest)
    anchor = report.anchor
    if as_json:
        output.print_json(
            {
                "anchor": anchor.digest,
                "at": anchor.at,
                "rows": anchor.rows,
                "chains": anchor.chains,
                "recomputed": report.root,
                "clean": report.clean,
                "findings": [f.__dict__ for f in report.findings],
            }
        )
    else:
        for f in report.findings:
            output.console.print(_finding_line(f), markup=False)
        verdict = "clean: nothing it covered changed" if report.clean else f"{len(report.findings)} chain(s) changed"
        output.console.print(
            f"audit verify --anchor {anchor.digest} (taken {output.kst(anchor.at)}, {anchor.rows} rows,"
            f" {anchor.chains} chains): {verdict}",
            markup=False,
        )
    if not report.clean:
        raise typer.Exit(1)


@audit_app.command("anchor")
def audit_anchor(
    as_json: Annotated[bool, typer.Option("--json")] = False,
    list_: Annotated[bool, typer.Option("--list", help="The anchors taken so far.")] = False,
) -> None:
    """One digest over every chain head (a Merkle root), kept with the heads it covers: publish
    it; `gongmo audit verify --anchor DIGEST` proves later that nothing it covered changed."""
    a = state.app()
    if list_:
        with read(a.db) as conn:
            taken = audit_mod.anchors(conn)
        rows = [{"digest": t.digest, "at": t.at, "rows": t.rows, "chains": t.chains} for t in taken]
        if as_json:
            output.print_json(rows)
            return
        for t in taken:
            output.console.print(f"{t.digest}  {output.kst(t.at)}  {t.rows} rows, {t.chains} chains", markup=False)
        return
    with audit_mod.snapshot(a.db, write=True) as conn:
        anchor = audit_mod.take_anchor(conn, a.clock.now())
    output.done(
        as_json,
        {"digest": anchor.digest, "at": anchor.at, "rows": anchor.rows, "chains": anchor.chains, "new": anchor.taken},
        f"audit anchor: {anchor.digest}",
        f"covers {anchor.rows} rows in {anchor.chains} chains, taken {output.kst(anchor.at)}"
        + ("" if anchor.taken else " (nothing changed since this anchor was taken)"),
    )
