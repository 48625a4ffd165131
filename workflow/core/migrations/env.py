"""Alembic environment: run with the connection gongmo hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import gongmo.workflow.core.models  # noqa: F401  (registers the tables)

config = context.config
target_metadata = SQLModel.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `gongmo init` (gongmo.workflow.core.schema.upgrade)")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
