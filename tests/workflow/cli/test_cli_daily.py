"""The CLI as a daily tool (issue 19, points 18 and 19, and its wording): what the daemon logs,
tables that wrap instead of cutting, `--json` on the commands that change something, and the
words a person reads."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gongmo.workflow import cli
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.config import Api
from gongmo.workflow.core.db import write
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.engine.app import App
from gongmo.workflow.runtime.daemon import Daemon, configure_logging
from tests.conftest import config_copy, kst
from tests.workflow.cli import test_cli as base
from tests.workflow.cli.test_cli import ANNOUNCED, CLOSE, EIGHT_BN, OPEN, TRACK, Gongmo

# test_cli's fixtures: a SQLite file in tmp_path, driven through cli.run()
_clean_env = base._clean_env
config = base.config
gongmo = base.gongmo
ready = base.ready
docs = base.docs

LIBRARIES = ("apscheduler", "transitions")


@pytest.fixture
def received(ready: Gongmo, docs: tuple[str, ...]) -> Gongmo:
    """The 2024 strong-and-small call announced and one plan received (STRONG-SMALL-2024-0001)."""
    assert ready("announce", TRACK, now=ANNOUNCED).code == 0
    applied = ready("apply", TRACK, "41590", "--national", EIGHT_BN, "--local", EIGHT_BN, *docs, now=OPEN)
    assert applied.code == 0, applied.err
    skipped = ready("deadlines", "--skip", f"{TRACK}:announce", "--reason", "announced by hand", now=OPEN)
    assert skipped.code == 0, skipped.err
    return ready


# -- point 18: the daemon's log ---------------------------------------------------------------


def library_info(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno < logging.WARNING and r.name.split(".")[0] in LIBRARIES]


@pytest.fixture(autouse=True)
def _levels() -> Iterator[None]:
    """The logging levels a test set are given back: they are the process's."""
    names = ("", "gongmo", *LIBRARIES, "sqlalchemy")
    kept = {n: logging.getLogger(n).level for n in names}
    yield
    for n, level in kept.items():
        logging.getLogger(n).setLevel(level)


def test_daemon_once_sets_the_libraries_to_warning(received: Gongmo, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)  # as a handler at INFO would have it
    result = received("daemon", "--once", now=CLOSE)
    assert result.code == 0, result.err
    for name in LIBRARIES:
        assert not logging.getLogger(f"{name}.core").isEnabledFor(logging.INFO), name
    assert library_info(caplog) == []
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("gongmo.") and r.levelno == logging.INFO]
    assert any(m.startswith(f"deadline {TRACK}:close_receipt fired") for m in ours), ours


def test_daemon_verbose_lets_the_libraries_info_through(received: Gongmo, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    result = received("--verbose", "daemon", "--once", now=CLOSE)
    assert result.code == 0, result.err
    for name in LIBRARIES:
        assert logging.getLogger(f"{name}.core").isEnabledFor(logging.INFO), name
    assert not logging.getLogger("sqlalchemy.engine").isEnabledFor(logging.INFO)  # every SQL statement: never


def serve_once(app: App) -> Daemon:
    """A daemon (no HTTP API) served until its start-up tick and first delivery ran, then stopped."""
    daemon = Daemon(app, "d1", api=Api(enabled=False))

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.serve(stop))
        loop = asyncio.get_running_loop()
        end = loop.time() + 20
        while daemon.last_tick_at is None or not daemon.delivered:
            assert loop.time() < end, "the daemon did not tick"
            await asyncio.sleep(0.02)
        stop.set()
        await task

    asyncio.run(scenario())
    return daemon


