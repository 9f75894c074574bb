"""placements, check-ins, risk models, insight rows

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_acknowledgements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("alert_type", sa.String(length=40), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alert_acknowledgements", schema=None) as batch_op:
        batch_op.create_index("ix_alert_acknowledgements_tenant", ["tenant", "alert_type"], unique=False)

    op.create_table(
        "checkins",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("placement_id", sa.String(length=36), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("wellbeing", sa.Integer(), nullable=False),
        sa.Column("hours_worked", sa.Float(), nullable=False),
        sa.Column("absence_days", sa.Integer(), nullable=False),
        sa.Column("signals", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "id"),
        sa.UniqueConstraint("tenant", "placement_id", "date", name="uq_checkins_one_per_day"),
    )
    op.create_table(
        "placement_alert_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("alert_type", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("placement_alert_log", schema=None) as batch_op:
        batch_op.create_index("ix_placement_alert_log_tenant", ["tenant", "alert_type"], unique=False)

    op.create_table(
        "placements",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("candidate_id", sa.String(length=36), nullable=False),
        sa.Column("vacancy_id", sa.String(length=36), nullable=False),
        sa.Column("jobcoach_id", sa.String(length=100), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("agreed_hours", sa.Integer(), nullable=False),
        sa.Column("supports_agreed", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("outcome", sa.String(length=30), nullable=True),
        sa.Column("end_reason", sa.String(length=500), nullable=True),
        sa.Column("checkin_count", sa.Integer(), nullable=False),
        sa.Column("last_checkin", sa.Date(), nullable=True),
        sa.Column("risk_score", sa.Float(), nullable=True),
        sa.Column("risk_reasons", sa.JSON(), nullable=True),
        sa.Column("risk_features", sa.JSON(), nullable=True),
        sa.Column("risk_model_version", sa.String(length=80), nullable=True),
        sa.Column("risk_scored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("at_risk", sa.Boolean(), nullable=False),
        sa.Column("risk_episode", sa.Integer(), nullable=False),
        sa.Column("overdue_since", sa.Date(), nullable=True),
        sa.Column("overdue_episode", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "id"),
    )
    with op.batch_alter_table("placements", schema=None) as batch_op:
        batch_op.create_index("ix_placements_candidate", ["tenant", "candidate_id"], unique=False)
        batch_op.create_index("ix_placements_jobcoach", ["tenant", "jobcoach_id", "status", "created_at"], unique=False)
        batch_op.create_index("ix_placements_status", ["tenant", "status"], unique=False)

    op.create_table(
        "risk_models",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.String(length=80), nullable=False),
        sa.Column("model", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant", "number"),
    )
    op.create_table(
        "risk_training_rows",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("broke_down", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("risk_training_rows", schema=None) as batch_op:
        batch_op.create_index("ix_risk_training_rows_tenant", ["tenant"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("risk_training_rows", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_training_rows_tenant")

    op.drop_table("risk_training_rows")
    op.drop_table("risk_models")
    with op.batch_alter_table("placements", schema=None) as batch_op:
        batch_op.drop_index("ix_placements_status")
        batch_op.drop_index("ix_placements_jobcoach")
        batch_op.drop_index("ix_placements_candidate")

    op.drop_table("placements")
    with op.batch_alter_table("placement_alert_log", schema=None) as batch_op:
        batch_op.drop_index("ix_placement_alert_log_tenant")

    op.drop_table("placement_alert_log")
    op.drop_table("checkins")
    with op.batch_alter_table("alert_acknowledgements", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_acknowledgements_tenant")

    op.drop_table("alert_acknowledgements")
