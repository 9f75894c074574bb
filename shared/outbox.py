"""The transactional outbox.

A service writes its state change and the event describing it in one local database transaction, so
that an event exists if and only if the change does. A relay in the service's worker publishes pending
rows with an idempotent producer (``acks=all``) and marks them sent only after Kafka has acknowledged
them. A crash between acknowledgement and marking publishes a row twice; consumers drop the second copy
by its event id, so the effect still happens once.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from kafka import KafkaProducer
from sqlalchemy.orm import Session

from shared import metrics, origin, tracing
from shared.db import (
    Database,
    PreparedStatement,
    UtcDateTime,
    affected_rows,
    describe_error,
    is_transient,
    utcnow,
)
from shared.events import CONTENT_TYPE_HEADER, KAFKA_HEADERS, content_type_of, encode_event, message_key
from shared.loops import Every, periodic
from shared.topics import Topic

log = logging.getLogger(__name__)

# An arbitrary constant naming "the outbox relays" among PostgreSQL advisory locks.
_RELAY_LOCK_CLASS = 0x5765726B


def outbox_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=True, unique=True),
        sa.Column("topic", sa.String(100), nullable=False),
        sa.Column("message_key", sa.String(300), nullable=False),
        # NULL is a tombstone: compaction then drops every earlier message with this key.
        sa.Column("payload", sa.Text, nullable=True),
        # Kafka headers as [name, value] pairs besides the CloudEvents content type, which the relay adds:
        # an event's trace context, a dead letter's reasons.
        sa.Column("headers", sa.JSON, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
        sa.Column("published_at", UtcDateTime, nullable=True),
        sa.Index("ix_outbox_pending", "published_at", "id"),
    )


class Outbox:
    """Adds events to a service's outbox table inside the caller's transaction."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table
        # Prepared once: on SQLite an event's insert usually runs while its transaction holds the database's
        # write lock, which every other writer waits for.
        self._insert = PreparedStatement(table.insert())

    def add(self, session: Session, document: dict) -> None:
        """Queue an event; it carries the trace of the request or event handling that wrote it (see
        :mod:`shared.tracing`), in the document and in Kafka headers for tools that read only those, and
        the origin of the event being handled, if any (see :mod:`shared.origin`), in the document."""
        document = origin.stamp(tracing.stamp(document))
        trace_headers = [
            [name, document[name]] for name in (tracing.TRACEPARENT, tracing.TRACESTATE) if name in document
        ]
        row = {
            "event_id": document["id"],
            "topic": str(_topic_of(document)),
            "message_key": message_key(document["tenant"], document["subject"]),
            "payload": encode_event(document).decode("utf-8"),
            "headers": trace_headers or None,
            "created_at": utcnow(),
        }
        # The row is made before the connection is asked for: that may begin the transaction, and with it
        # SQLite's write lock.
        self._insert.execute(session.connection(), row)

    def add_tombstone(self, session: Session, topic: Topic, tenant: str, subject: str) -> None:
        self._insert.execute(
            session.connection(),
            {
                "event_id": None,
                "topic": str(topic),
                "message_key": message_key(tenant, subject),
                "payload": None,
                "headers": None,
                "created_at": utcnow(),
            },
        )

    def add_dead_letter(
        self, session: Session, tenant: str, subject: str, payload: str, headers: dict[str, str]
    ) -> None:
        """Queue a message for the dead-letter topic in the caller's transaction, e.g. an alert whose
        delivery gave up: it goes out with the same guarantees as the service's events."""
        self._insert.execute(
            session.connection(),
            {
                "event_id": None,
                "topic": str(Topic.DEAD_LETTERS),
                "message_key": message_key(tenant, subject),
                "payload": payload,
                # The alert document as it would have gone out, not a CloudEvent: said so, so that a reader
                # of dead letters can tell it from the events that failed their consumers.
                "headers": [[CONTENT_TYPE_HEADER, "application/json"], *map(list, headers.items())],
                "created_at": utcnow(),
            },
        )

    def forget(self, session: Session, keys: Iterable[str]) -> int:
        """Delete every row under these message keys, published or not, in the caller's transaction: an
        erasure leaves no copy of what the events said, not even for the day published rows are kept."""
        keys = list(keys)
        deleted = 0
        # In slices, so that a candidate with many placements or alerts stays under any bind-parameter limit.
        for start in range(0, len(keys), 500):
            where = self.table.c.message_key.in_(keys[start : start + 500])
            deleted += affected_rows(session.execute(self.table.delete().where(where)))
        return deleted

    def pending_count(self, session: Session) -> int:
        query = sa.select(sa.func.count()).select_from(self.table).where(self.table.c.published_at.is_(None))
        return session.execute(query).scalar_one()


