"""`gongmo audit verify` over N audit rows, against a plain SHA-256 loop over the same bytes.

N/10 applications, each with a chain of 10 audit rows (invite, submit, start_review,
pass_review, then disqualify and reinstate three times: a history the replay accepts), seeded
with COPY / executemany (never measured). gongmo's figure is audit.verify() in one snapshot:
both tables streamed, every application's history replayed, every hash recomputed from the
row read back (its canonical encoding) and compared. On this clean database that is the fast
pass (engine/audit.py): the database builds every row's canonical encoding (SQL, one row per
range of chains), Python hashes and compares. It uses both cores: the ranges are shared by two
connections in one snapshot (the second imports the first's on PostgreSQL), each driven by a
thread, while the main thread hashes, so the database's work (SQLite's in this process, without
the GIL; PostgreSQL's in its server processes) and Python's run at once. The row's note says
so. The baseline is a plain loop that chains SHA-256 over the very canonical bytes of those
rows, held in memory: the hashing alone, on one core.
"""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bench.db import (
    APPLICANT_COLUMNS,
    APPLICATION_COLUMNS,
    SEED_AT,
    Backend,
    Target,
    begin,
    bulk_insert,
    database,
    open_bench_app,
    plain,
    reset_sequences,
    stamp,
    tidy,
    track,
)
from bench.report import Goal, Row, row
from gongmo.states.lifecycle import APPLICATION as TABLE
from gongmo.workflow.core import chain
from gongmo.workflow.engine import audit

ROWS_PER_APPLICATION = 10
MOVES = (
    ("invite", None, "announcement"),
    ("submit", "announcement", "receipt"),
    ("start_review", "receipt", "preliminary_review"),
    ("pass_review", "preliminary_review", "written_evaluation"),
    *(("disqualify", "written_evaluation", "disqualified"), ("reinstate", "disqualified", "written_evaluation")) * 3,
)
GOAL = Goal("<=", 3)
AUDIT_SEED_COLUMNS = (*chain.COLUMNS["audit"], "hash")


def run(backend: Backend, n: int = 1_000_000) -> list[Row]:
    apps = max(1, n // ROWS_PER_APPLICATION)
    rows = apps * ROWS_PER_APPLICATION
    with database(backend) as target:
        app = open_bench_app(target)
        try:
            encoded = seed(target, app, apps)
            tidy(target)
            started = time.perf_counter()
            with audit.snapshot(app.db) as conn:
                report = audit.verify(conn, TABLE)
            gongmo_s = time.perf_counter() - started
        finally:
            app.db.dispose()
    assert report.clean, report.findings[:3]
    assert report.audit_rows == rows and report.applications == apps, (report.audit_rows, report.applications)
    baseline_s = baseline(encoded)
    return [
        row(
            "audit verify (replay + chains) vs SHA-256 loop",
            target.kind,
            rows,
            rows / gongmo_s,
            rows / baseline_s,
            "rows/s",
            Goal(">=", round(1 / GOAL.value, 3), label=f"within {GOAL.value:g}x"),
            gongmo_s=round(gongmo_s, 2),
            baseline_s=round(baseline_s, 2),
            slowdown=round(gongmo_s / baseline_s, 2),
            note=(
                "2 cores: two connections in one snapshot build the canonical text of ranges of"
                " chains (a thread each) while the main thread hashes; the baseline uses 1 core"
            ),
        )
    ]


def baseline(encoded: list[bytes]) -> float:
    """SHA-256 chained over the canonical bytes, one row after the other (no reading, no encoding)."""
    sha256 = hashlib.sha256
    prev = chain.genesis(chain.AUDIT, 0)
    started = time.perf_counter()
    for data in encoded:
        prev = sha256(prev + data).digest()
    return time.perf_counter() - started


def seed(target: Target, app: Any, apps: int) -> list[bytes]:
    """`apps` applications in written_evaluation, each with its chain of 10 audit rows and its head;
    returns every row's canonical bytes, in chain order."""
    t = track(app)
    with app.db.connect() as sa_conn:
        first = int(sa_conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM application")).scalar_one())
        first_applicant = int(sa_conn.execute(sa.text("SELECT coalesce(max(id), 0) FROM applicant")).scalar_one())
    created = stamp(target, t["announce_at"])
    encoded: list[bytes] = []
    audit_rows: list[tuple[Any, ...]] = []
    applications: list[tuple[Any, ...]] = []
    applicants: list[tuple[Any, ...]] = []
    for i in range(apps):
        app_id, applicant_id = first + 1 + i, first_applicant + 1 + i
        prev = chain.genesis(chain.AUDIT, app_id)
        for seq, (trigger, src, dest) in enumerate(MOVES, start=1):
            at = SEED_AT + timedelta(seconds=i, microseconds=seq)
            reason = "서류 보완 필요" if trigger == "disqualify" else None
            values = {"application_id": app_id, "at": at, "actor": "bench-office", "role": "admin"}
            values |= {"trigger": trigger, "from_state": src, "to_state": dest, "reason": reason, "detail": None}
            values["seq"] = seq
            data = chain.canonical("audit", values)
            prev = chain.link(prev, data)
            encoded.append(data)
            audit_rows.append(
                (*(stamp(target, at) if c == "at" else values[c] for c in chain.COLUMNS["audit"]), prev.hex())
            )
        applicants.append(
            (applicant_id, f"V{applicant_id:08d}", f"시험시{applicant_id}", "city", 100_000, "담당자",
             f"v{applicant_id}@bench.example", "ko")
        )  # fmt: skip
        applications.append(
            (app_id, t["id"], applicant_id, "written_evaluation", len(MOVES) + 1, f"V-{app_id:07d}", "계획",
             "climate_crisis", 8_000_000_000, 8_000_000_000, created, 3, created, created, len(MOVES), prev.hex())
        )  # fmt: skip
    with plain(target) as conn:
        begin(conn)
        bulk_insert(conn, target, "applicant", APPLICANT_COLUMNS, applicants)
        bulk_insert(conn, target, "application", (*APPLICATION_COLUMNS, "audit_seq", "audit_hash"), applications)
        bulk_insert(conn, target, "audit", AUDIT_SEED_COLUMNS, audit_rows)
        reset_sequences(conn, target, ("applicant", "application", "audit"))
        conn.commit()
    return encoded
