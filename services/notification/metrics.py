"""The notification service's own Prometheus metrics (the common ones are in :mod:`shared.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from services.notification import domain

ALERTS_CREATED = Counter(
    "werkbrug_alerts_created", "Alerts put in an inbox, a jobcoach's or the region's operators'", ["tenant", "type"]
)
# Per region, so that one region's failing receivers or mail relay page that region's operators, not all.
ALERT_DELIVERIES = Counter(
    "werkbrug_alert_deliveries",
    "Alert delivery attempts by region, channel and outcome",
    ["tenant", "channel", "outcome"],
)
# 1 s, the alert-latency target, is a bucket boundary, so that the share within target is exact.
ALERT_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
# Neither histogram is per region: 35 regions would multiply their buckets, and the target is the platform's.
ALERT_LATENCY = Histogram(
    "werkbrug_alert_latency_seconds",
    "From the source event's time to the alert being stored",
    buckets=ALERT_LATENCY_BUCKETS,
)
ALERT_ORIGIN_LATENCY = Histogram(
    "werkbrug_alert_origin_latency_seconds",
    "From the request or decision that set the chain off (e.g. the vacancy's POST) to the alert being stored",
    buckets=ALERT_LATENCY_BUCKETS,
)

# The dashboards know two channels: a digest is mail too.
DELIVERY_CHANNELS = (domain.WEBHOOK, domain.EMAIL)
DELIVERY_OUTCOMES = ("delivered", "retrying", "failed")


def prime_tenant_series(tenants: list[str]) -> None:
    """Create the per-tenant series at start-up so that dashboards and alerts see zeros, not gaps."""
    for tenant in tenants:
        for alert_type in domain.ALERT_TYPES:
            ALERTS_CREATED.labels(tenant, alert_type)
        _prime_deliveries(tenant)


def _prime_deliveries(tenant: str) -> None:
    for channel in DELIVERY_CHANNELS:
        for outcome in DELIVERY_OUTCOMES:
            ALERT_DELIVERIES.labels(tenant, channel, outcome)


def count_alert_created(tenant: str, alert_type: str) -> None:
    ALERTS_CREATED.labels(tenant, alert_type).inc()
    # A region created after this process started gets its delivery series with its first alert, so that
    # its failure share starts from zero rather than from a gap.
    _prime_deliveries(tenant)
