"""the audit log: who read or changed which candidate

Revision ID: 0005
Revises: 0004
"""

from alembic import op

from shared.audit import create_audit_table, drop_audit_table

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_table(op)


def downgrade() -> None:
    drop_audit_table(op)
