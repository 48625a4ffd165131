"""Running the contest over HTTP: ping, health, metrics, deadlines and the
outbox (workflow/api/operations.py)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from gongmo.notifications.compose import Envelope
from gongmo.notifications.transport import SENT, Outcome, SMTPSettings, SMTPTransport
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.config import Api
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICATION, DEADLINE, OUTBOX, TRACK
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.outbox.dispatch import Mailer
from gongmo.workflow.runtime.daemon import Daemon
from gongmo.workflow.runtime.metrics import CONTENT_TYPE
from gongmo.workflow.runtime.wiring import open_app
from gongmo.workflow.stages import presentations
from tests.conftest import CONFIG, kst
from tests.smtp_server import FaultySMTP, smtp_server_fixture  # noqa: F401
from tests.workflow import contest_2024 as sc
from tests.workflow.api.conftest import (
    ADMIN,
    APP_SEJONG,
    EV_KIM,
    SEJONG,
    TRACK_KEY,
    World,
)

HELD = "GET /tracks/{track}/outbox/held"
RELEASE = "POST /tracks/{track}/outbox/release"
SIHEUNG_MAIL = "smart@siheung.example"


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """One metric's samples from Prometheus text: sorted labels -> value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


class Bounce:
    """A transport that refuses some addresses for good (550) and takes the rest."""

    concurrency = 4

    def __init__(self, *refused: str) -> None:
        self.refused = set(refused)

    async def send(self, envelope: Envelope) -> Outcome:
        if self.refused & set(envelope.recipients):
            return Outcome(ok=False, permanent=True, code=550, detail="mailbox unavailable")
        return SENT

    async def close(self) -> None:
        return None


def deliver(daemon: Daemon, transport: Bounce) -> None:
    daemon.mailer = Mailer(daemon.app, transport, daemon.ticker.worker)  # type: ignore[arg-type]
    asyncio.run(daemon.deliver())


# -- no token -----------------------------------------------------------------------------------


@pytest.mark.routes("GET /ping")
def test_ping_needs_nothing(written: World) -> None:
    answer = written.get("/ping", None)
    assert answer.status_code == 200 and answer.json() == {"ok": True}


@pytest.mark.routes("GET /healthz")
def test_health_without_a_scheduler_is_503_with_the_database_up(written: World) -> None:
    w = written
    answer = w.get("/healthz", None)
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "down" and body["database"] == {"ok": True}
    assert body["scheduler"] == {"running": False}
    now = w.clock.now()
    due = w.count(OUTBOX, OUTBOX.c.state.in_(["pending", "retry"]), OUTBOX.c.next_attempt_at <= now)
    assert body["outbox"]["due"] == due > 0 and body["outbox"]["dead"] == 0
    oldest = min(r["next_attempt_at"] for r in w.rows(OUTBOX))
    assert body["outbox"]["oldest_due_seconds"] == round((now - oldest).total_seconds(), 1)
    overdue = w.count(DEADLINE, DEADLINE.c.fired_at.is_(None), DEADLINE.c.due_at <= now)
    assert body["deadlines"]["overdue"] == overdue


@pytest.mark.routes("GET /healthz")
def test_health_under_a_running_scheduler_is_200(written: World) -> None:
    w = written
    daemon = Daemon(w.app, "api-test")
    daemon.scheduler = SimpleNamespace(running=True)  # type: ignore[assignment]
    w.serve(daemon)
    answer = w.get("/healthz", None)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "ok" and body["scheduler"]["running"] is True and body["problems"] == []
    earliest = min(d["due_at"] for d in w.rows(DEADLINE, DEADLINE.c.fired_at.is_(None)))
    assert body["scheduler"]["next_due"] == earliest.isoformat()


@pytest.mark.routes("GET /healthz")
def test_health_shows_the_worker_s_host_and_pid_only_when_configured(written: World) -> None:
    w = written
    for shown in (False, True):
        daemon = Daemon(w.app, "gongmo-host-7.internal:4242", api=Api(health_details=True) if shown else Api())
        daemon.scheduler = SimpleNamespace(running=True)  # type: ignore[assignment]
        w.serve(daemon)
        answer = w.get("/healthz", None)
        assert answer.status_code == 200
        assert ("gongmo-host-7" in answer.text) is shown and ("4242" in answer.text) is shown
        assert answer.json()["scheduler"].get("worker") == ("gongmo-host-7.internal:4242" if shown else None)


