"""Where a composed message goes: a local Maildir (the embedded default) or SMTP.

Each send returns an Outcome instead of raising, classified once here, as
RFC 5321 and mature senders (Postfix, exim) do:

- 2xx: sent.
- A reply about this message's recipient or content (RCPT, DATA): 4xx retries
  this row later, 5xx is permanent for this row (dead), the code and text kept
  for the office to read.
- Anything about the transport itself: no connection, a timeout, a dropped
  connection, TLS, a refused greeting or EHLO, AUTH refused (535), a refused
  sender (MAIL: 530, 553, 554, 421 ...), 421/530/535 at any stage, or any
  exception before the server accepted the message. The message is not at
  fault: the outcome is `paused`, the mailer hands the row back untouched (no
  attempt spent) and the whole transport waits (`Pause`: 5 s doubling to 5 min).
"""

from __future__ import annotations

import asyncio
import functools
import mailbox
import os
import ssl
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import aiosmtplib
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import PERIOD_REGEX, SMTPProtocol, normalize_message_line_endings
from aiosmtplib.typing import SMTPStatus

from gongmo.notifications.compose import Envelope


@dataclass(frozen=True)
class Outcome:
    ok: bool
    permanent: bool = False
    code: int | None = None
    detail: str = ""
    # The transport failed, not this message: the row goes back as it was and the transport pauses.
    paused: bool = False

    @property
    def error(self) -> str:
        return f"{self.code} {self.detail}".strip() if self.code else self.detail


SENT = Outcome(ok=True)

# Replies that speak of the server or the session, not of one message, at whatever stage they come:
# 421 service closing, 530 authentication required, 534/535/538 authentication refused or needs TLS.
TRANSPORT_CODES = frozenset({421, 530, 534, 535, 538})
# A sender (MAIL FROM) refusal that is about this one message: 552 its size (the SIZE= the client declared).
MESSAGE_SIZE_CODE = 552
PAUSE_FIRST_S = 5.0
PAUSE_MAX_S = 300.0


def paused(detail: str, code: int | None = None) -> Outcome:
    return Outcome(ok=False, code=code, detail=detail, paused=True)


class Pause:
    """The transport's own trouble: after a failure, nothing is sent until `until`
    (5 s, doubling with each further failure, at most 5 min); a success clears it.
    Times come from the caller's clock (the engine's, injectable)."""

    def __init__(self, first_s: float = PAUSE_FIRST_S, max_s: float = PAUSE_MAX_S) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.failures = 0  # in a row, since the last success
        self.until: datetime | None = None
        self.since: datetime | None = None  # the first failure of this run
        self.last_error = ""
        self.last_error_at: datetime | None = None

    def failed(self, now: datetime, error: str) -> timedelta:
        """Record a failure; return how long the transport now waits."""
        wait = timedelta(seconds=min(self.max_s, self.first_s * 2 ** min(self.failures, 30)))
        self.failures += 1
        self.since = self.since or now
        self.until = now + wait
        self.last_error = error
        self.last_error_at = now
        return wait

    def recovered(self) -> None:
        self.failures = 0
        self.until = None
        self.since = None

    @property
    def failing(self) -> bool:
        """The last outcome was a transport failure (waiting, or about to try again)."""
        return self.failures > 0

    def active(self, now: datetime) -> bool:
        """Nothing may be sent now."""
        return self.until is not None and now < self.until

    def health(self, now: datetime) -> dict[str, Any]:
        if not self.failing:
            return {"ok": True}
        return {
            "ok": False,
            "failures": self.failures,
            "failing_since": self.since.isoformat() if self.since else None,
            "paused_until": self.until.isoformat() if self.until else None,
            "paused_seconds_left": round(max((self.until - now).total_seconds(), 0.0), 1) if self.until else 0.0,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
        }


class Transport(Protocol):
    concurrency: int

    async def send(self, envelope: Envelope) -> Outcome: ...

    async def close(self) -> None: ...


class Staged(Protocol):
    """A message transferred but not yet accepted (`stage`): `finish` has it accepted, `abort` drops it."""

    async def finish(self) -> Outcome: ...

    async def abort(self) -> None: ...


