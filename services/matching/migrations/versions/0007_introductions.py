"""introductions and jobcoaches' work e-mail

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "introductions",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("vacancy_id", sa.String(length=36), nullable=False),
        sa.Column("candidate_id", sa.String(length=36), nullable=False),
        sa.Column("jobcoach_id", sa.String(length=100), nullable=False),
        sa.Column("employer_id", sa.String(length=100), nullable=False),
        sa.Column("profile_ref", sa.String(length=32), nullable=False),
        sa.Column("vacancy_title", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("tenant", "id"),
    )
    op.create_index("ix_introductions_jobcoach", "introductions", ["tenant", "jobcoach_id", "created_at"])
    op.create_index("ix_introductions_employer", "introductions", ["tenant", "employer_id", "created_at"])
    op.create_index("ix_introductions_candidate", "introductions", ["tenant", "candidate_id"])
    op.create_index(
        "uq_introductions_one_pending",
        "introductions",
        ["tenant", "vacancy_id", "candidate_id"],
        unique=True,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "jobcoach_work_email",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("jobcoach_id", sa.String(length=100), nullable=False),
        sa.Column("work_email", sa.String(length=320), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "jobcoach_id"),
    )


def downgrade() -> None:
    op.drop_table("jobcoach_work_email")
    op.drop_index("uq_introductions_one_pending", table_name="introductions")
    op.drop_index("ix_introductions_candidate", table_name="introductions")
    op.drop_index("ix_introductions_employer", table_name="introductions")
    op.drop_index("ix_introductions_jobcoach", table_name="introductions")
    op.drop_table("introductions")
