"""operators' alerts without a candidate, candidates' jobcoaches

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A caseload over the limit is about a jobcoach, not a candidate.
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.alter_column("candidate_id", existing_type=sa.String(length=36), nullable=True)

    op.create_table(
        "candidate_jobcoaches",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("candidate_id", sa.String(length=36), nullable=False),
        sa.Column("jobcoach_id", sa.String(length=100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "candidate_id"),
    )


def downgrade() -> None:
    op.drop_table("candidate_jobcoaches")
    # Alerts without a candidate cannot go back to a table that demands one.
    op.execute("DELETE FROM alerts WHERE candidate_id IS NULL")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.alter_column("candidate_id", existing_type=sa.String(length=36), nullable=False)
