"""Check the audit and event logs: replay the audit log against every application's state, and
walk every hash chain (chain.py); take an anchor over the chain heads, and prove against one.

Everything streams: each table is read in chain order (a merge of the owners, ordered by id,
with their rows, ordered by chain and id), one chain (the fast pass: a few ranges of chains) in
memory at a time, so it runs in constant memory whatever the number of rows. Each chain reports
its first row that does not match: a hash that does not recompute (a row edited), a seq that
does not follow (a row deleted in the middle, or one inserted out of order), a head that is not
the last row's (rows deleted at the end, or the head edited).

verify() runs in two passes. The fast pass has the database build each row's canonical encoding
(chain.canonical_sql) and hand over whole ranges of chains at once, on two connections in one
snapshot where there are two cores; Python hashes and compares.
It can only conclude "clean"; at the first sign of anything else it stops, and the walk (every
row read and encoded in Python, as before) finds and names the problems. A clean database is
verified by the fast pass alone; a tampered one by both (the walk's findings are the report).

What the chain alone cannot catch: someone who can write to the database and recomputes every
later hash and the head (the algorithm is public, there is no key). An anchor catches that:
its digest, published (e.g. in the results announcement), fixes every head it covered, and
`verify_anchor` recomputes each covered chain up to the covered seq from the rows themselves.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import threading
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine as DbEngine

from gongmo.states.errors import InvalidInput, NotFound
from gongmo.states.lifecycle import Table
from gongmo.workflow.core import chain
from gongmo.workflow.core.db import READ_ONLY, DatabaseError
from gongmo.workflow.core.models import (
    APPLICATION,
    AUDIT,
    AUDIT_ANCHOR,
    AUDIT_ANCHOR_HEAD,
    CHAIN_HEAD,
    EVENT,
    TRACK,
)

CREATIONS = ("invite", "start")
STREAM = {"yield_per": 5000}
ANCHOR_BATCH = 5000
_AUDIT_COLUMNS = chain.COLUMNS["audit"]
_TRIGGER, _FROM, _TO = (_AUDIT_COLUMNS.index(c) for c in ("trigger", "from_state", "to_state"))
OWNER = {chain.AUDIT: "application", chain.EVENT: "application", chain.TRACK: "track", chain.GLOBAL: "global"}


@dataclass(frozen=True)
class Finding:
    application_id: int | None  # the application concerned (None: a track's or the global chain)
    problem: str
    chain: str | None = None  # "<kind> <id>", e.g. "audit 12", "track 3", "global 0"
    table: str | None = None  # the table of the row named, audit or event
    row_id: int | None = None


@dataclass(frozen=True)
class Report:
    applications: int
    audit_rows: int
    findings: list[Finding]
    event_rows: int = 0
    chains: int = 0

    @property
    def clean(self) -> bool:
        return not self.findings


# -- reading a kind's rows in chain order ------------------------------------------------------


def _rows_query(conn: Connection, kind: str) -> sa.Select[Any]:
    """(chain id, row id, seq, hash, *canonical columns) of every row of the kind's chains, in chain order."""
    table = AUDIT if kind == chain.AUDIT else EVENT
    dialect = conn.dialect.name
    canon = [chain.at_text(table.c.at, dialect) if c == "at" else table.c[c] for c in chain.COLUMNS[table.name]]
    if kind == chain.AUDIT:
        key: sa.ColumnElement[Any] = AUDIT.c.application_id
        where = None
    elif kind == chain.EVENT:
        key, where = EVENT.c.application_id, EVENT.c.application_id.is_not(None)
    elif kind == chain.TRACK:
        key, where = EVENT.c.track_id, sa.and_(EVENT.c.application_id.is_(None), EVENT.c.track_id.is_not(None))
    else:
        key = sa.literal(chain.GLOBAL_ID)
        where = sa.and_(EVENT.c.application_id.is_(None), EVENT.c.track_id.is_(None))
    query = sa.select(key, table.c.id, table.c.seq, table.c.hash, *canon)
    query = query.order_by(key, table.c.id) if kind != chain.GLOBAL else query.order_by(table.c.id)
    return query if where is None else query.where(where)


def _chains(conn: Connection, kind: str) -> Iterator[tuple[int, list[Any]]]:
    rows = conn.execute(_rows_query(conn, kind), execution_options=STREAM)
    for chain_id, group in groupby(rows, key=lambda r: r[0]):
        yield int(chain_id), list(group)


