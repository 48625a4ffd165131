"""The `gongmo` command line, driven through workflow.cli.run() on a SQLite file in tmp_path."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from gongmo.workflow import cli
from gongmo.workflow.cli import shared
from tests.conftest import config_copy
from tests.workflow.cli.documents_args import document_args

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config.toml"
TEMPLATES = ROOT / "templates"
SAMPLE = ROOT / "examples" / "applicants.csv"

TRACK = "strong-small-2024"
ANNOUNCED = "2024-03-29T10:00+09:00"
OPEN = "2024-05-28T10:00:00+09:00"
LAST_SECOND = "2024-05-29T17:59:59+09:00"
CLOSE = "2024-05-29T18:00:00+09:00"
REVIEW = "2024-06-03T10:00:00+09:00"
EIGHT_BN = "8000000000"
TRACKS_2022_2024 = ("small-medium-2022", "hub-2024", "strong-small-2024", "diffusion-2024")


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        """stdout with rich's line wrapping undone."""
        return " ".join(self.out.split())

    def json(self) -> Any:
        return json.loads(self.out)


Gongmo = Callable[..., Result]


def write_config(tmp_path: Path, environment: str = "development") -> Path:
    edit = ('environment = "development"', f'environment = "{environment}"')
    # production refuses the Maildir (issue 18, point 11): send by SMTP there
    smtp = [('transport = "maildir"', 'transport = "smtp"')] if environment == "production" else []
    return config_copy(tmp_path, edit, *smtp, name=f"config-{environment}.toml")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GONGMO_DATABASE_URL", "GONGMO_NOW", "GONGMO_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def gongmo(config: Path, capsys: pytest.CaptureFixture[str]) -> Gongmo:
    def invoke(*args: str, now: str | None = None, config_path: Path | None = None) -> Result:
        argv = ["--config", str(config_path or config)]
        if now is not None:
            argv += ["--now", now]
        argv += list(args)
        capsys.readouterr()
        try:
            code = cli.run(argv)
        finally:
            if cli.state._app is not None:
                cli.state._app.db.dispose()
                cli.state._app = None
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err, err
        return Result(code, out, err)

    return invoke


def test_a_message_naming_a_long_path_stays_one_line(gongmo: Gongmo, tmp_path: Path) -> None:
    """Printed to a pipe or a log (no terminal, 80 columns assumed), a line is never broken: a
    grep for the path, or for the error, finds it whole (a CI workspace's path is often long)."""
    deep = tmp_path / ("a-directory-with-a-long-name-" * 4) / "applicants.csv"
    deep.parent.mkdir()
    deep.write_bytes(SAMPLE.read_bytes())
    assert gongmo("init").code == 0
    result = gongmo("applicants", "import", str(deep))
    assert result.code == 0, result.err
    assert f"{deep}: 20 rows: 20 created" in result.out.splitlines()[0]
    missing = gongmo("applicants", "import", str(deep.with_name("nowhere.csv")))
    assert missing.code == 1 and len(missing.err.strip().splitlines()) == 1, missing.err
    assert str(deep.with_name("nowhere.csv")) in missing.err


@pytest.fixture
def docs(tmp_path: Path) -> tuple[str, ...]:
    """`--document plan=FILE --document budget=FILE`: a plan is received only with its documents."""
    return document_args(tmp_path)


@pytest.fixture
def ready(gongmo: Gongmo) -> Gongmo:
    """Initialised, with the sample applicants imported."""
    assert gongmo("init").code == 0
    result = gongmo("applicants", "import", str(SAMPLE))
    assert result.code == 0, result.err
    assert "20 created" in result.text
    return gongmo


def errors(result: Result) -> list[str]:
    lines = result.err.splitlines()
    assert lines, "nothing on stderr"
    assert all(line.startswith("error: ") for line in lines), result.err
    return [line.removeprefix("error: ") for line in lines]


# --- setup and read-only commands ----------------------------------------------------


def test_init_twice(gongmo: Gongmo, tmp_path: Path) -> None:
    first = gongmo("init")
    assert first.code == 0, first.err
    assert (tmp_path / "gongmo.db").exists()
    for key in ("scc-2022-small-medium", "scc-2024-creation-expansion", "scc-2022-demonstration"):
        assert f"contest {key}: created" in first.text
    for key in (*TRACKS_2022_2024, "public-private-2022", "living-lab-2022"):
        assert f"track {key}: created" in first.text
    assert "already up to date" not in first.text

    second = gongmo("init")
    assert second.code == 0, second.err
    assert "contests and tracks already up to date" in second.text
    assert "created" not in second.text


