"""Shared fixtures: one engine suite, run on SQLite and on PostgreSQL.

PostgreSQL comes from GONGMO_TEST_PG_URL (e.g.
postgresql+psycopg://postgres@127.0.0.1:5432/test); each test gets a schema
of its own, dropped afterwards. Without the variable the PostgreSQL cases
are skipped locally; .ci/run always sets it and fails if it is unreachable.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import write
from gongmo.workflow.engine.app import App
from gongmo.workflow.runtime import wiring
from gongmo.workflow.stages import applicants

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config.toml"
SAMPLE_CSV = ROOT / "examples" / "applicants.csv"
PG_URL = os.environ.get("GONGMO_TEST_PG_URL")

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def config_copy(
    tmp_path: Path,
    *edits: tuple[str, str],
    database_url: str | None = None,
    text: str | None = None,
    name: str = "config.toml",
) -> Path:
    """The shipped config (or `text`) written to tmp_path: templates absolute, the
    database a SQLite file in tmp_path (or `database_url`), and each (old, new)
    edit applied to text that must occur exactly once."""
    text = CONFIG.read_text(encoding="utf-8") if text is None else text
    url = database_url or f"sqlite:///{tmp_path / 'gongmo.db'}"
    for old, new in (
        ('templates_dir = "templates"', f'templates_dir = "{ROOT / "templates"}"'),
        ('database_url = "sqlite:///var/gongmo.db"', f'database_url = "{url}"'),
        *edits,
    ):
        assert text.count(old) == 1, f"{old!r} should occur once in the config"
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`gongmo ARGV` in this process; returns (exit code, stdout, stderr)."""
    from gongmo.workflow import cli

    capsys.readouterr()
    try:
        code = cli.run(list(argv))
    finally:
        if cli.state._app is not None:
            cli.state._app.db.dispose()
            cli.state._app = None
    out, err = capsys.readouterr()
    return code, out, err


def kst(text: str) -> datetime:
    """'2024-05-29 18:00' in Asia/Seoul, as aware UTC."""
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Asia/Seoul")).astimezone(UTC)


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("GONGMO_TEST_PG_URL is not set (.ci/run sets it)")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options={quote(f'-csearch_path={name}')}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        admin.dispose()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A module marked `sqlite_only` runs once, on SQLite: its rules issue the
    same plain SQL on both backends, and the end-to-end test of the same flow
    (tests/workflow/test_selection.py) runs on PostgreSQL. It keeps CI short."""
    dropped = [
        item
        for item in items
        if item.get_closest_marker("sqlite_only")
        and getattr(getattr(item, "callspec", None), "params", {}).get("db_url") == "postgres"
    ]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item not in dropped]
    # The long tests (`slow`: 8-90 s each, and the crash harness's short form) go first, so xdist
    # spreads them over the workers at the start instead of one worker finishing them alone at the end
    # (a 90 s browser scenario or the harness picked up late kept one worker going alone). The order within each
    # group is kept.
    items.sort(key=lambda item: not (item.get_closest_marker("slow") or item.get_closest_marker("chaos")))


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gongmo.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(kst("2024-03-29 10:00"))


def make_app(db_url: str, clock: FixedClock, config: Path = CONFIG) -> App:
    app = wiring.open_app(config, clock, database_url=db_url)
    wiring.prepare(app, deadlines=False)
    with write(app.db) as conn:
        applicants.store(conn, applicants.parse(SAMPLE_CSV))
    return app


@pytest.fixture
def app(db_url: str, clock: FixedClock) -> Iterator[App]:
    built = make_app(db_url, clock)
    yield built
    built.db.dispose()
