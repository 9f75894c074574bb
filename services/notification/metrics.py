"""The notification service's own Prometheus metrics (the common ones are in :mod:`shared.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from services.notification import domain

ALERTS_CREATED = Counter(
    "werkbrug_alerts_created", "Alerts put in an inbox, a jobcoach's or the region's operators'", ["tenant", "type"]
)
ALERT_DELIVERIES = Counter(
    "werkbrug_alert_deliveries", "Alert delivery attempts by channel and outcome", ["channel", "outcome"]
)
ALERT_LATENCY = Histogram(
    "werkbrug_alert_latency_seconds",
    "From the source event's time to the alert being stored",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)

# The dashboards know two channels: a digest is mail too.
DELIVERY_CHANNELS = (domain.WEBHOOK, domain.EMAIL)
DELIVERY_OUTCOMES = ("delivered", "retrying", "failed")


def prime_tenant_series(tenants: list[str]) -> None:
    """Create the per-tenant series at start-up so that dashboards and alerts see zeros, not gaps."""
    for tenant in tenants:
        for alert_type in domain.ALERT_TYPES:
            ALERTS_CREATED.labels(tenant, alert_type)


def prime_delivery_series() -> None:
    for channel in DELIVERY_CHANNELS:
        for outcome in DELIVERY_OUTCOMES:
            ALERT_DELIVERIES.labels(channel, outcome)