@pytest.mark.parametrize("verbose", [False, True])
def test_the_running_daemon_logs_apscheduler_info_only_when_verbose(
    app: App, clock: FixedClock, caplog: pytest.LogCaptureFixture, verbose: bool
) -> None:
    """APScheduler says "Running job ... executed successfully" at INFO for every tick (every 5 s in a
    deployment); the daemon's own start line stays."""
    with write(app.db) as conn:
        calendars.derive(app, conn)
    clock.set(kst("2021-11-01 09:00"))  # nothing due yet
    caplog.set_level(logging.INFO)
    configure_logging(verbose=verbose)
    serve_once(app)
    shown = {r.name.split(".")[0] for r in library_info(caplog)}
    assert shown == ({"apscheduler"} if verbose else set())
    ours = [r.getMessage() for r in caplog.records if r.name == "gongmo.daemon"]
    assert any(m.startswith("gongmo daemon d1: ticking every") for m in ours), ours


def test_daemon_once_with_nothing_left_says_so(gongmo: Gongmo, tmp_path: Path) -> None:
    """Everything of both contests fired (late calls sent, as the config says): no "next due: none KST"."""
    path = config_copy(tmp_path, ("[gongmo]\n", '[gongmo]\nlate_announcements = "send"\n'), name="send.toml")
    assert gongmo("init", config_path=path).code == 0
    result = gongmo("daemon", "--once", now="2031-01-01T00:00", config_path=path)
    assert result.code == 0, result.err
    last = result.out.strip().splitlines()[-1]
    assert last.endswith("deadline(s) fired; no deadline left"), last
    assert "none" not in result.out
    ticked = gongmo("tick", now="2031-01-01T00:00", config_path=path)
    assert ticked.out.strip() == "0 deadline(s) fired; no deadline left"


def test_daemon_once_does_not_count_held_calls_as_fired(gongmo: Gongmo, tmp_path: Path) -> None:
    """A fresh install today: the four reference calls and the two 2022 side calls are held for the
    office, not 'fired'."""
    path = config_copy(tmp_path)
    assert gongmo("init", config_path=path).code == 0
    result = gongmo("daemon", "--once", now="2026-12-04T10:00", config_path=path)
    assert result.code == 0, result.err
    last = result.out.strip().splitlines()[-1]
    assert last.startswith("0 deadline(s) fired, 6 failed or held (see `gongmo deadlines`); next due:"), last


# -- free text: one rule for the CLI and the API ------------------------------------------------


@pytest.mark.parametrize("code", [*range(0x20), 0x7F])
def test_the_cli_and_the_api_take_and_refuse_the_same_characters(code: int) -> None:
    """A reason with this character: refused by both, with the same words, or taken by both."""
    from pydantic import ValidationError

    from gongmo.states.errors import InvalidInput
    from gongmo.states.text import problem
    from gongmo.workflow.api.schemas import TransitionIn

    reason = f"서류{chr(code)}미비"
    try:
        cli._check_controls(["trigger", "1", "withdraw", "--reason", reason])
        cli_says = None
    except InvalidInput as exc:
        cli_says = str(exc).split(": ", 1)[1]
    try:
        TransitionIn.model_validate({"trigger": "withdraw", "reason": reason})
        api_says = None
    except ValidationError as exc:
        api_says = exc.errors()[0]["msg"]
    assert cli_says == api_says == problem(reason)
    assert (cli_says is None) == (chr(code) in "\t\n")


# -- the withdrawal carries the receipt number -------------------------------------------------


def test_the_withdrawal_notice_names_the_receipt_number_not_the_internal_id(received: Gongmo) -> None:
    shown = received("show", "STRONG-SMALL-2024-0001", "--json").json()
    app_id = shown["id"]
    moved = received("trigger", "STRONG-SMALL-2024-0001", "withdraw", "--reason", "사업 여건 변경", now=OPEN)
    assert moved.code == 0, moved.err
    assert "STRONG-SMALL-2024-0001" in moved.out
    notice = received("show", str(app_id), "--json").json()["notices"][-1]
    assert notice["notice"] == "withdrawal_confirmed"
    # 화성시 (41590) reads English; the Korean letter is checked through the API (test_applications)
    assert notice["subject"].endswith("Withdrawal confirmed (receipt no. STRONG-SMALL-2024-0001)"), notice["subject"]
    body = received("outbox", "show", str(notice["id"])).out
    assert "Receipt no.: STRONG-SMALL-2024-0001" in body and "Application no." not in body


