"""the portals' sign-in: every contact of an applicant, the person of a session, an evaluator's language

- `applicant_contact`: each person at a local government who signs in to its applicant pages by
  an e-mailed link (the applicant row's own e-mail, backfilled here, and any more named by the CSV's
  `contacts` column or `gongmo applicants contact add`). Application rows are untouched.
- `web_session.email`: the address a session was opened for (the contact of an applicant's
  session, named in the audit rows of what it does).
- `evaluator.language`: the language of the evaluator's portal and sign-in mail (ko unless the
  committee import says en).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "applicant_contact",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("applicant_id", sa.Integer(), sa.ForeignKey("applicant.id"), nullable=False),
        sa.Column("email", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.UniqueConstraint("applicant_id", "email", name="uq_applicant_contact"),
    )
    op.create_index("ix_applicant_contact_email", "applicant_contact", ["email"])
    op.execute(
        sa.text(
            "INSERT INTO applicant_contact (applicant_id, email, name)"
            " SELECT id, lower(trim(email)), contact_name FROM applicant ORDER BY id"
        )
    )
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=200), nullable=True))
    with op.batch_alter_table("evaluator", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=2), nullable=False, server_default="ko"))


def downgrade() -> None:
    with op.batch_alter_table("evaluator", schema=None) as batch_op:
        batch_op.drop_column("language")
    with op.batch_alter_table("web_session", schema=None) as batch_op:
        batch_op.drop_column("email")
    op.drop_index("ix_applicant_contact_email", table_name="applicant_contact")
    op.drop_table("applicant_contact")
