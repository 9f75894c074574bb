"""the path up the ladder: learning goals, planned end, supervisor and buddy; goal progress per check-in

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("placements", sa.Column("learning_goals", sa.JSON(), nullable=True))
    op.add_column("placements", sa.Column("planned_end_date", sa.Date(), nullable=True))
    op.add_column("placements", sa.Column("supervisor_arranged", sa.Boolean(), nullable=True))
    op.add_column("placements", sa.Column("buddy_arranged", sa.Boolean(), nullable=True))
    op.add_column("checkins", sa.Column("goal_progress", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("checkins") as batch:
        batch.drop_column("goal_progress")
    with op.batch_alter_table("placements") as batch:
        for name in ("buddy_arranged", "supervisor_arranged", "planned_end_date", "learning_goals"):
            batch.drop_column(name)