def test_a_withdrawal_before_any_plan_says_so_and_keeps_the_application_number(received: Gongmo) -> None:
    """No receipt number yet: the subject says the plan was never received, the body gives gongmo's
    number (the only one there is), never a bare '-'."""
    drafts = [a for a in range(1, 19) if received("show", str(a), "--json").json()["state"] == "announcement"]
    app_id = drafts[0]
    moved = received("trigger", str(app_id), "withdraw", now=OPEN)
    assert moved.code == 0, moved.err
    notice = received("show", str(app_id), "--json").json()["notices"][-1]
    assert notice["subject"].endswith("(계획서 접수 전)") or notice["subject"].endswith(
        "(before a plan was received)"
    ), notice["subject"]
    body = received("outbox", "show", str(notice["id"])).out
    assert f"신청번호 {app_id})" in body or f"application no. {app_id})" in body, body
    assert "-)" not in notice["subject"]


# -- point 19: tables wrap, and every command that changes something has --json -----------------


def cells(table: str, column: int) -> list[str]:
    """The values of one column of a rich table, each joined from the lines it was folded onto
    (a row starts where the first column has text)."""
    values: list[str] = []
    for line in table.splitlines():
        parts = line.split("│")
        if len(parts) < column + 2:
            continue  # a rule or a header line
        if parts[1].strip():
            values.append("")
        if values:
            values[-1] += parts[column + 1].strip()
    return values


def test_a_long_value_wraps_onto_the_next_line_instead_of_being_cut(ready: Gongmo) -> None:
    """At 80 columns (a pipe, a narrow terminal) the applicants' e-mails were cut to 'smartcity…'."""
    listed = ready("applicants", "list")
    assert listed.code == 0, listed.err
    assert "…" not in listed.out
    emails = {r["email"] for r in ready("applicants", "list", "--json").json()}
    assert set(cells(listed.out, 5)) == emails
    assert max(len(line) for line in listed.out.splitlines()) <= 80
    assert "…" not in ready("deadlines").out


# Every command that changes something, and the keys its one JSON object has at least.
CHANGING: dict[str, set[str]] = {
    "init": {"schema", "changes", "deadlines"},
    "applicants import": {"file", "rows", "created", "updated", "unchanged"},
    "announce": {"track", "created"},
    "start": {"application_id", "track", "applicant"},
    "apply": {"application_id", "receipt_no", "to_state"},
    "trigger": {"application_id", "receipt_no", "from_state", "to_state", "version"},
    "bulk": {"track", "trigger", "from_state", "to_state", "moved"},
    "deadlines": set(),  # --fire and --skip; without them a read
    "tick": {"fired", "next_due"},
    "daemon": {"fired", "next_due"},  # --once
    "reschedule": set(),
    "extend": {"application_id", "milestone", "old_at", "new_at"},
    "outbox retry": {"retried"},
    "outbox release": {"track", "notice", "released"},
    "deliver": {"sent", "retry", "dead"},
    "tokens create": {"id", "token", "role", "subject"},
    "tokens revoke": {"id", "role", "subject", "revoked"},
    "review pass": {"track", "passed"},
    "review disqualify-failed": {"track", "disqualified"},
    "objection file": {"objection_id", "application_id"},
    "objection uphold": {"objection_id", "decision"},
    "objection reject": {"objection_id", "decision"},
    "evaluators import": {"file", "rows", "created", "updated"},
    "evaluators conflict": {"evaluator", "applicant"},
    "assign": set(),
    "score": {"application", "evaluator", "part", "stored"},
    "scores import": {"file", "track", "stored"},
    "presentations schedule": {"track", "slots"},
    "select": {"rows"},
    "kickoff receive": {"application_id", "round"},
    "kickoff return": {"application_id", "round"},
    "kickoff approve": {"application_id", "schedule"},
}


def commands() -> dict[str, Any]:
    import typer.main

    found: dict[str, Any] = {}
    todo = [("", typer.main.get_command(cli.app))]
    while todo:
        prefix, command = todo.pop()
        for name, sub in getattr(command, "commands", {}).items():
            path = f"{prefix} {name}".strip()
            found[path] = sub
            todo.append((path, sub))
    return found


