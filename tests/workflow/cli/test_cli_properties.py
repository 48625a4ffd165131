"""Bad input, property-based: the arguments of `gongmo` commands.

Argument lists for trigger, apply, reschedule, extend, outbox (list, retry,
release), score, select, kickoff approve --schedule, tokens create and
daemon --port, with random strings, numbers, unicode, empty, negative and
huge values and unknown options, run through `workflow.cli.run()` on a
SQLite database prepared once per module (init, the sample applicants and
the committee imported, the 2024 strong-and-small call announced, one plan
received, one API token). Properties:

- `run(argv)` returns an exit code (0; 1 for a refusal; 2 for a usage
  error) and never raises; no traceback is printed;
- a refusal prints only `error: ...` lines, at least one;
- when the exit code is not 0, the database is exactly as it was (every row
  of every table).

The database is copied back from the prepared one after every accepted
command. The bad inputs that once escaped (numbers too large for the
database, edge-of-calendar times, odd digits) are each pinned at the end of
the file with their minimal example.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import typer.main
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import tests.workflow.contest_2024 as sc
from gongmo.notifications.notices import NOTICES
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role
from gongmo.workflow import cli
from gongmo.workflow.core.config import MILESTONES
from gongmo.workflow.runtime import daemon as daemon_module
from tests.conftest import SAMPLE_CSV, config_copy, run_cli
from tests.workflow.cli.documents_args import document_args

# GONGMO_PROPERTY_EXAMPLES=2000 runs a longer, random (not derandomised) search locally.
LONG = int(os.environ.get("GONGMO_PROPERTY_EXAMPLES", "0"))
SETTINGS = settings(
    max_examples=LONG or 40,
    deadline=None,
    derandomize=not LONG,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)

TRACK = sc.TRACK
ANNOUNCED = "2024-03-29T10:00:00+09:00"
OPEN = "2024-05-28T10:00:00+09:00"
ENV = ("GONGMO_DATABASE_URL", "GONGMO_NOW", "GONGMO_CONFIG")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module", autouse=True)
def _click_tree_built_once() -> Iterator[None]:
    """Speed: typer rebuilds gongmo's click command tree (~50 ms) on every call of `cli.app`; build it
    once for this module (cli.run() still runs each argument list). Safety: a daemon that would
    serve fails the example instead of hanging the run."""
    built = typer.main.get_command(cli.app)
    original = typer.main.get_command

    def get_command(instance: typer.Typer) -> Any:
        return built if instance is cli.app else original(instance)

    def run_forever(*args: Any) -> None:
        raise AssertionError("`gongmo daemon` would serve forever: only ports it refuses are generated")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(typer.main, "get_command", get_command)
        mp.setattr(daemon_module, "run_forever", run_forever)
        yield


# --- the prepared database -------------------------------------------------------------


def snapshot(database: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in rowid order."""
    con = sqlite3.connect(database)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {name: con.execute(f'SELECT * FROM "{name}" ORDER BY rowid').fetchall() for name in names}
    finally:
        con.close()