def test_init_after_a_config_change_reports_the_update(gongmo: Gongmo, config: Path) -> None:
    assert gongmo("init").code == 0
    config.write_text(config.read_text(encoding="utf-8").replace("slots = 10", "slots = 11"), encoding="utf-8")
    again = gongmo("init")
    assert again.code == 0, again.err
    assert "track diffusion-2024: updated slots" in again.text
    assert "already up to date" not in again.text


def test_contests_json(gongmo: Gongmo) -> None:
    result = gongmo("contests", "--json")
    assert result.code == 0, result.err
    data = result.json()
    assert [c["contest"] for c in data] == [
        "scc-2022-small-medium",
        "scc-2024-creation-expansion",
        "scc-2022-demonstration",  # the 2022 release's two side calls (issue 21)
    ]
    tracks = {t["track"]: t for c in data for t in c["tracks"]}
    assert {k: t["slots"] for k, t in tracks.items()} == {
        "small-medium-2022": 16,
        "hub-2024": 1,
        "strong-small-2024": 3,
        "diffusion-2024": 10,
        "public-private-2022": 10,
        "living-lab-2022": 5,
    }
    assert data[1]["national_budget_krw"] == 52_000_000_000
    assert data[2]["national_budget_krw"] == 20_000_000_000
    assert tracks["public-private-2022"]["national_cap_krw"] == 1_500_000_000
    assert tracks["living-lab-2022"]["national_cap_krw"] == 1_000_000_000
    assert tracks["hub-2024"]["national_cap_krw"] == 16_000_000_000
    assert tracks["strong-small-2024"]["population_below"] == 1_000_000
    assert tracks["diffusion-2024"]["national_min_krw"] == 1_000_000_000
    assert tracks["small-medium-2022"]["calendar"]["receipt_closes"] == "2021-12-29T09:00:00+00:00"
    assert tracks["strong-small-2024"]["calendar"]["receipt_opens"] == "2024-05-27T00:00:00+00:00"
    assert tracks["strong-small-2024"]["calendar"]["receipt_closes"] == "2024-05-29T09:00:00+00:00"
    assert tracks["diffusion-2024"]["calendar"]["receipt_closes"] == "2024-05-07T09:00:00+00:00"
    for track in tracks.values():
        assert len(track["calendar"]) == (11 if track["track"] == "small-medium-2022" else 10)  # + review_starts
        for value in track["calendar"].values():
            assert datetime.fromisoformat(value).utcoffset() == timedelta(0), value


def test_contests_table_shows_local_times(gongmo: Gongmo) -> None:
    result = gongmo("contests")
    assert result.code == 0, result.err
    assert "2021-12-29 18:00" in result.text  # the 2022 close, in KST
    assert "times in Asia/Seoul" in result.text


def test_graph_prints_mermaid(gongmo: Gongmo) -> None:
    result = gongmo("graph")
    assert result.code == 0
    assert result.out.startswith("stateDiagram-v2\n")
    assert "    [*] --> announcement\n" in result.out
    assert "announcement --> receipt: submit (admin/applicant)" in result.out
    assert "presentation_evaluation --> selected: select (admin)" in result.out
    assert re.search(r"(?m)^    receipt --> preliminary_review: start_review \(.*receipt_closes\)$", result.out)
    assert result.out.endswith("\n")


# --- a small lifecycle -----------------------------------------------------------------