@pytest.mark.routes("GET /healthz")
def test_health_is_degraded_while_the_smtp_transport_fails(
    written: World, smtp_server: FaultySMTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong SMTP password: the API still serves (200, not taken out of the load balancer),
    but the status is degraded with the last error; ?strict=true answers 503. Then it recovers."""
    w = written
    monkeypatch.setenv("GONGMO_TEST_SMTP_PASSWORD", "wrong")
    daemon = Daemon(w.app, "api-test")
    daemon.scheduler = SimpleNamespace(running=True)  # type: ignore[assignment]
    settings = SMTPSettings(
        host=smtp_server.host,
        port=smtp_server.port,
        security="none",
        username="gongmo",
        password_env="GONGMO_TEST_SMTP_PASSWORD",
        timeout_s=5,
    )
    daemon.mailer = Mailer(w.app, SMTPTransport(settings), daemon.ticker.worker)
    w.serve(daemon)
    due = w.count(OUTBOX, OUTBOX.c.state == "pending", OUTBOX.c.next_attempt_at <= w.clock.now())
    assert due > 0

    smtp_server.refuse_auth(535, "5.7.8 authentication credentials invalid")
    asyncio.run(daemon.deliver())
    answer = w.get("/healthz", None)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "degraded" and body["outbox"]["dead"] == 0 and body["outbox"]["due"] == due
    transport = body["transport"]
    assert transport["ok"] is False and transport["failures"] == 1
    assert transport["last_error"].startswith("535 5.7.8") and transport["paused_seconds_left"] == 5.0
    [problem] = body["problems"]
    assert problem.startswith("mail transport failing") and "535 5.7.8" in problem
    assert w.get("/healthz?strict=true", None).status_code == 503

    smtp_server.clear_faults()
    monkeypatch.setenv("GONGMO_TEST_SMTP_PASSWORD", "right")
    w.clock.advance(timedelta(seconds=5))
    asyncio.run(daemon.deliver())
    body = w.get("/healthz?strict=true", None).json()
    assert body["status"] == "ok" and body["transport"] == {"ok": True} and body["outbox"]["due"] == 0
    assert len(smtp_server.messages) == due


@pytest.mark.routes("GET /healthz", "POST /outbox/{outbox_id}/retry")
def test_health_answers_through_a_sqlite_write_lock_and_says_when_delivery_stalled(written: World) -> None:
    """Another process holds the database's write lock (BEGIN IMMEDIATE on the real file):
    nothing can be claimed or sent. /healthz answers at once (it only reads), and once mail
    has waited more than stall_factor x deliver_seconds (12 x 5 s) with no delivery pass, it
    says delivery stalled."""
    w = written
    daemon = Daemon(w.app, "api-test")
    daemon.scheduler = SimpleNamespace(running=True)  # type: ignore[assignment]
    deliver(daemon, Bounce(SIHEUNG_MAIL))  # a delivery pass: everything due goes, some notices die
    dead = [r["id"] for r in w.rows(OUTBOX, OUTBOX.c.state == "dead")]
    assert dead
    w.serve(daemon)
    w.clock.advance(timedelta(seconds=10))
    for outbox_id in dead:  # due again, now
        assert w.post(f"/outbox/{outbox_id}/retry", ADMIN).status_code == 200
    path = w.app.db.url.database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # the write lock, held
        holder.execute("UPDATE outbox SET attempts = attempts WHERE id = 1")
        w.clock.advance(timedelta(seconds=30))  # 40 s since the last pass, 30 s of it due: not yet stalled
        answer = w.get("/healthz", None)
        assert answer.json()["status"] == "ok" and not answer.json()["outbox"].get("stalled")
        w.clock.advance(timedelta(seconds=31))  # 61 s due, 71 s since the last pass: stalled
        started = time.perf_counter()
        answer = w.get("/healthz", None)
        took = time.perf_counter() - started
        assert took < 2.0, f"/healthz took {took:.1f} s under a write lock"  # a write would wait 30 s (busy_timeout)
        body = answer.json()
        assert answer.status_code == 200 and body["database"] == {"ok": True}
        assert body["status"] == "degraded" and body["outbox"]["stalled"] is True and body["outbox"]["due"] == len(dead)
        [problem] = body["problems"]
        assert problem.startswith(f"mail delivery stalled: {len(dead)} notice(s) due, the oldest for 61 s")
        assert w.get("/healthz?strict=true", None).status_code == 503
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    deliver(daemon, Bounce())  # the lock is gone: the pass goes through, health is ok again
    assert w.get("/healthz?strict=true", None).json()["status"] == "ok"


@pytest.fixture
def unreachable(tmp_path: Path, clock: FixedClock) -> Iterator[list[World]]:
    """Two apps whose database is not there: a PostgreSQL server nobody runs,
    and a SQLite file in a directory that did not exist (never initialised)."""
    worlds = []
    for url in ("postgresql+psycopg://gongmo@127.0.0.1:1/gone", f"sqlite:///{tmp_path / 'missing' / 'gongmo.db'}"):
        app = open_app(CONFIG, clock, database_url=url)
        worlds.append(World(app, clock))
    yield worlds
    for w in worlds:
        w.close()


@pytest.mark.routes("GET /healthz", "GET /ping", "GET /metrics", "GET /applications")
def test_with_the_database_down_health_says_so_and_routes_answer_503(unreachable: list[World]) -> None:
    for w in unreachable:
        health = w.get("/healthz", None)
        assert health.status_code == 503
        body = health.json()
        assert body["database"]["ok"] is False and body["status"] == "down" and body["outbox"] is None
        assert "\n" not in body["database"]["error"]
        assert w.get("/ping", None).status_code == 200
        listed = w.get("/applications", "gmo_whatever")
        assert listed.status_code == 503 and listed.json()["error"].startswith("database ")
        assert w.get("/metrics", "gmo_whatever").status_code == 503  # the token cannot be checked
    # no host name, user or path without [api] health_details = true (the daemon's log has them)
    assert unreachable[0].get("/healthz", None).json()["database"]["error"] == "unreachable"
    assert unreachable[1].get("/healthz", None).json()["database"]["error"] == "not initialised: run `gongmo init`"
    for w in unreachable:
        detailed = w.app.loaded.config.model_copy(update={"api": Api(health_details=True)})
        w.app.loaded = w.app.loaded.model_copy(update={"config": detailed})
    assert "Connection refused" in unreachable[0].get("/healthz", None).json()["database"]["error"]
    assert "not initialised" in unreachable[1].get("/healthz", None).json()["database"]["error"]


@pytest.mark.routes("GET /metrics", "POST /applications", "POST /applications/{application_id}/documents/{kind}")
def test_metrics_count_a_submission_under_its_track_and_state(opened: World) -> None:
    w = opened
    scraped = w.get("/metrics", ADMIN)
    assert scraped.status_code == 200 and scraped.headers["content-type"] == CONTENT_TYPE
    before = samples(scraped.text, "gongmo_applications")
    announced = (("state", "announcement"), ("track", TRACK_KEY))
    received = (("state", "receipt"), ("track", TRACK_KEY))
    assert before[announced] == w.count(APPLICATION, APPLICATION.c.state == "announcement") > 0
    assert received not in before
    body = {"track": TRACK_KEY, "national_krw": 10**9, "local_krw": 10**9, "project_type": "climate_crisis"}
    w.attach(SEJONG, APP_SEJONG)  # its documents first: an upload moves no application
    assert samples(w.get("/metrics", ADMIN).text, "gongmo_applications") == before
    assert w.post("/applications", APP_SEJONG, json=body).status_code == 201
    after = samples(w.get("/metrics", ADMIN).text, "gongmo_applications")
    assert after[received] == 1 and after[announced] == before[announced] - 1
    outbox = samples(w.get("/metrics", ADMIN).text, "gongmo_outbox")
    assert outbox[(("state", "pending"),)] == w.count(OUTBOX, OUTBOX.c.state == "pending")


@pytest.mark.routes("GET /metrics", "GET /healthz", "GET /outbox", "POST /outbox/{outbox_id}/retry")
def test_the_daemon_s_fired_deadlines_and_deliveries_show_in_metrics(opened: World) -> None:
    w = opened
    daemon = Daemon(w.app, "api-test")
    w.serve(daemon)
    w.clock.set(kst("2024-05-29 18:00"))  # the receipt closes
    daemon.wake()
    assert daemon.fired
    text = w.get("/metrics", ADMIN).text
    fired = samples(text, "gongmo_deadlines_fired_total")
    expected: dict[tuple[tuple[str, str], ...], float] = {}
    for f in daemon.fired:
        key = (("action", f.action), ("timing", "late" if f.late else "on_time"))
        expected[key] = expected.get(key, 0) + 1
    assert fired == expected and fired[(("action", "close_receipt"), ("timing", "on_time"))] == 1
    assert samples(text, "gongmo_applications")[(("state", "expired"), ("track", TRACK_KEY))] > 0

    due = w.count(OUTBOX, OUTBOX.c.state == "pending")
    bounced = w.count(OUTBOX, OUTBOX.c.to_addr == SIHEUNG_MAIL, OUTBOX.c.state == "pending")
    deliver(daemon, Bounce(SIHEUNG_MAIL))
    text = w.get("/metrics", ADMIN).text
    mail = samples(text, "gongmo_mail_total")
    assert mail == {(("outcome", "sent"),): due - bounced, (("outcome", "failed"),): 0, (("outcome", "dead"),): bounced}
    assert samples(text, "gongmo_outbox")[(("state", "dead"),)] == bounced > 0
    assert w.get("/healthz", None).json()["outbox"]["dead"] == bounced

    # The office sends the dead one again: pending, due now, its attempts reset.
    dead = w.get("/outbox?state=dead", ADMIN).json()["rows"]
    assert {r["to_addr"] for r in dead} == {SIHEUNG_MAIL} and "550" in dead[0]["last_error"]
    retried = w.post(f"/outbox/{dead[0]['id']}/retry", ADMIN)
    assert retried.status_code == 200 and retried.json() == {"id": dead[0]["id"], "was": "dead", "state": "pending"}
    row = w.rows(OUTBOX, OUTBOX.c.id == dead[0]["id"])[0]
    assert (row["state"], row["attempts"], row["next_attempt_at"]) == ("pending", 0, w.clock.now())
    sent = w.rows(OUTBOX, OUTBOX.c.state == "sent")[0]
    again = w.post(f"/outbox/{sent['id']}/retry", ADMIN)
    assert again.status_code == 409 and "'sent'" in again.json()["error"]
    assert w.rows(OUTBOX, OUTBOX.c.id == sent["id"])[0]["state"] == "sent"


# -- deadlines ----------------------------------------------------------------------------------


@pytest.mark.routes("GET /deadlines")
def test_deadlines_list_filters_by_track(written: World) -> None:
    w = written
    with write(w.app.db) as conn:  # the scenario kept only its own track's deadlines: plan the others again
        calendars.derive(w.app, conn)
    everything = w.get("/deadlines", ADMIN).json()
    assert len(everything) == w.count(DEADLINE) and {d["track"] for d in everything} > {TRACK_KEY}
    assert [d["due_at"] for d in everything] == sorted(d["due_at"] for d in everything)
    mine = w.get(f"/deadlines?track={TRACK_KEY}", ADMIN).json()
    with read(w.app.db) as conn:
        track_id = conn.execute(sa.select(TRACK.c.id).where(TRACK.c.key == TRACK_KEY)).scalar_one()
    assert sorted(d["id"] for d in mine) == [d["id"] for d in w.rows(DEADLINE, DEADLINE.c.track_id == track_id)]
    assert {d["track"] for d in mine} == {TRACK_KEY}
    close = next(d for d in mine if d["action"] == "close_receipt")
    assert close["due_at"] == close["fired_at"] == "2024-05-29T09:00:00Z" and close["late"] is False
    assert any(d["fired_at"] is None for d in mine)  # the presentation has not started

    unknown = w.get("/deadlines?track=no-such-track", ADMIN)
    assert unknown.status_code == 404 and unknown.json()["error"] == "no track 'no-such-track': see GET /contests"
    assert w.get("/deadlines?track=Bad Key", ADMIN).status_code == 422
    assert w.get("/deadlines", EV_KIM).status_code == 403
    assert w.get("/deadlines", APP_SEJONG).status_code == 403


# -- the outbox -----------------------------------------------------------------------------------


@pytest.mark.routes("GET /outbox")
def test_the_outbox_pages_and_filters_with_totals(written: World) -> None:
    w = written
    seen = []
    after = 0
    while True:
        page = w.get(f"/outbox?limit=40&after={after}", ADMIN).json()
        seen += page["rows"]
        if page["next_after"] is None:
            break
        after = page["next_after"]
        assert after == page["rows"][-1]["id"]
    assert [r["id"] for r in seen] == [r["id"] for r in w.rows(OUTBOX)]
    assert "body_text" not in seen[0] and {"to_addr", "notice", "state", "attempts"} <= set(seen[0])
    with read(w.app.db) as conn:
        totals = dict(conn.execute(sa.select(OUTBOX.c.state, sa.func.count()).group_by(OUTBOX.c.state)).all())
    assert page["totals"] == totals

    sejong = w.get(f"/outbox?track={TRACK_KEY}&limit=1000", ADMIN).json()["rows"]
    assert len(sejong) == w.count(OUTBOX)  # every notice of the scenario is of its track
    assert w.get("/outbox?track=hub-2024", ADMIN).json()["rows"] == []
    assert w.get("/outbox?state=sent", ADMIN).json()["rows"] == []
    assert w.get("/outbox?track=no-such-track", ADMIN).status_code == 404
    bad = w.get("/outbox?state=lost", ADMIN)
    assert bad.status_code == 422 and "state" in bad.json()["error"]
    assert w.get("/outbox?limit=1001", ADMIN).status_code == 422


@pytest.mark.routes("GET /outbox/{outbox_id}", "POST /outbox/{outbox_id}/retry")
def test_one_outbox_row_as_it_will_be_sent(written: World) -> None:
    w = written
    presentations.schedule(w.app, TRACK_KEY, sc.OFFICE)  # an invitation carries its slot as a calendar
    invitation = w.rows(OUTBOX, OUTBOX.c.notice == "presentation_invitation")[0]
    assert invitation["ics"] is not None
    shown = w.get(f"/outbox/{invitation['id']}", ADMIN)
    assert shown.status_code == 200
    body = shown.json()
    assert body["has_calendar"] is True and "ics" not in body
    assert body["body_text"] == invitation["body_text"] and body["to_addr"] == invitation["to_addr"]
    plain = w.rows(OUTBOX, OUTBOX.c.notice == "review_passed")[0]
    assert plain["ics"] is None
    assert w.get(f"/outbox/{plain['id']}", ADMIN).json()["has_calendar"] is False

    missing = w.get("/outbox/999999", ADMIN)
    assert missing.status_code == 404 and "see GET /outbox" in missing.json()["error"]
    assert w.post("/outbox/999999/retry", ADMIN).status_code == 404
    assert w.get("/outbox/0", ADMIN).status_code == 422
    for who in (EV_KIM, APP_SEJONG):
        assert w.get(f"/outbox/{plain['id']}", who).status_code == 403
        assert w.post(f"/outbox/{plain['id']}/retry", who).status_code == 403


@pytest.mark.routes("POST /outbox/retry")
def test_dead_notices_are_retried_in_bulk_over_http(opened: World) -> None:
    w = opened
    daemon = Daemon(w.app, "api-test")
    deliver(daemon, Bounce(SIHEUNG_MAIL))
    dead = w.rows(OUTBOX, OUTBOX.c.state == "dead")
    assert len(dead) == 1
    before = w.footprint()
    for who, body, code, says in (
        (EV_KIM, {"state": "dead"}, 403, ""),
        (APP_SEJONG, {"state": "dead"}, 403, ""),
        (ADMIN, {}, 422, "state"),
        (ADMIN, {"state": "sent"}, 422, "state"),
        (ADMIN, {"state": "dead", "since": "2024-05-28T11:00"}, 422, "since"),  # no zone: which instant?
        (ADMIN, {"state": "dead", "track": "no-such-track"}, 404, "no track 'no-such-track'"),
        (ADMIN, {"state": "dead", "everything": True}, 422, "everything"),
    ):
        answer = w.post("/outbox/retry", who, json=body)
        assert answer.status_code == code and says in answer.json()["error"], (body, answer.text)
        assert w.footprint() == before
    later = (w.clock.now() + timedelta(minutes=1)).isoformat()
    none = w.post("/outbox/retry", ADMIN, json={"state": "dead", "since": later, "track": TRACK_KEY})
    assert none.status_code == 200 and none.json()["retried"] == 0
    assert w.post("/outbox/retry", ADMIN, json={"state": "dead", "track": "hub-2024"}).json()["retried"] == 0
    done = w.post("/outbox/retry", ADMIN, json={"state": "dead", "track": TRACK_KEY})
    assert done.status_code == 200 and done.json() == {"state": "dead", "since": None, "track": TRACK_KEY, "retried": 1}
    row = w.rows(OUTBOX, OUTBOX.c.id == dead[0]["id"])[0]
    assert (row["state"], row["attempts"], row["next_attempt_at"]) == ("pending", 0, w.clock.now())


@pytest.mark.routes(HELD, RELEASE, "POST /tracks/{track}/selection")
def test_held_results_are_previewed_and_released_with_their_count(presentation: World) -> None:
    w = presentation
    assert w.post(f"/tracks/{TRACK_KEY}/selection", ADMIN, json={"confirm": True}).status_code == 200
    held = w.get(f"/tracks/{TRACK_KEY}/outbox/held?notice=selected", ADMIN)
    assert held.status_code == 200
    preview = held.json()
    assert preview["notice"] == "selected" and preview["count"] == 3
    assert sorted(preview["by_language"]) == ["en", "ko"]  # 천안 reads English
    assert sum(n for per in preview["by_language"].values() for n in per.values()) == 3

    before = w.footprint()
    wrong = w.post(f"/tracks/{TRACK_KEY}/outbox/release", ADMIN, json={"notice": "selected", "count": 2})
    assert wrong.status_code == 409 and "3 'selected' notices are held, not 2" in wrong.json()["error"]
    assert w.footprint() == before

    w.clock.advance(timedelta(hours=2))
    released = w.post(f"/tracks/{TRACK_KEY}/outbox/release", ADMIN, json={"notice": "selected", "count": 3})
    assert released.status_code == 200 and released.json() == {"notice": "selected", "released": 3}
    rows = w.rows(OUTBOX, OUTBOX.c.notice == "selected")
    assert {(r["state"], r["next_attempt_at"]) for r in rows} == {("pending", w.clock.now())}
    assert w.count(OUTBOX, OUTBOX.c.state == "held") == 2 + 5  # waitlisted and not_selected still wait
    assert w.get(f"/tracks/{TRACK_KEY}/outbox/held?notice=selected", ADMIN).json()["count"] == 0
    assert (
        w.post(f"/tracks/{TRACK_KEY}/outbox/release", ADMIN, json={"notice": "selected", "count": 3}).status_code == 409
    )


@pytest.mark.routes(HELD, RELEASE)
def test_held_and_release_refuse_what_they_cannot_name(presentation: World) -> None:
    w = presentation
    w.token(EV_KIM)
    before = w.footprint()
    assert w.get("/tracks/no-such-track/outbox/held?notice=selected", ADMIN).status_code == 404
    assert (
        w.post("/tracks/no-such-track/outbox/release", ADMIN, json={"notice": "selected", "count": 1}).status_code
        == 404
    )
    assert w.get(f"/tracks/{TRACK_KEY}/outbox/held", ADMIN).status_code == 422  # which notice?
    assert w.get(f"/tracks/{TRACK_KEY}/outbox/held?notice=Selected!", ADMIN).status_code == 422
    zero = w.post(f"/tracks/{TRACK_KEY}/outbox/release", ADMIN, json={"notice": "selected", "count": 0})
    assert zero.status_code == 422 and "count" in zero.json()["error"]
    assert w.get(f"/tracks/{TRACK_KEY}/outbox/held?notice=selected", EV_KIM).status_code == 403
    assert (
        w.post(f"/tracks/{TRACK_KEY}/outbox/release", EV_KIM, json={"notice": "selected", "count": 1}).status_code
        == 403
    )
    assert w.footprint() == before
    assert w.get(f"/tracks/{TRACK_KEY}/outbox/held?notice=selected", ADMIN).json() == {
        "notice": "selected",
        "count": 0,
        "by_language": {},
    }
