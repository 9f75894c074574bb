"""The candidate service's migrations build exactly the tables its code uses, and carry candidates of an
earlier revision forward (and back) unharmed."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.candidate.store import MIGRATIONS, metadata
from shared.db import alembic_config, upgrade, utcnow


def test_the_migrated_schema_is_the_one_the_code_declares(database_url):
    url = database_url("candidate")
    upgrade(MIGRATIONS, url)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            differences = compare_metadata(
                MigrationContext.configure(connection, opts={"compare_type": True}), metadata
            )
    finally:
        engine.dispose()

    assert differences == []


def test_candidates_of_the_previous_revision_survive_the_upgrade_and_a_downgrade(database_url):
    url = database_url("candidate")
    upgrade(MIGRATIONS, url, "0002")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO candidates (id, tenant, jobcoach_id, display_name, profile, created_at, updated_at)"
                    " VALUES ('c-1', 'regio', 'jc-1', 'Roos', '{\"ladder_step\": 3}', :now, :now)"
                ),
                {"now": utcnow()},
            )

        upgrade(MIGRATIONS, url)

        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT jobcoach_id FROM candidates")).scalar_one() == "jc-1"
            assert connection.execute(sa.text("SELECT count(*) FROM candidate_history")).scalar_one() == 0
            assert connection.execute(sa.text("SELECT count(*) FROM processed_events")).scalar_one() == 0

        command.downgrade(alembic_config(MIGRATIONS, url), "0002")
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT id FROM candidates")).scalar_one() == "c-1"
            tables = sa.inspect(connection).get_table_names()
            assert "candidate_history" not in tables
            assert "processed_events" not in tables
    finally:
        engine.dispose()
