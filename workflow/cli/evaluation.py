"""`gongmo` commands for the review, the committee, selection and kickoff.

Registered on the shared CLI app (cli/shared.py) when workflow.cli imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from gongmo.states.errors import InvalidInput
from gongmo.states.lifecycle import Role
from gongmo.states.scoring import PARTS
from gongmo.workflow.cli import output
from gongmo.workflow.cli.shared import ChangedJson, app, bounded, resolve, state
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.db import read, write
from gongmo.workflow.stages import committee, exports, kickoff, presentations, review, selection

review_app = typer.Typer(
    help="The preliminary review: eligibility checklists, pass and disqualify.", no_args_is_help=True
)
objection_app = typer.Typer(help="Objections to a disqualification.", no_args_is_help=True)
evaluators_app = typer.Typer(help="The external expert committee.", no_args_is_help=True)
scores_app = typer.Typer(help="Committee scores from a file.", no_args_is_help=True)
presentations_app = typer.Typer(help="Presentation evaluation slots.", no_args_is_help=True)
kickoff_app = typer.Typer(help="Detailed implementation plans of the selected.", no_args_is_help=True)
app.add_typer(review_app, name="review")
app.add_typer(objection_app, name="objection")
app.add_typer(evaluators_app, name="evaluators")
app.add_typer(scores_app, name="scores")
app.add_typer(presentations_app, name="presentations")
app.add_typer(kickoff_app, name="kickoff")

ActorOpt = Annotated[str, typer.Option("--actor", help="Who does it (recorded in the audit log).")]
JsonOpt = Annotated[bool, typer.Option("--json")]
ExportOpt = Annotated[Path | None, typer.Option("--out", help="Also write the table to FILE.csv or FILE.xlsx.")]


def _admin(name: str) -> Actor:
    return Actor(name, Role.ADMIN)


# -- review -------------------------------------------------------------------------


@review_app.command("checks")
def review_checks(track: str, as_json: JsonOpt = False) -> None:
    """The eligibility checklist of every application in preliminary review."""
    rows = review.checklists(state.app(), track)
    if as_json:
        output.print_json([r.__dict__ for r in rows])
        return
    body = []
    for r in rows:
        verdict = "eligible" if r.eligible else "NOT eligible"
        lines = "\n".join(
            f"{'pass' if c['passed'] else 'FAIL'} {c['rule']}: {c['value']} ({c['expected']})" for c in r.checks
        )
        body.append([r.receipt_no or str(r.application_id), r.applicant, verdict, lines])
    output.print_rows(f"{track}: preliminary review", ["receipt", "applicant", "verdict", "checks"], body)


@review_app.command("pass")
def review_pass(track: str, actor: ActorOpt = "admin", as_json: ChangedJson = False) -> None:
    """Pass every application in preliminary review whose checks all passed."""
    moved = review.pass_eligible(state.app(), track, _admin(actor))
    output.done(
        as_json,
        {"track": track, "passed": moved, "to_state": "written_evaluation"},
        f"{track}: {moved} applications passed the review (every check passed)",
    )


@review_app.command("disqualify-failed")
def review_disqualify_failed(track: str, actor: ActorOpt = "admin", as_json: ChangedJson = False) -> None:
    """Disqualify every application whose checks failed; its failed rules are the reason."""
    done = review.disqualify_failed(state.app(), track, _admin(actor))
    output.done(
        as_json,
        {"track": track, "disqualified": [{"application": label, "reason": reason} for label, reason in done]},
        *[f"{label}: disqualified ({reason})" for label, reason in done],
        f"{track}: {len(done)} disqualified",
    )


# -- objections ---------------------------------------------------------------------


@objection_app.command("file")
def objection_file(
    application: str,
    grounds: Annotated[str, typer.Option("--grounds", help="Why the decision is wrong.")],
    actor: ActorOpt = "applicant",
    as_json: ChangedJson = False,
) -> None:
    """Record an objection to a disqualification, inside the objection window."""
    a = state.app()
    app_id = resolve(a, application)
    oid = review.file_objection(a, app_id, grounds, Actor(actor, Role.APPLICANT))
    output.done(
        as_json,
        {"objection_id": oid, "application_id": app_id, "status": "open", "grounds": grounds},
        f"objection #{oid} filed for application {application}; evaluation of its track waits for it",
    )


@objection_app.command("uphold")
def objection_uphold(
    objection_id: int,
    reason: Annotated[str, typer.Option("--reason")],
    actor: ActorOpt = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Uphold an objection: the application goes back to evaluation."""
    bounded(objection_id, "OBJECTION_ID")
    review.decide_objection(state.app(), objection_id, True, reason, _admin(actor))
    output.done(
        as_json,
        {"objection_id": objection_id, "decision": "upheld", "reason": reason, "to_state": "written_evaluation"},
        f"objection #{objection_id} upheld: the application is back in written evaluation",
    )


