"""A real SMTP server on 127.0.0.1 for tests, with faults switchable from the test thread.

``FaultySMTP`` wraps ``aiosmtpd.controller.Controller`` (its own event loop in its own thread).
Nothing is mocked: clients talk SMTP over TCP to it. Faults:

- ``refuse_recipient(addr)``: RCPT TO for that address gets e.g. ``550 5.1.1 mailbox unavailable``;
- ``fail_data_every(n)``: every n-th DATA since the call (1-based, across connections) gets ``451`` and is not stored;
- ``delay_data(seconds)``: DATA is answered only after that long;
- ``refuse_auth(code, text)``: every AUTH is answered e.g. ``535 5.7.8 authentication credentials invalid``
  (AUTH PLAIN and LOGIN are offered without TLS; by default any credentials are accepted and kept in ``logins``);
- ``refuse_mail(code, text)``: every MAIL FROM is answered e.g. ``530 5.7.0 authentication required``;
- ``down()`` / ``up()``: stop listening (connections refused, open sessions dropped) and listen again on the same port.

Use the ``smtp_server`` fixture (``from tests.smtp_server import smtp_server_fixture  # noqa: F401``; see its
docstring) or build one by hand::

    with FaultySMTP() as server:
        ...
"""

from __future__ import annotations

import asyncio
import collections
import email
import email.policy
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HOST = "127.0.0.1"
SERVER_HOSTNAME = "gongmo-test"
READY_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage = field(repr=False)
    message_id: str | None

    @property
    def text(self) -> str:
        """The text/plain body with "\\n" line ends. ``message`` is parsed from the wire bytes, so an 8bit
        body's ``get_content()`` keeps the "\\r\\n" of the SMTP stream (the email package does not convert)."""
        body = self.message.get_body(preferencelist=("plain",))
        if body is None:
            raise LookupError("no text/plain part")
        return str(body.get_content()).replace("\r\n", "\n")


