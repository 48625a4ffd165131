"""The hash chains of the audit and event logs: the canonical encoding of a row, the links, the heads.

Every audit row and every event row carries `hash = SHA-256(previous hash ‖ canonical(row))`,
hex, and `seq`, its place in its chain (1, 2, ...). A chain's head (the last row's `seq` and
`hash`) is kept on the row that owns the chain:

- `audit` chains: one per application, its state changes; head `application.audit_seq/audit_hash`,
  written by the same UPDATE that moves the application (steps.py; a bulk move's executemany,
  moves.py), so a move and its audit row stay one locked row and bulk moves stay set-based.
- `event` chains: one per application, the decisions about it (scores, assignments, uploads,
  downloads, objections...); head `application.event_seq/event_hash`.
- `track` chains: one per track, track-level events (application_id NULL: a selection run,
  presentation slots); head `track.event_seq/event_hash`.
- `global`: one chain (id 0) for events of neither (a declared conflict of interest names an
  evaluator and an applicant, not an application); head in `chain_head` (kind 'global').

So writers never serialise on one global head: a chain's writers are serialised by the row
lock they take anyway (the move's locked application row; for an event, the application's or
the track's row, SELECT ... FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE serialises
every writer already). Only declared conflicts share the global head.

Why `seq` and not the row id: a row's hash is computed before its INSERT (a bulk move inserts
a chunk with one executemany), when the database has not assigned its id yet; so the id is not
hashed, `seq` is. Rows of a chain are written under its owner's lock, so id order is chain
order: `audit verify` walks a chain by id and requires seq 1, 2, 3, ...: a row deleted in the
middle is a gap, a row inserted out of order is a seq that does not follow, a row deleted at
the end is a head ahead of the last row. `seq` is in the hash, so it cannot be renumbered
without recomputing every later hash, and the heads (and an anchor) catch that.

The canonical encoding of a row (`canonical`), defined here and only here: a JSON object of
every column of the row except `id` and `hash` (`seq` included), keys sorted, separators
(",", ":"), ensure_ascii=False, encoded UTF-8; times as UTC text "YYYY-MM-DDTHH:MM:SS.ffffffZ";
NULL as null; the `detail` column as the JSON text it stores (a string). It is byte for byte
what `json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` gives for
those values (a test holds the two equal); it is built from a per-table template here because
the walk of `audit verify` and a bulk move encode many rows. canonical_sql() writes the same
encoding as SQL, for the fast pass of `audit verify` (a test holds it byte-equal to canonical()
on both databases). The previous hash is the 32 raw bytes of the previous
row's digest; a chain's genesis "previous hash" is SHA-256("gongmo:<kind>:<id>").

The anchor (`gongmo audit anchor`): a Merkle root over every chain head. Leaves:
SHA-256("<kind>:<id>:<head hex>") sorted by kind, then id; each level hashes pairs of raw
digests (SHA-256(left ‖ right)), an odd last node is carried up unchanged; no chain, no leaf:
the root of no leaves is SHA-256 of nothing.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring as _json_string  # the C encoder's own string escaping
from typing import Any

import sqlalchemy as sa

# Chain kinds, in the anchor's order (sorted by name).
AUDIT, EVENT, GLOBAL, TRACK = "audit", "event", "global", "track"
KINDS = (AUDIT, EVENT, GLOBAL, TRACK)
GLOBAL_ID = 0

# The columns each table's canonical encoding covers, sorted: every column but id and hash.
COLUMNS: dict[str, tuple[str, ...]] = {
    "audit": tuple(
        sorted(
            ("application_id", "at", "actor", "role", "trigger", "from_state", "to_state", "reason", "detail", "seq")
        )
    ),
    "event": tuple(sorted(("at", "actor", "role", "track_id", "application_id", "kind", "detail", "seq"))),
}
_TEMPLATES = {table: "{" + ",".join(f'"{c}":%s' for c in cols) + "}" for table, cols in COLUMNS.items()}
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_text(value: datetime) -> str:
    """A time as the canonical encoding writes it: UTC, microseconds, 'Z'."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the chain hashes aware UTC times only")
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def _json(value: Any) -> str:
    """One value as json.dumps(ensure_ascii=False) writes it (strings, integers, booleans, None, times)."""
    kind = type(value)
    if kind is str:
        return _json_string(value)  # type: ignore[no-any-return]
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if isinstance(value, datetime):
        return '"' + utc_text(value) + '"'
    if isinstance(value, int):  # an int subclass (an enum): as its number, like json.dumps
        return int.__repr__(value)
    raise TypeError(f"the chain's canonical encoding takes text, integers and times, not {kind.__name__}")


def canonical(table: str, row: Mapping[str, Any]) -> bytes:
    """The canonical encoding of a row of `table` ('audit' or 'event'): see the module's docstring."""
    return canonical_values(table, [row.get(c) for c in COLUMNS[table]])


