"""The notification service's settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.config import ConfigError, Settings, load_settings
from shared.mail import SmtpSettings, smtp_settings

SERVICE = "notification"
# The local defaults; a deployment sets WERKBRUG_PORT and WORKER_METRICS_PORT.
PORT = 8104
WORKER_METRICS_PORT = 9104

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@dataclass(frozen=True)
class DeliverySettings:
    webhook_timeout_s: float
    max_attempts: int
    first_retry_s: float
    max_retry_s: float
    poll_s: float
    # Jobcoaches choose webhook URLs; letting those reach the platform's own network would let any
    # jobcoach key probe internal services. Only a local or test installation turns this on.
    allow_private_networks: bool = False
    # How long a replica holds a delivery it is sending; renewed while the send lasts, and never shorter
    # than twice the webhook's whole deadline.
    lease_s: float = 60.0
    # Webhooks in flight at once, and at most this many to one receiver (scheme, host and port).
    webhook_concurrency: int = 32
    per_receiver: int = 2


@dataclass(frozen=True)
class ScheduleSettings:
    """When the daily digest goes out (local time of the regions) and how often escalations are looked for."""

    digest_hour: int
    digest_zone: ZoneInfo
    escalation_poll_s: float


def load(env: Mapping[str, str] = os.environ) -> Settings:
    return load_settings(SERVICE, env, port=PORT, worker_metrics_port=WORKER_METRICS_PORT)


def delivery(settings: Settings, env: Mapping[str, str] = os.environ) -> DeliverySettings:
    # The WEBHOOK_* names predate e-mail; they now set the retries of every channel.
    timeout = settings.float_setting("WEBHOOK_TIMEOUT_SECONDS", 5.0, env)
    lease = settings.float_setting("DELIVERY_LEASE_SECONDS", 60.0, env)
    concurrency = settings.int_setting("WEBHOOK_CONCURRENCY", 32, env)
    per_receiver = settings.int_setting("WEBHOOK_MAX_IN_FLIGHT_PER_RECEIVER", 2, env)
    if timeout <= 0:
        raise ConfigError("WEBHOOK_TIMEOUT_SECONDS must be above 0")
    if lease < 2 * timeout:
        # A lease that can run out while a send is still allowed to last invites a second replica to send.
        raise ConfigError(
            f"DELIVERY_LEASE_SECONDS ({lease:g}) must be at least twice WEBHOOK_TIMEOUT_SECONDS ({timeout:g})"
        )
    if concurrency < 2 or not 1 <= per_receiver <= concurrency // 2:
        raise ConfigError(
            "WEBHOOK_CONCURRENCY must be at least 2 and WEBHOOK_MAX_IN_FLIGHT_PER_RECEIVER from 1 to half of it"
        )
    return DeliverySettings(
        webhook_timeout_s=timeout,
        max_attempts=settings.int_setting("WEBHOOK_MAX_ATTEMPTS", 8, env),
        first_retry_s=settings.float_setting("WEBHOOK_FIRST_RETRY_SECONDS", 2.0, env),
        max_retry_s=settings.float_setting("WEBHOOK_MAX_RETRY_SECONDS", 600.0, env),
        poll_s=settings.float_setting("DELIVERY_POLL_SECONDS", 0.1, env),
        allow_private_networks=_flag(env, "WEBHOOK_ALLOW_PRIVATE_NETWORKS"),
        lease_s=lease,
        webhook_concurrency=concurrency,
        per_receiver=per_receiver,
    )


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "false").strip().lower()
    if value not in _TRUE + _FALSE:
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value in _TRUE


def smtp(settings: Settings, env: Mapping[str, str] = os.environ) -> SmtpSettings:
    return smtp_settings(env)


def schedule(settings: Settings, env: Mapping[str, str] = os.environ) -> ScheduleSettings:
    hour = settings.int_setting("DIGEST_HOUR", 7, env)
    if not 0 <= hour <= 23:
        raise ConfigError(f"DIGEST_HOUR must be an hour from 0 to 23, got {hour}")
    zone_name = env.get("DIGEST_TIMEZONE", "Europe/Amsterdam")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"DIGEST_TIMEZONE is not a known time zone: {zone_name!r}") from exc
    poll = settings.float_setting("ESCALATION_POLL_SECONDS", 5.0, env)
    if poll <= 0:
        raise ConfigError("ESCALATION_POLL_SECONDS must be above 0")
    return ScheduleSettings(digest_hour=hour, digest_zone=zone, escalation_poll_s=poll)
