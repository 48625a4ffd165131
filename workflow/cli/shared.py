"""What every command group shares: the typer app, the run's State (config, --now, the App),
the global options, and the parsing of times, ids and application references.

This module imports no command module: they import it and register on `app`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from gongmo.states.errors import InvalidInput, NotFound
from gongmo.workflow.core import config as config_mod
from gongmo.workflow.core import csvfile
from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import MAX_ID
from gongmo.workflow.engine.app import App
from gongmo.workflow.read import applications
from gongmo.workflow.runtime import wiring

app = typer.Typer(
    name="gongmo",
    help="gongmo (공모): run public funding contests end to end.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# `--json` on a command that changes something: what changed, as one JSON object on stdout.
ChangedJson = Annotated[bool, typer.Option("--json", help="Print what changed as one JSON object.")]


class State:
    config: Path = Path("config.toml")
    now: datetime | None = None
    verbose: bool = False
    _app: App | None = None

    def app(self) -> App:
        if self._app is None:
            loaded = config_mod.load(self.config)
            self._app = wiring.open_app(loaded, wiring.clock_for(loaded, self.now))
        return self._app


state = State()


def parse_now(value: str | None) -> datetime | None:
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
    state.now = parse_now(now)
    state.verbose = verbose
    state._app = None


def when(value: str, name: str = "NEW_TIME") -> datetime:
    parsed = parse_now(value)
    if parsed is None:
        raise InvalidInput(f"{name} is empty; write e.g. 2024-05-31T18:00 (Asia/Seoul)")
    return parsed


def bounded(value: int, name: str) -> int:
    """An id or a count as the database holds it (an INTEGER), or a one-line refusal."""
    if not 1 <= value <= MAX_ID:
        raise InvalidInput(f"{name} {csvfile.shown(value)}: write a whole number from 1 to {MAX_ID}")
    return value


def resolve(a: App, ref: str) -> int:
    """An application by number or by receipt number."""
    if ref.isascii() and ref.isdigit():
        if len(ref) > 10 or int(ref) > MAX_ID:
            raise NotFound(f"no application {csvfile.shown(ref)}: application numbers go up to {MAX_ID}")
        return int(ref)
    with read(a.db) as conn:
        found = applications.by_receipt(conn, ref)
    if found is None:
        raise NotFound(f"no application with number or receipt number {ref!r}")
    return found
