"""The sent marks on PostgreSQL, one prepared statement on libpq's own connection, on the event loop.

Every message waits for its mark to commit before its connection sends the next "." (at most one
accepted-but-unmarked message per connection at a kill), so a mark's client CPU is paid once a
message. Through psycopg's AsyncConnection.execute a mark cost ~290 us of CPU (a cursor, the
query's conversion, the parameters' dumpers, and an add_reader/remove_reader and a future for
each of the several waits of its generator); here, on psycopg.pq, it costs ~85 us (measured in
one process against the same server, 3,000 marks each): the statement is prepared once per
connection, its three parameters are sent as text, and one reader stays on the socket for the
connection's life.

The connection is in autocommit: the one statement commits, and its WAL flush is awaited like a
socket read. One mark at a time (the caller, _Marks' one flusher task, awaits each)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any

import psycopg
from psycopg import pq

NAME = b"gongmo_sent"


class PgSent:
    """One connection of its own for the sent marks (MarkLine.mark_sent): deliver_due() lends one to all
    of its batches; a batch sent on its own opens and closes its own."""

    def __init__(self, conninfo: str, statement: str) -> None:
        self.conninfo = conninfo
        self.statement = statement  # its parameters: $1 timestamptz, $2 integer[] (ids), $3 integer[] (attempts)
        self.aconn: psycopg.AsyncConnection[Any] | None = None
        self.waiting: asyncio.Future[pq.abc.PGresult | None] | None = None
        self.broken: BaseException | None = None  # why the connection cannot go on: the next mark opens anew
        self.fd = -1  # the socket the reader is on (libpq closes it when the connection fails: kept here)
        self.result: pq.abc.PGresult | None = None  # the waiting statement's last result so far

    async def _open(self) -> pq.abc.PGconn:
        aconn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
        try:
            await aconn.execute(f"PREPARE {NAME.decode()} (timestamptz, integer[], integer[]) AS {self.statement}")
        except BaseException:
            await aconn.close()
            raise
        self.aconn, self.broken = aconn, None
        pgconn = aconn.pgconn
        pgconn.nonblocking = 1
        self.fd = pgconn.socket
        asyncio.get_running_loop().add_reader(self.fd, self._readable, pgconn)
        return pgconn

    def _unwatch(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:  # before a new connection may get the same number
            asyncio.get_running_loop().remove_reader(fd)

    def _readable(self, pgconn: pq.abc.PGconn) -> None:
        """The socket has bytes: read them; when the statement's results are all in, the waiting mark
        gets the last one. A failure (the server gone) goes to the waiting mark, or to the next one."""
        try:
            pgconn.consume_input()
            while self.waiting is not None and not pgconn.is_busy():
                got = pgconn.get_result()
                if got is None:  # the statement is done
                    waiting, self.waiting, result, self.result = self.waiting, None, self.result, None
                    if not waiting.done():
                        waiting.set_result(result)
                    return
                self.result = got  # its results may come over several reads
        except psycopg.Error as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        self.broken = exc
        self._unwatch()
        waiting, self.waiting = self.waiting, None
        if waiting is not None and not waiting.done():
            waiting.set_exception(exc)

    async def mark(self, sent: list[tuple[int, int]], now: datetime) -> None:
        """Mark the rows (id, attempts) sent at `now`; committed when it returns. psycopg.Error if the
        statement failed or the connection is lost (the next mark opens a connection anew)."""
        if self.broken is not None:  # its failure was the mark's that was waiting, if any
            await self.close()
        pgconn = self.aconn.pgconn if self.aconn is not None else await self._open()
        ids = ",".join(str(i) for i, _ in sent)
        attempts = ",".join(str(a) for _, a in sent)
        params = [now.isoformat().encode(), f"{{{ids}}}".encode(), f"{{{attempts}}}".encode()]
        self.result = None
        waiting = self.waiting = asyncio.get_running_loop().create_future()
        try:
            pgconn.send_query_prepared(NAME, params)
            while pgconn.flush():  # a mark is a few dozen bytes: the socket takes it at once
                await asyncio.sleep(0)
        except psycopg.Error as exc:
            self._fail(exc)
        try:
            result = await waiting
        except asyncio.CancelledError as exc:  # the statement's results would be the next mark's
            self._fail(exc)
            raise
        if result is None or result.status != pq.ExecStatus.COMMAND_OK:
            message = result.error_message.decode(errors="replace").strip() if result is not None else "no result"
            raise psycopg.DatabaseError(message or f"the sent mark ended {result.status.name if result else ''}")

    async def close(self) -> None:
        aconn, self.aconn, self.broken = self.aconn, None, None
        if aconn is None:
            return
        self._unwatch()
        with contextlib.suppress(Exception):
            await aconn.close()
