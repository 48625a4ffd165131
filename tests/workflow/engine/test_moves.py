"""The transition service, on SQLite and on PostgreSQL (same suite)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gongmo.states.errors import (
    Conflict,
    IllegalMove,
    InvalidInput,
    MissingReason,
    NotFound,
    NotPermitted,
)
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.states.lifecycle import Role
from gongmo.workflow.core.actors import SYSTEM, Actor
from gongmo.workflow.core.chain import CHAINER
from gongmo.workflow.core.clock import FixedClock
from gongmo.workflow.core.db import read, write
from gongmo.workflow.core.models import APPLICANT, APPLICATION, AUDIT, OUTBOX, TRACK
from gongmo.workflow.engine import audit, moves
from gongmo.workflow.engine.app import App
from tests.conftest import kst, make_app
from tests.workflow import plans

ADMIN = Actor("park", Role.ADMIN)
TRACK_KEY = "strong-small-2024"
CLOSE = kst("2024-05-29 18:00")


def counts(app: App) -> dict[str, Any]:
    with read(app.db) as conn:
        return {
            "audit": conn.execute(sa.select(sa.func.count()).select_from(AUDIT)).scalar_one(),
            "outbox": conn.execute(sa.select(sa.func.count()).select_from(OUTBOX)).scalar_one(),
            "states": dict(
                conn.execute(sa.select(APPLICATION.c.id, APPLICATION.c.state).order_by(APPLICATION.c.id)).all()
            ),
            "versions": dict(conn.execute(sa.select(APPLICATION.c.id, APPLICATION.c.version)).all()),
            "seq": conn.execute(sa.select(TRACK.c.receipt_seq).where(TRACK.c.key == TRACK_KEY)).scalar_one(),
        }


def submit(app: App, code: str, at: str = "2024-05-28 10:00") -> int:
    assert isinstance(app.clock, FixedClock)
    app.clock.set(kst(at))
    moved = plans.submit(app, TRACK_KEY, code, 8_000_000_000, 8_000_000_000, ADMIN, "계획", "climate_crisis")
    return moved.application_id


def outbox_rows(app: App, application_id: int) -> list[Any]:
    with read(app.db) as conn:
        query = sa.select(OUTBOX).where(OUTBOX.c.application_id == application_id).order_by(OUTBOX.c.id)
        return list(conn.execute(query).mappings())


def verify_clean(app: App) -> audit.Report:
    with read(app.db) as conn:
        report = audit.verify(conn, TABLE)
    assert report.clean, report.findings[:5]
    return report


# -- single moves ----------------------------------------------------------------


def reviewed(app: App, code: str = "41590") -> int:
    app_id = submit(app, code)
    app.clock.set(CLOSE)  # type: ignore[attr-defined]
    app.moves.apply_bulk(TRACK_KEY, "start_review", "receipt")
    return app_id


def test_apply_writes_state_audit_and_notice_together(app: App) -> None:
    app_id = reviewed(app)
    moved = app.moves.apply(app_id, "disqualify", ADMIN, reason="인구 기준 초과")
    assert (moved.from_state, moved.to_state, moved.version) == ("preliminary_review", "disqualified", 4)
    with read(app.db) as conn:
        last = conn.execute(sa.select(AUDIT).order_by(AUDIT.c.id.desc()).limit(1)).mappings().one()
    assert (last["actor"], last["role"], last["trigger"], last["reason"]) == (
        "park",
        "admin",
        "disqualify",
        "인구 기준 초과",
    )
    assert last["at"] == CLOSE
    notice = outbox_rows(app, app_id)[-1]
    assert notice["notice"] == "disqualified" and "인구 기준 초과" in notice["body_text"]
    verify_clean(app)


def test_refused_move_changes_nothing(app: App) -> None:
    app_id = reviewed(app)
    before = counts(app)
    with pytest.raises(IllegalMove, match=rf"cannot 'select' application {app_id} in state 'preliminary_review'"):
        app.moves.apply(app_id, "select", ADMIN)
    with pytest.raises(NotPermitted, match="role 'applicant' may not fire 'pass_review'"):
        app.moves.apply(app_id, "pass_review", Actor("suwon", Role.APPLICANT))
    with pytest.raises(MissingReason, match="'disqualify' needs a reason"):
        app.moves.apply(app_id, "disqualify", ADMIN, reason="  ")
    with pytest.raises(InvalidInput, match="unknown trigger 'approve'"):
        app.moves.apply(app_id, "approve", ADMIN)
    with pytest.raises(NotFound):
        app.moves.apply(987654, "pass_review", ADMIN)
    assert counts(app) == before


def test_stale_version_is_a_conflict(app: App) -> None:
    app_id = reviewed(app)
    version = counts(app)["versions"][app_id]
    app.moves.apply(app_id, "pass_review", ADMIN, expected_version=version)
    before = counts(app)
    with pytest.raises(Conflict, match=f"is at version {version + 1}, not {version}"):
        app.moves.apply(app_id, "withdraw", ADMIN, expected_version=version)
    assert counts(app) == before


def test_full_path_to_kickoff(app: App) -> None:
    app_id = reviewed(app)
    app.moves.apply(app_id, "pass_review", ADMIN)
    app.clock.set(kst("2024-06-12 18:00"))  # type: ignore[attr-defined]
    assert app.moves.apply_bulk(TRACK_KEY, "start_presentation", "written_evaluation") == 1
    for trigger in ("select", "waitlist", "promote", "approve_kickoff"):
        reason = "선정 정정" if trigger == "waitlist" else None  # a corrected selection says why
        app.moves.apply(app_id, trigger, ADMIN, reason)
    assert [n["notice"] for n in outbox_rows(app, app_id)] == [
        "receipt_confirmation",
        "review_passed",
        "selected",
        "waitlisted",
        "promoted",
        "kickoff_confirmed",
    ]
    assert counts(app)["states"][app_id] == "kickoff"
    verify_clean(app)


# -- concurrency -------------------------------------------------------------------


def test_two_concurrent_triggers_exactly_one_wins(db_url: str, clock: FixedClock) -> None:
    """Two admins at once on each of several applications, one selecting and one
    rejecting: after either move the other is illegal, so exactly one wins."""
    app = make_app(db_url, clock)
    other = make_app(db_url, clock)  # a second engine: its own connection pool
    ids = [reviewed(app, code) for code in ("41590", "41190", "44150", "46170", "47730")]
    for app_id in ids:
        app.moves.apply(app_id, "pass_review", ADMIN)
    clock.set(kst("2024-06-12 18:00"))
    app.moves.apply_bulk(TRACK_KEY, "start_presentation", "written_evaluation")
    for app_id in ids:
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def fire(a: App, trigger: str, reason: str | None, app_id: int = app_id, barrier=barrier, out=outcomes) -> None:
            barrier.wait()
            try:
                a.moves.apply(app_id, trigger, ADMIN, reason=reason)
                out.append(f"won:{trigger}")
            except (IllegalMove, Conflict) as exc:
                out.append(f"lost:{type(exc).__name__}")

        threads = [
            threading.Thread(target=fire, args=(app, "select", None)),
            threading.Thread(target=fire, args=(other, "reject", None)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(o.split(":")[0] for o in outcomes) == ["lost", "won"], outcomes
    with read(app.db) as conn:
        per_app = conn.execute(
            sa.select(AUDIT.c.application_id, sa.func.count())
            .where(AUDIT.c.trigger.in_(["select", "reject"]))
            .group_by(AUDIT.c.application_id)
        ).all()
    assert sorted(n for _, n in per_app) == [1] * len(ids)
    verify_clean(app)
    other.db.dispose()
    app.db.dispose()


# -- bulk ------------------------------------------------------------------------------


def test_bulk_expire_moves_every_draft_in_chunks(app: App) -> None:
    app.moves.announce(TRACK_KEY, ADMIN)
    submit(app, "41590")
    app.clock.set(CLOSE)  # type: ignore[attr-defined]
    assert app.moves.apply_bulk(TRACK_KEY, "expire", "announcement", chunk=5) == 17
    assert app.moves.apply_bulk(TRACK_KEY, "expire", "announcement", chunk=5) == 0
    states = counts(app)["states"]
    assert sorted(set(states.values())) == ["expired", "receipt"]
    with read(app.db) as conn:
        expired = conn.execute(sa.select(sa.func.count()).where(OUTBOX.c.notice == "expired")).scalar_one()
        roles = set(conn.execute(sa.select(AUDIT.c.role).where(AUDIT.c.trigger == "expire")).scalars())
    assert expired == 17 and roles == {"system"}
    verify_clean(app)


def test_bulk_checks_the_move_once(app: App) -> None:
    with pytest.raises(IllegalMove, match="cannot 'expire' application of track strong-small-2024 in state 'receipt'"):
        app.moves.apply_bulk(TRACK_KEY, "expire", "receipt")
    with pytest.raises(NotPermitted):
        app.moves.apply_bulk(TRACK_KEY, "expire", "announcement", actor=ADMIN)


def test_audit_verify_finds_a_tampered_state(app: App) -> None:
    app_id = reviewed(app)
    with write(app.db) as conn:
        conn.execute(sa.update(APPLICATION).where(APPLICATION.c.id == app_id).values(state="selected"))
    with read(app.db) as conn:
        report = audit.verify(conn, TABLE)
    assert [f.application_id for f in report.findings] == [app_id]
    assert "replays to 'preliminary_review'" in report.findings[0].problem


def seed_received(app: App, n: int) -> None:
    """n applicants, each with an application received in the track (audit included)."""
    now = kst("2024-05-28 10:00")
    with write(app.db) as conn:
        track_id = conn.execute(sa.select(TRACK.c.id).where(TRACK.c.key == TRACK_KEY)).scalar_one()
        base = conn.execute(sa.select(sa.func.coalesce(sa.func.max(APPLICANT.c.id), 0))).scalar_one()
        applicants = [
            {
                "code": f"9{i:05d}"[-5:] if i < 10_000 else f"X{i}",
                "name": f"시험시 {i}",
                "kind": "city",
                "population": 100_000 + i,
                "contact_name": "담당자",
                "email": f"lg{i}@test.example",
                "language": "ko",
            }
            for i in range(n)
        ]
        conn.execute(sa.insert(APPLICANT), applicants)
        apps = [
            {
                "id": base + i + 1000,
                "track_id": track_id,
                "applicant_id": base + i + 1,
                "state": "receipt",
                "version": 2,
                "receipt_no": f"T-{i:06d}",
                "national_krw": 8_000_000_000,
                "local_krw": 8_000_000_000,
                "submitted_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for i in range(n)
        ]
        rows = []
        for a in apps:  # each application's audit chain, as the engine writes it (core/chain.py)
            common = {"application_id": a["id"], "at": now, "actor": "seed", "role": "admin", "reason": None}
            invite = {**common, "trigger": "invite", "from_state": None, "to_state": "announcement"}
            submit = {**common, "trigger": "submit", "from_state": "announcement", "to_state": "receipt"}
            CHAINER.audit_row(a["id"], None, None, invite)
            CHAINER.audit_row(a["id"], invite["seq"], invite["hash"], submit)
            a |= {"audit_seq": submit["seq"], "audit_hash": submit["hash"]}
            rows += [invite, submit]
        conn.execute(sa.insert(APPLICATION), apps)
        conn.execute(sa.insert(AUDIT), rows)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('application', 'id'), (SELECT max(id) FROM application))"
            )


@pytest.mark.slow
def test_bulk_move_of_100000_applications(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    n = 100_000
    seed_received(app, n)
    app.clock.set(CLOSE)  # type: ignore[attr-defined]
    started = time.perf_counter()
    moved = app.moves.apply_bulk(TRACK_KEY, "start_review", "receipt", actor=SYSTEM)
    elapsed = time.perf_counter() - started
    assert moved == n
    report = verify_clean(app)
    assert report.applications == n and report.audit_rows == 3 * n
    with read(app.db) as conn:
        left = conn.execute(sa.select(sa.func.count()).where(APPLICATION.c.state == "receipt")).scalar_one()
    assert left == 0
    with capsys.disabled():
        print(
            f"\n[{app.db.dialect.name}] bulk start_review of {n:,}: {elapsed:.2f} s, {n / elapsed:,.0f} applications/s"
        )


def test_bulk_with_notices_renders_each(app: App) -> None:
    """The expire deadline renders one notice per draft, in each one's language."""
    app.moves.announce(TRACK_KEY, ADMIN)
    app.clock.set(CLOSE + timedelta(seconds=1))  # type: ignore[attr-defined]
    app.moves.apply_bulk(TRACK_KEY, "expire", "announcement", chunk=4)
    with read(app.db) as conn:
        rows = conn.execute(
            sa.select(OUTBOX.c.language, OUTBOX.c.subject, OUTBOX.c.body_text).where(OUTBOX.c.notice == "expired")
        ).all()
    assert len(rows) == 18
    assert all("2024-05-29" in r.body_text for r in rows)
    assert {r.language for r in rows} == {"ko", "en"}


