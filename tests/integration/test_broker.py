"""The development Kafka broker: topics as declared, real produce/consume, and durability across a crash.

These run their own broker on free ports in a temporary directory, so they never touch the one
`make run` keeps on 9092.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from shared.devstack.broker import BrokerError, KafkaBroker, free_ports
from shared.topics import TOPIC_SPECS, Topic, ensure_topics

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    port, controller_port = free_ports(2)
    kafka = KafkaBroker(tmp_path_factory.mktemp("kafka"), port=port, controller_port=controller_port, heap="256m")
    kafka.start(timeout=90)
    try:
        ensure_topics(kafka.bootstrap_servers)
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def admin(broker: KafkaBroker) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=10_000)
    try:
        yield client
    finally:
        client.close()


def _produce(bootstrap_servers: str, topic: str, key: bytes, value: bytes) -> tuple[int, int]:
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", retries=5)
    try:
        meta = producer.send(topic, key=key, value=value).get(timeout=30)
    finally:
        producer.close()
    return meta.partition, meta.offset


def _read_at(bootstrap_servers: str, topic: str, partition: int, offset: int, timeout_s: float = 30) -> tuple:
    # Assigned rather than subscribed: no consumer group, so no rebalance to wait for.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=500).get(tp, []):
                if record.offset == offset:
                    return record.key, record.value
        raise AssertionError(f"no record at {topic}[{partition}]@{offset} within {timeout_s}s")
    finally:
        consumer.close()


def test_declared_topics_exist_with_their_partition_counts(broker: KafkaBroker, admin: KafkaAdminClient) -> None:
    described = {t["name"]: t for t in admin.describe_topics([str(spec.topic) for spec in TOPIC_SPECS])}
    for spec in TOPIC_SPECS:
        topic = described[str(spec.topic)]
        assert topic["error_code"] == 0, topic
        assert len(topic["partitions"]) == spec.partitions


def test_ensure_topics_is_idempotent(broker: KafkaBroker) -> None:
    assert ensure_topics(broker.bootstrap_servers) == []


def _topic_configs(admin: KafkaAdminClient, topic: Topic) -> dict[str, str]:
    resource = ConfigResource(ConfigResourceType.TOPIC, str(topic))
    described = admin.describe_configs([resource])["topic"][str(topic)]
    return {name: entry["value"] for name, entry in described.items()}


def _settled_config(admin: KafkaAdminClient, topic: Topic, name: str, expected: str) -> str:
    """The config's value once it reads as expected, or the last value read: a change reaches the broker
    through the metadata log a moment after the controller accepted it."""
    deadline = time.monotonic() + 30
    while (value := _topic_configs(admin, topic)[name]) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return value


def test_topics_carry_their_declared_configs(admin: KafkaAdminClient) -> None:
    for spec in TOPIC_SPECS:
        configs = _topic_configs(admin, spec.topic)
        assert {name: configs[name] for name in spec.config} == spec.config, spec.topic
    assert _topic_configs(admin, Topic.CANDIDATE_EVENTS)["cleanup.policy"] == "compact"


def test_ensure_topics_gives_an_existing_topic_the_declared_configs(
    broker: KafkaBroker, admin: KafkaAdminClient
) -> None:
    """A cluster created by an earlier release (here: candidate-events with the broker's 7-day segments and
    50% dirty ratio) takes on the compaction bounds at the next ensure_topics."""
    earlier = ConfigResource(
        ConfigResourceType.TOPIC,
        str(Topic.CANDIDATE_EVENTS),
        configs={"segment.ms": str(7 * 24 * 3600 * 1000), "min.cleanable.dirty.ratio": "0.5"},
    )
    admin.alter_configs([earlier], raise_on_unknown=False, incremental=True)
    assert _settled_config(admin, Topic.CANDIDATE_EVENTS, "min.cleanable.dirty.ratio", "0.5") == "0.5"

    assert ensure_topics(broker.bootstrap_servers) == []

    assert _settled_config(admin, Topic.CANDIDATE_EVENTS, "min.cleanable.dirty.ratio", "0.01") == "0.01"
    assert _topic_configs(admin, Topic.CANDIDATE_EVENTS)["segment.ms"] == str(6 * 3600 * 1000)


def test_refuses_to_start_on_a_port_in_use(broker: KafkaBroker, tmp_path) -> None:
    (controller_port,) = free_ports(1)
    intruder = KafkaBroker(tmp_path / "kafka", port=broker.port, controller_port=controller_port)
    with pytest.raises(BrokerError, match="already in use"):
        intruder.start()
    assert not intruder.is_running()


def test_acknowledged_message_survives_kill_and_restart(broker: KafkaBroker) -> None:
    key, value = b"candidate-42", f"hello {uuid.uuid4()}".encode()
    partition, offset = _produce(broker.bootstrap_servers, str(Topic.VACANCY_EVENTS), key, value)
    assert _read_at(broker.bootstrap_servers, str(Topic.VACANCY_EVENTS), partition, offset) == (key, value)

    broker.kill()
    assert not broker.is_running()
    broker.restart(timeout=90)
    assert broker.is_running()

    assert _read_at(broker.bootstrap_servers, str(Topic.VACANCY_EVENTS), partition, offset) == (key, value)