def free_port(host: str = HOST) -> int:
    """A port the kernel just handed out (bound, then released) on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _Handler:
    """The aiosmtpd handler. aiosmtpd treats EVERY attribute named ``handle_*`` as a hook
    (found with ``dir()``), so this class holds only hooks; all state lives on the FaultySMTP."""

    def __init__(self, owner: FaultySMTP) -> None:
        self._owner = owner

    async def handle_HELO(self, server: Any, session: Any, envelope: Any, hostname: str) -> str:
        self._owner._note_greeting(session)
        session.host_name = hostname  # a HELO hook must set this itself, or MAIL gets "503 send HELO first"
        return f"250 {server.hostname}"

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self._owner._note_greeting(session)
        session.host_name = hostname  # same as HELO: the hook replaces aiosmtpd's own bookkeeping
        return responses

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]) -> str:
        refusal = self._owner._mail_refusal()
        if refusal is not None:
            return refusal
        envelope.mail_from = address  # a MAIL hook must record the sender itself
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        refusal = self._owner._refusal_for(address)
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)  # a RCPT hook must record accepted recipients itself
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        delay_s, failure = self._owner._begin_data()
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        if failure is not None:
            return failure
        self._owner._store(envelope)
        return "250 Message accepted for delivery"


class FaultySMTP:
    """A real SMTP server on ``host:port`` (port fixed for the object's life, across down()/up())."""

    def __init__(self, host: str = HOST, port: int | None = None, ready_timeout: float = READY_TIMEOUT_S) -> None:
        self.host = host
        self.port = free_port(host) if port is None else port
        self.ready_timeout = ready_timeout
        self._lock = threading.Lock()
        self._handler = _Handler(self)
        self._controller: Controller | None = None
        self._messages: list[ReceivedMessage] = []
        self._refused: dict[str, str] = {}
        self._fail_every = 0
        self._fail_reply = ""
        self._data_since_fault = 0
        self._delay_s = 0.0
        self._auth_reply: str | None = None
        self._mail_reply: str | None = None
        self.logins: list[tuple[str, str]] = []
        self.auth_refusals = 0
        self.mail_refusals = 0
        self.data_attempts = 0
        self.data_failures = 0
        self.rcpt_refusals = 0
        self.connections = 0
        self.handler_errors: list[BaseException] = []

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def is_up(self) -> bool:
        return self._controller is not None

    def up(self) -> None:
        """Start listening (no-op when already up). A stopped Controller cannot be restarted
        (its loop is closed on stop), so every up() builds a new one on the same port."""
        if self._controller is not None:
            return
        controller = Controller(
            self._handler,
            hostname=self.host,
            port=self.port,
            server_hostname=SERVER_HOSTNAME,
            ready_timeout=self.ready_timeout,
            auth_require_tls=False,  # a test server on loopback: AUTH offered in the clear
            authenticator=self._authenticate,
        )
        try:
            controller.start()
        except BaseException:
            # e.g. the port was taken while down: the server thread has already exited
            if controller._thread is not None:
                controller._thread.join(self.ready_timeout)
            if not controller.loop.is_closed() and not controller.loop.is_running():
                controller.loop.close()
            raise
        self._controller = controller

    def down(self) -> None:
        """Stop listening: new connections are refused, open sessions are cut. No-op when down."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    start = up
    stop = down

    def __enter__(self) -> FaultySMTP:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- faults (call from the test thread at any time) ----------------------------------------------

    def refuse_recipient(self, addr: str, code: int = 550, text: str = "5.1.1 mailbox unavailable") -> None:
        """RCPT TO:<addr> (case-insensitive) is answered ``f"{code} {text}"``; others are accepted."""
        with self._lock:
            self._refused[addr.strip().strip("<>").lower()] = f"{code} {text}"

    def accept_recipient(self, addr: str) -> None:
        """Undo refuse_recipient(addr)."""
        with self._lock:
            self._refused.pop(addr.strip().strip("<>").lower(), None)

    def fail_data_every(self, n: int, code: int = 451, text: str = "4.3.0 try again later") -> None:
        """Every n-th DATA from now on (1-based, across connections: n=3 fails the 3rd, 6th, ...)
        is answered ``f"{code} {text}"`` and not stored. ``n=0`` turns it off."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        with self._lock:
            self._fail_every = n
            self._fail_reply = f"{code} {text}"
            self._data_since_fault = 0

    def delay_data(self, seconds: float) -> None:
        """Answer each DATA only after ``seconds`` (0 turns it off)."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds}")
        with self._lock:
            self._delay_s = float(seconds)

    def refuse_auth(self, code: int = 535, text: str = "5.7.8 authentication credentials invalid") -> None:
        """Every AUTH from now on is answered ``f"{code} {text}"`` (the credentials are still kept in ``logins``)."""
        with self._lock:
            self._auth_reply = f"{code} {text}"

    def refuse_mail(self, code: int = 530, text: str = "5.7.0 authentication required") -> None:
        """Every MAIL FROM from now on is answered ``f"{code} {text}"``."""
        with self._lock:
            self._mail_reply = f"{code} {text}"

    def clear_faults(self) -> None:
        with self._lock:
            self._auth_reply = None
            self._mail_reply = None
            self._refused.clear()
            self._fail_every = 0
            self._data_since_fault = 0
            self._delay_s = 0.0

    # -- what arrived ------------------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot (copy) of the stored messages, in arrival order."""
        with self._lock:
            return list(self._messages)

    def received_ids(self) -> collections.Counter[str | None]:
        """Message-ID -> how many times it arrived (a duplicate delivery shows up as a count > 1)."""
        with self._lock:
            return collections.Counter(m.message_id for m in self._messages)

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[ReceivedMessage]:
        """Poll until at least ``count`` messages are stored; return them, or raise TimeoutError."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = self.messages
            if len(got) >= count:
                return got
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(got)} of {count} messages arrived within {timeout_s} s")
            time.sleep(0.01)

    # -- called from the handler (the controller's thread) -----------------------------------------

    def _note_greeting(self, session: Any) -> None:
        # Counted at the first HELO/EHLO of a session: the Controller's own start-up probe connects
        # and reads the banner without greeting, so counting in connection_made would be off by one.
        if session.host_name is None:
            with self._lock:
                self.connections += 1

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        with self._lock:
            if isinstance(auth_data, LoginPassword):
                self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
            if self._auth_reply is not None:
                self.auth_refusals += 1
                return AuthResult(success=False, handled=False, message=self._auth_reply)
        return AuthResult(success=True, auth_data=auth_data)

    def _mail_refusal(self) -> str | None:
        with self._lock:
            if self._mail_reply is not None:
                self.mail_refusals += 1
            return self._mail_reply

    def _refusal_for(self, address: str) -> str | None:
        with self._lock:
            reply = self._refused.get(address.lower())
            if reply is not None:
                self.rcpt_refusals += 1
            return reply

    def _begin_data(self) -> tuple[float, str | None]:
        with self._lock:
            self.data_attempts += 1
            self._data_since_fault += 1
            failure = None
            if self._fail_every and self._data_since_fault % self._fail_every == 0:
                self.data_failures += 1
                failure = self._fail_reply
            return self._delay_s, failure

    def _store(self, envelope: Any) -> None:
        try:
            data = bytes(envelope.original_content)
            message = email.message_from_bytes(data, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            message_id = message["Message-ID"]
            received = ReceivedMessage(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                data=data,
                message=message,
                message_id=None if message_id is None else str(message_id).strip(),
            )
        except Exception as exc:  # aiosmtpd would only turn this into a "500" reply; keep it for the test
            with self._lock:
                self.handler_errors.append(exc)
            raise
        with self._lock:
            self._messages.append(received)


@pytest.fixture(name="smtp_server")
def smtp_server_fixture() -> Iterator[FaultySMTP]:
    """A started FaultySMTP on a free 127.0.0.1 port; stopped (and checked for handler errors) at teardown.

    The fixture is named ``smtp_server``. Import it into a test module as
    ``from tests.smtp_server import smtp_server_fixture  # noqa: F401``: ruff is then clean. Importing the
    alias ``smtp_server`` also works, but ruff reports F811 at every test parameter named ``smtp_server``.
    """
    server = FaultySMTP()
    server.up()
    try:
        yield server
    finally:
        server.down()
    assert not server.handler_errors, f"the test SMTP server's handler failed: {server.handler_errors!r}"


smtp_server = smtp_server_fixture
