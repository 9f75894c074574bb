"""The matching service's settings.

The proposal threshold and the score weights are per tenant (``werkbrug tenants set <tenant>
match_threshold=... score_weights=...``), read through the key registry; only process-wide knobs live here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

from services.matching.ranking.live_index import RefitPolicy
from shared.config import ConfigError, Settings, load_settings

SERVICE = "matching"
# The local defaults; a deployment sets WERKBRUG_PORT and WORKER_METRICS_PORT.
PORT = 8103
WORKER_METRICS_PORT = 9103


def load(env: Mapping[str, str] = os.environ) -> Settings:
    return load_settings(SERVICE, env, port=PORT, worker_metrics_port=WORKER_METRICS_PORT)


# Six months: the AI Act asks that a high-risk system's logs be kept at least that long, and no longer is needed.
RANKING_LOG_RETENTION_DAYS = 183


def ranking_log_retention(settings: Settings, env: Mapping[str, str] = os.environ) -> timedelta:
    """How long the ranking log keeps a ranking (``RANKING_LOG_RETENTION_DAYS``)."""
    days = settings.int_setting("RANKING_LOG_RETENTION_DAYS", RANKING_LOG_RETENTION_DAYS, env)
    if days < 1:
        raise ConfigError("RANKING_LOG_RETENTION_DAYS must be at least 1")
    return timedelta(days=days)


def refit_policy(settings: Settings, env: Mapping[str, str] = os.environ) -> RefitPolicy:
    """When the live index refits its text model (see :class:`~.ranking.live_index.RefitPolicy`)."""
    defaults = RefitPolicy()
    policy = RefitPolicy(
        changed_share=settings.float_setting("MATCHING_REFIT_CHANGED_SHARE", defaults.changed_share, env),
        max_age_s=settings.float_setting("MATCHING_REFIT_MAX_AGE_SECONDS", defaults.max_age_s, env),
        min_interval_s=settings.float_setting("MATCHING_REFIT_MIN_INTERVAL_SECONDS", defaults.min_interval_s, env),
        max_delta_rows=settings.int_setting("MATCHING_REFIT_MAX_DELTA_ROWS", defaults.max_delta_rows, env),
        sync_rows=settings.int_setting("MATCHING_REFIT_SYNC_ROWS", defaults.sync_rows, env),
    )
    if not 0 < policy.changed_share <= 1:
        raise ConfigError("MATCHING_REFIT_CHANGED_SHARE must be above 0 and at most 1")
    if policy.max_age_s <= 0 or policy.min_interval_s < 0 or policy.max_delta_rows < 1 or policy.sync_rows < 0:
        raise ConfigError("MATCHING_REFIT_* settings must be positive")
    return policy


def index_memory_budget_bytes(settings: Settings, env: Mapping[str, str] = os.environ) -> int | None:
    """What one process may hold in tenant indexes (``MATCHING_INDEX_MEMORY_MB``; 0 for no bound)."""
    megabytes = settings.int_setting("MATCHING_INDEX_MEMORY_MB", 512, env)
    if megabytes < 0:
        raise ConfigError("MATCHING_INDEX_MEMORY_MB must be 0 (no bound) or more")
    return megabytes * 1024 * 1024 if megabytes else None


def cold_wait_seconds(settings: Settings, env: Mapping[str, str] = os.environ) -> float:
    """How long a request waits for a tenant's first index build before it is answered 503."""
    seconds = settings.float_setting("MATCHING_COLD_WAIT_SECONDS", 2.0, env)
    if seconds < 0:
        raise ConfigError("MATCHING_COLD_WAIT_SECONDS must not be negative")
    return seconds
