"""The web layer's own per-tenant settings: a region may require If-Match and tune its rate limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from limits import parse_many

from shared.tenant_settings import SettingError, TenantSettings


@dataclass(frozen=True)
class WebSettings(TenantSettings):
    # PATCH and DELETE must carry If-Match (428 without it).
    require_if_match: bool = False
    # Requests per API key by role, e.g. {"employer": "60/minute"}, over the defaults in shared.web.ratelimit.
    rate_limits: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        for role, limit in self.rate_limits.items():
            if not isinstance(limit, str) or not _is_rate_limit(limit):
                raise SettingError(f'rate_limits: {role!r} takes a limit such as "60/minute"')


def _is_rate_limit(text: str) -> bool:
    try:
        return bool(parse_many(text))
    except ValueError:
        return False
