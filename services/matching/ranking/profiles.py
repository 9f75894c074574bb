"""What matching knows of a candidate and a vacancy, checked on the way in, and a match between them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, overload

from services.matching.ranking.vocabulary import (
    ESSENTIAL,
    MAX_HOURS_PER_WEEK,
    PREFERRED,
    SUPPORT_BITS,
    TOP_LADDER_STEP,
    VACANCY_STATUSES,
    rung_for_kind,
)

_DEFAULT_HOURS: Final = (0.0, float(MAX_HOURS_PER_WEEK))


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text, got {type(value).__name__}")
    return value


def _phrases(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a list of phrases")
    return tuple(_text(item, name) for item in value if item is not None)


@overload
def _number(value: Any, name: str, default: float) -> float: ...
@overload
def _number(value: Any, name: str, default: None = None) -> float | None: ...
def _number(value: Any, name: str, default: float | None = None) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got a boolean")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def _coordinates(location: Mapping[str, Any]) -> tuple[float | None, float | None]:
    lat = _number(location.get("lat"), "location.lat")
    lon = _number(location.get("lon"), "location.lon")
    # Half a coordinate cannot place anyone; treat it as no coordinate rather than as a position.
    if lat is None or lon is None:
        return None, None
    return lat, lon


def _identity(payload: Mapping[str, Any], given: str | None, keys: tuple[str, ...], name: str) -> str:
    value = given
    for key in keys:
        if value is not None:
            break
        value = payload.get(key)
    if value is None or str(value) == "":
        raise ValueError(f"{name} is required")
    return str(value)


def _check_hours(hours_min: float, hours_max: float, who: str) -> None:
    if not 0 <= hours_min <= hours_max:
        raise ValueError(f"{who} hours must satisfy 0 <= hours_min <= hours_max, got {hours_min}..{hours_max}")


def _check_coordinates(lat: float | None, lon: float | None, who: str) -> None:
    if (lat is None) != (lon is None):
        raise ValueError(f"{who} needs both lat and lon, or neither")
    if lat is not None and lon is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError(f"{who} coordinates out of range: {lat}, {lon}")


def _check_codes(codes: frozenset[str], who: str) -> None:
    unknown = sorted(str(code) for code in codes if code not in SUPPORT_BITS)
    if unknown:
        raise ValueError(f"{who}: unknown support codes {unknown}")


@dataclass(frozen=True)
class CandidateProfile:
    """What matching knows of a candidate: no name, no contact details, nothing it does not score on."""

    id: str
    tenant: str
    jobcoach_id: str | None
    talents: tuple[str, ...] = ()
    preferences: tuple[str, ...] = ()
    essential_needs: frozenset[str] = frozenset()
    preferred_needs: frozenset[str] = frozenset()
    hours_min: float = _DEFAULT_HOURS[0]
    hours_max: float = _DEFAULT_HOURS[1]
    ladder_step: int = 1
    lat: float | None = None
    lon: float | None = None
    max_travel_km: float | None = None
    consent_matching: bool = False
    consent_share: bool = False
    target_group_register: bool = False

    def __post_init__(self) -> None:
        # Accept lists and sets from callers but store immutable values, so a profile can be shared.
        object.__setattr__(self, "talents", tuple(self.talents))
        object.__setattr__(self, "preferences", tuple(self.preferences))
        essential = frozenset(self.essential_needs)
        object.__setattr__(self, "essential_needs", essential)
        # A need cannot be both: essential is the stronger statement and wins.
        object.__setattr__(self, "preferred_needs", frozenset(self.preferred_needs) - essential)
        _check_codes(essential | self.preferred_needs, f"candidate {self.id}")
        _check_hours(self.hours_min, self.hours_max, f"candidate {self.id}")
        if isinstance(self.ladder_step, bool) or self.ladder_step not in range(1, TOP_LADDER_STEP + 1):
            raise ValueError(f"candidate {self.id}: ladder_step must be 1..{TOP_LADDER_STEP}")
        _check_coordinates(self.lat, self.lon, f"candidate {self.id}")
        if self.max_travel_km is not None and not self.max_travel_km >= 0:
            raise ValueError(f"candidate {self.id}: max_travel_km must be >= 0")

    @classmethod
    def from_payload(
        cls, payload: Mapping[str, Any], *, id: str | None = None, tenant: str | None = None
    ) -> CandidateProfile:
        """Build from a candidate event payload.

        The payload carries neither id nor tenant (they are the event's ``subject`` and ``tenant``), so
        pass them as keywords; ``id``/``candidate_id`` and ``tenant`` keys in the payload are used when
        the keywords are omitted. Consent counts only when it is literally ``true``.
        """
        essential: set[str] = set()
        preferred: set[str] = set()
        for need in payload.get("support_needs") or ():
            if not isinstance(need, Mapping):
                raise ValueError("support_needs entries must be objects with code and level")
            code, level = need.get("code"), need.get("level")
            if not isinstance(code, str):
                raise ValueError(f"support need code must be a text, got {code!r}")
            if level == ESSENTIAL:
                essential.add(code)
            elif level == PREFERRED:
                preferred.add(code)
            else:
                raise ValueError(f"support need level must be essential or preferred, got {level!r}")
        location = payload.get("location") or {}
        consent = payload.get("consent") or {}
        lat, lon = _coordinates(location)
        ladder = payload.get("ladder_step")
        whole = isinstance(ladder, int | float) and not isinstance(ladder, bool) and math.isfinite(ladder)
        if not whole or not isinstance(ladder, int | float) or ladder != int(ladder):
            raise ValueError(f"ladder_step must be a whole number 1..{TOP_LADDER_STEP}, got {ladder!r}")
        jobcoach = payload.get("jobcoach_id")
        return cls(
            id=_identity(payload, id, ("id", "candidate_id"), "candidate id"),
            tenant=_identity(payload, tenant, ("tenant",), "tenant"),
            jobcoach_id=None if jobcoach is None else str(jobcoach),
            talents=_phrases(payload.get("talents"), "talents"),
            preferences=_phrases(payload.get("preferences"), "preferences"),
            essential_needs=frozenset(essential),
            preferred_needs=frozenset(preferred),
            hours_min=_number(payload.get("hours_min"), "hours_min", _DEFAULT_HOURS[0]),
            hours_max=_number(payload.get("hours_max"), "hours_max", _DEFAULT_HOURS[1]),
            ladder_step=int(ladder),
            lat=lat,
            lon=lon,
            max_travel_km=_number(location.get("max_travel_km"), "location.max_travel_km"),
            consent_matching=consent.get("matching") is True,
            consent_share=consent.get("share_with_employers") is True,
            target_group_register=payload.get("target_group_register") is True,
        )


@dataclass(frozen=True)
class VacancyProfile:
    id: str
    tenant: str
    employer_id: str | None
    title: str = ""
    description: str = ""
    tasks: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    supports_offered: frozenset[str] = frozenset()
    hours_min: float = _DEFAULT_HOURS[0]
    hours_max: float = _DEFAULT_HOURS[1]
    kind: str = "regular_paid"
    positions: int = 1
    status: str = "open"
    lat: float | None = None
    lon: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "skills", tuple(self.skills))
        object.__setattr__(self, "supports_offered", frozenset(self.supports_offered))
        _check_codes(self.supports_offered, f"vacancy {self.id}")
        _check_hours(self.hours_min, self.hours_max, f"vacancy {self.id}")
        rung_for_kind(self.kind)
        if self.status not in VACANCY_STATUSES:
            raise ValueError(f"vacancy {self.id}: status must be one of {VACANCY_STATUSES}")
        if isinstance(self.positions, bool) or not isinstance(self.positions, int) or self.positions < 0:
            raise ValueError(f"vacancy {self.id}: positions must be a whole number >= 0")
        _check_coordinates(self.lat, self.lon, f"vacancy {self.id}")

    @property
    def rung(self) -> int:
        return rung_for_kind(self.kind)

    @classmethod
    def from_payload(
        cls, payload: Mapping[str, Any], *, id: str | None = None, tenant: str | None = None
    ) -> VacancyProfile:
        """Build from a vacancy event payload; id and tenant as for :meth:`CandidateProfile.from_payload`."""
        location = payload.get("location") or {}
        lat, lon = _coordinates(location)
        positions = _number(payload.get("positions"), "positions", 1)
        if positions != int(positions):
            raise ValueError(f"positions must be a whole number, got {positions}")
        employer = payload.get("employer_id")
        return cls(
            id=_identity(payload, id, ("id", "vacancy_id"), "vacancy id"),
            tenant=_identity(payload, tenant, ("tenant",), "tenant"),
            employer_id=None if employer is None else str(employer),
            title=_text(payload.get("title"), "title"),
            description=_text(payload.get("description"), "description"),
            tasks=_phrases(payload.get("tasks"), "tasks"),
            skills=_phrases(payload.get("skills"), "skills"),
            supports_offered=frozenset(_phrases(payload.get("supports_offered"), "supports_offered")),
            hours_min=_number(payload.get("hours_min"), "hours_min", _DEFAULT_HOURS[0]),
            hours_max=_number(payload.get("hours_max"), "hours_max", _DEFAULT_HOURS[1]),
            kind=_text(payload.get("kind"), "kind") or "regular_paid",
            positions=int(positions),
            status=_text(payload.get("status"), "status") or "open",
            lat=lat,
            lon=lon,
        )


@dataclass(frozen=True)
class Match:
    candidate_id: str
    vacancy_id: str
    score: float
    explanation: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate_id": self.candidate_id,
            "vacancy_id": self.vacancy_id,
            "score": self.score,
            "explanation": self.explanation,
        }
