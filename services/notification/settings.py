"""Notification's per-tenant settings, changed with ``werkbrug tenants set <tenant> NAME=VALUE``."""

from __future__ import annotations

from dataclasses import dataclass

from shared.tenant_settings import TenantSettings, require_whole_numbers


@dataclass(frozen=True)
class NotificationSettings(TenantSettings):
    # An unacknowledged at-risk alert goes to the region's operators after this many hours.
    escalation_hours: int = 48

    def validate(self) -> None:
        require_whole_numbers(self, "escalation_hours")
