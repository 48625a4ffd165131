"""`gongmo applicants contact add/list/remove` through workflow.cli.run(), on a SQLite file in
tmp_path: every contact of a government signs in to the same applicant; a removed one's sessions
end at once; the applicant's own e-mail (where notices go) cannot be removed by hand."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gongmo.workflow.core import sessions
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read
from gongmo.workflow.engine.app import App
from gongmo.workflow.runtime.wiring import open_app
from tests.conftest import config_copy, kst, run_cli

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "examples" / "applicants.csv"
NOW = "2024-05-28T11:00+09:00"
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GONGMO_DATABASE_URL", "GONGMO_NOW", "GONGMO_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return config_copy(tmp_path)


@pytest.fixture
def gongmo(config: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    def invoke(*args: str) -> tuple[int, str, str]:
        code, out, err = run_cli(capsys, "--config", str(config), "--now", NOW, *args)
        assert "Traceback" not in out + err, err
        return code, out, err

    for step in (("init",), ("applicants", "import", str(SAMPLE))):
        code, _, err = invoke(*step)
        assert code == 0, err
    return invoke


@pytest.fixture
def app(gongmo: Run, config: Path) -> Iterator[App]:
    opened = open_app(config, FixedClock(kst("2024-05-28 11:01")))
    yield opened
    opened.db.dispose()


def listed(gongmo: Run, code: str) -> list[dict[str, object]]:
    status, out, err = gongmo("applicants", "contact", "list", code, "--json")
    assert status == 0, err
    rows: list[dict[str, object]] = json.loads(out)
    return rows


def test_contact_add_list_and_remove_ending_its_sessions(gongmo: Run, app: App) -> None:
    assert listed(gongmo, "41110") == [
        {"code": "41110", "email": "smartcity@suwon.lg.example", "name": "최민준", "own": True}
    ]
    code, out, err = gongmo("applicants", "contact", "add", "41110", "Park@Suwon.example", "--name", "박지훈")
    assert code == 0 and "park@suwon.example: now a contact of applicant 41110" in out, err
    assert [r["email"] for r in listed(gongmo, "41110")] == ["smartcity@suwon.lg.example", "park@suwon.example"]
    code, out, _ = gongmo("applicants", "contact", "list", "41110")
    assert "박지훈" in out and "yes" in out

    raw = sessions.open_session(app, "applicant", "41110", client="test", email="park@suwon.example")
    code, out, err = gongmo("applicants", "contact", "remove", "41110", "park@suwon.example", "--json")
    assert code == 0, err
    assert json.loads(out) == {"code": "41110", "email": "park@suwon.example", "sessions_ended": 1}
    with read(app.db) as conn:
        assert sessions.authenticate(conn, raw, app.clock.now()) is None
    assert len(listed(gongmo, "41110")) == 1


def test_contact_commands_refuse_in_one_line(gongmo: Run) -> None:
    code, out, err = gongmo("applicants", "contact", "remove", "41110", "smartcity@suwon.lg.example")
    assert code == 1 and "own e-mail (its notices go there)" in err and out == ""
    code, _, err = gongmo("applicants", "contact", "add", "99999", "x@y.example")
    assert code != 0 and "no applicant '99999'" in err
    code, _, err = gongmo("applicants", "contact", "add", "41110", "not an address")
    assert code != 0 and "not an e-mail address" in err
    code, _, err = gongmo("applicants", "contact", "add", "41110", "SMARTCITY@suwon.lg.example")
    assert code != 0 and "already a contact of applicant 41110" in err
    code, _, err = gongmo("applicants", "contact", "remove", "41110", "nobody@suwon.example")
    assert code != 0 and "not a contact of applicant 41110" in err
