"""the track/state index carries the id

A bulk move walks a track's applications in one state by id, a chunk at a
time, each chunk starting after the last id of the one before (keyset). With
the id in the index, each chunk starts where the last one stopped; without
it, PostgreSQL re-read every index entry the earlier chunks had left dead
(the moved rows' old state), so a chunk took longer the further the move got.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("application") as batch_op:
        batch_op.drop_index("ix_application_track_state")
        batch_op.create_index("ix_application_track_state", ["track_id", "state", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("application") as batch_op:
        batch_op.drop_index("ix_application_track_state")
        batch_op.create_index("ix_application_track_state", ["track_id", "state"], unique=False)
