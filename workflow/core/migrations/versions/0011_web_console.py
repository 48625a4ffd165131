"""the web console: staff accounts, one-time sign-in links, server-side sessions, sign-in attempts

Office staff sign in to the console with a link e-mailed to them (valid 15 minutes, used once);
a signed-in browser is a `web_session` row. Only the SHA-256 of a link's token and of a session
id is stored. `signin_attempt` keeps the requests and link uses, so failed sign-ins can be rate
limited per address and per client. The portals (evaluators, applicants) use the same tables.

A sign-in link's mail goes through the outbox like any notice, but it belongs to no application:
outbox.application_id becomes nullable (a batch copy of the table on SQLite).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(length=200), nullable=False, unique=True),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("disabled_at", TZ, nullable=True),
    )
    op.create_table(
        "signin_link",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("token_sha256", sa.String(length=64), nullable=False, unique=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("used_at", TZ, nullable=True),
    )
    op.create_table(
        "web_session",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("session_sha256", sa.String(length=64), nullable=False, unique=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_seen_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
        sa.Column("client", sa.String(length=64), nullable=True),
    )
    op.create_table(
        "signin_attempt",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_signin_attempt_email_at", "signin_attempt", ["email", "at"])
    op.create_index("ix_signin_attempt_client_at", "signin_attempt", ["client", "at"])
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("application_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    # The notices of no application (sign-in links) cannot stay in a column that requires one.
    op.execute(sa.text("DELETE FROM outbox WHERE application_id IS NULL"))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("application_id", existing_type=sa.Integer(), nullable=False)
    op.drop_index("ix_signin_attempt_client_at", table_name="signin_attempt")
    op.drop_index("ix_signin_attempt_email_at", table_name="signin_attempt")
    for name in ("signin_attempt", "web_session", "signin_link", "staff"):
        op.drop_table(name)
