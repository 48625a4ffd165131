"""Check the audit and event logs: replay the audit log against every application's state, and
walk every hash chain (chain.py); take an anchor over the chain heads, and prove against one.

Everything streams: each table is read in chain order (a merge of the owners, ordered by id,
with their rows, ordered by chain and id), one chain in memory at a time, so it runs in
constant memory whatever the number of rows. Each chain reports its first row that does not
match: a hash that does not recompute (a row edited), a seq that does not follow (a row
deleted in the middle, or one inserted out of order), a head that is not the last row's (rows
deleted at the end, or the head edited).

What the chain alone cannot catch: someone who can write to the database and recomputes every
later hash and the head (the algorithm is public, there is no key). An anchor catches that:
its digest, published (e.g. in the results announcement), fixes every head it covered, and
`verify_anchor` recomputes each covered chain up to the covered seq from the rows themselves.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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


def _merge(owners: Any, groups: Iterator[tuple[int, list[Any]]]) -> Iterator[tuple[Any, int, list[Any]]]:
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
# The same checks as the walk, with the per-row work moved into the database: one query per kind
# returns, per chain in chain-id order, its row count, a signature of its rows (seq, trigger,
# from and to states, in id order), their canonical encodings (chain.canonical_sql, one
# newline-separated string: JSON text never holds a raw newline) and their stored hashes (one
# string); a second query its owners (the application's state and heads). Python only hashes
# the encodings, compares the digests with the stored hashes in one comparison per chain, and
# looks the signature up in a small cache of replayed histories (chains share a few shapes). Read
# through the DBAPI cursor of the caller's connection (the same snapshot), streamed (a
# server-side cursor on PostgreSQL), so memory stays constant.
#
# It can only conclude "clean": every row recomputes to its stored hash from its canonical
# encoding, seqs run 1, 2, ..., the heads are the last rows', every history replays to its
# application's state. At the first chain where anything differs (or the database refuses the
# query, or an encoding comes out of SQL other than canonical() would write it, which makes its
# hash differ), it gives up and verify() walks everything row by row, as the walk names problems.

FAST_BATCH = 500  # chains per round trip of the fast pass's server-side cursor
_HISTORIES = 4096  # replayed signatures kept (then the cache starts again)


def _fast_verify(conn: Connection, table: Table) -> Report | None:
    """A clean Report, or None: a chain may have a problem (or the fast pass cannot run here)."""
    dialect = conn.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        return None
    errors = (conn.dialect.loaded_dbapi.Error, ValueError, UnicodeError)
    try:
        if dialect == "postgresql":  # a failed statement must not end the caller's transaction
            with conn.begin_nested():
                return _fast(conn, dialect, table)
        return _fast(conn, dialect, table)
    except errors:
        return None


def _fast(conn: Connection, dialect: str, table: Table) -> Report | None:
    driver = conn.connection.driver_connection
    histories: dict[str, str | None] = {}
    apps = audit_rows = event_rows = chains = 0
    for kind in chain.KINDS:
        with _cursor(driver, dialect, "owners") as owners, _cursor(driver, dialect, "chains") as rows:
            owners.execute(_FAST_OWNERS[kind])
            rows.execute(_fast_chains_sql(kind, dialect))
            with _prefetched(rows) as batches:
                groups = ((int(r[0]), r) for batch in batches for r in batch)
                found = _fast_kind(kind, table, _merge(owners, groups), histories)
        if found is None:
            return None
        owned, counted, walked = found
        chains += walked
        if kind == chain.AUDIT:
            apps, audit_rows = owned, counted
        else:
            event_rows += counted
    return Report(apps, audit_rows, [], event_rows, chains)


def _fast_kind(
    kind: str, table: Table, merged: Iterator[tuple[Any, int, Any]], histories: dict[str, str | None]
) -> tuple[int, int, int] | None:
    """(owners, rows, chains) of the kind if every chain is clean, or None at the first that may not be."""
    sha256 = hashlib.sha256
    prefix = f"gongmo:{kind}:".encode()  # chain.genesis
    owners = rows = chains = 0
    for owner, chain_id, found in merged:
        if owner is None:
            return None  # rows of no owner, or of an owner without a head
        owners += 1
        head_seq, head = owner[-2], owner[-1]
        if not found:  # an owner with a head (an application: with or without) and no rows
            if kind == chain.AUDIT or _head_problem(kind, 0, "", head_seq, head) is not None:
                return None
            chains += 1
            continue
        _, n, sig, texts, hashes = found
        parts = texts.split(b"\n")
        if len(parts) != n or head_seq != n:
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
        digests = [prev := sha256(prev + part).digest() for part in parts]
        if head != hashes[-64:] or b"".join(digests).hex() != hashes:
            return None
        rows += n
        chains += 1
    return owners, rows, chains


@contextmanager
def _prefetched(cursor: Any) -> Iterator[Iterator[list[Any]]]:
    """The cursor's rows in batches, fetched by a thread one batch ahead: while Python hashes a
    batch, the database computes the next (SQLite's step and psycopg's wait release the GIL; on
    PostgreSQL the server works in its own process). The same connection, so the same snapshot;
    the caller's thread does not use this cursor meanwhile."""
    batches: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def fetch() -> None:
        try:
            while not stop.is_set():
                batch = cursor.fetchmany(FAST_BATCH)
                _put(batches, stop, batch)
                if not batch:
                    return
        except BaseException as exc:  # handed to the caller's thread, raised there
            _put(batches, stop, exc)

    def drain() -> Iterator[list[Any]]:
        while True:
            batch = batches.get()
            if isinstance(batch, BaseException):
                raise batch
            if not batch:
                return
            yield batch

    worker = threading.Thread(target=fetch, name="gongmo-verify-fetch", daemon=True)
    worker.start()
    try:
        yield drain()
    finally:
        stop.set()
        worker.join()


