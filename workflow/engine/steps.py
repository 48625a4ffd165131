"""One step of a move: the trigger by name, the move checked against the table,
the row and its audit line written. The Mover (moves.py) and the intake
(intake.py) build on these; neither commits here."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy.engine import Connection, Dialect, RowMapping
from transitions import MachineError

from gongmo.states.errors import Conflict, IllegalMove, InvalidInput, NotFound
from gongmo.states.lifecycle import Table, TriggerSpec, build_machine
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.chain import CHAINER, Chainer
from gongmo.workflow.core.db import as_row, bound, column_list, driver_execute, driver_fetch, pg_type
from gongmo.workflow.core.models import APPLICATION, AUDIT, TRACK

Row = RowMapping

# The audit row's columns, in the order the single move's SQL binds them.
AUDIT_COLUMNS = ("application_id", "at", "actor", "role", "trigger", "from_state", "to_state", "reason", "detail")
AUDIT_CHAINED = (*AUDIT_COLUMNS, "seq", "hash")


@dataclass(frozen=True)
class Moved:
    application_id: int
    trigger: str
    from_state: str | None
    to_state: str
    version: int
    receipt_no: str | None = None


class _Adapter:
    """What the shared Machine sees of one row while one trigger runs."""

    def __init__(self, state: str) -> None:
        self.state = state


class Steps:
    """The table's triggers and moves, asked through one shared `transitions` Machine."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._machine = build_machine(table)
        self._machine_lock = threading.Lock()
        self._moves: dict[tuple[str, str], str | None] = {}  # (state, trigger) -> dest, or None if illegal
        self.chain: Chainer = CHAINER  # the audit rows' hash chain (chain.py); the bench alone swaps it

    def spec(self, name: str) -> TriggerSpec:
        """The trigger of the table by name, or a clear refusal."""
        if not self.table.has_trigger(name):
            known = ", ".join(t.name for t in self.table.triggers)
            raise InvalidInput(f"unknown trigger {name!r} (triggers: {known})")
        return self.table.trigger(name)

    def check(self, row: Row, trigger: str) -> str:
        """Run the trigger on the shared Machine against a detached adapter.

        The Machine has no conditions or callbacks (states/lifecycle.py): a
        (state, trigger) pair always has the same answer, so each pair is
        asked once and remembered (adding a model costs ~0.2 ms a move)."""
        state = row["state"]
        key = (state, trigger)
        if key not in self._moves:
            adapter = _Adapter(state)
            with self._machine_lock:
                self._machine.add_model(adapter, initial=state)
                try:
                    adapter.trigger(trigger)  # type: ignore[attr-defined]
                    self._moves[key] = adapter.state
                except MachineError:
                    self._moves[key] = None
                finally:
                    self._machine.remove_model(adapter)
        dest = self._moves[key]
        if dest is None:
            raise IllegalMove(str(row["id"]), state, trigger, self.table.triggers_from(state))
        return dest

    def write(
        self,
        conn: Connection,
        row: Row,
        spec: TriggerSpec,
        dest: str,
        actor: Actor,
        reason: str | None,
        now: datetime,
        fields: Mapping[str, Any] | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Moved:
        """The row's new state and version (and `fields`), and its audit line (with `detail`, JSON),
        chained after the head the locked row carries (its seq and hash move in the same UPDATE)."""
        audit = {"application_id": row["id"], "at": now, "actor": actor.name, "role": actor.role.value}
        audit |= {"trigger": spec.name, "from_state": row["state"], "to_state": dest, "reason": reason}
        audit["detail"] = None if detail is None else json.dumps(detail, ensure_ascii=False, sort_keys=True)
        self.chain.audit_row(row["id"], row["audit_seq"], row["audit_hash"], audit)
        values = {"state": dest, "version": row["version"] + 1, "updated_at": now, **(fields or {})}
        if self.chain.on:
            values |= {"audit_seq": audit["seq"], "audit_hash": audit["hash"]}
        if write_move(conn, row["id"], row["version"], values, audit) != 1:
            raise Conflict(f"application {row['id']} changed while '{spec.name}' ran; reload and try again")
        # the number the applicant knows its plan by (None before a plan was received)
        receipt_no = (fields or {}).get("receipt_no", row["receipt_no"])
        return Moved(row["id"], spec.name, row["state"], dest, row["version"] + 1, receipt_no)


@dataclass(frozen=True)
class Locked:
    """What a single move reads first: the application's row, locked for the move, its track's row, and
    what its notice needs of the applicant (`party`: the queue's Party fields, hooks.py NoticeQueue)."""

    row: Row
    track: Row
    applicant: Mapping[str, Any]

    def party(self, version: int, fields: Mapping[str, Any] | None) -> dict[str, Any]:
        """The notice's party after the move's write: the row with the move's fields and new version."""
        return {**self.row, **(fields or {}), "application_id": self.row["id"], "version": version, **self.applicant}


def locked(conn: Connection, application_id: int) -> Locked:
    """An application's row, locked for the caller's move (FOR UPDATE on PostgreSQL; SQLite's BEGIN
    IMMEDIATE holds the write lock already), its track's row and its applicant's name and address: the
    values lookups.locked_application and track_row give (as plain mappings), in one round trip on
    PostgreSQL and SQLite alike (a join; on SQLite on the driver's cursor, core/db.py driver_fetch)."""
    dialect = conn.dialect
    width = len(APPLICATION.columns)
    if dialect.name == "postgresql":
        found = driver_fetch(conn, _LOCKED_PG, {"id": application_id})
    else:
        found = driver_fetch(conn, _LOCKED_SQLITE, (application_id,))
    if not found:
        raise NotFound(f"no application {application_id}: see `gongmo status` or `gongmo show`")
    values = found[0]
    row = as_row(APPLICATION, dialect, values[:width])
    applicant = dict(zip(_APPLICANT_FIELDS, values[width : width + len(_APPLICANT_FIELDS)], strict=True))
    track_values = values[width + len(_APPLICANT_FIELDS) :]
    if dialect.name == "postgresql":
        track = as_row(TRACK, dialect, track_values)
    else:
        track = _track_row(dialect, tuple(track_values))
    # plain dicts of the columns: every taker of a move's rows reads them by column name, as a RowMapping
    return Locked(cast(Row, row), cast(Row, track), applicant)


_TRACKS: dict[tuple[Any, ...], dict[str, Any]] = {}  # a track's row as read -> as as_row() gives it


def _track_row(dialect: Dialect, values: tuple[Any, ...]) -> dict[str, Any]:
    """as_row(TRACK, ...) of a SQLite track row, remembered by the values read: the row changes
    seldom (a reschedule, a release), and turning its two dozen columns (most of them times) into
    Python values cost a third of the read. Equal values read give an equal row; a copy each time."""
    found = _TRACKS.get(values)
    if found is None:
        if len(_TRACKS) >= 64:
            _TRACKS.clear()
        found = _TRACKS[values] = as_row(TRACK, dialect, values)
    return dict(found)


_APPLICANT_FIELDS = ("applicant_name", "contact_name", "email", "language")
_APPLICANT = 'p."name", p."contact_name", p."email", p."language"'
_LOCKED_SQLITE = (  # SQLite's BEGIN IMMEDIATE holds the write lock already
    f"SELECT {column_list(APPLICATION, 'a')}, {_APPLICANT}, {column_list(TRACK, 't')} FROM application AS a"
    " JOIN applicant AS p ON p.id = a.applicant_id JOIN track AS t ON t.id = a.track_id WHERE a.id = ?"
)
_LOCKED_PG = (
    f"SELECT {column_list(APPLICATION, 'a')}, {_APPLICANT}, {column_list(TRACK, 't')} FROM application AS a"
    " JOIN applicant AS p ON p.id = a.applicant_id JOIN track AS t ON t.id = a.track_id"
    " WHERE a.id = %(id)s FOR UPDATE OF a"
)


def write_move(
    conn: Connection, application_id: int, version: int, values: Mapping[str, Any], audit: Mapping[str, Any]
) -> int:
    """The UPDATE of one application (`values`, guarded by its `version`) and its audit row: the row
    count, 1, or 0 if the version moved (then no audit row is written either).

    On PostgreSQL one statement, one round trip: the UPDATE in a data-modifying CTE, the audit row
    inserted from what it returned. On SQLite two statements of SQL text on the driver's own cursor
    (core/db.py driver_execute: SQLAlchemy's execution of a statement cost more Python than SQLite
    takes to run it); values bound by each column's own processor, so the rows are byte for byte what
    SQLAlchemy writes. The SQL is built once per set of columns."""
    names = tuple(values)
    audit_names = AUDIT_CHAINED if "seq" in audit else AUDIT_COLUMNS
    dialect = conn.dialect
    if dialect.name == "postgresql":
        params = dict(zip(names, bound(APPLICATION, dialect, names, values), strict=True))
        params |= {f"a_{c}": v for c, v in zip(audit_names, bound(AUDIT, dialect, audit_names, audit), strict=True)}
        params |= {"m_id": application_id, "m_version": version}
        return driver_execute(conn, _pg_move_sql(names, audit_names), params)
    update, insert = _sqlite_move_sql(names, audit_names)
    moved = driver_execute(conn, update, [*bound(APPLICATION, dialect, names, values), application_id, version])
    if moved == 1:
        driver_execute(conn, insert, bound(AUDIT, dialect, audit_names, audit))
    return moved


def _quoted(names: tuple[str, ...]) -> str:
    return ", ".join(f'"{n}"' for n in names)  # "trigger" is a keyword


@functools.cache
def _sqlite_move_sql(names: tuple[str, ...], audit_names: tuple[str, ...]) -> tuple[str, str]:
    sets = ", ".join(f'"{n}" = ?' for n in names)
    update = f"UPDATE application SET {sets} WHERE id = ? AND version = ?"
    insert = f"INSERT INTO audit ({_quoted(audit_names)}) VALUES ({', '.join('?' for _ in audit_names)})"
    return update, insert


@functools.cache
def _pg_move_sql(names: tuple[str, ...], audit_names: tuple[str, ...]) -> str:
    sets = ", ".join(f'"{n}" = %({n})s' for n in names)
    # In a SELECT list a parameter has no column to take its type from: each says its own.
    selected = ", ".join(f"CAST(%(a_{c})s AS {pg_type(AUDIT.c[c])})" for c in audit_names)
    return (
        f"WITH moved AS (UPDATE application SET {sets} WHERE id = %(m_id)s AND version = %(m_version)s RETURNING id)"
        f" INSERT INTO audit ({_quoted(audit_names)}) SELECT {selected} FROM moved"
    )


class Interrupted(Exception):
    """A chunked run (bulk move, announcement) stopped between chunks because its
    caller is stopping: the chunks done are committed, a rerun continues."""
