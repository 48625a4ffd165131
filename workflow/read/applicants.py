"""The local governments that may apply, as `gongmo applicants list` and GET /applicants read them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.workflow.core.models import APPLICANT


def listing(conn: Connection, ids: Sequence[int | None] | None = None) -> list[dict[str, Any]]:
    """Every applicant by code, every column; or only those numbered in `ids` (none for
    an unknown number or None: an applicant token without its applicant sees nobody)."""
    query = sa.select(APPLICANT).order_by(APPLICANT.c.code)
    if ids is not None:
        query = query.where(APPLICANT.c.id.in_(ids))
    return [dict(r) for r in conn.execute(query).mappings()]


def by_code(conn: Connection, code: str) -> dict[str, Any] | None:
    """One applicant by its code, every column, or None."""
    found = conn.execute(sa.select(APPLICANT).where(APPLICANT.c.code == code)).mappings().first()
    return None if found is None else dict(found)
