"""The one consumer loop every worker uses: poll, decode, deduplicate, handle, dead-letter, commit.

Handlers are plain functions ``handler(session, event)`` listed in one table per worker: each event type
maps to the list of handlers that run on it, in order. A poll's messages are handled in as few database
transactions as its time budget allows (``max_transaction_s``), each holding one tenant's messages (see
:meth:`EventConsumer.poll_once`): their effects, their event ids in
``processed_events`` and any outgoing events in the outbox are committed together, and only after that
does the loop commit the poll's Kafka offsets, once. A crash or an unavailable database anywhere in a poll
rolls the open transaction back and redelivers the poll; what was already committed finds its id in
``processed_events`` and has no effect twice. A message that cannot be handled goes, unchanged, to the
dead-letter topic with headers saying where it came from and why: when a handler fails, its transaction's
messages are handled again one transaction each, so that only that message is dead-lettered and its
batch-mates keep their effects.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from sqlalchemy.dialects import postgresql, sqlite
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
# Bounds of a poll's size: at least a few messages a round trip to the broker, and at most what a poll's
# messages may hold in memory (events are a few KiB).
MIN_POLL_RECORDS = 10
MAX_POLL_RECORDS = 2000


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


def _tenant_of(message) -> bytes:
    return (message.key or b"").partition(b"/")[0]


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
        max_transaction_s: float = 0.25,
        max_poll_s: float = 5.0,
        poll_target_s: float = 1.0,
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
        dialect_insert = sqlite.insert if db.is_sqlite else postgresql.insert
        self._claim_statement = (
            dialect_insert(processed_events)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(processed_events.c.event_id)
        )
        self._unclaim = processed_events.delete().where(processed_events.c.event_id == sa.bindparam("event_id"))
        self.remember_for = remember_for
        self.retry_backoff_s = retry_backoff_s
        # A transaction holds locks (on SQLite the whole file's, on PostgreSQL a tenant's change counter)
        # until it commits: long enough to spread a commit over many cheap events, short enough that a web
        # request waiting for the same lock hardly notices.
        self.max_transaction_s = max_transaction_s
        # A poll's messages may take minutes with slow handlers; the loop goes back to poll() sooner, with
        # what it has handled committed, so that a replica joining the group (a rebalance waits for every
        # member's next poll) and the lag metrics do not wait that long.
        self.max_poll_s = max_poll_s
        # How many messages a poll asks for follows how fast they are handled, so that a poll's take lasts
        # about this long: a cheap handler gets large polls (fewer transactions, commits and round trips a
        # message), a slow one small polls (nothing fetched that the time budget would send back to be
        # fetched and decoded again). The first poll asks for the consumer's own max_poll_records.
        self.poll_target_s = poll_target_s
        self._poll_records: int | None = None
        self._rotation = random.Random()

    def poll_once(self, timeout_ms: int = 500) -> int:
        """Handle one poll's worth of messages, or as many as ``max_poll_s`` allows, and commit their offsets;
        returns how many were taken. What is left is polled again."""
        batches = list(self.consumer.poll(timeout_ms=timeout_ms, max_records=self._poll_records).items())
        if not batches:
            return 0
        started = time.perf_counter()
        # Grouped by tenant, in their order within each tenant (and so within each key), a transaction never
        # holding two tenants' messages: what a handler locks for a tenant (matching's change counter) then
        # holds up only that tenant, two transactions cannot deadlock over two tenants, and replicas of a
        # worker, which all read every tenant, handle different tenants side by side. Each poll starts at a
        # tenant of its own choosing, so that replicas seldom queue for the same tenant at once and no
        # tenant always comes last when polls are cut short by their time budget.
        messages = sorted((message for _, listed in batches for message in listed), key=_tenant_of)
        tenants = sorted({_tenant_of(message) for message in messages})
        if len(tenants) > 1:
            first_tenant = self._rotation.choice(tenants)
            messages = [m for m in messages if _tenant_of(m) >= first_tenant] + [
                m for m in messages if _tenant_of(m) < first_tenant
            ]
        try:
            events = [self._decoded(message) for message in messages]
            deadline = time.perf_counter() + self.max_poll_s
            taken = 0
            while taken < len(messages) and (taken == 0 or time.perf_counter() < deadline):
                taken = self._take_some(messages, events, taken)
            # Each partition's messages not taken yet start at the first of them (the tenant order mixes the
            # partitions, so a later one may have been taken: redelivered, deduplication skips it).
            resume: dict[TopicPartition, int] = {}
            for message in messages[taken:]:
                partition = TopicPartition(message.topic, message.partition)
                resume[partition] = min(message.offset, resume.get(partition, message.offset))
            offsets = {
                partition: OffsetAndMetadata(resume.get(partition, listed[-1].offset + 1), "", -1)
                for partition, listed in batches
                if resume.get(partition, listed[-1].offset + 1) > listed[0].offset
            }
            # Committed only after the effects are stored: a crash before this line redelivers the poll,
            # and deduplication makes the replay harmless.
            if offsets:
                self.consumer.commit(offsets)
            for partition, offset in resume.items():
                self.consumer.seek(partition, offset)
        except Exception:
            # The database or the broker is away, mid-handling or at the commit. poll() has already moved
            # every partition past its messages: rewind each to its first, or the next poll would skip them.
            for partition, listed in batches:
                self.consumer.seek(partition, listed[0].offset)
            raise
        self._record_lag([partition for partition, _ in batches])
        self._size_next_poll(taken, time.perf_counter() - started)
        return taken

    def _size_next_poll(self, taken: int, seconds: float) -> None:
        if taken == 0:
            return
        wanted = int(self.poll_target_s * taken / max(seconds, 1e-6))
        # Growing at most twofold a poll, so that one quick poll of a few messages does not ask for thousands.
        ceiling = 2 * (self._poll_records or taken)
        self._poll_records = max(MIN_POLL_RECORDS, min(MAX_POLL_RECORDS, wanted, ceiling))

    def _decoded(self, message) -> Event | EventError | None:
        """The message's event, or why it cannot be read; None for a tombstone."""
        if message.value is None:
            return None
        try:
            return decode_message(message.value, message.headers)
        except EventError as exc:
            return exc

    def _take_some(self, messages: Sequence, events: Sequence[Event | EventError | None], first: int) -> int:
        """Handle messages from ``first`` on in one transaction, until the time budget is spent or the tenant
        changes; returns the index of the first message not taken. If a handler fails, the transaction is
        rolled back and its messages are taken again one transaction each, which retries or dead-letters the
        failing one alone."""
        deadline = time.perf_counter() + self.max_transaction_s
        tenant = _tenant_of(messages[first])
        end = first + 1
        while end < len(messages) and _tenant_of(messages[end]) == tenant:
            end += 1
        outcomes: list[tuple[str, str, str, float | None]] = []
        taken = first
        failing = None
        try:
            with self.db.session() as session:
                fresh = self._claim(session, events[first:end])
                handled: set[str] = set()
                for message, event in zip(messages[first:end], events[first:end], strict=True):
                    if taken > first and time.perf_counter() > deadline:
                        break
                    taken += 1
                    failing = message
                    outcomes.append(self._take_in(session, message, event, fresh, handled))
                    failing = None
                if fresh - handled:
                    # The time budget ended the run early: what was claimed and not handled is claimed again
                    # by the transaction that takes it.
                    session.execute(self._unclaim, [{"event_id": event_id} for event_id in fresh - handled])
        except Exception as exc:
            if is_transient(exc):
                # The database is away, read-only or busy: no fault of the messages, so none is dead-lettered;
                # the loop rewinds the partitions and tries again after a growing wait.
                log.warning(
                    "database unavailable; events will be retried",
                    extra={"ctx": {"events": len(messages) - first, "error": describe_error(exc)}},
                )
                raise
            # A handler failed: one at a time, each with its own retries and deduplication.
            until = max(taken, first + 1)
            for message in messages[first:until]:
                self._take(message, exc if message is failing else None)
            return until
        for message, event in zip(messages[first:taken], events[first:taken], strict=True):
            if isinstance(event, EventError):
                self._dead_letter(message, event.reason, event)
        counted = Counter((topic, kind, outcome) for topic, kind, outcome, _ in outcomes)
        for labels, count in counted.items():
            metrics.EVENTS_CONSUMED.labels(*labels).inc(count)
        for topic, _, _, seconds in outcomes:
            if seconds is not None:
                metrics.EVENT_HANDLING.labels(topic).observe(seconds)
        return taken

    def _take_in(
        self, session: Session, message, event: Event | EventError | None, fresh: set[str], handled: set[str]
    ) -> tuple[str, str, str, float | None]:
        """One message inside the caller's transaction: (topic, type, outcome, seconds spent handling)."""
        topic = message.topic
        if event is None:
            return topic, "tombstone", self._tombstone_in(session, message), None
        if isinstance(event, EventError):
            # Dead-lettered once the transaction is committed.
            return topic, "unreadable", "dead_lettered", None
        handlers = self.handlers.get(event.type)
        if not handlers:
            # A known type this service has no interest in (another consumer's business): skip it.
            return topic, event.type, "ignored", None
        if event.id not in fresh or event.id in handled:
            return topic, event.type, "duplicate", None
        started = time.perf_counter()
        # In the event's trace and origin, so that the events its handlers write carry them on.
        span_attributes = {"messaging.destination.name": topic, "cloudevents.event_type": event.type}
        with (
            tracing.traced(f"handle {event.type}", "consumer", event.extensions, span_attributes),
            origin.following(event),
        ):
            for handler in handlers:
                handler(session, event)
        handled.add(event.id)
        return topic, event.type, "handled", time.perf_counter() - started

    def _tombstone_in(self, session: Session, message) -> str:
        handlers = self.tombstone_handlers.get(message.topic)
        tenant, _, subject = (message.key or b"").decode("utf-8", "replace").partition("/")
        if not handlers:
            return "ignored"
        if not tenant or not subject:
            # Dead-lettered by the one-at-a-time path, which this raises into.
            raise ValueError("a tombstone without a tenant and subject in its key")
        for handler in handlers:
            handler(session, tenant, subject)
        return "handled"

    def _claim(self, session: Session, events: Sequence[Event | EventError | None]) -> set[str]:
        """Record in the transaction the events of a run that this worker handles and that no transaction
        recorded before; returns their ids, the ones to handle.

        One insert that skips what is there already, rather than a look-up and a later insert: a primary
        key insert goes through the key's index whatever the table's statistics say (a look-up by a list of
        ids on a table filled faster than autovacuum analysed it was planned as a full scan), and it waits
        for another replica's uncommitted claim of the same event (after a rebalance) instead of handling
        the event beside it. The ids go in sorted, so that two claims never wait for each other."""
        kinds = {event.id: event.type for event in events if isinstance(event, Event) and event.type in self.handlers}
        if not kinds:
            return set()
        now = utcnow()
        rows = [{"event_id": key, "event_type": kinds[key], "processed_at": now} for key in sorted(kinds)]
        return set(session.execute(self._claim_statement, rows).scalars())

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

    def _take(self, message, first_failure: Exception | None = None) -> None:
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
            result = self._handle_with_retries(handlers, event, first_failure)
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

    def _handle_with_retries(
        self, handlers: Sequence[Handler], event: Event, first_failure: Exception | None = None
    ) -> _Outcome:
        """Handle the event in a transaction of its own, trying again after a failure; ``first_failure`` is
        how its first attempt, in a shared transaction, already failed."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                if attempt == 1 and first_failure is not None:
                    raise first_failure
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
        with self.db.session() as session:
            if not self._claim(session, [event]):
                return _Outcome("duplicate")
            for handler in handlers:
                handler(session, event)
        return _Outcome("handled")

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
