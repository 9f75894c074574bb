"""The in-memory broker keeps the Kafka behaviour the consumer loop and the outbox relay lean on.

What both brokers must agree on is checked by tests/contract on each; these cover what only the double
has (its failure switches) or what is cheaper to pin down here (partitioning, groups, refusals).
"""

from __future__ import annotations

import inspect
import threading
import time
import uuid

import pytest
from kafka.errors import CommitFailedError, IllegalStateError, KafkaError, KafkaTimeoutError
from kafka.structs import OffsetAndMetadata, TopicPartition

from shared import kafka as real_clients
from tests.doubles.memory_broker import MemoryBroker, partition_for


@pytest.fixture
def broker() -> MemoryBroker:
    return MemoryBroker()


def topic_in(broker: MemoryBroker, partitions: int = 1) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    broker.create_topic(name, partitions)
    return name


def offsets(records) -> dict[int, list[int]]:
    return {tp.partition: [r.offset for r in batch] for tp, batch in records.items()}


def test_a_keyed_message_lands_where_kafkas_partitioner_puts_it_and_keeps_its_order(broker):
    topic = topic_in(broker, 6)
    producer = broker.make_producer()
    sent = [producer.send(topic, key=b"21", value=str(n).encode()).get(1) for n in range(5)]

    # -973932308 is Java's murmur2 of "21" in Kafka's own test suite: the hash is Kafka's, not a lookalike.
    assert partition_for(b"21", 6) == (-973932308 & 0x7FFFFFFF) % 6
    assert {meta.partition for meta in sent} == {partition_for(b"21", 6)}
    assert [meta.offset for meta in sent] == [0, 1, 2, 3, 4]
    assert [m.value for m in broker.messages(topic)] == [b"0", b"1", b"2", b"3", b"4"]
    spread = {producer.send(topic, key=f"k-{n}".encode(), value=b"x").get(1).partition for n in range(60)}
    assert spread == set(range(6)), "different keys spread over every partition"


def test_tombstones_and_headers_arrive_as_sent(broker):
    topic = topic_in(broker)
    producer = broker.make_producer()
    producer.send(topic, key=b"regio-a/c-1", value=None, headers=[("origin", b"test")]).get(1)
    consumer = broker.make_consumer("", "g")
    consumer.subscribe([topic])

    [record] = consumer.poll(timeout_ms=100)[TopicPartition(topic, 0)]

    assert (record.key, record.value, record.headers) == (b"regio-a/c-1", None, [("origin", b"test")])
    assert (record.topic, record.partition, record.offset) == (topic, 0, 0)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"key": None, "value": None}, ValueError),
        ({"key": b"k", "value": "not bytes"}, TypeError),
        ({"key": b"k", "value": b"v", "headers": {"a": b"b"}}, TypeError),
        ({"key": b"k", "value": b"v", "headers": [("a", "not bytes")]}, TypeError),
    ],
)
def test_a_send_kafka_python_would_refuse_is_refused(broker, kwargs, error):
    topic = topic_in(broker)
    with pytest.raises(error):
        broker.make_producer().send(topic, **kwargs)
    assert broker.messages(topic) == []


def test_sending_to_a_topic_nobody_created_times_out_as_without_metadata(broker):
    with pytest.raises(KafkaTimeoutError):
        broker.make_producer().send("never-created", key=b"k", value=b"v")


def test_closed_clients_refuse_to_work(broker):
    topic = topic_in(broker)
    producer, consumer = broker.make_producer(), broker.make_consumer("", "g")
    producer.close()
    consumer.close()
    with pytest.raises(IllegalStateError):
        producer.send(topic, key=b"k", value=b"v")
    with pytest.raises(IllegalStateError):
        consumer.poll()


def test_each_group_reads_from_its_own_committed_offset(broker):
    topic = topic_in(broker)
    producer = broker.make_producer()
    for n in range(3):
        producer.send(topic, key=b"k", value=str(n).encode())
    tp = TopicPartition(topic, 0)
    first = broker.make_consumer("", "group-a")
    first.subscribe([topic])
    assert offsets(first.poll(timeout_ms=100)) == {0: [0, 1, 2]}
    first.commit({tp: OffsetAndMetadata(2, "", -1)})
    first.close(autocommit=True)  # the loop's commits are manual; closing commits nothing more

    again = broker.make_consumer("", "group-a")
    again.subscribe([topic])
    other = broker.make_consumer("", "group-b")
    other.subscribe([topic])

    assert offsets(again.poll(timeout_ms=100)) == {0: [2]}, "from the committed offset: the uncommitted again"
    assert offsets(other.poll(timeout_ms=100)) == {0: [0, 1, 2]}, "another group starts at the beginning"
    assert (broker.committed("group-a", tp), broker.committed("group-b", tp)) == (2, None)


