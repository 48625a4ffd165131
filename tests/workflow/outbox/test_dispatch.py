"""Delivery from the outbox to a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import mailbox
import sqlite3
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gongmo.notifications.transport import MaildirTransport, Outcome, SMTPSettings, SMTPTransport
from gongmo.states.lifecycle import Role
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import DatabaseError, read, write
from gongmo.workflow.core.models import OUTBOX
from gongmo.workflow.deadlines import changes as calendars
from gongmo.workflow.deadlines.ticker import Ticker
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox import dispatch as mailer
from gongmo.workflow.outbox import office
from gongmo.workflow.outbox.dispatch import Mailer
from tests.conftest import config_copy, kst
from tests.smtp_server import FaultySMTP, _Handler, smtp_server_fixture  # noqa: F401
from tests.workflow import plans

ADMIN = Actor("park", Role.ADMIN)
TRACK = "strong-small-2024"


PASSWORD_ENV = "GONGMO_TEST_SMTP_PASSWORD"


def smtp_mailer(app: App, server: FaultySMTP, connections: int = 3, username: str | None = None) -> Mailer:
    transport = SMTPTransport(
        SMTPSettings(
            host=server.host,
            port=server.port,
            security="none",
            connections=connections,
            timeout_s=5,
            username=username,
            password_env=PASSWORD_ENV,
        )
    )
    return Mailer(app, transport, "m1")


def deliver(m: Mailer) -> mailer.Delivery:
    async def go() -> mailer.Delivery:
        try:
            return await m.deliver_due()
        finally:
            await m.transport.close()

    return asyncio.run(go())


def outbox(app: App) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        return [dict(r) for r in conn.execute(sa.select(OUTBOX).order_by(OUTBOX.c.id)).mappings()]


def lifecycle(app: App, clock: FixedClock) -> None:
    """Announce, receive two plans, close, review, evaluate, select one, correct it."""
    with write(app.db) as conn:
        calendars.derive(app, conn)
    ticker = Ticker(app, "t1")
    clock.set(kst("2024-03-29 10:00"))
    ticker.run_until_idle()
    clock.set(kst("2024-05-28 10:00"))
    for code in ("41590", "41190"):  # 화성시 reads English, 부천시 Korean
        plans.submit(app, TRACK, code, 8_000_000_000, 8_000_000_000, ADMIN, "계획", "climate_crisis")
    clock.set(kst("2024-05-29 18:00"))
    ticker.run_until_idle()
    with read(app.db) as conn:
        ids = [
            r.application_id
            for r in conn.execute(sa.select(OUTBOX.c.application_id).where(OUTBOX.c.notice == "receipt_confirmation"))
        ]
    for app_id in ids:
        app.moves.apply(app_id, "pass_review", ADMIN)
    clock.set(kst("2024-06-12 18:00"))
    ticker.run_until_idle()
    clock.set(kst("2024-06-26 10:00"))
    app.moves.apply(ids[0], "select", ADMIN)
    app.moves.apply(ids[0], "waitlist", ADMIN, "선정 정정")  # corrected before publication (a reason: issue 19)
    app.moves.apply(ids[1], "select", ADMIN)


def test_every_notice_of_a_lifecycle_arrives_decoded(app: App, clock: FixedClock, smtp_server: FaultySMTP) -> None:
    lifecycle(app, clock)
    rows = outbox(app)
    assert {r["state"] for r in rows if r["notice"] in ("selected", "waitlisted")} == {"held", "cancelled"}
    first = deliver(smtp_mailer(app, smtp_server))
    assert first.dead == 0 and first.retry == 0
    assert not any(m.message["X-Gongmo-Notice"] in ("selected", "waitlisted") for m in smtp_server.messages)
    for notice in ("selected", "waitlisted"):
        assert office.release(app, TRACK, notice) >= 1
    deliver(smtp_mailer(app, smtp_server))
    rows = {r["message_id"]: r for r in outbox(app)}
    received = {m.message_id: m for m in smtp_server.messages}
    sendable = {k for k, r in rows.items() if r["state"] != "cancelled"}
    assert set(received) == sendable and all(n == 1 for n in smtp_server.received_ids().values())
    for message_id, got in received.items():
        row = rows[message_id]
        assert row["state"] == "sent"
        assert got.message["Subject"] == row["subject"]
        assert got.text.strip() == row["body_text"].strip()
        html = got.message.get_body(("html",)).get_content()
        assert html.replace("\r\n", "\n").strip() == row["body_html"].strip()
        assert got.rcpt_tos == [row["to_addr"]]
    by_notice = {(r["notice"], r["language"]) for r in rows.values() if r["state"] == "sent"}
    assert ("receipt_confirmation", "en") in by_notice and ("receipt_confirmation", "ko") in by_notice
    assert ("selected", "ko") in by_notice and ("waitlisted", "en") in by_notice
    # the corrected selection: 화성시's 'selected' was cancelled, never sent after the waitlist notice
    cancelled = [r for r in rows.values() if r["state"] == "cancelled"]
    assert [r["notice"] for r in cancelled] == ["selected"]
    assert "superseded by 'waitlisted'" in cancelled[0]["last_error"]
    english = [m for m in received.values() if rows[m.message_id]["language"] == "en"]
    assert any("Receipt confirmed" in m.message["Subject"] for m in english)
    korean = [m for m in received.values() if m.message["X-Gongmo-Notice"] == "selected"]
    assert korean and all("선정" in m.message["Subject"] for m in korean)
    calls = [m for m in received.values() if m.message["X-Gongmo-Notice"] == "call_announcement"]
    assert calls and all(any(p.get_content_type() == "text/calendar" for p in m.message.walk()) for m in calls)


def test_451s_and_an_outage_still_deliver_every_mail_exactly_once(
    app: App, clock: FixedClock, smtp_server: FaultySMTP
) -> None:
    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, ADMIN)
    expected = {r["message_id"] for r in outbox(app)}
    smtp_server.fail_data_every(3)  # a third of the messages get 451
    result = deliver(smtp_mailer(app, smtp_server))
    assert result.retry == len(expected) // 3 and result.sent == len(expected) - result.retry
    smtp_server.down()  # and then the server goes away for a while
    clock.advance(timedelta(hours=1))
    before = [(r["state"], r["attempts"]) for r in outbox(app)]
    result = deliver(smtp_mailer(app, smtp_server))
    assert result.sent == result.retry == 0 and result.paused > 0  # the transport's failure, not the rows'
    assert [(r["state"], r["attempts"]) for r in outbox(app)] == before  # no attempt spent
    smtp_server.up()
    for _ in range(10):
        clock.advance(timedelta(hours=2))
        deliver(smtp_mailer(app, smtp_server))
        if all(r["state"] == "sent" for r in outbox(app)):
            break
    counts = smtp_server.received_ids()
    assert set(counts) == expected and set(counts.values()) == {1}


def test_a_550_recipient_ends_dead_with_its_code_visible(
    app: App, clock: FixedClock, smtp_server: FaultySMTP, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, ADMIN)
    smtp_server.refuse_recipient("smartcity@gimhae.lg.example")
    result = deliver(smtp_mailer(app, smtp_server))
    assert result.dead == 1 and result.sent == len(outbox(app)) - 1
    [dead] = [r for r in outbox(app) if r["state"] == "dead"]
    assert dead["last_error"].startswith("550 5.1.1 mailbox unavailable")
    from gongmo.workflow.cli import run

    config = config_copy(tmp_path, database_url=str(app.db.url))
    assert run(["--config", str(config), "outbox", "--state", "dead", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [r["last_error"][:3] for r in shown["rows"]] == ["550"]
    assert shown["rows"][0]["to_addr"] == "smartcity@gimhae.lg.example"


def test_a_crash_between_send_and_mark_duplicates_at_most_that_message(
    app: App, clock: FixedClock, smtp_server: FaultySMTP
) -> None:
    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, ADMIN)
    expected = {r["message_id"] for r in outbox(app)}
    crashed = smtp_mailer(app, smtp_server)
    crashed.batch = 3
    rows = crashed.prepare(clock.now())

    async def send_then_die() -> None:  # sent, but the process dies before it marks them
        for row in rows:
            await crashed.transport.send(crashed.compose(row))  # type: ignore[arg-type]
        await crashed.transport.close()

    asyncio.run(send_then_die())
    assert {r["state"] for r in outbox(app) if r["id"] in {x["id"] for x in rows}} == {"sending"}
    deliver(smtp_mailer(app, smtp_server))  # the lease still holds: those three wait
    clock.advance(timedelta(seconds=app.loaded.config.mail.lease_seconds + 1))
    deliver(smtp_mailer(app, smtp_server))
    counts = smtp_server.received_ids()
    assert set(counts) == expected  # none lost
    twice = {k for k, n in counts.items() if n > 1}
    assert twice == {r["message_id"] for r in rows} and max(counts.values()) == 2
    assert {r["state"] for r in outbox(app)} == {"sent"}


def test_maildir_is_the_embedded_default(app: App, clock: FixedClock, tmp_path: Path) -> None:
    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, ADMIN)
    box = tmp_path / "maildir"
    result = deliver(Mailer(app, MaildirTransport(box), "m1"))
    messages = list(mailbox.Maildir(str(box), create=False))
    assert result.sent == len(messages) == len(outbox(app))
    subjects = {m["X-Gongmo-Notice"] for m in messages}
    assert subjects == {"call_announcement"}


def test_a_presentation_invitation_carries_its_slot(app: App, clock: FixedClock) -> None:
    from icalendar import Calendar

    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, ADMIN)
    slot = {"slot_starts": kst("2024-06-18 14:00"), "slot_ends": kst("2024-06-18 14:30"), "place": "LH 서울지역본부"}
    queued = app.moves.notify_state(TRACK, ("announcement",), "presentation_invitation", "slots-v1", slot)
    assert queued == len([r for r in outbox(app) if r["notice"] == "call_announcement"])
    row = next(r for r in outbox(app) if r["notice"] == "presentation_invitation")
    [event] = Calendar.from_ical(row["ics"]).walk("VEVENT")
    assert event.decoded("DTSTART") == slot["slot_starts"] and str(event["LOCATION"]) == "LH 서울지역본부"
    assert "2024-06-18" in row["body_text"] and "14:00" in row["body_text"]
    assert app.moves.notify_state(TRACK, ("announcement",), "presentation_invitation", "slots-v1", slot) == 0


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_starttls_verifies_the_certificate(app: App, clock: FixedClock, tmp_path: Path) -> None:
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    from tests.smtp_server import free_port

    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    port = free_port("127.0.0.1")
    server = Controller(
        Sink(), hostname="127.0.0.1", port=port, server_hostname="gongmo-test",
        tls_context=context, require_starttls=True,
    )  # fmt: skip
    server.start()
    try:
        clock.set(kst("2024-03-29 10:00"))
        app.moves.announce(TRACK, ADMIN, applicant_ids=[5])

        def with_ca(ca: Path | None) -> Mailer:
            settings = SMTPSettings(port=port, security="starttls", ca_file=str(ca) if ca else None, timeout_s=5)
            return Mailer(app, SMTPTransport(settings), "m1")

        untrusted = with_ca(None)  # the machine does not trust a self-signed certificate: the transport pauses
        refused = deliver(untrusted)
        assert refused.paused == 1 and refused.sent == refused.retry == refused.dead == 0
        error = untrusted.pause.last_error
        assert "CERTIFICATE_VERIFY_FAILED" in error or "certificate" in error.lower()
        [row] = outbox(app)
        assert (row["state"], row["attempts"], row["last_error"]) == ("pending", 0, None)
        clock.advance(timedelta(hours=1))
        assert deliver(with_ca(cert)).sent == 1  # trusted through ca_file
    finally:
        server.stop()


# -- what a crash or a stop can leave behind ---------------------------------------------


class Watched:
    """The transport of a mailer, checked as each message starts (stage) and as its final "."
    goes out (finish): the messages the server has but the outbox does not yet call sent."""

    def __init__(self, app: App, inner: Any, server: FaultySMTP) -> None:
        self.app, self.inner, self.server = app, inner, server
        self.concurrency = inner.concurrency
        self.unmarked: list[int] = []  # as each message starts: its lane's last one may still be marking
        self.at_dot: list[int] = []  # as each message's "." goes out: only the other lanes' last ones
        self.leases: list[tuple[Any, Any]] = []

    def _unmarked(self) -> int:
        with read(self.app.db) as conn:
            sent = conn.execute(sa.select(sa.func.count()).where(OUTBOX.c.state == "sent")).scalar_one()
        return len(self.server.messages) - int(sent)

    async def stage(self, envelope: Any) -> Any:
        with read(self.app.db) as conn:
            lease = conn.execute(
                sa.select(OUTBOX.c.lease_until).where(OUTBOX.c.message_id == envelope.message_id)
            ).scalar_one()
        self.unmarked.append(self._unmarked())
        self.leases.append((self.app.clock.now(), lease))
        held = await self.inner.stage(envelope)
        if isinstance(held, Outcome):
            return held
        watched = self

        class Dot:
            async def finish(self) -> Outcome:
                watched.at_dot.append(watched._unmarked())
                outcome: Outcome = await held.finish()
                return outcome

            async def abort(self) -> None:
                await held.abort()

        return Dot()

    async def send(self, envelope: Any) -> Any:
        return await self.inner.send(envelope)

    async def close(self) -> None:
        await self.inner.close()


def announce_everything(app: App, clock: FixedClock) -> int:
    clock.set(kst("2024-03-29 10:00"))
    return sum(app.moves.announce(t, ADMIN) for t in (TRACK, "hub-2024", "diffusion-2024"))


def test_each_outcome_is_marked_before_its_connection_sends_again(
    app: App, clock: FixedClock, smtp_server: FaultySMTP
) -> None:
    """A kill at any moment leaves at most one sent-but-unmarked message per connection (not a batch)."""
    total = announce_everything(app, clock)
    m = smtp_mailer(app, smtp_server, connections=3)
    watched = Watched(app, m.transport, smtp_server)
    m.transport = watched  # type: ignore[assignment]
    result = deliver(m)
    assert result.sent == total == len(watched.unmarked) == len(watched.at_dot) > 3 * 5
    assert max(watched.at_dot) <= 2  # the other two connections' last sends, at most
    assert max(watched.unmarked) <= 3  # and, while a message is transferred, its own lane's last one
    assert set(smtp_server.received_ids().values()) == {1}


def test_a_batch_that_waited_renews_its_lease_before_sending(
    app: App, clock: FixedClock, smtp_server: FaultySMTP
) -> None:
    total = announce_everything(app, clock)
    m = smtp_mailer(app, smtp_server)
    watched = Watched(app, m.transport, smtp_server)
    m.transport = watched  # type: ignore[assignment]
    prepared = m.prepare(clock.now())
    clock.advance(m.lease * 0.6)  # the batch waited: less than half its lease is left

    async def go() -> mailer.Delivery:
        try:
            return await m.send_batch(prepared)
        finally:
            await m.transport.close()

    assert asyncio.run(go()).sent == total
    assert all(lease - now >= m.lease * 0.99 for now, lease in watched.leases)  # renewed, not 40% left


def stalled_delivery(app: App, clock: FixedClock, server: FaultySMTP, m: Mailer) -> tuple[mailer.Delivery, list[int]]:
    """`m` delivers while every send takes 90% of the lease and, meanwhile, another daemon tries
    to claim; returns the delivery and the ids the other daemon took."""
    m.renew_every = 0.005
    inner = m.transport
    other = smtp_mailer(app, server)
    taken: list[int] = []

    class Stalled:
        concurrency = inner.concurrency

        async def send(self, envelope: Any) -> Any:
            clock.advance(m.lease * 0.9)  # the server takes its time
            await asyncio.sleep(0.05)  # the keeper looks meanwhile
            taken.extend(r["id"] for r in other.claim(clock.now()))  # another daemon tries
            return await inner.send(envelope)

        async def close(self) -> None:
            await inner.close()

    m.transport = Stalled()  # type: ignore[assignment]
    return deliver(m), taken


def test_a_send_that_outlasts_half_its_lease_keeps_it_and_no_other_daemon_sends_it_again(
    app: App, clock: FixedClock, smtp_server: FaultySMTP
) -> None:
    """A stalled server: the keeper renews the rows on the wire (and those waiting), so another
    daemon's claim finds nothing, during the sends and after."""
    total = announce_everything(app, clock)
    result, taken = stalled_delivery(app, clock, smtp_server, smtp_mailer(app, smtp_server, connections=2))
    assert result.sent == total and taken == []
    assert set(smtp_server.received_ids().values()) == {1}
    assert {r["state"] for r in outbox(app)} == {"sent"}


