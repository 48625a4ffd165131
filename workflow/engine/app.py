"""The App: the parts one process works with (built by gongmo.workflow.runtime.wiring.open_app)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine as DbEngine

from gongmo.notifications.render import Renderer
from gongmo.workflow.core import config as config_mod
from gongmo.workflow.core.clock import Clock
from gongmo.workflow.engine.moves import Mover


@dataclass
class App:
    loaded: config_mod.Loaded
    db: DbEngine
    clock: Clock
    renderer: Renderer
    moves: Mover