# -- issue 19: a bulk move runs the checks of a single move (point 7) -------------------------------


def test_bulk_submit_is_refused_in_one_line_and_nothing_moves(app: App) -> None:
    """`submit` needs each plan's amounts and a receipt number: not offered in bulk (was: 18
    applications in receipt with no receipt number and no amounts)."""
    app.moves.announce(TRACK_KEY, ADMIN)
    app.clock.set(kst("2024-05-28 10:00"))  # type: ignore[attr-defined]
    before = counts(app)
    for actor in (ADMIN, SYSTEM):
        with pytest.raises(InvalidInput) as refused:
            app.moves.apply_bulk(TRACK_KEY, "submit", "announcement", actor)
        assert "\n" not in str(refused.value)
        assert "'submit' is not offered in bulk" in str(refused.value)
        assert "gongmo apply" in str(refused.value)
    assert counts(app) == before


# -- issue 19: an override needs a reason, single and bulk (point 12) ----------------------------


def failing_in_review(app: App) -> tuple[int, int]:
    """41590 with a sound plan and 41190 with no local match, both in preliminary review."""
    good = submit(app, "41590")
    bad = plans.submit(app, TRACK_KEY, "41190", 5_000_000_000, 0, ADMIN, "계획", "climate_crisis").application_id
    app.clock.set(CLOSE)  # type: ignore[attr-defined]
    app.moves.apply_bulk(TRACK_KEY, "start_review", "receipt")
    return good, bad


