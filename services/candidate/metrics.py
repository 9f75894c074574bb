"""The candidate service's own Prometheus metrics (the common ones are in :mod:`shared.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter

CANDIDATES_REGISTERED = Counter("werkbrug_candidates_registered", "Candidates registered", ["tenant"])
HANDOVERS = Counter("werkbrug_candidate_handovers", "Candidates handed over to another jobcoach", ["tenant"])
LADDER_RISES = Counter("werkbrug_candidate_ladder_rises", "Ladder steps raised by the end of a placement", ["tenant"])


def prime_tenant_series(tenants: list[str]) -> None:
    """Create the per-tenant series at start-up so that dashboards and alerts see zeros, not gaps."""
    for tenant in tenants:
        CANDIDATES_REGISTERED.labels(tenant)
        HANDOVERS.labels(tenant)
        LADDER_RISES.labels(tenant)
