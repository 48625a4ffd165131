"""Stage effects: what entering or leaving a state brings with it.

An effect is a function the Mover calls inside the move's transaction with
what moved (a `Moving`). It may write rows of its own (the checklist) and
returns the follow-up moves it wants (a waitlisted application promoted);
the Mover applies those in the same transaction, in order. An effect never
calls the Mover back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection, RowMapping

from gongmo.workflow.core.config import Track as TrackConfig
from gongmo.workflow.engine.checklist import record_checks


@dataclass(frozen=True)
class Moving:
    """What one move (or one chunk of a bulk move) did."""

    ids: list[int]
    source: str
    dest: str
    track: RowMapping  # the track's row, as the move read it
    track_cfg: TrackConfig
    now: datetime


@dataclass(frozen=True)
class FollowUp:
    """A move an effect asks for, made by the system in the same transaction."""

    application_id: int
    trigger: str
    reason: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)  # values for its notice (a promotion's explanation)


Effect = Callable[[Connection, Moving], list[FollowUp]]


def checklist_on_review(conn: Connection, moving: Moving) -> list[FollowUp]:
    """Entering preliminary review records each application's eligibility checklist."""
    if moving.dest == "preliminary_review":
        record_checks(conn, moving.ids, moving.track_cfg)
    return []