def test_lifecycle(ready: Gongmo, docs: tuple[str, ...]) -> None:
    gongmo = ready
    announced = gongmo("announce", TRACK, now=ANNOUNCED)
    assert announced.code == 0, announced.err
    # every sample applicant except the special and the metropolitan city is on the list
    assert f"{TRACK}: 18 applications created" in announced.text

    apply = ("apply", TRACK)
    money = ("--national", EIGHT_BN, "--local", EIGHT_BN, "--type", "climate_crisis")
    first = gongmo(*apply, "41590", *money, *docs, now=LAST_SECOND)
    assert first.code == 0, first.err
    assert "receipt number STRONG-SMALL-2024-0001" in first.text

    late = gongmo(*apply, "41190", *money, now=CLOSE)
    assert late.code == 1
    assert late.out == ""
    (line,) = errors(late)
    assert "receipt is closed" in line
    assert "2024-05-27 09:00:00 KST to 2024-05-29 18:00:00 KST" in line
    assert "(now 2024-05-29 18:00:00 KST)" in line

    # the refusal used no receipt number
    second = gongmo(*apply, "41190", "--national", "5000000000", "--local", "5000000000", *docs, now=OPEN)
    assert second.code == 0, second.err
    assert "receipt number STRONG-SMALL-2024-0002" in second.text

    status = gongmo("status", TRACK, "--json")
    assert status.code == 0, status.err
    assert status.json() == {TRACK: {"announcement": 16, "receipt": 2}}

    shown = gongmo("show", "STRONG-SMALL-2024-0001", "--json")
    assert shown.code == 0, shown.err
    app = shown.json()
    app_id = app["id"]
    assert (app["code"], app["name"], app["track"], app["state"]) == ("41590", "화성시", TRACK, "receipt")
    assert (app["national_krw"], app["local_krw"], app["project_type"]) == (
        8_000_000_000,
        8_000_000_000,
        "climate_crisis",
    )
    assert app["submitted_at"] == "2024-05-29T08:59:59+00:00"
    assert [(h["trigger"], h["from_state"], h["to_state"]) for h in app["history"]] == [
        ("invite", None, "announcement"),
        ("submit", "announcement", "receipt"),
    ]
    assert app["history"][0]["at"] == "2024-03-29T01:00:00+00:00"
    assert [n["notice"] for n in app["notices"]] == ["call_announcement", "receipt_confirmation"]
    assert "STRONG-SMALL-2024-0001" in app["notices"][1]["subject"]
    assert gongmo("show", str(app_id), "--json").json()["receipt_no"] == "STRONG-SMALL-2024-0001"

    bulk = gongmo("bulk", TRACK, "start_review", "--from", "receipt", now=CLOSE)
    assert bulk.code == 0, bulk.err
    assert f"{TRACK}: 2 applications moved receipt -> preliminary_review (start_review)" in bulk.text

    passed = gongmo("trigger", str(app_id), "pass_review", now=REVIEW)
    assert passed.code == 0, passed.err
    assert f"application {app_id}: preliminary_review -> written_evaluation (pass_review)" in passed.text

    early = gongmo("trigger", str(app_id), "select", now=REVIEW)
    assert early.code == 1
    (line,) = errors(early)
    assert f"application {app_id}" in line
    assert "'written_evaluation'" in line
    assert "'select'" in line

    no_reason = gongmo("trigger", str(app_id), "disqualify", now=REVIEW)
    assert no_reason.code == 1
    (line,) = errors(no_reason)
    assert "'disqualify' needs a reason" in line
    assert "--reason" in line

    after = gongmo("show", str(app_id), "--json").json()
    assert after["state"] == "written_evaluation"
    assert [h["trigger"] for h in after["history"]] == ["invite", "submit", "start_review", "pass_review"]
    assert after["version"] == 4

    audit = gongmo("audit", "verify")
    assert audit.code == 0, audit.err
    assert "clean" in audit.text
    assert "18 applications" in audit.text
    report = gongmo("audit", "verify", "--json").json()
    assert report["clean"] is True
    assert report["findings"] == []
    assert report["audit_rows"] == 18 + 2 + 2 + 1


def test_disqualify_with_a_reason_is_accepted(ready: Gongmo, docs: tuple[str, ...]) -> None:
    gongmo = ready
    assert gongmo("announce", TRACK, now=ANNOUNCED).code == 0
    applied = gongmo("apply", TRACK, "41190", "--national", "1", "--local", "1", *docs, now=OPEN)
    assert applied.code == 0, applied.err
    assert gongmo("bulk", TRACK, "start_review", "--from", "receipt", now=CLOSE).code == 0
    moved = gongmo("trigger", "STRONG-SMALL-2024-0001", "disqualify", "--reason", "인구 요건 미충족", now=REVIEW)
    assert moved.code == 0, moved.err
    app = gongmo("show", "STRONG-SMALL-2024-0001", "--json").json()
    assert app["state"] == "disqualified"
    assert app["history"][-1]["reason"] == "인구 요건 미충족"
    assert app["notices"][-1]["notice"] == "disqualified"