def test_a_renewal_that_fails_is_tried_again_by_the_keeper(
    app: App, clock: FixedClock, smtp_server: FaultySMTP
) -> None:
    """One connection: the failure meets the keeper, during a send; its next look renews."""
    total = announce_everything(app, clock)
    m = smtp_mailer(app, smtp_server, connections=1)
    failed = database_away_once(m)
    result, taken = stalled_delivery(app, clock, smtp_server, m)
    assert failed and result.sent == total and taken == []
    assert set(smtp_server.received_ids().values()) == {1}


def test_a_renewal_that_fails_before_a_send_holds_that_send_back_and_the_batch_goes_on(
    app: App, clock: FixedClock, smtp_server: FaultySMTP
) -> None:
    """Two connections: the failure meets a send about to start. That row is not sent; it waits
    for its lease (another daemon then takes it); every other one is sent, and none twice."""
    total = announce_everything(app, clock)
    m = smtp_mailer(app, smtp_server, connections=2)
    failed = database_away_once(m)
    result, taken = stalled_delivery(app, clock, smtp_server, m)
    assert failed and result.sent == total - 1 and len(set(taken)) == 1
    assert set(smtp_server.received_ids().values()) == {1}
    clock.advance(m.lease * 2)  # the other daemon died holding it: it comes back
    assert deliver(smtp_mailer(app, smtp_server)).sent == 1
    assert len(smtp_server.received_ids()) == total and set(smtp_server.received_ids().values()) == {1}


