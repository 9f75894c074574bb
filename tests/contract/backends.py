"""The two brokers the contract suite runs on: the in-memory double and the real Kafka of the test session.

Each backend hands out topics of the test's own, producers and subscribed consumers built the way
shared.kafka builds them, reads a topic back, and makes the broker refuse a commit or a send. The cases
see only this interface, so whatever passes on one backend and fails on the other is a difference
between the double and Kafka, to be fixed in the double.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from kafka import KafkaConsumer
from kafka.errors import KafkaConnectionError, KafkaTimeoutError
from kafka.structs import TopicPartition

from shared.kafka import make_consumer, make_producer
from tests.doubles.memory_broker import MemoryBroker
from tests.kafka_helpers import fresh_topic, read_all


class Backend(Protocol):
    name: str
    # How many polls of ``poll_ms`` a drain may take before it gives up; a real broker needs a few
    # seconds to hand a new group its partitions.
    poll_ms: int
    rounds: int

    def topic(self, partitions: int = 1) -> str: ...

    def producer(self): ...

    def consumer(self, group: str, topics: list[str], listener=None): ...

    def read(self, topic: str, key_prefix: bytes | None = None) -> list: ...

    def committed(self, group: str, partition: TopicPartition) -> int | None: ...

    def refuse_commits(self, consumer, times: int = 1) -> None: ...

    def refuse_sends(self, producer, times: int = 1) -> None: ...

    def close(self) -> None: ...


class MemoryBackend:
    name = "memory"
    poll_ms = 200
    rounds = 5

    def __init__(self) -> None:
        self.broker = MemoryBroker.with_werkbrug_topics()

    def topic(self, partitions: int = 1) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        self.broker.create_topic(name, partitions)
        return name

    def producer(self):
        return self.broker.make_producer("", "contract-producer")

    def consumer(self, group: str, topics: list[str], listener=None):
        consumer = self.broker.make_consumer("", group, "contract-consumer")
        consumer.subscribe(topics, listener=listener)
        return consumer

    def read(self, topic: str, key_prefix: bytes | None = None) -> list:
        return [m for m in self.broker.messages(topic) if key_prefix is None or (m.key or b"").startswith(key_prefix)]

    def committed(self, group: str, partition: TopicPartition) -> int | None:
        return self.broker.committed(group, partition)

    def refuse_commits(self, consumer, times: int = 1) -> None:
        self.broker.fail("commit", times)

    def refuse_sends(self, producer, times: int = 1) -> None:
        self.broker.fail("send", times)

    def close(self) -> None:
        pass


class KafkaBackend:
    name = "kafka"
    poll_ms = 500
    rounds = 60

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap = bootstrap_servers
        self._producers: list = []
        self._consumers: list = []

    def topic(self, partitions: int = 1) -> str:
        return fresh_topic(self.bootstrap, partitions)

    def producer(self):
        producer = make_producer(self.bootstrap, "contract-producer")
        self._producers.append(producer)
        return producer

    def consumer(self, group: str, topics: list[str], listener=None):
        consumer = make_consumer(self.bootstrap, group, "contract-consumer")
        consumer.subscribe(topics, listener=listener)
        self._consumers.append(consumer)
        return consumer

    def read(self, topic: str, key_prefix: bytes | None = None) -> list:
        return read_all(self.bootstrap, topic, key_prefix=key_prefix, idle_s=0.5)

    def committed(self, group: str, partition: TopicPartition) -> int | None:
        # A consumer that never subscribes only asks the group coordinator; it does not join the group.
        reader = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False)
        try:
            return reader.committed(partition)
        finally:
            reader.close(autocommit=False)

    def refuse_commits(self, consumer, times: int = 1) -> None:
        # The broker cannot be told to refuse one commit, so the client is: the same error reaches the
        # loop as when the coordinator is gone between handling a batch and committing it.
        _refuse(consumer, "commit", times, KafkaConnectionError("the broker went away before the commit"))

    def refuse_sends(self, producer, times: int = 1) -> None:
        _refuse(producer, "send", times, KafkaTimeoutError("Failed to update metadata after 10.0 secs."))

    def close(self) -> None:
        for consumer in self._consumers:
            consumer.close(autocommit=False)
        for producer in self._producers:
            producer.close(timeout=5)


def _refuse(client, method: str, times: int, error: Exception) -> None:
    real = getattr(client, method)
    left = {"n": times}

    def refusing(*args, **kwargs):
        if left["n"]:
            left["n"] -= 1
            raise error
        return real(*args, **kwargs)

    setattr(client, method, refusing)