def _heads_query(kind: str) -> sa.Select[Any]:
    """(chain id, head seq, head hash) of every chain owner of the kind, by id."""
    if kind == chain.AUDIT:
        return sa.select(APPLICATION.c.id, APPLICATION.c.audit_seq, APPLICATION.c.audit_hash).order_by(APPLICATION.c.id)
    if kind == chain.EVENT:
        return sa.select(APPLICATION.c.id, APPLICATION.c.event_seq, APPLICATION.c.event_hash).order_by(APPLICATION.c.id)
    if kind == chain.TRACK:
        return sa.select(TRACK.c.id, TRACK.c.event_seq, TRACK.c.event_hash).order_by(TRACK.c.id)
    return sa.select(sa.literal(chain.GLOBAL_ID), CHAIN_HEAD.c.seq, CHAIN_HEAD.c.hash).where(
        CHAIN_HEAD.c.kind == chain.GLOBAL
    )


def _merge(owners: Any, groups: Iterator[tuple[int, Any]]) -> Iterator[tuple[Any, int, Any]]:
    """(owner row or None, chain id, rows) for every owner and every chain, both in id order."""
    group = next(groups, None)
    for owner in owners:
        oid = int(owner[0])
        while group is not None and group[0] < oid:
            yield None, group[0], group[1]
            group = next(groups, None)
        if group is not None and group[0] == oid:
            yield owner, oid, group[1]
            group = next(groups, None)
        else:
            yield owner, oid, []
    while group is not None:
        yield None, group[0], group[1]
        group = next(groups, None)


def _walk(
    kind: str, chain_id: int, rows: list[Any], upto: int | None = None
) -> tuple[str | None, int | None, int, str]:
    """Recompute a chain (up to seq `upto`): (problem or None, its row id, last seq, last hash)."""
    table = "audit" if kind == chain.AUDIT else "event"
    prev = chain.genesis(kind, chain_id)
    expect = 1
    encode, sha256 = chain.canonical_values, hashlib.sha256
    for row in rows:
        if upto is not None and expect > upto:
            break
        if row[2] != expect:
            return _out_of_line(table, row, expect), row[1], expect - 1, prev.hex()
        digest = sha256(prev + encode(table, row[4:])).digest()
        if digest.hex() != row[3]:
            return (
                f"{table} row {row[1]} (seq {row[2]}) does not match its hash: recomputed {digest.hex()},"
                f" stored {row[3]} (the row was changed)",
                row[1],
                expect - 1,
                prev.hex(),
            )
        prev = digest
        expect += 1
    return None, (rows[expect - 2][1] if expect > 1 else None), expect - 1, prev.hex()


def _out_of_line(table: str, row: Any, expect: int) -> str:
    row_id, seq, stored = row[1], row[2], row[3]
    if seq is None or stored is None:
        return f"{table} row {row_id} is not chained (no seq or hash)"
    if seq > expect:
        missing = seq - expect
        return (
            f"{table} row {row_id} has seq {seq} after seq {expect - 1}:"
            f" {missing} row{'s' if missing > 1 else ''} missing before it (deleted)"
        )
    return f"{table} row {row_id} has seq {seq} after seq {expect - 1}: a row out of order (inserted)"


def _head_problem(kind: str, seq: int, last: str, head_seq: int | None, head: str | None) -> str | None:
    if seq == 0 and head_seq in (None, 0) and head is None:
        return None
    if seq == (head_seq or 0) and last == head:
        return None
    owner = OWNER[kind]
    return (
        f"the {owner}'s {kind} chain head is seq {head_seq or 0}, hash {head} but its last row is seq {seq},"
        f" hash {last if seq else None}: rows deleted at the end, or the head was changed"
    )


def _application_of(kind: str, chain_id: int) -> int | None:
    return chain_id if kind in (chain.AUDIT, chain.EVENT) else None


# -- verify -----------------------------------------------------------------------------------


def verify(conn: Connection, table: Table, limit: int = 1000) -> Report:
    """Replay the audit log against every application's state, and walk every chain: first the
    fast pass (_fast_verify), which can only say "clean"; if it cannot, the walk (_walk_verify),
    which names each chain's first problem."""
    report = _fast_verify(conn, table)
    return report if report is not None else _walk_verify(conn, table, limit)


