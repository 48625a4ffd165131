"""the results' embargo on a track, and which notice superseded an outbox row

A track's results are under embargo from the moment the first result notice
is held (the selection's confirmation) until the office has released them
all: every reader (API, CLI, metrics) shows the applicants and evaluators the
stage before the result while it holds.

An outbox row superseded by a newer notice records which one. A row that was
already being sent keeps its state and the mailer settles it: not sent if it
had not gone yet, or sent with the note that it was superseded on the wire.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("track") as batch_op:
        batch_op.add_column(sa.Column("results_embargoed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("results_released_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.add_column(sa.Column("superseded_by", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_column("superseded_by")
    with op.batch_alter_table("track") as batch_op:
        batch_op.drop_column("results_released_at")
        batch_op.drop_column("results_embargoed_at")
