"""the audit log: who read or changed which candidate; a version counter on placements for ETag and If-Match

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

from shared.audit import create_audit_table, drop_audit_table

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_table(op)
    with op.batch_alter_table("placements") as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("placements") as batch_op:
        batch_op.drop_column("version")
    drop_audit_table(op)