def _walk_verify(conn: Connection, table: Table, limit: int) -> Report:
    """verify() row by row: every row read and encoded in Python (chain.canonical_values)."""
    findings: list[Finding] = []
    counts = {"apps": 0, "audit": 0, "event": 0, "chains": 0}
    owners = conn.execute(
        sa.select(APPLICATION.c.id, APPLICATION.c.state, APPLICATION.c.audit_seq, APPLICATION.c.audit_hash).order_by(
            APPLICATION.c.id
        ),
        execution_options=STREAM,
    )
    for owner, app_id, rows in _merge(owners, _chains(conn, chain.AUDIT)):
        counts["audit"] += len(rows)
        if owner is None:
            findings.append(Finding(app_id, "audit rows for an application that does not exist", f"audit {app_id}"))
            continue
        counts["apps"] += 1
        history = [(app_id, r[1], r[4 + _TRIGGER], r[4 + _FROM], r[4 + _TO]) for r in rows]
        if history:
            replayed, problem = replay(table, history)
        else:
            replayed, problem = None, "no audit rows"
        if problem:
            findings.append(Finding(app_id, problem))
        elif replayed != owner[1]:
            findings.append(Finding(app_id, f"state is '{owner[1]}' but the audit log replays to '{replayed}'"))
        if rows or owner[2] is not None or owner[3] is not None:
            counts["chains"] += 1
            found = _chain_finding(chain.AUDIT, app_id, rows, owner[2], owner[3])
            if found is not None:
                findings.append(found)
        if len(findings) >= limit:
            return Report(counts["apps"], counts["audit"], findings, counts["event"], counts["chains"])
    for kind in (chain.EVENT, chain.TRACK, chain.GLOBAL):
        owners = conn.execute(_heads_query(kind), execution_options=STREAM)
        for owner, chain_id, rows in _merge(owners, _chains(conn, kind)):
            counts["event"] += len(rows)
            if owner is None:
                problem = f"event rows for a {OWNER[kind]} that does not exist ({kind} chain {chain_id})"
                findings.append(Finding(_application_of(kind, chain_id), problem, f"{kind} {chain_id}", "event"))
            elif rows or owner[1] is not None or owner[2] is not None:
                counts["chains"] += 1
                found = _chain_finding(kind, chain_id, rows, owner[1], owner[2])
                if found is not None:
                    findings.append(found)
            if len(findings) >= limit:
                break
    return Report(counts["apps"], counts["audit"], findings, counts["event"], counts["chains"])


def _chain_finding(kind: str, chain_id: int, rows: list[Any], head_seq: int | None, head: str | None) -> Finding | None:
    table = "audit" if kind == chain.AUDIT else "event"
    problem, row_id, seq, last = _walk(kind, chain_id, rows)
    if problem is None:
        problem = _head_problem(kind, seq, last, head_seq, head)
    if problem is None:
        return None
    return Finding(_application_of(kind, chain_id), problem, f"{kind} {chain_id}", table, row_id)


# -- verify: the fast pass ----------------------------------------------------------------------
#
# The same checks as the walk, with the per-row work moved into the database. The owners of a
# kind's chains are taken in ranges of RANGE, by id; per range, one statement returns one row:
# per chain, its id and row count, a signature of its rows (seq, trigger, from and to states, in
# id order), their canonical encodings (chain.canonical_sql) and their stored hashes, each
# concatenated; a second statement the owners (the application's state, the heads). Python
# hashes the encodings, compares the digests with the stored hashes in one comparison per range,
# and looks each signature up in a small cache of replayed histories (chains share a few
# shapes). Read through DBAPI cursors (the caller's connection, and a second one in its
# snapshot: below), a few ranges at a time, so memory stays constant.
#
# It can only conclude "clean": every row recomputes to its stored hash from its canonical
# encoding, seqs run 1, 2, ..., the heads are the last rows', every history replays to its
# application's state. At the first range where anything differs (or the database refuses the
# query, or an encoding comes out of SQL other than canonical() would write it, which makes its
# hash differ), it gives up and verify() walks everything row by row, as the walk names problems.

RANGE = 500  # owners per range: the fast pass reads its chains one range at a time
_HISTORIES = 4096  # replayed signatures kept (then the cache starts again)
_BEYOND = 2**62  # the upper bound of the last range (ids are INTEGER)


def _fast_verify(conn: Connection, table: Table) -> Report | None:
    """A clean Report, or None: a chain may have a problem (or the fast pass cannot run here)."""
    dialect = conn.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        return None
    errors = (conn.dialect.loaded_dbapi.Error, ValueError, UnicodeError)
    try:
        if dialect == "postgresql":  # a failed statement must not end the caller's transaction
            exported = _export_snapshot(conn)
            with conn.begin_nested():
                return _fast(conn, dialect, table, exported)
        return _fast(conn, dialect, table, None)
    except errors:
        return None


def _fast(conn: Connection, dialect: str, table: Table, exported: str | None) -> Report | None:
    histories: dict[str, str | None] = {}
    apps = audit_rows = event_rows = chains = 0
    with _connections(conn, dialect, exported) as drivers, _produced(drivers, dialect) as ranges:
        for kind, owners, found in ranges:
            verdict = _fast_range(kind, table, owners, found, histories)
            if verdict is None:
                return None
            owned, counted, walked = verdict
            chains += walked
            if kind == chain.AUDIT:
                apps, audit_rows = apps + owned, audit_rows + counted
            else:
                event_rows += counted
    return Report(apps, audit_rows, [], event_rows, chains)


