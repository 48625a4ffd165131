"""What the engine is given at construction and calls without importing it:
the notice queue (the outbox room's, workflow/outbox/queue.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.engine import Connection, RowMapping


class NoticeQueue(Protocol):
    """Render and insert the outbox rows of `notice` for the applications `ids`
    of `track`, inside the caller's transaction; returns how many were queued.
    `notice` None or no ids queue nothing; with a `tag`, one already queued is skipped. `party`: a single
    move's one application as its write left it, with its applicant's name, contact, e-mail and language
    (steps.Locked.party), so the queue need not read them again."""

    def __call__(
        self,
        conn: Connection,
        notice: str | None,
        ids: list[int],
        track: RowMapping,
        now: datetime,
        extra: Mapping[str, Any] | None = None,
        tag: str | None = None,
        party: Mapping[str, Any] | None = None,
    ) -> int: ...