def database_away_once(m: Mailer) -> list[Any]:
    """The first renewal of `m` fails as a lost database would; returns the failures."""
    renew, failed = m.renew, []

    def away_once(rows: list[dict[str, Any]], now: Any) -> set[int]:
        if not failed:
            failed.append(now)
            raise DatabaseError("database sqlite:///gongmo.db: disk I/O error")
        return renew(rows, now)

    m.renew = away_once  # type: ignore[method-assign]
    return failed


def test_a_batch_whose_lease_ran_out_is_left_to_the_sender_that_took_it(
    app: App, clock: FixedClock, smtp_server: FaultySMTP
) -> None:
    total = announce_everything(app, clock)
    slow = smtp_mailer(app, smtp_server)
    prepared = slow.prepare(clock.now())
    clock.advance(slow.lease + timedelta(seconds=1))
    taken = smtp_mailer(app, smtp_server).claim(clock.now())  # another daemon takes the expired rows
    assert len(taken) == total

    async def go() -> mailer.Delivery:
        try:
            return await slow.send_batch(prepared)
        finally:
            await slow.transport.close()

    assert asyncio.run(go()).sent == 0 and smtp_server.messages == []
    assert {r["state"] for r in outbox(app)} == {"sending"}  # still the other's, under its lease


def test_a_stop_finishes_the_sends_on_the_wire_and_hands_back_the_rest(
    app: App, clock: FixedClock, smtp_server: FaultySMTP
) -> None:
    total = announce_everything(app, clock)
    m = smtp_mailer(app, smtp_server, connections=2)
    m.batch = 10  # a second batch is claimed while the first is sent
    inner = m.transport

    class StopAfterFive:
        concurrency = inner.concurrency
        sent = 0

        async def send(self, envelope: Any) -> Any:
            outcome = await inner.send(envelope)
            StopAfterFive.sent += 1
            if StopAfterFive.sent == 5:
                m.stop()  # SIGTERM arrives
            return outcome

        async def close(self) -> None:
            await inner.close()

    m.transport = StopAfterFive()  # type: ignore[assignment]
    result = deliver(m)
    rows = outbox(app)
    assert 5 <= result.sent <= 6 and result.sent == len(smtp_server.messages)  # 2 connections: 5 or 6
    assert sum(r["state"] == "sent" for r in rows) == result.sent
    assert {r["state"] for r in rows if r["state"] != "sent"} == {"pending"}  # none waits for a lease
    assert {r["attempts"] for r in rows if r["state"] == "pending"} == {0}
    again = deliver(smtp_mailer(app, smtp_server))
    assert result.sent + again.sent == total and set(smtp_server.received_ids().values()) == {1}