def last_audit(app: App, application_id: int) -> dict[str, Any]:
    with read(app.db) as conn:
        query = sa.select(AUDIT).where(AUDIT.c.application_id == application_id).order_by(AUDIT.c.id.desc())
        return dict(conn.execute(query.limit(1)).mappings().one())


def test_passing_a_failed_checklist_needs_a_reason(app: App) -> None:
    good, bad = failing_in_review(app)
    before = counts(app)
    with pytest.raises(MissingReason) as refused:
        app.moves.apply(bad, "pass_review", ADMIN)
    assert str(refused.value).startswith(
        f"application {bad}: 'pass_review' overrides a rule:"
        " its preliminary review checklist failed (local_match: 0 won"
    )
    assert counts(app) == before
    app.moves.apply(good, "pass_review", ADMIN)  # a checklist that passed needs none
    moved = app.moves.apply(bad, "pass_review", ADMIN, reason="지방비 확약서 별도 제출 확인")
    assert moved.to_state == "written_evaluation"
    assert last_audit(app, bad)["reason"] == "지방비 확약서 별도 제출 확인"


def test_bulk_pass_review_over_a_failed_checklist_needs_a_reason_and_moves_nothing_without(app: App) -> None:
    good, bad = failing_in_review(app)
    before = counts(app)
    with pytest.raises(MissingReason) as refused:
        app.moves.apply_bulk(TRACK_KEY, "pass_review", "preliminary_review", ADMIN)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith("1 of 2 applications: 'pass_review' overrides a rule:")
    assert "STRONG-SMALL-2024-0002: its preliminary review checklist failed (local_match" in message
    assert counts(app) == before
    assert (
        app.moves.apply_bulk(TRACK_KEY, "pass_review", "preliminary_review", ADMIN, reason="일괄 통과: 위원회 의결")
        == 2
    )
    assert last_audit(app, bad)["reason"] == last_audit(app, good)["reason"] == "일괄 통과: 위원회 의결"


