"""The hash chains of the audit and event logs (core/chain.py, engine/audit.py, migration 0010):
the canonical encoding, the Merkle root, every tampering named by `audit verify`, anchors, the
PostgreSQL trigger and the backfill."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection

from gongmo.states.errors import InvalidInput, NotFound
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role
from gongmo.workflow.core import chain, schema
from gongmo.workflow.core.actors import Actor
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICATION, AUDIT, CHAIN_HEAD, EVENT, TRACK
from gongmo.workflow.engine import audit, events
from gongmo.workflow.engine.app import App
from tests.conftest import config_copy, kst, run_cli
from tests.workflow.engine.test_moves import TRACK_KEY, reviewed, submit

ADMIN = Actor("park", Role.ADMIN)
HEADS = ("audit_seq", "audit_hash", "event_seq", "event_hash")
EVALUATOR = Actor("kim@eval.example", Role.EVALUATOR)


# -- the definitions ----------------------------------------------------------------------------

texts = st.one_of(st.none(), st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(
    actor=st.text(max_size=30),
    reason=texts,
    detail=texts,
    from_state=texts,
    at=times,
    app_id=st.integers(1, 2**31 - 1),
    seq=st.integers(1, 10**6),
)
def test_canonical_is_sorted_compact_json_of_every_column_but_id_and_hash(
    actor: str, reason: str | None, detail: str | None, from_state: str | None, at: datetime, app_id: int, seq: int
) -> None:
    row = {"id": 7, "hash": "ff" * 32, "application_id": app_id, "at": at, "actor": actor, "role": "admin"}
    row |= {"trigger": "t", "from_state": from_state, "to_state": "x", "reason": reason, "detail": detail, "seq": seq}
    plain = {k: v for k, v in row.items() if k not in ("id", "hash")} | {"at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    expected = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert chain.canonical("audit", row) == expected


def test_canonical_times_are_utc_with_microseconds_and_naive_times_are_refused() -> None:
    row = {"at": kst("2024-05-29 18:00"), "actor": "a", "role": "r", "kind": "k", "detail": "{}", "seq": 1}
    encoded = chain.canonical("event", row).decode()
    assert '"at":"2024-05-29T09:00:00.000000Z"' in encoded
    assert '"application_id":null' in encoded and '"track_id":null' in encoded
    with pytest.raises(ValueError, match="naive"):
        chain.canonical("event", row | {"at": datetime(2024, 5, 29, 18, 0)})


def test_genesis_and_link_are_sha256_of_the_documented_bytes() -> None:
    import hashlib

    assert chain.genesis("audit", 12) == hashlib.sha256(b"gongmo:audit:12").digest()
    prev = chain.genesis("track", 3)
    assert chain.link(prev, b"{}") == hashlib.sha256(prev + b"{}").digest()


def test_the_streamed_merkle_root_is_the_level_by_level_one() -> None:
    import hashlib

    leaves = [chain.leaf("audit", i, f"{i:064x}") for i in range(70)]
    for n in range(71):
        stream = chain.MerkleRoot()
        for node in leaves[:n]:
            stream.add(node)
        assert stream.root() == chain.merkle_root(leaves[:n]), n
    a, b, c = leaves[:3]
    h = hashlib.sha256
    assert chain.merkle_root([a, b, c]) == h(h(a + b).digest() + c).hexdigest()  # the odd one carried up
    assert chain.merkle_root([]) == h(b"").hexdigest()


# -- a history with every kind of chain -----------------------------------------------------------


@dataclass(frozen=True)
class History:
    first: int  # an application moved four times, with documents and a score
    second: int
    track_id: int


def history(app: App) -> History:
    first = submit(app, "41590")
    second = reviewed(app, "41190")
    app.moves.apply(first, "pass_review", ADMIN)
    app.moves.apply(second, "pass_review", ADMIN)
    now = app.clock.now()
    with write(app.db) as conn:
        track_id = conn.execute(sa.select(TRACK.c.id).where(TRACK.c.key == TRACK_KEY)).scalar_one()
        for points in ("21.00", "23.50"):
            detail = {"evaluator": EVALUATOR.name, "part": "written", "points": {"plan": points}}
            events.record(conn, now, EVALUATOR, "scored", detail, track_id, first)
        events.record(conn, now, ADMIN, "presentations_scheduled", {"slots": []}, track_id)
        events.record(conn, now, ADMIN, "selection", {"selected": ["A"]}, track_id)
        events.record(conn, now, ADMIN, "conflict_declared", {"evaluator": EVALUATOR.name, "applicant": "41590"})
        events.record(conn, now, ADMIN, "conflict_declared", {"evaluator": "lee@eval.example", "applicant": "41190"})
    return History(first, second, int(track_id))


@contextmanager
def tampering(app: App) -> Iterator[Connection]:
    """A transaction that edits the logs behind gongmo's back: PostgreSQL's append-only trigger
    is off for it (session_replication_role = replica: the tests connect as the owner, a superuser)."""
    with write(app.db) as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        yield conn


def rows_of(app: App, table: sa.Table, **where: Any) -> list[Any]:
    with read(app.db) as conn:
        query = sa.select(table).where(*(table.c[k] == v for k, v in where.items())).order_by(table.c.id)
        return list(conn.execute(query).mappings())


def verify(app: App) -> audit.Report:
    with audit.snapshot(app.db) as conn:
        return audit.verify(conn, TABLE)


def the_finding(app: App) -> audit.Finding:
    report = verify(app)
    assert len(report.findings) == 1, report.findings
    return report.findings[0]


def test_every_write_chains_and_verify_is_clean(app: App) -> None:
    h = history(app)
    report = verify(app)
    assert report.clean, report.findings
    trail = rows_of(app, AUDIT, application_id=h.first)
    assert [r["trigger"] for r in trail] == ["start", "submit", "start_review", "pass_review"]
    assert [r["seq"] for r in trail] == [1, 2, 3, 4]
    prev = chain.genesis("audit", h.first)
    for r in trail:  # each hash recomputed from the definitions, by hand
        prev = chain.link(prev, chain.canonical("audit", dict(r)))
        assert prev.hex() == r["hash"]
    [owner] = rows_of(app, APPLICATION, id=h.first)
    assert (owner["audit_seq"], owner["audit_hash"]) == (4, trail[-1]["hash"])
    mine = rows_of(app, EVENT, application_id=h.first)
    assert [r["seq"] for r in mine] == list(range(1, len(mine) + 1)) and mine[-1]["kind"] == "scored"
    assert (owner["event_seq"], owner["event_hash"]) == (len(mine), mine[-1]["hash"])
    [track] = rows_of(app, TRACK, id=h.track_id)
    assert track["event_seq"] == 2
    with read(app.db) as conn:
        assert conn.execute(sa.select(CHAIN_HEAD.c.seq).where(CHAIN_HEAD.c.kind == "global")).scalar_one() == 2
    # 2 applications x (audit, event chains) + the track + global
    assert report.chains == 6 and report.event_rows == len(rows_of(app, EVENT))


# -- every tampering, named ---------------------------------------------------------------------


def audit_row(app: App, application_id: int, trigger: str) -> Any:
    [row] = [r for r in rows_of(app, AUDIT, application_id=application_id) if r["trigger"] == trigger]
    return row


def test_an_edited_reason_is_named(app: App) -> None:
    h = history(app)
    row = audit_row(app, h.first, "start_review")
    with tampering(app) as conn:
        conn.execute(sa.update(AUDIT).where(AUDIT.c.id == row["id"]).values(reason="다시 씀"))
    f = the_finding(app)
    assert (f.application_id, f.chain, f.table, f.row_id) == (h.first, f"audit {h.first}", "audit", row["id"])
    assert f"audit row {row['id']} (seq 3) does not match its hash" in f.problem
    assert f"stored {row['hash']}" in f.problem


def test_an_edited_actor_is_named(app: App) -> None:
    h = history(app)
    row = audit_row(app, h.second, "pass_review")
    with tampering(app) as conn:
        conn.execute(sa.update(AUDIT).where(AUDIT.c.id == row["id"]).values(actor="someone-else"))
    f = the_finding(app)
    assert (f.application_id, f.row_id, f.table) == (h.second, row["id"], "audit")
    assert "does not match its hash" in f.problem


def test_an_edited_score_event_is_named(app: App) -> None:
    h = history(app)
    [first, _] = [r for r in rows_of(app, EVENT, application_id=h.first) if r["kind"] == "scored"]
    detail = json.loads(first["detail"])
    detail["points"]["plan"] = "25.00"
    with tampering(app) as conn:
        conn.execute(sa.update(EVENT).where(EVENT.c.id == first["id"]).values(detail=json.dumps(detail)))
    f = the_finding(app)
    assert (f.application_id, f.chain, f.table, f.row_id) == (h.first, f"event {h.first}", "event", first["id"])
    assert "does not match its hash" in f.problem


def test_an_edited_track_event_and_a_global_one_are_named(app: App) -> None:
    h = history(app)
    [_, selection] = rows_of(app, EVENT, track_id=h.track_id, application_id=None)
    with read(app.db) as conn:
        [declared, _] = conn.execute(
            sa.select(EVENT.c.id).where(EVENT.c.track_id.is_(None), EVENT.c.application_id.is_(None))
        ).scalars()
    with tampering(app) as conn:
        conn.execute(sa.update(EVENT).where(EVENT.c.id == selection["id"]).values(actor="x"))
        conn.execute(sa.update(EVENT).where(EVENT.c.id == declared).values(at=kst("2024-01-01 09:00")))
    found = {(f.chain, f.row_id) for f in verify(app).findings}
    assert found == {(f"track {h.track_id}", selection["id"]), ("global 0", declared)}


def test_a_row_deleted_in_the_middle_is_named(app: App) -> None:
    h = history(app)
    gone = audit_row(app, h.first, "submit")
    after = audit_row(app, h.first, "start_review")
    with tampering(app) as conn:
        conn.execute(sa.delete(AUDIT).where(AUDIT.c.id == gone["id"]))
    findings = verify(app).findings
    chained = [f for f in findings if f.chain is not None]
    assert len(chained) == 1 and (chained[0].application_id, chained[0].row_id) == (h.first, after["id"])
    assert "has seq 3 after seq 1: 1 row missing before it (deleted)" in chained[0].problem
    assert any(f.chain is None and f.application_id == h.first for f in findings)  # and the replay breaks


def test_a_row_deleted_at_the_end_is_named(app: App) -> None:
    h = history(app)
    last = audit_row(app, h.second, "pass_review")
    before = audit_row(app, h.second, "start_review")
    with tampering(app) as conn:
        conn.execute(sa.delete(AUDIT).where(AUDIT.c.id == last["id"]))
    chained = [f for f in verify(app).findings if f.chain is not None]
    assert len(chained) == 1 and (chained[0].application_id, chained[0].row_id) == (h.second, before["id"])
    assert f"head is seq 4, hash {last['hash']} but its last row is seq 3" in chained[0].problem
    assert "rows deleted at the end, or the head was changed" in chained[0].problem


def test_a_row_inserted_out_of_order_is_named(app: App) -> None:
    h = history(app)
    copied = dict(audit_row(app, h.first, "submit"))
    del copied["id"]
    with tampering(app) as conn:
        new_id = conn.execute(sa.insert(AUDIT).values(copied).returning(AUDIT.c.id)).scalar_one()
    chained = [f for f in verify(app).findings if f.chain is not None]
    assert [(f.application_id, f.row_id) for f in chained] == [(h.first, new_id)]
    assert f"audit row {new_id} has seq 2 after seq 4: a row out of order (inserted)" in chained[0].problem


def test_a_row_with_a_forged_hash_appended_is_named(app: App) -> None:
    h = history(app)
    forged = dict(audit_row(app, h.first, "pass_review")) | {"seq": 5, "reason": "forged", "hash": "00" * 32}
    del forged["id"]
    with tampering(app) as conn:
        new_id = conn.execute(sa.insert(AUDIT).values(forged).returning(AUDIT.c.id)).scalar_one()
    chained = [f for f in verify(app).findings if f.chain is not None]
    assert [(f.application_id, f.row_id) for f in chained] == [(h.first, new_id)]


def test_an_edited_head_is_named(app: App) -> None:
    h = history(app)
    [owner] = rows_of(app, APPLICATION, id=h.second)
    with tampering(app) as conn:
        conn.execute(sa.update(APPLICATION).where(APPLICATION.c.id == h.second).values(event_hash="ab" * 32))
    f = the_finding(app)
    assert (f.application_id, f.chain) == (h.second, f"event {h.second}")
    assert f"head is seq {owner['event_seq']}, hash {'ab' * 32} but its last row is seq {owner['event_seq']}" in (
        f.problem
    )


def test_the_cli_names_the_tampered_row_and_exits_1(
    app: App, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = history(app)
    config = str(config_copy(tmp_path, database_url=db_url))
    code, out, _ = run_cli(capsys, "--config", config, "audit", "verify")
    assert code == 0 and "chains: clean" in out
    row = audit_row(app, h.first, "start_review")
    with tampering(app) as conn:
        conn.execute(sa.update(AUDIT).where(AUDIT.c.id == row["id"]).values(reason="다시 씀"))
    code, out, _ = run_cli(capsys, "--config", config, "audit", "verify")
    assert code == 1
    assert f"application {h.first} (audit chain): audit row {row['id']} (seq 3) does not match its hash" in out
    assert out.strip().endswith("1 problem(s)")
    code, out, _ = run_cli(capsys, "--config", config, "audit", "verify", "--json")
    report = json.loads(out)
    assert code == 1 and report["clean"] is False
    assert report["findings"][0] | {"problem": ""} == {
        "application_id": h.first,
        "problem": "",
        "chain": f"audit {h.first}",
        "table": "audit",
        "row_id": row["id"],
    }


# -- anchors ------------------------------------------------------------------------------------


def take(app: App) -> audit.Anchor:
    with audit.snapshot(app.db, write=True) as conn:
        return audit.take_anchor(conn, app.clock.now())


def prove(app: App, digest: str) -> audit.AnchorReport:
    with audit.snapshot(app.db) as conn:
        return audit.verify_anchor(conn, digest)


def test_an_anchor_round_trips_and_later_rows_do_not_disturb_it(app: App) -> None:
    h = history(app)
    anchor = take(app)
    total = len(rows_of(app, AUDIT)) + len(rows_of(app, EVENT))
    assert anchor.taken and anchor.rows == total and anchor.chains == 6
    assert take(app) == audit.Anchor(anchor.digest, anchor.at, anchor.rows, anchor.chains, taken=False)
    assert prove(app, anchor.digest).clean
    app.moves.apply(h.first, "disqualify", ADMIN, "서류 미비")  # the chains grow after the anchor
    with write(app.db) as conn:
        events.record(conn, app.clock.now(), ADMIN, "conflict_declared", {"evaluator": "x", "applicant": "y"})
    report = prove(app, anchor.digest)
    assert report.clean and report.root == anchor.digest
    later = take(app)
    assert later.digest != anchor.digest and later.rows == total + 2


def test_a_covered_row_changed_after_the_anchor_is_named(app: App) -> None:
    h = history(app)
    anchor = take(app)
    row = audit_row(app, h.second, "submit")
    with tampering(app) as conn:
        conn.execute(sa.update(AUDIT).where(AUDIT.c.id == row["id"]).values(reason="나중에 고침"))
    report = prove(app, anchor.digest)
    assert not report.clean and report.root != anchor.digest
    [f] = report.findings
    assert (f.application_id, f.chain, f.row_id) == (h.second, f"audit {h.second}", row["id"])
    assert "does not match its hash" in f.problem


def test_a_chain_rewritten_with_its_hashes_after_the_anchor_is_caught_by_it(app: App) -> None:
    """The chain alone cannot see a rewrite that recomputes every hash and the head; the anchor can."""
    h = history(app)
    anchor = take(app)
    trail = rows_of(app, AUDIT, application_id=h.first)
    prev = chain.genesis("audit", h.first)
    with tampering(app) as conn:
        for r in trail:
            row = dict(r) | ({"reason": "rewritten"} if r["trigger"] == "submit" else {})
            prev = chain.link(prev, chain.canonical("audit", row))
            conn.execute(sa.update(AUDIT).where(AUDIT.c.id == r["id"]).values(reason=row["reason"], hash=prev.hex()))
        conn.execute(sa.update(APPLICATION).where(APPLICATION.c.id == h.first).values(audit_hash=prev.hex()))
    assert verify(app).clean  # consistent again: only the anchor knows
    report = prove(app, anchor.digest)
    [f] = report.findings
    assert f.chain == f"audit {h.first}" and "were rewritten (with their hashes) since the anchor" in f.problem


def test_rows_deleted_after_the_anchor_are_named(app: App) -> None:
    h = history(app)
    anchor = take(app)
    [*_, last] = rows_of(app, EVENT, application_id=h.first)
    with tampering(app) as conn:
        conn.execute(sa.delete(EVENT).where(EVENT.c.id == last["id"]))
        conn.execute(
            sa.update(APPLICATION)
            .where(APPLICATION.c.id == h.first)
            .values(event_seq=last["seq"] - 1, event_hash=rows_of(app, EVENT, application_id=h.first)[-2]["hash"])
        )
    [f] = prove(app, anchor.digest).findings
    assert f.chain == f"event {h.first}"
    assert f"the chain ends at seq {last['seq'] - 1}, the anchor covered seq {last['seq']}" in f.problem


def test_an_unknown_or_malformed_digest_is_refused_naming_it(app: App) -> None:
    history(app)
    take(app)
    unknown = "0f" * 32
    with pytest.raises(NotFound, match=f"no anchor {unknown} was taken in this database"):
        prove(app, unknown)
    with pytest.raises(InvalidInput, match="'nope': an anchor digest is 64 hexadecimal characters"):
        prove(app, "nope")


def test_the_anchor_cli_round_trips(app: App, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    h = history(app)
    config = str(config_copy(tmp_path, database_url=db_url))
    code, out, _ = run_cli(capsys, "--config", config, "audit", "anchor", "--json")
    assert code == 0, out
    taken = json.loads(out)
    assert taken["new"] is True and taken["chains"] == 6 and len(taken["digest"]) == 64
    code, out, _ = run_cli(capsys, "--config", config, "audit", "verify", "--anchor", taken["digest"])
    assert code == 0 and "clean: nothing it covered changed" in out
    code, out, _ = run_cli(capsys, "--config", config, "audit", "anchor", "--list")
    assert code == 0 and taken["digest"] in out
    row = audit_row(app, h.first, "start_review")
    with tampering(app) as conn:
        conn.execute(sa.update(AUDIT).where(AUDIT.c.id == row["id"]).values(actor="mallory"))
    code, out, _ = run_cli(capsys, "--config", config, "audit", "verify", "--anchor", taken["digest"])
    assert code == 1
    assert f"application {h.first} (audit chain): audit row {row['id']} (seq 3) does not match its hash" in out
    code, _, err = run_cli(capsys, "--config", config, "audit", "verify", "--anchor", "1" * 64)
    assert code == 1 and f"no anchor {'1' * 64} was taken in this database" in err
    assert len(err.strip().splitlines()) == 1


# -- PostgreSQL refuses, the backfill ---------------------------------------------------------------


REFUSED = ("UPDATE audit SET reason = 'x'", "DELETE FROM audit", "UPDATE event SET actor = 'x'", "DELETE FROM event")


@pytest.mark.postgres
@pytest.mark.parametrize("statement", [*REFUSED, "TRUNCATE audit CASCADE"])
def test_postgres_refuses_update_and_delete_of_the_logs(pg_schema_url: str, clock: Any, statement: str) -> None:
    from tests.conftest import make_app

    app = make_app(pg_schema_url, clock)
    try:
        history(app)
        table = statement.split()[1] if not statement.startswith("DELETE") else statement.split()[2]
        refused = rf'on table "{table}" is refused: the audit and event logs are append-only'
        with pytest.raises(sa.exc.DBAPIError, match=refused), app.db.begin() as conn:
            conn.exec_driver_sql(statement)
        assert verify(app).clean
    finally:
        app.db.dispose()


def test_the_backfill_makes_the_chains_new_writes_made(app: App, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows written by 0009 code have no chain: drop the chain (downgrade to 0009), upgrade again
    in chunks of 2 rows (chains cut across chunks), and every hash and head comes back the same."""
    h = history(app)
    for _ in range(3):  # chains longer than a chunk
        app.clock.set(app.clock.now() + timedelta(minutes=1))  # type: ignore[attr-defined]
        with write(app.db) as conn:
            events.record(conn, app.clock.now(), ADMIN, "note", {"k": "값"}, h.track_id, h.second)

    def chained() -> dict[str, Any]:
        with read(app.db) as conn:
            return {
                "audit": conn.execute(sa.select(AUDIT.c.id, AUDIT.c.seq, AUDIT.c.hash).order_by(AUDIT.c.id)).all(),
                "event": conn.execute(sa.select(EVENT.c.id, EVENT.c.seq, EVENT.c.hash).order_by(EVENT.c.id)).all(),
                "heads": conn.execute(
                    sa.select(APPLICATION.c.id, *(APPLICATION.c[c] for c in HEADS)).order_by(APPLICATION.c.id)
                ).all(),
                "track": conn.execute(sa.select(TRACK.c.id, TRACK.c.event_seq, TRACK.c.event_hash)).all(),
                "global": conn.execute(sa.select(CHAIN_HEAD.c.seq, CHAIN_HEAD.c.hash)).all(),
            }

    written = chained()
    assert all(r.hash for r in written["audit"] + written["event"])
    app.db.dispose()
    engine = sa.create_engine(db_url)  # no foreign keys on SQLite: the downgrade rebuilds tables
    try:
        cfg = schema.alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0009")
            columns = {c["name"] for c in sa.inspect(conn).get_columns("audit")}
            assert "hash" not in columns and "seq" not in columns
        monkeypatch.setenv("GONGMO_BACKFILL_ROWS", "2")
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()
    assert chained() == written
    assert verify(app).clean


