"""The test SMTP server itself, driven by plain smtplib over TCP."""

from __future__ import annotations

import smtplib
import socket
import time
from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from tests.smtp_server import FaultySMTP, smtp_server_fixture  # noqa: F401

SENDER = "gongmo@example.org"


def make_message(to: str | list[str] = "office@gangnam.go.kr", subject: str = "[공모] 접수 확인") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = to if isinstance(to, str) else ", ".join(to)
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="gongmo.test")
    msg.set_content("신청서가 접수되었습니다.\n")
    return msg


def send(server: FaultySMTP, msg: EmailMessage) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP(server.host, server.port, timeout=5) as client:
        return client.send_message(msg)


def test_message_arrives_with_korean_subject_decoded(smtp_server: FaultySMTP) -> None:
    msg = make_message()
    assert send(smtp_server, msg) == {}

    (got,) = smtp_server.wait_for(1, timeout_s=2)
    assert got.message["Subject"] == "[공모] 접수 확인"
    assert b"[\xea\xb3\xb5\xeb\xaa\xa8]" not in got.data.split(b"\r\n\r\n", 1)[0]  # RFC 2047-encoded on the wire
    assert got.message.get_content() == "신청서가 접수되었습니다.\r\n"  # wire line ends kept by the email package
    assert got.text == "신청서가 접수되었습니다.\n"
    assert got.mail_from == SENDER
    assert got.rcpt_tos == ["office@gangnam.go.kr"]
    assert got.message_id == msg["Message-ID"]
    assert smtp_server.received_ids() == {msg["Message-ID"]: 1}
    assert smtp_server.data_attempts == 1
    assert smtp_server.connections == 1


def test_connections_counted_once_per_session(smtp_server: FaultySMTP) -> None:
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as client:
        client.send_message(make_message())
        client.ehlo()  # a second greeting on the same session is not a new connection
        client.send_message(make_message())
    send(smtp_server, make_message())
    assert smtp_server.connections == 2
    assert len(smtp_server.messages) == 3
    assert smtp_server.connections == 2


def test_refused_recipient_gets_550(smtp_server: FaultySMTP) -> None:
    smtp_server.refuse_recipient("closed@jongno.go.kr")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        send(smtp_server, make_message("closed@jongno.go.kr"))
    assert info.value.recipients == {"closed@jongno.go.kr": (550, b"5.1.1 mailbox unavailable")}
    assert smtp_server.messages == []
    assert smtp_server.rcpt_refusals == 1
    assert smtp_server.data_attempts == 0


def test_refused_recipient_among_two_other_receives(smtp_server: FaultySMTP) -> None:
    smtp_server.refuse_recipient("closed@jongno.go.kr", code=551, text="5.1.6 moved")
    refused = send(smtp_server, make_message(["closed@jongno.go.kr", "open@mapo.go.kr"]))
    assert refused == {"closed@jongno.go.kr": (551, b"5.1.6 moved")}
    (got,) = smtp_server.messages
    assert got.rcpt_tos == ["open@mapo.go.kr"]
    assert smtp_server.rcpt_refusals == 1


def test_fail_data_every_third(smtp_server: FaultySMTP) -> None:
    smtp_server.fail_data_every(3)
    outcomes: list[int] = []
    sent_ids: list[str] = []
    for _ in range(9):
        msg = make_message()
        try:
            send(smtp_server, msg)  # a new connection each time: the count spans connections
        except smtplib.SMTPDataError as exc:
            assert exc.smtp_code == 451
            assert exc.smtp_error == b"4.3.0 try again later"
            outcomes.append(451)
        else:
            outcomes.append(250)
            sent_ids.append(msg["Message-ID"])
    assert outcomes == [250, 250, 451] * 3
    assert [m.message_id for m in smtp_server.messages] == sent_ids
    assert len(sent_ids) == 6
    assert (smtp_server.data_attempts, smtp_server.data_failures) == (9, 3)

    smtp_server.fail_data_every(0)
    for _ in range(3):
        send(smtp_server, make_message())
    assert len(smtp_server.messages) == 9


def test_fail_data_every_counts_across_one_connection(smtp_server: FaultySMTP) -> None:
    smtp_server.fail_data_every(2)
    codes = []
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5) as client:
        for _ in range(4):
            try:
                client.send_message(make_message())
                codes.append(250)
            except smtplib.SMTPDataError as exc:
                codes.append(exc.smtp_code)
    assert codes == [250, 451, 250, 451]
    assert len(smtp_server.messages) == 2


def test_down_refuses_then_up_serves_on_same_port(smtp_server: FaultySMTP) -> None:
    port = smtp_server.port
    send(smtp_server, make_message())
    smtp_server.down()
    assert not smtp_server.is_up
    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(smtp_server.host, port, timeout=2)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((smtp_server.host, port), timeout=2)

    smtp_server.up()
    assert smtp_server.is_up
    assert smtp_server.port == port
    msg = make_message()
    assert send(smtp_server, msg) == {}
    assert smtp_server.received_ids()[msg["Message-ID"]] == 1
    assert len(smtp_server.messages) == 2  # what arrived before the restart is kept


def test_down_cuts_an_open_session(smtp_server: FaultySMTP) -> None:
    client = smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=5)
    try:
        client.ehlo()
        smtp_server.down()
        with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError)):
            client.send_message(make_message())
    finally:
        client.close()
    assert smtp_server.messages == []


def test_delay_data(smtp_server: FaultySMTP) -> None:
    smtp_server.delay_data(0.2)
    started = time.monotonic()
    send(smtp_server, make_message())
    assert time.monotonic() - started >= 0.2
    assert len(smtp_server.messages) == 1

    smtp_server.delay_data(0)
    send(smtp_server, make_message())
    assert len(smtp_server.messages) == 2


def test_wait_for_times_out(smtp_server: FaultySMTP) -> None:
    with pytest.raises(TimeoutError):
        smtp_server.wait_for(1, timeout_s=0.05)


def test_context_manager_and_fixed_port() -> None:
    with FaultySMTP() as server:
        assert server.is_up
        send(server, make_message())
        assert server.messages[0].message["Subject"] == "[공모] 접수 확인"
    assert not server.is_up
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, server.port), timeout=2)