def _ranges(
    driver: Any, dialect: str, kind: str, mine: int, workers: int
) -> Generator[tuple[list[Any], Any], None, None]:
    """(owners, the chains' row) of each range of RANGE owners of the kind, by id, whose number
    modulo `workers` is `mine`: three statements per range (its upper bound, its owners, its
    chains; only the bounds for the others' ranges), each on a few hundred owners."""
    bound, owners, chains = _range_sql(kind, dialect)
    binary = {"binary": True} if dialect == "postgresql" else {}  # bytea as it is, not as hex text
    cursor = driver.cursor()
    try:
        low, number = -1, 0
        while True:
            high = _BEYOND
            if bound:
                cursor.execute(bound, (low,))
                row = cursor.fetchone()
                high = _BEYOND if row is None else int(row[0])
            if number % workers == mine:
                cursor.execute(owners, (low, high))
                found = cursor.fetchall()
                cursor.execute(chains, (low, high), **binary)
                yield found, cursor.fetchone()
            if high == _BEYOND:
                return
            low, number = high, number + 1
    finally:
        cursor.close()


# -- the fast pass on two connections ------------------------------------------------------------
#
# On a machine with two cores or more, the ranges are shared between two connections, the
# caller's and one more taken from the pool, each driven by a thread (SQLite's step and psycopg's
# wait release the GIL; PostgreSQL works in server processes of its own), while the caller's
# thread hashes: the database's work for two ranges and Python's for a third run at once. The
# second connection sees the caller's snapshot: on PostgreSQL it imports it (pg_export_snapshot);
# on SQLite, which cannot share one, it opens its own read transaction and is used only if it
# sees the same last ids of every table of the chains (rows are only ever appended, and every
# head moves with a row appended); otherwise the caller's connection does all the ranges.

_FINGERPRINT = (
    "SELECT (SELECT max(id) FROM audit), (SELECT max(id) FROM event), (SELECT max(id) FROM application),"
    " (SELECT max(id) FROM track), (SELECT max(seq) FROM chain_head)"
)


def _export_snapshot(conn: Connection) -> str | None:
    """PostgreSQL: the caller's snapshot, exported for a second connection (None: not here)."""
    if (os.cpu_count() or 1) < 2 or conn.in_nested_transaction():  # not from a subtransaction
        return None
    if conn.exec_driver_sql("SELECT pg_is_in_recovery()").scalar():
        return None
    exported = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
    return str(exported) if exported else None


@contextmanager
def _connections(conn: Connection, dialect: str, exported: str | None) -> Iterator[list[Any]]:
    """The DBAPI connections of the fast pass: the caller's, and a second in the same snapshot."""
    drivers: list[Any] = [conn.connection.driver_connection]
    second = None
    if (os.cpu_count() or 1) >= 2 and (dialect == "sqlite" or exported):
        try:
            second = conn.engine.raw_connection()
            driver: Any = second.driver_connection
            if dialect == "postgresql" and re.fullmatch(r"[0-9A-Fa-f-]+", exported or ""):
                driver.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                driver.execute(f"SET TRANSACTION SNAPSHOT '{exported}'")
                drivers.append(driver)
            elif dialect == "sqlite":
                driver.execute("BEGIN")
                theirs = driver.execute(_FINGERPRINT).fetchone()
                if theirs == drivers[0].execute(_FINGERPRINT).fetchone():
                    drivers.append(driver)
        except conn.dialect.loaded_dbapi.Error:
            pass  # the caller's connection alone
    try:
        yield drivers
    finally:
        if second is not None:
            second.rollback()
            second.close()


@contextmanager
def _produced(drivers: list[Any], dialect: str) -> Iterator[Iterator[tuple[str, list[Any], Any]]]:
    """(kind, owners, chains' row) of every range, each connection's produced by a thread of its
    own (one item ahead): while Python checks a range, the database computes the next ones. The
    order is not kept (a clean verdict does not depend on it)."""
    handed: queue.Queue[Any] = queue.Queue(maxsize=2 * len(drivers))
    stop = threading.Event()
    end = object()

    def produce(mine: int, driver: Any) -> None:
        try:
            for kind in chain.KINDS:
                with closing(_ranges(driver, dialect, kind, mine, len(drivers))) as ranges:
                    for owners, found in ranges:
                        if not _put(handed, stop, (kind, owners, found)):
                            return
            _put(handed, stop, end)
        except BaseException as exc:  # handed to the caller's thread, raised there
            _put(handed, stop, exc)

    def consume() -> Iterator[tuple[str, list[Any], Any]]:
        ended = 0
        while ended < len(drivers):
            item = handed.get()
            if item is end:
                ended += 1
                continue
            if isinstance(item, BaseException):
                raise item
            yield item

    workers = [
        threading.Thread(target=produce, args=(mine, driver), name=f"gongmo-verify-{mine}", daemon=True)
        for mine, driver in enumerate(drivers)
    ]
    for worker in workers:
        worker.start()
    try:
        yield consume()
    finally:
        stop.set()
        for worker in workers:
            worker.join()


