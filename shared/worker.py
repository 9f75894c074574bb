"""The background process every service runs beside its web app: a few loops in threads, one metrics port.

Each loop is a callable taking a ``threading.Event`` and returning when it is set. SIGTERM or SIGINT sets
it; a loop that dies unexpectedly stops the others and the process exits non-zero, so that whatever
supervises it restarts it.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa
from kafka import KafkaConsumer
from kafka.errors import KafkaError
from prometheus_client import start_http_server

from shared import audit, metrics, tracing
from shared.config import Settings
from shared.consumer import EventConsumer, HandlerTable, TombstoneTable
from shared.db import Database, utcnow
from shared.kafka import make_consumer, make_producer
from shared.logging import configure_logging
from shared.loops import WorkerLoop, periodic
from shared.outbox import Outbox, OutboxRelay
from shared.registry import Registry

log = logging.getLogger(__name__)

T = TypeVar("T")


def connect_with_retry(factory: Callable[[], T], stop: threading.Event, what: str) -> T | None:
    """Build a Kafka client, retrying while the broker is not up yet; None if asked to stop meanwhile."""
    delay = 0.5
    while not stop.is_set():
        try:
            return factory()
        except KafkaError as exc:
            log.warning("waiting for Kafka", extra={"ctx": {"reason": what, "error": type(exc).__name__}})
            stop.wait(delay)
            delay = min(delay * 2, 5.0)
    return None


def _wait_for_topics(consumer: KafkaConsumer, topics: list[str], stop: threading.Event) -> None:
    # Subscribing before the topics exist would leave the consumer idle until its next metadata refresh.
    while not stop.is_set():
        try:
            if set(topics) <= consumer.topics():
                return
        except KafkaError:
            pass
        stop.wait(0.5)


def outbox_relay_loop(settings: Settings, db: Database, outbox: Outbox) -> WorkerLoop:
    def new_producer():
        return make_producer(settings.kafka_bootstrap_servers, f"{settings.service}-outbox-relay")

    def run(stop: threading.Event) -> None:
        producer = connect_with_retry(new_producer, stop, "relay")
        if producer is None:
            return
        relay = OutboxRelay(db, outbox, producer, producer_factory=new_producer)
        try:
            relay.run(stop, idle_wait_s=settings.outbox_poll_seconds)
        finally:
            relay.producer.close(timeout=5)

    return WorkerLoop("outbox-relay", run)


def audit_purge_loop(
    settings: Settings, db: Database, table: sa.Table, clock: Callable[[], datetime] = utcnow, every_s: float = 3600
) -> WorkerLoop:
    """Delete audit rows older than the retention period, a batch at a time until none is left, then hourly."""

    def step() -> bool:
        with db.session() as session:
            purged = audit.purge(session, table, audit.retention_cutoff(clock(), settings.audit_retention_days))
        return purged >= audit.PURGE_BATCH

    return periodic("audit-purge", step, every_s, max_retry_s=60)


def consumer_loop(
    settings: Settings,
    db: Database,
    processed_events: sa.Table,
    topics: list[str],
    handlers: HandlerTable,
    tombstone_handlers: TombstoneTable | None = None,
) -> WorkerLoop:
    metrics.prime_consumer_series(topics)

    def run(stop: threading.Event) -> None:
        bootstrap = settings.kafka_bootstrap_servers
        consumer = connect_with_retry(
            lambda: make_consumer(bootstrap, settings.consumer_group, f"{settings.service}-consumer"), stop, "consumer"
        )
        dead_letters = connect_with_retry(
            lambda: make_producer(bootstrap, f"{settings.service}-dead-letters"), stop, "dead letters"
        )
        if consumer is None or dead_letters is None:
            return
        _wait_for_topics(consumer, topics, stop)
        consumer.subscribe(topics)
        try:
            EventConsumer(
                db=db,
                processed_events=processed_events,
                consumer=consumer,
                dead_letter_producer=dead_letters,
                group_id=settings.consumer_group,
                handlers=handlers,
                tombstone_handlers=tombstone_handlers,
            ).run(stop)
        finally:
            dead_letters.close(timeout=5)

    return WorkerLoop("consumer", run)


def run_worker(
    settings: Settings,
    loops: list[WorkerLoop],
    on_start: Callable[[], None] | None = None,
    prime_tenant_metrics: Callable[[list[str]], None] | None = None,
) -> int:
    configure_logging(settings.service, settings.log_level)
    tracing.configure(f"{settings.service}-worker")
    stop = threading.Event()
    failed = threading.Event()

    def _stop(signum, _frame):
        log.info("stopping worker", extra={"ctx": {"reason": signal.Signals(signum).name}})
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if prime_tenant_metrics is not None:
        metrics.prime_tenant_series_from(Registry(Database(settings.registry_database_url)), prime_tenant_metrics)
    start_http_server(settings.worker_metrics_port, addr=settings.host)
    if on_start is not None:
        on_start()

    def _guarded(loop: WorkerLoop) -> None:
        try:
            loop.run(stop)
        except Exception:
            log.exception("worker loop died", extra={"ctx": {"reason": loop.name}})
            failed.set()
            stop.set()

    threads = [threading.Thread(target=_guarded, args=(loop,), name=loop.name, daemon=True) for loop in loops]
    for thread in threads:
        thread.start()
    log.info("worker started", extra={"ctx": {"count": len(threads), "port": settings.worker_metrics_port}})
    while not stop.wait(0.5):
        pass
    for thread in threads:
        thread.join(timeout=15)
    tracing.shutdown()
    return 1 if failed.is_set() else 0


def main_for(
    settings: Settings,
    loops: list[WorkerLoop],
    on_start: Callable[[], None] | None = None,
    prime_tenant_metrics: Callable[[list[str]], None] | None = None,
) -> None:
    """Run the worker until it is stopped; ``prime_tenant_metrics`` creates the service's per-tenant series."""
    sys.exit(run_worker(settings, loops, on_start, prime_tenant_metrics))
