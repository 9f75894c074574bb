"""The shared consumer loop against the real broker and database: dedup, dead letters, commits."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from kafka.errors import KafkaError
from sqlalchemy.exc import OperationalError

from shared.consumer import EventConsumer, processed_events_table
from shared.db import Database, utcnow
from shared.events import EventError, EventType, encode_event, new_event
from shared.kafka import make_consumer, make_producer
from shared.topics import Topic
from tests.kafka_helpers import fresh_topic, read_all

pytestmark = pytest.mark.kafka


class Harness:
    """A consumer on a topic of the test's own, whose handler records its effect in a table."""

    def __init__(self, db: Database, bootstrap: str, topic: str, handler_behaviour=None) -> None:
        metadata = sa.MetaData()
        self.processed = processed_events_table(metadata)
        self.effects = sa.Table(
            "effects", metadata, sa.Column("n", sa.Integer, primary_key=True), sa.Column("event_id", sa.String(36))
        )
        metadata.create_all(db.engine)
        self.db, self.bootstrap, self.topic = db, bootstrap, topic
        self.group = f"test-group-{uuid.uuid4().hex[:8]}"
        self.behaviour = handler_behaviour or (lambda event: None)
        self.producer = make_producer(bootstrap, "test-producer")

    def handler(self, session, event) -> None:
        self.behaviour(event)
        session.execute(self.effects.insert().values(event_id=event.id))

    def send(self, key: str, value: bytes | None) -> None:
        self.producer.send(self.topic, key=key.encode(), value=value).get(30)

    def consumer(self, **options) -> EventConsumer:
        kafka_consumer = make_consumer(self.bootstrap, self.group, "test-consumer")
        kafka_consumer.subscribe([self.topic])
        return EventConsumer(
            db=self.db,
            processed_events=self.processed,
            consumer=kafka_consumer,
            dead_letter_producer=self.producer,
            group_id=self.group,
            handlers={EventType.VACANCY_CLOSED: [self.handler]},
            retry_backoff_s=0.01,
            **options,
        )

    def drain(self, consumer: EventConsumer, expected: int, rounds: int = 60) -> int:
        taken = 0
        for _ in range(rounds):
            taken += consumer.poll_once(timeout_ms=500)
            if taken >= expected:
                break
        return taken

    def effect_count(self) -> int:
        with self.db.session() as session:
            return session.execute(sa.select(sa.func.count()).select_from(self.effects)).scalar_one()

    def close(self) -> None:
        self.producer.close()


@pytest.fixture
def harness(database_url, bootstrap_servers):
    made = []

    def build(behaviour=None, partitions: int = 1) -> Harness:
        topic = fresh_topic(bootstrap_servers, partitions)
        h = Harness(Database(database_url("consumer")), bootstrap_servers, topic, behaviour)
        made.append(h)
        return h

    yield build
    for h in made:
        h.close()


def _closed(tenant: str, subject: str = "v-1") -> dict:
    return new_event(
        "nl.werkbrug.vacancy.closed",
        tenant=tenant,
        subject=subject,
        data={"employer_id": "e", "status": "closed"},
        source="test",
    )


def test_a_redelivered_event_takes_effect_once(harness, tenant):
    h = harness()
    event = _closed(tenant)
    for _ in range(3):
        h.send(f"{tenant}/v-1", encode_event(event))
    consumer = h.consumer()
    assert h.drain(consumer, 3) == 3
    consumer.consumer.close()
    assert h.effect_count() == 1


def test_offsets_are_committed_so_a_restarted_consumer_does_not_replay(harness, tenant):
    h = harness()
    h.send(f"{tenant}/v-1", encode_event(_closed(tenant)))
    first = h.consumer()
    assert h.drain(first, 1) == 1
    first.consumer.close()
    second = h.consumer()
    assert h.drain(second, 1, rounds=6) == 0
    second.consumer.close()
    assert h.effect_count() == 1


