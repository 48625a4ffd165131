"""Small reads of applications that are not about who sees what (that is visibility.py):
a receipt number's application, a waitlist place."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.workflow.core.models import APPLICATION


def by_receipt(conn: Connection, receipt_no: str) -> int | None:
    """The application with this receipt number, or None."""
    found = conn.execute(sa.select(APPLICATION.c.id).where(APPLICATION.c.receipt_no == receipt_no)).scalar()
    return None if found is None else int(found)


def waitlist_position(conn: Connection, application_id: int) -> int | None:
    """An application's place on the waitlist, or None if it has none."""
    return conn.execute(sa.select(APPLICATION.c.waitlist_position).where(APPLICATION.c.id == application_id)).scalar()
