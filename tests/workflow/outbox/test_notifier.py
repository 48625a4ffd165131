"""Outbox rows of a move: the call's calendar is built once per language, not per applicant."""

from __future__ import annotations

import asyncio
import itertools
import mailbox
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gongmo.notifications.compose import Envelope
from gongmo.notifications.notices import SAMPLE, SUPERSEDES, superseded_by, supersedes
from gongmo.notifications.transport import MaildirTransport, Outcome
from gongmo.states.lifecycle import Role
from gongmo.workflow.core import lookups
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import OUTBOX
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox import notifier as notify
from gongmo.workflow.outbox.dispatch import Mailer
from tests.conftest import kst

TRACK = "strong-small-2024"
APPLICANT = Actor("36110", Role.APPLICANT)


def test_a_call_to_applicants_of_both_languages_builds_each_calendar_once(
    app: App, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    real = notify.track_calendar

    def counted(**kwargs: Any) -> bytes:
        built.append(kwargs["contest_name"])
        return real(**kwargs)

    monkeypatch.setattr(notify, "track_calendar", counted)
    clock.set(kst("2024-03-29 10:00"))
    sent = app.moves.announce(TRACK, Actor("park", Role.ADMIN))
    with read(app.db) as conn:
        rows = conn.execute(sa.select(OUTBOX.c.language, OUTBOX.c.ics)).all()
    languages = [language for language, _ in rows]
    assert sent == len(rows) > 2 and set(languages) == {"ko", "en"}
    switches = sum(a != b for a, b in itertools.pairwise(languages))
    assert switches >= 2  # ko, en, ko...: a cache of one entry would build 1 + switches calendars
    assert len(built) == 2
    assert {language: len({ics for lang, ics in rows if lang == language}) for language in ("ko", "en")} == {
        "ko": 1,
        "en": 1,
    }


# -- which notice supersedes which (notifications/notices.py SUPERSEDES) -------------------------

PAIRS = sorted((new, old) for new, olds in SUPERSEDES.items() for old in olds)
EXTRA = {  # the values a notice's own move would give it
    "presentation_invitation": {"slot_starts": kst("2024-06-20 10:00"), "slot_ends": kst("2024-06-20 10:30")}
    | {"place": "LH 본사 회의실"},
    "deadline_reminder": {"milestone_name": "접수 마감", "due_at": kst("2024-05-29 18:00")},
    "calendar_change": {"milestone_name": "접수 마감", "old_at": kst("2024-05-29 18:00")}
    | {"new_at": kst("2024-05-31 18:00")},
    "receipt_confirmation": {"documents": SAMPLE["documents"]},  # the submission lists the current documents
}


def _queue(app: App, notice: str, application_id: int, tag: str) -> None:
    with write(app.db) as conn:
        track = lookups.track_by_key(conn, app.loaded.config, TRACK)
        app.moves.queue(conn, notice, [application_id], track, app.clock.now(), EXTRA.get(notice, {}), tag=tag)


def _outbox(app: App, application_id: int) -> dict[str, dict[str, Any]]:
    with read(app.db) as conn:
        rows = conn.execute(sa.select(OUTBOX).where(OUTBOX.c.application_id == application_id)).mappings()
        return {r["dedup_key"].rsplit(":", 1)[1]: dict(r) for r in rows}


STATES = ("pending", "held", "retry", "sending", "sent")


@pytest.mark.parametrize(("new", "old"), PAIRS, ids=[f"{n}>{o}" for n, o in PAIRS])
def test_each_pair_of_the_table_supersedes_an_unsent_older_notice(
    app: App, clock: FixedClock, new: str, old: str
) -> None:
    """The older notice, in each outbox state (one application each, so the five do not meet), then
    the newer one: unsent rows are cancelled, a row being sent is marked for the mailer, a sent row
    is history. (One database per pair, not per pair and state: 390 databases had been a tenth of
    the suite's time.)"""
    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, Actor("park", Role.ADMIN))
    for application_id, state in enumerate(STATES, start=1):
        assert _outbox(app, application_id), application_id  # invited by the call
        _queue(app, old, application_id, "older")
        with write(app.db) as conn:
            conn.execute(
                sa.update(OUTBOX)
                .where(OUTBOX.c.application_id == application_id, OUTBOX.c.dedup_key.like("%:older"))
                .values(state=state)
            )
        _queue(app, new, application_id, "newer")
    for application_id, state in enumerate(STATES, start=1):
        rows = _outbox(app, application_id)
        older, why = rows["older"], f"{old} {state}, then {new}"
        if state in ("pending", "held", "retry"):
            assert (older["state"], older["superseded_by"]) == ("cancelled", new), why
            assert older["last_error"] == f"superseded by '{new}' before it was sent", why
        elif state == "sending":
            assert (older["state"], older["superseded_by"]) == ("sending", new), why  # the mailer settles it
        else:
            assert (older["state"], older["superseded_by"]) == ("sent", None), why
        assert rows["newer"]["state"] in ("pending", "held"), why


def test_a_notice_outside_the_table_cancels_nothing(app: App, clock: FixedClock) -> None:
    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, Actor("park", Role.ADMIN))
    for notice in ("receipt_confirmation", "selected", "deadline_reminder"):
        _queue(app, notice, 1, f"keep-{notice}")
    _queue(app, "objection_received", 1, "other")  # supersedes nothing
    assert supersedes("objection_received") == frozenset()
    assert {k: r["state"] for k, r in _outbox(app, 1).items() if k.startswith("keep")} == {
        "keep-receipt_confirmation": "pending",
        "keep-selected": "held",
        "keep-deadline_reminder": "pending",
    }
    assert superseded_by("selected") >= {"withdrawal_confirmed", "waitlisted", "promoted"}