def _fast_range(
    kind: str, table: Table, owners: list[Any], found: Any, histories: dict[str, str | None]
) -> tuple[int, int, int] | None:
    """(owners, rows, chains) of a range if every chain in it is clean, or None if one may not be."""
    ids: str | None
    ids, sigs, texts, hashes = found if found is not None else (None, "", b"", "")
    counted: list[tuple[int, int]] = []
    parts: list[bytes] = []
    signatures: list[str] = []
    if ids is not None:
        listed = [tuple(map(int, x.split(":"))) for x in ids.split(",")]
        if any(hashed != n for _, n, hashed in listed):  # a NULL hash, or one not 64 long
            return None
        counted = [(c, n) for c, n, _ in listed]
        signatures, parts = sigs.split("|"), texts.split(b"\n")
        if len(signatures) != len(counted) or len(parts) != sum(n for _, n in counted):
            return None
    sha256 = hashlib.sha256
    prefix = f"gongmo:{kind}:".encode()  # chain.genesis
    digests: list[bytes] = []
    at = walked = chains = 0
    chains_found = ((c, (n, sig)) for (c, n), sig in zip(counted, signatures, strict=True))
    for owner, chain_id, found_chain in _merge(owners, chains_found):
        if owner is None:
            return None  # rows of no owner, or of an owner without a head
        head_seq, head = owner[-2], owner[-1]
        if not found_chain:  # an owner with a head (an application: with or without) and no rows
            if kind == chain.AUDIT or _head_problem(kind, 0, "", head_seq, head) is not None:
                return None
            chains += 1
            continue
        n, sig = found_chain
        if head_seq != n:
            return None
        if kind == chain.AUDIT:
            if sig not in histories:
                if len(histories) >= _HISTORIES:
                    histories.clear()
                histories[sig] = _replayed(table, sig, n)
            if histories[sig] is None or histories[sig] != owner[1]:
                return None
        elif sig != _seqs(n):
            return None
        prev = sha256(prefix + str(chain_id).encode()).digest()
        links = [prev := sha256(prev + part).digest() for part in parts[at : at + n]]
        if prev.hex() != head:
            return None
        digests += links
        at += n
        walked += n
        chains += 1
    if digests and b"".join(digests).hex() != hashes:
        return None
    return len(owners), walked, chains


def _put(handed: queue.Queue[Any], stop: threading.Event, item: Any) -> bool:
    """Hand an item over unless the consumer stopped (then False)."""
    while not stop.is_set():
        try:
            handed.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


_HEADS = "({0} IS NOT NULL OR {1} IS NOT NULL)"
# Per kind: the owners' table, their columns, which of them own a chain; the rows' table, the
# chain id's column, which rows belong to the kind.
_FAST_KINDS = {
    chain.AUDIT: ("application", "id, state, audit_seq, audit_hash", None, "audit", "application_id", None),
    chain.EVENT: (
        "application",
        "id, event_seq, event_hash",
        _HEADS.format("event_seq", "event_hash"),
        "event",
        "application_id",
        "application_id IS NOT NULL",
    ),
    chain.TRACK: (
        "track",
        "id, event_seq, event_hash",
        _HEADS.format("event_seq", "event_hash"),
        "event",
        "track_id",
        "application_id IS NULL AND track_id IS NOT NULL",
    ),
    chain.GLOBAL: (
        "chain_head",
        f"{chain.GLOBAL_ID}, seq, hash",
        f"kind = '{chain.GLOBAL}' AND {_HEADS.format('seq', 'hash')}",
        "event",
        str(chain.GLOBAL_ID),
        "application_id IS NULL AND track_id IS NULL",
    ),
}


