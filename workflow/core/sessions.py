"""Browser sessions of the console and the portals: server-side rows, only their SHA-256 stored.

A session id is 32 random bytes (`secrets.token_urlsafe`), sent to the browser in an HttpOnly
cookie and stored as its SHA-256 (as API tokens are: nothing to guess that a slow hash would
protect). A session ends after IDLE without a request, at its absolute limit (LIFETIME after it
was opened), or when revoked. It resolves to the same Principal an API token of its role and
subject would (tokens.principal), so every page reads through the same visibility rule as the API.

The CSRF token of a session is derived from the session id (HMAC-free: SHA-256 of a prefix and
the id), so it needs no storage, changes with the session, and cannot be computed by a page that
cannot read the HttpOnly cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.states.errors import NotFound
from gongmo.states.lifecycle import Role
from gongmo.workflow.core import tokens
from gongmo.workflow.core.db import write
from gongmo.workflow.core.models import WEB_SESSION
from gongmo.workflow.core.tokens import Parts, Principal

IDLE = timedelta(minutes=30)
LIFETIME = timedelta(hours=12)
# last_seen_at is written at most this often (a write per page would serialise readers on SQLite).
TOUCH_EVERY = timedelta(minutes=1)


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def csrf_token(raw_session: str) -> str:
    """The CSRF token of a session: derived from its id, so it is never stored."""
    return hashlib.sha256(b"gongmo-csrf:" + raw_session.encode("utf-8")).hexdigest()


def csrf_ok(raw_session: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(csrf_token(raw_session), given)


@dataclass(frozen=True)
class Session:
    id: int
    role: Role
    subject: str
    principal: Principal
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime


def open_session(app: Parts, role: str, subject: str, client: str | None = None) -> str:
    """A new session for (role, subject); returns the raw session id (the cookie's value)."""
    now = app.clock.now()
    raw = secrets.token_urlsafe(32)
    with write(app.db) as conn:
        tokens.principal(conn, role, subject)  # refuses a subject that stands for no one
        conn.execute(
            sa.insert(WEB_SESSION).values(
                session_sha256=digest(raw),
                role=role,
                subject=subject,
                created_at=now,
                last_seen_at=now,
                expires_at=now + LIFETIME,
                client=(client or "")[:64] or None,
            )
        )
    return raw


def authenticate(conn: Connection, raw: str, now: datetime) -> Session | None:
    """The live session of a cookie value, or None (unknown, revoked, idle too long, or past its limit)."""
    row = conn.execute(sa.select(WEB_SESSION).where(WEB_SESSION.c.session_sha256 == digest(raw))).mappings().first()
    if row is None or row["revoked_at"] is not None:
        return None
    if now >= row["expires_at"] or now - row["last_seen_at"] >= IDLE:
        return None
    try:
        who = tokens.principal(conn, row["role"], row["subject"])
    except NotFound:
        return None  # the account was removed since
    who = Principal(0, who.role, who.subject, who.applicant_id, who.evaluator_id)
    return Session(
        int(row["id"]), who.role, who.subject, who, row["created_at"], row["last_seen_at"], row["expires_at"]
    )


def needs_touch(session: Session, now: datetime) -> bool:
    return now - session.last_seen_at >= TOUCH_EVERY


def touch(conn: Connection, session_id: int, now: datetime) -> None:
    conn.execute(sa.update(WEB_SESSION).where(WEB_SESSION.c.id == session_id).values(last_seen_at=now))


def revoke(conn: Connection, session_id: int, now: datetime) -> None:
    conn.execute(
        sa.update(WEB_SESSION)
        .where(WEB_SESSION.c.id == session_id, WEB_SESSION.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
