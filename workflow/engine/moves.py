"""The move service: every state change of an application goes here.

`apply` moves one application in one transaction: lock the row, check the
move against the table (through the shared `transitions` Machine, steps.py)
and its guards, write state + version + audit row + outbox rows, run the
stage effects (effects.py) and the follow-up moves they return, commit. A
refused move changes nothing and raises an error naming the application, its
state and the trigger.

`apply_bulk` moves every application of a track in one state (deadlines), or
those of a given set (a run of per-applicant deadlines): set-based SQL in
chunks, the move checked once against the table's lookup, no Machine and no
ORM object per row. A chunk is one lock-and-read of its rows (with the facts
its eligibility checklists need), one UPDATE carrying each row's state, chain
head and checklist, one INSERT of its audit rows, its notices. Each chunk is
its own transaction, so an interrupted bulk move resumes where it stopped
when run again.

Applications come in through the intake (intake.py: announce, start,
submit); notices are queued through the hook the Mover is given (hooks.py),
the outbox room's queue in a running app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from itertools import repeat
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.engine import Engine as DbEngine

from gongmo.states.errors import Conflict, IllegalMove, InvalidInput
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Table, TriggerSpec
from gongmo.states.rules import OVERRIDING, check_override, check_reason, check_role
from gongmo.workflow.core.actors import SYSTEM, Actor
from gongmo.workflow.core.chain import Chainer
from gongmo.workflow.core.clock import Clock
from gongmo.workflow.core.config import Loaded
from gongmo.workflow.core.db import unprepared, write, write_one
from gongmo.workflow.core.lookups import track_by_key
from gongmo.workflow.core.models import APPLICATION, CALENDAR_CHANGE
from gongmo.workflow.engine.checklist import Checklists, checked, with_facts
from gongmo.workflow.engine.effects import Effect, Moving, checklist_on_review
from gongmo.workflow.engine.hooks import NoticeQueue
from gongmo.workflow.engine.intake import Intake
from gongmo.workflow.engine.overrides import move_facts, refuse_overrides
from gongmo.workflow.engine.steps import Interrupted, Moved, Steps, locked
from gongmo.workflow.engine.uploads import Uploads
from gongmo.workflow.engine.waitlist import promote_after_dropout, waitlist_place

Row = RowMapping
CHUNK = 2_000
# What entering or leaving a state brings with it, in this order (effects.py).
EFFECTS: tuple[Effect, ...] = (checklist_on_review, promote_after_dropout)


class Mover:
    """The move service: the one door for a state change (one transaction with its audit, events and notices)."""

    def __init__(
        self,
        db: DbEngine,
        loaded: Loaded,
        clock: Clock,
        queue: NoticeQueue,
        table: Table = TABLE,
        effects: Sequence[Effect] = EFFECTS,
    ) -> None:
        self.db = db
        self.loaded = loaded
        self.clock = clock
        self.queue = queue  # notices, in the move's transaction (the outbox room's queue)
        self.table = table
        self.steps = Steps(table)
        self.effects = tuple(effects)
        self.intake = Intake(self)
        self.uploads = Uploads(self)  # a plan's documents and answers (uploads.py)

    # -- applications coming in (intake.py) ----------------------------------

    def submit(
        self,
        track_key: str,
        applicant_code: str,
        national_krw: int,
        local_krw: int,
        actor: Actor,
        title: str | None = None,
        project_type: str | None = None,
        years: int | None = None,
        answers: Mapping[str, object] | None = None,
    ) -> Moved:
        """Record a plan received (Intake.submit)."""
        return self.intake.submit(
            track_key, applicant_code, national_krw, local_krw, actor, title, project_type, years, answers
        )

    def start(self, track_key: str, applicant_code: str, actor: Actor) -> int:
        """An applicant starts an application while the call is open (Intake.start)."""
        return self.intake.start(track_key, applicant_code, actor)

    def announce(
        self,
        track_key: str,
        actor: Actor,
        applicant_ids: Iterable[int] | None = None,
        late: bool = False,
        should_stop: Callable[[], bool] | None = None,
    ) -> int:
        """Publish the call (Intake.announce)."""
        return self.intake.announce(track_key, actor, applicant_ids, late, should_stop)

    # -- one application -------------------------------------------------

    def apply(
        self,
        application_id: int,
        trigger: str,
        actor: Actor,
        reason: str | None = None,
        expected_version: int | None = None,
        waitlist_position: int | None = None,
    ) -> Moved:
        """One move in its own transaction (`waitlist_position`: the place an
        admin gives a manual waitlisting; without it, the next free one)."""
        with write_one(self.db) as conn, unprepared(conn):
            return self.move(
                conn, application_id, trigger, actor, reason, expected_version, waitlist_position=waitlist_position
            )

    def move(
        self,
        conn: Connection,
        application_id: int,
        trigger: str,
        actor: Actor,
        reason: str | None = None,
        expected_version: int | None = None,
        extra: Mapping[str, Any] | None = None,
        fields: Mapping[str, Any] | None = None,
        waitlist_position: int | None = None,
    ) -> Moved:
        """One move inside the caller's transaction (which commits or rolls
        back everything with it): lock, check, state + audit + notice. A
        waitlisting that does not bring its position (the selection does) takes
        `waitlist_position` if free, else the next one after the last."""
        spec = self._precheck(trigger, actor, reason)
        if waitlist_position is not None and trigger != "waitlist":
            raise InvalidInput(
                "{given}: a waitlist position is given only with the 'waitlist' trigger,"
                f" not '{trigger}'; leave {{field}} out",
                field="waitlist_position",
                value=waitlist_position,
            )
        now = self.clock.now()
        lock = locked(conn, application_id)  # with its track's row and its applicant's address, read once
        row, track = lock.row, lock.track
        if expected_version is not None and row["version"] != expected_version:
            raise Conflict(
                f"application {application_id} is at version {row['version']}, not"
                f" {expected_version}: someone changed it first; reload and try again"
            )
        dest = self.steps.check(row, trigger)
        if trigger in OVERRIDING:  # a move against a rule says why (states/rules.py)
            facts = move_facts(conn, self.loaded.config, row, track["key"])
            check_override(str(application_id), row["state"], trigger, facts, reason)
        if dest == "waitlisted" and "waitlist_position" not in (fields or {}):
            position = waitlist_place(conn, row, track, waitlist_position)
            fields = {**(fields or {}), "waitlist_position": position}
            extra = {**(extra or {}), "waitlist_position": position}
        checks = None
        if self._records_checklist(dest):  # written by the move's own UPDATE
            checks = checked(conn, [application_id], self.loaded.config.track(track["key"])[1])
            text, eligible = checks[application_id]
            fields = {**(fields or {}), "checklist": text, "eligible": eligible}
        moved = self.steps.write(conn, row, spec, dest, actor, reason, now, fields)
        party = lock.party(moved.version, fields)  # the notice's values as the write left them: no read
        values = {"reason": reason or "", **(extra or {})}
        self.queue(conn, spec.notice, [moved.application_id], track, now, values, party=party)
        self._after(conn, [moved.application_id], row["state"], dest, track, now, checked=checks is not None)
        return moved

    def _precheck(self, trigger: str, actor: Actor, reason: str | None, bulk: bool = False) -> TriggerSpec:
        """The checks every move runs, single or bulk, before any row is read."""
        spec = self.spec(trigger)
        if trigger == "submit":
            raise InvalidInput(
                ("'submit' is not offered in bulk: each " if bulk else "a ")
                + "plan is submitted with its amounts and gets a receipt number:"
                " use `gongmo apply TRACK APPLICANT {field:national_krw} N {field:local_krw} N`"
                + (" for each plan" if bulk else "")
            )
        check_role(spec, actor.role)
        check_reason(spec, reason)
        return spec

    def _records_checklist(self, dest: str) -> bool:
        """Whether a move into `dest` records the eligibility checklist: the effect checklist_on_review,
        done by the move's own UPDATE instead of a second one (a bulk close of 100,000 plans spent
        most of its time there)."""
        return dest == "preliminary_review" and checklist_on_review in self.effects

    def _after(
        self, conn: Connection, ids: list[int], source: str, dest: str, track: Row, now: datetime, checked: bool = False
    ) -> None:
        """The stage effects of what moved, and the follow-up moves they return, in the same transaction
        (`checked`: the move wrote the checklists already, checklist_on_review has nothing to do)."""
        _, track_cfg = self.loaded.config.track(track["key"])
        moving = Moving(ids, source, dest, track, track_cfg, now)
        for effect in self.effects:
            if checked and effect is checklist_on_review:
                continue
            for follow in effect(conn, moving):
                self.move(
                    conn,
                    follow.application_id,
                    follow.trigger,
                    SYSTEM,
                    follow.reason,
                    extra=follow.extra,
                    fields=follow.fields,
                )

    # -- many applications -----------------------------------------------

    def apply_bulk(
        self,
        track_key: str,
        trigger: str,
        from_state: str,
        actor: Actor = SYSTEM,
        reason: str | None = None,
        chunk: int = CHUNK,
        skip_extended: str | None = None,
        where: sa.ColumnElement[bool] | None = None,
        should_stop: Callable[[], bool] | None = None,
        only: Sequence[int] | None = None,
    ) -> int:
        """Move every application of the track in `from_state` (with `only`, of those applications:
        a chunk of them at a time); with `skip_extended` (a milestone), leave out those whose own
        extension of that milestone is still running. `should_stop` is asked before each
        chunk: True raises Interrupted (the chunks done stay; a rerun continues)."""
        spec = self._precheck(trigger, actor, reason, bulk=True)  # exactly the checks of a single move
        dest = self.table.dest(from_state, trigger)
        if dest is None:
            raise IllegalMove(f"of track {track_key}", from_state, trigger, self.table.triggers_from(from_state))
        config = self.loaded.config
        overrides = trigger in OVERRIDING and not (reason and reason.strip())
        pending = sorted(set(only)) if only is not None else None  # `only`'s ids not yet looked at
        if overrides:  # checked on every row before the first chunk moves: all or nothing
            with write(self.db) as conn:
                every = where if pending is None else _and(where, APPLICATION.c.id.in_(pending))
                refuse_overrides(conn, config, track_key, trigger, from_state, every)
        moved = 0
        after = 0  # keyset: each chunk starts after the last id of the one before
        checklists = Checklists(config.track(track_key)[1]) if self._records_checklist(dest) else None
        while True:
            if should_stop is not None and should_stop():
                raise Interrupted(f"'{trigger}' of track {track_key} stopped after {moved} moves; a rerun continues")
            scope = where
            if pending is not None:  # the next `chunk` of them (those still in from_state move)
                if not pending:
                    return moved
                part, pending = pending[:chunk], pending[chunk:]
                scope, after = _and(where, APPLICATION.c.id.in_(part)), 0
            now = self.clock.now()
            with write(self.db) as conn:
                track = track_by_key(conn, config, track_key, lock=True)
                rows = _ids_in_state(
                    conn, track["id"], from_state, chunk, skip_extended, now, scope, after, facts=checklists is not None
                )
                if not rows and pending is None:
                    return moved
                if not rows:
                    continue
                heads: list[tuple[int, int | None, str | None]] = [r[:3] for r in rows]  # type: ignore[misc]
                ids = [h[0] for h in heads]
                after = ids[-1]
                if overrides:  # and again under the chunk's lock, as a single move does
                    refuse_overrides(conn, config, track_key, trigger, from_state, scope, ids)
                checks = None
                if checklists is not None:
                    checks = {r[0]: checklists.of(r[3:]) for r in rows}
                _bulk_move(conn, heads, spec, from_state, dest, actor, reason, now, self.steps.chain, checks)
                self.queue(conn, spec.notice, ids, track, now, {"reason": reason or ""})
                self._after(conn, ids, from_state, dest, track, now, checked=checks is not None)
            moved += len(ids)

    def notify_state(
        self,
        track_key: str,
        states: tuple[str, ...],
        notice: str,
        tag: str,
        extra: Mapping[str, Any] | None = None,
    ) -> int:
        """Queue `notice` to every application of the track in `states`, without
        moving any: reminders. `tag` makes the duplicate-suppression key, so
        running it again queues nothing twice. Chunked transactions."""
        queued = 0
        after = 0
        while True:
            with write(self.db) as conn:
                track = track_by_key(conn, self.loaded.config, track_key, lock=True)
                count, after = self.notify_chunk(conn, track, states, notice, tag, extra, after)
            if count < 0:
                return queued
            queued += count

    def notify_chunk(
        self,
        conn: Connection,
        track: Row,
        states: tuple[str, ...],
        notice: str,
        tag: str,
        extra: Mapping[str, Any] | None,
        after: int,
        application_id: int | None = None,
    ) -> tuple[int, int]:
        """One chunk of notify_state inside the caller's transaction; returns
        (queued, last id), or (-1, after) when no application is left."""
        query = (
            sa.select(APPLICATION.c.id)
            .where(APPLICATION.c.track_id == track["id"], APPLICATION.c.state.in_(states), APPLICATION.c.id > after)
            .order_by(APPLICATION.c.id)
            .limit(CHUNK)
        )
        if application_id is not None:
            query = query.where(APPLICATION.c.id == application_id)
        ids = [int(r[0]) for r in conn.execute(query)]
        if not ids:
            return -1, after
        return self.queue(conn, notice, ids, track, self.clock.now(), extra, tag=tag), ids[-1]

    def spec(self, name: str) -> TriggerSpec:
        """The trigger of the table by name, or a clear refusal."""
        return self.steps.spec(name)


def _and(where: sa.ColumnElement[bool] | None, more: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    return more if where is None else sa.and_(where, more)


def _stored_time(conn: Connection, now: datetime) -> Any:
    """`now` as SQLAlchemy binds a time column (UTCDateTime, then the dialect's DateTime) on this
    connection's dialect: on SQLite the naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'. (The type's own
    bind_processor() skips the dialect's part: sqlite3 then wrote str(datetime), without the
    microseconds when they are 0, text the chain's canonical time does not match.)"""
    process = APPLICATION.c.updated_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return now if process is None else process(now)


# A chunk's audit rows, in this column order (the values shared by the chunk, then each row's).
_AUDIT_SHARED = ("at", "actor", "role", "trigger", "from_state", "to_state", "reason", "detail")
_AUDIT_OWN = ("application_id", "seq", "hash")


def _bulk_move(
    conn: Connection,
    heads: list[tuple[int, int | None, str | None]],
    spec: TriggerSpec,
    from_state: str,
    dest: str,
    actor: Actor,
    reason: str | None,
    now: datetime,
    chainer: Chainer,
    checks: Mapping[int, tuple[str, bool]] | None = None,
) -> None:
    """Move a locked chunk: `heads` are its (id, audit_seq, audit_hash), read with the lock; `checks`
    the eligibility checklist (as stored, eligible) of each, if the move records one. The audit
    rows are chained in Python from those heads; then ONE UPDATE carries each row's new state, its
    chain's new head and its checklist, and one INSERT the audit rows. On SQLite both go through
    the driver's executemany of tuples (SQLAlchemy's per-row parameter processing was most of a
    bulk close's Python there); on PostgreSQL each is a single statement over arrays (unnest), one
    round trip a chunk. A row no longer in `from_state` changes the UPDATE's row count: Conflict,
    and the chunk's transaction rolls back. (Without a chain and a checklist, the bench's 'chain
    off' of a close with notices: one UPDATE ... IN.)"""
    ids = [h[0] for h in heads]
    shared = {"at": now, "actor": actor.name, "role": actor.role.value, "trigger": spec.name}
    shared |= {"from_state": from_state, "to_state": dest, "reason": reason, "detail": None}
    audits = [{"application_id": i, **shared} for i in ids]
    chainer.audit_rows(heads, audits)
    columns: dict[str, list[Any]] = {}  # the UPDATE's values of each row, by column
    if chainer.on:
        columns["audit_seq"] = [a["seq"] for a in audits]
        columns["audit_hash"] = [a["hash"] for a in audits]
    if checks is not None:
        try:
            columns["checklist"] = [checks[i][0] for i in ids]
            columns["eligible"] = [checks[i][1] for i in ids]
        except KeyError as missing:
            raise Conflict(f"bulk '{spec.name}': application {missing} changed underneath; retry") from None
    own = [ids, columns.get("audit_seq", [None] * len(ids)), columns.get("audit_hash", [None] * len(ids))]
    if conn.dialect.name == "postgresql":
        moved = _pg_update(conn, ids, columns, from_state, dest, now)
        _pg_insert_audit(conn, shared, own)
    else:
        moved = _sqlite_update(conn, ids, columns, from_state, dest, now)
        _sqlite_insert_audit(conn, shared | {"at": _stored_time(conn, now)}, own)
    if moved != len(ids):
        raise Conflict(f"bulk '{spec.name}': {len(ids) - moved} applications changed underneath; retry")


def _sqlite_update(
    conn: Connection, ids: list[int], columns: Mapping[str, list[Any]], from_state: str, dest: str, now: datetime
) -> int:
    """The chunk's UPDATE on SQLite: executemany of (dest, now, each column's value, id, from)."""
    if not columns:
        result = conn.execute(
            sa.update(APPLICATION)
            .where(APPLICATION.c.id.in_(ids), APPLICATION.c.state == from_state)
            .values(state=dest, version=APPLICATION.c.version + 1, updated_at=now)
        )
        return int(result.rowcount)
    sets = "".join(f", {c} = ?" for c in columns)
    sql = f"UPDATE application SET state = ?, version = version + 1, updated_at = ?{sets} WHERE id = ? AND state = ?"
    rows = list(zip(repeat(dest), repeat(_stored_time(conn, now)), *columns.values(), ids, repeat(from_state)))
    return int(conn.exec_driver_sql(sql, rows).rowcount)  # type: ignore[arg-type]


_SQLITE_AUDIT = (
    f"INSERT INTO audit ({', '.join(_AUDIT_SHARED + _AUDIT_OWN)})"
    f" VALUES ({', '.join('?' for _ in _AUDIT_SHARED + _AUDIT_OWN)})"
)


def _sqlite_insert_audit(conn: Connection, shared: Mapping[str, Any], own: list[list[Any]]) -> None:
    rows = list(zip(*(repeat(shared[c]) for c in _AUDIT_SHARED), *own, strict=False))  # repeat() is endless
    conn.exec_driver_sql(_SQLITE_AUDIT, rows)  # type: ignore[arg-type]


# The types of the PostgreSQL arrays a chunk's values travel in.
_PG_TYPES = {"id": "integer", "audit_seq": "integer", "audit_hash": "text", "checklist": "text", "eligible": "boolean"}

# A chunk's column travels as ONE text, its values joined by this separator, and the server splits it
# (string_to_array; '' is NULL): psycopg's dump of a text[] in text format escapes each element with a
# regular expression and a Python call per quote, and a checklist is full of quotes (a chunk of 2,000
# cost 0.7 s). No value holds it: JSON escapes every control character, ids, seqs and hashes are
# digits and hex, and _pg_values checks.
_SEP = "\x1e"


def _pg_values(values: Sequence[Any]) -> str:
    """One column of a chunk as its text (None as '', True and False as 't' and 'f'). (A column of one
    None is '', which the server splits into no element: unnest() of several arrays pads the shorter
    with NULL, the same.)"""
    texts = ["" if v is None else ("t" if v else "f") if type(v) is bool else str(v) for v in values]
    joined = _SEP.join(texts)
    if joined.count(_SEP) != len(texts) - 1 or texts.count("") != list(values).count(None):
        raise ValueError("a value holds the chunk's separator or is empty text: it cannot travel joined")
    return joined


def _pg_array(name: str, type_name: str) -> str:
    return f"string_to_array(%({name})s, chr(30), '')::{type_name}[]"


def _pg_update(
    conn: Connection, ids: list[int], columns: Mapping[str, list[Any]], from_state: str, dest: str, now: datetime
) -> int:
    """The chunk's UPDATE on PostgreSQL: one statement, each row's values from arrays (unnest)."""
    names = ["id", *columns]
    arrays = ", ".join(_pg_array(f"v_{c}", _PG_TYPES[c]) for c in names)
    sets = "".join(f", {c} = v.{c}" for c in columns)
    sql = (
        "UPDATE application AS a SET state = %(dest)s, version = a.version + 1, updated_at = %(at)s" + sets
        + f" FROM unnest({arrays}) AS v({', '.join(names)}) WHERE a.id = v.id AND a.state = %(from)s"
    )  # fmt: skip
    params = {"dest": dest, "at": now, "from": from_state, "v_id": _pg_values(ids)}
    params |= {f"v_{c}": _pg_values(v) for c, v in columns.items()}
    return int(conn.exec_driver_sql(sql, params).rowcount)


_PG_AUDIT = (
    f"INSERT INTO audit ({', '.join(_AUDIT_SHARED + _AUDIT_OWN)})"
    " SELECT %(at)s::timestamptz, %(actor)s::text, %(role)s::text, %(trigger)s::text, %(from_state)s::text,"
    " %(to_state)s::text, %(reason)s::text, %(detail)s::text, v.application_id, v.seq, v.hash"
    f" FROM unnest({_pg_array('ids', 'integer')}, {_pg_array('seqs', 'integer')}, {_pg_array('hashes', 'text')})"
    " WITH ORDINALITY AS v(application_id, seq, hash, n) ORDER BY v.n"
)


def _pg_insert_audit(conn: Connection, shared: Mapping[str, Any], own: list[list[Any]]) -> None:
    ids, seqs, hashes = (_pg_values(v) for v in own)
    conn.exec_driver_sql(_PG_AUDIT, {**shared, "ids": ids, "seqs": seqs, "hashes": hashes})


def _ids_in_state(
    conn: Connection,
    track_id: int,
    state: str,
    limit: int,
    skip_extended: str | None = None,
    now: datetime | None = None,
    where: sa.ColumnElement[bool] | None = None,
    after: int = 0,
    facts: bool = False,
) -> list[tuple[Any, ...]]:
    """A chunk's rows: (id, audit_seq, audit_hash), their audit chain's head, and with `facts` what
    the checklist reads (checklist.FACT_COLUMNS), locked (FOR UPDATE on PostgreSQL)."""
    query = (
        sa.select(APPLICATION.c.id, APPLICATION.c.audit_seq, APPLICATION.c.audit_hash)
        .where(APPLICATION.c.track_id == track_id, APPLICATION.c.state == state, APPLICATION.c.id > after)
        .order_by(APPLICATION.c.id)
        .limit(limit)
    )
    if where is not None:
        query = query.where(where)
    if skip_extended is not None:
        running = sa.select(CALENDAR_CHANGE.c.id).where(
            CALENDAR_CHANGE.c.application_id == APPLICATION.c.id,
            CALENDAR_CHANGE.c.milestone == skip_extended,
            CALENDAR_CHANGE.c.new_at > now,
        )
        query = query.where(~sa.exists(running))
    if facts:
        query = with_facts(query)
    if conn.dialect.name != "sqlite":
        query = query.with_for_update(of=APPLICATION)
    return [tuple(r) for r in conn.execute(query)]
