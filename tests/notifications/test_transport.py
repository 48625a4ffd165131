"""How the SMTP transport classifies what a real server (aiosmtpd on 127.0.0.1) answers.

A reply about one message (RCPT, DATA) is that message's: 5xx permanent, 4xx retry.
Anything about the transport (no connection, AUTH refused, MAIL FROM refused,
421/530/535 wherever they come) pauses the transport and spends nothing.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosmtplib
import pytest

from gongmo.notifications import transport as tr
from gongmo.notifications.compose import Envelope
from gongmo.notifications.transport import Outcome, SMTPSettings, SMTPTransport
from tests.smtp_server import FaultySMTP, smtp_server_fixture  # noqa: F401

TO = "smartcity@gimhae.lg.example"
OTHER = "smart@siheung.example"
PASSWORD_ENV = "GONGMO_TEST_SMTP_PASSWORD"


def envelope(to: str = TO, n: int = 1) -> Envelope:
    message_id = f"<t{n}@gongmo.test>"
    data = (
        f"From: gongmo@gongmo.example\r\nTo: {to}\r\nSubject: test {n}\r\nMessage-ID: {message_id}\r\n\r\nhello\r\n"
    ).encode()
    return Envelope(sender="gongmo@gongmo.example", recipients=(to,), data=data, message_id=message_id)


def send_all(server: FaultySMTP, *envelopes: Envelope, username: str | None = None) -> list[Outcome]:
    settings = SMTPSettings(
        host=server.host,
        port=server.port,
        security="none",
        username=username,
        password_env=PASSWORD_ENV,
        timeout_s=5,
        connections=1,
    )

    async def go() -> list[Outcome]:
        transport = SMTPTransport(settings)
        try:
            return [await transport.send(e) for e in envelopes]
        finally:
            await transport.close()

    return asyncio.run(go())


@pytest.fixture
def password(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(PASSWORD_ENV, "s3cret")
    return "s3cret"


def test_a_535_to_auth_pauses_the_transport(smtp_server: FaultySMTP, password: str) -> None:
    smtp_server.refuse_auth(535, "5.7.8 authentication credentials invalid")
    [outcome] = send_all(smtp_server, envelope(), username="gongmo")
    assert not outcome.permanent and not outcome.ok and outcome.paused
    assert outcome.code == 535 and "authentication credentials invalid" in outcome.error
    # aiosmtplib tries each offered mechanism (PLAIN, then LOGIN), each with the password of password_env
    assert smtp_server.auth_refusals == len(smtp_server.logins) >= 1
    assert set(smtp_server.logins) == {("gongmo", password)}
    assert smtp_server.messages == []


def test_the_password_from_password_env_is_sent(smtp_server: FaultySMTP, password: str) -> None:
    [outcome] = send_all(smtp_server, envelope(), username="gongmo")
    assert outcome.ok and smtp_server.logins == [("gongmo", password)]
    assert len(smtp_server.wait_for(1)) == 1


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (530, "5.7.0 authentication required"),
        (554, "5.7.1 sender rejected: access denied"),
        (553, "5.7.1 sender address not owned by user"),
        (421, "4.3.2 service shutting down"),
        (451, "4.3.0 sender check failed, try again"),
    ],
)
def test_a_refused_mail_from_pauses_the_transport(smtp_server: FaultySMTP, code: int, text: str) -> None:
    smtp_server.refuse_mail(code, text)
    [outcome] = send_all(smtp_server, envelope())
    assert not outcome.permanent and outcome.paused, outcome
    assert outcome.code == code and text in outcome.error
    assert smtp_server.mail_refusals == 1 and smtp_server.messages == []


def test_no_server_listening_pauses_the_transport(smtp_server: FaultySMTP) -> None:
    smtp_server.down()
    [outcome] = send_all(smtp_server, envelope())
    assert not outcome.permanent and outcome.paused and outcome.code is None
    assert "connect" in outcome.error and "SMTPConnectError" in outcome.error


def test_a_recipient_5xx_is_permanent_for_that_message_only(smtp_server: FaultySMTP) -> None:
    smtp_server.refuse_recipient(TO, 550, "5.1.1 mailbox unavailable")
    refused, sent = send_all(smtp_server, envelope(TO, 1), envelope(OTHER, 2))
    assert refused.permanent and not refused.paused and refused.code == 550
    assert sent.ok
    assert [m.rcpt_tos for m in smtp_server.wait_for(1)] == [[OTHER]]


def test_a_recipient_421_or_530_is_the_transport_s(smtp_server: FaultySMTP) -> None:
    smtp_server.refuse_recipient(TO, 530, "5.7.0 authentication required")
    [outcome] = send_all(smtp_server, envelope(TO))
    assert not outcome.permanent and outcome.paused and outcome.code == 530


@pytest.mark.parametrize(
    ("code", "check"),
    [
        (554, lambda o: o.permanent and not o.paused),  # the content refused: this message is dead
        (552, lambda o: o.permanent and not o.paused),
        (451, lambda o: not o.permanent and not o.paused),  # try this one again later
        (421, lambda o: not o.permanent and o.paused),  # the server is closing: the transport's trouble
    ],
)
def test_a_reply_to_data_is_the_message_s_unless_it_speaks_of_the_server(
    smtp_server: FaultySMTP, code: int, check: Callable[[Outcome], bool]
) -> None:
    smtp_server.fail_data_every(1, code, "x.y.z said no")
    [outcome] = send_all(smtp_server, envelope())
    assert check(outcome), outcome
    assert outcome.code == code and not outcome.ok


def test_a_reused_connection_the_server_dropped_is_replaced_not_reported(smtp_server: FaultySMTP) -> None:
    """The server closes idle sessions (a restart, an idle timeout): the next send takes a fresh one."""

    async def go() -> list[Outcome]:
        transport = SMTPTransport(SMTPSettings(host=smtp_server.host, port=smtp_server.port, security="none"))
        try:
            first = await transport.send(envelope(TO, 1))
            await asyncio.to_thread(smtp_server.down)  # the idle pooled connection is cut
            await asyncio.to_thread(smtp_server.up)
            second = await transport.send(envelope(TO, 2))
            return [first, second]
        finally:
            await transport.close()

    first, second = asyncio.run(go())
    assert first.ok and second.ok, second
    assert len(smtp_server.wait_for(2)) == 2


def test_the_pause_doubles_from_5_s_to_at_most_5_min_and_a_success_clears_it() -> None:
    pause = tr.Pause()
    now = datetime(2024, 5, 29, 9, 0, tzinfo=UTC)
    assert pause.health(now) == {"ok": True} and not pause.active(now)
    waits = [pause.failed(now, "535 5.7.8 no").total_seconds() for _ in range(9)]
    assert waits == [5, 10, 20, 40, 80, 160, 300, 300, 300]
    assert pause.active(now + timedelta(seconds=299)) and not pause.active(now + timedelta(seconds=300))
    health = pause.health(now)
    assert health["ok"] is False and health["failures"] == 9 and health["last_error"] == "535 5.7.8 no"
    assert health["paused_seconds_left"] == 300.0
    pause.recovered()
    assert pause.health(now) == {"ok": True} and not pause.active(now)
    assert pause.failed(now, "again").total_seconds() == 5


def test_a_maildir_that_cannot_be_written_pauses_the_transport(tmp_path: Path) -> None:
    """A file where the Maildir should be (or a full disk): the store's trouble, not the message's."""
    (tmp_path / "var").write_text("not a folder")
    transport = tr.MaildirTransport(tmp_path / "var" / "maildir")
    outcome = asyncio.run(transport.send(envelope()))
    assert not outcome.ok and not outcome.permanent and outcome.paused
    assert outcome.error.startswith(f"maildir {tmp_path / 'var' / 'maildir'}: ")


# -- a message held back at its final "." (SMTPTransport.stage) ---------------------------------

TRICKY = (
    b"From: gongmo@gongmo.example\nTo: smartcity@gimhae.lg.example\nSubject: dots\n"
    b"Message-ID: <dots@gongmo.test>\n\n.a line that starts with a dot\n..two dots\n.\nbare LF\r\n"
    b"a lone CR\rin the middle\r\n.\r\nlast line without an end"
)


def tricky(message_id: str = "<dots@gongmo.test>") -> Envelope:
    return Envelope(sender="gongmo@gongmo.example", recipients=(TO,), data=TRICKY, message_id=message_id)


def test_a_held_message_arrives_only_at_its_dot_and_byte_identical_to_aiosmtplib_s_sendmail(
    smtp_server: FaultySMTP,
) -> None:
    """Lines starting with ".", a lone "." line, bare LF and CR, no final line end: the two halves
    put on the wire exactly what aiosmtplib's data() does, and the SIZE its sendmail() declares."""

    async def go() -> tuple[int, Outcome]:
        reference = aiosmtplib.SMTP(hostname=smtp_server.host, port=smtp_server.port, local_hostname="ref")
        await reference.connect()
        await reference.sendmail(tricky().sender, list(tricky().recipients), TRICKY)
        await reference.quit()
        await asyncio.to_thread(smtp_server.wait_for, 1)
        transport = SMTPTransport(SMTPSettings(host=smtp_server.host, port=smtp_server.port, security="none"))
        try:
            held = await transport.stage(tricky())
            assert isinstance(held, tr.Held)
            # the content is on the wire; without its "." the server has accepted nothing
            stored_while_held = len(smtp_server.messages)
            return stored_while_held, await held.finish()
        finally:
            await transport.close()

    stored_while_held, outcome = asyncio.run(go())
    assert stored_while_held == 1 and outcome.ok
    reference, ours = smtp_server.wait_for(2)
    assert ours.data == reference.data == re.sub(rb"\r\n|\n|\r", b"\r\n", TRICKY) + b"\r\n"  # arrived intact
    assert ours.mail_from == reference.mail_from and ours.rcpt_tos == reference.rcpt_tos


