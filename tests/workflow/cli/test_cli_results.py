"""`gongmo results publish` through workflow.cli.run(), on SQLite and PostgreSQL: the 2024
strong-and-small scenario is brought to its selection (and release) with the engine
(tests/workflow/stages/test_results.py), then published by the command line, which runs
with umask 077 and must still leave files anyone may read."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.stages import selection
from tests.conftest import config_copy, make_app, run_cli
from tests.workflow import contest_2024 as sc
from tests.workflow.stages.test_results import NAMES, NOT_SELECTED, read_csv, to_release, to_selection

TRACK = sc.TRACK
AFTER_RELEASE = "2024-07-02T15:00"
FILES = [f"{TRACK}-results.{ext}" for ext in ("csv", "json", "html")]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GONGMO_DATABASE_URL", "GONGMO_NOW", "GONGMO_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Path:
    return config_copy(tmp_path, database_url=db_url)


def gongmo(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    code, out, err = run_cli(capsys, "--config", str(config), "--now", AFTER_RELEASE, *args)
    assert "Traceback" not in out + err, err
    return code, out, err


def one_line(code: int, out: str, err: str) -> str:
    """The one line a user mistake prints: exit 1, `error: ...` on stderr, nothing on stdout."""
    assert (code, out) == (1, ""), (out, err)
    (line,) = err.splitlines()
    assert line.startswith("error: ")
    return line.removeprefix("error: ")


def test_publish_writes_three_files_anyone_may_read_to_results_track_by_default(
    db_url: str,
    config: Path,
    clock: FixedClock,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app(db_url, clock, config)
    try:
        receipts = to_release(app, clock, tmp_path)
        rank_rows = {r["receipt_no"]: r for r in selection.table(selection.ranking(app, TRACK))}
    finally:
        app.db.dispose()
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.chdir(site)

    code, out, err = gongmo(capsys, config, "results", "publish", TRACK, "--json")

    assert (code, err) == (0, "")
    done = json.loads(out)
    folder = site / "results" / TRACK
    assert done["files"] == [str(Path("results") / TRACK / name) for name in FILES]
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    for name in FILES:
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o644, name
    for made in (folder, folder.parent):
        assert stat.S_IMODE(made.stat().st_mode) == 0o755, made
    assert done["listed"] == 4 and done["cutoff"] == "84.93"
    assert done["slots"] == {"used": 3, "of": 3}
    assert done["national_budget_krw"] == {"used": 23_500_000_000, "of": 24_000_000_000}
    assert done["verify"] == f"gongmo audit verify --anchor {done['anchor']['digest']}"
    rows, figures = read_csv(folder / FILES[0])
    assert (figures["anchor_digest"], figures["anchor_at"]) == (done["anchor"]["digest"], done["anchor"]["at"])
    assert done["anchor"]["at"] == "2024-07-02T15:00:00+09:00"  # taken at the publication (--now)
    decided = {str(row["receipt_no"]): row["rank"] for row in sc.apps(app).values()}
    for r in rows:
        ranked = rank_rows[r["receipt_no"]]
        assert (r["score"], r["written"], r["presentation"]) == (
            ranked["score"],
            ranked["written"],
            ranked["presentation"],
        )
        assert r["rank"] == str(decided[r["receipt_no"]])  # the selection's rank, as the notice told it
    page = (folder / FILES[2]).read_text(encoding="utf-8")
    assert done["anchor"]["digest"] in page and "<script" not in page
    for code_ in NOT_SELECTED:
        assert NAMES[code_] not in page and receipts[code_] not in page

    code, out, err = gongmo(capsys, config, "audit", "verify", "--anchor", done["anchor"]["digest"], "--json")
    assert (code, err) == (0, "")
    proof = json.loads(out)
    assert proof["clean"] is True and proof["rows"] == done["anchor"]["rows"] == int(figures["anchor_rows"])

    # For a person: the files, the figures and how to verify, one line each.
    code, out, err = gongmo(capsys, config, "results", "publish", TRACK, "--out", str(tmp_path / "again"))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:3] == [f"wrote {tmp_path / 'again' / name}" for name in FILES]
    assert lines[3] == (
        f"{TRACK}: 4 applications listed; cutoff 84.93; 3 of 3 slots, national 23,500,000,000 of 24,000,000,000 won"
    )
    assert lines[4].startswith("audit anchor ") and "verify with `gongmo audit verify --anchor " in lines[4]


def test_publish_before_the_release_is_refused_in_one_line_and_writes_nothing(
    db_url: str, config: Path, clock: FixedClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(db_url, clock, config)
    try:
        to_selection(app, clock, tmp_path)
    finally:
        app.db.dispose()
    out = tmp_path / "out"

    line = one_line(*gongmo(capsys, config, "results", "publish", TRACK, "--out", str(out)))

    assert line == (
        f"results of {TRACK} are not released yet (released by `gongmo outbox release {TRACK} results`):"
        " publishing before would break the embargo"
    )
    assert not out.exists()


def test_an_unknown_track_is_refused_in_one_line(
    db_url: str, config: Path, clock: FixedClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_app(db_url, clock, config).db.dispose()
    out = tmp_path / "out"

    line = one_line(*gongmo(capsys, config, "results", "publish", "strong-small-2042", "--out", str(out)))

    assert line.startswith("unknown track 'strong-small-2042' (tracks in the config: ") and TRACK in line
    assert not out.exists()


def test_results_is_listed_in_the_help_after_audit(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--config", str(config), "--help")
    assert code == 0
    words = out.split()
    assert "results" in words and words.index("audit") < words.index("results") < words.index("templates")
