"""The transition service: every state change of an application goes here.

`apply` moves one application in one transaction: lock the row, check the
move against the table (through the shared `transitions` Machine) and its
guards, write state + version + audit row + outbox rows, commit. A refused
move changes nothing and raises an error naming the application, its state
and the trigger.

`apply_bulk` moves every application of a track in one state (deadlines):
set-based SQL in chunks, the move checked once against the table's lookup,
no Machine and no ORM object per row. Each chunk is its own transaction, so
an interrupted bulk move resumes where it stopped when run again.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.engine import Engine as DbEngine
from transitions import MachineError

from gongmo.states.errors import Conflict, IllegalMove, InvalidInput, NotFound, OutsideWindow
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Table, TriggerSpec, build_machine
from gongmo.states.rules import (
    OVERRIDING,
    MoveFacts,
    OverrideNeedsReason,
    check_override,
    check_reason,
    check_receipt_window,
    check_role,
    override,
)
from gongmo.states.selection import Waiting, promotion
from gongmo.workflow.core.actors import SYSTEM, Actor
from gongmo.workflow.core.clock import Clock
from gongmo.workflow.core.config import MILESTONES, Loaded
from gongmo.workflow.core.config import Track as TrackConfig
from gongmo.workflow.core.db import custom_plans, lock_row, row_by_id, write
from gongmo.workflow.core.models import APPLICANT, APPLICATION, AUDIT, CALENDAR_CHANGE, OUTBOX, TRACK
from gongmo.workflow.outbox.notifier import Notifier, Party, supersedes
from gongmo.workflow.stages import review
from gongmo.workflow.stages.applicants import shown

Row = RowMapping
UNSENT = ("pending", "held", "retry")
CHUNK = 2_000
# An announcement creates and renders its calls in chunks this small: a daemon killed while announcing
# loses one chunk, not the call (killed every few seconds, a chunk of 2,000 never committed).
ANNOUNCE_CHUNK = 500

# The statements of a single move, built once: building them per move cost more
# Python than SQLite takes to run them (SQLAlchemy still caches their compiled form).
AUDIT_INSERT = sa.insert(AUDIT)
OUTBOX_INSERT = sa.insert(OUTBOX)
SUPERSEDE = (  # cancel the older unsent notices a new one replaces; mark one being sent (the mailer settles it)
    sa.update(OUTBOX)
    .where(
        OUTBOX.c.application_id.in_(sa.bindparam("s_ids", expanding=True)),
        OUTBOX.c.state.in_((*UNSENT, "sending")),
        OUTBOX.c.superseded_by.is_(None),
        OUTBOX.c.notice.in_(sa.bindparam("s_family", expanding=True)),
        OUTBOX.c.dedup_key.not_in(sa.bindparam("s_keys", expanding=True)),
    )
    .values(
        state=sa.case((OUTBOX.c.state == "sending", "sending"), else_="cancelled"),
        superseded_by=sa.bindparam("s_by"),
        last_error=sa.bindparam("s_error"),
    )
)
EMBARGO = (  # the track's results go under embargo with the first result held
    sa.update(TRACK)
    .where(TRACK.c.id == sa.bindparam("e_track"), TRACK.c.results_embargoed_at.is_(None))
    .values(results_embargoed_at=sa.bindparam("e_at"))
)
PARTIES = (
    sa.select(
        APPLICATION.c.id.label("application_id"),
        APPLICATION.c.version,
        APPLICATION.c.receipt_no,
        APPLICATION.c.title,
        APPLICATION.c.national_krw,
        APPLICATION.c.local_krw,
        APPLICATION.c.submitted_at,
        APPLICANT.c.name.label("applicant_name"),
        APPLICANT.c.contact_name,
        APPLICANT.c.email,
        APPLICANT.c.language,
    )
    .join(APPLICANT, APPLICANT.c.id == APPLICATION.c.applicant_id)
    .where(APPLICATION.c.id.in_(sa.bindparam("p_ids", expanding=True)))
    .order_by(APPLICATION.c.id)
)


# SET state, version, updated_at and a move's own fields: the columns named in the parameters.
MOVE = sa.update(APPLICATION).where(
    APPLICATION.c.id == sa.bindparam("m_id"), APPLICATION.c.version == sa.bindparam("m_version")
)
MAX_WAITLIST_POSITION = 1000  # a manual waitlist position, at most
CREATE = "invite"  # audit trigger of an application created at the announcement
START = "start"  # audit trigger of an application an applicant started itself


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


class Mover:
    """The move service: the one door for a state change (one transaction with its audit, events and notices)."""

    def __init__(
        self,
        db: DbEngine,
        loaded: Loaded,
        clock: Clock,
        notifier: Notifier,
        table: Table = TABLE,
    ) -> None:
        self.db = db
        self.loaded = loaded
        self.clock = clock
        self.notifier = notifier
        self.table = table
        self._machine = build_machine(table)
        self._machine_lock = threading.Lock()
        self._moves: dict[tuple[str, str], str | None] = {}  # (state, trigger) -> dest, or None if illegal

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
        with write(self.db) as conn:
            custom_plans(conn)
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
                f"--position {waitlist_position}: a waitlist position is given only with the 'waitlist' trigger,"
                f" not '{trigger}'; leave --position out"
            )
        now = self.clock.now()
        row = self._locked_application(conn, application_id)
        if expected_version is not None and row["version"] != expected_version:
            raise Conflict(
                f"application {application_id} is at version {row['version']}, not"
                f" {expected_version}: someone changed it first; reload and try again"
            )
        dest = self._check_move(row, trigger)
        if trigger in OVERRIDING:  # a move against a rule says why (states/rules.py)
            check_override(str(application_id), row["state"], trigger, self._move_facts(conn, row), reason)
        track = self.track_row(conn, row["track_id"])
        if dest == "waitlisted" and "waitlist_position" not in (fields or {}):
            position = self._waitlist_place(conn, row, track, waitlist_position)
            fields = {**(fields or {}), "waitlist_position": position}
            extra = {**(extra or {}), "waitlist_position": position}
        moved = self._write_move(conn, row, spec, dest, actor, reason, now, fields)
        self.queue(conn, spec.notice, [moved.application_id], track, now, {"reason": reason or "", **(extra or {})})
        self._after(conn, [moved.application_id], row["state"], dest, track, now)
        return moved

    def _precheck(self, trigger: str, actor: Actor, reason: str | None, bulk: bool = False) -> TriggerSpec:
        """The checks every move runs, single or bulk, before any row is read."""
        spec = self.spec(trigger)
        if trigger == "submit":
            raise InvalidInput(
                ("'submit' is not offered in bulk: each " if bulk else "a ")
                + "plan is submitted with its amounts and gets a receipt number:"
                " use `gongmo apply TRACK APPLICANT --national N --local N`" + (" for each plan" if bulk else "")
            )
        check_role(spec, actor.role)
        check_reason(spec, reason)
        return spec

    def _move_facts(self, conn: Connection, row: Row) -> MoveFacts:
        """What the override rule (states/rules.py) needs of one application row."""
        from gongmo.states.eligibility import Check, failures

        key = self.track_row(conn, row["track_id"])["key"]
        _, track_cfg = self.loaded.config.track(key)
        checks = [Check(**c) for c in json.loads(row["checklist"] or "[]")]
        return MoveFacts(
            eligible=row["eligible"],
            failed=failures(checks),
            score=Decimal(row["score"]) if row["score"] is not None else None,
            minimum_score=track_cfg.evaluation.minimum_score,
        )

    def _refuse_overrides(
        self,
        conn: Connection,
        track_key: str,
        trigger: str,
        from_state: str,
        where: sa.ColumnElement[bool] | None,
        ids: list[int] | None = None,
    ) -> None:
        """A bulk move without a reason is refused, moving nothing, if it would take
        any of its applications against a rule; the refusal names the first few."""
        query = (
            sa.select(APPLICATION)
            .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
            .where(TRACK.c.key == track_key, APPLICATION.c.state == from_state)
            .order_by(APPLICATION.c.id)
        )
        if where is not None:
            query = query.where(where)
        if ids is not None:
            query = query.where(APPLICATION.c.id.in_(ids))
        rows = list(conn.execute(query).mappings())
        against = [(r, why) for r in rows if (why := override(from_state, trigger, self._move_facts(conn, r)))]
        if against:
            named = "; ".join(f"{r['receipt_no'] or r['id']}: {why}" for r, why in against[:3])
            more = f"; and {len(against) - 3} more" if len(against) > 3 else ""
            raise OverrideNeedsReason(f"{len(against)} of {len(rows)} applications", trigger, named + more)

    def _waitlist_place(self, conn: Connection, row: Row, track: Row, given: int | None) -> int:
        """The position of a manual waitlisting: `given` if no other application
        of the track holds it, else refused; without it, the one after the last."""
        held = {
            int(r.waitlist_position): int(r.id)
            for r in conn.execute(
                sa.select(APPLICATION.c.id, APPLICATION.c.waitlist_position).where(
                    APPLICATION.c.track_id == track["id"],
                    APPLICATION.c.state == "waitlisted",
                    APPLICATION.c.waitlist_position.is_not(None),
                    APPLICATION.c.id != row["id"],
                )
            )
        }
        following = max(held, default=0) + 1
        if given is None:
            return following
        if not 1 <= given <= MAX_WAITLIST_POSITION:
            raise InvalidInput(
                f"--position {given}: write a whole number from 1 (the first to be promoted)"
                f" to {MAX_WAITLIST_POSITION}, or leave it out for the next free one ({following})"
            )
        if given in held:
            raise InvalidInput(
                f"--position {given}: waitlist position {given} of track {track['key']} is held by application"
                f" {held[given]}; choose a free one, or leave --position out for the next ({following})"
            )
        return given

    def _after(self, conn: Connection, ids: list[int], source: str, dest: str, track: Row, now: datetime) -> None:
        """What entering or leaving a state brings with it, in the same transaction."""
        _, track_cfg = self.loaded.config.track(track["key"])
        if dest == "preliminary_review":
            review.record_checks(conn, ids, track_cfg)
        if source == "selected" and dest in ("withdrawn", "cancelled"):
            self._promote_after_dropout(conn, ids, track, track_cfg, now)

    def _promote_after_dropout(
        self, conn: Connection, ids: list[int], track: Row, track_cfg: TrackConfig, now: datetime
    ) -> None:
        """Before the promotion date, a place freed by a selected applicant
        goes to the first waitlisted one that fits the budget left."""
        if now >= track[track_cfg.promotion_until]:
            return
        for _ in ids:
            taken = conn.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(APPLICATION.c.national_krw), 0)).where(
                    APPLICATION.c.track_id == track["id"], APPLICATION.c.state.in_(("selected", "kickoff"))
                )
            ).one()
            waiting = [
                Waiting(int(r.id), int(r.waitlist_position or 0), int(r.national_krw or 0))
                for r in conn.execute(
                    sa.select(APPLICATION.c.id, APPLICATION.c.waitlist_position, APPLICATION.c.national_krw).where(
                        APPLICATION.c.track_id == track["id"], APPLICATION.c.state == "waitlisted"
                    )
                )
            ]
            left = track_cfg.funding.budget_national_krw - int(taken[1])
            pick, passed = promotion(waiting, track_cfg.slots - int(taken[0]), left)
            if pick is None:
                return
            dropped = ", ".join(str(i) for i in ids)
            reason = f"place freed by application {dropped}; waitlist position {pick.position}"
            if passed:
                reason += "; " + "; ".join(passed)
            self.move(conn, pick.application_id, "promote", SYSTEM, reason, fields={"waitlist_position": None})

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
    ) -> Moved:
        """Record a plan received: start the application if needed, then submit.

        Eligibility is not checked here (that is the preliminary review's
        job); only the window, the role and the form of the values.
        """
        spec = self.spec("submit")
        check_role(spec, actor.role)
        _, track_cfg = self.loaded.config.track(track_key)
        _check_amounts(national_krw, local_krw)
        if years is not None and not 1 <= years <= MAX_YEARS:
            raise InvalidInput(f"--years {shown(years)}: a plan runs for 1 to {MAX_YEARS} years")
        if project_type is not None and project_type not in track_cfg.eligibility.types:
            allowed = ", ".join(track_cfg.eligibility.types) or "none (this track has no types)"
            raise InvalidInput(f"--type {project_type!r} is not a type of track {track_key} (allowed: {allowed})")
        with write(self.db) as conn:
            track = self._locked_track(conn, track_key)
            # The clock is read under the track's lock: a receipt close that
            # committed meanwhile is seen, so no plan slips in behind it.
            now = window_now(conn, self.clock, self.loaded.config.gongmo.max_clock_skew_s)
            applicant = self._applicant(conn, applicant_code)
            row = self._application_of(conn, track["id"], applicant["id"])
            extended = extension_until(conn, row["id"], "receipt_closes") if row else None
            check_receipt_window(now, track["receipt_opens"], track["receipt_closes"], self._zone(track), extended)
            if receipt_closed_for_good(conn, track["id"], row["id"] if row else None):  # a clock that lags
                raise closed_for_good(track, self._zone(track), extended)
            if row is None:
                self._create(conn, track, [applicant["id"]], START, actor, now, notice=None)
                row = self._application_of(conn, track["id"], applicant["id"])
                assert row is not None
            dest = self._check_move(row, "submit")
            seq = int(track["receipt_seq"]) + 1
            receipt_no = f"{track['receipt_prefix']}-{seq:04d}"
            conn.execute(sa.update(TRACK).where(TRACK.c.id == track["id"]).values(receipt_seq=seq))
            fields = {
                "receipt_no": receipt_no,
                "national_krw": national_krw,
                "local_krw": local_krw,
                "title": title,
                "project_type": project_type,
                "years": years or track_cfg.funding.years,
                "submitted_at": now,
            }
            moved = self._write_move(conn, row, spec, dest, actor, None, now, fields)
            self.queue(conn, spec.notice, [moved.application_id], track, now)
        return replace(moved, receipt_no=receipt_no)

    def start(self, track_key: str, applicant_code: str, actor: Actor) -> int:
        """An applicant starts an application while the call is open."""
        with write(self.db) as conn:
            track = self._locked_track(conn, track_key)
            now = window_now(conn, self.clock, self.loaded.config.gongmo.max_clock_skew_s)  # under the lock
            if not (track["announce_at"] <= now < track["receipt_closes"]):
                raise OutsideWindow(
                    f"track {track_key} takes new applications from its announcement to the"
                    f" receipt close ({self._window(track, 'announce_at', 'receipt_closes')})"
                )
            if receipt_closed_for_good(conn, track["id"], None):  # a clock that lags
                raise closed_for_good(track, self._zone(track), None)
            applicant = self._applicant(conn, applicant_code)
            if self._application_of(conn, track["id"], applicant["id"]) is not None:
                raise Conflict(f"{applicant_code} already has an application in track {track_key}")
            return self._create(conn, track, [applicant["id"]], START, actor, now, notice=None)[0]

    def announce(
        self,
        track_key: str,
        actor: Actor,
        applicant_ids: Iterable[int] | None = None,
        late: bool = False,
        should_stop: Callable[[], bool] | None = None,
    ) -> int:
        """Publish the call: one application (in announcement) per applicant
        on the track's mailing list, each sent the call. Idempotent; a chunk of
        CHUNK applications per transaction, so a rerun continues. `late` (the
        office said so) sends it after the receipt's close time, but never after
        the close fired. `should_stop` is asked before each chunk (Interrupted)."""
        now = self.clock.now()
        _, track_cfg = self.loaded.config.track(track_key)
        kinds = [k.value for k in track_cfg.eligibility.kinds]
        created = 0
        while True:
            if should_stop is not None and should_stop():
                raise Interrupted(f"announcement of track {track_key} stopped after {created}; a rerun continues")
            with write(self.db) as conn:
                track = self._locked_track(conn, track_key)
                if now < track["announce_at"]:
                    raise OutsideWindow(
                        f"track {track_key} is announced at {self._local(track, 'announce_at')}; not before"
                    )
                if now >= track["receipt_closes"] and not late:
                    raise OutsideWindow(f"track {track_key}: receipt closed at {self._local(track, 'receipt_closes')}")
                if late and receipt_closed_for_good(conn, track["id"], None):
                    raise OutsideWindow(
                        f"track {track_key}: its receipt close has fired; a call sent now would invite"
                        " applicants nobody moves on. Move the calendar of a new call instead"
                    )
                pending = self._uninvited(conn, track["id"], kinds, applicant_ids)
                if not pending:
                    if track["announced_at"] is None:
                        conn.execute(sa.update(TRACK).where(TRACK.c.id == track["id"]).values(announced_at=now))
                    return created
                self._create(conn, track, pending, CREATE, actor, now, notice="call_announcement")
                created += len(pending)

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
    ) -> int:
        """Move every application of the track in `from_state`; with
        `skip_extended` (a milestone), leave out those whose own extension of
        that milestone is still running. `should_stop` is asked before each
        chunk: True raises Interrupted (the chunks done stay; a rerun continues)."""
        spec = self._precheck(trigger, actor, reason, bulk=True)  # exactly the checks of a single move
        dest = self.table.dest(from_state, trigger)
        if dest is None:
            raise IllegalMove(f"of track {track_key}", from_state, trigger, self.table.triggers_from(from_state))
        overrides = trigger in OVERRIDING and not (reason and reason.strip())
        if overrides:  # checked on every row before the first chunk moves: all or nothing
            with write(self.db) as conn:
                self._refuse_overrides(conn, track_key, trigger, from_state, where)
        moved = 0
        after = 0  # keyset: each chunk starts after the last id of the one before
        while True:
            if should_stop is not None and should_stop():
                raise Interrupted(f"'{trigger}' of track {track_key} stopped after {moved} moves; a rerun continues")
            now = self.clock.now()
            with write(self.db) as conn:
                track = self._locked_track(conn, track_key)
                ids = self._ids_in_state(conn, track["id"], from_state, chunk, skip_extended, now, where, after)
                if not ids:
                    return moved
                after = ids[-1]
                if overrides:  # and again under the chunk's lock, as a single move does
                    self._refuse_overrides(conn, track_key, trigger, from_state, where, ids)
                self._bulk_move(conn, ids, spec, from_state, dest, actor, reason, now)
                self.queue(conn, spec.notice, ids, track, now, {"reason": reason or ""})
                self._after(conn, ids, from_state, dest, track, now)
            moved += len(ids)

    def _bulk_move(
        self,
        conn: Connection,
        ids: list[int],
        spec: TriggerSpec,
        from_state: str,
        dest: str,
        actor: Actor,
        reason: str | None,
        now: datetime,
    ) -> None:
        result = conn.execute(
            sa.update(APPLICATION)
            .where(APPLICATION.c.id.in_(ids), APPLICATION.c.state == from_state)
            .values(state=dest, version=APPLICATION.c.version + 1, updated_at=now)
        )
        if result.rowcount != len(ids):
            raise Conflict(f"bulk '{spec.name}': {len(ids) - result.rowcount} applications changed underneath; retry")
        conn.execute(
            sa.insert(AUDIT),
            [
                {
                    "application_id": i,
                    "at": now,
                    "actor": actor.name,
                    "role": actor.role.value,
                    "trigger": spec.name,
                    "from_state": from_state,
                    "to_state": dest,
                    "reason": reason,
                }
                for i in ids
            ],
        )

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
                track = self._locked_track(conn, track_key)
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

    # -- pieces ------------------------------------------------------------

    def spec(self, name: str) -> TriggerSpec:
        """The trigger of the table by name, or a clear refusal."""
        if not self.table.has_trigger(name):
            known = ", ".join(t.name for t in self.table.triggers)
            raise InvalidInput(f"unknown trigger {name!r} (triggers: {known})")
        return self.table.trigger(name)

    def _check_move(self, row: Row, trigger: str) -> str:
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

    def _write_move(
        self,
        conn: Connection,
        row: Row,
        spec: TriggerSpec,
        dest: str,
        actor: Actor,
        reason: str | None,
        now: datetime,
        fields: Mapping[str, Any] | None = None,
    ) -> Moved:
        values = {"m_id": row["id"], "m_version": row["version"], "state": dest, "version": row["version"] + 1}
        values |= {"updated_at": now, **(fields or {})}
        result = conn.execute(MOVE, values)
        if result.rowcount != 1:
            raise Conflict(f"application {row['id']} changed while '{spec.name}' ran; reload and try again")
        audit = {"application_id": row["id"], "at": now, "actor": actor.name, "role": actor.role.value}
        audit |= {"trigger": spec.name, "from_state": row["state"], "to_state": dest, "reason": reason}
        conn.execute(AUDIT_INSERT, audit)
        # the number the applicant knows its plan by (None before a plan was received)
        receipt_no = (fields or {}).get("receipt_no", row["receipt_no"])
        return Moved(row["id"], spec.name, row["state"], dest, row["version"] + 1, receipt_no)

    def _create(
        self,
        conn: Connection,
        track: Row,
        applicant_ids: list[int],
        how: str,
        actor: Actor,
        now: datetime,
        notice: str | None,
    ) -> list[int]:
        rows = [
            {
                "track_id": track["id"],
                "applicant_id": a,
                "state": self.table.initial,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            for a in applicant_ids
        ]
        result = conn.execute(sa.insert(APPLICATION).returning(APPLICATION.c.id, sort_by_parameter_order=True), rows)
        ids = [int(r[0]) for r in result]
        conn.execute(
            sa.insert(AUDIT),
            [
                {
                    "application_id": i,
                    "at": now,
                    "actor": actor.name,
                    "role": actor.role.value,
                    "trigger": how,
                    "from_state": None,
                    "to_state": self.table.initial,
                    "reason": None,
                }
                for i in ids
            ],
        )
        self.queue(conn, notice, ids, track, now)
        return ids

    def queue(
        self,
        conn: Connection,
        notice: str | None,
        ids: list[int],
        track: Row,
        now: datetime,
        extra: Mapping[str, Any] | None = None,
        tag: str | None = None,
    ) -> int:
        """Render and insert the notices; with a tag, skip any already queued."""
        if notice is None or not ids:
            return 0
        contest, track_cfg = self.loaded.config.track(track["key"])
        calendar = {m: track[m] for m in MILESTONES}
        # A result waits for the office's release while the track's results are not released.
        hold = notice in track_cfg.hold_notices and track["results_released_at"] is None
        rows = [
            self.notifier.row(notice, party, contest, track_cfg, calendar, now, extra, tag, hold=hold)
            for party in self._parties(conn, ids)
        ]
        older = supersedes(notice)
        if older:
            conn.execute(
                SUPERSEDE,
                {
                    "s_ids": ids,
                    "s_family": sorted(older),
                    "s_keys": [r["dedup_key"] for r in rows],  # the same notice again stays
                    "s_by": notice,
                    "s_error": f"superseded by '{notice}' before it was sent",
                },
            )
        if hold:
            conn.execute(EMBARGO, {"e_track": track["id"], "e_at": now})
        if tag is None:
            conn.execute(OUTBOX_INSERT, rows)
            return len(rows)
        return insert_new(conn, OUTBOX, rows, "dedup_key")

    def _parties(self, conn: Connection, ids: list[int]) -> Iterator[Party]:
        for row in conn.execute(PARTIES, {"p_ids": ids}).mappings():
            yield Party.from_row(row)

    def _locked_application(self, conn: Connection, application_id: int) -> Row:
        row = lock_row(conn, APPLICATION, application_id)
        if row is None:
            raise NotFound(f"no application {application_id}: see `gongmo status` or `gongmo show`")
        return row._mapping

    def _locked_track(self, conn: Connection, track_key: str) -> Row:
        return self.track_by_key(conn, track_key, lock=True)

    def track_by_key(self, conn: Connection, track_key: str, lock: bool = False) -> Row:
        """A track's row (its calendar as the database holds it); `lock` takes
        it FOR UPDATE on PostgreSQL, serialising writers of the same track."""
        self.loaded.config.track(track_key)  # a clear error for a key not in the config
        query = sa.select(TRACK).where(TRACK.c.key == track_key)
        if lock and conn.dialect.name != "sqlite":
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise NotFound(f"track {track_key} is in the config but not in the database: run `gongmo init`")
        return row

    def track_row(self, conn: Connection, track_id: int) -> Row:
        row = row_by_id(conn, TRACK, track_id)
        assert row is not None, track_id  # an application's track_id is a foreign key
        return row._mapping

    def _applicant(self, conn: Connection, code: str) -> Row:
        row = conn.execute(sa.select(APPLICANT).where(APPLICANT.c.code == code)).mappings().first()
        if row is None:
            raise NotFound(f"no applicant with code {code!r}: import it first (`gongmo applicants import FILE.csv`)")
        return row

    def _application_of(self, conn: Connection, track_id: int, applicant_id: int) -> Row | None:
        query = sa.select(APPLICATION).where(
            APPLICATION.c.track_id == track_id, APPLICATION.c.applicant_id == applicant_id
        )
        if conn.dialect.name != "sqlite":
            query = query.with_for_update()
        row = conn.execute(query).first()
        return row._mapping if row else None

    def _uninvited(self, conn: Connection, track_id: int, kinds: list[str], only: Iterable[int] | None) -> list[int]:
        taken = sa.select(APPLICATION.c.applicant_id).where(APPLICATION.c.track_id == track_id)
        query = (
            sa.select(APPLICANT.c.id)
            .where(APPLICANT.c.kind.in_(kinds), APPLICANT.c.id.not_in(taken))
            .order_by(APPLICANT.c.id)
            .limit(ANNOUNCE_CHUNK)
        )
        if only is not None:
            query = query.where(APPLICANT.c.id.in_(list(only)))
        return [int(r[0]) for r in conn.execute(query)]

    def _ids_in_state(
        self,
        conn: Connection,
        track_id: int,
        state: str,
        limit: int,
        skip_extended: str | None = None,
        now: datetime | None = None,
        where: sa.ColumnElement[bool] | None = None,
        after: int = 0,
    ) -> list[int]:
        query = (
            sa.select(APPLICATION.c.id)
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
        if conn.dialect.name != "sqlite":
            query = query.with_for_update()
        return [int(r[0]) for r in conn.execute(query)]

    def _zone(self, track: Row) -> str:
        contest, _ = self.loaded.config.track(track["key"])
        return contest.timezone

    def _local(self, track: Row, milestone: str) -> str:
        value: datetime = track[milestone]
        return f"{value.astimezone(ZoneInfo(self._zone(track))):%Y-%m-%d %H:%M %Z}"

    def _window(self, track: Row, start: str, end: str) -> str:
        return f"{self._local(track, start)} to {self._local(track, end)}"


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


def insert_new(conn: Connection, table: sa.Table, rows: list[dict[str, Any]], unique: str) -> int:
    """Insert the rows whose `unique` value is not in the table yet."""
    if not rows:
        return 0
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt: Any = dialect_insert(table).on_conflict_do_nothing(index_elements=[unique])
    return len(conn.execute(stmt.returning(table.c.id), rows).all())


MAX_KRW = 2**63 - 1  # the amounts are BIGINT columns
MAX_YEARS = 10  # as a program's years in the config, and the HTTP API


def _check_amounts(national_krw: int, local_krw: int) -> None:
    if not 0 < national_krw <= MAX_KRW:
        raise InvalidInput(
            f"--national {shown(national_krw)}: the national share must be a positive amount in won, at most {MAX_KRW}"
        )
    if not 0 <= local_krw <= MAX_KRW:
        raise InvalidInput(
            f"--local {shown(local_krw)}: the local share must be zero or more, in won, at most {MAX_KRW}"
        )


# -- windows a clock cannot reopen (DESIGN 3.8) ---------------------------------------------

_skew_warned_at = 0.0  # time.monotonic() of the last clock-skew warning (one a minute at most)


def window_now(conn: Connection, clock: Clock, max_skew_s: float) -> datetime:
    """'Now' for a window check. With the real wall clock on PostgreSQL the
    database's clock is the floor (a replica whose clock lags cannot reopen a
    window), and a skew past `max_skew_s` is logged. A FixedClock (tests,
    rehearsals) and SQLite (one machine, one clock) read the clock as it is."""
    import logging
    import time

    from gongmo.workflow.core.clock import SystemClock

    global _skew_warned_at
    now = clock.now()
    if not isinstance(clock, SystemClock) or conn.dialect.name != "postgresql":
        return now
    db_now: datetime = conn.execute(sa.select(sa.func.statement_timestamp())).scalar_one()
    skew = (now - db_now).total_seconds()
    if abs(skew) > max_skew_s and time.monotonic() - _skew_warned_at > 60:
        _skew_warned_at = time.monotonic()
        logging.getLogger("gongmo.clock").warning(
            "this process's clock is %.1f s %s the database's (more than [gongmo] max_clock_skew_s = %s):"
            " windows are checked against the later of the two; fix the machine's time sync (NTP)",
            abs(skew),
            "ahead of" if skew > 0 else "behind",
            max_skew_s,
        )
    return max(now, db_now)


def receipt_closed_for_good(conn: Connection, track_id: int, application_id: int | None) -> bool:
    """True once the track's receipt close has fired and no extension of this
    application is still unfired (an extension's own close fired: closed too).
    What a deadline did, a clock cannot undo."""
    from gongmo.workflow.core.models import DEADLINE

    query = sa.select(DEADLINE.c.action, DEADLINE.c.fired_at).where(
        DEADLINE.c.track_id == track_id,
        sa.or_(
            DEADLINE.c.action == "close_receipt",
            sa.and_(DEADLINE.c.action == "extension_closes", DEADLINE.c.application_id == application_id),
        ),
    )
    rows = [(str(action), at) for action, at in conn.execute(query)]
    close = [at is not None for action, at in rows if action == "close_receipt"]
    extension = [at is not None for action, at in rows if action == "extension_closes"]
    if not close or not all(close):
        return False  # the track's close has not fired: the clock (and the database's) decides
    return all(extension)  # no extension, or every extension of this application has closed


def closed_for_good(track: Row, zone: str, extended: datetime | None) -> OutsideWindow:
    """The refusal of a plan after the receipt close fired (see receipt_closed_for_good)."""
    close: datetime = max(track["receipt_closes"], extended) if extended else track["receipt_closes"]
    local = close.astimezone(ZoneInfo(zone))
    return OutsideWindow(
        f"receipt of track {track['key']} is closed: its close ({local:%Y-%m-%d %H:%M:%S %Z}) has fired,"
        " whatever this machine's clock says (check its time sync); a closed window does not reopen",
        closes=local.isoformat(),
    )


class Interrupted(Exception):
    """A chunked run (bulk move, announcement) stopped between chunks because its
    caller is stopping: the chunks done are committed, a rerun continues."""
