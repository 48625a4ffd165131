"""Prometheus metrics (prometheus_client's text format).

Two kinds, on one registry per daemon (never the global one, so tests and
several apps in one process do not mix):

- counts read from the database at scrape time (the truth shared by every
  replica): applications by track and state (as the scraping token may see
  them: workflow/visibility.py), deadlines by status, outbox
  rows by state and the age of the oldest due one;
- this process's own counters: deadlines it fired, mails it sent, failed
  (to retry) and gave up (dead), and how long its ticks took.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gongmo.workflow.core.db import read
from gongmo.workflow.core.models import DEADLINE, OUTBOX
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.outbox import states as outbox_states
from gongmo.workflow.read import visibility

if TYPE_CHECKING:
    from gongmo.workflow.deadlines.ticker import Fired
    from gongmo.workflow.engine.app import App
    from gongmo.workflow.outbox.dispatch import Delivery

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DUE_STATES = outbox_states.DUE


class Metrics:
    def __init__(self, app: App) -> None:
        self.registry = CollectorRegistry()
        self.deadlines_fired = Counter(
            "gongmo_deadlines_fired",
            "Deadlines fired by this process, by action and whether on time or caught up.",
            ["action", "timing"],
            registry=self.registry,
        )
        self.mail = Counter(
            "gongmo_mail",
            "Delivery attempts by this process: sent, failed (to retry) or dead (given up).",
            ["outcome"],
            registry=self.registry,
        )
        self.tick_seconds = Histogram(
            "gongmo_tick_duration_seconds",
            "Duration of one deadline tick (one bounded batch) in this process.",
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300),
            registry=self.registry,
        )
        self.app = app

    def fired(self, batch: list[Fired]) -> None:
        for f in batch:
            self.deadlines_fired.labels(f.action, "late" if f.late else "on_time").inc()

    def delivered(self, result: Delivery) -> None:
        self.mail.labels("sent").inc(result.sent)
        self.mail.labels("failed").inc(result.retry)
        self.mail.labels("dead").inc(result.dead)

    def render(self, who: Principal) -> bytes:
        """This process's counters and the database's counts as `who` may see them
        (a metrics token: results under embargo folded into the stage before them)."""
        counts = CollectorRegistry()
        counts.register(DatabaseCollector(self.app, who))
        return generate_latest(self.registry) + generate_latest(counts)


class DatabaseCollector(Collector):
    """Counts from the database, read when Prometheus scrapes."""

    def __init__(self, app: App, who: Principal) -> None:
        self.app = app
        self.who = who

    def describe(self) -> list[Metric]:
        return []  # read at scrape time only (no database query at registration)

    def collect(self) -> Iterator[Metric]:
        now = self.app.clock.now()
        apps = GaugeMetricFamily("gongmo_applications", "Applications by track and state.", labels=["track", "state"])
        deadlines = GaugeMetricFamily(
            "gongmo_deadlines", "Deadline rows: fired, overdue (due, not fired) or upcoming.", labels=["status"]
        )
        outbox = GaugeMetricFamily("gongmo_outbox", "Outbox rows by state.", labels=["state"])
        oldest = GaugeMetricFamily(
            "gongmo_outbox_oldest_due_seconds", "How long the oldest due (pending or retry) notice has waited."
        )
        with read(self.app.db) as conn:
            for (key, state), n in sorted(visibility.state_counts(conn, self.who).items()):
                apps.add_metric([key, state], n)
            fired = DEADLINE.c.fired_at.is_not(None)
            status = sa.case((fired, "fired"), (DEADLINE.c.due_at <= now, "overdue"), else_="upcoming")
            counts: dict[str, int] = dict(conn.execute(sa.select(status, sa.func.count()).group_by(status)).all())
            for name in ("fired", "overdue", "upcoming"):
                deadlines.add_metric([name], int(counts.get(name, 0)))
            for state, n in conn.execute(sa.select(OUTBOX.c.state, sa.func.count()).group_by(OUTBOX.c.state)):
                outbox.add_metric([state], int(n))
            first = conn.execute(
                sa.select(sa.func.min(OUTBOX.c.next_attempt_at)).where(
                    OUTBOX.c.state.in_(DUE_STATES), OUTBOX.c.next_attempt_at <= now
                )
            ).scalar()
        oldest.add_metric([], max((now - first).total_seconds(), 0.0) if first is not None else 0.0)
        yield from (apps, deadlines, outbox, oldest)
