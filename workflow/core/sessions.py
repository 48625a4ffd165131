"""Browser sessions of the console and the portals, the one-time sign-in links that open them, the
office's staff accounts, and the rate limit of sign-ins. Only SHA-256 digests of secrets are stored.

- A **session** id is 32 random bytes (`secrets.token_urlsafe`), sent to the browser in an HttpOnly
  cookie and stored as its SHA-256 (as API tokens are: nothing to guess that a slow hash would
  protect). A session ends after IDLE without a request, at its absolute limit (LIFETIME after it
  was opened), or when revoked. It resolves to the same Principal an API token of its role and
  subject would (tokens.principal), so every page reads through the same visibility rule as the API.
  A session of role admin resolves only while its staff account exists and is not disabled; its
  subject (the audit rows' actor) is the staff e-mail. A session of role evaluator resolves only
  while the evaluator is on the committee (subject: its e-mail); one of role applicant only while
  the applicant exists (subject: its code) and, for a session opened by a link, while the address
  it was opened for is still one of the applicant's contacts (`applicant_contact`). The session row
  keeps that address (`email`), and the Principal carries it as `person`: visibility stays keyed on
  the code, and the audit names the person ("41110 (kim@city.go.kr)", core/actors.acting_for).
- A **sign-in link** carries 32 random bytes; its row keeps the SHA-256, the role and subject it
  signs in as and where it was sent. It works once, within LINK_VALID (`redeem`). The office's
  links are role admin (subject: the staff e-mail); the portals' are role evaluator (subject: the
  evaluator's e-mail) and applicant (subject: the applicant's code, sent to one of its contacts).
  `targets` says whom an address signs in as: it may be several (staff and evaluator, or the
  contact of two governments), and each gets its own link in one mail (outbox/signin.py).
- **Attempts** (`signin_attempt`): every link requested (kind request) and every link used (kind
  link, ok or not). A request is refused past REQUESTS_PER_ADDRESS per address or
  REQUESTS_PER_CLIENT per client in WINDOW, a link use past FAILED_LINKS_PER_CLIENT failed uses per
  client in WINDOW; the refusal says when to try again. Requests count whether or not the address
  has an account, so the limit tells nothing about accounts either.

The CSRF token of a session is derived from the session id (SHA-256 of a prefix and the id), so
it needs no storage, changes with the session, and cannot be computed by a page that cannot read
the HttpOnly cookie. The sign-in forms, which have no session yet, use the same derivation on a
pre-session cookie of their own (web/auth.py: a double-submit cookie).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from gongmo.states.errors import Conflict, GongmoError, InvalidInput, NotFound
from gongmo.states.lifecycle import Role
from gongmo.workflow.core import tokens
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import (
    APPLICANT,
    APPLICANT_CONTACT,
    EVALUATOR,
    SIGNIN_ATTEMPT,
    SIGNIN_LINK,
    STAFF,
    WEB_SESSION,
)
from gongmo.workflow.core.tokens import Parts, Principal

IDLE = timedelta(minutes=30)
LIFETIME = timedelta(hours=12)
# last_seen_at is written at most this often (a write per page would serialise readers on SQLite).
TOUCH_EVERY = timedelta(minutes=1)

LINK_VALID = timedelta(minutes=15)
WINDOW = timedelta(minutes=15)
REQUESTS_PER_ADDRESS = 5
REQUESTS_PER_CLIENT = 20
FAILED_LINKS_PER_CLIENT = 20
REQUEST = "request"
LINK = "link"
LANGUAGES = ("ko", "en")
# Where each role lands after signing in (and the prefix its `next` must keep).
HOME = {Role.ADMIN: "/office", Role.EVALUATOR: "/evaluator", Role.APPLICANT: "/applicant"}

LinkProblem = Literal["unknown", "used", "expired", "disabled"]


class RateLimited(GongmoError):
    """Too many sign-in requests or failed link uses: 429, with the instant to try again."""

    def __init__(self, message: str, retry_at: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class LinkRefused(GongmoError):
    """A sign-in link that cannot be used: unknown, used, expired, or its account disabled."""

    def __init__(self, problem: LinkProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def csrf_token(raw_session: str) -> str:
    """The CSRF token of a session: derived from its id, so it is never stored."""
    return hashlib.sha256(b"gongmo-csrf:" + raw_session.encode("utf-8")).hexdigest()


def csrf_ok(raw_session: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(csrf_token(raw_session), given)


def normal_email(value: str) -> str:
    """An e-mail address as accounts store it (trimmed, lower case), or a one-line refusal."""
    email = value.strip().lower()
    local, at, domain = email.partition("@")
    if not (local and at and "." in domain.strip(".")) or any(c.isspace() for c in email) or len(email) > 200:
        raise InvalidInput(
            '{given}: not an e-mail address; write e.g. "office@molit.go.kr"',
            field="email",
            value=value,
            shown=repr(value[:80]),
        )
    return email


def local_path(value: str | None, default: str = "/office") -> str:
    """Where to go after signing in: a path of this site only (never another site's address)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 32 or c == "\x7f" for c in value):
        return default
    return value


def landing(role: str, next_path: str | None) -> str:
    """Where a session of `role` goes after signing in: `next` if it is a path of this site under the
    role's home (an evaluator is never sent to the office's pages), else the home itself."""
    home = HOME.get(Role(role), "/office")
    target = local_path(next_path, "")
    return target if target == home or target.startswith((home + "/", home + "?")) else home


def link_url(base_url: str, raw: str, next_path: str | None = None) -> str:
    """The address of a sign-in link (the page with its one button)."""
    url = f"{base_url.rstrip('/')}/signin/{raw}"
    target = local_path(next_path, "")
    return f"{url}?next={quote(target, safe='/')}" if target else url


# -- staff accounts -------------------------------------------------------------------------------


def active_staff(conn: Connection, email: str) -> RowMapping | None:
    """The staff account of this e-mail if it exists and is not disabled."""
    return (
        conn.execute(sa.select(STAFF).where(STAFF.c.email == email.strip().lower(), STAFF.c.disabled_at.is_(None)))
        .mappings()
        .first()
    )


def add_staff(
    app: Parts, email: str, name: str | None = None, language: str = "ko", created_by: str = "cli"
) -> tuple[dict[str, Any], str]:
    """A new staff account (role admin), or a disabled one enabled again; returns (row, what was done)."""
    email = normal_email(email)
    if language not in LANGUAGES:
        raise InvalidInput("{given}: write ko or en", field="language", value=language, shown=repr(language))
    now = app.clock.now()
    with write(app.db) as conn:
        row = conn.execute(sa.select(STAFF).where(STAFF.c.email == email)).mappings().first()
        if row is not None and row["disabled_at"] is None:
            raise Conflict(f"staff {email} already has an account: see `gongmo staff list`")
        values: dict[str, Any] = {"name": name, "language": language, "disabled_at": None}
        if row is not None:
            conn.execute(sa.update(STAFF).where(STAFF.c.id == row["id"]).values(**values))
            done = "enabled again"
        else:
            values |= {"email": email, "role": Role.ADMIN.value, "created_at": now, "created_by": created_by}
            conn.execute(sa.insert(STAFF).values(**values))
            done = "added"
        found = conn.execute(sa.select(STAFF).where(STAFF.c.email == email)).mappings().one()
    return dict(found), done


def disable_staff(app: Parts, email: str) -> tuple[dict[str, Any], int]:
    """Disable a staff account and end its sessions at once; returns (row, sessions revoked)."""
    email = normal_email(email)
    now = app.clock.now()
    with write(app.db) as conn:
        row = conn.execute(sa.select(STAFF).where(STAFF.c.email == email)).mappings().first()
        if row is None:
            raise NotFound(f"no staff account {email}: see `gongmo staff list`")
        if row["disabled_at"] is not None:
            raise Conflict(f"staff {email} was already disabled at {row['disabled_at'].isoformat()}")
        conn.execute(sa.update(STAFF).where(STAFF.c.id == row["id"]).values(disabled_at=now))
        revoked = revoke_subject(conn, Role.ADMIN, email, now)
    return {**dict(row), "disabled_at": now}, revoked


def staff_listing(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(sa.select(STAFF).order_by(STAFF.c.email)).mappings()]


def sync_staff(conn: Connection, emails: list[str], now: datetime) -> list[str]:
    """The config's staff ([console] staff): each missing account created; one line per change.
    A disabled account stays disabled (the office's `gongmo staff disable` wins over the file)."""
    changes = []
    for email in emails:
        row = conn.execute(sa.select(STAFF).where(STAFF.c.email == email)).mappings().first()
        if row is None:
            conn.execute(
                sa.insert(STAFF).values(
                    email=email, role=Role.ADMIN.value, language="ko", created_at=now, created_by="config"
                )
            )
            changes.append(f"staff {email}: created")
        elif row["disabled_at"] is not None:
            changes.append(f"staff {email}: kept disabled (the config names it; `gongmo staff add` enables it)")
    return changes


# -- whom an address signs in as ------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One role and subject an address may sign in as, with the person's name and language and, for an
    applicant, the government it acts for (the mail labels each link with it)."""

    role: Role
    subject: str
    name: str | None
    language: str
    applicant_name: str | None = None


def contact(conn: Connection, code: str, email: str) -> RowMapping | None:
    """The contact `email` of applicant `code` (with the applicant's name and language), if it is one."""
    query = (
        sa.select(APPLICANT_CONTACT, APPLICANT.c.code, APPLICANT.c.language, APPLICANT.c.name.label("applicant_name"))
        .join(APPLICANT, APPLICANT.c.id == APPLICANT_CONTACT.c.applicant_id)
        .where(APPLICANT.c.code == code, APPLICANT_CONTACT.c.email == email.strip().lower())
    )
    return conn.execute(query).mappings().first()


def targets(conn: Connection, email: str) -> list[Target]:
    """Everyone `email` signs in as: the office (an active staff account), the committee (an
    evaluator), and each local government it is a contact of (by code); in that order."""
    email = email.strip().lower()
    found: list[Target] = []
    staff = active_staff(conn, email)
    if staff is not None:
        found.append(Target(Role.ADMIN, email, staff["name"], str(staff["language"])))
    ev = conn.execute(sa.select(EVALUATOR).where(EVALUATOR.c.email == email)).mappings().first()
    if ev is not None:
        found.append(Target(Role.EVALUATOR, email, ev["name"], str(ev["language"])))
    query = (
        sa.select(APPLICANT.c.code, APPLICANT.c.name, APPLICANT.c.language, APPLICANT_CONTACT.c.name.label("person"))
        .join(APPLICANT, APPLICANT.c.id == APPLICANT_CONTACT.c.applicant_id)
        .where(APPLICANT_CONTACT.c.email == email)
        .order_by(APPLICANT.c.code)
    )
    for r in conn.execute(query).mappings():
        found.append(Target(Role.APPLICANT, str(r["code"]), r["person"], str(r["language"]), str(r["name"])))
    return found


# -- sessions -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    id: int
    role: Role
    subject: str
    principal: Principal
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    language: str | None = None  # the person's language (staff, evaluator, applicant): the pages' default
    email: str | None = None  # the address it was opened for (None: opened without a link)


def open_session(app: Parts, role: str, subject: str, client: str | None = None, email: str | None = None) -> str:
    """A new session for (role, subject), opened for `email` (an applicant's contact: it must be one);
    returns the raw session id (the cookie's value)."""
    with write(app.db) as conn:
        raw, _ = _insert_session(conn, role, subject, app.clock.now(), client, email)
    return raw


def _insert_session(
    conn: Connection, role: str, subject: str, now: datetime, client: str | None, email: str | None = None
) -> tuple[str, int]:
    who = tokens.principal(conn, role, subject)  # refuses a subject that stands for no one
    if who.role == Role.ADMIN and active_staff(conn, who.subject) is None:
        raise NotFound(f"no staff account {who.subject} (or it is disabled): `gongmo staff add {who.subject}`")
    email = email.strip().lower() if email else None
    if who.role == Role.APPLICANT and email is not None and contact(conn, who.subject, email) is None:
        raise NotFound(f"{email} is not a contact of applicant {who.subject}: `gongmo applicants contact add`")
    raw = secrets.token_urlsafe(32)
    session_id = conn.execute(
        sa.insert(WEB_SESSION)
        .values(
            session_sha256=digest(raw),
            role=who.role.value,
            subject=who.subject,
            created_at=now,
            last_seen_at=now,
            expires_at=now + LIFETIME,
            client=(client or "")[:64] or None,
            email=email,
        )
        .returning(WEB_SESSION.c.id)
    ).scalar_one()
    return raw, int(session_id)


def authenticate(conn: Connection, raw: str, now: datetime) -> Session | None:
    """The live session of a cookie value, or None (unknown, revoked, idle too long, past its
    limit, or its person gone since: staff disabled, evaluator off the committee, applicant removed,
    the contact it was opened for removed)."""
    row = conn.execute(sa.select(WEB_SESSION).where(WEB_SESSION.c.session_sha256 == digest(raw))).mappings().first()
    if row is None or row["revoked_at"] is not None:
        return None
    if now >= row["expires_at"] or now - row["last_seen_at"] >= IDLE:
        return None
    language = person_language(conn, row["role"], row["subject"], row["email"])
    if language is None:
        return None
    try:
        who = tokens.principal(conn, row["role"], row["subject"])
    except NotFound:
        return None  # the account was removed since
    who = Principal(0, who.role, who.subject, who.applicant_id, who.evaluator_id, person=row["email"])
    return Session(
        int(row["id"]),
        who.role,
        who.subject,
        who,
        row["created_at"],
        row["last_seen_at"],
        row["expires_at"],
        language,
        row["email"],
    )


def person_language(conn: Connection, role: str, subject: str, email: str | None) -> str | None:
    """The language of the person a session or link of (role, subject, email) stands for, or None if
    that person is gone (staff disabled, evaluator or applicant removed, contact removed)."""
    if role == Role.ADMIN:
        staff = active_staff(conn, subject)
        return None if staff is None else str(staff["language"])
    if role == Role.EVALUATOR:
        found = conn.execute(sa.select(EVALUATOR.c.language).where(EVALUATOR.c.email == subject)).scalar()
        return None if found is None else str(found)
    if role == Role.APPLICANT:
        if email is not None:
            row = contact(conn, subject, email)
            return None if row is None else str(row["language"])
        found = conn.execute(sa.select(APPLICANT.c.language).where(APPLICANT.c.code == subject)).scalar()
        return None if found is None else str(found)
    return None


def needs_touch(session: Session, now: datetime) -> bool:
    return now - session.last_seen_at >= TOUCH_EVERY


def touch(conn: Connection, session_id: int, now: datetime) -> None:
    conn.execute(sa.update(WEB_SESSION).where(WEB_SESSION.c.id == session_id).values(last_seen_at=now))


def revoke(conn: Connection, session_id: int, now: datetime) -> int:
    """End one session; returns 1, or 0 if it had already ended by revocation or does not exist."""
    result = conn.execute(
        sa.update(WEB_SESSION)
        .where(WEB_SESSION.c.id == session_id, WEB_SESSION.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)


def revoke_subject(conn: Connection, role: str, subject: str, now: datetime, email: str | None = None) -> int:
    """End every session of one person (role and subject; with `email`, only the sessions opened for
    that address, e.g. one contact of an applicant); returns how many were live."""
    where = [
        WEB_SESSION.c.role == role,
        WEB_SESSION.c.subject == subject,
        WEB_SESSION.c.revoked_at.is_(None),
        WEB_SESSION.c.expires_at > now,
    ]
    if email is not None:
        where.append(WEB_SESSION.c.email == email)
    result = conn.execute(sa.update(WEB_SESSION).where(*where).values(revoked_at=now))
    return int(result.rowcount)


def live_sessions(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    """The sessions that still let their browser in (never the id itself), each with when it ends
    (its idle limit or its absolute one, whichever comes first)."""
    live = (WEB_SESSION.c.revoked_at.is_(None), WEB_SESSION.c.expires_at > now, WEB_SESSION.c.last_seen_at > now - IDLE)
    query = sa.select(WEB_SESSION).where(*live).order_by(WEB_SESSION.c.id)
    rows = []
    for r in conn.execute(query).mappings():
        row = {k: v for k, v in r.items() if k != "session_sha256"}
        row["ends_at"] = min(r["expires_at"], r["last_seen_at"] + IDLE)
        rows.append(row)
    return rows


def revoke_session(app: Parts, session_id: int) -> dict[str, Any]:
    """End one session by its number (`gongmo console sessions`)."""
    now = app.clock.now()
    with write(app.db) as conn:
        row = conn.execute(sa.select(WEB_SESSION).where(WEB_SESSION.c.id == session_id)).mappings().first()
        if row is None:
            raise NotFound(f"no session {session_id}: see `gongmo console sessions`")
        if not revoke(conn, session_id, now):
            raise Conflict(f"session {session_id} was already revoked at {row['revoked_at'].isoformat()}")
    return {k: v for k, v in row.items() if k != "session_sha256"} | {"revoked_at": now}


def revoke_person(app: Parts, email: str) -> int:
    """End every session of a staff member (by e-mail); returns how many were live."""
    email = normal_email(email)
    with write(app.db) as conn:
        return revoke_subject(conn, Role.ADMIN, email, app.clock.now())


# -- sign-in links --------------------------------------------------------------------------------


def issue_link(conn: Connection, role: str, subject: str, email: str, now: datetime) -> tuple[int, str]:
    """A new one-time link for (role, subject), sent to `email`; returns (its row id, the raw token,
    which is not stored)."""
    raw = secrets.token_urlsafe(32)
    link_id = conn.execute(
        sa.insert(SIGNIN_LINK)
        .values(
            token_sha256=digest(raw),
            role=role,
            subject=subject,
            email=email,
            created_at=now,
            expires_at=now + LINK_VALID,
        )
        .returning(SIGNIN_LINK.c.id)
    ).scalar_one()
    return int(link_id), raw


def staff_link(app: Parts, email: str) -> str:
    """A sign-in link for an active staff account, with no mail (`gongmo console link`)."""
    email = normal_email(email)
    with write(app.db) as conn:
        if active_staff(conn, email) is None:
            raise NotFound(f"no staff account {email} (or it is disabled): `gongmo staff add {email}` first")
        return issue_link(conn, Role.ADMIN, email, email, app.clock.now())[1]


def check_link(conn: Connection, raw: str, now: datetime) -> RowMapping:
    """The link of this token if it can still be used, else LinkRefused saying why."""
    row = conn.execute(sa.select(SIGNIN_LINK).where(SIGNIN_LINK.c.token_sha256 == digest(raw))).mappings().first()
    if row is None:
        raise LinkRefused("unknown", "this sign-in link is not known (it may be mistyped or cut short in the mail)")
    if row["used_at"] is not None:
        raise LinkRefused("used", "this sign-in link was already used: a link works once")
    if now >= row["expires_at"]:
        raise LinkRefused("expired", f"this sign-in link has expired: a link works for {_minutes(LINK_VALID)} minutes")
    if person_language(conn, row["role"], row["subject"], _contact_email(row)) is None:
        raise LinkRefused("disabled", "the account of this sign-in link is disabled: ask the contest office")
    return row


def link_language(conn: Connection, raw: str) -> str | None:
    """The language of the person a link (usable or not) was sent for, None for an unknown link or a
    person gone: its pages speak that language unless the browser chose another."""
    row = conn.execute(sa.select(SIGNIN_LINK).where(SIGNIN_LINK.c.token_sha256 == digest(raw))).mappings().first()
    return None if row is None else person_language(conn, row["role"], row["subject"], _contact_email(row))


def _contact_email(link: RowMapping) -> str | None:
    """The contact a link of role applicant was sent to (the person its session acts as)."""
    return str(link["email"]) if link["role"] == Role.APPLICANT else None


def redeem(app: Parts, raw: str, client: str) -> tuple[str, Session]:
    """Use a link: once, within LINK_VALID. Opens a session and records the attempt; returns (the raw
    session id, the session). A failed use is recorded too (for the limit per client), then refused:
    RateLimited past the limit, else LinkRefused."""
    now = app.clock.now()
    with read(app.db) as conn:
        limit_links(conn, client, now)
    try:
        with write(app.db) as conn:
            link = check_link(conn, raw, now)
            used = conn.execute(
                sa.update(SIGNIN_LINK)
                .where(SIGNIN_LINK.c.id == link["id"], SIGNIN_LINK.c.used_at.is_(None))
                .values(used_at=now)
            )
            if used.rowcount != 1:  # used by a second click at the same moment
                raise LinkRefused("used", "this sign-in link was already used: a link works once")
            session_raw, _ = _insert_session(conn, link["role"], link["subject"], now, client, str(link["email"]))
            record(conn, LINK, link["email"], client, now, ok=True)
            found = authenticate(conn, session_raw, now)
            assert found is not None
    except LinkRefused:
        with write(app.db) as conn:
            record(conn, LINK, "", client, now, ok=False)
        raise
    return session_raw, found


# -- attempts and their limits --------------------------------------------------------------------


def record(conn: Connection, kind: str, email: str, client: str, now: datetime, ok: bool) -> None:
    conn.execute(sa.insert(SIGNIN_ATTEMPT).values(kind=kind, email=email[:200], client=client[:64], at=now, ok=ok))


def limit_requests(conn: Connection, email: str, client: str, now: datetime) -> None:
    """Refuse a link request past the limit per address or per client (RateLimited)."""
    recent = (SIGNIN_ATTEMPT.c.kind == REQUEST) & (SIGNIN_ATTEMPT.c.at > now - WINDOW)
    by_address = recent & (SIGNIN_ATTEMPT.c.email == email)
    _limit(conn, by_address, REQUESTS_PER_ADDRESS, "too many sign-in links asked for this address", now)
    by_client = recent & (SIGNIN_ATTEMPT.c.client == client[:64])
    _limit(conn, by_client, REQUESTS_PER_CLIENT, "too many sign-in links asked from this computer", now)


def limit_links(conn: Connection, client: str, now: datetime) -> None:
    """Refuse a link use from a client past its limit of failed uses (RateLimited)."""
    failed = (
        (SIGNIN_ATTEMPT.c.kind == LINK)
        & SIGNIN_ATTEMPT.c.ok.is_(False)
        & (SIGNIN_ATTEMPT.c.at > now - WINDOW)
        & (SIGNIN_ATTEMPT.c.client == client[:64])
    )
    _limit(conn, failed, FAILED_LINKS_PER_CLIENT, "too many failed sign-in links from this computer", now)


def _limit(conn: Connection, where: Any, most: int, what: str, now: datetime) -> None:
    query = sa.select(SIGNIN_ATTEMPT.c.at).where(where).order_by(SIGNIN_ATTEMPT.c.at.desc()).limit(most)
    found = list(conn.execute(query).scalars())
    if len(found) < most:
        return
    retry_at = found[-1] + WINDOW  # when the oldest of the last `most` leaves the window
    wait = max(int((retry_at - now).total_seconds() + 59) // 60, 1)
    raise RateLimited(f"{what} ({most} in {_minutes(WINDOW)} minutes): try again in {wait} minute(s)", retry_at)


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)
