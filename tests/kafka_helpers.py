"""Small helpers for tests that talk to the real broker."""

from __future__ import annotations

import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition


def fresh_topic(bootstrap_servers: str, partitions: int = 1) -> str:
    """A topic of the test's own, so that no other test's messages get in the way."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}})
        admin.wait_for_topics([name], timeout_ms=30_000)
    finally:
        admin.close()
    return name


def read_all(bootstrap_servers: str, topic: str, *, key_prefix: bytes | None = None, idle_s: float = 2.0) -> list:
    """Every message on the topic from the beginning (optionally only keys starting with a prefix)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False, group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        messages = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=int(idle_s * 1000)).values():
                messages.extend(batch)
            if all(consumer.position(tp) >= end[tp] for tp in partitions):
                break
        if key_prefix is not None:
            messages = [m for m in messages if m.key is not None and m.key.startswith(key_prefix)]
        return messages
    finally:
        consumer.close()
