"""a track's optional review_starts milestone

The 2022 release holds the preliminary review on 2022-01-03..07, days after
the receipt closed on 2021-12-29: received plans wait in receipt until the
review opens. NULL (every track before this revision) opens the review at the
receipt close, as before.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("track") as batch_op:
        batch_op.add_column(sa.Column("review_starts", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("track") as batch_op:
        batch_op.drop_column("review_starts")
