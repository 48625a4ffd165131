"""`audit verify`'s fast pass (engine/audit.py): the canonical encoding built in SQL
(chain.canonical_sql) is byte for byte chain.canonical() on both databases, the fast pass
concludes "clean" exactly where the walk does, and gives up (so the walk names the problem)
on histories that do not replay even when every hash was recomputed to match."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection

from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.workflow.core import chain
from gongmo.workflow.core.models import APPLICATION, AUDIT
from gongmo.workflow.engine import audit
from gongmo.workflow.engine.app import App
from tests.workflow.core.test_chain import ADMIN, history, rows_of, tampering, verify

# Every character a text column can hold (PostgreSQL's text holds no NUL), quotes, backslashes
# and control characters made likely.
AWKWARD = st.text(
    alphabet=st.one_of(
        st.sampled_from('"\\/\n\r\t\b\f\x00\x01\x1f\x7f\u2028\u2029 é한😀'),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=30,
)
TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
IDS = st.integers(1, 2**31 - 1)


def sql_canonical(conn: Connection, table: str, row: dict[str, Any]) -> bytes:
    """chain.canonical_sql over one row of typed values, as the database computes it."""
    dialect = conn.dialect.name
    picked = []
    for c in chain.COLUMNS[table]:
        if dialect == "postgresql":
            kind = "timestamptz" if c == "at" else "integer" if c in chain.INTEGER_COLUMNS else "text"
            picked.append(f"CAST(:{c} AS {kind}) AS {c}")
        else:
            picked.append(f":{c} AS {c}")
    values = dict(row)
    if dialect == "sqlite":  # as SQLAlchemy stores a time in SQLite: naive UTC text
        values["at"] = row["at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    query = f"SELECT {chain.canonical_sql(table, dialect)} FROM (SELECT {', '.join(picked)}) AS r"
    text = conn.execute(sa.text(query), values).scalar_one()
    return str(text).encode("utf-8")


def _clean(value: str | None, dialect: str) -> str | None:
    return value.replace("\x00", "") if value is not None and dialect == "postgresql" else value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    actor=AWKWARD,
    reason=st.none() | AWKWARD,
    detail=st.none() | AWKWARD,
    from_state=st.none() | AWKWARD,
    trigger=AWKWARD,
    at=TIMES,
    app_id=IDS,
    track_id=st.none() | IDS,
    seq=IDS,
)
def test_the_sql_encoding_is_the_canonical_one_for_awkward_values(
    app: App,
    actor: str,
    reason: str | None,
    detail: str | None,
    from_state: str | None,
    trigger: str,
    at: datetime,
    app_id: int,
    track_id: int | None,
    seq: int,
) -> None:
    with app.db.connect() as conn:
        d = conn.dialect.name
        audit_row = {"application_id": app_id, "at": at, "actor": _clean(actor, d), "role": "admin"}
        audit_row |= {"trigger": _clean(trigger, d), "from_state": _clean(from_state, d), "to_state": "x"}
        audit_row |= {"reason": _clean(reason, d), "detail": _clean(detail, d), "seq": seq}
        assert sql_canonical(conn, "audit", audit_row) == chain.canonical("audit", audit_row)
        event_row = {"at": at, "actor": _clean(actor, d), "role": _clean(trigger, d), "track_id": track_id}
        event_row |= {"application_id": None, "kind": "scored", "detail": _clean(detail or "", d), "seq": seq}
        assert sql_canonical(conn, "event", event_row) == chain.canonical("event", event_row)


def fast(app: App) -> audit.Report | None:
    with audit.snapshot(app.db) as conn:
        return audit._fast_verify(conn, TABLE)


def walked(app: App) -> audit.Report:
    with audit.snapshot(app.db) as conn:
        return audit._walk_verify(conn, TABLE, 1000)


def test_the_fast_pass_concludes_clean_as_the_walk_does_on_every_kind_of_chain(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    history(app)  # audit and event chains of two applications, a track's chain, the global one
    monkeypatch.setattr(audit, "RANGE", 1)  # a range per owner: both connections have some
    quick, slow = fast(app), walked(app)
    assert quick is not None and slow.clean
    assert quick == slow and quick.event_rows > 0 and quick.chains == 6


def rechain(conn: Connection, app_id: int, edit: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Rewrite an application's audit rows as a forger who knows the algorithm would: every hash
    and the head recomputed (so only the replay, the seqs, or an anchor can tell)."""
    query = sa.select(AUDIT).where(AUDIT.c.application_id == app_id).order_by(AUDIT.c.id)
    prev, seq = chain.genesis("audit", app_id), 0
    for stored in list(conn.execute(query).mappings()):
        row = edit(dict(stored))
        prev = chain.link(prev, chain.canonical("audit", row))
        seq = row["seq"]
        conn.execute(sa.update(AUDIT).where(AUDIT.c.id == row["id"]).values({**row, "hash": prev.hex()}))
    conn.execute(sa.update(APPLICATION).where(APPLICATION.c.id == app_id).values(audit_seq=seq, audit_hash=prev.hex()))