def test_trigger_submit_never_leaves_a_receipt_without_a_receipt_number(ready: Gongmo) -> None:
    gongmo = ready
    assert gongmo("announce", TRACK, now=ANNOUNCED).code == 0
    result = gongmo("trigger", "1", "submit", now=OPEN)
    if result.code == 0:
        app = gongmo("show", "1", "--json").json()
        assert app["state"] == "receipt"
        assert app["receipt_no"], "an application in receipt without a receipt number"
    else:
        assert result.code == 1
        assert "gongmo apply" in result.err
        assert gongmo("show", "1", "--json").json()["state"] == "announcement"


# --- user mistakes --------------------------------------------------------------------------


MISTAKES: dict[str, tuple[list[str], str | None, int, str]] = {
    "unknown track": (["announce", "no-such-track"], ANNOUNCED, 1, "unknown track 'no-such-track'"),
    "unknown track in status": (["status", "no-such-track"], None, 1, "unknown track 'no-such-track'"),
    "unknown applicant": (
        ["apply", TRACK, "99999", "--national", "1", "--local", "1"],
        OPEN,
        1,
        "no applicant with code '99999'",
    ),
    "unknown trigger": (["trigger", "1", "fly"], REVIEW, 1, "unknown trigger 'fly'"),
    "unknown application": (["trigger", "99999", "pass_review"], REVIEW, 1, "no application 99999"),
    "show unknown application": (["show", "99999"], None, 1, "no application 99999"),
    "unknown receipt number": (["show", "NOPE-0001"], None, 1, "'NOPE-0001'"),
    "now yesterday": (["status"], "yesterday", 1, "--now 'yesterday'"),
    "negative national": (
        ["apply", TRACK, "41190", "--national", "-5", "--local", "1"],
        OPEN,
        1,
        "--national -5",
    ),
    "negative local": (
        ["apply", TRACK, "41190", "--national", "5", "--local", "-1"],
        OPEN,
        1,
        "--local -1",
    ),
    "wrong type": (
        ["apply", TRACK, "41190", "--national", "5", "--local", "5", "--type", "wrong"],
        OPEN,
        1,
        "--type 'wrong'",
    ),
    "type on a track without types": (
        ["apply", "diffusion-2024", "47730", "--national", "5", "--local", "5", "--type", "climate_crisis"],
        "2024-05-03T10:00:00+09:00",
        1,
        "--type 'climate_crisis'",
    ),
    "bulk from no state": (["bulk", TRACK, "start_review", "--from", "nowhere"], CLOSE, 1, "--from 'nowhere'"),
    "missing required option": (["apply", TRACK, "41190", "--local", "1"], OPEN, 2, "--national"),
    "national not a number": (["apply", TRACK, "41190", "--national", "lots", "--local", "1"], OPEN, 2, "--national"),
    "unknown role": (["trigger", "1", "pass_review", "--role", "mayor"], REVIEW, 2, "mayor"),
    "unknown command": (["launch"], None, 2, "launch"),
}


