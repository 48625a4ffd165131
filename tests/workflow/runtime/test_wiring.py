"""The one wiring function: the clock given is the one every part reads, a
production config refuses a fixed instant, and the set-up is idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from gongmo.states.errors import InvalidInput
from gongmo.workflow.core import config as config_mod
from gongmo.workflow.core import schema
from gongmo.workflow.core.clock import FixedClock, SystemClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import AUDIT, DEADLINE
from gongmo.workflow.engine.app import App
from gongmo.workflow.runtime import wiring
from gongmo.workflow.stages import applicants
from tests.conftest import CONFIG, SAMPLE_CSV, config_copy, kst
from tests.workflow import contest_2024 as sc

ANNOUNCE = kst("2024-03-29 10:00")
PRODUCTION = (
    ('environment = "development"', 'environment = "production"'),
    ('transport = "maildir"', 'transport = "smtp"'),
    ('# username = "gongmo"', 'username = "gongmo"'),
)


@pytest.fixture
def opened(db_url: str, clock: FixedClock) -> Iterator[App]:
    app = wiring.open_app(CONFIG, clock, database_url=db_url)
    yield app
    app.db.dispose()


def test_the_clock_given_is_the_one_every_part_reads(opened: App, clock: FixedClock) -> None:
    assert opened.clock is clock and opened.moves.clock is clock
    wiring.prepare(opened)
    with write(opened.db) as conn:
        applicants.store(conn, applicants.parse(SAMPLE_CSV))
    assert clock.now() == ANNOUNCE
    assert opened.moves.announce(sc.TRACK, sc.OFFICE) > 0
    with read(opened.db) as conn:
        stamps = set(conn.execute(sa.select(AUDIT.c.at)).scalars())
    assert stamps == {ANNOUNCE}


def test_a_loaded_config_or_its_path_wire_the_same(tmp_path: Path, clock: FixedClock) -> None:
    loaded = config_mod.load(CONFIG)
    url = f"sqlite:///{tmp_path / 'gongmo.db'}"
    for config in (loaded, CONFIG):
        app = wiring.open_app(config, clock, database_url=url)
        try:
            assert app.loaded.config == loaded.config and str(app.db.url) == url
            assert app.renderer is not None and app.moves.clock is clock
        finally:
            app.db.dispose()


def test_clock_for_keeps_the_cli_rule(tmp_path: Path) -> None:
    development = config_mod.load(CONFIG)
    assert isinstance(wiring.clock_for(development, None), SystemClock)
    fixed = wiring.clock_for(development, ANNOUNCE)
    assert isinstance(fixed, FixedClock) and fixed.now() == ANNOUNCE
    assert isinstance(wiring.clock_for(development, None, fixed=True), FixedClock)


def test_a_production_config_refuses_a_fixed_instant_but_a_rehearsal_clock_is_allowed(tmp_path: Path) -> None:
    path = config_copy(tmp_path, *PRODUCTION)
    loaded = config_mod.load(path)
    assert loaded.production
    with pytest.raises(InvalidInput) as refused:
        wiring.clock_for(loaded, ANNOUNCE)
    assert str(refused.value) == (
        f"now = {ANNOUNCE.isoformat()}: {path} is a production configuration"
        ' (gongmo.environment = "production"), which always runs on the real clock'
    )
    assert isinstance(wiring.clock_for(loaded, None), SystemClock)
    assert isinstance(wiring.clock_for(loaded, None, fixed=True), FixedClock)  # a rehearsal's throwaway database


def test_prepare_is_idempotent(opened: App) -> None:
    first = wiring.prepare(opened)
    head = schema.current(opened.db)
    assert first.schema_before is None and first.schema_after == head
    assert first.changes and first.planned
    second = wiring.prepare(opened)
    assert (second.schema_before, second.schema_after) == (head, head)
    assert second.changes == [] and second.planned == []


def test_prepare_without_deadlines_plants_none(opened: App) -> None:
    prepared = wiring.prepare(opened, deadlines=False)
    assert prepared.changes and prepared.planned == []
    with read(opened.db) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(DEADLINE)).scalar() == 0
