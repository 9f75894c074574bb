"""Database errors on the real broker and database: a database that turns read-only for a while (as in a
failover) delays events but loses and dead-letters none; a refused value never reaches a log line or a
dead-letter header."""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from shared.db import Database
from shared.events import encode_event, new_event
from shared.logging import JsonFormatter
from shared.topics import Topic
from tests.conftest import SERVER_URL, USES_POSTGRES
from tests.integration.test_consumer import Harness
from tests.kafka_helpers import fresh_topic, read_all

pytestmark = pytest.mark.kafka


def _closed(tenant: str, subject: str) -> bytes:
    return encode_event(
        new_event(
            "nl.werkbrug.vacancy.closed",
            tenant=tenant,
            subject=subject,
            data={"employer_id": "e", "status": "closed"},
            source="test",
        )
    )


def _wait_for(condition, timeout_s: float) -> bool:
    until = time.monotonic() + timeout_s
    while time.monotonic() < until:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.fixture
def own_database():
    """A PostgreSQL database of the test's own, so that making it read-only touches nobody else's."""
    name = f"wbt_ro_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(SERVER_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def read_only(on: bool) -> None:
        # As a failover does: the server drops the connections, and the ones that come back find a
        # database that refuses writes (SQLSTATE 25006) until it is writable again.
        setting = "SET default_transaction_read_only = on" if on else "RESET default_transaction_read_only"
        with admin.connect() as connection:
            connection.execute(sa.text(f'ALTER DATABASE "{name}" {setting}'))
            connection.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )

    yield sa.engine.make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False), read_only
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.skipif(not USES_POSTGRES, reason="read-only transactions are PostgreSQL's; SQLite has no such mode")
def test_a_database_read_only_for_a_while_delays_events_and_dead_letters_none(
    own_database, bootstrap_servers, tenant, caplog
):
    url, read_only = own_database
    harness = Harness(Database(url), bootstrap_servers, fresh_topic(bootstrap_servers))
    consumer = harness.consumer()
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        for n in range(3):
            harness.send(f"{tenant}/before-{n}", _closed(tenant, f"before-{n}"))
        assert _wait_for(lambda: harness.effect_count() == 3, 60)

        with caplog.at_level(logging.WARNING):
            read_only(True)
            for n in range(10):
                harness.send(f"{tenant}/during-{n}", _closed(tenant, f"during-{n}"))
            time.sleep(4)
            read_only(False)
            refused = [r for r in caplog.records if r.getMessage().startswith("database unavailable")]
            assert refused, "the consumer met the read-only database"
            assert any("25006" in str(r.ctx.get("error")) for r in refused), [r.ctx for r in refused]
            assert harness.effect_count() == 3, "nothing was written while the database was read-only"

        assert _wait_for(lambda: harness.effect_count() == 13, 60), harness.effect_count()
    finally:
        stop.set()
        thread.join(timeout=30)
        harness.db.dispose()
        harness.close()
    assert read_all(bootstrap_servers, str(Topic.DEAD_LETTERS), key_prefix=f"{tenant}/".encode()) == []


def test_a_refused_value_reaches_no_log_line_and_no_dead_letter_header(database_url, bootstrap_servers, tenant, caplog):
    secret = f"Jansen-{uuid.uuid4().hex[:8]}-Geheim"
    db = Database(database_url("consumer"))
    names = sa.Table("names", sa.MetaData(), sa.Column("name", sa.String(100), primary_key=True))
    names.create(db.engine)
    with db.session() as session:
        session.execute(names.insert().values(name=secret))

    harness = Harness(db, bootstrap_servers, fresh_topic(bootstrap_servers))

    def insert_the_same_name_again(session, _event) -> None:
        # A unique violation: PostgreSQL's message quotes the value, and the statement carries it.
        session.execute(names.insert().values(name=secret))

    harness.handler = insert_the_same_name_again
    key = f"{tenant}/v-secret"
    harness.send(key, _closed(tenant, "v-secret"))
    consumer = harness.consumer()
    try:
        with caplog.at_level(logging.DEBUG):
            harness.drain(consumer, 1)
            try:
                with db.session() as session:
                    session.execute(names.insert().values(name=secret))
            except sa.exc.IntegrityError:
                # As a loop that dies of it would log it.
                logging.getLogger("tests").exception("insert failed")
    finally:
        consumer.consumer.close()
        harness.close()

    formatter = JsonFormatter("test")
    lines = [formatter.format(record) for record in caplog.records]
    assert any("IntegrityError" in line for line in lines), "the error was logged"
    assert [line for line in lines if secret in line] == []
    [letter] = read_all(bootstrap_servers, str(Topic.DEAD_LETTERS), key_prefix=key.encode())
    headers = dict(letter.headers)
    assert secret.encode() not in b"".join(headers.values())
    assert headers["dlq.exception.class"] == b"IntegrityError"
    assert headers["dlq.exception.message"].startswith(b"IntegrityError (")
