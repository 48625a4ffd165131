"""the implementation plan's file: each kickoff_plan round keeps the file it was filed with

- `kickoff_plan.sha256` (the blob store's file, content-addressed as the plan documents are),
  `file_name`, `size` and `file_type` (detected from the bytes): all nullable, since a plan
  received on paper (`gongmo kickoff receive` without --file) has no file, nor have older rounds.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kickoff_plan", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("file_name", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("size", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("file_type", sa.String(length=8), nullable=True))
        batch_op.create_foreign_key("fk_kickoff_plan_sha256_blob", "blob", ["sha256"], ["sha256"])


def downgrade() -> None:
    with op.batch_alter_table("kickoff_plan", schema=None) as batch_op:
        batch_op.drop_constraint("fk_kickoff_plan_sha256_blob", type_="foreignkey")
        batch_op.drop_column("file_type")
        batch_op.drop_column("size")
        batch_op.drop_column("file_name")
        batch_op.drop_column("sha256")
