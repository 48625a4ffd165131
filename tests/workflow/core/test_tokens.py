"""API tokens (workflow/tokens.py) and `gongmo tokens create|list|revoke`."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import SQLModel

from gongmo.states.errors import Conflict, InvalidInput, NotFound
from gongmo.states.lifecycle import Role
from gongmo.workflow import cli
from gongmo.workflow.api import create_api
from gongmo.workflow.core import tokens
from gongmo.workflow.core.clock import FixedClock, SystemClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import API_TOKEN, APPLICANT, EVALUATOR
from gongmo.workflow.engine.app import App
from gongmo.workflow.runtime.wiring import open_app
from gongmo.workflow.stages import committee
from tests.conftest import CONFIG, SAMPLE_CSV, config_copy, kst, make_app, run_cli
from tests.workflow import contest_2024 as sc


@pytest.fixture(scope="module")
def committee_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with the sample applicants and the 2024 committee (built once; each test gets a copy)."""
    where = tmp_path_factory.mktemp("committee")
    app = make_app(f"sqlite:///{where / 'gongmo.db'}", FixedClock(kst("2024-03-29 10:00")))
    path = where / "evaluators.csv"
    path.write_text(sc.EVALUATORS_CSV, encoding="utf-8")
    with write(app.db) as conn:
        committee.store_evaluators(conn, committee.parse_evaluators(path), app.clock.now())
    app.db.dispose()
    return where / "gongmo.db"


def copy_db(source: Path, target: Path) -> None:
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


@pytest.fixture
def committee_app(committee_db: Path, tmp_path: Path, clock: FixedClock) -> Iterator[App]:
    copy_db(committee_db, tmp_path / "gongmo.db")
    app = open_app(CONFIG, clock, database_url=f"sqlite:///{tmp_path / 'gongmo.db'}")
    yield app
    app.db.dispose()


def token_rows(app: App) -> list[dict[str, object]]:
    with read(app.db) as conn:
        return [dict(r) for r in conn.execute(sa.select(API_TOKEN).order_by(API_TOKEN.c.id)).mappings()]


def everything_stored(app: App) -> str:
    """Every row of every table, as text."""
    with read(app.db) as conn:
        return "\n".join(
            repr(tuple(row)) for table in SQLModel.metadata.sorted_tables for row in conn.execute(sa.select(table))
        )


def test_a_token_is_returned_once_and_only_its_sha256_is_stored(committee_app: App, tmp_path: Path) -> None:
    app = committee_app
    token_id, token = tokens.create(app, "applicant", " 36110 ", "office-lee", note="세종 담당자")
    assert token.startswith("gmo_") and len(token) >= 40
    [row] = token_rows(app)
    assert row["id"] == token_id
    assert row["token_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    assert row["prefix"] == token[:12] and len(str(row["prefix"])) < len(token)
    assert (row["role"], row["subject"], row["created_by"], row["note"]) == (
        "applicant",
        "36110",
        "office-lee",
        "세종 담당자",
    )
    assert row["created_at"] == app.clock.now() and row["revoked_at"] is None and row["last_used_at"] is None
    assert token not in everything_stored(app)
    app.db.dispose()  # the WAL checkpointed into the file: no byte of the database holds the token
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("gongmo.db*"))
    assert token.encode() not in raw and token[12:].encode() not in raw

    _, second = tokens.create(app, "applicant", "36110", "office-lee")
    assert second != token and len(token_rows(app)) == 2  # several tokens may stand for one subject


