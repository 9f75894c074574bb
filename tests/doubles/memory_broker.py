"""An in-memory Kafka broker with the parts of kafka-python's clients that shared/ uses, for tests only.

Handler tests run the real consumer loop and outbox relay on it in milliseconds, without a broker
process. It keeps the properties those two lean on, the way Kafka has them:

- a topic has a fixed number of partitions; a keyed message goes to the partition kafka-python's own
  default partitioner picks (murmur2 of the key), so one key keeps its order on one partition;
- ``poll`` returns ``{TopicPartition: [ConsumerRecord]}`` with kafka-python's own record type, and moves
  the consumer's position past what it returned;
- offsets are committed per consumer group, and a consumer that joins a group (after another one
  "crashed" without committing) starts at the group's committed offset, so uncommitted messages come
  again; the live consumers of a group share its partitions, and a consumer whose partitions were
  handed on can no longer commit (``CommitFailedError``, as after a rebalance);
- tombstones (``value=None``) and headers travel unchanged;
- topics are not created on first use (the dev broker disables that too): sending to an unknown topic
  fails as kafka-python does when no metadata comes.

What it does not model: retention, compaction, transactions, pause/resume, manual ``assign``, and the
delays of a real group join. Tests make the broker fail on purpose with :meth:`MemoryBroker.fail`
(the next calls of one operation raise) or :meth:`MemoryBroker.away` (the broker is unreachable).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
)
from kafka.partitioner.default import murmur2
from kafka.producer.future import RecordMetadata
from kafka.structs import OffsetAndMetadata, TopicPartition

from shared.topics import TOPIC_SPECS

# What each operation raises while the broker is away, or when a test asks it to fail without naming
# an error: what kafka-python raises there when the broker does not answer.
_DEFAULT_ERRORS: dict[str, type[KafkaError]] = {
    "send": KafkaTimeoutError,
    "ack": KafkaTimeoutError,
    "flush": KafkaTimeoutError,
    "poll": KafkaConnectionError,
    "commit": KafkaConnectionError,
    "topics": KafkaTimeoutError,
}


def partition_for(key: bytes, partitions: int) -> int:
    """The partition kafka-python's default partitioner (and Java's) picks for a keyed message."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass
class _Group:
    committed: dict[TopicPartition, OffsetAndMetadata] = field(default_factory=dict)
    members: dict[int, MemoryConsumer] = field(default_factory=dict)
    generation: int = 0


