"""plan documents (content-addressed, in chunks), answers to a track's questions, an audit row's detail

A plan comes with its documents (사업계획서, 예산서, annexes): each file is
stored once by its SHA-256 in `blob` and `blob_chunk` (1 MiB chunks), and a
`document` row records one version of one kind for one application, with the
name it was sent with, its type (from its bytes), size and hash. The answers to
a track's questions are a JSON object on the application. An audit row may
carry a detail (JSON), e.g. the receipt's document hashes.

On PostgreSQL a chunk's bytes are stored EXTERNAL: out of line, and never
compressed (PDF, HWP and the OOXML zips are compressed already, and a
compression attempt on each 1 MiB chunk would only cost time).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob",
        sa.Column("sha256", sa.String(length=64), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "blob_chunk",
        sa.Column("sha256", sa.String(length=64), sa.ForeignKey("blob.sha256"), primary_key=True),
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE blob_chunk ALTER COLUMN data SET STORAGE EXTERNAL")
    op.create_table(
        "document",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("application_id", sa.Integer(), sa.ForeignKey("application.id"), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("file_type", sa.String(length=8), nullable=False),
        sa.Column("sha256", sa.String(length=64), sa.ForeignKey("blob.sha256"), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.UniqueConstraint("application_id", "kind", "version", name="uq_document_version"),
    )
    op.create_index("ix_document_application", "document", ["application_id", "kind", "current"])
    with op.batch_alter_table("application") as batch_op:
        batch_op.add_column(sa.Column("answers", sa.Text(), nullable=True))
    with op.batch_alter_table("audit") as batch_op:
        batch_op.add_column(sa.Column("detail", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit") as batch_op:
        batch_op.drop_column("detail")
    with op.batch_alter_table("application") as batch_op:
        batch_op.drop_column("answers")
    op.drop_index("ix_document_application", table_name="document")
    op.drop_table("document")
    op.drop_table("blob_chunk")
    op.drop_table("blob")
