"""Where a composed message goes: a local Maildir (the embedded default) or SMTP.

Each send returns an Outcome instead of raising, classified once here:
2xx sent; 4xx and connection trouble retry later; 5xx is permanent (dead),
with the SMTP code and text kept for the office to read.
"""

from __future__ import annotations

import asyncio
import mailbox
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiosmtplib

from notifications.compose import Envelope


@dataclass(frozen=True)
class Outcome:
    ok: bool
    permanent: bool = False
    code: int | None = None
    detail: str = ""

    @property
    def error(self) -> str:
        return f"{self.code} {self.detail}".strip() if self.code else self.detail


SENT = Outcome(ok=True)


class Transport(Protocol):
    concurrency: int

    async def send(self, envelope: Envelope) -> Outcome: ...

    async def close(self) -> None: ...


class MaildirTransport:
    """Writes each message into a Maildir any mail reader opens (mutt -f, Thunderbird)."""

    concurrency = 1

    def __init__(self, path: Path) -> None:
        self.path = path
        self._box: mailbox.Maildir | None = None

    async def send(self, envelope: Envelope) -> Outcome:
        return await asyncio.to_thread(self._write, envelope)

    def _write(self, envelope: Envelope) -> Outcome:
        if self._box is None:
            for sub in ("tmp", "new", "cur"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
            self._box = mailbox.Maildir(str(self.path), create=False)
        try:
            self._box.add(envelope.data)
        except OSError as exc:
            return Outcome(ok=False, detail=f"maildir {self.path}: {exc.strerror}")
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
            await client.login(s.username, password)
        return client

    async def send(self, envelope: Envelope) -> Outcome:
        if self._slots is None or self._idle is None:
            self._slots = asyncio.Semaphore(self.concurrency)
            self._idle = asyncio.LifoQueue()
        async with self._slots:
            self._busy += 1
            self.peak = max(self.peak, self._busy)
            try:
                return await self._send(envelope)
            finally:
                self._busy -= 1

    async def _send(self, envelope: Envelope) -> Outcome:
        assert self._idle is not None
        client: aiosmtplib.SMTP | None = None
        try:
            client = self._idle.get_nowait() if not self._idle.empty() else await self._connect()
            errors, _ = await client.sendmail(envelope.sender, list(envelope.recipients), envelope.data)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = exc.recipients[0]
            outcome = _from_code(refused.code, refused.message)
        except aiosmtplib.SMTPResponseException as exc:
            outcome = _from_code(exc.code, exc.message)
        except (TimeoutError, aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
            await _discard(client)
            return Outcome(ok=False, detail=f"{type(exc).__name__}: {exc}")
        else:
            self._idle.put_nowait(client)
            if errors:  # a recipient refused among several: never silently dropped
                addr, (code, text) = next(iter(errors.items()))
                return _from_code(code, f"{addr}: {text}")
            return SENT
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


def _from_code(code: int, text: str) -> Outcome:
    return Outcome(ok=False, permanent=500 <= code < 600, code=code, detail=str(text).strip())


async def _discard(client: aiosmtplib.SMTP | None) -> None:
    if client is not None:
        client.close()
