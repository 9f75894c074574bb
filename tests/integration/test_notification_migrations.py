"""The notification service's migrations build exactly the tables its code uses, and carry a database of the
first revision forward without losing its alerts and channels."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.notification.store import MIGRATIONS, metadata
from shared.db import alembic_config, upgrade, utcnow


def test_the_migrated_schema_is_the_one_the_code_declares(database_url):
    url = database_url("notification")
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


def test_alerts_and_channels_of_the_first_revision_survive_the_upgrade_and_a_downgrade(database_url):
    url = database_url("notification")
    upgrade(MIGRATIONS, url, "0001")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    now = utcnow()
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO alerts (id, tenant, jobcoach_id, type, subject, episode, candidate_id, message,"
                    " details, source_event_id, created_at) VALUES ('a-1', 'regio', 'jc-1', 'placement_at_risk',"
                    " 'p-1', 1, 'c-1', 'Een plaatsing loopt risico.', '{}', 'e-1', :now)"
                ),
                {"now": now},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO channels (tenant, jobcoach_id, email, updated_at)"
                    " VALUES ('regio', 'jc-1', 'jc@example.org', :now)"
                ),
                {"now": now},
            )

        upgrade(MIGRATIONS, url)

        with engine.connect() as connection:
            alert = connection.execute(sa.text("SELECT audience, escalated_at FROM alerts")).one()
            digest = connection.execute(sa.text("SELECT digest FROM channels")).scalar_one()
            assert connection.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one() == 0
        assert tuple(alert) == ("jobcoach", None)
        assert not digest

        command.downgrade(alembic_config(MIGRATIONS, url), "0001")
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT id FROM alerts")).scalar_one() == "a-1"
            assert "outbox" not in sa.inspect(connection).get_table_names()
    finally:
        engine.dispose()


def test_operators_alerts_without_a_candidate_come_with_0005_and_go_with_its_downgrade(database_url):
    url = database_url("notification")
    upgrade(MIGRATIONS, url, "0004")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    insert = sa.text(
        "INSERT INTO alerts (id, tenant, jobcoach_id, type, subject, episode, candidate_id, message, details,"
        " source_event_id, created_at, audience) VALUES (:id, 'regio', 'jc-1', :type, :subject, 1, :candidate,"
        " 'Melding.', '{}', 'e-1', :now, :audience)"
    )
    try:
        with engine.begin() as connection:
            connection.execute(
                insert,
                {
                    "id": "a-1",
                    "type": "placement_at_risk",
                    "subject": "p-1",
                    "candidate": "c-1",
                    "now": utcnow(),
                    "audience": "jobcoach",
                },
            )

        upgrade(MIGRATIONS, url)
        with engine.begin() as connection:
            connection.execute(
                insert,
                {
                    "id": "a-2",
                    "type": "caseload_over_limit",
                    "subject": "jc-1",
                    "candidate": None,
                    "now": utcnow(),
                    "audience": "operators",
                },
            )
            connection.execute(
                sa.text(
                    "INSERT INTO candidate_jobcoaches (tenant, candidate_id, jobcoach_id, updated_at)"
                    " VALUES ('regio', 'c-1', 'jc-1', :now)"
                ),
                {"now": utcnow()},
            )

        command.downgrade(alembic_config(MIGRATIONS, url), "0004")
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT id FROM alerts")).scalars().all() == ["a-1"]
            assert "candidate_jobcoaches" not in sa.inspect(connection).get_table_names()
            [candidate] = [c for c in sa.inspect(connection).get_columns("alerts") if c["name"] == "candidate_id"]
            assert candidate["nullable"] is False
    finally:
        engine.dispose()