def test_rows_claimed_again_as_the_transport_failed_are_counted_paused_once(
    app: App, clock: FixedClock, smtp_server: FaultySMTP, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next batch is claimed while one is on the wire. When the wire fails, its rows go back;
    if the pipelined claim runs after that (a loaded machine), it claims the same rows and hands
    them back again. Each notice is still one row paused, not two (this was flaky: 36 of 18)."""
    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, ADMIN)
    smtp_server.down()
    m = smtp_mailer(app, smtp_server)
    handed_back = threading.Event()
    real_prepare, real_hand_back = m.prepare, m.hand_back
    calls = 0

    def prepare(now: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # the pipelined claim: let it run only once the failed batch went back
            assert handed_back.wait(30)
        return real_prepare(now)

    def hand_back(rows: list[dict[str, Any]]) -> int:
        returned = real_hand_back(rows)
        handed_back.set()
        return returned

    monkeypatch.setattr(m, "prepare", prepare)
    monkeypatch.setattr(m, "hand_back", hand_back)
    first = deliver(m)
    assert calls == 2  # the second claim did run, after the hand-back, and took the same rows
    assert (first.sent, first.retry, first.dead, first.paused) == (0, 0, 0, 18)
    assert {(r["state"], r["attempts"]) for r in outbox(app)} == {("pending", 0)}


# -- the transport's own failures pause it; the rows wait untouched ------------------------------


def untouched(app: App) -> list[tuple[Any, ...]]:
    return [(r["id"], r["state"], r["attempts"], r["next_attempt_at"], r["last_error"]) for r in outbox(app)]


@pytest.mark.parametrize("fault", ["535 to AUTH", "530 to MAIL FROM", "no server"])
def test_a_transport_failure_pauses_delivery_and_spends_no_attempt(
    app: App, clock: FixedClock, smtp_server: FaultySMTP, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """A wrong password (535), a relay that wants a login (530) or no relay at all: the 18
    notices of the call are not the cause. None is marked dead or retried; the transport waits 5 s, then
    10 s, ...; once it works, each notice goes out once, on its first attempt."""
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, ADMIN)
    before = untouched(app)
    n = len(before)
    assert n == 18
    if fault == "535 to AUTH":
        smtp_server.refuse_auth(535, "5.7.8 authentication credentials invalid")
    elif fault == "530 to MAIL FROM":
        smtp_server.refuse_mail(530, "5.7.0 authentication required")
    else:
        smtp_server.down()
    m = smtp_mailer(app, smtp_server, username="gongmo" if fault == "535 to AUTH" else None)
    first = deliver(m)
    assert untouched(app) == before, "no row may change: not dead, not retry, no attempt spent"
    assert (first.dead, first.retry, first.sent, first.paused) == (0, 0, 0, n)
    assert m.pause.failing and m.pause.until == clock.now() + timedelta(seconds=5)
    code = {"535 to AUTH": "535", "530 to MAIL FROM": "530", "no server": "SMTPConnectError"}[fault]
    assert code in m.pause.last_error

    tried = (smtp_server.auth_refusals, smtp_server.mail_refusals, smtp_server.connections)
    assert deliver(m) == mailer.Delivery()  # paused: nothing claimed, nothing tried
    assert (smtp_server.auth_refusals, smtp_server.mail_refusals, smtp_server.connections) == tried
    clock.advance(timedelta(seconds=5))
    assert deliver(m).paused == n and m.pause.until == clock.now() + timedelta(seconds=10)  # doubled
    assert untouched(app) == before

    smtp_server.clear_faults()
    smtp_server.up()
    clock.advance(timedelta(seconds=10))
    monkeypatch.setenv(PASSWORD_ENV, "right")
    assert deliver(m).sent == n and not m.pause.failing
    assert {(r["state"], r["attempts"]) for r in outbox(app)} == {("sent", 1)}
    assert set(smtp_server.received_ids().values()) == {1}


def test_the_next_batch_claimed_while_the_transport_failed_goes_back_untouched(
    app: App, clock: FixedClock, smtp_server: FaultySMTP
) -> None:
    """Delivery is pipelined: the next batch is claimed while one is sent. When the
    transport fails, that batch goes back too (its attempt restored), and is counted."""
    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, ADMIN)
    before = untouched(app)
    smtp_server.refuse_mail(421, "4.3.2 closing")
    m = smtp_mailer(app, smtp_server, connections=1)
    m.batch = 5
    # The next batch's claim runs beside the first batch's sends: have it done before they fail (on a
    # loaded machine it could run after the first batch went back and claim the same five again).
    claimed, real_prepare, real_compose, claims = threading.Event(), m.prepare, m.compose, []

    def prepare(now: Any) -> Any:
        rows = real_prepare(now)
        claims.append(rows)
        if len(claims) == 2:
            claimed.set()
        return rows

    def compose(row: dict[str, Any]) -> Any:
        assert claimed.wait(30)
        return real_compose(row)

    m.prepare, m.compose = prepare, compose  # type: ignore[method-assign]
    result = deliver(m)
    assert untouched(app) == before and result.paused == 10 and smtp_server.mail_refusals == 1


def test_a_550_recipient_beside_a_working_transport_is_dead_for_that_row_only(
    app: App, clock: FixedClock, smtp_server: FaultySMTP
) -> None:
    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, ADMIN)
    smtp_server.refuse_recipient("smartcity@gimhae.lg.example", 550, "5.1.1 mailbox unavailable")
    m = smtp_mailer(app, smtp_server)
    result = deliver(m)
    assert (result.dead, result.sent, result.paused) == (1, len(outbox(app)) - 1, 0) and not m.pause.failing


# -- a password that is not there refuses the start -----------------------------------------


def smtp_config(tmp_path: Path, app: App, server: FaultySMTP, username: str = "gongmo") -> Path:
    return config_copy(
        tmp_path,
        ('transport = "maildir"', 'transport = "smtp"'),
        ("port = 587", f"port = {server.port}"),
        ('security = "starttls"', 'security = "none"'),
        ('# username = "gongmo"', f'username = "{username}"'),
        ('password_env = "GONGMO_SMTP_PASSWORD"', f'password_env = "{PASSWORD_ENV}"'),
        database_url=str(app.db.url.render_as_string(hide_password=False)),
    )


@pytest.mark.parametrize("value", [None, ""])
def test_an_unset_password_env_refuses_delivery_and_the_daemon_s_start_in_one_line(
    app: App,
    clock: FixedClock,
    smtp_server: FaultySMTP,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    value: str | None,
) -> None:
    from gongmo.workflow.cli import run
    from gongmo.workflow.core.clock import SystemClock
    from gongmo.workflow.core.config import Api, ConfigError
    from gongmo.workflow.runtime.daemon import Daemon
    from gongmo.workflow.runtime.wiring import open_app

    if value is None:
        monkeypatch.delenv(PASSWORD_ENV, raising=False)
    else:
        monkeypatch.setenv(PASSWORD_ENV, value)
    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, ADMIN)
    before = untouched(app)
    config = smtp_config(tmp_path, app, smtp_server)
    other = open_app(config, SystemClock(), database_url=str(app.db.url.render_as_string(hide_password=False)))
    try:
        with pytest.raises(ConfigError) as refused:
            mailer.transport_for(other)
        message = str(refused.value)
        assert "\n" not in message and f"password_env = '{PASSWORD_ENV}'" in message
        assert ("not set" if value is None else "empty") in message and "export it" in message

        daemon = Daemon(other, "d1", api=Api(enabled=False))
        stop = asyncio.Event()
        stop.set()
        with pytest.raises(ConfigError, match=PASSWORD_ENV):  # before the scheduler starts or the API serves
            asyncio.run(daemon.serve(stop))
        assert daemon.scheduler is None or not daemon.scheduler.running
    finally:
        other.db.dispose()

    code = run(["--config", str(config), "deliver"])
    out, err = capsys.readouterr()
    assert code == 1 and err.count("\n") == 1 and err.startswith(f"error: [mail.smtp] password_env = '{PASSWORD_ENV}'")
    assert "Traceback" not in err and out == ""
    assert untouched(app) == before and smtp_server.logins == [] and smtp_server.messages == []


# -- the next message is transferred while the last one's mark commits; its "." waits -------------


class _SeesRcpt(_Handler):
    """The test server's hooks, and an event once the `nth` RCPT TO has been answered."""

    def __init__(self, owner: FaultySMTP, nth: int) -> None:
        super().__init__(owner)
        self.nth, self.rcpts, self.seen = nth, 0, threading.Event()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        reply = await super().handle_RCPT(server, session, envelope, address, rcpt_options)
        self.rcpts += 1
        if self.rcpts >= self.nth:
            self.seen.set()
        return reply


@pytest.fixture
def watched_server() -> Iterator[tuple[FaultySMTP, _SeesRcpt]]:
    """A test SMTP server that tells when the second message's RCPT TO has arrived."""
    server = FaultySMTP()
    hooks = server._handler = _SeesRcpt(server, nth=2)
    server.up()
    try:
        yield server, hooks
    finally:
        server.down()


def first_mark_held(
    m: Mailer, server: FaultySMTP, hooks: _SeesRcpt, monkeypatch: pytest.MonkeyPatch, fail: bool = False
) -> list[tuple[bool, int]]:
    """The first mark of `m` commits only once the server has seen the next message's RCPT TO (or
    after 10 s: then it never did), in the worker thread (not on the event loop); it records whether
    it did and how many messages the server had accepted then, and fails as a lost database would if
    `fail`."""
    real, held = m._mark, []
    real_sent = mailer.MarkLine.mark_sent

    async def mark_sent(line: mailer.MarkLine, sent: Any, now: Any) -> bool:
        return bool(held) and await real_sent(line, sent, now)  # the first: through _mark, below

    monkeypatch.setattr(mailer.MarkLine, "mark_sent", mark_sent)

    def mark(outcomes: Any, line: Any, wait: bool = True) -> Any:
        if not held:
            if not wait:  # on the event loop: this one goes to the worker thread, where it may wait
                return None
            held.append((hooks.seen.wait(10), len(server.messages)))
            if fail:
                raise DatabaseError("database sqlite:///gongmo.db: disk I/O error")
        return real(outcomes, line, wait)

    m._mark = mark  # type: ignore[method-assign]
    return held


def test_the_next_message_is_on_the_wire_before_the_last_mark_commits_and_accepted_after(
    app: App,
    clock: FixedClock,
    watched_server: tuple[FaultySMTP, _SeesRcpt],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One connection: message 2's MAIL, RCPT, DATA and content go out while message 1's mark
    commits; the server accepts message 2 only after that (its "." waits for the mark)."""
    server, hooks = watched_server
    clock.set(kst("2024-03-29 10:00"))
    total = app.moves.announce(TRACK, ADMIN)
    m = smtp_mailer(app, server, connections=1)
    held = first_mark_held(m, server, hooks, monkeypatch)
    assert deliver(m).sent == total
    assert held == [(True, 1)]  # message 2's RCPT arrived during message 1's mark; only message 1 accepted
    assert set(server.received_ids().values()) == {1} and len(server.messages) == total


def test_a_mark_that_fails_keeps_the_next_message_from_being_delivered_and_hands_it_back_unspent(
    app: App,
    clock: FixedClock,
    watched_server: tuple[FaultySMTP, _SeesRcpt],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Message 2 is transferred but for its "."; message 1's mark fails: the "." is never sent, the
    connection is dropped (the server discards message 2), and row 2 goes back with no attempt spent."""
    server, hooks = watched_server
    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, ADMIN)
    m = smtp_mailer(app, server, connections=1)
    held = first_mark_held(m, server, hooks, monkeypatch, fail=True)
    with pytest.raises(DatabaseError):
        deliver(m)
    assert held == [(True, 1)]  # message 2 was on the wire when the mark failed
    first, second, *rest = outbox(app)
    assert [msg.message_id for msg in server.messages] == [first["message_id"]]  # never message 2
    assert (first["state"], first["attempts"]) == ("sending", 1)  # sent, unmarked: its lease runs out
    assert {(r["state"], r["attempts"], r["last_error"]) for r in [second, *rest]} == {("pending", 0, None)}


def test_a_5xx_to_the_next_message_s_rcpt_makes_it_dead_and_leaves_the_last_one_sent(
    app: App,
    clock: FixedClock,
    watched_server: tuple[FaultySMTP, _SeesRcpt],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, hooks = watched_server
    clock.set(kst("2024-03-29 10:00"))
    total = app.moves.announce(TRACK, ADMIN)
    first, second, *_ = outbox(app)
    server.refuse_recipient(second["to_addr"], 550, "5.1.1 mailbox unavailable")
    dead = sum(r["to_addr"] == second["to_addr"] for r in outbox(app))
    m = smtp_mailer(app, server, connections=1)
    held = first_mark_held(m, server, hooks, monkeypatch)
    result = deliver(m)
    assert held == [(True, 1)]  # refused while message 1's mark was committing
    assert (result.sent, result.dead, result.retry, result.paused) == (total - dead, dead, 0, 0)
    rows = {r["id"]: r for r in outbox(app)}
    assert rows[first["id"]]["state"] == "sent"
    assert rows[second["id"]]["state"] == "dead" and rows[second["id"]]["last_error"].startswith("550 ")


def test_a_mark_that_finds_sqlite_s_write_lock_taken_waits_in_a_thread_not_on_the_event_loop(
    app: App, clock: FixedClock, watched_server: tuple[FaultySMTP, _SeesRcpt]
) -> None:
    """A mark runs on the event loop only if SQLite's write lock is free at once. Another writer
    holds it from the first claim on: message 1's mark waits for it in a worker thread, and the
    loop meanwhile transfers message 2 (its RCPT reaches the server); the lock is let go only then."""
    if app.db.dialect.name != "sqlite":
        pytest.skip("SQLite's write lock")
    server, hooks = watched_server
    clock.set(kst("2024-03-29 10:00"))
    total = app.moves.announce(TRACK, ADMIN)
    other = sqlite3.connect(str(app.db.url.database), isolation_level=None, check_same_thread=False)
    m = smtp_mailer(app, server, connections=1)
    real_prepare, seen_while_locked = m.prepare, []

    def release_after_rcpt() -> None:
        seen_while_locked.append(hooks.seen.wait(10))
        other.execute("ROLLBACK")

    def prepare(now: Any) -> Any:
        rows = real_prepare(now)
        if not seen_while_locked and not other.in_transaction:  # after the first claim: another writer
            other.execute("BEGIN IMMEDIATE")
            threading.Thread(target=release_after_rcpt, daemon=True).start()
        return rows

    m.prepare = prepare  # type: ignore[method-assign]
    try:
        result = deliver(m)
    finally:
        other.close()
    assert seen_while_locked == [True]
    assert result.sent == total and set(server.received_ids().values()) == {1}


def test_a_claim_gives_each_row_as_it_was_read_in_due_order_and_leases_it(
    app: App, clock: FixedClock, tmp_path: Path
) -> None:
    """On both databases (on PostgreSQL one UPDATE ... RETURNING read on the driver's cursor): the
    batch is the first rows due by (next_attempt_at, id), each the mapping SQLAlchemy reads of the row
    now, but for its state, which is the one it was claimed from; the next claim takes the next rows."""
    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, ADMIN)
    with read(app.db) as conn:
        due = [r.id for r in conn.execute(sa.select(OUTBOX.c.id).order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id))]
    assert len(due) >= 6
    m = Mailer(app, MaildirTransport(tmp_path / "box"), "claims", batch=3)
    first, second = m.claim(clock.now()), m.claim(clock.now())
    assert [r["id"] for r in first] == due[:3] and [r["id"] for r in second] == due[3:6]
    by_id = {r["id"]: r for r in outbox(app)}
    for row in first + second:
        stored = dict(by_id[row["id"]])
        assert (stored["state"], row["state"], row["claimed_from"]) == ("sending", "pending", "pending")
        assert stored["attempts"] == row["attempts"] == 1
        assert stored["lease_until"] == row["lease_until"] == clock.now() + m.lease
        assert {k: v for k, v in row.items() if k not in ("state", "claimed_from")} == {
            k: v for k, v in stored.items() if k != "state"
        }