@objection_app.command("reject")
def objection_reject(
    objection_id: int,
    reason: Annotated[str, typer.Option("--reason")],
    actor: ActorOpt = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Reject an objection: the disqualification stands; the applicant is told why."""
    bounded(objection_id, "OBJECTION_ID")
    review.decide_objection(state.app(), objection_id, False, reason, _admin(actor))
    output.done(
        as_json,
        {"objection_id": objection_id, "decision": "rejected", "reason": reason},
        f"objection #{objection_id} rejected: the disqualification stands",
    )


@objection_app.command("list")
def objection_list(track: Annotated[str | None, typer.Argument()] = None, as_json: JsonOpt = False) -> None:
    """Objections, open and decided."""
    rows = review.objections(state.app(), track)
    if as_json:
        output.print_json(rows)
        return
    output.print_rows(
        "objections",
        ["id", "track", "receipt", "filed (KST)", "status", "grounds", "decision"],
        [
            [
                str(r["id"]),
                r["track"],
                r["receipt_no"] or "",
                output.kst(r["filed_at"]),
                r["status"],
                r["grounds"],
                r["decision"] or "",
            ]
            for r in rows
        ],
    )


# -- committee ------------------------------------------------------------------------


@evaluators_app.command("import")
def evaluators_import(file: Path, as_json: ChangedJson = False) -> None:
    """Import evaluators (name,email,affiliation,region,home_code,conflicts): all rows or none."""
    a = state.app()
    rows = committee.parse_evaluators(file, a.loaded.config.gongmo.max_csv_bytes)
    with write(a.db) as conn:
        created, updated = committee.store_evaluators(conn, rows, a.clock.now())
    output.done(
        as_json,
        {"file": str(file), "rows": len(rows), "created": created, "updated": updated},
        f"{file}: {len(rows)} evaluators ({created} new, {updated} updated)",
    )


@evaluators_app.command("list")
def evaluators_list(as_json: JsonOpt = False) -> None:
    """The committee, with declared conflicts."""
    a = state.app()
    with read(a.db) as conn:
        pool = committee.evaluators(conn)
    if as_json:
        output.print_json(
            [
                {"email": e.key, "region": e.region, "home_code": e.home_code, "declared": sorted(e.declared)}
                for e in pool
            ]
        )
        return
    output.print_rows(
        "evaluators",
        ["email", "region", "home", "declared conflicts"],
        [[e.key, e.region, e.home_code or "", ", ".join(sorted(e.declared))] for e in pool],
    )


@evaluators_app.command("conflict")
def evaluators_conflict(
    email: str,
    applicant: str,
    reason: Annotated[str, typer.Option("--reason")],
    actor: ActorOpt = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Declare a conflict of interest; an assignment it breaks is withdrawn with its scores."""
    said = committee.declare_conflict(state.app(), email, applicant, reason, _admin(actor))
    output.done(as_json, {"evaluator": email, "applicant": applicant, "reason": reason, "result": said}, said)


@app.command()
def assign(track: str, actor: ActorOpt = "admin", as_json: JsonOpt = False) -> None:
    """Assign evaluators without a conflict to every application in evaluation (fills gaps only)."""
    plan = committee.assign_track(state.app(), track, _admin(actor))
    if as_json:  # receipt number -> its evaluators
        output.print_json(plan)
        return
    output.print_rows(f"{track}: assignments", ["receipt", "evaluators"], [[k, ", ".join(v)] for k, v in plan.items()])


@app.command()
def score(
    application: str,
    points: Annotated[list[str], typer.Argument(help="CRITERION=POINTS for every criterion, e.g. feasibility=24.5")],
    evaluator: Annotated[str, typer.Option("--evaluator", help="The evaluator's e-mail.")],
    part: Annotated[str, typer.Option("--part", help="written or presentation")],
    actor: ActorOpt = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Enter (or correct) one evaluator's sheet for one part of one application."""
    values: dict[str, str] = {}
    for item in points:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"{item!r}: write CRITERION=POINTS, e.g. feasibility=24.5")
        values[key.strip()] = value
    if part not in PARTS:
        raise InvalidInput(f"--part {part!r}: write written or presentation")
    sheet = committee.SheetInput(application, evaluator, part, values)
    stored = committee.enter_sheets(state.app(), [sheet], _admin(actor))
    output.done(
        as_json,
        {"application": application, "evaluator": evaluator, "part": part, "points": values, "stored": stored},
        f"application {application}: {part} sheet of {evaluator} stored",
    )


@scores_app.command("import")
def scores_import(track: str, file: Path, actor: ActorOpt = "admin", as_json: ChangedJson = False) -> None:
    """Import sheets (receipt_no,evaluator,part,<criteria>...): all rows or none."""
    a = state.app()
    _, track_cfg = a.loaded.config.track(track)
    sheets, where = committee.parse_scores(file, track_cfg, a.loaded.config.gongmo.max_csv_bytes)
    stored = committee.enter_sheets(a, sheets, _admin(actor), where)
    output.done(as_json, {"file": str(file), "track": track, "stored": stored}, f"{file}: {stored} sheets stored")


# -- presentations ----------------------------------------------------------------------


@presentations_app.command("schedule")
def presentations_schedule(track: str, actor: ActorOpt = "admin", as_json: ChangedJson = False) -> None:
    """Give every application in evaluation a slot and send each its invitation (.ics)."""
    planned = presentations.schedule(state.app(), track, _admin(actor))
    if as_json:
        output.print_json({"track": track, "slots": planned})
        return
    output.print_rows(
        f"{track}: presentation slots (KST)",
        ["receipt", "starts", "ends", "place"],
        [[p["receipt_no"], output.kst(p["starts_at"]), output.kst(p["ends_at"]), p["place"]] for p in planned],
    )


@presentations_app.command("list")
def presentations_list(track: str, as_json: JsonOpt = False) -> None:
    rows = presentations.slots(state.app(), track)
    if as_json:
        output.print_json(rows)
        return
    output.print_rows(
        f"{track}: presentation slots (KST)",
        ["receipt", "applicant", "starts", "ends", "place"],
        [[r["receipt_no"], r["name"], output.kst(r["starts_at"]), output.kst(r["ends_at"]), r["place"]] for r in rows],
    )


# -- ranking and selection ----------------------------------------------------------------


@app.command()
def rank(track: str, as_json: JsonOpt = False, out: ExportOpt = None) -> None:
    """The committee ranking with every component: parts, aggregation, tie-breaks."""
    a = state.app()
    result = selection.ranking(a, track)
    rows = selection.table(result)
    _emit(a, track, rows, result.incomplete, as_json, out, f"{track}: ranking")


@app.command("select")
def select_cmd(
    track: str,
    confirm: Annotated[bool, typer.Option("--confirm", help="Apply the decisions (without it: a dry run).")] = False,
    actor: ActorOpt = "admin",
    as_json: JsonOpt = False,
    out: ExportOpt = None,
) -> None:
    """Selection within slots and budget: a dry run, or --confirm to apply it in one transaction."""
    a = state.app()
    result = selection.select(a, track, _admin(actor), confirm)
    rows = selection.table(result.ranking, result.decisions)
    title = f"{track}: selection ({'applied' if confirm else 'dry run: nothing changed; add --confirm'})"
    _emit(a, track, rows, [], as_json, out, title)
    if not as_json:
        _, cfg = a.loaded.config.track(track)
        used = sum(r["national_krw"] for r in rows if r["decision"] == "selected")
        output.console.print(
            f"{result.count('select')} selected of {cfg.slots} slots, {result.count('waitlist')} waitlisted,"
            f" {result.count('reject')} not selected; national {used:,} of {cfg.funding.budget_national_krw:,} won"
            + ("; notices held until `gongmo outbox release`" if confirm else ""),
            markup=False,
        )


def _emit(
    a: object,
    track: str,
    rows: list[dict[str, object]],
    incomplete: list[str],
    as_json: bool,
    out: Path | None,
    title: str,
) -> None:
    if out is not None:
        kind = exports.write(out, rows)
        output.console.print(f"wrote {len(rows)} rows to {out} ({kind})", markup=False)
    if as_json:
        output.print_json({"rows": rows, "incomplete": incomplete})
        return
    crit = [k for k in (rows[0] if rows else {}) if k.startswith("criterion:")]
    decided = any(r["decision"] for r in rows)
    header = ["rank", "receipt", "applicant", "written", "presentation", "score"]
    header += [c.split(":")[1] for c in crit] + ["national"] + (["decision"] if decided else ["tie-break"])
    body = []
    for r in rows:
        last = f"{r['decision']}: {r['note']}" if decided else str(r["tie"])
        if decided and r["tie"]:
            last += f" ({r['tie']})"
        body.append(
            [
                str(r["rank"]),
                str(r["receipt_no"]),
                str(r["applicant"]),
                f"{r['written']} {_how(str(r['written_how']))}",
                f"{r['presentation']} {_how(str(r['presentation_how']))}",
                str(r["score"]) + ("" if r["qualified"] else " < min"),
                *[str(r[c]) for c in crit],
                f"{int(str(r['national_krw'])) / 100_000_000:,.0f}억",
                last,
            ]
        )
    output.print_rows(title, header, body)
    output.console.print(
        "parts: tm5 = trimmed mean of 5 totals, the highest and lowest (shown) dropped; m4 = plain mean of 4."
        " score = written x weight + presentation x weight; criteria weighted the same way.",
        markup=False,
    )
    for line in incomplete:
        output.console.print(f"not ranked: {line}", markup=False)


def _how(text: str) -> str:
    """'trimmed mean of 5 (dropped 87.00 and 94.00)' -> 'tm5 -87.00 -94.00'; 'mean of 4' -> 'm4'."""
    if text.startswith("trimmed mean of "):
        n, _, rest = text.removeprefix("trimmed mean of ").partition(" ")
        low, _, high = rest.strip("()").removeprefix("dropped ").partition(" and ")
        return f"tm{n} -{low} -{high}"
    return "m" + text.removeprefix("mean of ")


# -- kickoff ----------------------------------------------------------------------------------


@kickoff_app.command("receive")
def kickoff_receive(
    application: str,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            exists=True,
            dir_okay=False,
            readable=True,
            help="The plan's file (pdf, hwp, hwpx, docx), kept with the round; without it, a plan received on paper.",
        ),
    ] = None,
    actor: ActorOpt = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Record a detailed implementation plan received (its file kept, with --file)."""
    a = state.app()
    app_id = resolve(a, application)
    round_ = kickoff.receive(a, app_id, _admin(actor), file)
    kept = kickoff.plans(a, app_id)[-1]
    changed: dict[str, Any] = {"application_id": app_id, "round": round_, "status": "received"}
    line = f"application {application}: implementation plan round {round_} received"
    if kept["sha256"] is not None:
        changed |= {"file_name": kept["file_name"], "size": kept["size"], "sha256": kept["sha256"]}
        line += f": {kept['file_name']} ({kept['size']:,} bytes, SHA-256 {kept['sha256']})"
    else:
        line += " (on paper: no file kept)"
    output.done(as_json, changed, line)


@kickoff_app.command("return")
def kickoff_return(
    application: str,
    comments: Annotated[str, typer.Option("--comments")],
    actor: ActorOpt = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Return the plan with comments; the applicant files it again."""
    a = state.app()
    app_id = resolve(a, application)
    round_ = kickoff.return_plan(a, app_id, comments, _admin(actor))
    output.done(
        as_json,
        {"application_id": app_id, "round": round_, "status": "returned", "comments": comments},
        f"application {application}: plan round {round_} returned with comments",
    )


@kickoff_app.command("approve")
def kickoff_approve(
    application: str,
    schedule: Annotated[
        list[str] | None,
        typer.Option("--schedule", help="YEAR=NATIONAL/LOCAL per year (default: an even split from this year)."),
    ] = None,
    actor: ActorOpt = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Approve the plan with its funding schedule by year: the project starts."""
    a = state.app()
    years = kickoff.parse_schedule(schedule) if schedule else None
    app_id = resolve(a, application)
    done = kickoff.approve(a, app_id, years, _admin(actor))
    if as_json:
        rows = [{"year": y.year, "national_krw": y.national_krw, "local_krw": y.local_krw} for y in done]
        output.print_json({"application_id": app_id, "to_state": "kickoff", "schedule": rows})
        return
    output.print_rows(
        f"application {application}: kickoff, funding by year",
        ["year", "national", "local"],
        [[str(y.year), f"{y.national_krw:,}", f"{y.local_krw:,}"] for y in done],
    )
