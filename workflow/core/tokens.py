"""API tokens: created from the CLI, shown once, stored as their SHA-256.

A token is 32 random bytes (`secrets.token_urlsafe`), so a plain SHA-256 is
enough to store it: there is nothing to guess that a slow password hash
would protect. A token has one role and one subject:

- admin: the person (ministry or LH staff) named in every audit row it writes;
- evaluator: the committee member's e-mail (must be on the committee);
- applicant: the local government's code (must be an imported applicant);
- metrics: the monitoring system that scrapes /metrics (free text, e.g. prometheus).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as DbEngine

from gongmo.states.errors import Conflict, InvalidInput, NotFound
from gongmo.states.lifecycle import Role
from gongmo.workflow.core.actors import Actor, acting_for
from gongmo.workflow.core.clock import Clock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import API_TOKEN, APPLICANT, EVALUATOR


class Parts(Protocol):
    """What the token functions take of the app: its database and its clock."""

    @property
    def db(self) -> DbEngine: ...

    @property
    def clock(self) -> Clock: ...


ROLES = (Role.ADMIN, Role.EVALUATOR, Role.APPLICANT, Role.METRICS)
PREFIX = "gmo_"
# last_used_at is written at most this often per token (a write per request
# would serialise every reader on SQLite).
TOUCH_EVERY = timedelta(minutes=1)
PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]+$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's role and subject, resolved to rows."""

    token_id: int
    role: Role
    subject: str
    applicant_id: int | None = None
    evaluator_id: int | None = None
    last_used_at: datetime | None = None
    person: str | None = None  # who acts for the subject (a web session's e-mail), named in the audit

    @property
    def actor(self) -> Actor:
        return Actor(acting_for(self.subject, self.person), self.role)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create(app: Parts, role: str, subject: str, created_by: str, note: str | None = None) -> tuple[int, str]:
    """A new token; returns (id, the token itself, which is not stored)."""
    if role not in [r.value for r in ROLES]:
        raise InvalidInput(
            "{given}: choose admin, evaluator, applicant or metrics", field="role", value=role, shown=repr(role)
        )
    subject = subject.strip()
    if not subject or not PRINTABLE.match(subject):
        raise InvalidInput(
            "{given}: name who uses the token (a person, an e-mail or a code)",
            field="subject",
            value=subject,
            shown=repr(subject),
        )
    token = PREFIX + secrets.token_urlsafe(32)
    now = app.clock.now()
    with write(app.db) as conn:
        if role == Role.APPLICANT:
            _applicant_id(conn, subject)
        elif role == Role.EVALUATOR:
            subject = subject.lower()
            _evaluator_id(conn, subject)
        token_id = conn.execute(
            sa.insert(API_TOKEN)
            .values(
                token_sha256=digest(token),
                prefix=token[:12],
                role=role,
                subject=subject,
                note=note,
                created_at=now,
                created_by=created_by,
            )
            .returning(API_TOKEN.c.id)
        ).scalar_one()
    return int(token_id), token


def revoke(app: Parts, token_id: int) -> dict[str, Any]:
    now = app.clock.now()
    with write(app.db) as conn:
        row = conn.execute(sa.select(API_TOKEN).where(API_TOKEN.c.id == token_id)).mappings().first()
        if row is None:
            raise NotFound(f"no token {token_id}: see `gongmo tokens list`")
        if row["revoked_at"] is not None:
            raise Conflict(f"token {token_id} was already revoked at {row['revoked_at'].isoformat()}")
        conn.execute(sa.update(API_TOKEN).where(API_TOKEN.c.id == token_id).values(revoked_at=now))
    return {**dict(row), "revoked_at": now}


def listing(app: Parts) -> list[dict[str, Any]]:
    with read(app.db) as conn:
        query = sa.select(API_TOKEN).order_by(API_TOKEN.c.id)
        return [{k: v for k, v in r.items() if k != "token_sha256"} for r in conn.execute(query).mappings()]


def authenticate(conn: Connection, token: str, now: datetime) -> Principal | None:
    """The principal of a live token, or None (unknown or revoked)."""
    row = (
        conn.execute(
            sa.select(API_TOKEN).where(API_TOKEN.c.token_sha256 == digest(token), API_TOKEN.c.revoked_at.is_(None))
        )
        .mappings()
        .first()
    )
    if row is None:
        return None
    role = Role(row["role"])
    subject = str(row["subject"])
    try:
        applicant_id = _applicant_id(conn, subject) if role == Role.APPLICANT else None
        evaluator_id = _evaluator_id(conn, subject) if role == Role.EVALUATOR else None
    except NotFound:
        return None  # the subject was removed since: the token no longer stands for anyone
    return Principal(int(row["id"]), role, subject, applicant_id, evaluator_id, row["last_used_at"])


def principal(conn: Connection, role: str, subject: str) -> Principal:
    """A caller without a token (the CLI's `show --as ROLE:SUBJECT`): the same
    principal a token of that role and subject would give, or a one-line refusal."""
    if role not in (Role.ADMIN, Role.EVALUATOR, Role.APPLICANT):
        raise InvalidInput("{given}: the role is admin, evaluator or applicant", field="as", value=f"{role}:{subject}")
    who = Role(role)
    subject = subject.strip().lower() if who == Role.EVALUATOR else subject.strip()
    applicant_id = _applicant_id(conn, subject) if who == Role.APPLICANT else None
    evaluator_id = _evaluator_id(conn, subject) if who == Role.EVALUATOR else None
    return Principal(0, who, subject or "office", applicant_id, evaluator_id)


def needs_touch(last_used_at: datetime | None, now: datetime) -> bool:
    return last_used_at is None or now - last_used_at >= TOUCH_EVERY


def touch(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(sa.update(API_TOKEN).where(API_TOKEN.c.id == token_id).values(last_used_at=now))


def _applicant_id(conn: Connection, code: str) -> int:
    found = conn.execute(sa.select(APPLICANT.c.id).where(APPLICANT.c.code == code)).scalar()
    if found is None:
        raise NotFound(
            "{given}: no applicant with that code; an applicant token names its code, e.g. 41110",
            field="subject",
            value=code,
            shown=repr(code),
        )
    return int(found)


def _evaluator_id(conn: Connection, email: str) -> int:
    found = conn.execute(sa.select(EVALUATOR.c.id).where(EVALUATOR.c.email == email.lower())).scalar()
    if found is None:
        raise NotFound(
            "{given}: no evaluator with that e-mail; import the committee first",
            field="subject",
            value=email,
            shown=repr(email),
        )
    return int(found)
