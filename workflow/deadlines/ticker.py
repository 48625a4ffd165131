"""Claim due deadline rows and fire each exactly once.

A tick claims at most `deadlines_per_tick` due rows, oldest first, with a
guarded update (SQLite: under BEGIN IMMEDIATE; PostgreSQL: FOR UPDATE SKIP
LOCKED), so two daemons never take the same row. It then runs each row's
action through the engine and marks it fired. A daemon that dies holding a
claim loses it when the lease runs out; every action is idempotent (it moves
applications by state and suppresses duplicate notices by key), so the one
that takes over finishes the work without doing it twice.

Per-applicant rows scale: a track's rows due at the same instant with the same
grouped action (an extension's close, one row per applicant: 10,000 extensions
closing after downtime) fire as one unit, one action over all of them (bulk
moves in chunks), instead of a transaction each. The claim takes the rest of
such a run past the batch limit (up to GROUP_MAX rows), stopping at the first
row of that track and instant of another action or that someone else holds;
`units` keeps each track's order. Each row of the unit is marked fired, once,
only while this worker still holds it.

Calendar order survives errors: a row that failed (or an announcement held
because it was caught up after the receipt close) holds back every later row
of its track until it has fired; status.blocked says which and why (`gongmo
deadlines`, /healthz). A daemon that is stopping (`stopping` set) claims
nothing more, lets the chunk in hand commit and gives its rows back. What each
action does is in actions.py.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from gongmo.states.errors import Conflict, GongmoError, InvalidInput, NotFound
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import DEADLINE, TRACK, UTCDateTime
from gongmo.workflow.deadlines.actions import SKIPPED, Action, Actions, GroupAction, Skipped
from gongmo.workflow.engine.app import App
from gongmo.workflow.engine.steps import Interrupted

log = logging.getLogger("gongmo.ticker")

# pg_advisory_xact_lock key of the deadline claim ("gongmo" + 1)
CLAIM_LOCK = 0x676F6E676D6F01


@dataclass(frozen=True)
class Fired:
    key: str
    action: str
    milestone: str
    due_at: datetime
    fired_at: datetime
    late: bool
    summary: str
    error: str | None = None


class Ticker:
    def __init__(self, app: App, worker: str) -> None:
        self.app = app
        self.worker = worker
        settings = app.loaded.config.gongmo
        self.batch = settings.deadlines_per_tick
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.on_time = timedelta(seconds=settings.on_time_seconds)
        self.renew_every = self.lease.total_seconds() / 3  # seconds of real time between lease renewals
        self.late_announcements: str = settings.late_announcements
        self.stopping = threading.Event()  # set by a stopping daemon: claim nothing more
        self.forced: set[str] = set()  # keys the office fires now (`gongmo deadlines --fire KEY`)
        # What a deadline row does, by its action (deadlines/actions.py).
        actions = Actions(self)
        self.actions: dict[str, Action] = actions.table()
        # Per-applicant actions fired together: a run of a track's rows due at the same instant with
        # the same action (10,000 extensions closing) is one unit, one bulk move (actions.py).
        self.grouped: dict[str, GroupAction] = actions.groups()

    # -- the loop --------------------------------------------------------------

    def tick(self) -> list[Fired]:
        """Fire what is due now (at most one batch), in calendar order. While the
        actions run, a thread keeps the batch's lease (a close of 100,000 plans
        may outlast it); a daemon that dies stops renewing and its rows come free."""
        if self.stopping.is_set():
            return []
        now = self.app.clock.now()
        rows = self._claim(now)
        if not rows:
            return []
        with _Renewal(self, [r["id"] for r in rows]) as renewal:
            fired: list[Fired] = []
            failed: set[int] = set()  # tracks with a row that failed in this batch: their later rows wait
            for unit in units(rows, self.grouped):
                ids = [r["id"] for r in unit]
                if unit[0]["track_id"] in failed or self.stopping.is_set():
                    self._release(ids)
                else:
                    done = self._fire(unit, now)
                    fired += done
                    if any(d.error is not None and d.error != "lease lost" for d in done):
                        failed.add(unit[0]["track_id"])
                renewal.done(ids)
        return fired

    def run_until_idle(self, max_ticks: int = 10_000) -> list[Fired]:
        """Burst mode: tick until nothing is due (start-up catch-up, --once)."""
        fired: list[Fired] = []
        for _ in range(max_ticks):
            batch = self.tick()
            if not batch:
                break
            fired.extend(batch)
        return fired

    # -- the office decides ----------------------------------------------------------

    def fire_now(self, key: str) -> Fired:
        """Fire one due, unfired row now, in front of its backoff: an announcement
        held after the receipt close is sent as a real (late) call. Refused if an
        earlier row of its track has not fired (calendar order) or a daemon holds it."""
        now = self.app.clock.now()
        with write(self.app.db) as conn:
            row = self._office_row(conn, key, now)
            conn.execute(
                sa.update(DEADLINE)
                .where(DEADLINE.c.id == row["id"], DEADLINE.c.fired_at.is_(None))
                .values(claimed_by=self.worker, lease_until=now + self.lease, attempts=DEADLINE.c.attempts + 1)
            )
        self.forced.add(key)
        try:
            with _Renewal(self, [row["id"]]):
                [fired] = self._fire([row], now)
                return fired
        finally:
            self.forced.discard(key)

    def skip(self, key: str, reason: str) -> None:
        """Record a held announcement as fired without sending it (a call made
        elsewhere, a contest kept for its history): the office's word, kept in the row."""
        if not reason.strip():
            raise InvalidInput(
                f"{{field:skip}} {key}: {{field}} is required (why the call is not sent), e.g. {{example}}",
                field="reason",
                value=reason,
                example="'...'",
            )
        now = self.app.clock.now()
        with write(self.app.db) as conn:
            row = self._office_row(conn, key, now, only="announce")
            late = now - row["due_at"] > self.on_time
            conn.execute(
                sa.update(DEADLINE)
                .where(DEADLINE.c.id == row["id"], DEADLINE.c.fired_at.is_(None))
                .values(
                    fired_at=now,
                    late=late,
                    claimed_by=self.worker,
                    lease_until=None,
                    last_error=f"skipped by the office, not sent: {reason.strip()}"[:2000],
                )
            )
        log.warning("deadline %s: skipped by the office, not sent: %s", key, reason.strip())

    def _office_row(self, conn: Connection, key: str, now: datetime, only: str | None = None) -> dict[str, Any]:
        row = (
            conn.execute(
                sa.select(DEADLINE, TRACK.c.key.label("track_key"))
                .join(TRACK, TRACK.c.id == DEADLINE.c.track_id)
                .where(DEADLINE.c.key == key)
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"no deadline {key!r}: see `gongmo deadlines`")
        if only is not None and row["action"] != only:
            raise InvalidInput(
                f"{{given}}: only an announcement may be skipped (this row is '{row['action']}');"
                f" fire it with {{field:fire}} {key}",
                field="skip",
                value=key,
            )
        if row["fired_at"] is not None:
            raise Conflict(f"deadline {key} fired at {row['fired_at']:%Y-%m-%d %H:%M} UTC already; nothing to do")
        if row["due_at"] > now:
            raise InvalidInput(f"deadline {key} is due at {row['due_at']:%Y-%m-%d %H:%M} UTC, not yet; it fires then")
        if row["last_error"] is None and row["lease_until"] is not None and row["lease_until"] >= now:
            raise Conflict(f"deadline {key} is being fired by {row['claimed_by']} now; see `gongmo deadlines`")
        earlier = conn.execute(
            sa.select(DEADLINE.c.key)
            .where(
                DEADLINE.c.track_id == row["track_id"],
                DEADLINE.c.fired_at.is_(None),
                sa.or_(
                    DEADLINE.c.due_at < row["due_at"],
                    sa.and_(DEADLINE.c.due_at == row["due_at"], DEADLINE.c.id < row["id"]),
                ),
            )
            .order_by(DEADLINE.c.due_at, DEADLINE.c.id)
            .limit(1)
        ).scalar()
        if earlier is not None:
            raise Conflict(f"deadline {key} waits for {earlier} of its track (calendar order): settle that one first")
        return dict(row)

    def next_due(self) -> datetime | None:
        """When the next tick has something to do: the earliest unfired
        deadline, or the end of its lease if a daemon holds it (or it backs off).
        A row waiting behind a failed one of its track is not counted: it comes
        when that one fires (the same wake ticks on)."""
        ready = sa.case((DEADLINE.c.lease_until > DEADLINE.c.due_at, DEADLINE.c.lease_until), else_=DEADLINE.c.due_at)
        behind = _earlier_unfired("failed", lambda failed: failed.c.last_error.is_not(None))
        with read(self.app.db) as conn:
            value = conn.execute(sa.select(sa.func.min(ready)).where(DEADLINE.c.fired_at.is_(None), ~behind)).scalar()
        if value is None:
            return None
        return UTCDateTime().process_result_value(value, self.app.db.dialect)

    # -- claim, fire, mark -------------------------------------------------------

    def _claim(self, now: datetime) -> list[Mapping[str, Any]]:
        """Take the due rows nobody holds, in calendar order; a row waits while an
        earlier row of its track is held by a daemon still at work (or dead, until
        its lease runs out), or failed and has not fired since (backing off, or
        an announcement held for the office), so a track's deadlines never fire
        out of order: the review is not declared due before the close ran."""
        free = sa.or_(DEADLINE.c.lease_until.is_(None), DEADLINE.c.lease_until < now)
        held_before = _earlier_unfired(
            "earlier", lambda earlier: sa.or_(earlier.c.last_error.is_not(None), earlier.c.lease_until >= now)
        )
        with write(self.app.db) as conn:
            if conn.dialect.name == "postgresql":
                # Claims take turns (a transaction lock, gone with its holder): a claim
                # must see the rows an earlier one just leased, not skip them unseen.
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(CLAIM_LOCK)))
            query = (
                sa.select(DEADLINE, TRACK.c.key.label("track_key"))
                .join(TRACK, TRACK.c.id == DEADLINE.c.track_id)
                .where(DEADLINE.c.fired_at.is_(None), DEADLINE.c.due_at <= now, free, ~held_before)
                .order_by(DEADLINE.c.due_at, DEADLINE.c.id)
                .limit(self.batch)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(of=DEADLINE, skip_locked=True)
            rows: list[Mapping[str, Any]] = [dict(r) for r in conn.execute(query).mappings()]
            if not rows:
                return []
            rows += self._rest_of_runs(conn, rows, now)
            claimed = 0
            for ids in _slices([r["id"] for r in rows]):
                claimed += conn.execute(
                    sa.update(DEADLINE)
                    .where(DEADLINE.c.id.in_(ids), DEADLINE.c.fired_at.is_(None), free)
                    .values(claimed_by=self.worker, lease_until=now + self.lease, attempts=DEADLINE.c.attempts + 1)
                ).rowcount
            if claimed != len(rows):  # cannot happen under the lock; refuse to guess
                raise RuntimeError(f"claimed {claimed} of {len(rows)} deadline rows")
        return rows

    def _rest_of_runs(self, conn: Connection, rows: list[Mapping[str, Any]], now: datetime) -> list[Mapping[str, Any]]:
        """The batch's limit may cut a run of a grouped action in two (10,000 extensions closing at
        one instant, 20 rows a batch): each track's last unit, if it is such a run, takes the rest of
        its run with it, up to GROUP_MAX rows: the due rows of that track, instant and action after
        it, up to the first row of that track and instant that is of another action or that someone
        holds (calendar order: those wait for it, and it for them)."""
        last: dict[int, list[Mapping[str, Any]]] = {}
        for unit in units(rows, self.grouped):
            last[unit[0]["track_id"]] = unit
        more: list[Mapping[str, Any]] = []
        for unit in last.values():
            tail = unit[-1]
            if tail["action"] not in self.grouped or len(unit) >= GROUP_MAX:
                continue
            same = sa.and_(
                DEADLINE.c.track_id == tail["track_id"],
                DEADLINE.c.due_at == tail["due_at"],
                DEADLINE.c.fired_at.is_(None),
                DEADLINE.c.id > tail["id"],
            )
            held = sa.and_(DEADLINE.c.lease_until.is_not(None), DEADLINE.c.lease_until >= now)
            stop = conn.execute(
                sa.select(sa.func.min(DEADLINE.c.id)).where(same, sa.or_(DEADLINE.c.action != tail["action"], held))
            ).scalar()
            query = (
                sa.select(DEADLINE, TRACK.c.key.label("track_key"))
                .join(TRACK, TRACK.c.id == DEADLINE.c.track_id)
                .where(same, DEADLINE.c.action == tail["action"], ~held)
                .order_by(DEADLINE.c.id)
                .limit(GROUP_MAX - len(unit))
            )
            if stop is not None:
                query = query.where(DEADLINE.c.id < stop)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(of=DEADLINE, skip_locked=True)
            more += [dict(r) for r in conn.execute(query).mappings()]
        return more

    def _holds(self, ids: list[int]) -> sa.ColumnElement[bool]:
        """Those of these rows this worker holds, unfired."""
        return sa.and_(DEADLINE.c.id.in_(ids), DEADLINE.c.claimed_by == self.worker, DEADLINE.c.fired_at.is_(None))

    def _renew(self, ids: list[int]) -> int:
        """Push the lease of rows this daemon still works on; how many it still holds."""
        held = 0
        with write(self.app.db) as conn:
            for part in _slices(ids):
                result = conn.execute(
                    sa.update(DEADLINE).where(self._holds(part)).values(lease_until=self.app.clock.now() + self.lease)
                )
                held += int(result.rowcount)
        return held

    def _fire(self, unit: list[Mapping[str, Any]], now: datetime) -> list[Fired]:
        """Run a unit's action: one row, or a run of rows of one grouped action (same track, instant
        and action), fired together; record each row fired, failed or given back."""
        first = unit[0]
        late = now - first["due_at"] > self.on_time
        reason = self._reason(first, now, late, len(unit))
        try:
            if first["action"] in self.grouped:
                summary = self.grouped[first["action"]](unit, reason)
            else:
                summary = self.actions[first["action"]](first, reason)
        except Skipped as exc:  # nothing to send: fired, with the reason kept in the row
            return self._mark(unit, now, late, f"skipped: {exc}", f"{SKIPPED}{exc}")
        except Interrupted as exc:  # the daemon is stopping: the chunks done stay, the rows go back
            self._release([r["id"] for r in unit])
            log.info("deadline %s: %s", _keys(unit), exc)
            return [_fired(r, now, late, "stopped", str(exc)) for r in unit]
        except GongmoError as exc:
            return self._failed(unit, now, late, str(exc))
        except Exception as exc:  # a bug or the database: keep the row for a retry, log it
            log.exception("deadline %s failed", _keys(unit))
            return self._failed(unit, now, late, f"{type(exc).__name__}: {exc}")
        return self._mark(unit, now, late, summary)

    def _mark(
        self, unit: list[Mapping[str, Any]], now: datetime, late: bool, summary: str, note: str | None = None
    ) -> list[Fired]:
        """Record the unit's rows fired (with `note` in last_error: why nothing was sent), each once:
        only a row this worker still holds unfired is marked."""
        marked: set[int] = set()
        with write(self.app.db) as conn:
            for ids in _slices([r["id"] for r in unit]):
                marked.update(
                    conn.execute(
                        sa.update(DEADLINE)
                        .where(self._holds(ids))
                        .values(fired_at=now, late=late, lease_until=None, last_error=note[:2000] if note else None)
                        .returning(DEADLINE.c.id)
                    ).scalars()
                )
        lost = [r for r in unit if r["id"] not in marked]
        if lost:  # the lease ran out and another daemon took the rows (the action is idempotent)
            log.warning("deadline %s: done, but another daemon holds it now; it records the firing", _keys(lost))
        if len(lost) < len(unit):
            log.info("deadline %s fired%s: %s", _keys(unit), " (catch-up)" if late else "", summary)
        return [_fired(r, now, late, summary, None if r["id"] in marked else "lease lost") for r in unit]

    def _release(self, ids: list[int]) -> None:
        """Give claimed rows back untouched: the next tick (or daemon) takes them at once."""
        with write(self.app.db) as conn:
            for part in _slices(ids):
                conn.execute(
                    sa.update(DEADLINE)
                    .where(self._holds(part))
                    .values(
                        claimed_by=None,
                        lease_until=None,
                        attempts=sa.case((DEADLINE.c.attempts > 0, DEADLINE.c.attempts - 1), else_=0),
                    )
                )

    def release_all(self) -> int:
        """At a stop: give back every unfired row this worker holds (not those
        backing off after a failure: their wait stays). How many."""
        with write(self.app.db) as conn:
            result = conn.execute(
                sa.update(DEADLINE)
                .where(
                    DEADLINE.c.claimed_by == self.worker,
                    DEADLINE.c.fired_at.is_(None),
                    DEADLINE.c.last_error.is_(None),
                    DEADLINE.c.lease_until.is_not(None),
                )
                .values(claimed_by=None, lease_until=None)
            )
        return int(result.rowcount)

    def _failed(self, unit: list[Mapping[str, Any]], now: datetime, late: bool, error: str) -> list[Fired]:
        attempts = max(r["attempts"] for r in unit)
        backoff = timedelta(seconds=min(3600, 30 * 2 ** min(attempts, 7)))
        with write(self.app.db) as conn:
            for ids in _slices([r["id"] for r in unit]):
                conn.execute(
                    sa.update(DEADLINE)
                    .where(DEADLINE.c.id.in_(ids), DEADLINE.c.claimed_by == self.worker)
                    .values(last_error=error[:2000], lease_until=now + backoff)
                )
        log.warning("deadline %s failed (attempt %s): %s", _keys(unit), attempts + 1, error)
        return [_fired(r, now, late, "failed", error) for r in unit]

    def _reason(self, row: Mapping[str, Any], now: datetime, late: bool, rows: int = 1) -> str:
        """What the audit rows of a firing say: the deadline's key, or for rows fired together (one
        bulk move, one reason) what they share, its action and milestone, each application's own."""
        contest, _ = self.app.loaded.config.track(row["track_key"])
        due = row["due_at"].astimezone(ZoneInfo(contest.timezone))
        name = row["key"] if rows == 1 else f"{row['action']} ({row['milestone']}, the application's own)"
        text = f"deadline {name} due {due:%Y-%m-%d %H:%M %Z}"
        if late:
            text += f" (catch-up: fired {_duration(now - row['due_at'])} late)"
        return text


def units(rows: list[Mapping[str, Any]], grouped: Mapping[str, object]) -> list[list[Mapping[str, Any]]]:
    """The claimed rows (in calendar order) as the units they fire in: each row alone, but a run of
    a track's rows of a grouped action due at the same instant, with no other row of that track
    between them, is one unit. A unit stands where its first row stood: each track keeps its order
    (other tracks' rows between them do not matter, calendar order is per track)."""
    out: list[list[Mapping[str, Any]]] = []
    open_run: dict[int, list[Mapping[str, Any]]] = {}  # track -> its last unit, if a run that may grow
    for row in rows:
        run = open_run.get(row["track_id"])
        if run is not None and (run[0]["action"], run[0]["due_at"]) == (row["action"], row["due_at"]):
            run.append(row)
            continue
        unit = [row]
        out.append(unit)
        if row["action"] in grouped:
            open_run[row["track_id"]] = unit
        else:
            open_run.pop(row["track_id"], None)
    return out


# Rows a grouped unit may claim at most (one bulk move, chunked by the Mover); a longer run of the
# same instant fires as several units, one after the other.
GROUP_MAX = 10_000
SLICE = 2_000  # ids per IN (...) when marking, failing or giving back a unit's rows


def _slices(ids: list[int]) -> list[list[int]]:
    return [ids[i : i + SLICE] for i in range(0, len(ids), SLICE)]


def _keys(unit: list[Mapping[str, Any]]) -> str:
    """A unit's rows for the log: the key, or the first key and how many more."""
    return unit[0]["key"] if len(unit) == 1 else f"{unit[0]['key']} and {len(unit) - 1} more of the same instant"


def _fired(row: Mapping[str, Any], now: datetime, late: bool, summary: str, error: str | None = None) -> Fired:
    return Fired(row["key"], row["action"], row["milestone"], row["due_at"], now, late, summary, error)


def _earlier_unfired(name: str, condition: Callable[[Any], Any]) -> Any:
    """EXISTS an unfired row of the same track before this one in calendar order (due_at, then id)
    that meets `condition` (given the alias): a row waits while one exists."""
    earlier = DEADLINE.alias(name)
    return (
        sa.exists()
        .where(
            earlier.c.track_id == DEADLINE.c.track_id,
            earlier.c.fired_at.is_(None),
            condition(earlier),
            sa.or_(
                earlier.c.due_at < DEADLINE.c.due_at,
                sa.and_(earlier.c.due_at == DEADLINE.c.due_at, earlier.c.id < DEADLINE.c.id),
            ),
        )
        .correlate(DEADLINE)
    )


class _Renewal:
    """A thread renewing a claimed batch's lease every third of it until the batch is done."""

    def __init__(self, ticker: Ticker, ids: list[int]) -> None:
        self.ticker = ticker
        self.ids = set(ids)
        self.every = ticker.renew_every
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"lease-{ticker.worker}", daemon=True)

    def __enter__(self) -> _Renewal:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def done(self, ids: list[int]) -> None:
        with self._lock:
            self.ids.difference_update(ids)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            with self._lock:
                ids = sorted(self.ids)
            if not ids:
                return
            try:
                held = self.ticker._renew(ids)
            except Exception:  # the database is away: the next round tries again, the lease may lapse
                log.exception("deadline lease renewal failed")
                continue
            if held < len(ids):
                log.warning(
                    "deadline lease: %s of %s rows were taken over by another daemon", len(ids) - held, len(ids)
                )


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes or not (days or hours) else "",
    ]
    return " ".join(p for p in parts if p)