# -- a chunk's rows at once (Chainer.audit_rows' shared template) ---------------------------------


@settings(max_examples=200, deadline=None)
@given(
    actor=st.text(max_size=20),
    reason=texts,
    at=times,
    heads=st.lists(
        st.tuples(
            st.integers(1, 2**31 - 1),
            st.none() | st.integers(1, 10**6),
            st.none() | st.binary(min_size=32, max_size=32),
        ),
        max_size=6,
    ),
    odd=st.none() | st.integers(0, 5),
)
def test_a_chunk_chains_as_its_rows_one_by_one(
    actor: str, reason: str | None, at: datetime, heads: list[tuple[int, int | None, bytes | None]], odd: int | None
) -> None:
    """audit_rows gives each row the seq and hash audit_row gives it alone, also with '%' or
    non-ASCII text in the shared values, and for a row that does not share them (`odd`)."""
    chunk = [(app_id, seq if digest else None, digest.hex() if digest else None) for app_id, seq, digest in heads]
    rows = [
        {"application_id": app_id, "at": at, "actor": actor + "%d %s 50%", "role": "system", "trigger": "start_review"}
        | {"from_state": "receipt", "to_state": "preliminary_review", "reason": reason, "detail": None}
        for app_id, _, _ in chunk
    ]
    if odd is not None and odd < len(rows):
        rows[odd] |= {"actor": "다른 사람", "detail": '{"a": 1}'}
    one_by_one = [dict(r) for r in rows]
    for (app_id, seq, head), row in zip(chunk, one_by_one, strict=True):
        chain.CHAINER.audit_row(app_id, seq, head, row)
    chain.CHAINER.audit_rows(chunk, rows)
    assert rows == one_by_one


def test_a_single_moves_audit_row_hashes_the_documented_bytes_whatever_the_times_zone() -> None:
    """Chainer.audit_row turns an aware time into its canonical text before encoding (the fast path):
    the hash is link(previous, canonical(row)) as documented, for a time in KST as in UTC."""
    local = datetime(2024, 6, 3, 10, 0, 0, 123456, tzinfo=kst("2024-06-03 10:00").tzinfo)
    for at in (local, local.astimezone(UTC)):
        row: dict[str, Any] = {"application_id": 7, "at": at, "actor": '박주무관 "office"', "role": "admin"}
        row |= {"trigger": "pass_review", "from_state": "preliminary_review", "to_state": "written_evaluation"}
        row |= {"reason": "줄\n바꿈", "detail": None}
        chain.CHAINER.audit_row(7, 2, "ab" * 32, row)
        assert row["seq"] == 3
        assert row["hash"] == chain.link(bytes.fromhex("ab" * 32), chain.canonical("audit", row)).hex()