def selected(app: App) -> int:
    """An application reviewed, passed, taken to the presentation and selected."""
    app_id = reviewed(app)
    app.moves.apply(app_id, "pass_review", ADMIN)
    app.clock.set(kst("2024-06-12 18:00"))  # type: ignore[attr-defined]
    app.moves.apply_bulk(TRACK_KEY, "start_presentation", "written_evaluation")
    app.moves.apply(app_id, "select", ADMIN)
    return app_id


def test_correcting_a_selection_needs_a_reason(app: App) -> None:
    app_id = selected(app)
    before = counts(app)
    with pytest.raises(MissingReason, match=rf"application {app_id}: 'waitlist' overrides a rule: it corrects"):
        app.moves.apply(app_id, "waitlist", ADMIN)
    with pytest.raises(MissingReason, match=r"1 of 1 applications: 'waitlist' overrides a rule"):
        app.moves.apply_bulk(TRACK_KEY, "waitlist", "selected", ADMIN)
    assert counts(app) == before
    app.moves.apply(app_id, "waitlist", ADMIN, reason="예산 재산정: 국비 한도 초과")
    assert last_audit(app, app_id)["reason"] == "예산 재산정: 국비 한도 초과"


# -- the chained bulk UPDATE (SQLite: the driver's executemany; PostgreSQL: unnest) ------------------