def _range_sql(kind: str, dialect: str) -> tuple[str | None, str, str]:
    """(the next range's upper bound: the RANGE-th owner after the bound given; the range's
    owners, by id; its chains: one row of four strings: "id:rows:rows with a 64-long hash" per
    chain, ','-separated, by chain id; their signatures, '|'-separated; their canonical
    encodings (chain.canonical_sql), newline-separated (JSON text never holds a raw newline), as
    bytes; their stored hashes).
    A chain's signature: per row, in id order, "seq" (events) or "seq,trigger,=from_state,to_state"
    (audit; '' for a NULL from_state), ';'-separated; a NULL anywhere drops the row from it.
    The range is low < id <= high (parameters)."""
    owner_table, columns, owning, rows_table, key, belongs = _FAST_KINDS[kind]
    p = "%s" if dialect == "postgresql" else "?"
    owned = f" AND {owning}" if owning else ""
    if kind == chain.GLOBAL:  # one owner, one range (and no GROUP BY 0: that would name a column)
        bound, owners, group = None, f"SELECT {columns} FROM {owner_table} WHERE {owning} AND {p} < 0 AND 0 <= {p}", ""
    else:
        bound = f"SELECT id FROM {owner_table} WHERE id > {p}{owned} ORDER BY id LIMIT 1 OFFSET {RANGE - 1}"
        owners = f"SELECT {columns} FROM {owner_table} WHERE id > {p} AND id <= {p}{owned} ORDER BY id"
        group = f" GROUP BY {key} ORDER BY {key}"
    where = f"{key} > {p} AND {key} <= {p}" + (f" AND {belongs}" if belongs else "")
    canon = chain.canonical_sql(rows_table, dialect)
    item = "seq || ',' || trigger || ',' || coalesce('=' || from_state, '') || ',' || to_state"
    sig = item if kind == chain.AUDIT else "seq"
    # the rows whose hash is 64 long: the concatenated hashes cut into 64s are the rows' hashes
    hashed = "sum(CASE WHEN length(hash) = 64 THEN 1 ELSE 0 END)"
    if dialect == "postgresql":
        # The rows come from a subquery in chain order: an ORDER BY inside each aggregate would
        # sort every chain three times (it doubles the time); PostgreSQL aggregates a sorted
        # subquery's rows in its order (were it ever not so, hashes would not match: the walk).
        ordered = f"SELECT * FROM {rows_table} WHERE {where} ORDER BY {key if group else ''}{', ' if group else ''}id"
        inner = (
            f"SELECT {key} AS cid, count(*) AS n, {hashed} AS hashed, string_agg(({sig})::text, ';') AS sig,"
            f" string_agg({canon}, E'\\n') AS texts, string_agg(hash, '') AS hashes"
            f" FROM ({ordered}) AS r{group.replace(f' ORDER BY {key}', '')}"
        )
        chains = (
            "SELECT string_agg(cid || ':' || n || ':' || hashed, ',' ORDER BY cid),"
            " string_agg(coalesce(sig, ''), '|' ORDER BY cid),"
            " convert_to(string_agg(texts, E'\\n' ORDER BY cid), 'UTF8'),"
            f" string_agg(coalesce(hashes, ''), '' ORDER BY cid) FROM ({inner} HAVING count(*) > 0) AS c"
        )
        return bound, owners, chains
    # SQLite has no ORDER BY inside an aggregate: it concatenates in the order it reads the rows,
    # its index on (chain id, id), and the chains in the subquery's order; were it ever not id
    # order, hashes would not match and verify() would walk, never wrongly "clean".
    inner = (
        f"SELECT {key} AS cid, count(*) AS n, {hashed} AS hashed, group_concat({sig}, ';') AS sig,"
        f" group_concat({canon}, char(10)) AS texts, group_concat(hash, '') AS hashes"
        f" FROM {rows_table} WHERE {where}"
    )
    inner += f" GROUP BY {key} HAVING count(*) > 0 ORDER BY {key}" if group else " HAVING count(*) > 0"
    chains = (
        "SELECT group_concat(cid || ':' || n || ':' || hashed, ','), group_concat(coalesce(sig, ''), '|'),"
        " CAST(group_concat(texts, char(10)) AS BLOB), group_concat(coalesce(hashes, ''), '')"
        f" FROM ({inner})"
    )
    return bound, owners, chains


def _replayed(table: Table, sig: str, n: int) -> str | None:
    """The state a chain's signature replays to, or None: seqs not 1..n, or a replay problem."""
    history = []
    items = sig.split(";")
    if len(items) != n:
        return None
    for i, item in enumerate(items, start=1):
        fields = item.split(",")
        if len(fields) != 4 or fields[0] != str(i) or not (fields[2] == "" or fields[2].startswith("=")):
            return None
        history.append((None, None, fields[1], fields[2][1:] if fields[2] else None, fields[3]))
    state, problem = replay(table, history)
    return None if problem else state


_SEQS: dict[int, str] = {}


