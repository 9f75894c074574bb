"""Prometheus metrics shared by the processes. Names follow the base-unit and ``_total`` conventions.

Web processes run under gunicorn in multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` is set by the gunicorn
config before any worker imports this); workers use the default registry and serve it on a port of their
own. Only a few counters carry a ``tenant`` label, so that 35 regions do not multiply every histogram.
"""

from __future__ import annotations

import logging
import os

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

VACANCIES_POSTED = Counter("werkbrug_vacancies_posted", "Vacancies posted", ["tenant"])
CANDIDATES_REGISTERED = Counter("werkbrug_candidates_registered", "Candidates registered", ["tenant"])
MATCHES_PROPOSED = Counter("werkbrug_matches_proposed", "Matches proposed to jobcoaches", ["tenant"])
ALERTS_CREATED = Counter("werkbrug_alerts_created", "Alerts put in a jobcoach's inbox", ["tenant", "type"])
ALERT_DELIVERIES = Counter(
    "werkbrug_alert_deliveries", "Alert delivery attempts by channel and outcome", ["channel", "outcome"]
)
ALERT_LATENCY = Histogram(
    "werkbrug_alert_latency_seconds",
    "From the source event's time to the alert being stored",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)

ALERT_TYPES = ("match_proposed", "placement_at_risk", "checkin_overdue", "placement_at_risk_escalated")

# Who gets seen: candidates shown to employers or proposed to jobcoaches, per ladder step and whether they
# are in the target-group register, so that a group left out systematically shows up as a flat line.
CANDIDATE_EXPOSURES = Counter(
    "werkbrug_candidate_exposures",
    "Candidates shown to employers or proposed to jobcoaches",
    ["tenant", "ladder_step", "target_group", "kind"],
)
EXPOSURE_KINDS = ("shown", "proposed")
LADDER_STEP_LABELS = ("1", "2", "3", "4", "5", "6")
MATCHING_INDEX_BUILD = Histogram(
    "werkbrug_matching_index_build_seconds",
    "Time to build a tenant's matching index from its database (initial) or to refit it (refit)",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def prime_tenant_series(tenants: list[str]) -> None:
    """Create the per-tenant series at start-up so that dashboards and alerts see zeros, not gaps."""
    for tenant in tenants:
        VACANCIES_POSTED.labels(tenant)
        CANDIDATES_REGISTERED.labels(tenant)
        MATCHES_PROPOSED.labels(tenant)
        for alert_type in ALERT_TYPES:
            ALERTS_CREATED.labels(tenant, alert_type)
        for step in LADDER_STEP_LABELS:
            for target_group in ("yes", "no"):
                for kind in EXPOSURE_KINDS:
                    CANDIDATE_EXPOSURES.labels(tenant, step, target_group, kind)


DEAD_LETTER_REASONS = ("undecodable", "unknown_type", "invalid", "handler_error")
DELIVERY_CHANNELS = ("webhook", "email")
DELIVERY_OUTCOMES = ("delivered", "retrying", "failed")


def prime_consumer_series(topics: list[str]) -> None:
    """Dead-letter counters exist from the start, so that the first dead letter is an increase."""
    for topic in topics:
        CONSUMER_LAG.labels(topic)
        for reason in DEAD_LETTER_REASONS:
            DEAD_LETTERS.labels(topic, reason)


def prime_delivery_series() -> None:
    for channel in DELIVERY_CHANNELS:
        for outcome in DELIVERY_OUTCOMES:
            ALERT_DELIVERIES.labels(channel, outcome)


def prime_tenant_series_from(registry) -> None:
    """Prime the per-tenant series for every tenant the key registry knows."""
    try:
        prime_tenant_series(registry.tenant_slugs())
    except Exception as exc:
        # A tenant's series then appear with its first event; serving matters more than a zero.
        log.warning("could not list tenants for metrics", extra={"ctx": {"error": type(exc).__name__}})


def render_latest() -> bytes:
    """The exposition for ``/metrics``: every gunicorn worker's files when in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()