def canonical_values(table: str, values: Sequence[Any]) -> bytes:
    """The same, from the values in COLUMNS[table] order (times may come as their canonical text)."""
    try:
        return _FAST[table](values)
    except TypeError:  # a value of another type than the column's (a time object, a tampered row)
        return (_TEMPLATES[table] % tuple(map(_json, values))).encode("utf-8")


def _fast_audit(values: Sequence[Any]) -> bytes:
    """canonical_values('audit') when every value has its column's type (text time, int ids):
    the same bytes, without a call per value (audit verify encodes a million rows)."""
    actor, application_id, at, detail, from_state, reason, role, seq, to_state, trigger = values
    if type(application_id) is not int or type(seq) is not int:
        raise TypeError("not an int")
    return (
        _TEMPLATES["audit"]
        % (
            _json_string(actor),
            application_id,
            _json_string(at),
            "null" if detail is None else _json_string(detail),
            "null" if from_state is None else _json_string(from_state),
            "null" if reason is None else _json_string(reason),
            _json_string(role),
            seq,
            _json_string(to_state),
            _json_string(trigger),
        )
    ).encode("utf-8")


def _fast_event(values: Sequence[Any]) -> bytes:
    """canonical_values('event'), the same way."""
    actor, application_id, at, detail, kind, role, seq, track_id = values
    if type(seq) is not int or not (application_id is None or type(application_id) is int):
        raise TypeError("not an int")
    if not (track_id is None or type(track_id) is int):
        raise TypeError("not an int")
    return (
        _TEMPLATES["event"]
        % (
            _json_string(actor),
            "null" if application_id is None else application_id,
            _json_string(at),
            _json_string(detail),
            _json_string(kind),
            _json_string(role),
            seq,
            "null" if track_id is None else track_id,
        )
    ).encode("utf-8")


_FAST = {"audit": _fast_audit, "event": _fast_event}


def genesis(kind: str, chain_id: int) -> bytes:
    """The 'previous hash' of a chain's first row."""
    return hashlib.sha256(f"gongmo:{kind}:{chain_id}".encode()).digest()


def previous(kind: str, chain_id: int, head: str | None) -> bytes:
    """The raw previous hash for the next row: the head's, or the genesis of an empty chain."""
    return bytes.fromhex(head) if head else genesis(kind, chain_id)


def link(prev: bytes, encoded: bytes) -> bytes:
    """One row's digest: SHA-256(previous digest ‖ canonical encoding)."""
    return hashlib.sha256(prev + encoded).digest()


class Chainer:
    """What the writers of audit rows ask (steps.py, intake.py, moves.py): the seq and hash of
    the next row(s) of an application's audit chain, from the head read under the row's lock."""

    on = True

    def audit_row(self, application_id: int, head_seq: int | None, head: str | None, row: dict[str, Any]) -> None:
        """Set row['seq'] and row['hash'] as the next row after (head_seq, head)."""
        row["seq"] = (head_seq or 0) + 1
        # the time as its canonical text first: canonical_values' fast path takes text times only (an
        # aware datetime sent every single move down the value-by-value way); the same bytes
        at = row.get("at")
        values = [utc_text(at) if c == "at" and isinstance(at, datetime) else row.get(c) for c in COLUMNS["audit"]]
        row["hash"] = link(previous(AUDIT, application_id, head), canonical_values("audit", values)).hex()

    def audit_rows(self, heads: Sequence[tuple[int, int | None, str | None]], rows: list[dict[str, Any]]) -> None:
        """The same for one row per chain (a bulk move's chunk: heads[i] is rows[i]'s chain);
        the rows share everything but application_id, so the time is formatted once, and the
        encoding is one template with the shared values in it, filled with each row's
        application_id and seq (the same bytes as canonical(): a row that does not share the
        first row's values, or whose ids are not plain ints, is encoded value by value)."""
        if not rows:
            return
        at = rows[0]["at"]
        text = utc_text(at) if isinstance(at, datetime) else at
        first, template = _shared_template(rows[0], text)
        sha256 = hashlib.sha256
        for (app_id, seq, head), row in zip(heads, rows, strict=True):
            row["seq"] = seq = (seq or 0) + 1
            row_id = row.get("application_id")
            if template is not None and type(row_id) is int and type(seq) is int and _shared(row) == first:
                data = template % (row_id, seq)
            else:
                data = canonical_values("audit", [text if c == "at" else row.get(c) for c in COLUMNS["audit"]])
            if head:
                prev = bytes.fromhex(head)
            elif type(app_id) is int:
                prev = sha256(b"gongmo:audit:%d" % app_id).digest()  # genesis(AUDIT, app_id)
            else:
                prev = genesis(AUDIT, app_id)
            row["hash"] = sha256(prev + data).hexdigest()


# audit_rows' template: the columns a chunk's rows share (all but application_id and seq).
_SHARED = tuple(c for c in COLUMNS["audit"] if c not in ("application_id", "seq"))
_shared_getter = operator.itemgetter(*_SHARED)


