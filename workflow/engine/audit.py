"""Replay the audit log and compare with every application's state.

Streams both tables in application order (a merge), so it runs in constant
memory whatever the number of applications.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.states.lifecycle import Table
from gongmo.workflow.core.models import APPLICATION, AUDIT

CREATIONS = ("invite", "start")


@dataclass(frozen=True)
class Finding:
    application_id: int
    problem: str


@dataclass(frozen=True)
class Report:
    applications: int
    audit_rows: int
    findings: list[Finding]

    @property
    def clean(self) -> bool:
        return not self.findings


def verify(conn: Connection, table: Table, limit: int = 1000) -> Report:
    apps = conn.execute(
        sa.select(APPLICATION.c.id, APPLICATION.c.state).order_by(APPLICATION.c.id),
        execution_options={"yield_per": 5000},
    )
    rows = conn.execute(
        sa.select(AUDIT.c.application_id, AUDIT.c.id, AUDIT.c.trigger, AUDIT.c.from_state, AUDIT.c.to_state).order_by(
            AUDIT.c.application_id, AUDIT.c.id
        ),
        execution_options={"yield_per": 5000},
    )
    findings: list[Finding] = []
    counts = {"apps": 0, "audit": 0}
    histories = _histories(rows, counts)
    current = next(histories, None)
    for app_id, state in apps:
        counts["apps"] += 1
        while current is not None and current[0] < app_id:
            findings.append(Finding(current[0], "audit rows for an application that does not exist"))
            current = next(histories, None)
        if current is not None and current[0] == app_id:
            replayed, problem = replay(table, current[1])
            current = next(histories, None)
        else:
            replayed, problem = None, "no audit rows"
        if problem:
            findings.append(Finding(app_id, problem))
        elif replayed != state:
            findings.append(Finding(app_id, f"state is '{state}' but the audit log replays to '{replayed}'"))
        if len(findings) >= limit:
            break
    return Report(counts["apps"], counts["audit"], findings)


def _histories(rows: Any, counts: dict[str, int]) -> Iterator[tuple[int, list[Any]]]:
    for app_id, group in groupby(rows, key=lambda r: r[0]):
        history = list(group)
        counts["audit"] += len(history)
        yield int(app_id), history


def replay(table: Table, history: list[Any]) -> tuple[str | None, str | None]:
    """Return (state replayed, problem or None)."""
    state: str | None = None
    for _app, audit_id, trigger, src, dest in history:
        if state is None:
            if trigger not in CREATIONS or src is not None or dest != table.initial:
                return None, f"audit {audit_id}: the first row must create the application in '{table.initial}'"
            state = dest
            continue
        if src != state:
            return state, f"audit {audit_id}: '{trigger}' starts from '{src}' but the application was in '{state}'"
        expected = table.dest(state, trigger)
        if expected is None or expected != dest:
            return state, f"audit {audit_id}: '{trigger}' from '{state}' to '{dest}' is not a move of the table"
        state = dest
    return state, None
