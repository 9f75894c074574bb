"""The candidate service's own Prometheus metrics (the common ones are in :mod:`shared.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter

CANDIDATES_REGISTERED = Counter("werkbrug_candidates_registered", "Candidates registered", ["tenant"])


def prime_tenant_series(tenants: list[str]) -> None:
    """Create the per-tenant series at start-up so that dashboards and alerts see zeros, not gaps."""
    for tenant in tenants:
        CANDIDATES_REGISTERED.labels(tenant)