def test_authenticate_resolves_the_subject_and_refuses_unknown_or_revoked(committee_app: App) -> None:
    app = committee_app
    now = app.clock.now()
    _, admin = tokens.create(app, "admin", "office-lee", "test")
    _, ev = tokens.create(app, "evaluator", "Kim@Univ-Seoul.example", "test")
    app_id, applicant = tokens.create(app, "applicant", "36110", "test")
    with read(app.db) as conn:
        sejong = conn.execute(sa.select(APPLICANT.c.id).where(APPLICANT.c.code == "36110")).scalar_one()
        kim = conn.execute(sa.select(EVALUATOR.c.id).where(EVALUATOR.c.email == sc.EVALUATORS[0])).scalar_one()
        found = {t: tokens.authenticate(conn, t, now) for t in (admin, ev, applicant)}
        assert tokens.authenticate(conn, admin + "x", now) is None
        assert tokens.authenticate(conn, "", now) is None
    assert found[admin] is not None and (found[admin].role, found[admin].subject) == (Role.ADMIN, "office-lee")
    assert found[admin].applicant_id is None and found[admin].evaluator_id is None
    assert found[ev] is not None and (found[ev].subject, found[ev].evaluator_id) == (sc.EVALUATORS[0], kim)
    assert found[applicant] is not None and found[applicant].applicant_id == sejong
    assert found[applicant].actor.name == "36110" and found[applicant].actor.role == Role.APPLICANT

    tokens.revoke(app, app_id)
    with read(app.db) as conn:
        assert tokens.authenticate(conn, applicant, now) is None
        assert tokens.authenticate(conn, admin, now) is not None


