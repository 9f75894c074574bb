"""Settings that every process reads from its environment, with defaults that run locally."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


class ConfigError(RuntimeError):
    """A required setting is missing or malformed; raised at start-up, never later."""


def var_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where local state lives (SQLite files, broker data, metrics files) when nothing else is configured."""
    return Path(env.get("WERKBRUG_VAR_DIR", "var")).resolve()


def _sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw not in ("true", "false", "1", "0"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw in ("true", "1")


@dataclass(frozen=True)
class Settings:
    service: str
    database_url: str
    registry_database_url: str
    kafka_bootstrap_servers: str
    host: str
    port: int
    worker_metrics_port: int
    log_level: str
    # Every Kafka consumer group is named after its service so that replicas share the partitions.
    consumer_group: str
    outbox_poll_seconds: float
    # Web layer: rate limits per API key (shared.web.ratelimit); counters in the service's database unless
    # a storage URI (redis://...) is given; role defaults may be replaced as a JSON object.
    ratelimit_enabled: bool = True
    ratelimit_storage_uri: str = ""
    ratelimit_defaults: str = ""
    ratelimit_sync_hits: int = 10
    # How long the audit log keeps who read or changed which candidate; the worker purges older rows.
    audit_retention_days: int = 365
    # Static group membership (KIP-345): a worker that comes back under the same id within the session
    # timeout takes its partitions back at once, without a rebalance. Only for names that survive a
    # restart (the local run's processes, a pod's restarted container); two processes must never share one.
    group_instance_id: str | None = None

    def float_setting(self, name: str, default: float, env: Mapping[str, str] = os.environ) -> float:
        return _float(env, name, default)

    def int_setting(self, name: str, default: int, env: Mapping[str, str] = os.environ) -> int:
        return _int(env, name, default)


def trusted_proxy_hops(env: Mapping[str, str] = os.environ) -> int:
    """How many reverse proxies (an Ingress, a load balancer) stand before the web processes. Their
    ``X-Forwarded-*`` headers are believed for that many hops, so that rate limits and sign-in throttling
    count the real client address; 0 (the default) believes none, which is right without a proxy."""
    hops = _int(env, "TRUSTED_PROXY_HOPS", 0)
    if not 0 <= hops <= 5:
        raise ConfigError(f"TRUSTED_PROXY_HOPS must be from 0 to 5, got {hops}")
    return hops


def registry_database_url(env: Mapping[str, str] = os.environ) -> str:
    """The tenants-and-keys database shared by every service's authentication and the admin CLI."""
    return env.get("REGISTRY_DATABASE_URL") or _sqlite_url(var_dir(env) / "registry.db")


def database_url(service: str, env: Mapping[str, str] = os.environ) -> str:
    return env.get("DATABASE_URL") or _sqlite_url(var_dir(env) / f"{service}.db")


def load_settings(
    service: str, env: Mapping[str, str] = os.environ, *, port: int, worker_metrics_port: int
) -> Settings:
    """The settings every process has, for the service that passes its name and its own default ports."""
    bootstrap = env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092").strip()
    if not bootstrap:
        raise ConfigError("KAFKA_BOOTSTRAP_SERVERS is empty")
    return Settings(
        service=service,
        database_url=database_url(service, env),
        registry_database_url=registry_database_url(env),
        kafka_bootstrap_servers=bootstrap,
        host=env.get("WERKBRUG_HOST", "127.0.0.1"),
        port=_int(env, "WERKBRUG_PORT", port),
        worker_metrics_port=_int(env, "WORKER_METRICS_PORT", worker_metrics_port),
        log_level=env.get("LOG_LEVEL", "INFO").upper(),
        consumer_group=env.get("CONSUMER_GROUP", f"werkbrug-{service}"),
        outbox_poll_seconds=_float(env, "OUTBOX_POLL_SECONDS", 0.05),
        ratelimit_enabled=_bool(env, "RATELIMIT_ENABLED", True),
        ratelimit_storage_uri=env.get("RATELIMIT_STORAGE_URI", "").strip(),
        ratelimit_defaults=env.get("RATELIMIT_DEFAULTS", "").strip(),
        ratelimit_sync_hits=max(1, _int(env, "RATELIMIT_SYNC_HITS", 10)),
        audit_retention_days=_audit_retention_days(env),
        group_instance_id=env.get("KAFKA_GROUP_INSTANCE_ID", "").strip() or None,
    )


def _audit_retention_days(env: Mapping[str, str]) -> int:
    days = _int(env, "AUDIT_RETENTION_DAYS", 365)
    if days < 1:
        raise ConfigError(f"AUDIT_RETENTION_DAYS must be at least 1, got {days}")
    return days
