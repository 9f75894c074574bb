"""The background process every service runs beside its web app: a few loops in threads, one port for
metrics and health (see :mod:`shared.health`).

Each loop is a callable taking a ``threading.Event`` and returning when it is set. SIGTERM or SIGINT sets
it; a loop that dies unexpectedly stops the others and the process exits non-zero, so that whatever
supervises it restarts it. On the way out the consumer is closed, which leaves its group, before the
process exits.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from socketserver import ThreadingMixIn
from typing import TypeVar
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import sqlalchemy as sa
from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.errors import KafkaError
from prometheus_client import make_wsgi_app

from shared import audit, metrics, tracing
from shared.config import Settings
from shared.consumer import EventConsumer, HandlerTable, TombstoneTable
from shared.db import Database, utcnow
from shared.health import PROCESS_HEALTH, ProcessHealth
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


class _HoldingPartitions(ConsumerRebalanceListener):
    """Ready from the end of a group join that gave partitions until the next rebalance takes them away.

    A join made before the consumer's metadata knows a topic hands out nothing, and the next join all:
    an empty assignment is not ready. (So a replica beyond the partition count is never ready either:
    no event flows through it; the autoscalers stop at the partition count.)
    """

    def __init__(self, set_ready: Callable[[bool], None]) -> None:
        self.set_ready = set_ready

    def on_partitions_revoked(self, revoked) -> None:
        self.set_ready(False)

    def on_partitions_assigned(self, assigned) -> None:
        self.set_ready(bool(assigned))


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
    health: ProcessHealth = PROCESS_HEALTH,
) -> WorkerLoop:
    metrics.prime_consumer_series(topics)
    holding_partitions = health.condition("consumer holds its partitions")

    def run(stop: threading.Event) -> None:
        bootstrap = settings.kafka_bootstrap_servers
        consumer = connect_with_retry(
            lambda: make_consumer(
                bootstrap, settings.consumer_group, f"{settings.service}-consumer", settings.group_instance_id
            ),
            stop,
            "consumer",
        )
        dead_letters = connect_with_retry(
            lambda: make_producer(bootstrap, f"{settings.service}-dead-letters"), stop, "dead letters"
        )
        if consumer is None or dead_letters is None:
            return
        _wait_for_topics(consumer, topics, stop)
        consumer.subscribe(topics, listener=_HoldingPartitions(holding_partitions))
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
            # EventConsumer.run has closed the consumer by now, which leaves the group (a static member
            # keeps its place for the session timeout instead, to come back to).
            holding_partitions(False)
            dead_letters.close(timeout=5)

    return WorkerLoop("consumer", run)


def health_app(health: ProcessHealth, stopping: threading.Event):
    """The worker's port: ``/livez`` (every loop comes round), ``/readyz`` (events flow), anything else
    the Prometheus metrics."""
    metrics_app = make_wsgi_app()

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/livez":
            stalled = health.stalled()
            body = {"status": "live" if not stalled else "stalled", "stalled": stalled}
            ok = not stalled
        elif path == "/readyz":
            waiting = health.not_ready() + (["stopping"] if stopping.is_set() else [])
            body = {"status": "ready" if not waiting else "not ready", "waiting_for": waiting}
            ok = not waiting
        else:
            return metrics_app(environ, start_response)
        start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        # Probes every few seconds would drown the process's own log.
        pass


def serve_health(host: str, port: int, app) -> WSGIServer:
    server = make_server(host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server


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
    server = serve_health(settings.host, settings.worker_metrics_port, health_app(PROCESS_HEALTH, stop))
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
    server.shutdown()
    return 1 if failed.is_set() else 0


def main_for(
    settings: Settings,
    loops: list[WorkerLoop],
    on_start: Callable[[], None] | None = None,
    prime_tenant_metrics: Callable[[list[str]], None] | None = None,
) -> None:
    """Run the worker until it is stopped; ``prime_tenant_metrics`` creates the service's per-tenant series."""
    sys.exit(run_worker(settings, loops, on_start, prime_tenant_metrics))