@dataclass
class Prepared:
    config: Path
    database: Path
    template: Path
    rows: dict[str, list[tuple[Any, ...]]]
    dirty: bool = False

    def restore(self) -> None:
        """The prepared database again, if the last command changed it."""
        if not self.dirty:
            return
        for suffix in ("-wal", "-shm"):
            Path(f"{self.database}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.template, self.database)
        self.dirty = False


def _quiet(config: Path, *argv: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.run(["--config", str(config), *argv])
    finally:
        if cli.state._app is not None:
            cli.state._app.db.dispose()
            cli.state._app = None
    assert code == 0, (argv, err.getvalue())


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared]:
    base = tmp_path_factory.mktemp("cli-properties")
    config = config_copy(base)
    evaluators = base / "evaluators.csv"
    evaluators.write_text(sc.EVALUATORS_CSV, encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        for name in ENV:
            mp.delenv(name, raising=False)
        _quiet(config, "init")
        _quiet(config, "applicants", "import", str(SAMPLE_CSV))
        _quiet(config, "evaluators", "import", str(evaluators))
        _quiet(config, "--now", ANNOUNCED, "announce", TRACK)
        money = ("--national", "8000000000", "--local", "8000000000")
        _quiet(config, "--now", OPEN, "apply", TRACK, "41190", *money, *document_args(base))
        _quiet(config, "tokens", "create", "--role", "admin", "--subject", "office")
    database = base / "gongmo.db"
    assert not Path(f"{database}-wal").exists() or Path(f"{database}-wal").stat().st_size == 0
    template = base / "template.db"
    shutil.copyfile(database, template)
    yield Prepared(config, database, template, snapshot(database))


# --- argument values ---------------------------------------------------------------------

TEXT = st.text(max_size=12)
UNICODE = st.sampled_from(["수원시", "٣", "Ⅻ", "１", "\u200b", "\x00", "-", "--", "'", '"', "\n", " "])
HUGE = st.sampled_from(["9223372036854775807", "-9223372036854775808", "1" + "0" * 18, "4294967296", "2147483648"])
NUMBERS = st.one_of(st.integers(-3, 30).map(str), st.integers(-(10**15), 10**15).map(str), HUGE)
IDS = st.one_of(NUMBERS, st.sampled_from(["1", "2", "", "0", f"{TRACK.upper()}-0001", "NOPE-0001"]), TEXT, UNICODE)
TRACKS = st.one_of(st.sampled_from([TRACK, "hub-2024", "diffusion-2024", "small-medium-2022", TRACK.upper()]), TEXT)
APPLICANTS = st.one_of(st.sampled_from(["41190", "41110", "11000", "99999", "4119", ""]), TEXT, UNICODE)
TRIGGERS = st.one_of(st.sampled_from([t.name for t in TABLE.triggers]), TEXT)
ROLES = st.one_of(st.sampled_from([r.value for r in Role]), st.sampled_from(["mayor", "ADMIN", ""]), TEXT)
REASONS = st.one_of(st.sampled_from(["", " ", "서류 보완 요청", "a" * 300]), TEXT, UNICODE)
TIMES = st.one_of(
    st.datetimes(datetime(2000, 1, 1), datetime(2050, 12, 31)).map(lambda d: d.isoformat(timespec="minutes")),
    st.sampled_from(
        [
            "2024-05-29T18:00",
            "2024-05-31T18:00:00+09:00",
            "2024-06-30",
            "yesterday",
            "",
            "2024-13-01",
            "2024-05-31 18:00",
            "24:00",
            "2024-05-31T18:00:00Z",
        ]
    ),
    TEXT,
)
NOWS = st.one_of(
    st.none(), st.none(), st.sampled_from([ANNOUNCED, OPEN, "2024-06-03T10:00+09:00", "2024-06-11T14:00+09:00"]), TIMES
)
CRITERIA = [*sc.CRITERIA, "creativity", ""]
POINTS = st.one_of(st.decimals(-5, 40, places=2).map(str), st.sampled_from(["", "1e1", "abc", "24,5", "٥"]), TEXT)
UNKNOWN_OPTIONS = st.sampled_from(["--bogus", "-x", "--now", "--json", "--help", "--", "-"])


def maybe(flag: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return st.one_of(st.just([]), values.map(lambda v: [flag, v]))


def command(*parts: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    """The parts in order, sometimes with an unknown option or a stray value put in somewhere."""

    @st.composite
    def build(draw: st.DrawFn) -> list[str]:
        argv = [tok for part in parts for tok in draw(part)]
        if draw(st.integers(0, 5)) == 0:
            argv.insert(draw(st.integers(0, len(argv))), draw(st.one_of(UNKNOWN_OPTIONS, TEXT)))
        return argv

    return build()


def word(value: str) -> st.SearchStrategy[list[str]]:
    return st.just([value])


def one(values: st.SearchStrategy[str]) -> st.SearchStrategy[list[str]]:
    return values.map(lambda v: [v])


def _not_a_port(value: str) -> bool:
    """`daemon --port P` with a port it accepts would serve forever: only ports it must refuse."""
    try:
        port = int(value)  # as click reads an int
    except ValueError:
        return True
    return not 0 <= port <= 65535


COMMANDS: dict[str, st.SearchStrategy[list[str]]] = {
    "trigger": command(
        word("trigger"),
        one(IDS),
        one(TRIGGERS),
        maybe("--reason", REASONS),
        maybe("--actor", TEXT),
        maybe("--role", ROLES),
        maybe("--version", NUMBERS),
    ),
    "apply": command(
        word("apply"),
        one(TRACKS),
        one(APPLICANTS),
        st.one_of(st.just([]), NUMBERS.map(lambda v: ["--national", v])),
        st.one_of(st.just([]), NUMBERS.map(lambda v: ["--local", v])),
        maybe("--title", REASONS),
        maybe("--type", st.one_of(st.sampled_from(["climate_crisis", "local_extinction"]), TEXT)),
        maybe("--years", NUMBERS),
    ),
    "reschedule": command(
        word("reschedule"),
        one(TRACKS),
        one(st.one_of(st.sampled_from(MILESTONES), TEXT)),
        one(TIMES),
        maybe("--reason", REASONS),
    ),
    "extend": command(
        word("extend"),
        one(IDS),
        one(st.one_of(st.sampled_from(["receipt_closes", "review_ends"]), TEXT)),
        one(TIMES),
        maybe("--reason", REASONS),
    ),
    "outbox": command(
        word("outbox"),
        maybe("--state", st.one_of(st.sampled_from(["pending", "held", "dead", "sent"]), TEXT)),
        maybe("--limit", NUMBERS),
    ),
    "outbox retry": command(word("outbox"), word("retry"), one(IDS)),
    "outbox release": command(
        word("outbox"),
        word("release"),
        one(TRACKS),
        one(st.one_of(st.sampled_from(list(NOTICES)), TEXT)),
        word("--yes"),
    ),
    "score": command(
        word("score"),
        one(IDS),
        st.lists(st.tuples(st.sampled_from(CRITERIA), POINTS).map("=".join) | TEXT, max_size=6),
        maybe("--evaluator", st.one_of(st.sampled_from(sc.EVALUATORS), TEXT)),
        maybe("--part", st.one_of(st.sampled_from(["written", "presentation", "oral"]), TEXT)),
    ),
    "select": command(word("select"), one(TRACKS), st.sampled_from([[], ["--confirm"], ["--json"]])),
    "kickoff approve": command(
        word("kickoff"),
        word("approve"),
        one(IDS),
        st.lists(
            st.one_of(
                st.tuples(st.integers(1990, 2100), NUMBERS, NUMBERS).map(lambda t: f"{t[0]}={t[1]}/{t[2]}"),
                st.sampled_from(["2024=5000000000/5000000000", "2024=5,000,000,000/5_000_000_000", "2024=", "x"]),
                TEXT,
            ).map(lambda v: ["--schedule", v]),
            max_size=3,
        ).map(lambda parts: [tok for part in parts for tok in part]),
    ),
    "tokens create": command(
        word("tokens"),
        word("create"),
        maybe("--role", ROLES),
        maybe("--subject", st.one_of(st.sampled_from(["41190", sc.EVALUATORS[0], "office", "", " "]), TEXT, UNICODE)),
        maybe("--note", REASONS),
    ),
    "daemon --port": command(
        word("daemon"),
        st.one_of(
            st.integers(max_value=-1).map(str), st.integers(min_value=65536).map(str), HUGE, TEXT.filter(_not_a_port)
        ).map(lambda v: ["--port", v]),
    ),
}
SAFE_COMMANDS = ["status", "show", "trigger", "apply", "bulk", "announce", "start", "outbox", "tokens", "score"]
COMMANDS["anything"] = st.lists(st.one_of(st.sampled_from(SAFE_COMMANDS), UNKNOWN_OPTIONS, TEXT, UNICODE), max_size=5)


# --- the property ---------------------------------------------------------------------------


def gongmo(prepared: Prepared, capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    prepared.restore()
    prepared.dirty = True  # until check() finds the database unchanged
    return run_cli(capsys, "--config", str(prepared.config), *argv)


def check(prepared: Prepared, argv: list[str], code: int, out: str, err: str) -> None:
    assert isinstance(code, int)
    assert "Traceback" not in out + err, err
    assert code in (0, 1, 2), (code, argv, err)
    if code == 1:
        lines = err.splitlines()
        assert lines and all(line.startswith("error: ") for line in lines), (argv, err)
    if code == 2:  # a usage error, or a command group without its subcommand (its help, exit 2)
        assert "Error" in err or "Usage" in out + err, (argv, out, err)
    if code == 0:
        return  # it may have changed something: gongmo() restores the database before the next command
    after = snapshot(prepared.database)
    changed = sorted(name for name in after if after[name] != prepared.rows.get(name))
    assert not changed, f"exit {code} but {', '.join(changed)} changed: {argv}\n{err}"
    prepared.dirty = False


@pytest.mark.parametrize("name", list(COMMANDS))
@SETTINGS
@given(data=st.data())
def test_a_command_with_bad_arguments_exits_0_1_or_2_and_a_refusal_changes_nothing(
    prepared: Prepared, capsys: pytest.CaptureFixture[str], name: str, data: st.DataObject
) -> None:
    now = data.draw(NOWS, label="now")
    argv = data.draw(COMMANDS[name], label="argv")
    if name == "daemon --port":
        now = None  # with --now the daemon refuses before it reads the port
    full = ([] if now is None else ["--now", now]) + argv
    code, out, err = gongmo(prepared, capsys, full)
    event(f"exit {code}")
    check(prepared, full, code, out, err)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--now", OPEN, "apply", TRACK, "41190", "--national", "-5", "--local", "1"], id="negative"),
        pytest.param(
            ["--now", OPEN, "apply", TRACK, "41190", "--national", "5", "--local", "5", "--years", "0"], id="0y"
        ),
        pytest.param(["--now", "2024-04-01T10:00+09:00", "reschedule", TRACK, "receipt_closes", "x", "--reason", "r"]),
        pytest.param(["--now", "2024-04-01T10:00+09:00", "extend", "1", "kickoff_due", "2024-06-30", "--reason", "r"]),
        pytest.param(
            ["--now", "2024-04-01T10:00+09:00", "extend", "1", "receipt_closes", "2024-06-30", "--reason", ""]
        ),
        pytest.param(["kickoff", "approve", "1", "--schedule", "2024=1/"], id="schedule"),
        pytest.param(["tokens", "create", "--role", "evaluator", "--subject", "ghost@nowhere.example"], id="token"),
        pytest.param(["outbox", "release", TRACK, "selected", "--yes"], id="release"),
        pytest.param(["score", "1", "feasibility=24.5", "--evaluator", sc.EVALUATORS[0], "--part", "oral"], id="part"),
        pytest.param(["daemon", "--port", "65536"], id="port"),
    ],
)
def test_a_refusal_of_each_command_prints_error_lines_and_changes_nothing(
    prepared: Prepared, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """Controls for the property: each of these is refused (exit 1) on the prepared database."""
    code, out, err = gongmo(prepared, capsys, argv)
    assert code == 1, (argv, err)
    check(prepared, argv, code, out, err)


def test_an_accepted_command_is_undone_before_the_next_example(
    prepared: Prepared, capsys: pytest.CaptureFixture[str]
) -> None:
    """Control: an accepted command changes the database; the next example starts from the prepared one."""
    code, _, err = gongmo(prepared, capsys, ["--now", OPEN, "trigger", "1", "withdraw", "--reason", "test"])
    assert code == 0, err
    assert snapshot(prepared.database) != prepared.rows
    prepared.restore()
    assert snapshot(prepared.database) == prepared.rows


# --- bad inputs that once escaped: each pinned with its minimal example ---------------------


@SETTINGS
@given(
    argv=st.sampled_from(
        [
            ["--now", "0001-01-01", "status"],
            ["--now", "9999-12-31T23:59:59-10:00", "status"],
            ["--now", ANNOUNCED, "reschedule", TRACK, "receipt_closes", "0001-01-01", "--reason", "r"],
            ["--now", ANNOUNCED, "extend", "1", "receipt_closes", "0001-01-01T08:00", "--reason", "r"],
        ]
    )
)
@example(argv=["--now", "0001-01-01", "status"])
def test_a_time_at_the_edge_of_datetime_is_refused(
    prepared: Prepared, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = gongmo(prepared, capsys, argv)
    assert code == 1 and ("0001-01-01" in err or "9999-12-31" in err)
    check(prepared, argv, code, out, err)


@SETTINGS
@given(
    argv=st.sampled_from(
        [
            ["show", "²"],
            ["trigger", "³", "withdraw"],
            ["score", "²", "feasibility=1", "--evaluator", "x", "--part", "written"],
        ]
    )
)
@example(argv=["show", "²"])
def test_an_application_number_that_int_cannot_read_is_refused(
    prepared: Prepared, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = gongmo(prepared, capsys, argv)
    assert code == 1 and ("²" in err or "³" in err)
    check(prepared, argv, code, out, err)


@SETTINGS
@given(
    argv=st.sampled_from(
        [
            ["show", "9223372036854775808"],
            ["tokens", "revoke", "9223372036854775808"],
            ["outbox", "--limit", "9223372036854775808"],
            ["--now", OPEN, "apply", TRACK, "41190", "--national", "9223372036854775808", "--local", "1"],
            ["--now", OPEN, "apply", TRACK, "41190", "--national", "1", "--local", "9223372036854775808"],
            ["--now", OPEN, "apply", TRACK, "41190", "--national", "1", "--local", "1", "--years", "1" + "0" * 19],
        ]
    )
)
@example(argv=["outbox", "retry", "9223372036854775808"])
def test_a_number_too_large_for_the_database_is_refused(
    prepared: Prepared, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code, out, err = gongmo(prepared, capsys, argv)
    assert code == 1  # refused in one line naming the value (on PostgreSQL too: test_cli.py)
    assert len(err.splitlines()) == 1 and ("9223372036854775808" in err or "10000000000000000000" in err), err
    check(prepared, argv, code, out, err)
