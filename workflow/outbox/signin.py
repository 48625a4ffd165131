"""A sign-in link asked for by e-mail address: one transaction that checks the rate limit, records
the request, and for an address with an account issues the link (core/sessions) and queues its mail
in the outbox, delivered by the dispatcher like any notice (the embedded default: the Maildir).

An address may stand for several people (sessions.targets): an office account, an evaluator, the
contact of one or more local governments. It gets ONE mail holding one link per role and subject,
each labelled (the office console, the evaluators' pages, the applicants' pages of 수원시 (41110)),
in the language of the first of them (staff, then evaluator, then applicant by code). A `next`
path goes only on the links of the role whose pages it is under (sessions.landing).

The mail is notice `signin_link`, of no application (outbox.application_id is NULL). Its body holds
the link, so read/outbox shows "(sign-in link hidden)" in its place, and no log line carries it.
The answer is the same whether or not the address has an account (no enumeration); only the rate
limit refuses, and it counts every address alike.
"""

from __future__ import annotations

import secrets
from email.utils import parseaddr
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.workflow.core import sessions
from gongmo.workflow.core.db import write
from gongmo.workflow.core.models import OUTBOX
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox.states import PENDING

NOTICE = "signin_link"
HIDDEN = "(sign-in link hidden)"


def request_link(app: App, email: str, client: str, next_path: str | None = None) -> bool:
    """Ask for sign-in links for `email` (the console, the evaluators' or the applicants' pages), from
    `client`. Returns whether a mail was queued (for the caller's tests and logs only: a page must
    answer the same either way)."""
    email = sessions.normal_email(email)
    now = app.clock.now()
    base_url = app.loaded.config.console_url()
    with write(app.db) as conn:
        sessions.limit_requests(conn, email, client, now)
        sessions.record(conn, sessions.REQUEST, email, client, now, ok=True)
        found = sessions.targets(conn, email)
        if not found:
            return False
        links: list[dict[str, Any]] = []
        for target in found:
            link_id, raw = sessions.issue_link(conn, target.role, target.subject, email, now)
            home = sessions.landing(target.role, next_path)
            url = sessions.link_url(base_url, raw, home if home != sessions.HOME[target.role] else None)
            links.append({"id": link_id, "role": target.role.value, "name": _label(target), "url": url})
        first = found[0]
        queue(app, conn, links, email, first.name, first.language)
    return True


def _label(target: sessions.Target) -> str:
    """What a link is for beyond its role: the government an applicant's link acts for."""
    return f"{target.applicant_name} ({target.subject})" if target.applicant_name else ""


def queue(app: App, conn: Connection, links: list[dict[str, Any]], email: str, name: str | None, language: str) -> None:
    """Render the mail of one or more links (`links`: id, role, name, url) and insert its outbox row
    (in the caller's transaction)."""
    now = app.clock.now()
    link_id = links[0]["id"]
    values = {
        "recipient_name": name or email,
        "role": links[0]["role"],
        "signin_url": links[0]["url"],
        "links": [{k: v for k, v in link.items() if k != "id"} for link in links],
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
