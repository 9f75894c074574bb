"""The notification service's settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.config import ConfigError, Settings, load_settings

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


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    starttls: bool
    username: str | None
    password: str | None
    timeout_s: float


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
    return DeliverySettings(
        webhook_timeout_s=settings.float_setting("WEBHOOK_TIMEOUT_SECONDS", 5.0, env),
        max_attempts=settings.int_setting("WEBHOOK_MAX_ATTEMPTS", 8, env),
        first_retry_s=settings.float_setting("WEBHOOK_FIRST_RETRY_SECONDS", 2.0, env),
        max_retry_s=settings.float_setting("WEBHOOK_MAX_RETRY_SECONDS", 600.0, env),
        poll_s=settings.float_setting("DELIVERY_POLL_SECONDS", 0.1, env),
        allow_private_networks=_flag(env, "WEBHOOK_ALLOW_PRIVATE_NETWORKS"),
    )


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "false").strip().lower()
    if value not in _TRUE + _FALSE:
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    return value in _TRUE


def smtp(settings: Settings, env: Mapping[str, str] = os.environ) -> SmtpSettings:
    port = settings.int_setting("SMTP_PORT", 25, env)
    if not 1 <= port <= 65535:
        raise ConfigError(f"SMTP_PORT must be a port number, got {port}")
    username = env.get("SMTP_USERNAME") or None
    password = env.get("SMTP_PASSWORD") or None
    if (username is None) != (password is None):
        raise ConfigError("SMTP_USERNAME and SMTP_PASSWORD go together: set both or neither")
    starttls = _flag(env, "SMTP_STARTTLS")
    if username is not None and not starttls:
        # Refusing here beats sending a mailbox password over a plain connection on the first alert.
        raise ConfigError("SMTP_USERNAME needs SMTP_STARTTLS=true: the password must not travel in clear")
    sender = env.get("SMTP_FROM", "Werkbrug <noreply@werkbrug.nl>").strip()
    if "@" not in sender:
        raise ConfigError(f"SMTP_FROM must be an e-mail address, got {sender!r}")
    return SmtpSettings(
        host=env.get("SMTP_HOST", "127.0.0.1").strip() or "127.0.0.1",
        port=port,
        sender=sender,
        starttls=starttls,
        username=username,
        password=password,
        timeout_s=settings.float_setting("SMTP_TIMEOUT_SECONDS", 10.0, env),
    )


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