@pytest.mark.parametrize("role", ["system", "Admin", "", "root", "applicants"])
def test_create_refuses_an_unknown_role_and_stores_nothing(committee_app: App, role: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        tokens.create(committee_app, role, "office-lee", "test")
    assert str(refused.value) == f"role = {role!r}: choose admin, evaluator, applicant or metrics"
    assert token_rows(committee_app) == []


@pytest.mark.parametrize(
    ("role", "subject", "kind", "message"),
    [
        ("admin", "   ", InvalidInput, "subject = '': name who uses the token"),
        ("admin", "lee\x00", InvalidInput, "subject = 'lee\\x00': name who uses the token"),
        ("admin", "lee\nkim", InvalidInput, "subject = 'lee\\nkim'"),
        ("applicant", "99999", NotFound, "subject = '99999': no applicant with that code"),
        ("applicant", "36110x", NotFound, "subject = '36110x': no applicant with that code"),
        (
            "evaluator",
            "nobody@univ.example",
            NotFound,
            "subject = 'nobody@univ.example': no evaluator with that e-mail",
        ),
        ("evaluator", "36110", NotFound, "no evaluator with that e-mail"),
    ],
)
def test_create_refuses_a_subject_that_names_nobody_in_one_line(
    committee_app: App, role: str, subject: str, kind: type[Exception], message: str
) -> None:
    with pytest.raises(kind) as refused:
        tokens.create(committee_app, role, subject, "test")
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert token_rows(committee_app) == []


def test_an_evaluator_subject_is_kept_in_lower_case(committee_app: App) -> None:
    tokens.create(committee_app, "evaluator", "  JUNG@GRI.example ", "test")
    assert token_rows(committee_app)[0]["subject"] == "jung@gri.example"


def test_the_listing_never_shows_the_hash_and_revoking_twice_is_a_conflict(
    committee_app: App, clock: FixedClock
) -> None:
    app = committee_app
    first, token = tokens.create(app, "admin", "office-lee", "boss", note="개발")
    tokens.create(app, "applicant", "36110", "boss")
    listed = tokens.listing(app)
    assert [r["id"] for r in listed] == [first, first + 1]
    assert all("token_sha256" not in r for r in listed)
    text = repr(listed)
    assert token not in text and hashlib.sha256(token.encode()).hexdigest() not in text
    assert listed[0]["prefix"] == token[:12] and listed[0]["note"] == "개발" and listed[0]["created_by"] == "boss"

    clock.advance(timedelta(hours=1))
    revoked = tokens.revoke(app, first)
    assert revoked["revoked_at"] == clock.now() and revoked["subject"] == "office-lee"
    assert tokens.listing(app)[0]["revoked_at"] == clock.now() and tokens.listing(app)[1]["revoked_at"] is None
    with pytest.raises(Conflict, match=f"token {first} was already revoked at "):
        tokens.revoke(app, first)
    assert tokens.listing(app)[0]["revoked_at"] == clock.now()  # the first revocation stands
    with pytest.raises(NotFound, match="no token 99: see `gongmo tokens list`"):
        tokens.revoke(app, 99)


def test_last_use_is_due_for_a_write_once_a_minute(clock: FixedClock) -> None:
    now = clock.now()
    assert tokens.needs_touch(None, now)
    assert not tokens.needs_touch(now - timedelta(seconds=59), now)
    assert tokens.needs_touch(now - tokens.TOUCH_EVERY, now)


# -- the command line -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GONGMO_DATABASE_URL", "GONGMO_NOW", "GONGMO_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def initialised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database after `gongmo init` and `gongmo applicants import` (run once; each test gets a copy)."""
    where = tmp_path_factory.mktemp("cli")
    path = config_copy(where)
    try:
        for argv in (["init"], ["applicants", "import", str(SAMPLE_CSV)]):
            assert cli.run(["--config", str(path), *argv]) == 0
    finally:
        if cli.state._app is not None:
            cli.state._app.db.dispose()
            cli.state._app = None
    return where / "gongmo.db"


@pytest.fixture
def cfg(tmp_path: Path, initialised: Path) -> Path:
    path = config_copy(tmp_path)
    copy_db(initialised, tmp_path / "gongmo.db")
    return path


def listed(capsys: pytest.CaptureFixture[str], cfg: Path) -> list[dict[str, object]]:
    code, out, _ = run_cli(capsys, "--config", str(cfg), "tokens", "list", "--json")
    assert code == 0
    return list(json.loads(out))


def test_cli_create_prints_the_token_once_and_it_opens_the_api(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys, "--config", str(cfg), "tokens", "create", "--role", "applicant", "--subject", "36110"
    )
    assert (code, err) == (0, "")
    lines = out.strip().splitlines()
    token = lines[-1]
    assert token.startswith("gmo_") and out.count(token) == 1
    assert lines[0].startswith("token 1 (applicant, 36110): shown once")

    rows = listed(capsys, cfg)
    assert [(r["id"], r["role"], r["subject"], r["created_by"]) for r in rows] == [(1, "applicant", "36110", "admin")]
    assert "token_sha256" not in rows[0] and token not in json.dumps(rows)
    assert hashlib.sha256(token.encode()).hexdigest() not in json.dumps(rows)
    code, table, _ = run_cli(capsys, "--config", str(cfg), "tokens", "list")
    assert code == 0 and "36110" in table and token not in table  # (rich may wrap the prefix column)

    app = open_app(cfg, SystemClock())
    try:
        me = TestClient(create_api(app)).get("/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json() == {"role": "applicant", "subject": "36110", "token_id": 1}
    finally:
        app.db.dispose()


def test_cli_revoke_then_revoke_again(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(
        capsys, "--config", str(cfg), "tokens", "create", "--role", "admin", "--subject", "office-lee", "--note", "x"
    )
    code, out, _ = run_cli(capsys, "--config", str(cfg), "tokens", "revoke", "1")
    assert code == 0 and "token 1 (admin, office-lee) revoked" in out
    assert listed(capsys, cfg)[0]["revoked_at"] is not None
    code, out, err = run_cli(capsys, "--config", str(cfg), "tokens", "revoke", "1")
    assert code == 1 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("error: token 1 was already revoked at ")
    code, _, err = run_cli(capsys, "--config", str(cfg), "tokens", "revoke", "7")
    assert code == 1 and err == "error: no token 7: see `gongmo tokens list`\n"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["--role", "boss", "--subject", "office-lee"],
            "error: --role 'boss': choose admin, evaluator, applicant or metrics\n",
        ),
        (
            ["--role", "applicant", "--subject", "99999"],
            "error: --subject '99999': no applicant with that code; an applicant token names its code, e.g. 41110\n",
        ),
        (
            ["--role", "evaluator", "--subject", "kim@univ-seoul.example"],
            "error: --subject 'kim@univ-seoul.example': no evaluator with that e-mail; import the committee first\n",
        ),
    ],
)
def test_cli_create_refusals_are_one_error_line_and_store_nothing(
    cfg: Path, capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    code, out, err = run_cli(capsys, "--config", str(cfg), "tokens", "create", *argv)
    assert (code, out, err) == (1, "", error)
    assert listed(capsys, cfg) == []
