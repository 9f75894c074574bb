"""The notification service's settings."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from shared.config import Settings, load_settings

SERVICE = "notification"


@dataclass(frozen=True)
class DeliverySettings:
    webhook_timeout_s: float
    max_attempts: int
    first_retry_s: float
    max_retry_s: float
    poll_s: float


def load(env: Mapping[str, str] = os.environ) -> Settings:
    return load_settings(SERVICE, env)


def delivery(settings: Settings, env: Mapping[str, str] = os.environ) -> DeliverySettings:
    return DeliverySettings(
        webhook_timeout_s=settings.float_setting("WEBHOOK_TIMEOUT_SECONDS", 5.0, env),
        max_attempts=settings.int_setting("WEBHOOK_MAX_ATTEMPTS", 8, env),
        first_retry_s=settings.float_setting("WEBHOOK_FIRST_RETRY_SECONDS", 2.0, env),
        max_retry_s=settings.float_setting("WEBHOOK_MAX_RETRY_SECONDS", 600.0, env),
        poll_s=settings.float_setting("DELIVERY_POLL_SECONDS", 0.1, env),
    )
