"""The outbox as the office reads it: a page of rows with the totals by state, and one row.

`gongmo outbox` (newest first) and GET /outbox (by number, a page at a time)
read the same rows here; `gongmo outbox show` and GET /outbox/{id} the same row.
A row of no application (a sign-in link's mail) has application_id None, and its
bodies are hidden.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.workflow.core.models import APPLICATION, OUTBOX, OUTBOX_LIST, TRACK


def page(
    conn: Connection,
    *,
    state: str | None = None,
    track: str | None = None,
    notice: str | None = None,
    limit: int = 100,
    after: int = 0,
    newest_first: bool = False,
) -> dict[str, Any]:
    """Up to `limit` rows numbered above `after` (by number, or newest first), of one
    state, one notice and one track's applications if given; with the totals of every state."""
    order = OUTBOX.c.id.desc() if newest_first else OUTBOX.c.id
    query = sa.select(*OUTBOX_LIST).where(OUTBOX.c.id > after).order_by(order).limit(limit)
    if state is not None:
        query = query.where(OUTBOX.c.state == state)
    if notice is not None:
        query = query.where(OUTBOX.c.notice == notice)
    if track is not None:
        apps = sa.select(APPLICATION.c.id).join(TRACK, TRACK.c.id == APPLICATION.c.track_id).where(TRACK.c.key == track)
        query = query.where(OUTBOX.c.application_id.in_(apps))
    rows = [dict(r) for r in conn.execute(query).mappings()]
    return {"totals": totals(conn), "rows": rows}


def totals(conn: Connection) -> dict[str, int]:
    """How many rows each state holds (states without rows are left out)."""
    counted = conn.execute(sa.select(OUTBOX.c.state, sa.func.count()).group_by(OUTBOX.c.state))
    return {str(k): int(v) for k, v in counted}


# A sign-in link's mail (outbox/signin.py) carries the link: its bodies are never shown to anyone
# but their recipient, who reads them in the mail.
SECRET_NOTICES = ("signin_link",)
HIDDEN = "(sign-in link hidden)"


def row(conn: Connection, outbox_id: int) -> dict[str, Any] | None:
    """One row with everything rendered (subject, bodies, the calendar file), or None; a sign-in
    link's bodies are replaced by "(sign-in link hidden)". A row of no application (a sign-in
    link) has application_id None."""
    found = conn.execute(sa.select(OUTBOX).where(OUTBOX.c.id == outbox_id)).mappings().first()
    if found is None:
        return None
    shown = dict(found)
    if shown["notice"] in SECRET_NOTICES:
        shown |= {"body_text": HIDDEN + "\n", "body_html": f"<p>{HIDDEN}</p>"}
    return shown
