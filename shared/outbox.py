"""The transactional outbox.

A service writes its state change and the event describing it in one local database transaction, so
that an event exists if and only if the change does. A relay in the service's worker publishes pending
rows with an idempotent producer (``acks=all``) and marks them sent only after Kafka has acknowledged
them. A crash between acknowledgement and marking publishes a row twice; consumers drop the second copy
by its event id, so the effect still happens once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from kafka import KafkaProducer
from sqlalchemy.orm import Session

from shared import metrics
from shared.db import Database, UtcDateTime, is_sqlite, utcnow
from shared.events import encode_event, message_key
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
        # Kafka headers as [name, value] pairs, for the few messages that carry any (dead letters).
        sa.Column("headers", sa.JSON, nullable=True),
        sa.Column("created_at", UtcDateTime, nullable=False, default=utcnow),
        sa.Column("published_at", UtcDateTime, nullable=True),
        sa.Index("ix_outbox_pending", "published_at", "id"),
    )


class Outbox:
    """Adds events to a service's outbox table inside the caller's transaction."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table

    def add(self, session: Session, document: dict) -> None:
        session.execute(
            self.table.insert().values(
                event_id=document["id"],
                topic=str(_topic_of(document)),
                message_key=message_key(document["tenant"], document["subject"]),
                payload=encode_event(document).decode("utf-8"),
                created_at=utcnow(),
            )
        )

    def add_tombstone(self, session: Session, topic: Topic, tenant: str, subject: str) -> None:
        session.execute(
            self.table.insert().values(
                event_id=None,
                topic=str(topic),
                message_key=message_key(tenant, subject),
                payload=None,
                created_at=utcnow(),
            )
        )

    def add_dead_letter(
        self, session: Session, tenant: str, subject: str, payload: str, headers: dict[str, str]
    ) -> None:
        """Queue a message for the dead-letter topic in the caller's transaction, e.g. an alert whose
        delivery gave up: it goes out with the same guarantees as the service's events."""
        session.execute(
            self.table.insert().values(
                event_id=None,
                topic=str(Topic.DEAD_LETTERS),
                message_key=message_key(tenant, subject),
                payload=payload,
                headers=[[name, value] for name, value in headers.items()],
                created_at=utcnow(),
            )
        )

    def pending_count(self, session: Session) -> int:
        query = sa.select(sa.func.count()).select_from(self.table).where(self.table.c.published_at.is_(None))
        return session.execute(query).scalar_one()


def _topic_of(document: dict) -> Topic:
    from shared.events import EVENT_TYPES

    return EVENT_TYPES[document["type"]].topic


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

    def publish_batch(self, send_timeout_s: float = 30.0) -> int:
        """Publish one batch; returns how many rows went out. Raises when Kafka did not take them."""
        if is_sqlite(self.db.engine):
            # SQLite has one writer at a time: holding its lock while Kafka is away would make every
            # POST wait, so read, publish and mark in separate short transactions.
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
                headers=[(str(name), str(value).encode("utf-8")) for name, value in row.headers or ()],
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
        old.close(timeout=0)

    def purge_published(self) -> int:
        cutoff = utcnow() - self.keep_published
        with self.db.session() as session:
            result = session.execute(
                self.table.delete().where(self.table.c.published_at.is_not(None), self.table.c.published_at < cutoff)
            )
        return result.rowcount or 0

    def run(self, stop: threading.Event, idle_wait_s: float = 0.05, max_backoff_s: float = 5.0) -> None:
        """Publish until ``stop`` is set; back off while Kafka is away, never give a row up."""
        purge = Every(600)

        def step() -> bool:
            try:
                published = self.publish_batch()
            except Exception:
                metrics.OUTBOX_ERRORS.inc()
                raise
            if purge.due():
                self.purge_published()
            return published >= self.batch_size

        def on_error(failures: int) -> None:
            # A producer that failed three times in a row may be stuck on a dead connection: start afresh.
            if failures % 3 == 0:
                self._replace_producer()

        periodic(
            "outbox-relay", step, every_s=idle_wait_s, retry_s=0.2, max_retry_s=max_backoff_s, on_error=on_error
        ).run(stop)