def test_a_replay_from_the_beginning_changes_nothing(harness, tenant):
    h = harness()
    for n in range(4):
        h.send(f"{tenant}/v-{n}", encode_event(_closed(tenant, f"v-{n}")))
    first = h.consumer()
    h.drain(first, 4)
    first.consumer.close()
    replay = h.consumer()
    replay.consumer.poll(timeout_ms=2000)
    replay.consumer.seek_to_beginning()
    assert h.drain(replay, 4) == 4
    replay.consumer.close()
    assert h.effect_count() == 4


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xfe not json", "undecodable"),
        (b"[1, 2, 3]", "undecodable"),
        (b'{"specversion": "1.0"}', "invalid"),
        ("unknown-type", "unknown_type"),
        ("bad-payload", "invalid"),
    ],
)
def test_poison_messages_go_to_dead_letters_with_headers_and_the_consumer_moves_on(harness, tenant, value, reason):
    h = harness()
    if value == "unknown-type":
        document = _closed(tenant)
        document["type"] = "nl.werkbrug.vacancy.exploded"
        value = encode_event(document)
    elif value == "bad-payload":
        document = _closed(tenant)
        document["data"] = {"employer_id": "e", "status": "on fire"}
        value = encode_event(document)
    key = f"{tenant}/poison"
    h.send(key, value)
    h.send(f"{tenant}/v-ok", encode_event(_closed(tenant, "v-ok")))
    consumer = h.consumer()
    assert h.drain(consumer, 2) == 2
    consumer.consumer.close()

    assert h.effect_count() == 1, "the good message after the poison one is handled"
    dead = read_all(h.bootstrap, str(Topic.DEAD_LETTERS), key_prefix=key.encode())
    assert len(dead) == 1
    assert dead[0].value == value, "dead letters keep the message unchanged"
    headers = {name: content.decode() for name, content in dead[0].headers}
    assert headers["dlq.original.topic"] == h.topic
    assert headers["dlq.original.partition"] == "0"
    assert headers["dlq.original.offset"] == "0"
    assert headers["dlq.consumer.group"] == h.group
    assert headers["dlq.reason"] == reason
    assert headers["dlq.exception.message"]


def test_a_handler_that_keeps_failing_dead_letters_the_event_after_retries(harness, tenant):
    attempts = []

    def explode(event):
        attempts.append(event.id)
        raise ValueError("a bug in the handler")

    h = harness(explode)
    key = f"{tenant}/v-bug"
    h.send(key, encode_event(_closed(tenant, "v-bug")))
    consumer = h.consumer()
    assert h.drain(consumer, 1) == 1
    consumer.consumer.close()
    assert len(attempts) == 3
    assert h.effect_count() == 0
    dead = read_all(h.bootstrap, str(Topic.DEAD_LETTERS), key_prefix=key.encode())
    assert [dict(d.headers)["dlq.reason"] for d in dead] == [b"handler_error"]


def test_a_rule_broken_inside_a_handler_dead_letters_at_once(harness, tenant):
    attempts = []

    def refuse(event):
        attempts.append(event.id)
        raise EventError("vacancy unknown to this tenant")

    h = harness(refuse)
    key = f"{tenant}/v-refused"
    h.send(key, encode_event(_closed(tenant, "v-refused")))
    consumer = h.consumer()
    h.drain(consumer, 1)
    consumer.consumer.close()
    assert len(attempts) == 1
    assert len(read_all(h.bootstrap, str(Topic.DEAD_LETTERS), key_prefix=key.encode())) == 1


def test_a_database_outage_is_retried_not_dead_lettered_and_nothing_is_skipped(harness, tenant):
    failures = {"left": 2}

    def flaky(event):
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("INSERT", {}, Exception("database is restarting"))

    h = harness(flaky)
    key = f"{tenant}/v-flaky"
    for n in range(3):
        h.send(key, encode_event(_closed(tenant, f"v-flaky-{n}")))
    consumer = h.consumer()
    taken = 0
    for _ in range(40):
        try:
            taken += consumer.poll_once(timeout_ms=500)
        except OperationalError:
            continue
        if taken >= 3:
            break
    consumer.consumer.close()
    assert h.effect_count() == 3
    assert read_all(h.bootstrap, str(Topic.DEAD_LETTERS), key_prefix=key.encode()) == []


def test_a_failed_offset_commit_skips_no_message_of_the_other_partitions(harness, tenant):
    h = harness(partitions=3)
    subjects = [f"v-{n}" for n in range(12)]
    for subject in subjects:
        h.send(f"{tenant}/{subject}", encode_event(_closed(tenant, subject)))
    consumer = h.consumer()
    real_commit = consumer.consumer.commit
    failures = {"left": 1}

    def commit_failing_once(offsets):
        # The broker vanishing between handling a batch and committing it, as in a kill -9.
        if failures["left"]:
            failures["left"] -= 1
            raise KafkaError("broker went away before the commit")
        return real_commit(offsets)

    consumer.consumer.commit = commit_failing_once
    for _ in range(40):
        try:
            consumer.poll_once(timeout_ms=500)
        except KafkaError:
            continue
        if h.effect_count() == len(subjects):
            break
    consumer.consumer.close()
    assert failures["left"] == 0
    assert h.effect_count() == len(subjects)


def test_handled_event_ids_are_forgotten_only_after_the_retention(harness, tenant):
    h = harness()
    for n in range(2):
        h.send(f"{tenant}/v-{n}", encode_event(_closed(tenant, f"v-{n}")))
    consumer = h.consumer()
    h.drain(consumer, 2)
    consumer.consumer.close()
    with h.db.session() as session:
        session.execute(
            h.processed.update()
            .where(h.processed.c.event_id == sa.select(sa.func.min(h.processed.c.event_id)).scalar_subquery())
            .values(processed_at=utcnow() - timedelta(days=31))
        )
    assert consumer.forget_old_event_ids() == 1
    with h.db.session() as session:
        assert session.execute(sa.select(sa.func.count()).select_from(h.processed)).scalar_one() == 1


