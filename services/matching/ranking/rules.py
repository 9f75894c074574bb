"""Judging one pair: the hard constraints that decide whether it may be shown at all, and the components
of its soft score, each in [0, 1]."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from services.matching.ranking.profiles import CandidateProfile, VacancyProfile
from services.matching.ranking.vocabulary import TOP_LADDER_STEP

# Read-only so that no caller can change the defaults for everyone; override per call instead.
DEFAULT_WEIGHTS: Final[Mapping[str, float]] = MappingProxyType(
    {"talent": 0.5, "supports": 0.15, "hours": 0.15, "ladder": 0.1, "distance": 0.1}
)

# The score is relevance gated by the soft fit (:func:`.scoring.final_score`): with the default weights
# it lies between 0.75 and 1.0 times the talent score, so 0.5 asks for a talent score of at least 0.5 when
# all else fits and 0.67 when nothing else does. Since fused-6 the talent score fuses BM25, whose share
# of its ceiling stays well below 1 for a short query against a long vacancy, so scores run lower than
# before; 0.5 was chosen from the quality benchmark's sweep (bench/results/2026-11-30T213404-fused-6.json)
# and kept for fused-7 (bench/results/2026-12-01T004608-fused-7.json): 1,476 relevant pairs over it at a
# precision of 17.2%, against tfidf-4's 1,022 at 5.1% at 0.6. A candidate without usable talent text
# scores at most 0.45 (:data:`.scoring.SOFT_ONLY_SCALE`) and is never proposed.
DEFAULT_PROPOSAL_THRESHOLD: Final = 0.5


EARTH_RADIUS_KM: Final = 6371.0088


HOURS_NO_OVERLAP: Final = "hours_no_overlap"
TOO_FAR: Final = "too_far"
VACANCY_NOT_OPEN: Final = "vacancy_not_open"
NO_POSITIONS_LEFT: Final = "no_positions_left"
NO_MATCHING_CONSENT: Final = "no_matching_consent"
NO_SHARE_CONSENT: Final = "no_share_consent"
TENANT_MISMATCH: Final = "tenant_mismatch"
ESSENTIAL_SUPPORT_MISSING: Final = "essential_support_missing"


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dlat, dlon = p2 - p1, math.radians(lon2) - math.radians(lon1)
    a = math.sin(dlat / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def distance_km(candidate: CandidateProfile, vacancy: VacancyProfile) -> float | None:
    if candidate.lat is None or candidate.lon is None or vacancy.lat is None or vacancy.lon is None:
        return None
    return haversine_km(candidate.lat, candidate.lon, vacancy.lat, vacancy.lon)


def hours_overlap(candidate: CandidateProfile, vacancy: VacancyProfile) -> tuple[float, float] | None:
    low = max(candidate.hours_min, vacancy.hours_min)
    high = min(candidate.hours_max, vacancy.hours_max)
    return (low, high) if low <= high else None


def hard_constraint_failures(
    candidate: CandidateProfile, vacancy: VacancyProfile, *, require_share_consent: bool = False
) -> list[str]:
    """Why this pair may not be matched, as machine-readable reasons; an empty list means it may.

    ``require_share_consent`` is for lists an employer sees; a candidate's own jobcoach needs only the
    matching consent.
    """
    reasons: list[str] = []
    if candidate.tenant != vacancy.tenant:
        reasons.append(TENANT_MISMATCH)
    if not candidate.consent_matching:
        reasons.append(NO_MATCHING_CONSENT)
    if require_share_consent and not candidate.consent_share:
        reasons.append(NO_SHARE_CONSENT)
    if vacancy.status != "open":
        reasons.append(VACANCY_NOT_OPEN)
    if vacancy.positions <= 0:
        reasons.append(NO_POSITIONS_LEFT)
    if hours_overlap(candidate, vacancy) is None:
        reasons.append(HOURS_NO_OVERLAP)
    reasons.extend(
        f"{ESSENTIAL_SUPPORT_MISSING}:{code}" for code in sorted(candidate.essential_needs - vacancy.supports_offered)
    )
    km = distance_km(candidate, vacancy)
    if km is not None and candidate.max_travel_km is not None and km > candidate.max_travel_km:
        reasons.append(TOO_FAR)
    return reasons


def supports_fit(candidate: CandidateProfile, vacancy: VacancyProfile) -> float:
    if not candidate.preferred_needs:
        return 1.0
    return len(candidate.preferred_needs & vacancy.supports_offered) / len(candidate.preferred_needs)


def hours_fit(candidate: CandidateProfile, vacancy: VacancyProfile) -> float:
    """Overlap as a share of the narrower range.

    Measured against the narrower range rather than always the candidate's, so that a vacancy of exactly
    24 hours for someone who can work 12 to 32 is a full fit and not zero, and a flexible candidate is
    not marked down for being flexible. No overlap at all is a hard constraint, not a low score.
    """
    overlap = hours_overlap(candidate, vacancy)
    if overlap is None:
        return 0.0
    narrower = min(candidate.hours_max - candidate.hours_min, vacancy.hours_max - vacancy.hours_min)
    if narrower <= 0:
        return 1.0
    return min(1.0, (overlap[1] - overlap[0]) / narrower)


def ladder_fit(step: int, rung: int) -> float:
    """How well a vacancy on ``rung`` suits someone on Participatieladder ``step``.

    The next rung up is the goal of a placement (1.0); the same rung is good (0.8); two rungs up is a big
    leap (0.4), further is rarely wise (0.1); a lower rung is a step back but can rebuild confidence (0.5).
    Someone already at the top has no rung above, so the top rung is their full fit.
    """
    diff = rung - step
    if diff == 1 or (diff == 0 and step == TOP_LADDER_STEP):
        return 1.0
    if diff == 0:
        return 0.8
    if diff == 2:
        return 0.4
    if diff > 2:
        return 0.1
    return 0.5


def distance_fit(candidate: CandidateProfile, km: float | None) -> float:
    if km is None or candidate.max_travel_km is None:
        return 1.0
    if candidate.max_travel_km <= 0:
        return 1.0 if km <= 0 else 0.0
    return min(1.0, max(0.0, 1.0 - km / candidate.max_travel_km))


def resolve_weights(weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """The defaults, with any per-call overrides applied; unknown names are a mistake, not ignored."""
    resolved = dict(DEFAULT_WEIGHTS)
    for name, value in (weights or {}).items():
        if name not in resolved:
            raise ValueError(f"unknown score component {name!r}; known: {sorted(resolved)}")
        number = float(value)
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"weight of {name} must be a finite number >= 0, got {value!r}")
        resolved[name] = number
    if sum(resolved.values()) <= 0:
        raise ValueError("at least one weight must be positive")
    return resolved