def raw_heads(conn: Any) -> list[tuple[Any, ...]]:
    """The application rows as the database holds them (the driver's values, no type processing)."""
    typeof = "typeof(updated_at)" if conn.dialect.name == "sqlite" else "pg_typeof(updated_at)::text"
    query = f"SELECT id, state, version, updated_at, {typeof}, audit_seq, audit_hash FROM application ORDER BY id"
    return [tuple(r) for r in conn.exec_driver_sql(query)]


def raw_audit(conn: Any, trigger: str) -> list[tuple[Any, ...]]:
    columns = ", ".join(c.name for c in AUDIT.c if c.name != "id")
    return [
        tuple(r) for r in conn.exec_driver_sql(f"SELECT {columns} FROM audit WHERE trigger = '{trigger}' ORDER BY id")
    ]


def raw_checklists(conn: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.exec_driver_sql("SELECT id, checklist, eligible FROM application ORDER BY id")]


# What a chunk's move stores, written through SQLAlchemy (its UTCDateTime and the dialect's types).
REFERENCE_MOVE = (
    sa.update(APPLICATION)
    .where(APPLICATION.c.id == sa.bindparam("b_id"))
    .values(
        state=sa.bindparam("b_dest"),
        updated_at=sa.bindparam("b_at"),
        audit_seq=sa.bindparam("b_seq"),
        audit_hash=sa.bindparam("b_hash"),
        checklist=sa.bindparam("b_checklist"),
        eligible=sa.bindparam("b_eligible"),
    )
)