async def stage(transport: Transport, envelope: Envelope) -> Outcome | Staged:
    """All of the message but what makes the server accept it (SMTPTransport.stage); a transport
    that cannot hold a message back (Maildir) does all of it at `finish`."""
    staging = getattr(transport, "stage", None)
    if staging is None:
        return _Whole(transport, envelope)
    held: Outcome | Staged = await staging(envelope)
    return held


class _Whole:
    def __init__(self, transport: Transport, envelope: Envelope) -> None:
        self.transport = transport
        self.envelope = envelope

    async def finish(self) -> Outcome:
        return await self.transport.send(self.envelope)

    async def abort(self) -> None:
        pass


class MaildirTransport:
    """Writes each message into a Maildir any mail reader opens (mutt -f, Thunderbird)."""

    concurrency = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self._box: mailbox.Maildir | None = None

    async def send(self, envelope: Envelope) -> Outcome:
        return await asyncio.to_thread(self._write, envelope)

    def _write(self, envelope: Envelope) -> Outcome:
        try:
            if self._box is None:
                for sub in ("tmp", "new", "cur"):
                    (self.path / sub).mkdir(parents=True, exist_ok=True)
                self._box = mailbox.Maildir(str(self.path), create=False)
            self._box.add(envelope.data)
        except OSError as exc:  # a full disk, a wrong permission, a file in the way: the store's trouble
            return paused(f"maildir {self.path}: {exc.strerror or exc}")
        return SENT

    async def close(self) -> None:
        self._box = None


@dataclass(frozen=True)
class SMTPSettings:
    host: str = "127.0.0.1"
    port: int = 25
    security: str = "none"  # none | starttls | tls
    username: str | None = None
    password_env: str | None = None  # the name of the environment variable holding the password
    timeout_s: float = 30.0
    connections: int = 4
    local_hostname: str = "gongmo.localdomain"
    ca_file: str | None = None


