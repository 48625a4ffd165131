"""Engines (workflow/db.py): what each backend's connections are set up with."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow.db import make_engine, read, write


@pytest.mark.postgres
def test_postgres_connections_plan_each_statement_with_its_values(pg_schema_url: str) -> None:
    """A generic plan kept from when a table was small would stay a sequential scan as it grows."""
    engine = make_engine(pg_schema_url)
    try:
        with write(engine) as conn:
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar_one() == "force_custom_plan"
        engine.dispose()  # a new connection is set up the same way
        with read(engine) as conn:
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar_one() == "force_custom_plan"
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