class MemoryBroker:
    """Topics, their messages, and the consumer groups' committed offsets, all in this process."""

    def __init__(self) -> None:
        self._logs: dict[str, list[list[ConsumerRecord]]] = {}
        self._groups: dict[str, _Group] = {}
        self._failures: dict[str, list[KafkaError]] = {}
        self._away = False
        self._member_ids = itertools.count()
        self._unkeyed = itertools.count()
        # One lock for everything: workers poll and relays send from threads of their own.
        self._changed = threading.Condition()

    @classmethod
    def with_werkbrug_topics(cls) -> MemoryBroker:
        broker = cls()
        for spec in TOPIC_SPECS:
            broker.create_topic(str(spec.topic), spec.partitions)
        return broker

    # -- what tests use to set the scene and look at the outcome

    def create_topic(self, topic: str, partitions: int = 1) -> None:
        with self._changed:
            if topic in self._logs:
                raise ValueError(f"topic {topic!r} exists")
            self._logs[topic] = [[] for _ in range(partitions)]
            # The groups subscribed to it rebalance at once; Kafka's would after its next metadata refresh.
            for group in self._groups.values():
                if any(topic in member.subscription for member in group.members.values()):
                    group.generation += 1

    def messages(self, topic: str) -> list[ConsumerRecord]:
        """Every message of the topic, partition by partition, in offset order."""
        with self._changed:
            return [record for partition in self._logs[topic] for record in partition]

    def end_offset(self, partition: TopicPartition) -> int:
        with self._changed:
            return len(self._logs[partition.topic][partition.partition])

    def committed(self, group_id: str, partition: TopicPartition) -> int | None:
        with self._changed:
            offset = self._groups.get(group_id, _Group()).committed.get(partition)
            return offset.offset if offset else None

    def fail(self, operation: str, times: int = 1, error: KafkaError | None = None) -> None:
        """Make the next ``times`` calls of an operation raise: send, ack (the message is stored but its
        acknowledgement lost), flush, poll, commit or topics."""
        if operation not in _DEFAULT_ERRORS:
            raise ValueError(f"no such operation: {operation!r}")
        made = error or _DEFAULT_ERRORS[operation](f"{operation} failed on purpose")
        with self._changed:
            self._failures.setdefault(operation, []).extend([made] * times)

    @contextlib.contextmanager
    def away(self) -> Iterator[None]:
        """The broker is unreachable: sends are not acknowledged, commits and metadata requests fail,
        and polls return nothing once their timeout has passed, as kafka-python's do."""
        with self._changed:
            self._away = True
        try:
            yield
        finally:
            with self._changed:
                self._away = False
                self._changed.notify_all()

    # -- clients, made the way shared.kafka makes them (the address is ignored)

    def make_producer(self, bootstrap_servers: str = "", client_id: str = "") -> MemoryProducer:
        return MemoryProducer(self)

    def make_consumer(
        self, bootstrap_servers: str = "", group_id: str = "", client_id: str = "", group_instance_id: str | None = None
    ) -> MemoryConsumer:
        # No sessions here: a member leaves when it closes, so static membership has nothing to change.
        return MemoryConsumer(self, group_id=group_id, max_poll_records=200)

    # -- what the clients call, under the lock

    def _maybe_fail(self, operation: str) -> None:
        pending = self._failures.get(operation)
        if pending:
            raise pending.pop(0)
        if self._away and operation != "poll":
            raise _DEFAULT_ERRORS[operation](f"broker unreachable during {operation}")

    def _append(self, topic: str, key, value, headers: list[tuple[str, bytes]]) -> RecordMetadata:
        partitions = self._logs[topic]
        # Any partition will do without a key; kafka-python sticks to one per batch, this spreads them.
        spread = next(self._unkeyed) % len(partitions)
        index = partition_for(key, len(partitions)) if key is not None else spread
        log = partitions[index]
        timestamp = int(time.time() * 1000)
        header_size = sum(len(name.encode()) + len(content) for name, content in headers) if headers else -1
        key_size = len(key) if key is not None else -1
        value_size = len(value) if value is not None else -1
        # leader epoch 0, timestamp type 0 (the producer's create time), no checksum: as a fresh topic has.
        record = ConsumerRecord(
            topic, index, 0, len(log), timestamp, 0, key, value, list(headers), None, key_size, value_size, header_size
        )
        log.append(record)
        self._changed.notify_all()
        tp = TopicPartition(topic, index)
        return RecordMetadata(topic, index, tp, len(log) - 1, timestamp, None, key_size, value_size, header_size)

    def _group(self, group_id: str) -> _Group:
        return self._groups.setdefault(group_id, _Group())

    def _join(self, consumer: MemoryConsumer) -> None:
        group = self._group(consumer.group_id)
        group.members[consumer.member_id] = consumer
        group.generation += 1

    def _leave(self, consumer: MemoryConsumer) -> None:
        group = self._group(consumer.group_id)
        if group.members.pop(consumer.member_id, None) is not None:
            group.generation += 1

    def _assignment(self, consumer: MemoryConsumer) -> set[TopicPartition]:
        """The consumer's share of its group's partitions, handed out round-robin among the members
        subscribed to each topic."""
        group = self._group(consumer.group_id)
        mine = set()
        for topic in sorted(consumer.subscription):
            members = sorted(m for m, member in group.members.items() if topic in member.subscription)
            for partition in range(len(self._logs.get(topic, ()))):
                if members[partition % len(members)] == consumer.member_id:
                    mine.add(TopicPartition(topic, partition))
        return mine


def _is_header(item) -> bool:
    return isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], bytes)


class MemoryFuture:
    """What ``send`` returns: already settled, since the broker is in this process."""

    def __init__(self, metadata: RecordMetadata | None = None, error: KafkaError | None = None) -> None:
        self.value, self.exception = metadata, error

    def is_done(self) -> bool:
        return True

    def succeeded(self) -> bool:
        return self.exception is None

    def failed(self) -> bool:
        return self.exception is not None

    def get(self, timeout: float | None = None) -> RecordMetadata:
        if self.exception is not None:
            raise self.exception
        assert self.value is not None
        return self.value


