"""erased candidates' pseudonymous ids, so that a late alert about them leaves no row

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "caseload_erased",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("candidate_id", sa.String(36), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("caseload_erased")