class SMTPTransport:
    """A bounded pool of reused aiosmtplib connections."""

    def __init__(self, settings: SMTPSettings) -> None:
        self.settings = settings
        self.concurrency = max(1, settings.connections)
        self._idle: asyncio.LifoQueue[aiosmtplib.SMTP] | None = None
        self._slots: asyncio.Semaphore | None = None
        self.opened = 0  # connections opened, for the benchmark's "at the bound" check
        self.peak = 0
        self._busy = 0

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        context = None
        if s.security in ("starttls", "tls"):
            context = ssl.create_default_context(cafile=s.ca_file)
        return aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            timeout=s.timeout_s,
            local_hostname=s.local_hostname,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",
            tls_context=context,
        )

    async def _connect(self) -> aiosmtplib.SMTP:
        client = self._client()
        await client.connect()
        self.opened += 1
        s = self.settings
        if s.username:
            password = os.environ.get(s.password_env or "", "")
            try:
                await client.login(s.username, password)
            except BaseException:
                client.close()
                raise
        return client

    async def send(self, envelope: Envelope) -> Outcome:
        """The whole message in one call: `stage`, then `Held.finish`."""
        held = await self.stage(envelope)
        return held if isinstance(held, Outcome) else await held.finish()

    async def stage(self, envelope: Envelope) -> Outcome | Held:
        """Transfer the message but for its final ".": MAIL FROM, RCPT TO, DATA and the whole
        dot-stuffed content. A server accepts a message only at that ".", so until `Held.finish`
        sends it nothing is delivered; the connection (and its slot of the pool) is the Held's
        until then. A refusal before the content (MAIL, RCPT, DATA) is the Outcome instead."""
        if self._slots is None or self._idle is None:
            self._slots = asyncio.Semaphore(self.concurrency)
            self._idle = asyncio.LifoQueue()
        await self._slots.acquire()
        self._busy += 1
        self.peak = max(self.peak, self._busy)
        try:
            held = await self._stage(envelope)
        except BaseException:
            self._release()
            raise
        if isinstance(held, Outcome):
            self._release()
        return held

    def _release(self) -> None:
        assert self._slots is not None
        self._busy -= 1
        self._slots.release()

    async def _stage(self, envelope: Envelope) -> Outcome | Held:
        assert self._idle is not None
        for address in (envelope.sender, *envelope.recipients):  # nothing half-sent for a bad one
            try:
                _quoted(address)
            except ValueError as exc:  # it would raise at MAIL or RCPT, in every batch, for ever
                return Outcome(ok=False, permanent=True, detail=f"{address!r} cannot be sent: {exc}")
        payload, size = _content(envelope.data)
        while not self._idle.empty():  # a reused connection the server dropped while idle: try the next
            held = await self._begin(envelope, payload, size, self._idle.get_nowait())
            if not (isinstance(held, Outcome) and held.paused and held.detail.startswith(STALE)):
                return held
        return await self._begin(envelope, payload, size, None)

    async def _begin(
        self, envelope: Envelope, payload: bytes, size: int, client: aiosmtplib.SMTP | None
    ) -> Outcome | Held:
        """MAIL, RCPT, DATA and the content on `client` (a fresh connection if None). A paused
        outcome from a reused connection that was dropped starts with STALE: the caller tries a
        fresh one. The commands go through aiosmtplib's execute_command; their replies are checked,
        and refusals raised, as its mail(), rcpt() and data() do, then classified as before."""
        reused = client is not None
        stage = "mail"
        refused: dict[str, aiosmtplib.SMTPRecipientRefused] = {}
        try:
            if client is None:
                stage = "connect"
                client = await self._connect()
                stage = "mail"
            if client.is_ehlo_or_helo_needed:
                await _greet(client)
            options = [b"size=%d" % size] if client.supports_extension("size") else []
            reply = await client.execute_command(b"MAIL", b"FROM:" + _quoted(envelope.sender), *options)
            if reply.code != SMTPStatus.completed:
                raise aiosmtplib.SMTPSenderRefused(reply.code, reply.message, envelope.sender)
            for address in envelope.recipients:
                reply = await client.execute_command(b"RCPT", b"TO:" + _quoted(address))
                if reply.code not in (SMTPStatus.completed, SMTPStatus.will_forward):
                    refused[address] = aiosmtplib.SMTPRecipientRefused(reply.code, reply.message, address)
            if len(refused) == len(envelope.recipients):
                raise aiosmtplib.SMTPRecipientsRefused(list(refused.values()))
            reply = await client.execute_command(b"DATA")
            if reply.code != SMTPStatus.start_input:
                raise aiosmtplib.SMTPDataError(reply.code, reply.message)
            stage = "data"
            _protocol(client).write(payload)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            outcome = _from_code(first.code, first.message)
        except aiosmtplib.SMTPSenderRefused as exc:
            outcome = _from_code(exc.code, exc.message, sender=True)
        except aiosmtplib.SMTPResponseException as exc:
            # connect (greeting), EHLO, STARTTLS and AUTH replies are the transport's; DATA's are the message's
            before = stage == "connect" or not isinstance(exc, aiosmtplib.SMTPDataError)
            outcome = _from_code(exc.code, exc.message, sender=before)
        except (TimeoutError, aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            # not accepted: no connection, TLS, a timeout, a dropped connection
            await _discard(client)
            dropped = reused and isinstance(exc, aiosmtplib.SMTPServerDisconnected | ConnectionError)
            return paused(f"{STALE if dropped else ''}{stage}: {type(exc).__name__}: {exc}".strip())
        except BaseException:  # cancelled on the way: the session is in an unknown state
            await _discard(client)
            raise
        else:
            return Held(self, client, refused)
        return await self._refused(outcome, client, reused)

    async def _refused(self, outcome: Outcome, client: aiosmtplib.SMTP | None, reused: bool) -> Outcome:
        """A reply that refused the message before its content: the session is reset and kept,
        unless the reply speaks of the transport."""
        assert self._idle is not None
        if outcome.paused:
            await _discard(client)
            if reused and outcome.code == 421:  # the server closed an idle session: a fresh one may do
                return replace(outcome, detail=f"{STALE}{outcome.detail}")
            return outcome
        if client is not None and client.is_connected:
            try:
                await client.rset()
                self._idle.put_nowait(client)
            except (aiosmtplib.SMTPException, OSError):
                await _discard(client)
        return outcome

    async def close(self) -> None:
        while self._idle is not None and not self._idle.empty():
            client = self._idle.get_nowait()
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()


STALE = "reused connection: "


def _from_code(code: int, text: str, sender: bool = False) -> Outcome:
    """A reply about a message (RCPT, DATA): 5xx permanent, else retry. A reply before
    the message's own commands (greeting, EHLO, AUTH, MAIL FROM) or one of
    TRANSPORT_CODES at any stage: the transport pauses (a 552 to MAIL is the message's size)."""
    detail = str(text).strip()
    if code in TRANSPORT_CODES or (sender and code != MESSAGE_SIZE_CODE):
        return paused(detail, code)
    return Outcome(ok=False, permanent=500 <= code < 600, code=code, detail=detail)


async def _discard(client: aiosmtplib.SMTP | None) -> None:
    if client is not None:
        client.close()


class Held:
    """A message on the wire but for its final ".": nothing is delivered until `finish`.
    Either `finish` or `abort` gives the connection back (to the pool, or closed)."""

    def __init__(self, transport: SMTPTransport, client: aiosmtplib.SMTP, refused: dict[str, Any]) -> None:
        self.transport = transport
        self.client = client
        self.refused = refused  # some of several recipients refused at RCPT: reported after the "."
        self._open = True

    async def finish(self) -> Outcome:
        """Send the final "." and read the server's reply: the message is accepted (or refused) now."""
        if not self._open:
            raise RuntimeError("this message was already finished or aborted")
        self._open = False
        client, transport = self.client, self.transport
        assert transport._idle is not None
        try:
            try:
                protocol = _protocol(client)
                protocol.write(b".\r\n")
                reply = await protocol.read_response(timeout=transport.settings.timeout_s)
            except (TimeoutError, aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
                # a timeout, a dropped connection, a malformed reply: the message may have been
                # accepted (it carries the same Message-ID when it is sent again)
                await _discard(client)
                return paused(f"data: {type(exc).__name__}: {exc}".strip())
            except BaseException:  # cancelled while the server answers: the session is in an unknown state
                await _discard(client)
                raise
            if reply.code != SMTPStatus.completed:  # the content refused (a 421 pauses and closes)
                return await transport._refused(_from_code(reply.code, reply.message), client, reused=False)
            transport._idle.put_nowait(client)
            if self.refused:  # a recipient refused among several: never silently dropped
                address, refusal = next(iter(self.refused.items()))
                return _from_code(refusal.code, f"{address}: {refusal.message}")
            return SENT
        finally:
            transport._release()

    async def abort(self) -> None:
        """Never send the ".": the connection is closed (in the middle of DATA, only closing
        ends the transaction), so the server discards what it has of the message."""
        if not self._open:
            return
        self._open = False
        try:
            await _discard(self.client)
        finally:
            self.transport._release()


def _content(data: bytes) -> tuple[bytes, int]:
    """The content as aiosmtplib's data() puts it on the wire, without the final ".\\r\\n"
    (line ends made CRLF, a final CRLF added, lines starting with "." doubled), and the SIZE
    its sendmail() declares (the octets before the dot-stuffing, RFC 1870). A composed message
    has LF line ends only and no line starting with ".": found at memchr speed, its LFs become
    CRLF in one bytes.replace instead of the two regular expressions' passes (~50 us for 10 KB)."""
    if b"\r" not in data and b"\n." not in data and not data.startswith(b"."):
        normalized = data.replace(b"\n", b"\r\n")
        if not normalized.endswith(b"\r\n"):
            normalized += b"\r\n"
        return normalized, len(normalized)
    normalized = normalize_message_line_endings(data)
    return PERIOD_REGEX.sub(b"..", normalized), len(normalized)


@functools.lru_cache(maxsize=256)
def _quoted(address: str) -> bytes:
    """The address as aiosmtplib's mail() and rcpt() put it on the command line, parsed once per
    address (the sender of every message is one). A domain in another script goes as its IDNA
    (punycode) form, which every server takes; a mailbox name that is not ASCII would need
    SMTPUTF8, which gongmo does not use: ValueError, naming the fix."""
    quoted = quote_address(address)
    local, at, domain = quoted.rpartition("@")
    if at and not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"its domain is not a valid international domain name ({exc})") from None
        quoted = f"{local}@{domain}"
    if not quoted.isascii():
        raise ValueError(
            "the part before the @ is not ASCII (it would need SMTPUTF8);"
            " ask for an address in ASCII letters and correct the contact"
        )
    return quoted.encode("ascii")


async def _greet(client: aiosmtplib.SMTP) -> None:
    """EHLO, or HELO if the server refuses it: what aiosmtplib's mail() does first on a new session."""
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        if not client.is_connected:
            raise
        await client.helo()


def _protocol(client: aiosmtplib.SMTP) -> SMTPProtocol:
    if client.protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Server not connected")
    return client.protocol