class MemoryProducer:
    """The part of ``KafkaProducer`` the outbox relay and the dead-letter writes use."""

    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker
        self.closed = False

    def send(self, topic: str, value=None, key=None, headers=None, partition=None, timestamp_ms=None) -> MemoryFuture:
        # The same refusals as kafka-python's, so that a test cannot pass what production would reject.
        if self.closed:
            raise IllegalStateError("KafkaProducer already closed!")
        if partition is not None or timestamp_ms is not None:
            raise NotImplementedError("the in-memory broker picks partitions and timestamps itself")
        if value is None and key is None:
            raise ValueError("Need at least one: key or value")
        headers = [] if headers is None else headers
        if not isinstance(headers, list):
            raise TypeError("headers must be list-type")
        if not all(_is_header(item) for item in headers):
            raise TypeError("All headers items must be (str, bytes) tuples")
        for name, given in (("key", key), ("value", value)):
            if given is not None and not isinstance(given, bytes | bytearray | memoryview):
                raise TypeError(f"Unsupported type for serialized {name}: {type(given)}")
        with self.broker._changed:
            if topic not in self.broker._logs:
                raise KafkaTimeoutError("Failed to update metadata after 10.0 secs.")
            self.broker._maybe_fail("send")
            key, value = (bytes(key) if key is not None else None), (bytes(value) if value is not None else None)
            try:
                self.broker._maybe_fail("ack")
            except KafkaError as lost:
                # Stored, but the acknowledgement never arrives: the sender cannot tell this from a loss.
                self.broker._append(topic, key, value, headers)
                return MemoryFuture(error=lost)
            return MemoryFuture(self.broker._append(topic, key, value, headers))

    def flush(self, timeout: float | None = None) -> None:
        if self.closed:
            return
        with self.broker._changed:
            self.broker._maybe_fail("flush")

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


