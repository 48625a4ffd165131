"""`python -m bench --small` runs end to end and writes its JSON (no speed is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_URL, ROOT

SCENARIOS = {"close", "transitions", "mail", "catchup", "memory", "documents", "verify", "pages", "portal"}


@pytest.mark.slow
@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_small_run_writes_every_scenario(db: str, tmp_path: Path) -> None:
    if db == "postgres" and not PG_URL:
        pytest.skip("GONGMO_TEST_PG_URL is not set (.ci/run sets it)")
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench", "--small", "--db", db, "--out", str(out)]
    if db == "postgres":
        command += ["--pg-url", str(PG_URL)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-4000:]
    document = json.loads(out.read_text(encoding="utf-8"))
    rows = [r for r in document["rows"] if r["db"] == db]
    assert {r["group"] for r in rows} == SCENARIOS
    for r in rows:
        assert r["gongmo"] > 0, r
        assert r["baseline"] is None or r["baseline"] > 0, r
    assert document["mode"] == "small" and document["machine"]["cores"]
    catchup = {r["scenario"]: r for r in rows if r["group"] == "catchup"}
    assert set(catchup) == {
        "catch-up: firing the deadlines, no delivery (vs a bulk close of as many)",
        "catch-up at start, with delivery (vs delivering its notices alone)",
        "catch-up: peak SMTP connections",
    }
    assert all(r["baseline"] is not None and r["target"] for r in catchup.values())  # each against its baseline
