"""CompetentNL labels: occupations and skills with their synonyms, loaded by an operator as extra concepts

Revision ID: 0012_competentnl_labels
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_competentnl_labels"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "competentnl_labels",
        sa.Column("uri", sa.String(length=255), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("preferred_label", sa.String(length=500), nullable=False),
        sa.Column("alt_labels", sa.JSON(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("uri", "language"),
    )


def downgrade() -> None:
    op.drop_table("competentnl_labels")
