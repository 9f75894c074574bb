"""Matching's per-tenant settings: proposal threshold and score weights, placement risk, check-in cadence,
contact and caseload limits.

Changed with ``werkbrug tenants set <tenant> NAME=VALUE``; read through the key registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.matching.placements.cadence import Cadence
from services.matching.ranking import rules
from shared.tenant_settings import SettingError, TenantSettings, require_fractions, require_whole_numbers


@dataclass(frozen=True)
class MatchingSettings(TenantSettings):
    # A candidate scoring above this for a new vacancy is proposed to their jobcoach.
    match_threshold: float = rules.DEFAULT_PROPOSAL_THRESHOLD
    score_weights: dict[str, float] = field(default_factory=lambda: dict(rules.DEFAULT_WEIGHTS))
    # Placement risk: an alert when the score rises above `risk_threshold`; a new episode only after it
    # fell below `risk_release` first, so a score wobbling around the threshold does not alert each time.
    risk_threshold: float = 0.6
    risk_release: float = 0.45
    # A check-in is due every `checkin_days_early` days in the first `early_period_days`, then every
    # `checkin_days_later` days.
    checkin_days_early: int = Cadence.early_days
    checkin_days_later: int = Cadence.later_days
    early_period_days: int = Cadence.early_period_days
    # Nobody out of sight: a candidate without contact for this many days is reported to their jobcoach.
    contact_days: int = 30
    # Operators hear of a jobcoach whose caseload passes this many candidates.
    caseload_limit: int = 20

    def validate(self) -> None:
        require_fractions(self, "match_threshold", "risk_threshold", "risk_release")
        if self.risk_release > self.risk_threshold:
            raise SettingError("risk_release must not exceed risk_threshold")
        require_whole_numbers(
            self, "checkin_days_early", "checkin_days_later", "early_period_days", "contact_days", "caseload_limit"
        )
        if set(self.score_weights) != set(rules.DEFAULT_WEIGHTS):
            raise SettingError(f"score_weights must name exactly {', '.join(sorted(rules.DEFAULT_WEIGHTS))}")
        if any(not isinstance(v, int | float) or v < 0 for v in self.score_weights.values()):
            raise SettingError("score weights must be numbers of at least 0")
        if sum(self.score_weights.values()) <= 0:
            raise SettingError("at least one score weight must be above 0")