def _shared(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The row's shared values (KeyError-free: a missing column is None, as canonical() reads it)."""
    try:
        return _shared_getter(row)  # type: ignore[no-any-return]
    except KeyError:
        return tuple(row.get(c) for c in _SHARED)


def _shared_template(row: Mapping[str, Any], at_text: Any) -> tuple[tuple[Any, ...], bytes | None]:
    """(the row's shared values, the canonical encoding with them in it and %d for
    application_id and seq), or no template when a shared value is not text, None or a time
    (then == between rows would not promise the same encoding)."""
    shared = _shared(row)
    if not all(v is None or type(v) is str or type(v) is datetime for v in shared):
        return shared, None
    values = dict(zip(_SHARED, shared, strict=True)) | {"at": at_text}
    if not (at_text is None or type(at_text) is str):
        return shared, None
    parts = ["%d" if c in ("application_id", "seq") else _json(values[c]).replace("%", "%%") for c in COLUMNS["audit"]]
    return shared, (_TEMPLATES["audit"] % tuple(parts)).encode("utf-8")


class NoChain(Chainer):
    """No hashes: only for the bench's 'chain off' rows (never a setting: gongmo always chains)."""

    on = False

    def audit_row(self, application_id: int, head_seq: int | None, head: str | None, row: dict[str, Any]) -> None:
        return None

    def audit_rows(self, heads: Sequence[tuple[int, int | None, str | None]], rows: list[dict[str, Any]]) -> None:
        return None


CHAINER = Chainer()


# -- reading the stored time as its canonical text (audit verify, the backfill) -------------------


def at_text(column: sa.ColumnElement[Any], dialect: str) -> sa.ColumnElement[str]:
    """SQL giving a stored time as utc_text() writes it. SQLite keeps SQLAlchemy's naive UTC text
    'YYYY-MM-DD HH:MM:SS.ffffff'; PostgreSQL formats its timestamptz in UTC."""
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
    return sa.func.replace(sa.cast(column, sa.Text), " ", "T").op("||")("Z")


# The columns of the canonical encoding that hold integers (the others hold text, or a time).
INTEGER_COLUMNS = frozenset(("application_id", "seq", "track_id"))

# at_text() as SQL text, over the unqualified column `at`.
_AT_SQL = {
    "sqlite": "replace(CAST(at AS TEXT), ' ', 'T') || 'Z'",
    "postgresql": """to_char(timezone('UTC', at), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
}


def canonical_sql(table: str, dialect: str) -> str:
    """The canonical encoding of a row of `table`, as SQL text over its unqualified columns, so
    that `audit verify` receives one string per row instead of ten values to encode in Python.
    The same bytes as canonical() for every value canonical() takes (a test holds the two equal
    over awkward text on both databases): SQLite's json_object() with the keys in COLUMNS order
    (it quotes text as json.dumps(ensure_ascii=False) does); PostgreSQL's to_json() of each value
    in one concat(). A value canonical() would encode otherwise (a tampered type: a real, a blob,
    text in an integer column) comes out different, never the same: its hash then does not match
    and audit verify walks that chain again in Python (engine/audit.py)."""
    at = _AT_SQL[dialect]
    if dialect == "sqlite":
        pairs = (f"'{c}', {at if c == 'at' else c}" for c in COLUMNS[table])
        return "json_object(" + ", ".join(pairs) + ")"
    parts, literal = [], "{"
    for c in COLUMNS[table]:
        if c == "at":  # never NULL: a NULL time gives "" where canonical() gives null (different)
            parts += [f"""'{literal}"at":"'""", at]
            literal = '",'
            continue
        value = f"{c}::text" if c in INTEGER_COLUMNS else f"to_json({c})::text"
        parts += [f"""'{literal}"{c}":'""", f"coalesce({value}, 'null')"]
        literal = ","
    return "concat(" + ", ".join(parts) + f", '{literal[:-1]}}}')"


# -- the anchor's Merkle root ---------------------------------------------------------------------


def leaf(kind: str, chain_id: int, head: str) -> bytes:
    return hashlib.sha256(f"{kind}:{chain_id}:{head}".encode()).digest()


def merkle_root(leaves: Iterable[bytes]) -> str:
    """The root, level by level (the definition; MerkleRoot streams the same)."""
    level = list(leaves)
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        pairs = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
    return level[0].hex()


class MerkleRoot:
    """merkle_root() over leaves added one by one, in O(log n) memory: a stack of complete
    subtrees (heights strictly decreasing), merged right to left at the end; an odd node carried
    up unchanged is exactly a subtree left unmerged until the end."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.leaves = 0

    def add(self, node: bytes) -> None:
        self.leaves += 1
        height = 0
        while self._stack and self._stack[-1][0] == height:
            _, left = self._stack.pop()
            node = hashlib.sha256(left + node).digest()
            height += 1
        self._stack.append((height, node))

    def root(self) -> str:
        if not self._stack:
            return hashlib.sha256(b"").hexdigest()
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = hashlib.sha256(left + node).digest()
        return node.hex()