@pytest.mark.parametrize("micro", [0, 120_034])
def test_a_chained_bulk_move_stores_what_sqlalchemy_stores_byte_for_byte(app: App, micro: int) -> None:
    """A whole second (micro 0) too: bound by the type's own processor alone, sqlite3 wrote the time
    without its '.000000' (str(datetime)), and the audit row's hash no longer matched its text."""
    seed_received(app, 7)
    with read(app.db) as conn:
        heads = {
            r[0]: (r[1], r[2])
            for r in conn.execute(sa.select(APPLICATION.c.id, APPLICATION.c.audit_seq, APPLICATION.c.audit_hash))
        }
    now = CLOSE + timedelta(microseconds=micro)
    app.clock.set(now)  # type: ignore[attr-defined]
    assert app.moves.apply_bulk(TRACK_KEY, "start_review", "receipt", chunk=3) == 7
    with read(app.db) as conn:
        stored, checklists = raw_heads(conn), raw_checklists(conn)
        audit_rows = raw_audit(conn, "start_review")
        audits = {r.application_id: r for r in conn.execute(sa.select(AUDIT).where(AUDIT.c.trigger == "start_review"))}
    assert len(stored) == 7 and {r[1] for r in stored} == {"preliminary_review"} and {r[2] for r in stored} == {3}
    for app_id, state, _, _, _, seq, digest in stored:  # each row its chain's next link, as audit_row makes it
        expected = {"application_id": app_id, "at": now, "actor": SYSTEM.name, "role": SYSTEM.role.value}
        expected |= {"trigger": "start_review", "from_state": "receipt", "to_state": state}
        expected |= {"reason": None, "detail": None}
        CHAINER.audit_row(app_id, *heads[app_id], expected)
        assert (seq, digest) == (expected["seq"], expected["hash"]) == (audits[app_id].seq, audits[app_id].hash)
    assert all(c[1] and c[1].startswith('[{"rule":"kind"') for c in checklists)
    verify_clean(app)
    # The same values written through SQLAlchemy: the same bytes.
    with write(app.db) as conn:
        eligible = {r.id: r.eligible for r in conn.execute(sa.select(APPLICATION.c.id, APPLICATION.c.eligible))}
        conn.execute(
            REFERENCE_MOVE,
            [
                {"b_id": r[0], "b_dest": r[1], "b_at": now, "b_seq": r[5], "b_hash": r[6]}
                | {"b_checklist": c[1], "b_eligible": eligible[r[0]]}
                for r, c in zip(stored, checklists, strict=True)
            ],
        )
        conn.execute(
            sa.insert(AUDIT),
            [{c.name: getattr(a, c.name) for c in AUDIT.c if c.name != "id"} for a in audits.values()],
        )
        rewritten, rechecked = raw_heads(conn), raw_checklists(conn)
        audit_again = raw_audit(conn, "start_review")[len(audit_rows) :]
    assert rewritten == stored and rechecked == checklists
    assert audit_again == audit_rows
    if app.db.dialect.name == "sqlite":
        text = f"2024-05-29 09:00:00.{micro:06d}"
        assert {(r[3], r[4]) for r in stored} == {(text, "text")}
        assert {r[1] for r in audit_rows} == {text}


def test_a_row_changed_underneath_a_chained_bulk_move_is_a_conflict_and_nothing_moves(app: App) -> None:
    seed_received(app, 4)
    app.clock.set(CLOSE)  # type: ignore[attr-defined]
    before = counts(app)
    with read(app.db) as conn:
        stored = raw_heads(conn)
    changed = r"bulk 'start_review': 1 applications changed underneath; retry"
    with pytest.raises(Conflict, match=changed), write(app.db) as conn:
        track_id = conn.execute(sa.select(TRACK.c.id).where(TRACK.c.key == TRACK_KEY)).scalar_one()
        heads = moves._ids_in_state(conn, track_id, "receipt", 10)
        assert [(r[0], r[5], r[6]) for r in stored] == heads
        conn.execute(sa.update(APPLICATION).where(APPLICATION.c.id == heads[2][0]).values(state="withdrawn"))
        spec = app.moves.spec("start_review")
        moves._bulk_move(conn, heads, spec, "receipt", "preliminary_review", SYSTEM, None, CLOSE, CHAINER)
    assert counts(app) == before
    with read(app.db) as conn:
        assert raw_heads(conn) == stored
    verify_clean(app)


def test_a_chunk_column_travels_to_postgresql_as_one_text_or_not_at_all() -> None:
    assert moves._pg_values([7, None, True, False, "ab"]) == "7\x1e\x1et\x1ef\x1eab"
    with pytest.raises(ValueError, match="separator"):
        moves._pg_values(["a\x1eb", "c"])
    with pytest.raises(ValueError, match="empty text"):
        moves._pg_values(["", "c"])