AWKWARD_TEXT = 'said "no" \\ again\n\ttab \x01 한글 😀 \u2028 ;,='


def test_awkward_stored_text_is_still_clean_by_the_fast_pass(app: App) -> None:
    h = history(app)
    with tampering(app) as conn:
        rechain(conn, h.first, lambda r: r | {"reason": AWKWARD_TEXT, "actor": AWKWARD_TEXT, "detail": AWKWARD_TEXT})
    quick = fast(app)
    assert quick is not None and quick == walked(app)


def _first_row_from_empty(row: dict[str, Any]) -> dict[str, Any]:
    return row | {"from_state": ""} if row["seq"] == 1 else row


def _separators_in_trigger(row: dict[str, Any]) -> dict[str, Any]:
    return row | {"trigger": "submit,announcement;2"} if row["trigger"] == "submit" else row


def _renumbered(row: dict[str, Any]) -> dict[str, Any]:
    return row | {"seq": row["seq"] + 1} if row["seq"] > 1 else row


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (_first_row_from_empty, "the first row must create the application"),
        (_separators_in_trigger, "is not a move of the table"),
        (_renumbered, "1 row missing before it (deleted)"),
    ],
)
def test_a_rewritten_history_with_recomputed_hashes_is_left_to_the_walk(
    app: App, edit: Callable[[dict[str, Any]], dict[str, Any]], named: str
) -> None:
    h = history(app)
    with tampering(app) as conn:
        rechain(conn, h.first, edit)
    assert fast(app) is None
    report = verify(app)
    assert [f.application_id for f in report.findings] == [h.first]
    assert named in report.findings[0].problem


def test_a_gongmo_move_with_an_awkward_reason_keeps_the_fast_pass(app: App) -> None:
    h = history(app)
    app.moves.apply(h.second, "disqualify", ADMIN, reason=AWKWARD_TEXT)
    assert [r["reason"] for r in rows_of(app, AUDIT, application_id=h.second)][-1] == AWKWARD_TEXT
    quick = fast(app)
    assert quick is not None and quick.clean and quick == walked(app)


def test_a_hash_moved_into_its_neighbour_is_left_to_the_walk(app: App) -> None:
    """Concatenated, a NULL hash and a doubled one would read as the two right hashes: the fast
    pass counts the rows whose hash is 64 long (SQLite: PostgreSQL's column holds no more)."""
    h = history(app)
    if app.db.dialect.name == "postgresql":
        pytest.skip("hash is varchar(64) on PostgreSQL")
    first, second = rows_of(app, AUDIT, application_id=h.first)[:2]
    with tampering(app) as conn:
        conn.execute(sa.update(AUDIT).where(AUDIT.c.id == first["id"]).values(hash=None))
        conn.execute(sa.update(AUDIT).where(AUDIT.c.id == second["id"]).values(hash=first["hash"] + second["hash"]))
    assert fast(app) is None
    [f] = verify(app).findings
    assert f.row_id == first["id"] and "does not match its hash" in f.problem


def test_the_fast_pass_sees_the_callers_snapshot_on_both_connections(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    h = history(app)
    monkeypatch.setattr(audit, "RANGE", 1)
    with audit.snapshot(app.db) as conn:
        before = audit._walk_verify(conn, TABLE, 1000)
        app.moves.apply(h.second, "disqualify", ADMIN, reason="committed meanwhile")  # another connection
        quick = audit._fast_verify(conn, TABLE)
    assert quick == before and before.clean
    assert fast(app) == walked(app) and walked(app).audit_rows == before.audit_rows + 1
