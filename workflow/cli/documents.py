"""`gongmo documents` (add, list, get, verify) and `gongmo answers` (set, show): a plan's files
and its answers to the track's questions, as the office handles them.

A file goes in as a stream (opened in binary, never read whole) and comes out as one: `get`
writes FILE.part chunk by chunk, checks the bytes hash to the stored SHA-256, then renames it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from gongmo.states import questions as questions_mod
from gongmo.states.documents import human_size
from gongmo.states.errors import Conflict, InvalidInput
from gongmo.states.lifecycle import Role
from gongmo.workflow.cli import output
from gongmo.workflow.cli.shared import ChangedJson, app, bounded, resolve, state
from gongmo.workflow.core import lookups
from gongmo.workflow.core import tokens as tokens_mod
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.db import read
from gongmo.workflow.engine.app import App
from gongmo.workflow.read import documents as documents_read

documents_app = typer.Typer(help="A plan's documents: add, list, get, verify.", no_args_is_help=True)
answers_app = typer.Typer(help="A plan's answers to the track's questions.", no_args_is_help=True)
app.add_typer(documents_app, name="documents")
app.add_typer(answers_app, name="answers")

Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]
Who = Annotated[str, typer.Option("--actor", help="Who does it (recorded as an admin of the office).")]
SHORT_HASH = 12


def open_source(path: Path, name: str = "FILE") -> Any:
    """`path` opened for reading in binary, or a one-line refusal naming it."""
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise InvalidInput(f"{name} {str(path)!r}: no such file") from None
    except IsADirectoryError:
        raise InvalidInput(f"{name} {str(path)!r}: a directory, not a file") from None
    except OSError as exc:
        raise InvalidInput(f"{name} {str(path)!r}: cannot be read ({exc.strerror or exc})") from None


def upload(a: App, application_id: int, kind: str, path: Path, actor: Actor, replace: int | None = None) -> Any:
    """Upload one file from disk, streamed (the CLI's `documents add` and `apply --document`)."""
    with open_source(path) as source:
        return a.moves.uploads.add(application_id, kind, path.name, source, actor, replace=replace)


def document_pairs(pairs: Sequence[str]) -> list[tuple[str, Path]]:
    """`apply --document KIND=FILE` arguments, each checked readable before anything is uploaded."""
    out = []
    for pair in pairs:
        kind, eq, name = pair.partition("=")
        kind, name = kind.strip(), name.strip()
        if not eq or not kind or not name:
            raise InvalidInput(f"--document {pair!r}: write KIND=FILE, e.g. --document plan=사업계획서.pdf")
        path = Path(name)
        open_source(path, f"--document {kind}=").close()
        out.append((kind, path))
    return out


def upload_for(a: App, track_key: str, applicant: str, files: Sequence[tuple[str, Path]], actor: Actor) -> list[Any]:
    """Upload `files` (kind, path) to the applicant's application in the track, starting the
    application if it has none; a refused file stops here, before the plan is submitted."""
    if not files:
        return []
    with read(a.db) as conn:
        track = lookups.track_by_key(conn, a.loaded.config, track_key)
        found = lookups.application_of(conn, track["id"], lookups.applicant_by_code(conn, applicant)["id"])
    app_id = int(found["id"]) if found is not None else a.moves.start(track_key, applicant, actor)
    return [upload(a, app_id, kind, path, actor) for kind, path in files]


def uploaded_line(up: Any) -> str:
    return f"{up.kind} v{up.version}: {up.file_name} ({human_size(int(up.size))}, {up.file_type}) SHA-256 {up.sha256}"


def uploaded_json(up: Any) -> dict[str, Any]:
    fields = (
        "document_id",
        "application_id",
        "kind",
        "version",
        "file_name",
        "size",
        "file_type",
        "sha256",
        "current",
        "uploaded_at",
        "replaced_version",
    )
    return {f: getattr(up, f) for f in fields if hasattr(up, f)}


@documents_app.command("add")
def documents_add(
    application: Annotated[str, typer.Argument(help="The application's number or receipt number.")],
    kind: Annotated[str, typer.Argument(help="A document kind of its track, e.g. plan, budget, annex.")],
    file: Annotated[Path, typer.Argument(help="The file to upload.")],
    replace: Annotated[int | None, typer.Option("--replace", help="Replace this version of the kind.")] = None,
    actor: Who = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Upload one document of an application, inside the receipt window (its type from its bytes)."""
    if replace is not None:
        bounded(replace, "--replace")
    a = state.app()
    app_id = resolve(a, application)
    up = upload(a, app_id, kind, file, Actor(actor, Role.ADMIN), replace)
    replaced = f" (replaces v{up.replaced_version})" if getattr(up, "replaced_version", None) else ""
    output.done(as_json, uploaded_json(up), f"application {app_id}: {uploaded_line(up)}{replaced}")


@documents_app.command("list")
def documents_list(
    application: Annotated[str, typer.Argument(help="The application's number or receipt number.")],
    as_json: Json = False,
) -> None:
    """Every stored version of an application's documents (current and replaced)."""
    a = state.app()
    app_id = resolve(a, application)
    with read(a.db) as conn:
        office = tokens_mod.principal(conn, "admin", "")
        rows = documents_read.listing(a, conn, office, app_id)
    if as_json:
        output.print_json(rows)
        return
    table = output.RichTable("kind", "ver", "current", "file name", "size", "type", "sha256", "uploaded (KST)", "by")
    for r in rows:
        table.add_row(
            r["kind"],
            str(r["version"]),
            "yes" if r["current"] else "",
            r["file_name"],
            human_size(int(r["size"])),
            r["file_type"],
            str(r["sha256"])[:SHORT_HASH] + "…",
            output.kst(r["uploaded_at"]),
            r.get("actor") or "",
        )
    output.console.print(table)
    if not rows:
        output.console.print(f"application {app_id}: no documents yet")


@documents_app.command("get")
def documents_get(
    application: Annotated[str, typer.Argument(help="The application's number or receipt number.")],
    kind: Annotated[str, typer.Argument(help="The document kind, e.g. plan.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the file.")],
    version: Annotated[int | None, typer.Option("--version", help="This version (default: the current).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False,
    actor: Who = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Download a document to --out (streamed; checked against its SHA-256; recorded in the events)."""
    if version is not None:
        bounded(version, "--version")
    if out.is_dir():
        raise InvalidInput(f"--out {str(out)!r}: a directory; name the file to write, e.g. --out {out / 'plan.pdf'}")
    if out.exists() and not force:
        raise Conflict(f"--out {str(out)!r} exists: choose another name, or add --force to overwrite it")
    a = state.app()
    app_id = resolve(a, application)
    with read(a.db) as conn:
        who = tokens_mod.principal(conn, "admin", actor)
    found = documents_read.open_download(a, who, app_id, kind, version)
    part = out.with_name(out.name + ".part")
    digest = hashlib.sha256()
    size = 0
    try:
        with part.open("wb") as sink:
            for piece in found.chunks():
                digest.update(piece)
                size += len(piece)
                sink.write(piece)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise InvalidInput(f"--out {str(out)!r}: cannot be written ({exc.strerror or exc})") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != found.sha256 or size != found.size:
        part.unlink(missing_ok=True)
        raise Conflict(
            f"{kind} v{found.version} of application {app_id}: the stored bytes hash to {digest.hexdigest()}"
            f" ({size:,} bytes), not the recorded {found.sha256} ({found.size:,} bytes); nothing written;"
            " run `gongmo documents verify`"
        )
    os.replace(part, out)
    output.done(
        as_json,
        {
            "application_id": app_id,
            "kind": kind,
            "version": found.version,
            "file_name": found.file_name,
            "out": str(out),
            "size": size,
            "sha256": found.sha256,
        },
        f"{out}: {kind} v{found.version} of application {app_id} ({found.file_name}),"
        f" {size:,} bytes, SHA-256 {found.sha256} (checked)",
    )


@documents_app.command("verify")
def documents_verify(as_json: Json = False) -> None:
    """Reread every stored file and recompute its SHA-256; exit 1 listing each file that differs."""
    a = state.app()
    stored = documents_read.stored_files(a)
    problems = documents_read.verify(a)
    if as_json:
        output.print_json({"files": stored, "differ": len(problems), "clean": not problems, "findings": problems})
    elif not problems:
        output.console.print(f"{stored} files, all match their SHA-256", markup=False)
    else:
        for p in problems:
            output.console.print(finding(p), markup=False)
        output.console.print(f"{stored} files, {len(problems)} differ from their SHA-256", markup=False)
    if problems:
        raise typer.Exit(1)


def finding(p: Mapping[str, Any]) -> str:
    """One file that differs, on one line: its hash, what differs, and the documents that use it."""
    what = []
    if p["actual_sha256"] != p["sha256"]:
        what.append(f"its bytes hash to {p['actual_sha256']}")
    if p["actual_size"] != p["expected_size"]:
        what.append(f"{p['actual_size']:,} bytes where {p['expected_size']:,} were stored")
    if p["missing_chunks"]:
        what.append("chunks missing: " + ", ".join(map(str, p["missing_chunks"])))
    uses = "; ".join(
        f"application {u['application_id']} {u['kind']} v{u['version']} {u['file_name']} (document {u['id']})"
        for u in p["documents"]
    )
    return f"{p['sha256']}: {', '.join(what) or 'extra chunks stored'}; used by {uses or 'no document'}"


# -- answers ----------------------------------------------------------------------------------------


def parse_pairs(pairs: Sequence[str], name: str) -> dict[str, object]:
    """KEY=VALUE arguments as answers (the values as text: the question's type reads them)."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        key = key.strip()
        if not eq or not key:
            raise InvalidInput(f"{name} {pair!r}: write KEY=VALUE, e.g. living_lab=yes")
        if key in out:
            raise InvalidInput(f"{name} {pair!r}: question {key!r} is given twice; give it once")
        out[key] = value
    return out


def read_answers(path: Path, name: str = "--file") -> dict[str, object]:
    """A JSON object of answers from a file, or a one-line refusal naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"{name} {str(path)!r}: no such file") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{name} {str(path)!r}: not UTF-8 text; save it as UTF-8 JSON") from None
    except OSError as exc:
        raise InvalidInput(f"{name} {str(path)!r}: cannot be read ({exc.strerror or exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{name} {str(path)!r}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except RecursionError:
        raise InvalidInput(f"{name} {str(path)!r}: nested too deeply; give one JSON object of answers") from None
    if not isinstance(data, dict):
        raise InvalidInput(
            f'{name} {str(path)!r}: give one JSON object, question key -> answer, e.g. {{"living_lab": true}}'
        )
    return data


def gather_answers(a: App, track_key: str, file: Path | None, pairs: Sequence[str], name: str) -> dict[str, object]:
    """The answers of --file and KEY=VALUE pairs together (a pair wins); a members question is
    refused as a pair (a list of members is JSON: give it in --file)."""
    answers = read_answers(file, _file_flag(name)) if file is not None else {}
    given = parse_pairs(pairs, name)
    _, track = a.loaded.config.track(track_key)
    kinds = {q.key: q.type for q in track.questions}
    for key in given:
        if kinds.get(key) == "members":
            raise InvalidInput(
                f"{name} {key}=...: answer '{key}' is a list of members (name, kind, business registration number);"
                f' give it in a JSON file: {_file_flag(name)} answers.json with {{"{key}": [{{"name": ..., "kind":'
                ' ..., "brn": ...}]}'
            )
    return {**answers, **given}


def _file_flag(name: str) -> str:
    return "--answers" if name == "--answer" else "--file"


def track_of(a: App, application_id: int) -> str:
    """The key of the application's track."""
    with read(a.db) as conn:
        return lookups.track_key_of(conn, application_id)


@answers_app.command("set")
def answers_set(
    application: Annotated[str, typer.Argument(help="The application's number or receipt number.")],
    pairs: Annotated[
        list[str] | None,
        typer.Argument(
            help="KEY=VALUE answers: text, a number, yes/no, a choice, choices comma-separated.",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", help="A JSON object of answers (any type, members too).")
    ] = None,
    actor: Who = "admin",
    as_json: ChangedJson = False,
) -> None:
    """Give or change answers to the track's questions until the close (KEY= with nothing removes one)."""
    if file is None and not pairs:
        raise InvalidInput("no answers: give KEY=VALUE arguments or --file answers.json")
    a = state.app()
    app_id = resolve(a, application)
    answers = gather_answers(a, track_of(a, app_id), file, pairs or [], "KEY=VALUE")
    answers = {k: (None if v == "" else v) for k, v in answers.items()}
    stored = a.moves.uploads.answer(app_id, answers, Actor(actor, Role.ADMIN))
    if as_json:
        output.print_json({"application_id": app_id, "answers": stored})
        return
    output.console.print(f"application {app_id}: {len(stored)} answers stored", markup=False)
    print_answers(a, track_of(a, app_id), stored)


@answers_app.command("show")
def answers_show(
    application: Annotated[str, typer.Argument(help="The application's number or receipt number.")],
    as_json: Json = False,
) -> None:
    """An application's answers to its track's questions."""
    a = state.app()
    app_id = resolve(a, application)
    with read(a.db) as conn:
        office = tokens_mod.principal(conn, "admin", "")
        answers = documents_read.answers(a, conn, office, app_id)
        track = lookups.track_key_of(conn, app_id)
    if as_json:
        output.print_json(answers)
        return
    if not a.loaded.config.track(track)[1].questions:
        output.console.print(f"application {app_id}: its track ({track}) asks no questions", markup=False)
    print_answers(a, track, answers)


def print_answers(a: App, track_key: str, answers: Mapping[str, Any]) -> None:
    """The track's questions with their answers (`show` and `answers show`); nothing if it asks none."""
    track = a.loaded.config.track(track_key)[1]
    rows = []
    for q in track.questions:
        needed = "required" if q.required else "optional"
        rows.append([q.key, q.text_ko, questions_mod.describe(q, answers.get(q.key)), needed])
    if rows:
        output.print_rows("answers", ["question", "text", "answer", ""], rows)


def print_current(rows: Sequence[Mapping[str, Any]]) -> None:
    """The current documents, one line each with the full SHA-256 (`show`)."""
    current = [r for r in rows if r["current"]]
    if not current:
        output.console.print("documents: none", markup=False)
        return
    output.console.print("documents (current):", markup=False)
    for r in current:
        output.console.print(
            f"  {r['kind']} v{r['version']}: {r['file_name']} ({human_size(int(r['size']))}, {r['file_type']})"
            f" SHA-256 {r['sha256']}",
            markup=False,
        )