@pytest.mark.parametrize("case", list(MISTAKES))
def test_user_mistake_exits_non_zero_without_traceback(ready: Gongmo, case: str) -> None:
    args, now, code, expected = MISTAKES[case]
    assert ready("announce", TRACK, now=ANNOUNCED).code == 0
    before = ready("status", "--json").json()
    result = ready(*args, now=now)
    assert result.code == code, (result.out, result.err)
    assert expected in result.err
    if code == 1:
        assert len(errors(result)) == 1
    assert ready("status", "--json").json() == before


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["applicants", "import", str(SAMPLE)],
        ["applicants", "list"],
        ["announce", TRACK],
        ["trigger", "1", "pass_review"],
        ["show", "1"],
        ["audit", "verify"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_command_before_init_says_run_gongmo_init(gongmo: Gongmo, args: list[str]) -> None:
    result = gongmo(*args, now=ANNOUNCED)
    assert result.code == 1
    (line,) = errors(result)
    assert "not initialised" in line
    assert "run `gongmo init`" in line


# --- --now and production -------------------------------------------------------------


def test_now_is_refused_by_a_production_config(gongmo: Gongmo, tmp_path: Path) -> None:
    production = write_config(tmp_path, "production")
    assert gongmo("init", config_path=production).code == 0  # the real clock is fine
    refused = gongmo("status", now=OPEN, config_path=production)
    assert refused.code == 1
    (line,) = errors(refused)
    assert "--now" in line
    assert "production" in line
    refused_init = gongmo("init", now=OPEN, config_path=production)
    assert refused_init.code == 1
    assert "production" in refused_init.err


def test_now_is_accepted_in_development(ready: Gongmo) -> None:
    result = ready("announce", TRACK, now=ANNOUNCED)
    assert result.code == 0, result.err
    show = ready("show", "1", "--json").json()
    assert show["created_at"] == "2024-03-29T01:00:00+00:00"


def test_now_without_a_zone_is_seoul(ready: Gongmo) -> None:
    result = ready("announce", TRACK, now="2024-03-29T10:00:00")
    assert result.code == 0, result.err
    assert ready("show", "1", "--json").json()["created_at"] == "2024-03-29T01:00:00+00:00"


def test_announce_before_the_announcement_is_refused(ready: Gongmo) -> None:
    result = ready("announce", TRACK, now="2024-03-29T09:59:59+09:00")
    assert result.code == 1
    (line,) = errors(result)
    assert "2024-03-29 10:00 KST" in line


def test_now_parses_to_utc() -> None:
    assert shared.parse_now("2024-05-29T18:00:00+09:00") == datetime(2024, 5, 29, 9, 0, tzinfo=UTC)
    assert shared.parse_now(None) is None


# --- bad input that once escaped: one line, nothing written, on SQLite and PostgreSQL ------------------


def every_row(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: what a refused command must leave as it was."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                t.name: sorted(map(tuple, conn.execute(sa.select(t))), key=repr)
                for t in SQLModel.metadata.sorted_tables
            }
    finally:
        engine.dispose()


@pytest.fixture
def on_db(gongmo: Gongmo, db_url: str, tmp_path: Path) -> Callable[..., Result]:
    """`gongmo` on the db_url backend, prepared: the 2024 strong-and-small call announced, plan 1
    (41190) received, one API token."""
    config = config_copy(tmp_path, database_url=db_url, name="config-db.toml")

    def invoke(*args: str, now: str | None = None) -> Result:
        return gongmo(*args, now=now, config_path=config)

    for args, now in [
        (["init"], None),
        (["applicants", "import", str(SAMPLE)], None),
        (["announce", TRACK], ANNOUNCED),
        (["apply", TRACK, "41190", "--national", EIGHT_BN, "--local", EIGHT_BN, *document_args(tmp_path)], OPEN),
        (["tokens", "create", "--role", "admin", "--subject", "office"], None),
    ]:
        result = invoke(*args, now=now)
        assert result.code == 0, (args, result.err)
    return invoke


BIG = "9223372036854775808"  # 2**63: overflowed SQLite
PAST_INT = "2147483648"  # 2**31: refused by PostgreSQL's INTEGER
TOO_LARGE: list[tuple[list[str], str]] = [
    (["show", BIG], f"no application '{BIG}': application numbers go up to 2147483647"),
    (["show", PAST_INT], f"no application '{PAST_INT}': application numbers go up to 2147483647"),
    (["trigger", PAST_INT, "withdraw"], f"no application '{PAST_INT}': application numbers go up to 2147483647"),
    (
        ["extend", BIG, "receipt_closes", "2024-06-30", "--reason", "r"],
        f"no application '{BIG}': application numbers go up to 2147483647",
    ),
    (
        ["trigger", "1", "withdraw", "--version", PAST_INT],
        f"--version {PAST_INT}: write a whole number from 1 to 2147483647",
    ),
    (["outbox", "retry", BIG], f"OUTBOX_ID {BIG}: write a whole number from 1 to 2147483647"),
    (["outbox", "show", PAST_INT], f"OUTBOX_ID {PAST_INT}: write a whole number from 1 to 2147483647"),
    (["outbox", "--limit", BIG], f"--limit {BIG}: write a whole number from 1 to 2147483647"),
    (["tokens", "revoke", PAST_INT], f"TOKEN_ID {PAST_INT}: write a whole number from 1 to 2147483647"),
    (["objection", "reject", BIG, "--reason", "r"], f"OBJECTION_ID {BIG}: write a whole number from 1 to 2147483647"),
    (
        ["apply", TRACK, "41110", "--national", BIG, "--local", "1"],
        f"--national {BIG}: the national share must be a positive amount in won, at most 9223372036854775807",
    ),
    (
        ["apply", TRACK, "41110", "--national", "1", "--local", BIG],
        f"--local {BIG}: the local share must be zero or more, in won, at most 9223372036854775807",
    ),
    (
        ["apply", TRACK, "41110", "--national", "1", "--local", "1", "--years", PAST_INT],
        f"--years {PAST_INT}: a plan runs for 1 to 10 years",
    ),
]


def test_a_number_too_large_for_the_database_is_refused_in_one_line(
    on_db: Callable[..., Result], db_url: str, tmp_path: Path
) -> None:
    before = every_row(db_url)
    for args, expected in TOO_LARGE:
        result = on_db(*args, now=OPEN)
        assert (result.code, result.err) == (1, f"error: {expected}\n"), args
    result = on_db("score", PAST_INT, "feasibility=1", "--evaluator", "x", "--part", "written", now=OPEN)
    assert result.err.splitlines() == [
        f"error: no application '{PAST_INT}' (give its id or receipt number, e.g. STRONG-SMALL-2024-0003)",
        "error: no score was stored",
    ]
    assert every_row(db_url) == before
    biggest = ("--national", str(2**63 - 1), "--local", "0", "--years", "10")
    largest = on_db("apply", TRACK, "41110", *biggest, *document_args(tmp_path), now=OPEN)
    assert largest.code == 0, largest.err  # the bounds are the columns' own


CONTROLS: list[tuple[list[str], str]] = [
    (["trigger", "1", "withdraw", "--reason", "a\x00b"], "--reason 'a\\x00b': has a control character (U+0000, NUL)"),
    (
        ["trigger", "1", "withdraw", "--reason=a\rb"],
        "--reason 'a\\rb': has a control character (U+000D, carriage return)",
    ),
    (
        ["tokens", "create", "--role", "admin", "--subject", "office", "--note", "n\x00"],
        "--note 'n\\x00': has a control character (U+0000, NUL)",
    ),
    (
        ["objection", "file", "1", "--grounds", "g\x1b[31m"],
        "--grounds 'g\\x1b[31m': has a control character (U+001B, escape)",
    ),
    (["kickoff", "return", "1", "--comments", "c\x07"], "--comments 'c\\x07': has a control character (U+0007)"),
    (
        ["apply", TRACK, "41110", "--national", "1", "--local", "1", "--title", "t\x00"],
        "--title 't\\x00': has a control character (U+0000, NUL)",
    ),
    (
        ["trigger", "1", "withdraw", "--reason", "r", "--actor", "\x00"],
        "--actor '\\x00': has a control character (U+0000, NUL)",
    ),
    (["show", "--json", "\x00"], "argument 7 '\\x00': has a control character (U+0000, NUL)"),
]


def test_a_control_character_in_an_argument_is_refused_in_one_line(on_db: Callable[..., Result], db_url: str) -> None:
    """A NUL reaches no query (PostgreSQL refuses it even in a look-up); nor does a bell or an escape."""
    before = every_row(db_url)
    for args, expected in CONTROLS:
        result = on_db(*args, now=OPEN)  # --config FILE --now TIME come first: the arguments count from 5
        assert (result.code, result.err) == (1, f"error: {expected}; delete it\n"), args
    assert every_row(db_url) == before
    kept = on_db("trigger", "1", "withdraw", "--reason", "서류 미비\n\t(첨부 누락)", now=OPEN)
    assert kept.code == 0, kept.err  # a tab and a line break are text
    assert on_db("show", "1", "--json").json()["history"][-1]["reason"] == "서류 미비\n\t(첨부 누락)"


# --- issue 19: decisions (points 6, 7, 8, 12, 13) ----------------------------------------------


@pytest.fixture
def disqualified(ready: Gongmo, docs: tuple[str, ...]) -> Gongmo:
    """STRONG-SMALL-2024-0001 (41190) disqualified on 2024-06-03 10:00 KST."""
    gongmo = ready
    assert gongmo("announce", TRACK, now=ANNOUNCED).code == 0
    applied = gongmo("apply", TRACK, "41190", "--national", EIGHT_BN, "--local", EIGHT_BN, *docs, now=OPEN)
    assert applied.code == 0, applied.err
    assert gongmo("bulk", TRACK, "start_review", "--from", "receipt", now=CLOSE).code == 0
    moved = gongmo("trigger", "STRONG-SMALL-2024-0001", "disqualify", "--reason", "유형 미선택", now=REVIEW)
    assert moved.code == 0, moved.err
    return gongmo


def test_a_second_objection_is_refused_in_one_line_through_the_cli(disqualified: Gongmo) -> None:
    gongmo = disqualified
    receipt = "STRONG-SMALL-2024-0001"
    filed = gongmo("objection", "file", receipt, "--grounds", "유형은 기후위기 대응", now="2024-06-04T09:00+09:00")
    assert filed.code == 0, filed.err
    rejected = gongmo("objection", "reject", "1", "--reason", "신청서에 유형 없음", now="2024-06-05T09:00+09:00")
    assert rejected.code == 0, rejected.err
    before = gongmo("show", receipt, "--json").json()
    again = gongmo("objection", "file", receipt, "--grounds", "다시 요청", now="2024-06-06T09:00+09:00")
    assert again.code == 1
    (line,) = errors(again)
    assert "objection #1 to its disqualification was already rejected on 2024-06-05" in line
    assert "one objection per disqualification" in line
    after = gongmo("show", receipt, "--json").json()
    assert after == before
    assert [n["notice"] for n in after["notices"]][-2:] == ["objection_received", "objection_rejected"]


def test_bulk_submit_is_refused_in_one_line(ready: Gongmo) -> None:
    """Was: '18 moved', each in receipt with no receipt number and 0 won asked."""
    gongmo = ready
    assert gongmo("announce", TRACK, now=ANNOUNCED).code == 0
    refused = gongmo("bulk", TRACK, "submit", "--from", "announcement", now=OPEN)
    assert refused.code == 1
    (line,) = errors(refused)
    assert "'submit' is not offered in bulk" in line and "gongmo apply" in line
    assert gongmo("status", TRACK, "--json").json() == {TRACK: {"announcement": 18}}


def _demo_mail(result: Result) -> tuple[Path, dict[str, int], Path]:
    """The Maildir, the count per notice and the one message the demo names."""
    text = result.out
    folder = re.search(r"^mail: \d+ notices delivered to the Maildir (\S+)", text, re.M)
    per = re.search(r"^  per notice: (.+)$", text, re.M)
    one = re.search(r"^  one message: (\S+)", text, re.M)
    assert folder and per and one, text[-2000:]
    counts = {name: int(n) for name, n in (item.rsplit(" ", 1) for item in per.group(1).split(", "))}
    return Path(folder.group(1)), counts, Path(one.group(1))


@pytest.mark.slow
def test_the_demo_leaves_mail_to_read_in_a_maildir(gongmo: Gongmo, tmp_path: Path) -> None:
    """Was: 'notices queued' and no Maildir anywhere."""
    import email
    import email.policy
    import mailbox

    box = tmp_path / "demo-mail"
    result = gongmo("demo", "--maildir", str(box))
    assert result.code == 0, result.err
    folder, counts, one = _demo_mail(result)
    assert folder == box.resolve()
    assert f"mutt -f {folder}" in result.out
    messages = list(mailbox.Maildir(str(folder), create=False))
    assert len(messages) == sum(counts.values()) > 100
    assert {"call_announcement", "receipt_confirmation", "selected", "kickoff_confirmed"} <= counts.keys()
    assert one.is_file() and one.parent.parent == folder
    message = email.message_from_bytes(one.read_bytes(), policy=email.policy.default)
    assert message["Subject"] and message["To"] and message["Message-ID"]
    # the results held under embargo were released at the end, as the office would
    assert "results held under embargo released at the end" in result.out


@pytest.mark.slow
def test_the_demo_keeps_its_maildir_in_its_own_folder_without_the_option(gongmo: Gongmo) -> None:
    import shutil

    result = gongmo("demo")
    assert result.code == 0, result.err
    folder, counts, one = _demo_mail(result)
    try:
        assert folder.name == "maildir" and folder.parent.name.startswith("gongmo-demo-")
        assert len(list((folder / "new").iterdir())) == sum(counts.values())
        assert one.is_file()
    finally:
        shutil.rmtree(folder.parent)


def test_passing_a_failed_checklist_needs_a_reason_shown_by_show(ready: Gongmo, docs: tuple[str, ...]) -> None:
    """Was: `trigger N pass_review` passed a plan with no local match, no reason asked."""
    gongmo = ready
    assert gongmo("announce", TRACK, now=ANNOUNCED).code == 0
    applied = gongmo(
        "apply", TRACK, "41190", "--national", EIGHT_BN, "--local", "0", "--type", "climate_crisis", *docs, now=OPEN
    )
    assert applied.code == 0, applied.err
    assert gongmo("bulk", TRACK, "start_review", "--from", "receipt", now=CLOSE).code == 0
    receipt = "STRONG-SMALL-2024-0001"
    refused = gongmo("trigger", receipt, "pass_review", now=REVIEW)
    assert refused.code == 1
    (line,) = errors(refused)
    assert "'pass_review' overrides a rule: its preliminary review checklist failed (local_match: 0 won" in line
    assert '--reason "..."' in line
    bulk = gongmo("bulk", TRACK, "pass_review", "--from", "preliminary_review", now=REVIEW)
    assert bulk.code == 1 and "1 of 1 applications" in errors(bulk)[0]
    assert gongmo("show", receipt, "--json").json()["state"] == "preliminary_review"
    passed = gongmo("trigger", receipt, "pass_review", "--reason", "확인완료", now=REVIEW)
    assert passed.code == 0, passed.err
    shown = gongmo("show", receipt, "--json").json()
    assert (shown["history"][-1]["trigger"], shown["history"][-1]["reason"]) == ("pass_review", "확인완료")
    assert "확인완료" in gongmo("show", receipt).out  # the history table's reason column


def test_show_lists_every_calendar_change_with_who_when_and_why(ready: Gongmo, docs: tuple[str, ...]) -> None:
    """The track's reschedules and the application's own extensions, each with who, when and
    why; an applicant sees its own extensions and the track's reschedules, not another's."""
    gongmo = ready
    assert gongmo("announce", TRACK, now=ANNOUNCED).code == 0
    money = ("--national", EIGHT_BN, "--local", EIGHT_BN, "--type", "climate_crisis")
    assert gongmo("apply", TRACK, "41190", *money, *docs, now=OPEN).code == 0  # STRONG-SMALL-2024-0001
    assert gongmo("apply", TRACK, "41590", *money, *docs, now=OPEN).code == 0  # STRONG-SMALL-2024-0002
    moved = gongmo(
        "reschedule", TRACK, "receipt_closes", "2024-05-31T18:00+09:00", "--reason", "서버점검", "--actor", "kim",
        now=OPEN,
    )  # fmt: skip
    assert moved.code == 0, moved.err
    extended = gongmo(
        "extend", "STRONG-SMALL-2024-0001", "receipt_closes", "2024-06-03T18:00+09:00", "--reason", "정전피해",
        "--actor", "lee", now="2024-05-30T10:00+09:00",
    )  # fmt: skip
    assert extended.code == 0, extended.err
    reschedule = {
        "kind": "reschedule",
        "milestone": "receipt_closes",
        "old_at": "2024-05-29T09:00:00+00:00",
        "new_at": "2024-05-31T09:00:00+00:00",
        "reason": "서버점검",
        "actor": "kim",
        "at": "2024-05-28T01:00:00+00:00",
    }
    extension = {
        "kind": "extension",
        "milestone": "receipt_closes",
        "old_at": "2024-05-31T09:00:00+00:00",
        "new_at": "2024-06-03T09:00:00+00:00",
        "reason": "정전피해",
        "actor": "lee",
        "at": "2024-05-30T01:00:00+00:00",
    }
    assert gongmo("show", "STRONG-SMALL-2024-0001", "--json").json()["calendar_changes"] == [reschedule, extension]
    assert gongmo("show", "STRONG-SMALL-2024-0002", "--json").json()["calendar_changes"] == [reschedule]
    own = gongmo("show", "STRONG-SMALL-2024-0001", "--json", "--as", "applicant:41190")
    assert own.json()["calendar_changes"] == [reschedule, extension]
    other = gongmo("show", "STRONG-SMALL-2024-0002", "--json", "--as", "applicant:41590")
    assert other.json()["calendar_changes"] == [reschedule]
    lines = gongmo("show", "STRONG-SMALL-2024-0001").out.splitlines()
    at = lines.index("calendar changes (KST): the track's reschedules and this application's extensions")
    assert lines[at + 1 : at + 3] == [
        "  2024-05-28 10:00 kim: reschedule of receipt_closes 2024-05-29 18:00 -> 2024-05-31 18:00; reason: 서버점검",
        "  2024-05-30 10:00 lee: extension of receipt_closes 2024-05-31 18:00 -> 2024-06-03 18:00; reason: 정전피해",
    ]
