"""What each deadline row does when the ticker fires it; each action is idempotent.

The rows come from the lifecycle table (states/lifecycle.APPLICATION_DEADLINES):
a row that reports or sends notices has its method here; every other one fires
the automatic triggers the table puts at it (`transitions`). Reminders and one
applicant's extension are rows of their own; the extensions' closes due at one
instant are fired together (`groups`: the ticker hands them over as a run of
rows). An action returns the summary recorded for the office, raises Skipped
(nothing to send: fired, with the reason) or Held (an announcement kept back for
the office).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from gongmo.states.errors import GongmoError, OutsideWindow
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.workflow.core.actors import SYSTEM
from gongmo.workflow.core.config import CALENDAR_ORDER
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.lookups import extension_until, track_by_key
from gongmo.workflow.core.models import APPLICATION, CALENDAR_CHANGE, DEADLINE, TRACK
from gongmo.workflow.engine.app import App
from gongmo.workflow.engine.moves import CHUNK

# States of the applications an extension of receipt_closes concerns: a bulk
# move from them leaves out those whose own close has not come (extension_closes).
EXTENDED_STATES = ("announcement", "receipt")

HELD = "held: "  # last_error of an announcement kept back for the office to decide


class Held(GongmoError):
    """An announcement caught up after the receipt's close time: not sent, not
    recorded as fired; it waits for the office (and holds its track back)."""


SKIPPED = "skipped, not sent: "  # last_error of a fired row whose action had nothing left to do


class Skipped(Exception):  # a verdict, not a failure: not a GongmoError, never retried
    """A reminder that would tell of a deadline already past (caught up after
    downtime), or that a later reminder due as well replaces: recorded as fired
    and skipped, with the reason, and not sent."""


Action = Callable[[Mapping[str, Any], str], str]  # (the deadline row, the reason recorded) -> the summary
# (a run of rows of one track, instant and action, the reason recorded) -> the summary
GroupAction = Callable[[Sequence[Mapping[str, Any]], str], str]


class Firing(Protocol):
    """What an action reads from the ticker that fires it, when it runs (the office
    or a test may change them after the ticker was built)."""

    @property
    def app(self) -> App: ...

    @property
    def stopping(self) -> threading.Event: ...

    @property
    def late_announcements(self) -> str: ...

    @property
    def forced(self) -> set[str]: ...


class Actions:
    def __init__(self, ticker: Firing) -> None:
        self.ticker = ticker
        self.app = ticker.app

    def table(self) -> dict[str, Action]:
        """Every deadline action by name: the lifecycle table's, the reminder and an extension's close."""
        reports: dict[str, Action] = {
            "announce": self.announce,
            "open_receipt": self.open_receipt,
            "review_due": self.review_due,
            "selection_due": self.selection_due,
            "kickoff_plan_due": self.kickoff_plan_due,
        }
        return {
            **{d.action: reports.get(d.action, self.transitions) for d in TABLE.deadlines},
            "reminder": self.reminder,
            "extension_closes": self.extension_closes,
        }

    def announce(self, row: Mapping[str, Any], reason: str) -> str:
        """Chunked (a rerun continues). Caught up only after the receipt's close
        time, the call is not silently dropped: it is sent only if the office says
        so ([gongmo] late_announcements = "send", or `gongmo deadlines --fire KEY`);
        otherwise it is held, unfired, and holds its track back."""
        stop = self.ticker.stopping.is_set
        try:
            created = self.app.moves.announce(row["track_key"], SYSTEM, should_stop=stop)
        except OutsideWindow as exc:
            with read(self.app.db) as conn:
                close = conn.execute(
                    sa.select(TRACK.c.receipt_closes).where(TRACK.c.id == row["track_id"])
                ).scalar_one()
            if self.app.clock.now() < close:
                raise
            if self.ticker.late_announcements != "send" and row["key"] not in self.ticker.forced:
                raise Held(
                    f"{HELD}{exc}; the call was never sent. The office decides: send it now"
                    f" (`gongmo deadlines --fire {row['key']}`), move the receipt close (`gongmo reschedule`),"
                    f" or record it unsent (`gongmo deadlines --skip {row['key']} --reason ...`)"
                ) from None
            created = self.app.moves.announce(row["track_key"], SYSTEM, late=True, should_stop=stop)
            return f"{created} applications created, each sent the call (sent late, as the office decided)"
        return f"{created} applications created, each sent the call"

    def _count(self, track_key: str, state: str) -> int:
        with read(self.app.db) as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(APPLICATION)
                    .join(TRACK, TRACK.c.id == APPLICATION.c.track_id)
                    .where(TRACK.c.key == track_key, APPLICATION.c.state == state)
                ).scalar_one()
            )

    def open_receipt(self, row: Mapping[str, Any], reason: str) -> str:
        """Nothing moves: the engine takes plans from this instant. Recorded for the office."""
        return f"receipt open; {self._count(row['track_key'], 'announcement')} applicants yet to submit"

    def review_due(self, row: Mapping[str, Any], reason: str) -> str:
        """The preliminary review should be done: say how many are still waiting (human step)."""
        waiting = self._count(row["track_key"], "preliminary_review")
        return f"{waiting} still in preliminary review" + (
            ": the office must pass or disqualify them" if waiting else ""
        )

    def selection_due(self, row: Mapping[str, Any], reason: str) -> str:
        """The selection is announced now: say how many results are still undecided (human step)."""
        waiting = self._count(row["track_key"], "presentation_evaluation")
        return f"{waiting} without a result" + (": confirm the selection" if waiting else "")

    def transitions(self, row: Mapping[str, Any], reason: str) -> str:
        """Fire the automatic triggers the lifecycle table puts at this deadline (for
        the track's calendar as the database holds it: without review_starts,
        start_review runs at the receipt close), each from each of its sources, in
        the table's order. An application whose own extension of the receipt close
        still runs is left to its extension's row."""
        with read(self.app.db) as conn:
            track = conn.execute(sa.select(TRACK).where(TRACK.c.id == row["track_id"])).mappings().one()
        present = {m for m in CALENDAR_ORDER if track[m] is not None}
        done = []
        for spec in TABLE.deadline_triggers(row["action"], present):
            why = f"{spec.system_reason}; {reason}" if spec.system_reason else reason
            moved = 0
            for source in spec.sources:
                moved += self.app.moves.apply_bulk(
                    row["track_key"],
                    spec.name,
                    source,
                    SYSTEM,
                    why,
                    skip_extended="receipt_closes" if source in EXTENDED_STATES else None,
                    should_stop=self.ticker.stopping.is_set,
                )
            done.append(f"{moved} {spec.done or spec.name}")
        return ", ".join(done) or "nothing to move at this deadline"

    def kickoff_plan_due(self, row: Mapping[str, Any], reason: str) -> str:
        sent = self.app.moves.notify_state(row["track_key"], ("selected",), "kickoff_plan_request", row["key"])
        return f"{sent} selected without an approved plan reminded"

    def reminder(self, row: Mapping[str, Any], reason: str) -> str:
        """'Deadline approaching' to the applicants that have not submitted: a
        track's row to those without an extension of their own, an applicant's
        row (its extension's) to that applicant, citing its own close. Skipped,
        with the reason and nothing sent, when that close has passed (caught up
        after downtime) or a later reminder of the same close is due as well."""
        now = self.app.clock.now()
        app_id = row["application_id"]
        with read(self.app.db) as conn:
            track = conn.execute(sa.select(TRACK).where(TRACK.c.id == row["track_id"])).mappings().one()
            close: datetime = track["receipt_closes"]
            zone = ZoneInfo(self.app.loaded.config.track(track["key"])[0].timezone)
            if app_id is not None:
                own = extension_until(conn, app_id, "receipt_closes")
                if own is None or own <= close:
                    raise Skipped(
                        f"the track's receipt close {_local(zone, close)} is not before application {app_id}'s"
                        " extension any more; the track's reminders apply to it"
                    )
                close = own
            if now >= close:
                raise Skipped(
                    f"the receipt closed at {_local(zone, close)} before this reminder fired"
                    f" ({_local(zone, now)}); a reminder of a past deadline would mislead"
                )
            mine = DEADLINE.c.application_id == app_id if app_id is not None else DEADLINE.c.application_id.is_(None)
            later = conn.execute(
                sa.select(DEADLINE.c.key)
                .where(
                    DEADLINE.c.track_id == row["track_id"],
                    DEADLINE.c.action == "reminder",
                    mine,
                    DEADLINE.c.due_at > row["due_at"],
                    DEADLINE.c.due_at <= now,
                    DEADLINE.c.fired_at.is_(None),
                )
                .order_by(DEADLINE.c.due_at.desc())
                .limit(1)
            ).scalar()
        if later is not None:
            raise Skipped(f"{later} is due too (caught up together); it alone goes, not two reminders at once")
        extra = {"milestone_name": "receipt_closes", "due_at": close}
        if app_id is not None:
            sent = self._remind(track["key"], extra, row["key"], APPLICATION.c.id == app_id)
            return f"{sent} reminder to application {app_id} (its own close {_local(zone, close)})"
        extended = sa.exists().where(
            CALENDAR_CHANGE.c.application_id == APPLICATION.c.id,
            CALENDAR_CHANGE.c.milestone == "receipt_closes",
            CALENDAR_CHANGE.c.new_at > close,
        )
        sent = self._remind(track["key"], extra, row["key"], ~extended)
        return f"{sent} reminders to applicants that have not submitted"

    def _remind(self, track_key: str, extra: Mapping[str, Any], tag: str, where: sa.ColumnElement[bool]) -> int:
        """Queue the reminder to the track's applications still in 'announcement'
        that match `where`, chunk by chunk (the key `tag` suppresses duplicates)."""
        engine = self.app.moves
        queued, after = 0, 0
        while True:
            with write(self.app.db) as conn:
                track = track_by_key(conn, self.app.loaded.config, track_key, lock=True)
                ids = [
                    int(i)
                    for i in conn.execute(
                        sa.select(APPLICATION.c.id)
                        .where(
                            APPLICATION.c.track_id == track["id"],
                            APPLICATION.c.state == "announcement",
                            APPLICATION.c.id > after,
                            where,
                        )
                        .order_by(APPLICATION.c.id)
                        .limit(CHUNK)
                    ).scalars()
                ]
                if not ids:
                    return queued
                queued += engine.queue(conn, "deadline_reminder", ids, track, self.app.clock.now(), extra, tag=tag)
            after = ids[-1]

    def groups(self) -> dict[str, GroupAction]:
        """The actions the ticker fires for a run of rows at once (same track, instant and action):
        per-applicant rows, which would otherwise be a transaction each."""
        return {"extension_closes": self.extensions_close}

    def extension_closes(self, row: Mapping[str, Any], reason: str) -> str:
        """One applicant's own close (`gongmo deadlines --fire`): extensions_close of that row alone."""
        return self.extensions_close([row], reason)

    def extensions_close(self, rows: Sequence[Mapping[str, Any]], reason: str) -> str:
        """Applicants' own closes due at one instant (one row each, of one track): each of them that
        has not submitted expires, and each late plan goes to review (or waits in receipt for the
        track's review to open), as two bulk moves of those applications in chunks, not a
        transaction each. Idempotent: the bulk moves take only applications still in the source
        state (another daemon, or this one before a crash, may have moved some); an application
        whose own extension was moved further meanwhile is left to its row."""
        track_key = rows[0]["track_key"]
        ids = [r["application_id"] for r in rows]
        with read(self.app.db) as conn:
            close, review_starts = conn.execute(
                sa.select(TRACK.c.receipt_closes, TRACK.c.review_starts).where(TRACK.c.key == track_key)
            ).one()
        now = self.app.clock.now()
        who = f"application {ids[0]}" if len(ids) == 1 else f"{len(ids):,} applications"
        if close > now:  # the track's close was moved past the extensions
            return f"{who}: the track's receipt closes later; its close applies"
        moved: dict[str, int] = {}
        # A late plan waits in receipt, as the others did, until the track's review opens (open_review moves it).
        waits = review_starts is not None and now < review_starts
        for trigger in ("expire",) if waits else ("expire", "start_review"):
            moved[trigger] = self.app.moves.apply_bulk(
                track_key,
                trigger,
                "announcement" if trigger == "expire" else "receipt",
                SYSTEM,
                reason,
                skip_extended="receipt_closes",
                only=ids,
                should_stop=self.ticker.stopping.is_set,
            )
        if len(ids) > 1:
            done = ", ".join(f"{n:,} {_DONE[t]}" for t, n in moved.items())
            return f"{who}: extensions ran out, {done}" + ("; late plans wait for the review to open" if waits else "")
        for trigger, count in moved.items():
            if count:
                return f"{who}: extension ran out, {trigger}"
        with read(self.app.db) as conn:
            state = conn.execute(sa.select(APPLICATION.c.state).where(APPLICATION.c.id == ids[0])).scalar_one()
        if state == "receipt":
            return f"{who}: extension ran out; its plan waits for the review to open"
        return f"{who}: already '{state}', nothing to do"


_DONE = {"expire": "expired", "start_review": "to preliminary review"}


def _local(zone: ZoneInfo, at: datetime) -> str:
    return f"{at.astimezone(zone):%Y-%m-%d %H:%M %Z}"
