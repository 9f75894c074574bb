"""Prometheus metrics every service has (HTTP, outbox, consumer, event handling), and the helpers a service's
own metrics (``services/<name>/metrics.py``) use. Names follow the base-unit and ``_total`` conventions.

Web processes run under gunicorn in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` is set by the gunicorn
config before any worker imports this); workers use the default registry and serve it on a port of their
own. Only a few counters carry a ``tenant`` label, so that 35 regions do not multiply every histogram.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("werkbrug_http_requests", "HTTP requests answered", ["method", "route", "status"])
HTTP_DURATION = Histogram(
    "werkbrug_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

OUTBOX_PUBLISHED = Counter("werkbrug_outbox_published", "Events published from the outbox", ["topic"])
OUTBOX_PENDING = Gauge("werkbrug_outbox_pending_events", "Outbox events not yet published", multiprocess_mode="max")
OUTBOX_ERRORS = Counter("werkbrug_outbox_publish_errors", "Failed attempts to publish an outbox batch")

EVENTS_CONSUMED = Counter(
    "werkbrug_events_consumed", "Events taken from Kafka by outcome", ["topic", "type", "outcome"]
)
DEAD_LETTERS = Counter("werkbrug_dead_letters", "Messages sent to the dead-letter topic", ["topic", "reason"])
CONSUMER_LAG = Gauge(
    "werkbrug_consumer_lag_messages", "Messages behind the end of the topic", ["topic"], multiprocess_mode="max"
)
EVENT_HANDLING = Histogram(
    "werkbrug_event_handling_duration_seconds",
    "Time to handle one event, database commit included",
    ["topic"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)

DEAD_LETTER_REASONS = ("undecodable", "unknown_type", "invalid", "handler_error")


def prime_consumer_series(topics: list[str]) -> None:
    """Dead-letter counters exist from the start, so that the first dead letter is an increase."""
    for topic in topics:
        CONSUMER_LAG.labels(topic)
        for reason in DEAD_LETTER_REASONS:
            DEAD_LETTERS.labels(topic, reason)


def prime_tenant_series_from(registry, prime: Callable[[list[str]], None]) -> None:
    """Create a service's per-tenant series (``prime`` does, given the tenants) for every tenant the key
    registry knows, so that dashboards and alerts see zeros, not gaps."""
    try:
        tenants = registry.tenant_slugs()
    except Exception as exc:
        # A tenant's series then appear with its first event; serving matters more than a zero.
        log.warning("could not list tenants for metrics", extra={"ctx": {"error": type(exc).__name__}})
        return
    prime(tenants)


def render_latest() -> bytes:
    """The exposition for ``/metrics``: every gunicorn worker's files when in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()
