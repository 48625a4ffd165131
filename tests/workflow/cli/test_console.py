"""`gongmo staff` and `gongmo console` through workflow.cli.run(), on a SQLite file in tmp_path:
accounts from config.toml and the command line, a first sign-in link, the live sessions, revoking
them; and `gongmo outbox` with a sign-in mail (a row of no application, its link hidden)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gongmo.workflow.core import sessions
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox import signin
from gongmo.workflow.runtime.wiring import open_app
from tests.conftest import config_copy, kst, run_cli

NOW = "2024-05-28T11:00+09:00"
CONFIG_STAFF = "office@molit.go.kr"
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

    code, _, err = invoke("init")
    assert code == 0, err
    return invoke


@pytest.fixture
def app(gongmo: Run, config: Path) -> Iterator[App]:
    """The same database, opened beside the CLI (what a browser's requests would use)."""
    opened = open_app(config, FixedClock(kst("2024-05-28 11:01")))
    yield opened
    opened.db.dispose()


def test_init_creates_the_config_staff_and_staff_add_list_disable(gongmo: Run) -> None:
    code, out, _ = gongmo("staff", "list", "--json")
    assert code == 0 and [r["email"] for r in json.loads(out)] == [CONFIG_STAFF]
    assert json.loads(out)[0]["created_by"] == "config"
    code, out, _ = gongmo("staff", "add", "Lee@MOLIT.go.kr", "--name", "이하늘", "--language", "en")
    assert code == 0 and "staff lee@molit.go.kr (admin, en): added" in out and "gongmo console link" in out
    code, _, err = gongmo("staff", "add", "lee@molit.go.kr")
    assert code == 1 and "already has an account" in err
    code, out, _ = gongmo("staff", "list", "--json")
    listed = [(r["email"], r["name"], r["language"]) for r in json.loads(out)]
    assert listed == [("lee@molit.go.kr", "이하늘", "en"), (CONFIG_STAFF, None, "ko")]
    code, out, _ = gongmo("staff", "list")
    assert code == 0 and "이하늘" in out
    code, out, _ = gongmo("staff", "disable", "lee@molit.go.kr", "--json")
    assert code == 0 and json.loads(out)["sessions_revoked"] == 0
    code, _, err = gongmo("staff", "disable", "nobody@molit.go.kr")
    assert code == 1 and "no staff account nobody@molit.go.kr" in err
    code, _, err = gongmo("staff", "add", "not-an-address")
    assert code == 1 and "not an e-mail address" in err


def test_staff_add_takes_the_role_admin_and_refuses_any_other(gongmo: Run) -> None:
    code, out, _ = gongmo("staff", "add", "choi@molit.go.kr", "--role", "admin")
    assert code == 0 and "staff choi@molit.go.kr (admin, ko): added" in out
    code, _, err = gongmo("staff", "add", "kim@univ.ac.kr", "--role", "evaluator")
    assert code == 1 and "--role 'evaluator': a staff account is an admin" in err and "Traceback" not in err
    code, out, _ = gongmo("staff", "list", "--json")
    assert "kim@univ.ac.kr" not in out


def test_console_link_prints_a_link_that_signs_in_once(gongmo: Run, app: App) -> None:
    code, out, _ = gongmo("console", "link", CONFIG_STAFF, "--next", "/office/outbox")
    assert code == 0 and "works once, for 15 minutes" in out
    (url,) = re.findall(r"http://127\.0\.0\.1:8470/signin/\S+", out)
    token = url.split("/signin/")[1].split("?")[0]
    assert url.endswith("?next=/office/outbox")
    _, found = sessions.redeem(app, token, "10.0.0.1")
    assert found.subject == CONFIG_STAFF
    with pytest.raises(sessions.LinkRefused):
        sessions.redeem(app, token, "10.0.0.1")
    code, _, err = gongmo("console", "link", "nobody@molit.go.kr")
    assert code == 1 and "gongmo staff add nobody@molit.go.kr" in err


def test_console_sessions_lists_the_live_ones_and_revoke_ends_them(gongmo: Run, app: App) -> None:
    gongmo("staff", "add", "kim@molit.go.kr")
    first = sessions.open_session(app, "admin", CONFIG_STAFF, client="10.0.0.7")
    sessions.open_session(app, "admin", "kim@molit.go.kr")
    sessions.open_session(app, "admin", "kim@molit.go.kr")
    code, out, _ = gongmo("console", "sessions", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["subject"] for r in rows] == [CONFIG_STAFF, "kim@molit.go.kr", "kim@molit.go.kr"]
    assert rows[0]["client"] == "10.0.0.7" and first not in out and "session_sha256" not in out
    code, out, _ = gongmo("console", "sessions")
    assert code == 0 and "10.0.0.7" in out
    code, out, _ = gongmo("console", "revoke", str(rows[0]["id"]))
    assert code == 0 and f"session {rows[0]['id']} (admin, {CONFIG_STAFF}) revoked" in out
    code, out, _ = gongmo("console", "revoke", "--email", "KIM@molit.go.kr", "--json")
    assert code == 0 and json.loads(out)["revoked"] == 2
    code, out, _ = gongmo("console", "sessions", "--json")
    assert json.loads(out) == []
    code, _, err = gongmo("console", "revoke", str(rows[0]["id"]))
    assert code == 1 and "already revoked" in err
    code, _, err = gongmo("console", "revoke")
    assert code == 1 and "name one SESSION_ID, or --email" in err
    code, _, err = gongmo("console", "revoke", "999")
    assert code == 1 and "no session 999" in err


def test_staff_disable_ends_the_sessions_of_that_person(gongmo: Run, app: App) -> None:
    raw = sessions.open_session(app, "admin", CONFIG_STAFF)
    code, out, _ = gongmo("staff", "disable", CONFIG_STAFF)
    assert code == 0 and "1 live session(s) revoked" in out
    with app.db.connect() as conn:
        assert sessions.authenticate(conn, raw, app.clock.now()) is None


def test_the_outbox_lists_a_signin_mail_without_an_application_and_hides_its_link(gongmo: Run, app: App) -> None:
    assert signin.request_link(app, CONFIG_STAFF, "10.0.0.1")
    code, out, _ = gongmo("outbox", "--state", "pending", "--json")
    (row,) = [r for r in json.loads(out)["rows"] if r["notice"] == "signin_link"]
    assert code == 0 and row["application_id"] is None
    code, out, _ = gongmo("outbox", "--limit", "1")
    assert code == 0 and "signin_link" in out and re.search(r"│ -\s+│ signin_link", out), out
    code, out, _ = gongmo("outbox", "show", str(row["id"]))
    assert code == 0 and "(sign-in link hidden)" in out and "/signin/" not in out
