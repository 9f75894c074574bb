"""the W3C trace context of the event an alert came from, sent on with its webhook

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
    # Nullable: alerts stored before, and alerts of events that carried no trace, have none.
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("traceparent", sa.String(length=55), nullable=True))
        batch_op.add_column(sa.Column("tracestate", sa.String(length=512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("tracestate")
        batch_op.drop_column("traceparent")
