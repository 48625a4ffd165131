"""Engines (workflow/db.py): what each backend's connections are set up with."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow.db import custom_plans, make_engine, read, write


@pytest.mark.postgres
def test_custom_plans_hold_for_one_transaction_on_postgres(pg_schema_url: str) -> None:
    """A one-move transaction plans each statement with its values (a generic plan kept from when a
    table was small stays a scan as it grows); the next transaction, a bulk one, keeps the default."""
    engine = make_engine(pg_schema_url)
    try:
        with write(engine) as conn:
            custom_plans(conn)
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar_one() == "force_custom_plan"
        with read(engine) as conn:
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar_one() == "auto"
    finally:
        engine.dispose()


def test_custom_plans_is_nothing_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/gongmo.db")
    try:
        with write(engine) as conn:
            custom_plans(conn)  # no statement: SQLite plans each statement anyway
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
    finally:
        engine.dispose()


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/gongmo.db")
    try:
        with read(engine) as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    finally:
        engine.dispose()
