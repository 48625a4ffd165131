"""The migrations build exactly the tables the models declare, on both backends."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from gongmo.workflow.core import schema


def test_migrations_match_the_models(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    try:
        before, after = schema.upgrade(engine)
        assert before is None and after == schema.upgrade(engine)[1]
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, SQLModel.metadata) == []
    finally:
        engine.dispose()


def test_upgrade_twice_changes_nothing(db_url: str) -> None:
    engine = sa.create_engine(db_url)
    try:
        schema.upgrade(engine)
        head = schema.current(engine)
        assert schema.upgrade(engine) == (head, head)
    finally:
        engine.dispose()
