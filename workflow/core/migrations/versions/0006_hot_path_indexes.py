"""indexes for the hot paths: a bulk move's chunks, a move's superseded notices

A bulk move walks a track's applications in one state by id, a chunk at a
time, each chunk starting after the last id of the one before (keyset). With
the id in the index, each chunk starts where the last one stopped; without
it, PostgreSQL re-read every index entry the earlier chunks had left dead
(the moved rows' old state), so a chunk took longer the further the move got.

A move cancels its application's unsent notices of the same family. On the
index of application_id alone, PostgreSQL with stale statistics (after a bulk
insert of notices) ANDed it with the state index and read every pending
notice of the database, so each move took longer the more notices were
queued; (application_id, notice) answers the query by itself.

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
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_index("ix_outbox_application_id")
        batch_op.create_index("ix_outbox_application_notice", ["application_id", "notice"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_index("ix_outbox_application_notice")
        batch_op.create_index("ix_outbox_application_id", ["application_id"], unique=False)
    with op.batch_alter_table("application") as batch_op:
        batch_op.drop_index("ix_application_track_state")
        batch_op.create_index("ix_application_track_state", ["track_id", "state"], unique=False)
