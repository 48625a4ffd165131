"""The sent marks on PostgreSQL through libpq itself (workflow/outbox/pgsent.py): what a mark writes,
and how the line goes on after a failed statement, a connection the server dropped, and a mark that
was cancelled on its way."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest
import sqlalchemy as sa

from gongmo.workflow.outbox.pgsent import PgSent

pytestmark = pytest.mark.postgres

STATEMENT = (
    "UPDATE t SET state = 'sent', sent_at = $1 FROM unnest($2::integer[], $3::integer[]) AS v(id, attempts)"
    " WHERE t.id = v.id AND t.attempts = v.attempts AND t.state = 'sending'"
)
KST = timezone(timedelta(hours=9))


@pytest.fixture
def engine(pg_schema_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(pg_schema_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE t (id integer PRIMARY KEY, attempts integer, state text, sent_at timestamptz)"
        )
        conn.exec_driver_sql("INSERT INTO t SELECT g, 1, 'sending', NULL FROM generate_series(1, 5) AS g")
    yield engine
    engine.dispose()


def _line(engine: sa.Engine) -> PgSent:
    return PgSent(engine.url.set(drivername="postgresql").render_as_string(hide_password=False), STATEMENT)


def _rows(engine: sa.Engine) -> dict[int, tuple[str, datetime | None]]:
    with engine.connect() as conn:
        return {i: (s, at) for i, s, at in conn.exec_driver_sql("SELECT id, state, sent_at FROM t ORDER BY id")}


def test_a_mark_marks_the_rows_whose_attempt_is_still_the_same_at_its_time(engine: sa.Engine) -> None:
    """Rows 1 and 3 at their attempt are marked, with the time given (in KST, stored as the same
    instant); row 2 asked at attempt 2 (another daemon's attempt since) is left as it was."""
    now = datetime(2024, 3, 29, 10, 0, 0, 123456, tzinfo=KST)

    async def run() -> None:
        line = _line(engine)
        try:
            await line.mark([(1, 1), (3, 1)], now)
            await line.mark([(2, 2)], now)
        finally:
            await line.close()

    asyncio.run(run())
    rows = _rows(engine)
    assert rows[1] == rows[3] == ("sent", now.astimezone(UTC))
    assert rows[2] == ("sending", None)


def test_a_failed_statement_raises_and_the_next_mark_goes_on(engine: sa.Engine) -> None:
    """An id PostgreSQL's integer cannot hold fails that mark with the server's own words; the
    line's next mark commits (the failed one changed nothing)."""
    now = datetime(2024, 3, 29, 1, 0, tzinfo=UTC)

    async def run() -> None:
        line = _line(engine)
        try:
            with pytest.raises(psycopg.Error, match="out of range for type integer"):
                await line.mark([(1, 1), (2**40, 1)], now)
            await line.mark([(4, 1)], now)
        finally:
            await line.close()

    asyncio.run(run())
    rows = _rows(engine)
    assert rows[1] == ("sending", None) and rows[4] == ("sent", now)


def test_a_connection_the_server_dropped_is_opened_anew_at_the_next_mark(engine: sa.Engine) -> None:
    """The server ends the line's connection between two marks (a restart, an idle timeout): the
    line reads the end on its socket, and the next mark opens a new connection and commits."""
    now = datetime(2024, 3, 29, 1, 0, tzinfo=UTC)

    async def run() -> None:
        line = _line(engine)
        try:
            await line.mark([(1, 1)], now)
            assert line.aconn is not None
            pid = line.aconn.pgconn.backend_pid
            with engine.begin() as conn:
                assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar_one()
            for _ in range(500):  # the end arrives on the socket: the reader notes it
                if line.broken is not None:
                    break
                await asyncio.sleep(0.01)
            assert line.broken is not None
            await line.mark([(2, 1)], now)
            assert line.aconn is not None and line.aconn.pgconn.backend_pid != pid
        finally:
            await line.close()

    asyncio.run(run())
    assert _rows(engine)[2] == ("sent", now)


def test_a_mark_cancelled_on_its_way_leaves_the_next_mark_its_own_result(engine: sa.Engine) -> None:
    """A mark cancelled while its statement runs leaves its results in the connection: the next mark
    takes a new connection, so it is told of its own statement and not the cancelled one's."""
    now = datetime(2024, 3, 29, 1, 0, tzinfo=UTC)

    async def run() -> None:
        line = _line(engine)
        try:
            await line.mark([(1, 1)], now)  # opened and prepared
            slow = asyncio.create_task(line.mark([(2, 1)], now))
            await asyncio.sleep(0)  # sent; its result not read yet
            slow.cancel()
            with pytest.raises(asyncio.CancelledError):
                await slow
            with pytest.raises(psycopg.Error, match="out of range"):
                await line.mark([(2**40, 1)], now)  # a failure of its own, not the cancelled one's success
            await line.mark([(5, 1)], now)
        finally:
            await line.close()

    asyncio.run(run())
    assert _rows(engine)[5] == ("sent", now)
