"""The matching service's own Prometheus metrics (the common ones are in :mod:`shared.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MATCHES_PROPOSED = Counter("werkbrug_matches_proposed", "Matches proposed to jobcoaches", ["tenant"])

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
# Every process holds its own indexes under its own budget (MATCHING_INDEX_MEMORY_MB): the sum over live
# processes is what the pod holds.
MATCHING_INDEX_BYTES = Gauge(
    "werkbrug_matching_index_bytes",
    "Estimated memory held by the tenant indexes of the live processes",
    multiprocess_mode="livesum",
)
MATCHING_INDEX_EVICTIONS = Counter(
    "werkbrug_matching_index_evictions_total",
    "Tenant indexes dropped, least recently used first, to keep a process under its memory budget",
)
MATCHING_INDEX_COLD = Counter(
    "werkbrug_matching_index_cold_total",
    "Requests for a tenant whose index was still being built, by whether they waited for it or were refused",
    ["outcome"],
)

# Each jobcoach's caseload as the worker's last sweep counted it; every worker replica counts the same rows,
# so the highest live value is the figure.
CASELOAD_CANDIDATES = Gauge(
    "werkbrug_caseload_candidates",
    "Candidates in each jobcoach's caseload, as the matching worker's last sweep counted them",
    ["tenant", "jobcoach"],
    multiprocess_mode="livemax",
)


def prime_tenant_series(tenants: list[str]) -> None:
    """Create the per-tenant series at start-up so that dashboards and alerts see zeros, not gaps."""
    for tenant in tenants:
        MATCHES_PROPOSED.labels(tenant)
        for step in LADDER_STEP_LABELS:
            for target_group in ("yes", "no"):
                for kind in EXPOSURE_KINDS:
                    CANDIDATE_EXPOSURES.labels(tenant, step, target_group, kind)
