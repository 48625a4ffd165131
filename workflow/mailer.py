"""Deliver the outbox after commit: a small state machine per row.

pending -> sending (leased) -> sent
                            -> retry (4xx, connection trouble; exponential backoff with jitter)
                            -> dead  (5xx, or attempts exhausted; the SMTP code and text kept)
held -> pending              (`gongmo outbox release`)
pending/held/retry -> cancelled (superseded by a newer notice of the same family)

A crashed sender's rows stay in `sending` until their lease runs out, then
any daemon takes them again. A message in flight at the crash may arrive
twice; it carries the same Message-ID both times.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from notifications.compose import Envelope, HeaderInjection, compose
from notifications.transport import MaildirTransport, Outcome, SMTPSettings, SMTPTransport, Transport
from states.errors import Conflict, InvalidInput, NotFound
from workflow.app import App
from workflow.db import read, write
from workflow.models import APPLICATION, OUTBOX, TRACK

log = logging.getLogger("gongmo.mailer")

MAX_ATTEMPTS = 8
BASE_BACKOFF_S = 30.0
MAX_BACKOFF_S = 3600.0


def backoff_s(attempts: int, rng: Callable[[], float] = random.random) -> float:
    """30 s, 60 s, 120 s ... capped at an hour; full jitter on the upper half."""
    ceiling = min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2 ** max(attempts - 1, 0))
    return float(ceiling / 2 + rng() * ceiling / 2)


@dataclass
class Delivery:
    sent: int = 0
    retry: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)


def transport_for(app: App) -> Transport:
    mail = app.loaded.config.mail
    if mail.transport == "smtp":
        s = mail.smtp
        return SMTPTransport(
            SMTPSettings(
                host=s.host,
                port=s.port,
                security=s.security,
                username=s.username,
                password_env=s.password_env,
                timeout_s=s.timeout_s,
                connections=s.connections,
                local_hostname=s.local_hostname,
                ca_file=s.ca_file,
            )
        )
    return MaildirTransport(Path(app.loaded.path).resolve().parent / mail.maildir)


class Mailer:
    def __init__(self, app: App, transport: Transport, worker: str, batch: int = 200) -> None:
        self.app = app
        self.transport = transport
        self.worker = worker
        self.batch = batch
        self.lease = timedelta(seconds=app.loaded.config.mail.lease_seconds)
        self.sender = app.loaded.config.mail.sender

    async def deliver_due(self) -> Delivery:
        """Send what is due until nothing is, one leased batch at a time.

        Pipelined: while one batch is on the wire, a worker thread claims and
        composes the next, so composition stays out of the sender's way."""
        total = Delivery()
        upcoming = asyncio.create_task(asyncio.to_thread(self.prepare, self.app.clock.now()))
        while prepared := await upcoming:
            upcoming = asyncio.create_task(asyncio.to_thread(self.prepare, self.app.clock.now()))
            result = await self.send_batch(prepared)
            total.sent += result.sent
            total.retry += result.retry
            total.dead += result.dead
            total.errors += result.errors
        return total

    def prepare(self, now: datetime) -> list[tuple[dict[str, Any], Envelope | Outcome]]:
        """Claim a batch and compose each message (a refused header is an outcome)."""
        prepared: list[tuple[dict[str, Any], Envelope | Outcome]] = []
        for row in self.claim(now):
            try:
                prepared.append((row, compose(row, self.sender, now)))
            except HeaderInjection as exc:
                prepared.append((row, Outcome(ok=False, permanent=True, detail=f"refused to send: {exc}")))
        return prepared

    def claim(self, now: datetime) -> list[dict[str, Any]]:
        due = sa.or_(
            sa.and_(OUTBOX.c.state.in_(("pending", "retry")), OUTBOX.c.next_attempt_at <= now),
            sa.and_(OUTBOX.c.state == "sending", OUTBOX.c.lease_until < now),  # a sender died
        )
        with write(self.app.db) as conn:
            query = sa.select(OUTBOX).where(due).order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id).limit(self.batch)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = [dict(r) for r in conn.execute(query).mappings()]
            if rows:
                conn.execute(
                    sa.update(OUTBOX)
                    .where(OUTBOX.c.id.in_([r["id"] for r in rows]), due)
                    .values(state="sending", lease_until=now + self.lease, attempts=OUTBOX.c.attempts + 1)
                )
        for r in rows:
            r["attempts"] += 1
        return rows

    async def send_batch(self, prepared: list[tuple[dict[str, Any], Envelope | Outcome]]) -> Delivery:
        limit = asyncio.Semaphore(self.transport.concurrency)
        outcomes: list[tuple[dict[str, Any], Outcome]] = []

        async def one(row: dict[str, Any], envelope: Envelope | Outcome) -> None:
            if isinstance(envelope, Outcome):
                outcomes.append((row, envelope))
                return
            async with limit:
                outcomes.append((row, await self.transport.send(envelope)))

        await asyncio.gather(*(one(r, e) for r, e in prepared))
        return await asyncio.to_thread(self._mark, outcomes)

    def _mark(self, outcomes: list[tuple[dict[str, Any], Outcome]]) -> Delivery:
        now = self.app.clock.now()
        result = Delivery()
        with write(self.app.db) as conn:
            for row, outcome in outcomes:
                mine = sa.and_(OUTBOX.c.id == row["id"], OUTBOX.c.state == "sending")
                if outcome.ok:
                    values: dict[str, Any] = {"state": "sent", "sent_at": now, "lease_until": None, "last_error": None}
                    result.sent += 1
                elif outcome.permanent or row["attempts"] >= MAX_ATTEMPTS:
                    why = outcome.error if outcome.permanent else f"{outcome.error} (gave up after {row['attempts']})"
                    values = {"state": "dead", "lease_until": None, "last_error": why[:2000]}
                    result.dead += 1
                    result.errors.append(f"outbox {row['id']} to {row['to_addr']}: dead: {why}")
                else:
                    retry_at = now + timedelta(seconds=backoff_s(row["attempts"]))
                    values = {"state": "retry", "next_attempt_at": retry_at, "lease_until": None}
                    values["last_error"] = outcome.error[:2000]
                    result.retry += 1
                conn.execute(sa.update(OUTBOX).where(mine).values(**values))
        return result


