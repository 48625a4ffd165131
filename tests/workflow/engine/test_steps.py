"""A single move's hot path (steps.py locked/write_move, queue.py queue_one): its statements, on SQLite and
PostgreSQL, and the rows it writes the same as SQLAlchemy would."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection

from gongmo.workflow.core.db import write
from gongmo.workflow.core.lookups import locked_application, track_row
from gongmo.workflow.core.models import AUDIT
from gongmo.workflow.deadlines.changes import reschedule
from gongmo.workflow.engine import steps
from gongmo.workflow.engine.app import App
from gongmo.workflow.outbox.queue import queue_one
from tests.conftest import kst
from tests.workflow.engine.test_moves import (
    ADMIN,
    TRACK_KEY,
    counts,
    outbox_rows,
    reviewed,
    selected,
    verify_clean,
)

KST = ZoneInfo("Asia/Seoul")


@contextmanager
def statements(conn: Connection) -> Iterator[list[str]]:
    """Every statement `conn` runs in the block: sqlite3's trace (it sees the driver's own cursor too), or
    SQLAlchemy's cursor events on PostgreSQL (where the hot path goes through exec_driver_sql)."""
    seen: list[str] = []
    if conn.dialect.name == "sqlite":
        raw: Any = conn.connection.driver_connection
        raw.set_trace_callback(seen.append)
        try:
            yield seen
        finally:
            raw.set_trace_callback(None)
        return

    def record(_c: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(conn, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(conn, "before_cursor_execute", record)


def moved_in(app: App, application_id: int, trigger: str, reason: str | None = None) -> list[str]:
    """The statements of one move (Mover.move in a transaction of the test's own)."""
    with write(app.db) as conn, statements(conn) as seen:
        app.moves.move(conn, application_id, trigger, ADMIN, reason)
    return seen


def test_a_notice_without_a_family_supersedes_nothing_and_issues_no_update_of_the_outbox(app: App) -> None:
    """kickoff_confirmed replaces no older notice: no superseding UPDATE at all; selected does (a result)."""
    app_id = selected(app)
    seen = moved_in(app, app_id, "approve_kickoff")
    assert not [s for s in seen if "UPDATE outbox" in s], seen
    assert [s for s in seen if "INSERT INTO outbox" in s]
    assert outbox_rows(app, app_id)[-1]["notice"] == "kickoff_confirmed"
    other = reviewed(app, "41190")
    seen = moved_in(app, other, "pass_review")  # review_passed supersedes an unsent review_passed/disqualified
    assert [s for s in seen if "UPDATE outbox" in s], seen
    verify_clean(app)


def test_a_single_move_reads_once_and_writes_in_two_statements_on_postgres_four_on_sqlite(app: App) -> None:
    """One read on both: the application, its applicant and its track joined."""
    app_id = reviewed(app)
    seen = moved_in(app, app_id, "pass_review")
    if app.db.dialect.name == "postgresql":
        # the lock, the track and the applicant joined; state + audit in one statement; superseding + notice in one
        assert len(seen) == 3, seen
        assert "FOR UPDATE OF a" in seen[0] and "JOIN track" in seen[0] and "JOIN applicant" in seen[0]
        assert seen[1].startswith("WITH moved AS (UPDATE application") and "INSERT INTO audit" in seen[1]
        assert seen[2].startswith("WITH superseded AS (UPDATE outbox") and "INSERT INTO outbox" in seen[2]
    else:  # the application with its applicant and track, then the four writes
        starts = ["SELECT", "UPDATE application", "INSERT INTO audit", "UPDATE outbox", "INSERT INTO outbox"]
        assert [next(x for x in starts if s.startswith(x)) for s in seen] == starts, seen
        assert "JOIN applicant" in seen[0] and "JOIN track" in seen[0]
    assert not [s for s in seen if "SET LOCAL" in s or "plan_cache_mode" in s]
    assert outbox_rows(app, app_id)[-1]["notice"] == "review_passed"
    verify_clean(app)


def test_the_locked_rows_are_what_sqlalchemy_reads(app: App) -> None:
    """locked() reads the driver's rows and converts them itself: the same values as the lookups', times
    aware UTC, booleans as booleans, the party's fields from the applicant."""
    app_id = reviewed(app)
    with write(app.db) as conn:
        got = steps.locked(conn, app_id)
        assert dict(got.row) == dict(locked_application(conn, app_id))
        assert dict(got.track) == dict(track_row(conn, got.row["track_id"]))
        assert got.row["updated_at"].tzinfo is not None and got.row["eligible"] is True
        assert set(got.applicant) == {"applicant_name", "contact_name", "email", "language"}
        party = got.party(got.row["version"] + 1, {"receipt_no": "R-1"})
        expected = (app_id, got.row["version"] + 1, "R-1")
        assert (party["application_id"], party["version"], party["receipt_no"]) == expected


def test_a_track_changed_between_two_moves_is_read_as_it_is_now(app: App) -> None:
    """The track's row is converted once per distinct row read (steps._track_row): a move after a
    reschedule reads the new time (its notice states it), and a taker that changes its copy of the
    track changes nothing for the next move."""
    first, second = reviewed(app), reviewed(app, "41190")
    app.moves.apply(first, "pass_review", ADMIN)
    with write(app.db) as conn:
        steps.locked(conn, second).track["written_starts"] = None  # a copy: the next read is whole
        before = steps.locked(conn, second).track["written_starts"]
    assert before is not None
    later = before + timedelta(days=2)
    reschedule(app, TRACK_KEY, "written_starts", later, "committee room moved", "park")
    app.moves.apply(second, "pass_review", ADMIN)
    with write(app.db) as conn:
        assert steps.locked(conn, second).track["written_starts"] == later
    rows = outbox_rows(app, first) + outbox_rows(app, second)
    texts = {r["application_id"]: r["body_text"] for r in rows if r["notice"] == "review_passed"}
    assert later.astimezone(KST).strftime("%Y-%m-%d") in texts[second]
    assert later.astimezone(KST).strftime("%Y-%m-%d") not in texts[first]


def test_a_stale_version_writes_neither_the_row_nor_its_audit_line(app: App) -> None:
    app_id = reviewed(app)
    before = counts(app)
    with write(app.db) as conn:
        row = steps.locked(conn, app_id).row
        audit = {"application_id": app_id, "at": kst("2024-06-03 10:00"), "actor": "park", "role": "admin"}
        audit |= {"trigger": "pass_review", "from_state": row["state"], "to_state": "written_evaluation"}
        audit |= {"reason": None, "detail": None}
        values = {"state": "written_evaluation", "version": row["version"] + 1, "updated_at": audit["at"]}
        assert steps.write_move(conn, app_id, row["version"] - 1, values, audit) == 0
    assert counts(app) == before


def test_times_are_stored_as_sqlalchemy_stores_them(app: App) -> None:
    """A move at a whole second: SQLite keeps '.000000' (what the chain's canonical time reads back), as
    SQLAlchemy's own bind does; the audit verify is clean on both databases."""
    app_id = reviewed(app)
    app.clock.set(kst("2024-06-03 10:00"))  # type: ignore[attr-defined]
    app.moves.apply(app_id, "pass_review", ADMIN)
    with write(app.db) as conn:
        if conn.dialect.name == "sqlite":
            at = conn.exec_driver_sql("SELECT at FROM audit ORDER BY id DESC LIMIT 1").scalar_one()
            created = conn.exec_driver_sql("SELECT created_at FROM outbox ORDER BY id DESC LIMIT 1").scalar_one()
            assert at == created == "2024-06-03 01:00:00.000000"
        last = conn.execute(sa.select(AUDIT).order_by(AUDIT.c.id.desc()).limit(1)).mappings().one()
        assert last["at"] == kst("2024-06-03 10:00")
    verify_clean(app)


def test_a_driver_error_comes_wrapped_as_sqlalchemy_wraps_it(app: App) -> None:
    """The same notice key twice: IntegrityError, as from conn.execute, and the transaction rolls back."""
    app_id = reviewed(app)
    row = dict(outbox_rows(app, app_id)[-1])
    fresh = {k: row[k] for k in row if k != "id"}
    with pytest.raises(sa.exc.IntegrityError), write(app.db) as conn:
        queue_one(conn, fresh, str(row["notice"]), frozenset())
    assert len(outbox_rows(app, app_id)) == 1


def test_a_single_move_prepares_no_statement_and_gives_the_threshold_back(app: App) -> None:
    """On PostgreSQL each statement of Mover.apply is planned with its values (custom_plans' aim)
    without a SET LOCAL round trip: psycopg prepares nothing while the move runs."""
    if app.db.dialect.name != "postgresql":
        pytest.skip("psycopg's prepared statements")
    ids = [reviewed(app, code) for code in ("41590", "41190", "44150", "46170", "47730", "41270", "48250")]

    def prepared() -> set[str]:
        with write(app.db) as conn:
            raw: Any = conn.connection.driver_connection
            assert raw.prepare_threshold == 5  # psycopg's default, given back
            return {str(r[0]) for r in conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements")}

    before = prepared()
    for app_id in ids:  # more than psycopg's threshold of 5 runs of each statement
        app.moves.apply(app_id, "pass_review", ADMIN)
    new = prepared() - before
    assert not [s for s in new if "application" in s or "outbox" in s], new