def _seqs(n: int) -> str:
    """The signature of an event chain of n rows: "1;2;...;n" (as its seqs concatenate)."""
    if n not in _SEQS:
        if len(_SEQS) >= _HISTORIES:
            _SEQS.clear()
        _SEQS[n] = ";".join(map(str, range(1, n + 1)))
    return _SEQS[n]


# -- anchors ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    digest: str
    at: datetime
    rows: int
    chains: int
    taken: bool = True  # False: an anchor with this digest had been taken already (nothing changed since)


@dataclass(frozen=True)
class AnchorReport:
    anchor: Anchor
    root: str  # the root recomputed from the rows
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings and self.root == self.anchor.digest


def _all_heads(conn: Connection) -> Iterator[tuple[str, int, int, str]]:
    """(kind, id, seq, head) of every chain with a row, sorted by kind, then id."""
    for kind in chain.KINDS:
        query = _heads_query(kind)
        hash_column = query.selected_columns[2]
        for chain_id, seq, head in conn.execute(query.where(hash_column.is_not(None)), execution_options=STREAM):
            yield kind, int(chain_id), int(seq or 0), str(head)


def take_anchor(conn: Connection, now: datetime) -> Anchor:
    """The Merkle root over every chain head, stored with the heads it covers (in the caller's
    transaction; take it in a snapshot: `snapshot(engine, write=True)`)."""
    root, rows, chains = chain.MerkleRoot(), 0, 0
    for kind, chain_id, seq, head in _all_heads(conn):
        root.add(chain.leaf(kind, chain_id, head))
        rows, chains = rows + seq, chains + 1
    digest = root.root()
    known = conn.execute(sa.select(AUDIT_ANCHOR).where(AUDIT_ANCHOR.c.digest == digest)).mappings().first()
    if known is not None:
        return Anchor(digest, known["at"], int(known["rows"]), int(known["chains"]), taken=False)
    anchor_id = conn.execute(
        sa.insert(AUDIT_ANCHOR).values(digest=digest, at=now, rows=rows, chains=chains).returning(AUDIT_ANCHOR.c.id)
    ).scalar_one()
    batch: list[dict[str, Any]] = []
    for kind, chain_id, seq, head in _all_heads(conn):
        batch.append({"anchor_id": anchor_id, "kind": kind, "chain_id": chain_id, "seq": seq, "head": head})
        if len(batch) >= ANCHOR_BATCH:
            conn.execute(sa.insert(AUDIT_ANCHOR_HEAD), batch)
            batch = []
    if batch:
        conn.execute(sa.insert(AUDIT_ANCHOR_HEAD), batch)
    return Anchor(digest, now, rows, chains)


def anchors(conn: Connection) -> list[Anchor]:
    query = sa.select(AUDIT_ANCHOR).order_by(AUDIT_ANCHOR.c.id)
    return [Anchor(r["digest"], r["at"], int(r["rows"]), int(r["chains"])) for r in conn.execute(query).mappings()]


def verify_anchor(conn: Connection, digest: str, limit: int = 1000) -> AnchorReport:
    """Prove that nothing an anchor covered changed: recompute every chain it covered, from its
    rows, up to the covered seq; each must end on the covered head, and the Merkle root of the
    recomputed heads must be the digest."""
    given = digest.strip().lower()
    if len(given) != 64 or any(c not in "0123456789abcdef" for c in given):
        raise InvalidInput(
            "{given}: an anchor digest is 64 hexadecimal characters, as `gongmo audit anchor` prints it",
            field="anchor",
            value=digest,
            shown=repr(digest),
        )
    row = conn.execute(sa.select(AUDIT_ANCHOR).where(AUDIT_ANCHOR.c.digest == given)).mappings().first()
    if row is None:
        raise NotFound(
            f"no anchor {given} was taken in this database: check the digest you were given"
            " (`gongmo audit anchor --list` shows the anchors taken)"
        )
    anchor = Anchor(given, row["at"], int(row["rows"]), int(row["chains"]))
    root = chain.MerkleRoot()
    findings: list[Finding] = []
    for kind in chain.KINDS:
        covered = conn.execute(
            sa.select(AUDIT_ANCHOR_HEAD.c.chain_id, AUDIT_ANCHOR_HEAD.c.seq, AUDIT_ANCHOR_HEAD.c.head)
            .where(AUDIT_ANCHOR_HEAD.c.anchor_id == row["id"], AUDIT_ANCHOR_HEAD.c.kind == kind)
            .order_by(AUDIT_ANCHOR_HEAD.c.chain_id),
            execution_options=STREAM,
        )
        for owner, chain_id, rows in _merge(covered, _chains(conn, kind)):
            if owner is None:
                continue  # a chain begun after the anchor
            seq, head = int(owner[1]), str(owner[2])
            problem, row_id, last_seq, last = _walk(kind, chain_id, rows, upto=seq)
            if problem is None and last_seq < seq:
                problem = (
                    f"the chain ends at seq {last_seq}, the anchor covered seq {seq}: rows deleted since the anchor"
                )
            elif problem is None and last != head:
                problem = (
                    f"the rows up to seq {seq} recompute to {last}, the anchor covered {head}:"
                    f" rows at or before seq {seq} were rewritten (with their hashes) since the anchor"
                )
            root.add(chain.leaf(kind, chain_id, last))
            if problem is not None and len(findings) < limit:
                table = "audit" if kind == chain.AUDIT else "event"
                findings.append(Finding(_application_of(kind, chain_id), problem, f"{kind} {chain_id}", table, row_id))
    recomputed = root.root()
    if not findings and recomputed != given:
        findings.append(
            Finding(
                None, f"the covered heads recompute to root {recomputed}, not {given}: the anchor's heads were changed"
            )
        )
    return AnchorReport(anchor, recomputed, findings)