def _topic_of(document: dict) -> Topic:
    from shared.events import EVENT_TYPES

    return EVENT_TYPES[document["type"]].topic


def kafka_headers(payload: str | None, stored: list | None) -> list[tuple[str, bytes]]:
    """A row's Kafka headers: those stored with it, and the CloudEvents binding's content type for an event.
    Added here rather than stored, so that rows written before the binding went out with it too. A
    tombstone has no value, so nothing for a content type to describe."""
    headers = [(str(name), str(value).encode("utf-8")) for name, value in stored or ()]
    if payload is not None and content_type_of(headers) is None:
        headers += KAFKA_HEADERS
    return headers


class SqliteRelayTurn:
    """One relay at a time per SQLite file, the way PostgreSQL's advisory lock gives one per schema.

    With SQLite the relay reads, publishes and marks in separate transactions (it must not hold the only
    write lock while Kafka is slow), so two relays can publish the same rows. An exclusive ``flock`` on a
    file beside the database, taken without waiting for each batch, makes the second relay wait its turn
    instead. A SQLite database lives on one machine's disk, so a lock on that machine covers every relay
    that can open it; the kernel drops it when the holder dies, so a crash never leaves it held.
    """

    def __init__(self, database_file: str | None) -> None:
        self.path: Path | None = None  # in memory
        if database_file is not None:
            self.path = Path(f"{os.path.abspath(database_file)}.outbox-relay.lock")
        self._memory_lock = threading.Lock()
        self._told = False

    @contextlib.contextmanager
    def __call__(self) -> Iterator[bool]:
        """True inside the block when this relay holds the turn, False when another one does."""
        if self.path is None:
            # An in-memory database belongs to this process alone; its relays share this lock.
            got = self._memory_lock.acquire(blocking=False)
            try:
                yield got
            finally:
                if got:
                    self._memory_lock.release()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._tell_once()
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _tell_once(self) -> None:
        if not self._told:
            self._told = True
            log.warning(
                "With SQLite, two outbox relays can publish the same rows: another relay holds this "
                "database's relay lock, so this one publishes only while that one does not",
                extra={"ctx": {"reason": "sqlite-relay-lock"}},
            )


