"""Prometheus metrics (workflow/metrics.py): this process's counters and the
database's counts read at scrape time."""

from __future__ import annotations

from pathlib import Path

import prometheus_client
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from gongmo.states.lifecycle import Role
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import DatabaseError, read, write
from gongmo.workflow.core.models import APPLICATION, DEADLINE, OUTBOX, TRACK
from gongmo.workflow.core.tokens import Principal
from gongmo.workflow.deadlines.ticker import Fired
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox.dispatch import Delivery
from gongmo.workflow.runtime.metrics import Metrics
from gongmo.workflow.runtime.wiring import open_app
from tests.conftest import CONFIG, kst
from tests.workflow import contest_2024 as sc

pytestmark = pytest.mark.sqlite_only  # the counts are plain SQL; the API tests scrape them on PostgreSQL too

OFFICE = Principal(0, Role.ADMIN, "office")  # the office's token sees every count

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(metrics: Metrics) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(metrics.render(OFFICE).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def of(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def fired(action: str, late: bool) -> Fired:
    at = kst("2024-05-29 18:00")
    return Fired(f"t:{action}", action, "receipt_closes", at, at, late, "done")


def test_each_metrics_has_its_own_registry(app: App) -> None:
    one, two = Metrics(app), Metrics(app)
    one.fired([fired("close_receipt", False)])
    one.delivered(Delivery(sent=2))
    one.tick_seconds.observe(0.02)
    assert of(scrape(one), "gongmo_mail_total")[(("outcome", "sent"),)] == 2
    assert of(scrape(one), "gongmo_tick_duration_seconds_count") == {(): 1}
    assert of(scrape(two), "gongmo_mail_total") == {}
    assert of(scrape(two), "gongmo_deadlines_fired_total") == {}
    assert "gongmo_mail_total" not in prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()


def test_fired_deadlines_are_counted_by_action_and_timing(app: App) -> None:
    metrics = Metrics(app)
    metrics.fired([fired("close_receipt", False), fired("reminder", True), fired("reminder", True)])
    metrics.fired([])
    metrics.fired([fired("close_receipt", True)])
    assert of(scrape(metrics), "gongmo_deadlines_fired_total") == {
        (("action", "close_receipt"), ("timing", "on_time")): 1,
        (("action", "reminder"), ("timing", "late")): 2,
        (("action", "close_receipt"), ("timing", "late")): 1,
    }


def test_deliveries_add_up_by_outcome(app: App) -> None:
    metrics = Metrics(app)
    metrics.delivered(Delivery(sent=5, retry=2, dead=1, errors=["x", "y"]))
    metrics.delivered(Delivery(sent=1))
    assert of(scrape(metrics), "gongmo_mail_total") == {
        (("outcome", "sent"),): 6,
        (("outcome", "failed"),): 2,
        (("outcome", "dead"),): 1,
    }


def test_database_counts_are_read_at_each_scrape(app: App, clock: FixedClock, tmp_path: Path) -> None:
    sc.prepare(app, clock, tmp_path)  # the 2024 call announced: one application and one notice per invitee
    metrics = Metrics(app)
    first = scrape(metrics)
    with read(app.db) as conn:
        by_state = {
            (("state", s), ("track", k)): float(n)
            for k, s, n in conn.execute(
                sa.select(TRACK.c.key, APPLICATION.c.state, sa.func.count())
                .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
                .group_by(TRACK.c.key, APPLICATION.c.state)
            )
        }
        deadlines = conn.execute(sa.select(DEADLINE.c.fired_at, DEADLINE.c.due_at)).all()
        oldest = conn.execute(sa.select(sa.func.min(OUTBOX.c.next_attempt_at))).scalar_one()
        pending = conn.execute(sa.select(sa.func.count()).where(OUTBOX.c.state == "pending")).scalar_one()
    assert of(first, "gongmo_applications") == by_state
    assert by_state[(("state", "announcement"), ("track", sc.TRACK))] > 0
    fired_n = sum(1 for f, _ in deadlines if f is not None)
    assert of(first, "gongmo_deadlines") == {
        (("status", "fired"),): fired_n,
        (("status", "overdue"),): sum(1 for f, d in deadlines if f is None and d <= clock.now()),
        (("status", "upcoming"),): sum(1 for f, d in deadlines if f is None and d > clock.now()),
    }
    assert of(first, "gongmo_outbox") == {(("state", "pending"),): pending}
    assert of(first, "gongmo_outbox_oldest_due_seconds") == {(): (clock.now() - oldest).total_seconds()}

    # At the receipt's opening, nothing ticked since: the notices waited longer; the deadlines due are overdue.
    clock.set(kst("2024-05-27 09:00"))
    later = scrape(metrics)
    assert of(later, "gongmo_outbox_oldest_due_seconds") == {(): (clock.now() - oldest).total_seconds()}
    overdue = of(later, "gongmo_deadlines")[(("status", "overdue"),)]
    assert overdue > of(first, "gongmo_deadlines")[(("status", "overdue"),)]
    assert of(later, "gongmo_deadlines")[(("status", "fired"),)] == fired_n

    # Sent mail is no longer due: the age of the oldest due notice falls to 0.
    with write(app.db) as conn:
        conn.execute(sa.update(OUTBOX).values(state="sent", sent_at=clock.now()))
    done = scrape(metrics)
    assert of(done, "gongmo_outbox_oldest_due_seconds") == {(): 0.0}
    assert of(done, "gongmo_outbox") == {(("state", "sent"),): pending}


def test_registering_reads_nothing_and_a_scrape_of_a_down_database_says_so(clock: FixedClock) -> None:
    app = open_app(CONFIG, clock, database_url="postgresql+psycopg://gongmo@127.0.0.1:1/gone")
    try:
        metrics = Metrics(app)  # no query at registration: a daemon starts before its database answers
        metrics.fired([fired("close_receipt", False)])
        with pytest.raises(DatabaseError, match="Connection refused"):
            metrics.render(OFFICE)
    finally:
        app.db.dispose()