@contextmanager
def snapshot(engine: DbEngine, write: bool = False) -> Iterator[Connection]:
    """One consistent view for a verify or an anchor: REPEATABLE READ on PostgreSQL (the heads and
    the rows read by different statements agree); on SQLite a read transaction is a snapshot
    already, and an anchor's write transaction (BEGIN IMMEDIATE) holds the writers off."""
    options: dict[str, Any] = {}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "REPEATABLE READ"
    elif not write:
        options[READ_ONLY] = True
    try:
        with engine.connect() as raw:
            conn = raw.execution_options(**options)
            with conn.begin():
                yield conn
    except sa.exc.OperationalError as exc:  # as core/db.py's read() and write() say it
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        url = engine.url.render_as_string(hide_password=True)
        if "no such table" in detail or "does not exist" in detail:
            raise DatabaseError(f"database {url} is not initialised ({detail}): run `gongmo init`") from exc
        raise DatabaseError(f"database {url}: {detail}") from exc


def replay(table: Table, history: list[Any]) -> tuple[str | None, str | None]:
    """Return (state replayed, problem or None)."""
    state: str | None = None
    for _app, audit_id, trigger, src, dest in history:
        if state is None:
            if trigger not in CREATIONS or src is not None or dest != table.initial:
                return None, f"audit {audit_id}: the first row must create the application in '{table.initial}'"
            state = dest
            continue
        if src != state:
            return state, f"audit {audit_id}: '{trigger}' starts from '{src}' but the application was in '{state}'"
        expected = table.dest(state, trigger)
        if expected is None or expected != dest:
            return state, f"audit {audit_id}: '{trigger}' from '{state}' to '{dest}' is not a move of the table"
        state = dest
    return state, None


# -- verify runs, recorded (audit_check, 0012) -----------------------------------------------------
# `gongmo audit verify` and the console's "verify now" (health page) store each run, so the office
# sees when the log was last checked and what was found. (Kept at the end of the module and with
# its own imports: verify's internals above change on their own.)


def finding_line(f: Finding) -> str:
    """One finding in words: whose chain (or which application) and the problem."""
    if f.chain is None:
        return f"application {f.application_id}: {f.problem}"
    kind, chain_id = f.chain.split(" ")
    owner = {"audit": "application", "event": "application", "track": "track"}.get(kind)
    who = f"{owner} {chain_id}" if owner else "global chain"
    return f"{who} ({kind} chain): {f.problem}"


def check(engine: DbEngine, table: Table, now: datetime, by: str) -> Report:
    """Run `verify` in a snapshot, then store the run (one audit_check row, its own transaction)."""
    from gongmo.workflow.core.db import write
    from gongmo.workflow.core.models import AUDIT_CHECK

    with snapshot(engine) as conn:
        report = verify(conn, table)
    first = finding_line(report.findings[0])[:2000] if report.findings else None
    with write(engine) as conn:
        conn.execute(
            sa.insert(AUDIT_CHECK).values(
                at=now,
                by=by[:200],
                clean=report.clean,
                applications=report.applications,
                audit_rows=report.audit_rows,
                event_rows=report.event_rows,
                chains=report.chains,
                findings=len(report.findings),
                first_finding=first,
            )
        )
    return report


def last_check(conn: Connection) -> dict[str, Any] | None:
    """The latest recorded verify run (audit_check), or None if verify never ran."""
    from gongmo.workflow.core.models import AUDIT_CHECK

    found = conn.execute(sa.select(AUDIT_CHECK).order_by(AUDIT_CHECK.c.id.desc()).limit(1)).mappings().first()
    return None if found is None else dict(found)
