"""change sequence, proposal fingerprints, ranking log, exposure counts, rerankers, ESCO labels

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows written before the sequence existed get 0: a fresh index reads them all anyway.
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.create_index("ix_matching_candidates_seq", ["tenant", "seq"], unique=False)
    with op.batch_alter_table("vacancies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), server_default="0", nullable=False))
        batch_op.create_index("ix_matching_vacancies_seq", ["tenant", "seq"], unique=False)

    op.create_table(
        "matching_changes",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("pruned_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("tenant"),
    )
    op.create_table(
        "matching_removals",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("entity_hash", sa.String(length=64), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "seq"),
    )

    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fingerprint", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("components", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("ranking_version", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "ranking_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("served_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("direction", sa.String(length=30), nullable=False),
        sa.Column("subject_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("ranking_version", sa.String(length=120), nullable=False),
        sa.Column("model_version", sa.String(length=40), nullable=False),
        sa.Column("weights_version", sa.String(length=20), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("reranker_version", sa.String(length=80), nullable=True),
        sa.Column("result_count", sa.Integer(), nullable=False),
        sa.Column("results", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ranking_log", schema=None) as batch_op:
        batch_op.create_index("ix_ranking_log_tenant", ["tenant", "served_at"], unique=False)

    op.create_table(
        "exposure_counts",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("ladder_step", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("target_group", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "ladder_step", "target_group", "kind"),
    )
    op.create_table(
        "reranker_models",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.String(length=80), nullable=False),
        sa.Column("model", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("tenant", "number"),
    )
    op.create_table(
        "esco_labels",
        sa.Column("uri", sa.String(length=255), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("preferred_label", sa.String(length=500), nullable=False),
        sa.Column("alt_labels", sa.JSON(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("uri", "language"),
    )


def downgrade() -> None:
    op.drop_table("esco_labels")
    op.drop_table("reranker_models")
    op.drop_table("exposure_counts")
    with op.batch_alter_table("ranking_log", schema=None) as batch_op:
        batch_op.drop_index("ix_ranking_log_tenant")
    op.drop_table("ranking_log")
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_column("updated_at")
        batch_op.drop_column("ranking_version")
        batch_op.drop_column("components")
        batch_op.drop_column("fingerprint")
    op.drop_table("matching_removals")
    op.drop_table("matching_changes")
    with op.batch_alter_table("vacancies", schema=None) as batch_op:
        batch_op.drop_index("ix_matching_vacancies_seq")
        batch_op.drop_column("seq")
    with op.batch_alter_table("candidates", schema=None) as batch_op:
        batch_op.drop_index("ix_matching_candidates_seq")
        batch_op.drop_column("seq")