def test_a_groups_live_consumers_share_its_partitions_and_a_stale_member_cannot_commit(broker):
    topic = topic_in(broker, 4)
    producer = broker.make_producer()
    for n in range(40):
        producer.send(topic, key=f"k-{n}".encode(), value=b"x")
    one = broker.make_consumer("", "g")
    one.subscribe([topic])
    one.poll(timeout_ms=100)
    assert len(one.assignment()) == 4

    two = broker.make_consumer("", "g")
    two.subscribe([topic])

    with pytest.raises(CommitFailedError):
        one.commit()
    assert one.assignment() | two.assignment() == {TopicPartition(topic, p) for p in range(4)}
    assert not one.assignment() & two.assignment()
    assert sum(len(batch) for batch in two.poll(timeout_ms=100).values()) > 0
    two.close()
    assert len(one.assignment()) == 4, "a member leaving hands its partitions back"


def test_seek_position_and_highwater_work_on_assigned_partitions_only(broker):
    topic = topic_in(broker)
    producer = broker.make_producer()
    for _ in range(3):
        producer.send(topic, key=b"k", value=b"x")
    consumer = broker.make_consumer("", "g")
    consumer.subscribe([topic])
    tp = TopicPartition(topic, 0)
    consumer.poll(timeout_ms=100)
    assert (consumer.position(tp), consumer.highwater(tp)) == (3, 3)

    consumer.seek(tp, 1)

    assert offsets(consumer.poll(timeout_ms=100)) == {0: [1, 2]}
    for call in (consumer.position, consumer.highwater, lambda tp: consumer.seek(tp, 0)):
        with pytest.raises(IllegalStateError):
            call(TopicPartition(topic, 7))


def test_a_poll_waits_for_a_message_sent_meanwhile_and_otherwise_for_its_timeout(broker):
    topic = topic_in(broker)
    consumer = broker.make_consumer("", "g")
    consumer.subscribe([topic])
    started = time.monotonic()
    assert consumer.poll(timeout_ms=150) == {}
    assert time.monotonic() - started >= 0.14

    threading.Timer(0.05, lambda: broker.make_producer().send(topic, key=b"k", value=b"late")).start()
    started = time.monotonic()
    assert offsets(consumer.poll(timeout_ms=5000)) == {0: [0]}
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("operation", ["send", "flush", "poll", "commit", "topics"])
def test_an_operation_told_to_fail_raises_a_kafka_error_as_often_as_told(broker, operation):
    topic = topic_in(broker)
    producer, consumer = broker.make_producer(), broker.make_consumer("", "g")
    consumer.subscribe([topic])
    consumer.poll(timeout_ms=10)
    calls = {
        "send": lambda: producer.send(topic, key=b"k", value=b"v"),
        "flush": producer.flush,
        "poll": lambda: consumer.poll(timeout_ms=10),
        "commit": lambda: consumer.commit(),
        "topics": consumer.topics,
    }
    broker.fail(operation, times=2)

    for _ in range(2):
        with pytest.raises(KafkaError):
            calls[operation]()
    calls[operation]()


def test_a_lost_acknowledgement_stores_the_message_but_fails_its_future(broker):
    topic = topic_in(broker)
    broker.fail("ack")

    future = broker.make_producer().send(topic, key=b"k", value=b"v")

    with pytest.raises(KafkaTimeoutError):
        future.get(1)
    assert [m.value for m in broker.messages(topic)] == [b"v"], "the sender will send it again: a duplicate"


def test_while_the_broker_is_away_sends_and_commits_fail_and_polls_come_back_empty(broker):
    topic = topic_in(broker)
    producer = broker.make_producer()
    producer.send(topic, key=b"k", value=b"before")
    consumer = broker.make_consumer("", "g")
    consumer.subscribe([topic])

    with broker.away():
        with pytest.raises(KafkaError):
            producer.send(topic, key=b"k", value=b"during")
        with pytest.raises(KafkaError):
            consumer.commit()
        assert consumer.poll(timeout_ms=20) == {}

    assert [r.value for batch in consumer.poll(timeout_ms=100).values() for r in batch] == [b"before"]


def test_its_client_factories_take_what_shared_kafka_takes_so_they_can_stand_in(broker):
    for name in ("make_producer", "make_consumer"):
        real = list(inspect.signature(getattr(real_clients, name)).parameters)
        double = list(inspect.signature(getattr(broker, name)).parameters)
        assert double == real, name
