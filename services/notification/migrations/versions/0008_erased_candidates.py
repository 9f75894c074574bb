"""erased candidates' pseudonymous ids, so that an alert about them arriving late leaves no row

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
        "erased_candidates",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("candidate_id", sa.String(36), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("erased_candidates")
