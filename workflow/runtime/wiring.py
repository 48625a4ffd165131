"""The one place the parts are put together: a config and a clock make an App.

`open_app` builds it (the database engine, the renderer, the move service, all
on the clock given); `clock_for` is the CLI's and the rehearsal's rule for which
clock that is; `prepare` is the set-up `gongmo init` does (schema, contests,
the config's staff accounts, deadline rows), shared by the CLI, the rehearsal, the bench and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gongmo.notifications.render import Renderer
from gongmo.states.errors import InvalidInput
from gongmo.workflow.core import config as config_mod
from gongmo.workflow.core import loader, schema, sessions
from gongmo.workflow.core.clock import Clock, FixedClock, SystemClock
from gongmo.workflow.core.db import make_engine, write
from gongmo.workflow.deadlines import changes
from gongmo.workflow.engine.app import App
from gongmo.workflow.engine.moves import Mover
from gongmo.workflow.outbox.notifier import Notifier
from gongmo.workflow.outbox.queue import OutboxQueue


def open_app(config: Path | config_mod.Loaded, clock: Clock, *, database_url: str | None = None) -> App:
    """The App on `clock` (every part reads this one), on `database_url` or the config's database."""
    loaded = config if isinstance(config, config_mod.Loaded) else config_mod.load(config)
    db = make_engine(database_url or loaded.database_url)
    renderer = Renderer(loaded.templates_dir)
    moves = Mover(db, loaded, clock, OutboxQueue(loaded, Notifier(renderer, loaded.config.mail.sender)))
    return App(loaded=loaded, db=db, clock=clock, renderer=renderer, moves=moves)


def clock_for(loaded: config_mod.Loaded, now: datetime | None, *, fixed: bool = False) -> Clock:
    """The real clock, or one standing at `now` (the CLI's --now), which a production
    config refuses. `fixed` is for rehearsals on a throwaway database: a clock the
    caller moves, allowed whatever the environment."""
    if now is not None and loaded.production:
        raise InvalidInput(
            f"{{given}}: {loaded.path} is a production configuration"
            ' (gongmo.environment = "production"), which always runs on the real clock',
            field="now",
            value=now.isoformat(),
        )
    if now is not None or fixed:
        return FixedClock(now or SystemClock().now())
    return SystemClock()


@dataclass(frozen=True)
class Prepared:
    """What `prepare` did: the schema revision before and after, one line per
    contest or track change, and the deadline rows added or moved."""

    schema_before: str | None
    schema_after: str
    changes: list[str]
    planned: list[str]


def prepare(app: App, *, deadlines: bool = True) -> Prepared:
    """Bring the schema to head, load the config's contests and tracks and (unless
    `deadlines` is False) derive their deadline rows, in one transaction after the
    schema's. Idempotent: a second run changes nothing."""
    before, after = schema.upgrade(app.db)
    with write(app.db) as conn:
        synced = loader.sync(conn, app.loaded.config)
        synced += sessions.sync_staff(conn, app.loaded.config.console.staff, app.clock.now())
        planned = changes.derive(app, conn) if deadlines else []
    return Prepared(schema_before=before, schema_after=after, changes=synced, planned=planned)
