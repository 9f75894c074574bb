"""The one consumer loop every worker uses: poll, decode, deduplicate, handle, dead-letter, commit.

Handlers are plain functions ``handler(session, event)`` listed in one table per worker: each event type
maps to the list of handlers that run on it, in order. Their effects, the event id in ``processed_events``
and any outgoing events in the outbox are committed in one database transaction; only after that does
the loop commit the Kafka offset. A redelivered event finds its id already there and has no effect. A
message that cannot be handled goes, unchanged, to the dead-letter topic with headers saying where it
came from and why, and the loop moves on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared import metrics, origin, tracing
from shared.db import Database, UtcDateTime, affected_rows, describe_error, is_transient, utcnow
from shared.events import EVENT_TYPES, KAFKA_HEADERS, Event, EventError, content_type_of, decode_message
from shared.loops import Every, periodic
from shared.topics import Topic

log = logging.getLogger(__name__)

Handler = Callable[[Session, Event], None]
# Called with (session, tenant, subject) for a tombstone, the value-less message that ends a key.
TombstoneHandler = Callable[[Session, str, str], None]
# Event type to everything that runs on it; topic to everything that runs on its tombstones.
HandlerTable = Mapping[str, Sequence[Handler]]
TombstoneTable = Mapping[str, Sequence[TombstoneHandler]]


def processed_events_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "processed_events",
        metadata,
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("event_type", sa.String(200), nullable=False),
        sa.Column("processed_at", UtcDateTime, nullable=False),
    )


class HandlerFailed(Exception):
    """A handler kept failing on a well-formed event; the event is dead-lettered with this reason."""

    reason = "handler_error"


@dataclass
class _Outcome:
    outcome: str
    reason: str | None = None
    error: BaseException | None = None


class EventConsumer:
    def __init__(
        self,
        *,
        db: Database,
        processed_events: sa.Table,
        consumer: KafkaConsumer,
        dead_letter_producer: KafkaProducer,
        group_id: str,
        handlers: HandlerTable,
        tombstone_handlers: TombstoneTable | None = None,
        max_attempts: int = 3,
        retry_backoff_s: float = 0.5,
        remember_for: timedelta = timedelta(days=30),
    ) -> None:
        unknown = set(handlers) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"handlers for unknown event types: {sorted(unknown)}")
        self.db = db
        self.processed = processed_events
        self.consumer = consumer
        self.dead_letters = dead_letter_producer
        self.group_id = group_id
        self.handlers = {event_type: list(listed) for event_type, listed in handlers.items()}
        self.tombstone_handlers = {topic: list(listed) for topic, listed in (tombstone_handlers or {}).items()}
        self.max_attempts = max_attempts
        self.remember_for = remember_for
        self.retry_backoff_s = retry_backoff_s

    def poll_once(self, timeout_ms: int = 500) -> int:
        """Handle one poll's worth of messages and commit their offsets; returns how many were taken."""
        batches = list(self.consumer.poll(timeout_ms=timeout_ms).items())
        taken = 0
        for index, (partition, messages) in enumerate(batches):
            handled_up_to = None
            try:
                for message in messages:
                    self._take(message)
                    handled_up_to = message.offset
                    taken += 1
                # Committed only after the effects are stored: a crash before this line redelivers the
                # batch, and deduplication makes the replay harmless.
                assert handled_up_to is not None, "poll() answers only partitions that have messages"
                self.consumer.commit({partition: OffsetAndMetadata(handled_up_to + 1, "", -1)})
            except Exception:
                # The database or the broker is away, mid-handling or at the commit. poll() has already
                # moved every partition of this batch past its messages: rewind each to its first message
                # not yet handled, or the next poll would skip them for good.
                resume = handled_up_to + 1 if handled_up_to is not None else messages[0].offset
                self.consumer.seek(partition, resume)
                for later_partition, later_messages in batches[index + 1 :]:
                    self.consumer.seek(later_partition, later_messages[0].offset)
                raise
        if batches:
            self._record_lag([partition for partition, _ in batches])
        return taken

    def forget_old_event_ids(self) -> int:
        """Drop handled event ids older than anything Kafka could still redeliver (its retention is days;
        they are kept for weeks), so that the table does not grow forever."""
        cutoff = utcnow() - self.remember_for
        with self.db.session() as session:
            result = session.execute(self.processed.delete().where(self.processed.c.processed_at < cutoff))
        return affected_rows(result)

    def run(self, stop: threading.Event) -> None:
        forget = Every(3600)

        def step() -> bool:
            self.poll_once()
            if forget.due():
                self.forget_old_event_ids()
            # poll() itself waits for messages, so there is never a reason to wait again.
            return True

        try:
            # A database that is away or read-only for a failover makes a step fail until it is back; the
            # waits between tries grow so that a long outage is not hammered.
            periodic("consumer", step, every_s=0.0, retry_s=0.5, max_retry_s=15.0).run(stop)
        finally:
            self.consumer.close(autocommit=False)

    def _take(self, message) -> None:
        topic = message.topic
        started = time.perf_counter()
        if message.value is None:
            self._take_tombstone(message)
            return
        try:
            event = decode_message(message.value, message.headers)
        except EventError as exc:
            self._dead_letter(message, exc.reason, exc)
            metrics.EVENTS_CONSUMED.labels(topic, "unreadable", "dead_lettered").inc()
            return
        handlers = self.handlers.get(event.type)
        if not handlers:
            # A known type this service has no interest in (another consumer's business): skip it.
            metrics.EVENTS_CONSUMED.labels(topic, event.type, "ignored").inc()
            return
        # In the event's trace and origin, so that the events its handlers write carry them on.
        span_attributes = {"messaging.destination.name": topic, "cloudevents.event_type": event.type}
        with (
            tracing.traced(f"handle {event.type}", "consumer", event.extensions, span_attributes),
            origin.following(event),
        ):
            result = self._handle_with_retries(handlers, event)
        if result.outcome == "dead_lettered":
            self._dead_letter(message, result.reason or "handler_error", result.error)
        metrics.EVENTS_CONSUMED.labels(topic, event.type, result.outcome).inc()
        metrics.EVENT_HANDLING.labels(topic).observe(time.perf_counter() - started)

    def _take_tombstone(self, message) -> None:
        """A tombstone ends an entity. After compaction it may be all a late reader ever sees of an
        erasure, so it erases too; erasing twice is harmless."""
        handlers = self.tombstone_handlers.get(message.topic)
        tenant, _, subject = (message.key or b"").decode("utf-8", "replace").partition("/")
        if not handlers:
            metrics.EVENTS_CONSUMED.labels(message.topic, "tombstone", "ignored").inc()
            return
        if not tenant or not subject:
            self._dead_letter(message, "invalid", None)
            metrics.EVENTS_CONSUMED.labels(message.topic, "tombstone", "dead_lettered").inc()
            return
        with self.db.session() as session:
            for handler in handlers:
                handler(session, tenant, subject)
        metrics.EVENTS_CONSUMED.labels(message.topic, "tombstone", "handled").inc()

    def _handle_with_retries(self, handlers: Sequence[Handler], event: Event) -> _Outcome:
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._handle_once(handlers, event)
            except EventError as exc:
                # The payload passed its schema but breaks a rule the handler checks: no retry helps.
                return _Outcome("dead_lettered", exc.reason, exc)
            except Exception as exc:
                if is_transient(exc):
                    # The database is away, read-only or busy: no fault of the message, so it must never be
                    # dead-lettered. The loop rewinds the partition and tries again after a growing wait.
                    log.warning(
                        "database unavailable; event will be retried",
                        extra={"ctx": {"event_id": event.id, "event_type": event.type, "error": describe_error(exc)}},
                    )
                    raise
                log.warning(
                    "event handler failed",
                    extra={
                        "ctx": {
                            "event_id": event.id,
                            "event_type": event.type,
                            "tenant": event.tenant,
                            "attempt": attempt,
                            "error": describe_error(exc),
                        }
                    },
                )
                if attempt == self.max_attempts:
                    return _Outcome("dead_lettered", HandlerFailed.reason, exc)
                time.sleep(self.retry_backoff_s * attempt)
        raise AssertionError("unreachable")

    def _handle_once(self, handlers: Sequence[Handler], event: Event) -> _Outcome:
        try:
            with self.db.session() as session:
                seen = session.execute(
                    sa.select(self.processed.c.event_id).where(self.processed.c.event_id == event.id)
                ).first()
                if seen:
                    return _Outcome("duplicate")
                session.execute(
                    self.processed.insert().values(event_id=event.id, event_type=event.type, processed_at=utcnow())
                )
                for handler in handlers:
                    handler(session, event)
        except IntegrityError:
            # Another replica stored the same event between our check and our insert.
            if self._already_processed(event.id):
                return _Outcome("duplicate")
            raise
        return _Outcome("handled")

    def _already_processed(self, event_id: str) -> bool:
        with self.db.session() as session:
            query = sa.select(self.processed.c.event_id).where(self.processed.c.event_id == event_id)
            return session.execute(query).first() is not None

    def _dead_letter(self, message, reason: str, error: BaseException | None) -> None:
        error_text = _error_summary(error) if error else reason
        # The message goes on unchanged, its own headers too (a trace context, its content type; an older
        # producer's message without one was read as structured CloudEvents, and is labelled so); only an
        # earlier dead-lettering's headers give way to this one's.
        original = [(name, value) for name, value in message.headers or () if not name.startswith("dlq.")]
        if content_type_of(original) is None:
            original += KAFKA_HEADERS
        headers = [
            *original,
            ("dlq.original.topic", message.topic.encode()),
            ("dlq.original.partition", str(message.partition).encode()),
            ("dlq.original.offset", str(message.offset).encode()),
            ("dlq.original.timestamp", str(message.timestamp).encode()),
            ("dlq.consumer.group", self.group_id.encode()),
            ("dlq.reason", reason.encode()),
            ("dlq.exception.class", (type(error).__name__ if error else reason).encode()),
            ("dlq.exception.message", error_text.encode("utf-8", "replace")),
        ]
        # Waiting for the acknowledgement keeps the offset uncommitted if the dead-letter write fails,
        # so the message is redelivered rather than lost.
        self.dead_letters.send(Topic.DEAD_LETTERS, key=message.key, value=message.value, headers=headers).get(30)
        metrics.DEAD_LETTERS.labels(message.topic, reason).inc()
        log.warning(
            "message dead-lettered",
            extra={
                "ctx": {
                    "topic": message.topic,
                    "partition": message.partition,
                    "offset": message.offset,
                    "reason": reason,
                    "group": self.group_id,
                }
            },
        )

    def _record_lag(self, partitions) -> None:
        lag_by_topic: dict[str, int] = {}
        for partition in partitions:
            assert isinstance(partition, TopicPartition)
            highwater = self.consumer.highwater(partition)
            if highwater is None:
                continue
            position = self.consumer.position(partition)
            lag_by_topic[partition.topic] = lag_by_topic.get(partition.topic, 0) + max(highwater - position, 0)
        for topic, lag in lag_by_topic.items():
            metrics.CONSUMER_LAG.labels(topic).set(lag)


def _error_summary(error: BaseException) -> str:
    """What a dead-letter header may say about the error: our own texts for an event we could not read
    (they name fields and rules, not values), and otherwise the class and SQLSTATE alone. A handler's or a
    database's message may quote the data it choked on, and dead letters are kept and read by operators."""
    if isinstance(error, EventError):
        return f"{type(error).__name__}: {error}"[:1000]
    return describe_error(error)
