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


def test_candidate_events_is_compacted(admin: KafkaAdminClient) -> None:
    resource = ConfigResource(ConfigResourceType.TOPIC, str(Topic.CANDIDATE_EVENTS))
    configs = admin.describe_configs([resource])["topic"][str(Topic.CANDIDATE_EVENTS)]
    assert configs["cleanup.policy"]["value"] == "compact"


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
