"""Per-tenant settings: each region tunes thresholds, cadences and score weights for itself.

Stored with the tenant in the registry database, changed with ``werkbrug tenants set``, read by the
services through :class:`shared.registry.Registry` (cached briefly, so a change reaches every process
within seconds).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from shared.errors import Refused

DEFAULT_SCORE_WEIGHTS = {"talent": 0.5, "supports": 0.15, "hours": 0.15, "ladder": 0.1, "distance": 0.1}


class SettingError(Refused):
    """A setting that does not exist or a value it cannot take."""


@dataclass(frozen=True)
class TenantSettings:
    # Matching: a candidate scoring above this for a new vacancy is proposed to their jobcoach.
    match_threshold: float = 0.6
    score_weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SCORE_WEIGHTS))
    # Placement risk: an alert when the score rises above `risk_threshold`; a new episode only after it
    # fell below `risk_release` first, so a score wobbling around the threshold does not alert each time.
    risk_threshold: float = 0.6
    risk_release: float = 0.45
    # A check-in is due every `checkin_days_early` days in the first `early_period_days`, then every
    # `checkin_days_later` days.
    checkin_days_early: int = 14
    checkin_days_later: int = 28
    early_period_days: int = 91
    # An unacknowledged at-risk alert goes to the region's operators after this many hours.
    escalation_hours: int = 48
    # Web layer: PATCH and DELETE must carry If-Match (428 without it); requests per API key by role,
    # e.g. {"employer": "60/minute"}, over the defaults in shared.web.ratelimit.
    require_if_match: bool = False
    rate_limits: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, stored: dict[str, Any] | None) -> TenantSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in (stored or {}).items() if key in known})

    def with_changes(self, changes: dict[str, str]) -> TenantSettings:
        """Apply ``name=value`` text from the command line, checking every value."""
        current = self.to_dict()
        for name, text in changes.items():
            if name not in current:
                raise SettingError(f"unknown setting {name!r}; known: {', '.join(sorted(current))}")
            current[name] = _parse(name, text, current[name])
        updated = TenantSettings(**current)
        updated.validate()
        return updated

    def validate(self) -> None:
        for name in ("match_threshold", "risk_threshold", "risk_release"):
            if not 0 <= getattr(self, name) <= 1:
                raise SettingError(f"{name} must be between 0 and 1")
        if self.risk_release > self.risk_threshold:
            raise SettingError("risk_release must not exceed risk_threshold")
        for name in ("checkin_days_early", "checkin_days_later", "early_period_days", "escalation_hours"):
            if not 1 <= getattr(self, name) <= 3650:
                raise SettingError(f"{name} must be a whole number from 1 to 3650")
        if set(self.score_weights) != set(DEFAULT_SCORE_WEIGHTS):
            raise SettingError(f"score_weights must name exactly {', '.join(sorted(DEFAULT_SCORE_WEIGHTS))}")
        if any(not isinstance(v, int | float) or v < 0 for v in self.score_weights.values()):
            raise SettingError("score weights must be numbers of at least 0")
        if sum(self.score_weights.values()) <= 0:
            raise SettingError("at least one score weight must be above 0")
        for role, limit in self.rate_limits.items():
            if not isinstance(limit, str) or not _is_rate_limit(limit):
                raise SettingError(f'rate_limits: {role!r} takes a limit such as "60/minute"')


def _is_rate_limit(text: str) -> bool:
    from limits import parse_many

    try:
        return bool(parse_many(text))
    except ValueError:
        return False


def _parse(name: str, text: str, current: Any) -> Any:
    try:
        if isinstance(current, dict):
            value = json.loads(text)
            if not isinstance(value, dict):
                raise SettingError(f"{name} takes a JSON object")
            if name == "rate_limits":
                return {str(role): str(limit) for role, limit in value.items()}
            return {key: float(weight) for key, weight in value.items()}
        if isinstance(current, bool):
            if text.lower() not in ("true", "false"):
                raise SettingError(f"{name} takes true or false")
            return text.lower() == "true"
        if isinstance(current, int) and not isinstance(current, bool):
            return int(text)
        return float(text)
    except (ValueError, TypeError) as exc:
        raise SettingError(f"{name}: cannot read {text!r}") from exc