# -- the office's commands ---------------------------------------------------------


def retry_now(app: App, outbox_id: int) -> str:
    """Send a dead or waiting row again at the next delivery."""
    now = app.clock.now()
    with write(app.db) as conn:
        row = conn.execute(sa.select(OUTBOX.c.state).where(OUTBOX.c.id == outbox_id)).first()
        if row is None:
            raise NotFound(f"no outbox row {outbox_id}: see `gongmo outbox`")
        if row.state not in ("dead", "retry", "pending"):
            raise Conflict(f"outbox {outbox_id} is '{row.state}': only dead, retry or pending rows can be retried")
        conn.execute(
            sa.update(OUTBOX)
            .where(OUTBOX.c.id == outbox_id, OUTBOX.c.state == row.state)
            .values(state="pending", next_attempt_at=now, attempts=0)
        )
    return str(row.state)


def held(app: App, track_key: str, notice: str) -> dict[str, dict[str, int]]:
    """What a release would send: counts by language and subject."""
    app.loaded.config.track(track_key)
    with read(app.db) as conn:
        query = (
            sa.select(OUTBOX.c.language, OUTBOX.c.subject, sa.func.count())
            .join(APPLICATION, APPLICATION.c.id == OUTBOX.c.application_id)
            .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
            .where(TRACK.c.key == track_key, OUTBOX.c.notice == notice, OUTBOX.c.state == "held")
            .group_by(OUTBOX.c.language, OUTBOX.c.subject)
        )
        out: dict[str, dict[str, int]] = {}
        for language, subject, n in conn.execute(query):
            out.setdefault(language, {})[subject] = int(n)
    return out


def release(app: App, track_key: str, notice: str, expected: int | None = None) -> int:
    """Let the held notices of a track go out, now. With `expected`, only if
    exactly that many are held (what the person releasing saw); else nothing."""
    app.loaded.config.track(track_key)
    now = app.clock.now()
    with write(app.db) as conn:
        track_id = conn.execute(sa.select(TRACK.c.id).where(TRACK.c.key == track_key)).scalar()
        if track_id is None:
            raise InvalidInput(f"track {track_key} is not in the database: run `gongmo init`")
        apps = sa.select(APPLICATION.c.id).where(APPLICATION.c.track_id == track_id)
        held_now = (OUTBOX.c.state == "held") & (OUTBOX.c.notice == notice) & OUTBOX.c.application_id.in_(apps)
        if expected is not None:
            count = conn.execute(sa.select(sa.func.count()).where(held_now)).scalar_one()
            if count != expected:
                raise Conflict(
                    f"{track_key}: {count} '{notice}' notices are held, not {expected}: look again before releasing"
                )
        result = conn.execute(sa.update(OUTBOX).where(held_now).values(state="pending", next_attempt_at=now))
    return int(result.rowcount)
