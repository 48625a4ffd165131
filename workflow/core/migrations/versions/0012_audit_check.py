"""audit verify runs: when the audit log was last checked, and what was found

Each `gongmo audit verify` (and the console's "verify now" on the health page) stores one row:
when, by whom, how many applications, audit rows, event rows and chains it walked, whether it was
clean, how many findings and the first one. The health page shows the last.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_check",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=200), nullable=False),
        sa.Column("clean", sa.Boolean(), nullable=False),
        sa.Column("applications", sa.Integer(), nullable=False),
        sa.Column("audit_rows", sa.BigInteger(), nullable=False),
        sa.Column("event_rows", sa.BigInteger(), nullable=False),
        sa.Column("chains", sa.Integer(), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("first_finding", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("audit_check")
