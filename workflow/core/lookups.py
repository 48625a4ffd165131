"""Rows the engine, the stages, the deadlines and the API look up by key: plain
functions on a Connection (the caller's transaction, and its locks)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from gongmo.states.errors import NotFound
from gongmo.workflow.core.config import Config
from gongmo.workflow.core.db import lock_row, row_by_id
from gongmo.workflow.core.models import APPLICANT, APPLICATION, CALENDAR_CHANGE, TRACK

Row = RowMapping


def track_by_key(conn: Connection, config: Config, track_key: str, lock: bool = False) -> Row:
    """A track's row (its calendar as the database holds it); `lock` takes
    it FOR UPDATE on PostgreSQL, serialising writers of the same track."""
    config.track(track_key)  # a clear error for a key not in the config
    query = sa.select(TRACK).where(TRACK.c.key == track_key)
    if lock and conn.dialect.name != "sqlite":
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"track {track_key} is in the config but not in the database: run `gongmo init`")
    return row


def track_row(conn: Connection, track_id: int) -> Row:
    """The row of a track known by id (an application's track_id is a foreign key)."""
    row = row_by_id(conn, TRACK, track_id)
    assert row is not None, track_id
    return row._mapping


def locked_application(conn: Connection, application_id: int) -> Row:
    """An application's row, locked for the caller's move."""
    row = lock_row(conn, APPLICATION, application_id)
    if row is None:
        raise NotFound(f"no application {application_id}: see `gongmo status` or `gongmo show`")
    return row._mapping


def applicant_by_code(conn: Connection, code: str) -> Row:
    row = conn.execute(sa.select(APPLICANT).where(APPLICANT.c.code == code)).mappings().first()
    if row is None:
        raise NotFound(f"no applicant with code {code!r}: import it first (`gongmo applicants import FILE.csv`)")
    return row


def application_of(conn: Connection, track_id: int, applicant_id: int) -> Row | None:
    """The applicant's application in the track, if any (FOR UPDATE on PostgreSQL)."""
    query = sa.select(APPLICATION).where(APPLICATION.c.track_id == track_id, APPLICATION.c.applicant_id == applicant_id)
    if conn.dialect.name != "sqlite":
        query = query.with_for_update()
    row = conn.execute(query).first()
    return row._mapping if row else None


def extension_until(conn: Connection, application_id: int, milestone: str) -> datetime | None:
    """The latest extension granted to one application for one milestone."""
    query = (
        sa.select(CALENDAR_CHANGE.c.new_at)
        .where(CALENDAR_CHANGE.c.application_id == application_id, CALENDAR_CHANGE.c.milestone == milestone)
        .order_by(CALENDAR_CHANGE.c.id.desc())
        .limit(1)
    )
    value: datetime | None = conn.execute(query).scalar()
    return value


def track_key_of(conn: Connection, application_id: int) -> str:
    """The key of an application's track; NotFound if there is no such application."""
    key = conn.execute(
        sa.select(TRACK.c.key)
        .join(APPLICATION, APPLICATION.c.track_id == TRACK.c.id)
        .where(APPLICATION.c.id == application_id)
    ).scalar()
    if key is None:
        raise NotFound(f"no application {application_id}: see `gongmo status` or `gongmo show`")
    return str(key)