class OutboxRelay:
    """Publishes pending outbox rows in insertion order, so that one entity's events keep their order."""

    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        producer: KafkaProducer,
        *,
        producer_factory: Callable[[], KafkaProducer] | None = None,
        batch_size: int = 200,
        keep_published: timedelta = timedelta(days=1),
    ) -> None:
        self.db = db
        self.table = outbox.table
        self.outbox = outbox
        self.producer = producer
        self.producer_factory = producer_factory
        self.batch_size = batch_size
        self.keep_published = keep_published
        self._sqlite_turn = SqliteRelayTurn(db.sqlite_file) if db.is_sqlite else None

    def publish_batch(self, send_timeout_s: float = 30.0) -> int:
        """Publish one batch; returns how many rows went out. Raises when Kafka did not take them."""
        if self._sqlite_turn is not None:
            # SQLite has one writer at a time: holding its lock while Kafka is away would make every
            # POST wait, so read, publish and mark in separate short transactions, under a lock of the
            # relays' own so that a second relay cannot publish the same rows meanwhile.
            with self._sqlite_turn() as mine:
                if not mine:
                    return 0
                with self.db.session() as session:
                    rows = session.execute(self._pending_rows()).all()
                if rows:
                    self._send(rows, send_timeout_s)
                with self.db.session() as session:
                    self._mark_published(session, rows)
                return len(rows)
        with self.db.session() as session:
            # One relay at a time publishes, so that one entity's events keep their order across
            # replicas; the others wait their turn. Row locks do not block the web processes' inserts.
            if not session.execute(self._relay_turn()).scalar():
                return 0
            rows = session.execute(self._pending_rows()).all()
            if rows:
                self._send(rows, send_timeout_s)
            self._mark_published(session, rows)
        return len(rows)

    def _relay_turn(self) -> sa.TextClause:
        # Keyed by the schema as well, so that services sharing one PostgreSQL database (each in a schema
        # of its own) do not wait for each other's relays.
        return sa.text(
            "SELECT pg_try_advisory_xact_lock(:lock_class, hashtext(current_schema() || '.' || :table))"
        ).bindparams(lock_class=_RELAY_LOCK_CLASS, table=self.table.name)

    def _pending_rows(self) -> sa.Select:
        columns = self.table.c
        return (
            sa.select(columns.id, columns.topic, columns.message_key, columns.payload, columns.headers)
            .where(self.table.c.published_at.is_(None))
            .order_by(self.table.c.id)
            .limit(self.batch_size)
        )

    def _send(self, rows, send_timeout_s: float) -> None:
        futures = [
            self.producer.send(
                row.topic,
                key=row.message_key.encode("utf-8"),
                value=row.payload.encode("utf-8") if row.payload is not None else None,
                headers=kafka_headers(row.payload, row.headers),
            )
            for row in rows
        ]
        self.producer.flush(timeout=send_timeout_s)
        for future in futures:
            future.get(timeout=send_timeout_s)

    def _mark_published(self, session: Session, rows) -> None:
        if rows:
            session.execute(
                self.table.update().where(self.table.c.id.in_([row.id for row in rows])).values(published_at=utcnow())
            )
            for row in rows:
                metrics.OUTBOX_PUBLISHED.labels(row.topic).inc()
        metrics.OUTBOX_PENDING.set(self.outbox.pending_count(session))

    def _replace_producer(self) -> None:
        """A producer that keeps failing after the broker came back may hold stale metadata or a fenced
        producer id; a fresh one starts clean. Rows stay pending meanwhile, so nothing is lost."""
        if self.producer_factory is None:
            return
        try:
            fresh = self.producer_factory()
        except Exception as exc:
            log.warning("could not reconnect the outbox producer", extra={"ctx": {"error": type(exc).__name__}})
            return
        old, self.producer = self.producer, fresh
        try:
            old.close(timeout=0)
        except Exception as exc:
            # A producer stuck on a dead broker may refuse to close in time; it is dropped all the same.
            log.warning("could not close the old outbox producer", extra={"ctx": {"error": type(exc).__name__}})

    def purge_published(self) -> int:
        cutoff = utcnow() - self.keep_published
        with self.db.session() as session:
            result = session.execute(
                self.table.delete().where(self.table.c.published_at.is_not(None), self.table.c.published_at < cutoff)
            )
        return affected_rows(result)

    def run(self, stop: threading.Event, idle_wait_s: float = 0.05, max_backoff_s: float = 5.0) -> None:
        """Publish until ``stop`` is set; back off while Kafka is away, never give a row up."""
        purge = Every(600)
        broker_failures = 0

        def step() -> bool:
            nonlocal broker_failures
            try:
                published = self.publish_batch()
            except Exception as exc:
                metrics.OUTBOX_ERRORS.inc()
                if is_transient(exc):
                    # The database is away or read-only: the rows wait in it, the producer is not at fault.
                    log.warning("outbox database unavailable", extra={"ctx": {"error": describe_error(exc)}})
                else:
                    broker_failures += 1
                raise
            broker_failures = 0
            if purge.due():
                self.purge_published()
            return published >= self.batch_size

        def on_error(_failures: int) -> None:
            # A producer that failed three times in a row may be stuck on a dead connection: start afresh.
            if broker_failures and broker_failures % 3 == 0:
                self._replace_producer()

        periodic(
            "outbox-relay", step, every_s=idle_wait_s, retry_s=0.2, max_retry_s=max_backoff_s, on_error=on_error
        ).run(stop)
