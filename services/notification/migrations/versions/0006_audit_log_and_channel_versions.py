"""the audit log: who read or changed which candidate; a version counter on channels for ETag and If-Match

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from shared.audit import create_audit_table, drop_audit_table

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_table(op)
    with op.batch_alter_table("channels") as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("channels") as batch_op:
        batch_op.drop_column("version")
    drop_audit_table(op)
