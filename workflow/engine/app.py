"""Wire the parts together from a config file and a clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine as DbEngine

from gongmo.notifications.render import Renderer
from gongmo.states.errors import InvalidInput
from gongmo.workflow.core import config as config_mod
from gongmo.workflow.core.clock import Clock, FixedClock, SystemClock
from gongmo.workflow.core.db import make_engine
from gongmo.workflow.engine.moves import Mover
from gongmo.workflow.outbox.notifier import Notifier


@dataclass
class App:
    loaded: config_mod.Loaded
    db: DbEngine
    clock: Clock
    renderer: Renderer
    moves: Mover


def open_app(
    config_path: Path,
    now: datetime | None = None,
    database_url: str | None = None,
    fixed_clock: bool = False,
) -> App:
    """`fixed_clock` is for rehearsals on a throwaway database: a clock the
    caller moves, allowed whatever the environment."""
    loaded = config_mod.load(config_path)
    if now is not None and loaded.production:
        raise InvalidInput(
            f"--now {now.isoformat()}: {config_path} is a production configuration"
            ' (gongmo.environment = "production"), which always runs on the real clock'
        )
    clock: Clock = SystemClock()
    if now is not None or fixed_clock:
        clock = FixedClock(now or SystemClock().now())
    db = make_engine(database_url or loaded.database_url)
    renderer = Renderer(loaded.templates_dir)
    moves = Mover(db, loaded, clock, Notifier(renderer, loaded.config.mail.sender))
    return App(loaded=loaded, db=db, clock=clock, renderer=renderer, moves=moves)
