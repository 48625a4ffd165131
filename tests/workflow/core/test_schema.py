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


def test_0013_backfills_each_applicants_own_contact_and_goes_back_down(db_url: str) -> None:
    """applicant_contact starts with the applicant row's own e-mail (lower case) and contact name;
    application rows are untouched; the downgrade drops what it added."""
    from alembic import command

    engine = sa.create_engine(db_url)
    try:
        cfg = schema.alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0012")
            conn.execute(
                sa.text(
                    "INSERT INTO applicant (code, name, kind, population, contact_name, email, language)"
                    " VALUES ('41110', '수원시', 'city', 1190000, '김민준', ' Smart@Suwon.Example ', 'ko'),"
                    " ('36110', '세종시', 'city', 390000, '이서연', 'a@sejong.example', 'en')"
                )
            )
            command.upgrade(cfg, "0013")
            rows = conn.execute(
                sa.text(
                    "SELECT a.code, c.email, c.name FROM applicant_contact c JOIN applicant a ON a.id = c.applicant_id"
                    " ORDER BY a.code"
                )
            ).all()
            assert [tuple(r) for r in rows] == [
                ("36110", "a@sejong.example", "이서연"),
                ("41110", "smart@suwon.example", "김민준"),
            ]
            language = conn.execute(sa.text("SELECT count(*) FROM evaluator WHERE language = 'ko'")).scalar()
            assert language == 0  # the column exists (no evaluators yet)
            command.downgrade(cfg, "0012")
            assert "applicant_contact" not in sa.inspect(conn).get_table_names()
            assert "email" not in {c["name"] for c in sa.inspect(conn).get_columns("web_session")}
    finally:
        engine.dispose()