class MemoryConsumer:
    """The part of ``KafkaConsumer`` the shared consumer loop and worker use, with manual commits."""

    def __init__(
        self,
        broker: MemoryBroker,
        *,
        group_id: str,
        auto_offset_reset: str = "earliest",
        max_poll_records: int = 500,
    ) -> None:
        if auto_offset_reset not in ("earliest", "latest"):
            raise ValueError(f"auto_offset_reset must be earliest or latest, not {auto_offset_reset!r}")
        self.broker = broker
        self.group_id = group_id
        self.auto_offset_reset = auto_offset_reset
        self.max_poll_records = max_poll_records
        self.member_id = next(broker._member_ids)
        self.subscription: frozenset[str] = frozenset()
        self._listener = None
        self.closed = False
        self._generation = -1
        self._positions: dict[TopicPartition, int] = {}
        self._start = 0

    def subscribe(self, topics: Iterable[str] = (), listener=None) -> None:
        self._check_open()
        topics = frozenset(topics)
        if not topics:
            raise ValueError("subscribe to at least one topic")
        with self.broker._changed:
            self.subscription = topics
            self._listener = listener
            self.broker._join(self)

    def topics(self) -> set[str]:
        self._check_open()
        with self.broker._changed:
            self.broker._maybe_fail("topics")
            return set(self.broker._logs)

    def assignment(self) -> set[TopicPartition]:
        with self.broker._changed:
            self._sync()
            return set(self._positions)

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict[TopicPartition, list[ConsumerRecord]]:
        self._check_open()
        if timeout_ms < 0:
            raise ValueError("Timeout must not be negative")
        limit = max_records or self.max_poll_records
        deadline = time.monotonic() + timeout_ms / 1000
        with self.broker._changed:
            self.broker._maybe_fail("poll")
            while True:
                self._sync()
                records = {} if self.broker._away else self._fetch(limit)
                left = deadline - time.monotonic()
                if records or left <= 0:
                    return records
                self.broker._changed.wait(left)

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata] | None = None) -> None:
        self._check_open()
        if not self.group_id:
            raise IllegalStateError("Requires group_id")
        with self.broker._changed:
            self.broker._maybe_fail("commit")
            group = self.broker._group(self.group_id)
            if self._generation != group.generation:
                # The group rebalanced since this consumer last polled: Kafka refuses its commit.
                raise CommitFailedError("the group has rebalanced; poll again before committing")
            if offsets is None:
                offsets = {tp: OffsetAndMetadata(position, "", -1) for tp, position in self._positions.items()}
            if not all(isinstance(tp, TopicPartition) for tp in offsets) or not all(
                isinstance(offset, OffsetAndMetadata) for offset in offsets.values()
            ):
                raise TypeError("offsets must be dict[TopicPartition, OffsetAndMetadata]")
            group.committed.update(offsets)

    def committed(self, partition: TopicPartition) -> int | None:
        self._check_open()
        return self.broker.committed(self.group_id, partition)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._check_open()
        if not isinstance(offset, int) or offset < 0:
            raise ValueError("Offset must be int >= 0")
        with self.broker._changed:
            if partition not in self._positions:
                raise IllegalStateError("Unassigned partition")
            self._positions[partition] = offset

    def position(self, partition: TopicPartition) -> int:
        self._check_open()
        with self.broker._changed:
            if partition not in self._positions:
                raise IllegalStateError("Partition is not assigned")
            return self._positions[partition]

    def highwater(self, partition: TopicPartition) -> int | None:
        self._check_open()
        with self.broker._changed:
            if partition not in self._positions:
                raise IllegalStateError("Partition is not assigned")
            return self.broker.end_offset(partition)

    def close(self, autocommit: bool = True, timeout_ms: int | None = None) -> None:
        # Commits are manual (as shared.kafka configures them), so closing never commits, whatever
        # ``autocommit`` says; it only leaves the group, whose partitions go to the others at once.
        if self.closed:
            return
        self.closed = True
        with self.broker._changed:
            self.broker._leave(self)

    def _check_open(self) -> None:
        if self.closed:
            raise IllegalStateError("KafkaConsumer is closed")

    def _sync(self) -> None:
        """Take up this consumer's share of the group after a rebalance. As with kafka-python's eager
        rebalancing, every partition starts again at the group's committed offset (or where
        ``auto_offset_reset`` says when there is none): positions not committed are forgotten."""
        if not self.subscription:
            return
        group = self.broker._group(self.group_id)
        if self._generation == group.generation:
            return
        positions = {}
        for tp in sorted(self.broker._assignment(self)):
            committed = group.committed.get(tp)
            if committed is not None:
                positions[tp] = committed.offset
            else:
                positions[tp] = 0 if self.auto_offset_reset == "earliest" else self.broker.end_offset(tp)
        revoked, self._positions = set(self._positions), positions
        self._generation = group.generation
        # As kafka-python calls a ConsumerRebalanceListener, inside poll(): what was held is revoked before
        # every join (nothing, before the first), then the new assignment is told.
        if self._listener is not None:
            self._listener.on_partitions_revoked(revoked)
            self._listener.on_partitions_assigned(set(positions))

    def _fetch(self, limit: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        partitions = sorted(self._positions)
        if not partitions:
            return {}
        # Start at a different partition each time, so that a busy one cannot starve the others.
        self._start = (self._start + 1) % len(partitions)
        records: dict[TopicPartition, list[ConsumerRecord]] = {}
        for tp in partitions[self._start :] + partitions[: self._start]:
            if limit <= 0:
                break
            log = self.broker._logs[tp.topic][tp.partition]
            taken = log[self._positions[tp] : self._positions[tp] + limit]
            if taken:
                records[tp] = taken
                self._positions[tp] += len(taken)
                limit -= len(taken)
        return records


def drain(broker: MemoryBroker, service, topics, handlers, *, group: str, tombstone_handlers=None) -> int:
    """Run a worker's handler table, through the shared consumer, over everything its group has not yet
    taken on ``topics``; how many messages were taken. ``service`` is a test's service (its db and store)."""
    from shared.consumer import EventConsumer

    kafka_consumer = broker.make_consumer("", group, "test-consumer")
    kafka_consumer.subscribe([str(topic) for topic in topics])
    consumer = EventConsumer(
        db=service.db,
        processed_events=service.store.processed_events,
        consumer=kafka_consumer,
        dead_letter_producer=broker.make_producer(),
        group_id=group,
        handlers=handlers,
        tombstone_handlers=tombstone_handlers,
        retry_backoff_s=0.01,
    )
    taken = 0
    try:
        while batch := consumer.poll_once(timeout_ms=0):
            taken += batch
    finally:
        kafka_consumer.close()
    return taken