def _put(batches: queue.Queue[Any], stop: threading.Event, item: Any) -> None:
    while not stop.is_set():
        try:
            batches.put(item, timeout=0.05)
            return
        except queue.Full:
            continue


@contextmanager
def _cursor(driver: Any, dialect: str, name: str) -> Iterator[Any]:
    """A DBAPI cursor on the caller's connection: server-side on PostgreSQL (streamed)."""
    if dialect == "postgresql":
        cursor = driver.cursor(name=f"gongmo_verify_{name}")
        cursor.itersize = FAST_BATCH
    else:
        cursor = driver.cursor()
        cursor.arraysize = FAST_BATCH
    try:
        yield cursor
    finally:
        cursor.close()


_HEADS = "{0} IS NOT NULL OR {1} IS NOT NULL"
_FAST_OWNERS = {
    chain.AUDIT: "SELECT id, state, audit_seq, audit_hash FROM application ORDER BY id",
    chain.EVENT: "SELECT id, event_seq, event_hash FROM application"
    f" WHERE {_HEADS.format('event_seq', 'event_hash')} ORDER BY id",
    chain.TRACK: f"SELECT id, event_seq, event_hash FROM track WHERE {_HEADS.format('event_seq', 'event_hash')}"
    " ORDER BY id",
    chain.GLOBAL: f"SELECT {chain.GLOBAL_ID}, seq, hash FROM chain_head"
    f" WHERE kind = '{chain.GLOBAL}' AND ({_HEADS.format('seq', 'hash')})",
}
_FAST_KEYS = {
    chain.AUDIT: ("application_id", None),
    chain.EVENT: ("application_id", "application_id IS NOT NULL"),
    chain.TRACK: ("track_id", "application_id IS NULL AND track_id IS NOT NULL"),
    chain.GLOBAL: (str(chain.GLOBAL_ID), "application_id IS NULL AND track_id IS NULL"),
}


def _fast_chains_sql(kind: str, dialect: str) -> str:
    """(chain id, rows, signature, canonical encodings, stored hashes) per chain of the kind, by chain id.
    The signature: per row, in id order, "seq" (events) or "seq,trigger,=from_state,to_state"
    (audit; '' for a NULL from_state), ';'-separated; a NULL anywhere drops the row from it."""
    table = "audit" if kind == chain.AUDIT else "event"
    key, where = _FAST_KEYS[kind]
    canon = chain.canonical_sql(table, dialect)
    item = "seq || ',' || trigger || ',' || coalesce('=' || from_state, '') || ',' || to_state"
    sig = item if kind == chain.AUDIT else "seq"
    condition = f" WHERE {where}" if where else ""
    # the global chain is one group (GROUP BY 0 would name a column)
    group = f" GROUP BY {key}" if kind != chain.GLOBAL else ""
    order = f" ORDER BY {key}" if kind != chain.GLOBAL else ""
    if dialect == "postgresql":
        return (
            f"SELECT {key}, count(*), string_agg(({sig})::text, ';' ORDER BY id),"
            f" convert_to(string_agg({canon}, E'\\n' ORDER BY id), 'UTF8'), string_agg(hash, '' ORDER BY id)"
            f" FROM {table}{condition}{group} HAVING count(*) > 0{order}"
        )
    # SQLite has no ORDER BY inside an aggregate: it concatenates in the order it reads the rows,
    # its index on (chain id, id) (an ordered subquery would be sorted again, whole, for the GROUP
    # BY); were it ever not id order, hashes would not match and verify() would walk, never
    # wrongly "clean".
    return (
        f"SELECT {key}, count(*), group_concat({sig}, ';'), CAST(group_concat({canon}, char(10)) AS BLOB),"
        f" group_concat(hash, '') FROM {table}{condition}{group} HAVING count(*) > 0{order}"
    )


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
