"""caseload: contact, open alerts, over-limit episodes

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "caseload",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("candidate_id", sa.String(length=36), nullable=False),
        sa.Column("jobcoach_id", sa.String(length=100), nullable=False),
        sa.Column("last_contact", sa.Date(), nullable=False),
        sa.Column("out_of_sight_since", sa.Date(), nullable=True),
        sa.Column("out_of_sight_episode", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "candidate_id"),
    )
    op.create_index("ix_caseload_jobcoach", "caseload", ["tenant", "jobcoach_id", "last_contact"])
    op.create_table(
        "caseload_alerts",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("alert_id", sa.String(length=64), nullable=False),
        sa.Column("candidate_id", sa.String(length=36), nullable=True),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "alert_id"),
    )
    op.create_index("ix_caseload_alerts_candidate", "caseload_alerts", ["tenant", "candidate_id"])
    op.create_table(
        "caseload_limits",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("jobcoach_id", sa.String(length=100), nullable=False),
        sa.Column("over_limit", sa.Boolean(), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "jobcoach_id"),
    )
    # Candidates known before this version enter the caseload as of their last profile event.
    candidates = sa.table(
        "candidates", sa.column("tenant"), sa.column("id"), sa.column("jobcoach_id"), sa.column("updated_at")
    )
    caseload = sa.table(
        "caseload",
        *(sa.column(name) for name in ("tenant", "candidate_id", "jobcoach_id", "last_contact")),
        *(sa.column(name) for name in ("out_of_sight_episode", "updated_at")),
    )
    if op.get_bind().dialect.name == "sqlite":
        day = sa.func.date(candidates.c.updated_at)
    else:
        day = sa.cast(candidates.c.updated_at, sa.Date)
    known = sa.select(
        candidates.c.tenant, candidates.c.id, candidates.c.jobcoach_id, day, sa.literal(0), candidates.c.updated_at
    )
    op.execute(caseload.insert().from_select([column.name for column in caseload.columns], known))


def downgrade() -> None:
    op.drop_table("caseload_limits")
    op.drop_index("ix_caseload_alerts_candidate", table_name="caseload_alerts")
    op.drop_table("caseload_alerts")
    op.drop_index("ix_caseload_jobcoach", table_name="caseload")
    op.drop_table("caseload")
