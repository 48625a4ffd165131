"""The `gongmo` command line (typer; rich tables for people, --json for scripts).

A user mistake prints one clear line per problem on stderr and exits 1;
never a traceback.

The commands live one module per group (setup, applications, deadlines,
outbox, tokens, evaluation); each registers on the shared typer app
(cli/shared.py) when imported here. This module runs them: it checks the
arguments, and turns a domain error into its line on stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import typer
import typer.main

from gongmo.states import text as free_text
from gongmo.states.errors import GongmoError, InvalidInput
from gongmo.workflow.cli import (
    applications,
    console,
    deadlines,
    documents,
    evaluation,
    outbox,
    results,
    setup,
    tokens,
    wording,
)
from gongmo.workflow.cli.shared import app, state
from gongmo.workflow.core import csvfile

__all__ = ["app", "main", "run", "state"]
COMMAND_MODULES = (setup, applications, documents, deadlines, outbox, tokens, console, evaluation, results)

# The order `gongmo --help` lists the commands and groups in: the contest's, not the modules'.
HELP_ORDER = (
    "init",
    "contests",
    "announce",
    "start",
    "apply",
    "documents",
    "answers",
    "trigger",
    "bulk",
    "show",
    "status",
    "graph",
    "deadlines",
    "tick",
    "daemon",
    "reschedule",
    "extend",
    "rehearse",
    "demo",
    "deliver",
    "openapi",
    "assign",
    "score",
    "rank",
    "select",
    "applicants",
    "audit",
    "results",
    "templates",
    "outbox",
    "tokens",
    "staff",
    "console",
    "review",
    "objection",
    "evaluators",
    "scores",
    "presentations",
    "kickoff",
)


def _in_help_order() -> None:
    """Sort the registered commands and groups by HELP_ORDER (one not named there goes last)."""
    place = {name: i for i, name in enumerate(HELP_ORDER)}

    def command_key(info: typer.models.CommandInfo) -> int:
        name = info.name or (info.callback.__name__ if info.callback else "")
        return place.get(name, len(place))

    app.registered_commands.sort(key=command_key)
    app.registered_groups.sort(key=lambda info: place.get(info.name or "", len(place)))


_in_help_order()


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
        raise InvalidInput(f"{option} {csvfile.shown(value)}: {what}")


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
        for line in wording.say(exc).splitlines():
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