def test_a_poison_message_in_a_batch_is_dead_lettered_alone_and_its_batch_mates_take_effect_once(harness, tenant):
    attempts = []

    def explode_on_the_third(event):
        if event.subject == "v-2":
            attempts.append(event.id)
            raise ValueError("a bug in the handler")

    h = harness(explode_on_the_third)
    for n in range(5):
        h.send(f"{tenant}/v-{n}", encode_event(_closed(tenant, f"v-{n}")))
    consumer = h.consumer()
    assert h.drain(consumer, 5) == 5
    consumer.consumer.close()

    assert len(attempts) == 3, "the failing event is tried as often as when it comes alone"
    with h.db.session() as session:
        effects = session.execute(sa.select(h.effects.c.event_id)).scalars().all()
    assert len(effects) == 4 and len(set(effects)) == 4, "each batch-mate takes effect, and once"
    dead = read_all(h.bootstrap, str(Topic.DEAD_LETTERS), key_prefix=f"{tenant}/".encode())
    assert [d.key for d in dead] == [f"{tenant}/v-2".encode()]
    restarted = h.consumer()
    assert h.drain(restarted, 1, rounds=6) == 0, "the whole batch's offsets were committed"
    restarted.consumer.close()


def test_a_database_failure_mid_batch_rolls_the_batch_back_and_redelivers_all_of_it(harness, tenant):
    failures = {"left": 1}

    def fail_once_on_the_fourth(event):
        if event.subject == "v-3" and failures["left"]:
            failures["left"] -= 1
            raise OperationalError("INSERT", {}, Exception("database is restarting"))

    h = harness(fail_once_on_the_fourth)
    for n in range(5):
        h.send(f"{tenant}/v-{n}", encode_event(_closed(tenant, f"v-{n}")))
    consumer = h.consumer()
    with pytest.raises(OperationalError):
        for _ in range(40):
            consumer.poll_once(timeout_ms=500)
    assert h.effect_count() == 0, "the effects of the batch before the failure are rolled back with it"
    assert h.drain(consumer, 5) == 5
    consumer.consumer.close()
    with h.db.session() as session:
        effects = session.execute(sa.select(h.effects.c.event_id)).scalars().all()
    assert len(effects) == 5 and len(set(effects)) == 5


def test_a_poll_cut_short_by_its_time_budget_commits_what_it_took_and_polls_the_rest_again(harness, tenant):
    h = harness(partitions=3)
    subjects = [f"v-{n}" for n in range(9)]
    for subject in subjects:
        h.send(f"{tenant}/{subject}", encode_event(_closed(tenant, subject)))
    # No time at all: every poll takes one transaction of one message, then goes back to poll().
    consumer = h.consumer(max_poll_s=0, max_transaction_s=0)
    takes = []
    for _ in range(60):
        taken = consumer.poll_once(timeout_ms=500)
        if taken:
            takes.append(taken)
        if h.effect_count() == len(subjects):
            break
    consumer.consumer.close()
    assert takes and max(takes) == 1, "each poll stopped after its first transaction"
    with h.db.session() as session:
        effects = session.execute(sa.select(h.effects.c.event_id)).scalars().all()
    assert len(effects) == len(subjects) and len(set(effects)) == len(subjects)
    restarted = h.consumer()
    assert h.drain(restarted, 1, rounds=6) == 0, "every offset was committed"
    restarted.consumer.close()


def test_a_transaction_holds_one_tenants_events_in_their_order(harness, tenant):
    handled: list[tuple[str, str, str]] = []

    def record(session, event):
        # A mark of the transaction: the consumer opens one session per transaction.
        transaction = session.info.setdefault("test_transaction", uuid.uuid4().hex)
        handled.append((transaction, event.tenant, event.subject))

    h = harness()
    regions = [f"{tenant}-{letter}" for letter in "abc"]
    for n in range(4):
        for region in regions:
            h.send(f"{region}/v-{n}", encode_event(_closed(region, f"v-{n}")))
    consumer = h.consumer()
    consumer.handlers[EventType.VACANCY_CLOSED] = [record]
    assert h.drain(consumer, 12) == 12
    consumer.consumer.close()

    tenants_per_transaction: dict[str, set[str]] = {}
    for transaction, region, _ in handled:
        tenants_per_transaction.setdefault(transaction, set()).add(region)
    assert all(len(held) == 1 for held in tenants_per_transaction.values()), tenants_per_transaction
    assert len(tenants_per_transaction) >= len(regions)
    for region in regions:
        assert [subject for _, r, subject in handled if r == region] == [f"v-{n}" for n in range(4)]