# -- the mailer settles a row superseded after its claim (issue 17, finding 5) -------------------


class _WithdrawOnTheWire:
    """A Maildir transport that lets the applicant withdraw while one message is on the wire."""

    concurrency = 1

    def __init__(self, inner: MaildirTransport, app: App, recipient: str, application_id: int) -> None:
        self.inner, self.app, self.recipient, self.application_id = inner, app, recipient, application_id
        self.delivered: list[str] = []

    async def send(self, envelope: Envelope) -> Outcome:
        if self.recipient in envelope.recipients:
            await asyncio.to_thread(self.app.moves.apply, self.application_id, "withdraw", APPLICANT)
        outcome = await self.inner.send(envelope)
        self.delivered.append(envelope.message_id)
        return outcome

    async def close(self) -> None:
        await self.inner.close()


def _reminded(app: App, clock: FixedClock) -> int:
    """Announced, then the D-3 reminder queued to every applicant; returns one application's id."""
    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, Actor("park", Role.ADMIN))
    app.moves.notify_state(TRACK, ("announcement",), "deadline_reminder", "d-3", EXTRA["deadline_reminder"])
    with write(app.db) as conn:  # the calls went out already: the batch is the reminders
        conn.execute(sa.update(OUTBOX).where(OUTBOX.c.notice == "call_announcement").values(state="sent"))
    return 1


def test_a_reminder_superseded_after_its_claim_is_not_sent(app: App, clock: FixedClock, tmp_path: Path) -> None:
    application_id = _reminded(app, clock)
    box = MaildirTransport(tmp_path / "maildir")
    sender = Mailer(app, box, "test", batch=500)
    prepared = sender.prepare(clock.now())  # claimed: every reminder is 'sending'
    reminder = _outbox(app, application_id)["d-3"]
    assert reminder["state"] == "sending"
    app.moves.apply(application_id, "withdraw", APPLICANT)  # before the batch reaches the wire
    result = asyncio.run(sender.send_batch(prepared))
    row = _outbox(app, application_id)["d-3"]
    assert (row["state"], row["superseded_by"]) == ("cancelled", "withdrawal_confirmed")
    assert row["last_error"] == "superseded by 'withdrawal_confirmed' before sending"
    assert reminder["message_id"] not in _maildir_ids(tmp_path / "maildir")
    assert result.sent == len(prepared) - 1 and result.dead == 0


def test_a_reminder_superseded_on_the_wire_is_recorded_as_such(app: App, clock: FixedClock, tmp_path: Path) -> None:
    application_id = _reminded(app, clock)
    reminder = _outbox(app, application_id)["d-3"]
    wire = _WithdrawOnTheWire(MaildirTransport(tmp_path / "maildir"), app, reminder["to_addr"], application_id)
    sender = Mailer(app, wire, "test", batch=500)
    asyncio.run(sender.send_batch(sender.prepare(clock.now())))
    row = _outbox(app, application_id)["d-3"]
    assert reminder["message_id"] in wire.delivered  # it had gone: the record says so, not "cancelled"
    assert (row["state"], row["superseded_by"]) == ("sent", "withdrawal_confirmed")
    assert row["last_error"] == "superseded by 'withdrawal_confirmed' while on the wire"


def test_a_dead_sender_s_superseded_row_is_not_taken_again(app: App, clock: FixedClock, tmp_path: Path) -> None:
    application_id = _reminded(app, clock)
    Mailer(app, MaildirTransport(tmp_path / "a"), "dies", batch=500).prepare(clock.now())  # claims, then dies
    app.moves.apply(application_id, "withdraw", APPLICANT)
    clock.advance(timedelta(seconds=app.loaded.config.mail.lease_seconds + 1))
    taken = Mailer(app, MaildirTransport(tmp_path / "b"), "takes-over", batch=500).claim(clock.now())
    assert application_id not in {r["application_id"] for r in taken if r["notice"] == "deadline_reminder"}
    row = _outbox(app, application_id)["d-3"]
    assert (row["state"], row["superseded_by"]) == ("cancelled", "withdrawal_confirmed")


def _maildir_ids(path: Path) -> set[str]:
    box = mailbox.Maildir(path, create=False) if path.exists() else None
    return {str(m["Message-ID"]) for m in box} if box is not None else set()


# -- the receipt confirmation lists the documents (issue 21) ---------------------------------------


def test_a_receipt_confirmation_without_its_documents_is_refused_not_sent_empty(app: App, clock: FixedClock) -> None:
    """The receipt is the applicant's proof of which bytes were received: a move that queues one
    without the document list is a bug, and rendering says so rather than mailing '0 documents'."""
    clock.set(kst("2024-03-29 10:00"))
    app.moves.announce(TRACK, Actor("park", Role.ADMIN))
    with pytest.raises(KeyError, match="needs documents"), write(app.db) as conn:
        track = lookups.track_by_key(conn, app.loaded.config, TRACK)
        app.moves.queue(conn, "receipt_confirmation", [1], track, app.clock.now(), {}, tag="no-documents")
    _queue(app, "receipt_confirmation", 1, "with-documents")
    row = _outbox(app, 1)["with-documents"]
    for d in SAMPLE["documents"]:  # type: ignore[attr-defined]
        assert d["file_name"] in row["body_text"] and d["sha256"] in row["body_text"]
        assert d["size_bytes"] in row["body_text"] and d["size_human"] in row["body_text"]
        assert d["sha256"] in row["body_html"]
