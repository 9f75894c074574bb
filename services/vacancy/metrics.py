"""The vacancy service's own Prometheus metrics (the common ones are in :mod:`shared.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter

VACANCIES_POSTED = Counter("werkbrug_vacancies_posted", "Vacancies posted", ["tenant"])


def prime_tenant_series(tenants: list[str]) -> None:
    """Create the per-tenant series at start-up so that dashboards and alerts see zeros, not gaps."""
    for tenant in tenants:
        VACANCIES_POSTED.labels(tenant)
