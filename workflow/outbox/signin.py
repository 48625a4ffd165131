"""A sign-in link asked for by e-mail address: one transaction that checks the rate limit, records
the request, and for an address with an account issues the link (core/sessions) and queues its mail
in the outbox, delivered by the dispatcher like any notice (the embedded default: the Maildir).

The mail is notice `signin_link`, of no application (outbox.application_id is NULL). Its body holds
the link, so read/outbox shows "(sign-in link hidden)" in its place, and no log line carries it.
The answer is the same whether or not the address has an account (no enumeration); only the rate
limit refuses, and it counts every address alike.
"""

from __future__ import annotations

import secrets
from email.utils import parseaddr

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.states.lifecycle import Role
from gongmo.workflow.core import sessions
from gongmo.workflow.core.db import write
from gongmo.workflow.core.models import OUTBOX
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox.states import PENDING

NOTICE = "signin_link"
HIDDEN = "(sign-in link hidden)"


def request_link(app: App, email: str, client: str, next_path: str | None = None) -> bool:
    """Ask for a sign-in link to the console for `email`, from `client`. Returns whether a mail was
    queued (for the caller's tests and logs only: a page must answer the same either way)."""
    email = sessions.normal_email(email)
    now = app.clock.now()
    with write(app.db) as conn:
        sessions.limit_requests(conn, email, client, now)
        sessions.record(conn, sessions.REQUEST, email, client, now, ok=True)
        staff = sessions.active_staff(conn, email)
        if staff is None:
            return False
        link_id, raw = sessions.issue_link(conn, Role.ADMIN, email, email, now)
        url = sessions.link_url(app.loaded.config.console_url(), raw, next_path)
        queue(app, conn, link_id, Role.ADMIN, email, staff["name"], str(staff["language"]), url)
    return True


def queue(
    app: App, conn: Connection, link_id: int, role: str, email: str, name: str | None, language: str, url: str
) -> None:
    """Render the link's mail and insert its outbox row (in the caller's transaction)."""
    now = app.clock.now()
    values = {
        "recipient_name": name or email,
        "role": role,
        "signin_url": url,
        "valid_minutes": int(sessions.LINK_VALID.total_seconds() // 60),
        "expires_at": now + sessions.LINK_VALID,
    }
    zone = app.loaded.config.contests[0].timezone
    rendered = app.renderer.render(NOTICE, language, values, zone)
    domain = parseaddr(app.loaded.config.mail.sender)[1].rpartition("@")[2] or "gongmo.invalid"
    conn.execute(
        sa.insert(OUTBOX).values(
            application_id=None,
            notice=NOTICE,
            dedup_key=f"signin:{link_id}",
            message_id=f"<gongmo.signin.{link_id}.{secrets.token_hex(6)}@{domain}>",
            language=language,
            to_addr=email,
            subject=rendered.subject,
            body_text=rendered.text,
            body_html=rendered.html,
            ics=None,
            state=PENDING,
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
    )
