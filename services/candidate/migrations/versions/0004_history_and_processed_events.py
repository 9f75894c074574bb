"""candidate history and processed events

Revision ID: 0004
Revises: 0003

The history of each candidate's consent, ladder steps, answered introductions and handovers; and the
event ids the worker's consumer has handled, now that it consumes placement and match events.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "candidate_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("candidate_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("ref", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant", "candidate_id", "kind", "ref", name="uq_candidate_history_once_per_cause"),
    )
    with op.batch_alter_table("candidate_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_candidate_history_candidate", ["tenant", "candidate_id", "kind", "recorded_at"], unique=False
        )

    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("event_type", sa.String(length=200), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )


def downgrade() -> None:
    op.drop_table("processed_events")
    with op.batch_alter_table("candidate_history", schema=None) as batch_op:
        batch_op.drop_index("ix_candidate_history_candidate")

    op.drop_table("candidate_history")
