"""One step of a move: the trigger by name, the move checked against the table,
the row and its audit line written. The Mover (moves.py) and the intake
(intake.py) build on these; neither commits here."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping
from transitions import MachineError

from gongmo.states.errors import Conflict, IllegalMove, InvalidInput
from gongmo.states.lifecycle import Table, TriggerSpec, build_machine
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.chain import CHAINER, Chainer
from gongmo.workflow.core.models import APPLICATION, AUDIT

Row = RowMapping

# The statements of a single move, built once: building them per move cost more
# Python than SQLite takes to run them (SQLAlchemy still caches their compiled form).
AUDIT_INSERT = sa.insert(AUDIT)
# SET state, version, updated_at, the audit chain's head and a move's own fields: the columns named in the parameters.
MOVE = sa.update(APPLICATION).where(
    APPLICATION.c.id == sa.bindparam("m_id"), APPLICATION.c.version == sa.bindparam("m_version")
)


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
        values = {"m_id": row["id"], "m_version": row["version"], "state": dest, "version": row["version"] + 1}
        values |= {"updated_at": now, **(fields or {})}
        if self.chain.on:
            values |= {"audit_seq": audit["seq"], "audit_hash": audit["hash"]}
        result = conn.execute(MOVE, values)
        if result.rowcount != 1:
            raise Conflict(f"application {row['id']} changed while '{spec.name}' ran; reload and try again")
        conn.execute(AUDIT_INSERT, audit)
        # the number the applicant knows its plan by (None before a plan was received)
        receipt_no = (fields or {}).get("receipt_no", row["receipt_no"])
        return Moved(row["id"], spec.name, row["state"], dest, row["version"] + 1, receipt_no)


class Interrupted(Exception):
    """A chunked run (bulk move, announcement) stopped between chunks because its
    caller is stopping: the chunks done are committed, a rerun continues."""
