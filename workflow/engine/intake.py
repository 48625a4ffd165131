"""Applications coming in: the announcement creates one per invited applicant,
an applicant may start one, and a plan received is submitted with its amounts
and gets a receipt number. Each checks its window under the track's lock, on
a 'now' a lagging clock cannot turn back (DESIGN 3.8)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping
from sqlalchemy.engine import Engine as DbEngine

from gongmo.states.errors import Conflict, InvalidInput, OutsideWindow
from gongmo.states.rules import check_receipt_window, check_role
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import Clock, SystemClock
from gongmo.workflow.core.config import Loaded
from gongmo.workflow.core.csvfile import shown
from gongmo.workflow.core.db import write
from gongmo.workflow.core.lookups import applicant_by_code, application_of, extension_until, track_by_key
from gongmo.workflow.core.models import APPLICANT, APPLICATION, AUDIT, DEADLINE, TRACK
from gongmo.workflow.engine.hooks import NoticeQueue
from gongmo.workflow.engine.steps import Interrupted, Moved, Steps
from gongmo.workflow.engine.uploads import (
    answers_json,
    merged_answers,
    missing_documents,
    missing_kinds,
    receipt_documents,
    stored_answers,
)

Row = RowMapping
# An announcement creates and renders its calls in chunks this small: a daemon killed while announcing
# loses one chunk, not the call (killed every few seconds, a chunk of 2,000 never committed).
ANNOUNCE_CHUNK = 500
CREATE = "invite"  # audit trigger of an application created at the announcement
START = "start"  # audit trigger of an application an applicant started itself
MAX_KRW = 2**63 - 1  # the amounts are BIGINT columns
MAX_YEARS = 10  # as a program's years in the config, and the HTTP API
# What the receipt's audit row records of each current document.
RECEIPT_KEYS = ("kind", "file_name", "size", "sha256", "version")


class Host(Protocol):
    """What the intake reads of the Mover it serves (read each time: a test may swap the clock)."""

    db: DbEngine
    loaded: Loaded
    clock: Clock
    steps: Steps
    queue: NoticeQueue


class Intake:
    def __init__(self, host: Host) -> None:
        self.host = host

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
        """Record a plan received: start the application if needed, then submit.

        Eligibility is not checked here (that is the preliminary review's
        job); only the window, the role and the form of the values, that every
        required document kind has a current file, and the answers (`answers`
        merged over those stored, every required question answered). The audit
        row carries the current documents' hashes, and the receipt confirmation
        lists them.
        """
        host = self.host
        spec = host.steps.spec("submit")
        check_role(spec, actor.role)
        _, track_cfg = host.loaded.config.track(track_key)
        _check_amounts(national_krw, local_krw)
        if years is not None and not 1 <= years <= MAX_YEARS:
            raise InvalidInput(
                f"{{given}}: a plan runs for 1 to {MAX_YEARS} years", field="years", value=years, shown=shown(years)
            )
        if project_type is not None and project_type not in track_cfg.eligibility.types:
            allowed = ", ".join(track_cfg.eligibility.types) or "none (this track has no types)"
            raise InvalidInput(
                f"{{given}} is not a type of track {track_key} (allowed: {allowed})",
                field="project_type",
                value=project_type,
                shown=repr(project_type),
            )
        with write(host.db) as conn:
            track = track_by_key(conn, host.loaded.config, track_key, lock=True)
            applicant = applicant_by_code(conn, applicant_code)
            row = application_of(conn, track["id"], applicant["id"])
            now = self.receipt_open(conn, track, row["id"] if row else None)
            if row is None:
                self.create(conn, track, [applicant["id"]], START, actor, now, notice=None)
                row = application_of(conn, track["id"], applicant["id"])
                assert row is not None
            dest = host.steps.check(row, "submit")
            documents = receipt_documents(conn, track_cfg, row["id"])  # read once: checked, audited, mailed
            missing = missing_kinds(track_cfg, documents)
            if missing:
                raise missing_documents(missing, track_cfg)
            stored = merged_answers(track_cfg.questions, stored_answers(row), answers or {}, complete=True)
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
                "answers": answers_json(stored),
            }
            detail = {"documents": [{k: d[k] for k in RECEIPT_KEYS} for d in documents]}
            moved = host.steps.write(conn, row, spec, dest, actor, None, now, fields, detail)
            host.queue(conn, spec.notice, [moved.application_id], track, now, {"documents": documents})
        return replace(moved, receipt_no=receipt_no)

    def receipt_open(self, conn: Connection, track: Row, application_id: int | None) -> datetime:
        """'Now', once the receipt is checked open for this application (its extension counts):
        the window's rule for a plan, its documents and its answers. Call it under the track's
        lock (track_by_key(..., lock=True)): the clock is read under it, so a receipt close that
        committed meanwhile is seen and nothing slips in behind it."""
        host = self.host
        now = window_now(conn, host.clock, host.loaded.config.gongmo.max_clock_skew_s)
        extended = extension_until(conn, application_id, "receipt_closes") if application_id else None
        check_receipt_window(now, track["receipt_opens"], track["receipt_closes"], self._zone(track), extended)
        if receipt_closed_for_good(conn, track["id"], application_id):  # a clock that lags
            raise closed_for_good(track, self._zone(track), extended)
        return now

    def start(self, track_key: str, applicant_code: str, actor: Actor) -> int:
        """An applicant starts an application while the call is open."""
        host = self.host
        with write(host.db) as conn:
            track = track_by_key(conn, host.loaded.config, track_key, lock=True)
            now = window_now(conn, host.clock, host.loaded.config.gongmo.max_clock_skew_s)  # under the lock
            if not (track["announce_at"] <= now < track["receipt_closes"]):
                raise OutsideWindow(
                    f"track {track_key} takes new applications from its announcement to the"
                    f" receipt close ({self._window(track, 'announce_at', 'receipt_closes')})"
                )
            if receipt_closed_for_good(conn, track["id"], None):  # a clock that lags
                raise closed_for_good(track, self._zone(track), None)
            applicant = applicant_by_code(conn, applicant_code)
            if application_of(conn, track["id"], applicant["id"]) is not None:
                raise Conflict(f"{applicant_code} already has an application in track {track_key}")
            return self.create(conn, track, [applicant["id"]], START, actor, now, notice=None)[0]

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
        ANNOUNCE_CHUNK applications per transaction, so a rerun continues. `late` (the
        office said so) sends it after the receipt's close time, but never after
        the close fired. `should_stop` is asked before each chunk (Interrupted)."""
        host = self.host
        now = host.clock.now()
        _, track_cfg = host.loaded.config.track(track_key)
        kinds = [k.value for k in track_cfg.eligibility.kinds]
        created = 0
        while True:
            if should_stop is not None and should_stop():
                raise Interrupted(f"announcement of track {track_key} stopped after {created}; a rerun continues")
            with write(host.db) as conn:
                track = track_by_key(conn, host.loaded.config, track_key, lock=True)
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
                pending = _uninvited(conn, track["id"], kinds, applicant_ids)
                if not pending:
                    if track["announced_at"] is None:
                        conn.execute(sa.update(TRACK).where(TRACK.c.id == track["id"]).values(announced_at=now))
                    return created
                self.create(conn, track, pending, CREATE, actor, now, notice="call_announcement")
                created += len(pending)

    def create(
        self,
        conn: Connection,
        track: Row,
        applicant_ids: list[int],
        how: str,
        actor: Actor,
        now: datetime,
        notice: str | None,
    ) -> list[int]:
        """New applications in the table's initial state, with their audit lines (each the first
        of its application's chain: the head is set once the ids are known) and `notice`."""
        initial = self.host.steps.table.initial
        rows = [
            {
                "track_id": track["id"],
                "applicant_id": a,
                "state": initial,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            for a in applicant_ids
        ]
        result = conn.execute(sa.insert(APPLICATION).returning(APPLICATION.c.id, sort_by_parameter_order=True), rows)
        ids = [int(r[0]) for r in result]
        audits = [
            {
                "application_id": i,
                "at": now,
                "actor": actor.name,
                "role": actor.role.value,
                "trigger": how,
                "from_state": None,
                "to_state": initial,
                "reason": None,
                "detail": None,
            }
            for i in ids
        ]
        chainer = self.host.steps.chain
        chainer.audit_rows([(i, None, None) for i in ids], audits)
        conn.execute(sa.insert(AUDIT), audits)
        if chainer.on:
            conn.execute(
                sa.update(APPLICATION)
                .where(APPLICATION.c.id == sa.bindparam("h_id"))
                .values(audit_seq=sa.bindparam("h_seq"), audit_hash=sa.bindparam("h_hash")),
                [{"h_id": a["application_id"], "h_seq": a["seq"], "h_hash": a["hash"]} for a in audits],
            )
        self.host.queue(conn, notice, ids, track, now)
        return ids

    def _zone(self, track: Row) -> str:
        contest, _ = self.host.loaded.config.track(track["key"])
        return contest.timezone

    def _local(self, track: Row, milestone: str) -> str:
        value: datetime = track[milestone]
        return f"{value.astimezone(ZoneInfo(self._zone(track))):%Y-%m-%d %H:%M %Z}"

    def _window(self, track: Row, start: str, end: str) -> str:
        return f"{self._local(track, start)} to {self._local(track, end)}"


def _uninvited(conn: Connection, track_id: int, kinds: list[str], only: Iterable[int] | None) -> list[int]:
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


def _check_amounts(national_krw: int, local_krw: int) -> None:
    if not 0 < national_krw <= MAX_KRW:
        raise InvalidInput(
            f"{{given}}: the national share must be a positive amount in won, at most {MAX_KRW}",
            field="national_krw",
            value=national_krw,
            shown=shown(national_krw),
        )
    if not 0 <= local_krw <= MAX_KRW:
        raise InvalidInput(
            f"{{given}}: the local share must be zero or more, in won, at most {MAX_KRW}",
            field="local_krw",
            value=local_krw,
            shown=shown(local_krw),
        )


# -- windows a clock cannot reopen (DESIGN 3.8) ---------------------------------------------

_skew_warned_at = 0.0  # time.monotonic() of the last clock-skew warning (one a minute at most)


def window_now(conn: Connection, clock: Clock, max_skew_s: float) -> datetime:
    """'Now' for a window check. With the real wall clock on PostgreSQL the
    database's clock is the floor (a replica whose clock lags cannot reopen a
    window), and a skew past `max_skew_s` is logged. A FixedClock (tests,
    rehearsals) and SQLite (one machine, one clock) read the clock as it is."""
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
