"""The transactional outbox against the real broker and database."""

from __future__ import annotations

import json
import logging

import pytest
import sqlalchemy as sa

from shared.db import Database
from shared.events import decode_event, new_event
from shared.kafka import make_producer
from shared.outbox import Outbox, OutboxRelay, outbox_table
from shared.topics import Topic
from tests.conftest import USES_POSTGRES
from tests.kafka_helpers import fresh_topic, read_all

pytestmark = pytest.mark.kafka


@pytest.fixture
def outbox_db(database_url) -> tuple[Database, Outbox]:
    metadata = sa.MetaData()
    outbox = Outbox(outbox_table(metadata))
    db = Database(database_url("outbox"))
    metadata.create_all(db.engine)
    return db, outbox


def _insert_raw(db: Database, outbox: Outbox, topic: str, key: str, payload: str | None) -> None:
    with db.session() as session:
        session.execute(
            outbox.table.insert().values(
                topic=topic, message_key=key, payload=payload, created_at=sa.func.current_timestamp()
            )
        )


def _vacancy_closed(tenant: str, subject: str) -> dict:
    return new_event(
        "nl.werkbrug.vacancy.closed",
        tenant=tenant,
        subject=subject,
        data={"employer_id": "emp-1", "status": "closed"},
        source="test",
    )


def test_publishes_pending_events_in_order_with_their_keys_and_marks_them(outbox_db, bootstrap_servers, tenant):
    db, outbox = outbox_db
    topic = fresh_topic(bootstrap_servers)
    for index in range(5):
        _insert_raw(db, outbox, topic, f"{tenant}/v1", json.dumps({"n": index}))
    _insert_raw(db, outbox, topic, f"{tenant}/v1", None)
    producer = make_producer(bootstrap_servers, "test-relay")
    try:
        relay = OutboxRelay(db, outbox, producer)
        assert relay.publish_batch() == 6
        assert relay.publish_batch() == 0
    finally:
        producer.close()

    messages = read_all(bootstrap_servers, topic)
    assert [m.key for m in messages] == [f"{tenant}/v1".encode()] * 6
    assert [json.loads(m.value)["n"] for m in messages[:5]] == [0, 1, 2, 3, 4]
    assert messages[5].value is None, "a NULL payload is published as a tombstone"
    with db.session() as session:
        assert outbox.pending_count(session) == 0


def test_an_event_added_in_a_rolled_back_transaction_is_never_published(outbox_db, tenant):
    db, outbox = outbox_db
    with pytest.raises(RuntimeError), db.session() as session:
        outbox.add(session, _vacancy_closed(tenant, "v-rolled-back"))
        raise RuntimeError("the business change failed")
    with db.session() as session:
        assert outbox.pending_count(session) == 0


def test_events_wait_in_the_outbox_while_kafka_is_down_and_go_out_once_it_is_back(
    outbox_db, kafka_broker, bootstrap_servers, tenant
):
    db, outbox = outbox_db
    subjects = [f"v-{n}" for n in range(3)]
    with db.session() as session:
        for subject in subjects:
            outbox.add(session, _vacancy_closed(tenant, subject))
    producer = make_producer(bootstrap_servers, "test-relay-outage")
    relay = OutboxRelay(db, outbox, producer)
    try:
        kafka_broker.kill()
        with pytest.raises(Exception):  # noqa: B017 - any client error will do: Kafka is gone
            relay.publish_batch(send_timeout_s=3)
        with db.session() as session:
            assert outbox.pending_count(session) == 3, "nothing is marked sent that Kafka did not take"
        kafka_broker.restart(timeout=120)
        published = 0
        for _ in range(20):
            try:
                published += relay.publish_batch(send_timeout_s=10)
            except Exception:  # noqa: S112 - the client reconnects on the next attempt
                continue
            if published == 3:
                break
    finally:
        producer.close()
    assert published == 3
    messages = read_all(bootstrap_servers, str(Topic.VACANCY_EVENTS), key_prefix=f"{tenant}/".encode())
    subjects_seen = [decode_event(m.value).subject for m in messages]
    assert sorted(set(subjects_seen)) == subjects


@pytest.mark.skipif(USES_POSTGRES, reason="PostgreSQL relays take an advisory lock; this is SQLite's")
def test_a_second_sqlite_relay_waits_while_the_first_publishes_and_says_why(
    outbox_db, bootstrap_servers, tenant, caplog
):
    db, outbox = outbox_db
    topic = fresh_topic(bootstrap_servers)
    for index in range(3):
        _insert_raw(db, outbox, topic, f"{tenant}/v1", json.dumps({"n": index}))
    producer = make_producer(bootstrap_servers, "test-relay")
    try:
        first = OutboxRelay(db, outbox, producer)
        # Another process's relay on the same file: its own engine, its own lock file handle.
        second = OutboxRelay(Database(str(db.engine.url)), outbox, producer)
        with caplog.at_level(logging.WARNING), first._sqlite_turn() as mine:
            assert mine
            assert second.publish_batch() == 0, "the second relay does not publish while the first may"
        assert any("two outbox relays can publish the same rows" in r.getMessage() for r in caplog.records)
        assert second.publish_batch() == 3
        assert first.publish_batch() == 0
    finally:
        producer.close()
    assert [json.loads(m.value)["n"] for m in read_all(bootstrap_servers, topic)] == [0, 1, 2]