def test_an_aborted_message_is_never_delivered_and_the_next_goes_out(smtp_server: FaultySMTP) -> None:
    """abort() in the middle of DATA: the connection is closed, so the server drops the message;
    the pool opens a fresh connection for the next one."""

    async def go() -> Outcome:
        transport = SMTPTransport(SMTPSettings(host=smtp_server.host, port=smtp_server.port, connections=1))
        try:
            held = await transport.stage(envelope(TO, 1))
            assert isinstance(held, tr.Held)
            await held.abort()
            return await transport.send(envelope(TO, 2))  # the one slot is free again
        finally:
            await transport.close()

    assert asyncio.run(go()).ok
    assert [m.message_id for m in smtp_server.wait_for(1)] == ["<t2@gongmo.test>"]
    assert smtp_server.data_attempts == 1 and smtp_server.connections == 2


def test_a_5xx_to_rcpt_refuses_the_stage_and_the_connection_goes_on(smtp_server: FaultySMTP) -> None:
    smtp_server.refuse_recipient(TO, 550, "5.1.1 mailbox unavailable")

    async def go() -> tuple[Outcome | tr.Held, Outcome]:
        transport = SMTPTransport(SMTPSettings(host=smtp_server.host, port=smtp_server.port, connections=1))
        try:
            refused = await transport.stage(envelope(TO, 1))
            return refused, await transport.send(envelope(OTHER, 2))
        finally:
            await transport.close()

    refused, sent = asyncio.run(go())
    assert isinstance(refused, Outcome) and refused.permanent and refused.code == 550
    assert sent.ok and smtp_server.connections == 1  # RSET, and the same connection sent the next
    assert [m.rcpt_tos for m in smtp_server.wait_for(1)] == [[OTHER]]


def test_an_address_in_another_script_is_sent_by_its_idna_domain_or_refused_for_that_message_only(
    smtp_server: FaultySMTP,
) -> None:
    """An applicant's address may be international (the importer's EmailStr takes both): a domain in
    Hangul goes as its punycode form; a mailbox name in Hangul cannot go without SMTPUTF8, so that
    one message is dead with a line saying why, and the next one goes out on the same transport
    (it raised UnicodeEncodeError out of the transport before, in every batch)."""
    refused, sent, plain = send_all(
        smtp_server, envelope("김@gimhae.example", 1), envelope("kim@김해.kr", 2), envelope()
    )
    assert refused.permanent and not refused.paused and "not ASCII" in refused.detail, refused
    assert sent.ok and plain.ok
    got = smtp_server.wait_for(2)
    assert [m.rcpt_tos for m in got] == [["kim@" + "김해.kr".encode("idna").decode()], [TO]]
    assert got[0].rcpt_tos == ["kim@xn--4k0bl75e.kr"]