@pytest.mark.parametrize("name", sorted(CHANGING))
def test_every_command_that_changes_something_takes_json(name: str) -> None:
    command = commands()[name]
    options = {opt for p in command.params for opt in getattr(p, "opts", ())}
    assert "--json" in options, f"gongmo {name} has no --json"


def one_object(result: Any, keys: set[str]) -> dict[str, Any]:
    assert result.code == 0, result.err
    data = json.loads(result.out)  # the whole of stdout: one JSON object, nothing else
    assert isinstance(data, dict), data
    assert keys <= data.keys(), (keys - data.keys(), data)
    return data


def test_the_lifecycle_commands_print_what_changed_as_one_json_object(gongmo: Gongmo, docs: tuple[str, ...]) -> None:
    g = gongmo
    one_object(g("init", "--json"), CHANGING["init"])
    imported = one_object(g("applicants", "import", str(base.SAMPLE), "--json"), CHANGING["applicants import"])
    assert imported["created"] == 20
    announced = one_object(g("announce", TRACK, "--json", now=ANNOUNCED), CHANGING["announce"])
    assert announced["created"] == 18
    money = ("--national", EIGHT_BN, "--local", EIGHT_BN)
    applied = one_object(g("apply", TRACK, "41590", *money, *docs, "--json", now=OPEN), CHANGING["apply"])
    assert applied["receipt_no"] == "STRONG-SMALL-2024-0001" and applied["to_state"] == "receipt"
    # the documents uploaded before the plan, in the same object
    assert [d["kind"] for d in applied["documents"]] == ["plan", "budget"]
    moved = one_object(
        g("trigger", "STRONG-SMALL-2024-0001", "withdraw", "--reason", "사업 여건 변경", "--json", now=OPEN),
        CHANGING["trigger"],
    )
    assert (moved["receipt_no"], moved["from_state"], moved["to_state"]) == (
        "STRONG-SMALL-2024-0001",
        "receipt",
        "withdrawn",
    )
    draft = next(a for a in range(1, 19) if g("show", str(a), "--json").json()["state"] == "announcement")
    extended = one_object(
        g("extend", str(draft), "receipt_closes", "2024-06-03T18:00", "--reason", "전산 장애", "--json", now=OPEN),
        CHANGING["extend"],
    )
    assert extended["application_id"] == draft and extended["new_at"].startswith("2024-06-03T09:00")
    skipped = one_object(
        g("deadlines", "--skip", f"{TRACK}:announce", "--reason", "announced by hand", "--json", now=OPEN),
        {"key", "skipped", "reason"},
    )
    assert skipped["key"] == f"{TRACK}:announce"
    ticked = one_object(g("tick", "--json", now=CLOSE), CHANGING["tick"])
    assert all({"key", "late", "summary"} <= f.keys() for f in ticked["fired"])
    delivered = one_object(g("deliver", "--json", now=CLOSE), CHANGING["deliver"])
    assert delivered["sent"] > 0
    created = one_object(
        g("tokens", "create", "--role", "admin", "--subject", "office", "--json"), CHANGING["tokens create"]
    )
    assert len(created["token"]) > 20
    revoked = one_object(g("tokens", "revoke", str(created["id"]), "--json"), CHANGING["tokens revoke"])
    assert revoked["id"] == created["id"] and revoked["revoked"] is True


def test_json_where_no_object_can_come_is_refused_in_one_line(ready: Gongmo) -> None:
    """A running daemon prints no object (it logs), and a script cannot answer release's question."""
    daemon = ready("daemon", "--json")
    assert (daemon.code, daemon.err) == (1, "error: --json: only with --once (a running daemon logs what it does)\n")
    release = ready("outbox", "release", TRACK, "results", "--json")
    assert release.code == 1 and release.out == ""
    assert release.err == (
        "error: --json: add --yes (a script cannot answer the question; run without --json to see it)\n"
    )
