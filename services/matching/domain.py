"""Matching candidates and vacancies: hard rules first, then an explainable soft score.

Pure logic: no I/O, no database, no web framework, no broker. Everything here is deterministic for the
same inputs (and the same fitted :class:`TextModel`), so a proposal can always be reproduced.

How a pair is judged
--------------------
1. Hard constraints (:func:`hard_constraint_failures`) decide whether a pair may be shown at all. They are
   never traded against a good score: a vacancy that lacks an essential support is not proposed, however
   well the talents fit.
2. The soft score is a weighted mean of named components, each in [0, 1] (see :data:`DEFAULT_WEIGHTS`):

   ``talent``   text similarity between the candidate's talents and preferences and the vacancy text
   ``supports`` share of the candidate's *preferred* supports that the workplace offers (1.0 if none)
   ``hours``    overlap of the two hour ranges, as a share of the narrower range
   ``ladder``   how well the vacancy's rung suits the candidate's Participatieladder step
   ``distance`` 1 at 0 km, falling linearly to 0 at the candidate's max travel distance (1.0 if unknown)

Text similarity
---------------
Phrases are normalised (case folded, accents stripped, punctuation and emoji dropped, digits kept, short
Dutch and English stop-word lists and a few words every job text contains removed) and embedded with two
scikit-learn ``TfidfVectorizer``s: character n-grams (``char_wb``, 3 to 5) so that Dutch compounds and
inflections overlap partially ("orderpicken" and "orderpicking", "magazijn" and "magazijnmedewerker"),
and whole words so that an exact word counts for more than a shared fragment. Each block is L2-normalised
and scaled by the square root of its weight, so the dot product of two phrase vectors is
``0.7 * char cosine + 0.3 * word cosine``.

Before a phrase is vectorised, the concept layer (:mod:`services.matching.concepts`) appends the labels
of every concept it names, so that "schoonmaken", "cleaning" and "interieurverzorging" meet although
they share no letters. The fitted :class:`TextModel` carries the lexicon its phrases were expanded with,
so a query is always expanded like the index it is compared with. The raw-text methods of the model
(``fit``, ``transform``, ``similarity``) do not expand: they are plain TF-IDF.

Similarity is computed phrase to phrase, not document to document: each candidate phrase is compared with
every phrase of the vacancy (each skill, each task, the title, each sentence of the description). A
phrase's similarity is multiplied by the weight of the field it comes from (:data:`FIELD_WEIGHTS`:
skills and tasks 1.0, title 0.7, description 0.4), so skills and tasks weigh more than the title and the
title more than the description, and a candidate phrase takes its best weighted match. The talent
component is ``0.75 * best + 0.25 * mean`` over the candidate's phrases: one talent that fits well is
enough to matter, several that fit count for a little more, and a long list of unrelated talents does
not drown the one that fits. Because the score is built from phrase pairs, the explanation can name
exactly which talent met which skill or task.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, NamedTuple, Protocol

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from services.matching.concepts import Lexicon, build_lexicon
from services.matching.vocabulary import (
    ESSENTIAL,
    MAX_HOURS_PER_WEEK,
    PREFERRED,
    SUPPORT_BITS,
    TOP_LADDER_STEP,
    VACANCY_STATUSES,
    rung_for_kind,
    support_mask,
)

# Changes whenever a change here can move a score, so a stored proposal says which ranking produced it.
# 2: phrases are expanded with the concept layer before they are vectorised.
RANKING_VERSION: Final = "tfidf-2"

# Read-only so that no caller can change the defaults for everyone; override per call instead.
DEFAULT_WEIGHTS: Final[Mapping[str, float]] = MappingProxyType(
    {"talent": 0.5, "supports": 0.15, "hours": 0.15, "ladder": 0.1, "distance": 0.1}
)

# With the default weights everything but talent adds up to 0.5, so a pair that is perfect on hours,
# supports, ladder and distance but shares nothing in its text scores about 0.5 and must stay below the
# line; 0.6 asks for a talent similarity of at least 0.2 when all else fits, and more when it does not.
# Calibrated on the two pairs in the unit tests, hours, supports and ladder step right in both: talent
# "planten verzorgen" against the skill "planten verzorgen, groenonderhoud" scores 1.0 and is proposed;
# "koffie zetten" against "orderpicking in magazijn" scores 0.50 and is not. A partial text match such as
# "orderpicken" against "orderpicking in magazijn" lands just above the line (about 0.63).
DEFAULT_PROPOSAL_THRESHOLD: Final = 0.6

# Multiplies a vacancy phrase's similarity by the field it comes from: what the work is (skills, tasks)
# says more about fit than what it is called (title), and far more than the surrounding prose.
FIELD_WEIGHTS: Final[Mapping[str, float]] = MappingProxyType(
    {"skill": 1.0, "task": 1.0, "title": 0.7, "description": 0.4}
)

CHAR_WEIGHT: Final = 0.7
TALENT_BEST_SHARE: Final = 0.75
EXPLAIN_MIN_SIMILARITY: Final = 0.25

# Limits that keep one pathological profile (a pasted CV, a 5,000-character "word") from costing more
# than an ordinary one. Phrases match the event schemas (50 phrases of up to 200 characters), so valid
# talents, tasks and skills are never cut; a description is read for its first 20 sentences within
# 2,000 characters, by which point what the work is has been said. No Dutch word needs 40 letters.
MAX_PHRASES_PER_FIELD: Final = 50
MAX_PHRASE_CHARS: Final = 200
MAX_WORD_CHARS: Final = 40
MAX_DESCRIPTION_CHARS: Final = 2_000
MAX_DESCRIPTION_SENTENCES: Final = 20
MAX_DOCUMENT_CHARS: Final = 25_000
MAX_INPUT_CHARS: Final = 30_000

EARTH_RADIUS_KM: Final = 6371.0088

# Negations ("geen", "niet", "no", "not") are deliberately absent: dropping them would make "geen
# klantcontact" read as "klantcontact". Free text does not understand negation either way; that is what
# the support codes are for.
_DUTCH_STOP_WORDS: Final = (
    "de het een en of van in op aan met voor door naar bij om te tot uit over als dat die dit deze"
    " er is zijn was wordt worden ben bent kan kunnen wil willen ik je jij u we wij ze zij hij haar hem"
    " ons onze mijn jouw jullie hun maar dan nog al zo ook heel erg graag veel zeer waar wat wie hoe"
)
_ENGLISH_STOP_WORDS: Final = (
    "a an the and or of on at to for with by from as are be been was were it its this that these those"
    " you they he she my your our their but so very also can will would like likes do does i"
)
# Words that nearly every vacancy and profile contains: kept, "buiten werken" would resemble "nauwkeurig
# werken" more than "buiten" resembles anything, and in a small tenant the IDF cannot discount them.
_GENERIC_JOB_WORDS: Final = "werken werk werkzaamheden medewerker medewerkster taken work working job"
STOP_WORDS: Final[frozenset[str]] = frozenset(f"{_DUTCH_STOP_WORDS} {_ENGLISH_STOP_WORDS} {_GENERIC_JOB_WORDS}".split())

HOURS_NO_OVERLAP: Final = "hours_no_overlap"
TOO_FAR: Final = "too_far"
VACANCY_NOT_OPEN: Final = "vacancy_not_open"
NO_POSITIONS_LEFT: Final = "no_positions_left"
NO_MATCHING_CONSENT: Final = "no_matching_consent"
NO_SHARE_CONSENT: Final = "no_share_consent"
TENANT_MISMATCH: Final = "tenant_mismatch"
ESSENTIAL_SUPPORT_MISSING: Final = "essential_support_missing"

_DEFAULT_HOURS: Final = (0.0, float(MAX_HOURS_PER_WEEK))


# --------------------------------------------------------------------------------------------------------
# Text normalisation


_NON_WORD = re.compile(r"[\W_]+")
# After normalisation a word is a run of letters and digits, so this splits exactly where str.split does.
_WORD_PATTERN: Final = r"(?u)\b\w+\b"
_SENTENCE_END = re.compile(r"[.!?;:]+(?:\s+|$)|[\r\n\u2022]+")
# "planten verzorgen, groenonderhoud" is two skills in one entry; a comma without a space ("2,5 uur") is not.
_LIST_SEPARATOR = re.compile(r"[;\r\n\u2022]+|,\s+")


def normalise_text(text: str) -> str:
    """Lower case, no accents, words of letters and digits in any script separated by single spaces."""
    if not text:
        return ""
    text = text[:MAX_INPUT_CHARS].casefold()
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", text).strip()


def _cut(words: Iterable[str], max_chars: int) -> tuple[str, ...]:
    kept: list[str] = []
    used = 0
    for word in words:
        if word in STOP_WORDS:
            continue
        word = word[:MAX_WORD_CHARS]
        used += len(word) + 1
        if used > max_chars + 1:
            break
        kept.append(word)
    return tuple(kept)


def phrase_tokens(text: str) -> tuple[str, ...]:
    """The words of one phrase as the text model sees them (stop words gone, long input cut short)."""
    return _cut(normalise_text(text).split(), MAX_PHRASE_CHARS)


def document_tokens(text: str) -> tuple[str, ...]:
    return _cut(normalise_text(text).split(), MAX_DOCUMENT_CHARS)


@lru_cache(maxsize=1)
def default_lexicon() -> Lexicon:
    """The shipped Dutch and English concepts, normalised like every phrase; read once per process."""
    return build_lexicon(phrase_tokens)


def lexicon_with(esco: Iterable[Any]) -> Lexicon:
    """The shipped concepts plus ESCO concepts (:class:`services.matching.concepts.EscoLabels`)."""
    return build_lexicon(phrase_tokens, esco)


# --------------------------------------------------------------------------------------------------------
# Profiles


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
        if not whole or ladder != int(ladder):
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


# --------------------------------------------------------------------------------------------------------
# Hard constraints and the components of the soft score, one pair at a time


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


# --------------------------------------------------------------------------------------------------------
# Phrases


class _Phrase(NamedTuple):
    text: str
    source: str
    tokens: tuple[str, ...]
    # The concepts the phrase named, whose labels are among its tokens.
    concepts: tuple[str, ...] = ()


def _display(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_PHRASE_CHARS else text[: MAX_PHRASE_CHARS - 1] + "\u2026"


Tokenised = tuple[tuple[str, ...], tuple[str, ...]]

# Vacancy texts repeat across vacancies and across calls, so their phrases are cached; candidate texts are
# not, so that nothing a candidate wrote outlives the request that used it.
_vacancy_tokens = lru_cache(maxsize=1 << 16)(phrase_tokens)


@lru_cache(maxsize=1 << 16)
def _vacancy_phrase(text: str, source: str, lexicon: Lexicon) -> _Phrase | None:
    tokens, concepts = lexicon.expand(_vacancy_tokens(text))
    return _Phrase(text.strip(), source, tokens, concepts) if tokens else None


def _candidate_phrase(text: str, source: str, lexicon: Lexicon) -> _Phrase | None:
    tokens, concepts = lexicon.expand(phrase_tokens(text))
    return _Phrase(text.strip(), source, tokens, concepts) if tokens else None


@lru_cache(maxsize=1 << 15)
def _sentences(description: str) -> tuple[str, ...]:
    parts = _SENTENCE_END.split(description[:MAX_DESCRIPTION_CHARS])
    return tuple(part for part in parts if part.strip())[:MAX_DESCRIPTION_SENTENCES]


def _items(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        if "," in text or ";" in text or "\n" in text or "\u2022" in text:
            yield from _LIST_SEPARATOR.split(text)
        else:
            yield text


def _collect(
    texts: Iterable[str],
    source: str,
    make: Callable[[str, str, Lexicon], _Phrase | None],
    lexicon: Lexicon,
    out: list[_Phrase],
    seen: set[tuple[str, ...]],
) -> None:
    count = 0
    for text in texts:
        if count >= MAX_PHRASES_PER_FIELD:
            break
        phrase = make(text, source, lexicon)
        if phrase is not None and phrase.tokens not in seen:
            seen.add(phrase.tokens)
            out.append(phrase)
            count += 1


def candidate_phrases(candidate: CandidateProfile, lexicon: Lexicon | None = None) -> list[_Phrase]:
    """Talents, then preferences, split into single items, each once; items without words are dropped."""
    lexicon = lexicon or default_lexicon()
    phrases: list[_Phrase] = []
    seen: set[tuple[str, ...]] = set()
    _collect(_items(candidate.talents), "talent", _candidate_phrase, lexicon, phrases, seen)
    _collect(_items(candidate.preferences), "preference", _candidate_phrase, lexicon, phrases, seen)
    return phrases


def vacancy_phrases(vacancy: VacancyProfile, lexicon: Lexicon | None = None) -> list[_Phrase]:
    """Skills, tasks, the title and the description's sentences, each tagged with its field."""
    lexicon = lexicon or default_lexicon()
    phrases: list[_Phrase] = []
    # De-duplicated per field only: a phrase that is both a skill and a task appears under both, and the
    # explanation then shows the field with the higher weight.
    _collect(_items(vacancy.skills), "skill", _vacancy_phrase, lexicon, phrases, set())
    _collect(_items(vacancy.tasks), "task", _vacancy_phrase, lexicon, phrases, set())
    _collect((vacancy.title,), "title", _vacancy_phrase, lexicon, phrases, set())
    _collect(_sentences(vacancy.description), "description", _vacancy_phrase, lexicon, phrases, set())
    return phrases


def candidate_text(candidate: CandidateProfile, lexicon: Lexicon | None = None) -> str:
    """The candidate as one (normalised, concept-expanded) document, for fitting a :class:`TextModel`."""
    return " ".join(" ".join(p.tokens) for p in candidate_phrases(candidate, lexicon))


def vacancy_text(vacancy: VacancyProfile, lexicon: Lexicon | None = None) -> str:
    """The vacancy as one (normalised, concept-expanded) document, for fitting a :class:`TextModel`."""
    return " ".join(" ".join(p.tokens) for p in vacancy_phrases(vacancy, lexicon))


# --------------------------------------------------------------------------------------------------------
# Text model


def _tfidf_rows(counts: sp.csr_matrix, idf: np.ndarray, scale: float) -> sp.csr_matrix:
    """TfidfTransformer(sublinear_tf=True, norm="l2") on a count matrix, then scaled by ``scale``."""
    matrix = sp.csr_matrix(counts, dtype=np.float64, copy=True)
    matrix.sum_duplicates()
    np.log(matrix.data, out=matrix.data)
    matrix.data += 1.0
    matrix.data *= idf[matrix.indices]
    row_ids = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    norms = np.sqrt(np.bincount(row_ids, weights=matrix.data**2, minlength=matrix.shape[0]))
    matrix.data /= norms[row_ids]
    matrix.data *= scale
    return matrix


def _idf(document_frequency: np.ndarray, n_documents: int) -> np.ndarray:
    return np.log((1.0 + n_documents) / (1.0 + document_frequency)) + 1.0


def _rows_of_counts(index_lists: Sequence[Sequence[int]], width: int) -> sp.csr_matrix:
    lengths = np.fromiter((len(indices) for indices in index_lists), dtype=np.int64, count=len(index_lists))
    row_ids = np.repeat(np.arange(len(index_lists), dtype=np.int64), lengths)
    flat = np.fromiter((i for indices in index_lists for i in indices), dtype=np.int64, count=int(lengths.sum()))
    matrix = sp.csr_matrix((np.ones(len(flat)), (row_ids, flat)), shape=(len(index_lists), width))
    matrix.sum_duplicates()
    return matrix


def _summed(keys: np.ndarray, values: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values summed per key (``row * width + column``), as rows, columns and sums in key order."""
    unique, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse.reshape(-1), weights=values, minlength=len(unique))
    return unique // width, unique % width, sums


def _tfidf_data(
    rows: np.ndarray, columns: np.ndarray, counts: np.ndarray, idf: np.ndarray, n_rows: int, weight: float
) -> np.ndarray:
    """:func:`_tfidf_rows` on the entries of a count matrix given in canonical order."""
    data = np.log(counts)
    data += 1.0
    data *= idf[columns]
    norms = np.sqrt(np.bincount(rows, weights=data**2, minlength=n_rows))
    data /= norms[rows]
    data *= math.sqrt(weight)
    return data


class TextModel:
    """TF-IDF over character n-grams and words, fitted on the vacancy and candidate texts of one tenant.

    It works word by word rather than text by text: ``char_wb`` n-grams never cross a space, so a text's
    n-gram counts are the sum of its words' counts. Each distinct word is analysed once and a text is a
    sparse sum of word rows, which turns vectorising tens of thousands of vacancies into a few sparse
    products. The numbers are exactly those of the two ``TfidfVectorizer``s it exposes
    (:attr:`char_vectorizer`, :attr:`word_vectorizer`) on the normalised text; the tests hold it to that.

    A fitted model is read-only and safe to share between threads. Fitted on candidate texts, its
    vocabulary contains words candidates wrote: refit it when a candidate is erased.

    ``lexicon`` is the concept layer that profiles ranked with this model are expanded with (the shipped
    concepts when None); the model's own text methods do not use it.
    """

    def __init__(self, *, char_weight: float = CHAR_WEIGHT, lexicon: Lexicon | None = None) -> None:
        if not 0.0 <= char_weight <= 1.0:
            raise ValueError("char_weight must be between 0 and 1")
        self.char_weight = char_weight
        self.lexicon = lexicon or default_lexicon()
        self._version: str | None = None
        self._char_analyzer = self._new_char_vectorizer().build_analyzer()
        self._fitted = False
        self._word_index: dict[str, int] = {}
        self._gram_index: dict[str, int] = {}
        self._word_grams = sp.csr_matrix((0, 0))
        self._char_idf = np.zeros(0)
        self._word_idf = np.zeros(0)

    @staticmethod
    def _new_char_vectorizer(**kwargs: Any) -> TfidfVectorizer:
        return TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=False, sublinear_tf=True, **kwargs)

    @staticmethod
    def _new_word_vectorizer(**kwargs: Any) -> TfidfVectorizer:
        return TfidfVectorizer(
            analyzer="word", token_pattern=_WORD_PATTERN, lowercase=False, sublinear_tf=True, **kwargs
        )

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    @property
    def n_features(self) -> int:
        return len(self._gram_index) + len(self._word_index)

    @property
    def version(self) -> str:
        """A short digest of what the model learned and the concepts it expands with.

        Two models with the same version score every pair alike; it names the model in the ranking log.
        """
        self._require_fitted()
        if self._version is None:
            digest = hashlib.sha256()
            digest.update(self.lexicon.version.encode())
            digest.update(repr(self.char_weight).encode())
            digest.update("\n".join(self._word_index).encode("utf-8"))
            digest.update(self._char_idf.tobytes())
            digest.update(self._word_idf.tobytes())
            self._version = digest.hexdigest()[:12]
        return self._version

    @property
    def char_vectorizer(self) -> TfidfVectorizer:
        """The character n-gram block as a fitted scikit-learn vectorizer (its input: normalised text)."""
        self._require_fitted()
        vectorizer = self._new_char_vectorizer(vocabulary=self._gram_index)
        vectorizer.idf_ = self._char_idf
        return vectorizer

    @property
    def word_vectorizer(self) -> TfidfVectorizer:
        """The word block as a fitted scikit-learn vectorizer (its input: normalised text)."""
        self._require_fitted()
        vectorizer = self._new_word_vectorizer(vocabulary=self._word_index)
        vectorizer.idf_ = self._word_idf
        return vectorizer

    def _require_fitted(self) -> None:
        if not self._fitted:
            raise ValueError("TextModel is not fitted; call fit() with vacancy and candidate texts first")

    def fit(self, texts: Iterable[str]) -> TextModel:
        """Fit on documents, typically one per vacancy and one per candidate (see :func:`vacancy_text`)."""
        return self.fit_tokens([document_tokens(text) for text in texts])

    def fit_tokens(self, documents: Sequence[Sequence[str]]) -> TextModel:
        documents = [tuple(document) for document in documents]
        return self._fit(documents, sp.identity(len(documents), format="csr"))

    def _fit(self, phrases: Sequence[tuple[str, ...]], document_phrases: sp.csr_matrix) -> TextModel:
        """Fit on documents given as bags of phrases: ``document_phrases[d, p]`` > 0 if ``p`` is in ``d``."""
        words = sorted({word for phrase in phrases for word in phrase})
        word_index = {word: position for position, word in enumerate(words)}
        phrase_words = _rows_of_counts([[word_index[w] for w in phrase] for phrase in phrases], len(words))
        document_words = sp.csr_matrix(document_phrases @ phrase_words)
        document_words.data[:] = 1.0
        gram_lists = [self._char_analyzer(word) for word in words]
        grams = sorted({gram for gram_list in gram_lists for gram in gram_list})
        gram_index = {gram: position for position, gram in enumerate(grams)}
        word_grams = _rows_of_counts([[gram_index[g] for g in gram_list] for gram_list in gram_lists], len(grams))
        presence = sp.csr_matrix(word_grams, copy=True)
        presence.data[:] = 1.0
        document_grams = sp.csr_matrix(document_words @ presence)
        n_documents = document_phrases.shape[0]
        self._char_idf = _idf(np.bincount(document_grams.indices, minlength=len(grams)), n_documents)
        self._word_idf = _idf(np.bincount(document_words.indices, minlength=len(words)), n_documents)
        self._word_grams = word_grams
        self._word_index = word_index
        self._gram_index = gram_index
        self._fitted = True
        return self

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """One row per text; rows have unit length, so their dot product is the cosine similarity."""
        return self.transform_tokens([document_tokens(text) for text in texts])

    def transform_tokens(self, token_lists: Sequence[Sequence[str]]) -> sp.csr_matrix:
        self._require_fitted()
        # A query is a handful of phrases, so this works on flat arrays rather than through sparse
        # matrix constructions, whose fixed cost would outweigh the arithmetic. The numbers are those of
        # sum_duplicates, log, idf and l2 norm in ascending column order within a row, exactly as
        # TfidfTransformer computes them.
        local: dict[str, int] = {}
        row_of_word: list[int] = []
        word_of_row: list[int] = []
        for row, tokens in enumerate(token_lists):
            for word in tokens:
                column = local.get(word)
                if column is None:
                    column = local[word] = len(local)
                row_of_word.append(row)
                word_of_row.append(column)
        n_rows, n_local = len(token_lists), len(local)
        n_grams, n_words = len(self._gram_index), len(self._word_index)
        pair_rows = np.asarray(row_of_word, dtype=np.int64)
        pair_words = np.asarray(word_of_row, dtype=np.int64)
        global_ids = np.fromiter((self._word_index.get(w, -1) for w in local), dtype=np.int64, count=n_local)

        # Each local word's n-grams as (gram, count) runs: from the fitted rows for words seen in fit;
        # any other word is analysed here, keeping only the n-grams the model knows, exactly as
        # TfidfVectorizer.transform ignores unknown features.
        indptr, indices, data = self._word_grams.indptr, self._word_grams.indices, self._word_grams.data
        gram_lists: list[np.ndarray] = []
        count_lists: list[np.ndarray] = []
        for word, global_id in zip(local, global_ids.tolist(), strict=True):
            if global_id >= 0:
                gram_lists.append(indices[indptr[global_id] : indptr[global_id + 1]])
                count_lists.append(data[indptr[global_id] : indptr[global_id + 1]])
            else:
                known = [self._gram_index[g] for g in self._char_analyzer(word) if g in self._gram_index]
                grams, counts = np.unique(np.asarray(known, dtype=np.int64), return_counts=True)
                gram_lists.append(grams)
                count_lists.append(counts.astype(np.float64))
        lengths = np.fromiter((len(g) for g in gram_lists), dtype=np.int64, count=n_local)
        word_grams = np.concatenate(gram_lists).astype(np.int64) if n_local else np.zeros(0, dtype=np.int64)
        word_counts = np.concatenate(count_lists) if n_local else np.zeros(0)
        word_starts = np.cumsum(lengths) - lengths

        spans = lengths[pair_words]
        firsts = np.repeat(word_starts[pair_words] - (np.cumsum(spans) - spans), spans) + np.arange(int(spans.sum()))
        char_keys = np.repeat(pair_rows, spans) * n_grams + word_grams[firsts]
        char_rows, char_columns, char_data = _summed(char_keys, word_counts[firsts], n_grams)
        char_data = _tfidf_data(char_rows, char_columns, char_data, self._char_idf, n_rows, self.char_weight)

        known_pairs = global_ids[pair_words] >= 0
        word_keys = pair_rows[known_pairs] * n_words + global_ids[pair_words[known_pairs]]
        word_rows, word_columns, word_data = _summed(word_keys, np.ones(len(word_keys)), n_words)
        word_data = _tfidf_data(word_rows, word_columns, word_data, self._word_idf, n_rows, 1.0 - self.char_weight)

        # Rows in order, and within a row the n-grams before the words, each ascending: the canonical
        # order, so a dot product sums in the same order whichever batch a phrase was transformed in and
        # the two ranking directions agree to the last bit.
        all_rows = np.concatenate((char_rows, word_rows))
        order = np.argsort(all_rows, kind="stable")
        columns = np.concatenate((char_columns, word_columns + n_grams))[order]
        values = np.concatenate((char_data, word_data))[order]
        row_pointer = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(all_rows, minlength=n_rows), out=row_pointer[1:])
        result = sp.csr_matrix((values, columns, row_pointer), shape=(n_rows, n_grams + n_words))
        result.has_sorted_indices = True
        return result

    def similarity(self, left: Sequence[str], right: Sequence[str]) -> np.ndarray:
        """Cosine similarity of every phrase in ``left`` with every phrase in ``right``."""
        a = self.transform_tokens([phrase_tokens(text) for text in left])
        b = self.transform_tokens([phrase_tokens(text) for text in right])
        return np.asarray((a @ b.T).toarray())


class _PhraseTable:
    """Distinct phrase token lists, numbered; number 0 is the empty phrase."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, ...], int] = {(): 0}

    def add(self, tokens: tuple[str, ...]) -> int:
        number = self.ids.get(tokens)
        if number is None:
            number = self.ids[tokens] = len(self.ids)
        return number

    @property
    def tokens(self) -> list[tuple[str, ...]]:
        return list(self.ids)


def _fit_on(table: _PhraseTable, documents: Sequence[Sequence[int]], lexicon: Lexicon | None = None) -> TextModel:
    """A model fitted on documents given as lists of phrase numbers from ``table``."""
    return TextModel(lexicon=lexicon)._fit(table.tokens, _rows_of_counts(documents, len(table.ids)))


def fit_model(
    vacancies: Iterable[VacancyProfile] = (),
    candidates: Iterable[CandidateProfile] = (),
    *,
    lexicon: Lexicon | None = None,
) -> TextModel:
    """A model fitted on these vacancies and candidates, one document each; same as
    ``TextModel().fit([vacancy_text(v) ...] + [candidate_text(c) ...])`` but faster."""
    lexicon = lexicon or default_lexicon()
    table = _PhraseTable()
    documents = [[table.add(p.tokens) for p in _vacancy_record(v, lexicon).phrases] for v in vacancies]
    documents += [[table.add(p.tokens) for p in candidate_phrases(c, lexicon)] for c in candidates]
    return _fit_on(table, documents, lexicon)


# --------------------------------------------------------------------------------------------------------
# Scoring


class Reranker(Protocol):
    """Adjusts soft scores from their components (see :mod:`services.matching.reranker`)."""

    @property
    def version(self) -> str: ...

    def adjust(self, components: Mapping[str, np.ndarray], scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """New scores in [0, 1], and each pair's predicted chance of a lasting placement."""
        ...


def weights_version(weights: Mapping[str, float] | None = None) -> str:
    """A short name for a set of weights: equal weights, equal name, whatever their order or spelling."""
    resolved = resolve_weights(weights)
    text = json.dumps({name: float(resolved[name]) for name in sorted(resolved)}, sort_keys=True)
    return "w-" + hashlib.sha256(text.encode()).hexdigest()[:8]


def ranking_version(reranker: Reranker | None = None) -> str:
    """The ranking's name as every match carries it: the text model, plus the reranker when one is on."""
    return RANKING_VERSION if reranker is None else f"{RANKING_VERSION}+{reranker.version}"


class _Scoring(NamedTuple):
    weights: dict[str, float]
    weights_version: str
    ranking_version: str
    reranker: Reranker | None

    @classmethod
    def of(cls, weights: Mapping[str, float] | None, reranker: Reranker | None) -> _Scoring:
        resolved = resolve_weights(weights)
        return cls(resolved, weights_version(resolved), ranking_version(reranker), reranker)

    def scores(self, components: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(final scores, scores before the reranker, predicted success or None)."""
        base = np.asarray(_final_score(components, self.weights), dtype=np.float64)
        if self.reranker is None:
            return base, base, None
        adjusted, success = self.reranker.adjust(components, base)
        return np.round(np.clip(np.asarray(adjusted, dtype=np.float64), 0.0, 1.0), 4), base, np.asarray(success)


def _talent_from_best(best: np.ndarray) -> np.ndarray:
    """``best[i, j]``: best field-weighted similarity of candidate phrase ``i`` within pair ``j``."""
    if best.shape[0] == 0:
        return np.zeros(best.shape[1])
    combined = TALENT_BEST_SHARE * best.max(axis=0) + (1.0 - TALENT_BEST_SHARE) * best.mean(axis=0)
    return np.clip(combined, 0.0, 1.0)


def _number_out(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 4)


def _talents_matched(
    phrases: Sequence[_Phrase], counterparts: Sequence[_Phrase], similarity: np.ndarray, lexicon: Lexicon
) -> list[dict[str, Any]]:
    """Per candidate phrase its best vacancy phrase (by field-weighted similarity), if similar enough."""
    if not phrases or not counterparts:
        return []
    weights = np.array([FIELD_WEIGHTS[p.source] for p in counterparts])
    columns = np.argmax(similarity * weights, axis=1)
    values = similarity[np.arange(len(phrases)), columns].tolist()
    pairs = []
    for phrase, best, value in zip(phrases, columns.tolist(), values, strict=True):
        if value >= EXPLAIN_MIN_SIMILARITY:
            counterpart = counterparts[best]
            pair: dict[str, Any] = {
                "talent": _display(phrase.text),
                "source": phrase.source,
                "matched": _display(counterpart.text),
                "field": counterpart.source,
                "similarity": round(min(value, 1.0), 4),
            }
            shared = [concept for concept in phrase.concepts if concept in counterpart.concepts]
            # Only worth saying when the words differ: "schoonmaken" met "cleaning" through a concept.
            if shared and phrase.tokens != counterpart.tokens:
                pair["concepts"] = [lexicon.label(concept) for concept in shared]
            pairs.append(pair)
    pairs.sort(key=lambda pair: (-pair["similarity"], pair["talent"]))
    return pairs


def _explanation(
    candidate: CandidateProfile,
    vacancy: VacancyProfile,
    talents_matched: list[dict[str, Any]],
    components: Mapping[str, float],
    scoring: _Scoring,
    km: float | None,
    before_rerank: float | None = None,
    success: float | None = None,
) -> dict[str, Any]:
    offered = vacancy.supports_offered
    overlap = hours_overlap(candidate, vacancy)
    explanation = {
        "talents_matched": talents_matched,
        "supports": {
            "needed": sorted(candidate.essential_needs | candidate.preferred_needs),
            "offered": sorted(offered),
            "essential_met": sorted(candidate.essential_needs & offered),
            "preferred_met": sorted(candidate.preferred_needs & offered),
            "preferred_missing": sorted(candidate.preferred_needs - offered),
        },
        "hours": {
            "candidate": [_number_out(candidate.hours_min), _number_out(candidate.hours_max)],
            "vacancy": [_number_out(vacancy.hours_min), _number_out(vacancy.hours_max)],
            "overlap": None if overlap is None else [_number_out(overlap[0]), _number_out(overlap[1])],
            "fit": round(float(components["hours"]), 4),
        },
        "ladder": {"from": candidate.ladder_step, "to": vacancy.rung, "fit": round(float(components["ladder"]), 4)},
        "distance_km": None if km is None else round(float(km), 2),
        "components": {name: round(float(value), 4) for name, value in components.items()},
        "weights": dict(scoring.weights),
        "weights_version": scoring.weights_version,
        "ranking_version": scoring.ranking_version,
    }
    if scoring.reranker is not None and before_rerank is not None and success is not None:
        explanation["rerank"] = {
            "version": scoring.reranker.version,
            "score_before": round(float(before_rerank), 4),
            "predicted_success": round(float(success), 4),
        }
    return explanation


def _final_score(components: Mapping[str, Any], weights: Mapping[str, float]) -> Any:
    """Weighted mean of the components, rounded; works on floats and on numpy arrays alike."""
    total = sum(weights.values())
    score = sum(weights[name] * components[name] for name in weights) / total
    return np.round(np.clip(score, 0.0, 1.0), 4)


# Ladder fit by (rung - step), for a step below the top; index with diff + offset.
_LADDER_OFFSET: Final = TOP_LADDER_STEP
_LADDER_BY_DIFF: Final = np.array([ladder_fit(1, 1 + diff) for diff in range(-TOP_LADDER_STEP, TOP_LADDER_STEP + 1)])


def _ladder_fits(steps: np.ndarray, rungs: np.ndarray) -> np.ndarray:
    diff = rungs - steps
    diff = np.where((diff == 0) & (steps == TOP_LADDER_STEP), 1, diff)
    return _LADDER_BY_DIFF[diff + _LADDER_OFFSET]


def _hours_fits(low_a: np.ndarray, high_a: np.ndarray, low_b: Any, high_b: Any) -> np.ndarray:
    overlap = np.minimum(high_a, high_b) - np.maximum(low_a, low_b)
    narrower = np.minimum(high_a - low_a, high_b - low_b)
    safe = np.where(narrower > 0, narrower, 1.0)
    return np.clip(np.where(narrower > 0, overlap / safe, 1.0), 0.0, 1.0)


def _distance_fits(km: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Vectorised :func:`distance_fit`; NaN stands for an unknown distance or no travel limit."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sloped = np.clip(1.0 - km / np.where(limit > 0, limit, 1.0), 0.0, 1.0)
    fit = np.where(limit <= 0, np.where(km <= 0, 1.0, 0.0), sloped)
    return np.where(np.isnan(km) | np.isnan(limit), 1.0, fit)


def _haversine(lat1_rad: Any, lon1_rad: Any, cos_lat1: Any, lat2_rad: Any, lon2_rad: Any, cos_lat2: Any) -> Any:
    a = np.sin((lat2_rad - lat1_rad) / 2) ** 2 + cos_lat1 * cos_lat2 * np.sin((lon2_rad - lon1_rad) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(a)))


def _ordered(scores: np.ndarray, id_rank: np.ndarray, k: int | None) -> np.ndarray:
    """Positions of the ``k`` best scores (all if None), best first, equal scores by id."""
    if k is not None and k < len(scores):
        cutoff = -np.partition(-scores, k - 1)[k - 1]
        keep = np.flatnonzero(scores >= cutoff)
    else:
        keep = np.arange(len(scores))
    return keep[np.lexsort((id_rank[keep], -scores[keep]))][:k]


def _id_ranks(ids: Sequence[str]) -> np.ndarray:
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[sorted(range(len(ids)), key=ids.__getitem__)] = np.arange(len(ids))
    return ranks


_NUMBERS: Final = ("open", "positions", "hours_min", "hours_max", "supports", "rung", "lat", "lon")


class _VacancyRecord(NamedTuple):
    phrases: tuple[_Phrase, ...]
    phrase_weights: tuple[float, ...]
    numbers: tuple[float, ...]


# Vacancies are public and are ranked again and again; what an index needs of each is computed once.
@lru_cache(maxsize=1 << 15)
def _vacancy_record(vacancy: VacancyProfile, lexicon: Lexicon) -> _VacancyRecord:
    phrases = tuple(vacancy_phrases(vacancy, lexicon))
    # A vacancy without usable text still gets one row (the empty phrase, weight 0) in the index.
    weights = tuple(FIELD_WEIGHTS[p.source] for p in phrases) or (0.0,)
    numbers = (
        float(vacancy.status == "open"),
        float(vacancy.positions),
        vacancy.hours_min,
        vacancy.hours_max,
        float(support_mask(vacancy.supports_offered)),
        float(vacancy.rung),
        math.nan if vacancy.lat is None else vacancy.lat,
        math.nan if vacancy.lon is None else vacancy.lon,
    )
    return _VacancyRecord(phrases, weights, numbers)


class _MaskableRows:
    """Rows of an index that can be left out without rebuilding it: a mask over arrays that stay shared."""

    def _rows(self) -> list:
        raise NotImplementedError

    def _mask_all_live(self) -> None:
        rows = self._rows()
        self._index_of = {row.id: i for i, row in enumerate(rows)}
        self._live = np.ones(len(rows), dtype=bool)

    def __len__(self) -> int:
        return int(self._live.sum())

    def without(self, ids: Iterable[str]):
        """This index with the given rows left out; this one is unchanged, the arrays are shared."""
        positions = [self._index_of[i] for i in ids if i in self._index_of]
        if not positions:
            return self
        view = copy.copy(self)
        view._live = self._live.copy()
        view._live[positions] = False
        return view

    @property
    def size(self) -> int:
        """Rows held, including those left out since: what a rebuild would have to drop."""
        return len(self._rows())

    def live(self) -> list:
        return [row for row, live in zip(self._rows(), self._live, strict=True) if live]

    def get(self, row_id: str):
        position = self._index_of.get(row_id)
        return self._rows()[position] if position is not None and self._live[position] else None


class VacancyIndex(_MaskableRows):
    """Vacancies vectorised once, answering "the best vacancies for this candidate" in milliseconds.

    Build one per tenant from its current vacancies, ideally with a model fitted on the tenant's vacancy
    and candidate texts. It is never modified after construction, so one index can serve concurrent
    requests; :meth:`without` gives a view in which some vacancies no longer take part, which is how
    :mod:`services.matching.index` retires changed rows without rebuilding. Hard constraints run on numpy
    arrays (tenant, status, positions, hours, support bitmasks, coordinates). Text similarity is a sparse
    product of the candidate's phrases with the few distinct skill, task and title phrases, gathered per
    vacancy; description sentences, mostly unique to their vacancy, are compared only for the vacancies
    that a bound on their score leaves in reach of the top ``k``.
    """

    def __init__(
        self,
        vacancies: Iterable[VacancyProfile],
        *,
        model: TextModel | None = None,
        extra_documents: Iterable[str] = (),
        lexicon: Lexicon | None = None,
    ) -> None:
        """Without ``model``, fit one on these vacancies plus ``extra_documents`` (e.g. candidate texts)."""
        self.vacancies: tuple[VacancyProfile, ...] = tuple(vacancies)
        n = len(self.vacancies)
        if model is not None:
            model._require_fitted()
            lexicon = model.lexicon
        lexicon = lexicon or default_lexicon()
        records = [_vacancy_record(v, lexicon) for v in self.vacancies]
        self._phrases = [record.phrases for record in records]

        # Each vacancy owns a contiguous run of rows, its phrases in their own order (at least one, the
        # empty phrase, if it has none); the explanation reads a vacancy's similarities in that order.
        table = _PhraseTable()
        documents = [[table.add(p.tokens) for p in phrases] or [0] for phrases in self._phrases]
        self._counts = np.fromiter((len(d) for d in documents), dtype=np.int64, count=n)
        self._starts = np.cumsum(self._counts) - self._counts
        self._phrase_ids = np.fromiter((i for d in documents for i in d), dtype=np.int64, count=int(self._counts.sum()))
        self._phrase_weights = np.fromiter(
            (w for record in records for w in record.phrase_weights), dtype=np.float64, count=len(self._phrase_ids)
        )
        if model is None:
            documents += [[table.add(lexicon.expand(document_tokens(text))[0])] for text in extra_documents]
            model = _fit_on(table, documents, lexicon)
        self.model = model

        # The rows split into two blocks. Skills, tasks and titles come from short lists that vacancies
        # share, so their distinct phrases are few and a query compares with all of them. Description
        # sentences are mostly unique and weigh least, so a query compares with them only for the vacancies
        # that can still reach its top k once every sentence is assumed to match perfectly.
        flags = [[p.source == "description" for p in phrases] or [False] for phrases in self._phrases]
        in_description = np.fromiter((f for row in flags for f in row), dtype=bool, count=len(self._phrase_ids))
        self._in_description = in_description
        vectors = model.transform_tokens(table.tokens)
        self._column = np.zeros(len(self._phrase_ids), dtype=np.int64)
        self._head = self._block(vectors, ~in_description)
        self._description = self._block(vectors, in_description)
        self._head_t = self._head.vectors.T.tocsr()
        # Head rows as (phrase, field weight) pairs, of which there are barely more than phrases: a query
        # weighs each pair once and then only gathers.
        pairs, self._head_pair = np.unique(
            np.stack((self._head.columns, self._head.weights)), axis=1, return_inverse=True
        )
        self._head_pair = self._head_pair.reshape(-1)
        self._pair_phrase = pairs[0].astype(np.int64)
        self._pair_weight = pairs[1]
        # The same rows as a table, a vacancy per column and its j-th pair in row j (padded with a pair
        # past the end, which weighs zero), so that the best pair of every vacancy is a column maximum.
        # Rows past the table's depth, which few vacancies have, are kept aside.
        counts = self._head.counts
        depth = int(np.percentile(counts, 90)) if n else 0
        owners = np.repeat(np.arange(n), counts)
        within = np.arange(len(owners)) - np.repeat(self._head.starts, counts)
        inside = within < depth
        self._pair_table = np.full((depth, n), len(pairs[0]), dtype=np.int64)
        self._pair_table[within[inside], owners[inside]] = self._head_pair[inside]
        self._deep_owners = owners[~inside]
        self._deep_pairs = self._head_pair[~inside]
        # A cosine of unit vectors is at most 1; the margin covers rounding in the dot product.
        self._description_bound = FIELD_WEIGHTS["description"] * (1.0 + 1e-9)

        tenants = sorted({v.tenant for v in self.vacancies})
        self._tenant_codes = {tenant: code for code, tenant in enumerate(tenants)}
        self._tenant = np.fromiter((self._tenant_codes[v.tenant] for v in self.vacancies), np.int64, n)
        columns = np.array([record.numbers for record in records], dtype=np.float64).reshape(n, len(_NUMBERS))
        self._open = columns[:, _NUMBERS.index("open")] > 0
        self._positions = columns[:, _NUMBERS.index("positions")].astype(np.int64)
        self._matchable = self._open & (self._positions > 0)
        self._hours_min = columns[:, _NUMBERS.index("hours_min")]
        self._hours_max = columns[:, _NUMBERS.index("hours_max")]
        self._supports = columns[:, _NUMBERS.index("supports")].astype(np.int64)
        self._rung = columns[:, _NUMBERS.index("rung")].astype(np.int64)
        self._lat_rad = np.radians(columns[:, _NUMBERS.index("lat")])
        self._lon_rad = np.radians(columns[:, _NUMBERS.index("lon")])
        self._cos_lat = np.cos(self._lat_rad)
        self._id_rank = _id_ranks([v.id for v in self.vacancies])
        self._mask_all_live()

    def _rows(self) -> list[VacancyProfile]:
        return self.vacancies

    def matchable_count(self) -> int:
        """How many vacancies here are open with a position left: the ones any candidate could get."""
        return int((self._live & self._open & (self._positions > 0)).sum())

    def _distances(self, candidate: CandidateProfile, subset: np.ndarray) -> np.ndarray:
        """Haversine km from the candidate to the vacancies in ``subset``; NaN where either has no place."""
        if candidate.lat is None or candidate.lon is None:
            return np.full(len(subset), np.nan)
        p1 = math.radians(candidate.lat)
        return _haversine(
            p1,
            math.radians(candidate.lon),
            math.cos(p1),
            self._lat_rad[subset],
            self._lon_rad[subset],
            self._cos_lat[subset],
        )

    def _allowed_with_distances(
        self, candidate: CandidateProfile, distances: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The allowed vacancies and their distances; without ``distances``, NaN unless a limit needs them."""
        tenant = self._tenant_codes.get(candidate.tenant)
        if tenant is None or not candidate.consent_matching:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        essential = support_mask(candidate.essential_needs)
        mask = self._live & self._matchable
        if len(self._tenant_codes) > 1:
            mask &= self._tenant == tenant
        mask &= np.maximum(self._hours_min, candidate.hours_min) <= np.minimum(self._hours_max, candidate.hours_max)
        mask &= (self._supports & essential) == essential
        # Distance last and only for what is left: it is the one costly test.
        subset = np.flatnonzero(mask)
        if candidate.max_travel_km is None and not distances:
            return subset, np.full(len(subset), np.nan)
        km = self._distances(candidate, subset)
        if candidate.max_travel_km is not None:
            # NaN (no coordinates on one side) compares False: an unknown distance is not too far.
            near = ~(km > candidate.max_travel_km)
            subset, km = subset[near], km[near]
        return subset, km

    def allowed(self, candidate: CandidateProfile) -> np.ndarray:
        """Mask of the vacancies that pass every hard constraint; agrees with :func:`hard_constraint_failures`."""
        mask = np.zeros(len(self.vacancies), dtype=bool)
        mask[self._allowed_with_distances(candidate)[0]] = True
        return mask

    def _block(self, vectors: sp.csr_matrix, rows: np.ndarray) -> _Block:
        """The rows picked by mask ``rows`` as a block; notes each row's column within it in ``_column``."""
        owners = np.repeat(np.arange(len(self.vacancies)), self._counts)[rows]
        counts = np.bincount(owners, minlength=len(self.vacancies))
        used, columns = np.unique(self._phrase_ids[rows], return_inverse=True)
        self._column[rows] = columns
        return _Block(counts, np.cumsum(counts) - counts, columns, self._phrase_weights[rows], vectors[used])

    def _best_pair(self, pair_best: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        """Per allowed vacancy, the largest ``pair_best`` among its head rows (zero without any)."""
        if len(allowed) * 4 < len(self.vacancies) or not len(self._head_pair):
            return _best_per_vacancy(pair_best[np.newaxis, :], self._head, allowed, self._head_pair)[0]
        # For most of the index, one pass over every vacancy costs less than picking the allowed ones out.
        padded = np.append(pair_best, 0.0)
        top = padded[self._pair_table].max(axis=0, initial=0.0)
        np.maximum.at(top, self._deep_owners, pair_best[self._deep_pairs])
        return top[allowed]

    def top_k(
        self,
        candidate: CandidateProfile,
        k: int | None = 10,
        *,
        weights: Mapping[str, float] | None = None,
        reranker: Reranker | None = None,
        min_score: float | None = None,
    ) -> list[Match]:
        """The ``k`` best allowed vacancies (all if ``k`` is None), best first, equal scores by vacancy id.

        With ``min_score`` only those scoring at least that much.
        """
        scoring = _Scoring.of(weights, reranker)
        if k is not None and k <= 0:
            return []
        # Without a travel limit distance does not score (its fit is 1.0 at any distance), so it is
        # measured only for the vacancies returned, whose explanation states it.
        allowed, km = self._allowed_with_distances(candidate, distances=False)
        if len(allowed) == 0:
            return []

        lexicon = self.model.lexicon
        phrases = candidate_phrases(candidate, lexicon)
        query = self.model.transform_tokens([p.tokens for p in phrases]) if phrases else None
        head_similarity = np.zeros((len(phrases), self._head.vectors.shape[0]))
        if query is not None:
            head_similarity = np.asarray((query @ self._head_t).toarray())
        weighted = head_similarity[:, self._pair_phrase] * self._pair_weight

        limit = np.nan if candidate.max_travel_km is None else candidate.max_travel_km
        preferred = support_mask(candidate.preferred_needs)
        components = {
            "talent": np.zeros(len(allowed)),
            "supports": (
                np.bitwise_count(self._supports[allowed] & preferred) / len(candidate.preferred_needs)
                if candidate.preferred_needs
                else np.ones(len(allowed))
            ),
            "hours": _hours_fits(
                self._hours_min[allowed], self._hours_max[allowed], candidate.hours_min, candidate.hours_max
            ),
            "ladder": _ladder_fits(np.full(len(allowed), candidate.ladder_step), self._rung[allowed]),
            # Without a travel limit every distance fits fully.
            "distance": np.ones(len(allowed)) if np.isnan(limit) else _distance_fits(km, np.full(len(allowed), limit)),
        }
        described = self._description.counts[allowed] > 0
        sentence_bound = np.where(described, self._description_bound, 0.0)
        prune = query is not None and reranker is None and k is not None and len(allowed) > k

        # Exact scores are needed only for vacancies that can reach the top k, and two cheap bounds
        # rule out most of the rest. The exact talent is still taken over every allowed vacancy at once,
        # the ruled-out ones holding lower values, so that it comes out to the last bit as without
        # pruning. A reranker may reorder scores freely, so with one every vacancy is scored in full.
        heads = np.arange(len(allowed))
        if prune:
            # The best weighted pair of a vacancy's head bounds its talent: from below by the best phrase's
            # share of it, from above by it or by the most a sentence could add.
            top = self._best_pair(weighted.max(axis=0), allowed)
            components["talent"] = TALENT_BEST_SHARE * top
            floor = _kth_largest(_final_score(components, scoring.weights), k)
            components["talent"] = np.minimum(np.maximum(top, sentence_bound) * (1.0 + 1e-9), 1.0)
            heads = np.flatnonzero(_final_score(components, scoring.weights) >= floor)
        best = np.zeros((len(phrases), len(allowed)))
        best[:, heads] = _best_per_vacancy(weighted, self._head, allowed[heads], self._head_pair)

        survivors = np.flatnonzero(described)
        if prune:
            # Only vacancies in ``heads`` can reach the floor. Their scores without the sentences are lower
            # bounds (the k best of them at least the floor above), with every sentence a perfect match
            # upper bounds. Taken on fewer columns than the exact score, a mean may differ from it in its
            # last bit, which the margins cover.
            head_best = best[:, heads]
            part = {name: values[heads] for name, values in components.items()}
            part["talent"] = _talent_from_best(head_best) * (1.0 - 1e-9)
            floor = _kth_largest(_final_score(part, scoring.weights), k)
            upper_best = np.maximum(head_best, sentence_bound[heads])
            part["talent"] = np.minimum(_talent_from_best(upper_best) * (1.0 + 1e-9), 1.0)
            survivors = heads[described[heads] & (_final_score(part, scoring.weights) >= floor)]
        used = np.zeros(0, dtype=np.int64)
        description_similarity = np.zeros((len(phrases), 0))
        if query is not None and len(survivors):
            rows = _block_rows(self._description, allowed[survivors])
            used, columns = np.unique(self._description.columns[rows], return_inverse=True)
            description_similarity = np.asarray((query @ self._description.vectors[used].T).toarray())
            counts = self._description.counts[allowed[survivors]]
            sentences = np.maximum.reduceat(
                description_similarity[:, columns] * self._description.weights[rows],
                np.cumsum(counts) - counts,
                axis=1,
            )
            best[:, survivors] = np.maximum(best[:, survivors], sentences)
        components["talent"] = _talent_from_best(best)
        scores, before, success = scoring.scores(components)

        order = _ordered(scores, self._id_rank[allowed], k)
        if min_score is not None:
            order = order[scores[order] >= min_score]
        if candidate.max_travel_km is None:
            km = km.copy()
            km[order] = self._distances(candidate, allowed[order])
        ranked = _Ranked(components, km, scoring, scores, before, success)
        matches = []
        for position in order:
            index = int(allowed[position])
            vacancy = self.vacancies[index]
            counterparts = self._phrases[index]
            start = int(self._starts[index])
            rows = np.arange(start, start + len(counterparts))
            pair_similarity = np.empty((len(phrases), len(counterparts)))
            if len(phrases) and len(counterparts):
                sentence = self._in_description[rows]
                pair_similarity[:, ~sentence] = head_similarity[:, self._column[rows[~sentence]]]
                # A vacancy in the top k had its sentences compared: every one of them is among ``used``.
                pair_similarity[:, sentence] = description_similarity[
                    :, np.searchsorted(used, self._column[rows[sentence]])
                ]
            talents = _talents_matched(phrases, counterparts, pair_similarity, lexicon)
            matches.append(ranked.match(candidate, vacancy, talents, position))
        return matches


class _Ranked(NamedTuple):
    """One ranking's arrays, by position among the allowed rows, for explaining the pairs it returns."""

    components: dict[str, np.ndarray]
    km: np.ndarray
    scoring: _Scoring
    scores: np.ndarray
    before: np.ndarray
    success: np.ndarray | None

    def match(self, candidate: CandidateProfile, vacancy: VacancyProfile, talents: list, position: int) -> Match:
        explanation = _explanation(
            candidate,
            vacancy,
            talents,
            {name: float(values[position]) for name, values in self.components.items()},
            self.scoring,
            None if np.isnan(self.km[position]) else float(self.km[position]),
            float(self.before[position]),
            None if self.success is None else float(self.success[position]),
        )
        return Match(candidate.id, vacancy.id, float(self.scores[position]), explanation)


class _Block(NamedTuple):
    """Some of an index's phrase rows, each vacancy's still contiguous and in its own order."""

    counts: np.ndarray
    starts: np.ndarray
    # Per row: which of the block's distinct phrases (rows of ``vectors``) it is.
    columns: np.ndarray
    weights: np.ndarray
    vectors: sp.csr_matrix


def _block_rows(block: _Block, vacancies: np.ndarray) -> np.ndarray:
    """The block's rows of these vacancies, one run per vacancy in the order given."""
    counts = block.counts[vacancies]
    offsets = np.cumsum(counts) - counts
    return np.repeat(block.starts[vacancies] - offsets, counts) + np.arange(int(counts.sum()))


def _best_per_vacancy(
    weighted: np.ndarray, block: _Block, vacancies: np.ndarray, columns: np.ndarray | None = None
) -> np.ndarray:
    """``best[i, j]``: the largest ``weighted[i, columns[row]]`` over the block's rows of vacancy ``j``.

    Without ``columns``, the rows' weighted similarities are ``weighted[i, block.columns[row]]`` times the
    row's field weight. Zero for a vacancy without rows here: similarities are never negative, so a zero
    never beats the best the other block finds.
    """
    best = np.zeros((weighted.shape[0], len(vacancies)))
    present = np.flatnonzero(block.counts[vacancies] > 0)
    if weighted.shape[0] and len(present):
        rows = _block_rows(block, vacancies[present])
        counts = block.counts[vacancies[present]]
        if columns is None:
            values = weighted[:, block.columns[rows]] * block.weights[rows]
        else:
            values = weighted.take(columns[rows], axis=1)
        best[:, present] = np.maximum.reduceat(values, np.cumsum(counts) - counts, axis=1)
    return best


def _kth_largest(values: np.ndarray, k: int) -> float:
    return float(-np.partition(-values, k - 1)[k - 1])


_CANDIDATE_NUMBERS: Final = (
    "hours_min",
    "hours_max",
    "essential",
    "preferred",
    "preferred_count",
    "ladder",
    "lat",
    "lon",
    "max_travel",
    "consent_matching",
    "consent_share",
)


class CandidateIndex(_MaskableRows):
    """Candidates vectorised once, answering "the best candidates for this vacancy" in milliseconds.

    The mirror of :class:`VacancyIndex`, with a model that must already be fitted (usually the one the
    tenant's :class:`VacancyIndex` uses). The hard constraints are arrays over the candidates; the text
    similarity is one sparse product of the vacancy's phrases with the distinct candidate phrases. It ranks
    exactly as :func:`rank_candidates_for_vacancy` does, which is built on it.

    It holds candidates' own words for as long as it lives: it is a cache of the read model, dropped or
    rebuilt when a candidate is erased (see :mod:`services.matching.index`), never stored.
    """

    def __init__(self, candidates: Iterable[CandidateProfile], *, model: TextModel) -> None:
        model._require_fitted()
        self.model = model
        self.candidates: tuple[CandidateProfile, ...] = tuple(candidates)
        n = len(self.candidates)
        lexicon = model.lexicon
        self._phrases = [candidate_phrases(c, lexicon) for c in self.candidates]
        table = _PhraseTable()
        documents = [[table.add(p.tokens) for p in phrases] for phrases in self._phrases]
        self._counts = np.fromiter((len(d) for d in documents), dtype=np.int64, count=n)
        self._starts = np.cumsum(self._counts) - self._counts
        self._phrase_ids = np.fromiter((i for d in documents for i in d), dtype=np.int64, count=int(self._counts.sum()))
        self._phrase_matrix = model.transform_tokens(table.tokens)

        tenants = sorted({c.tenant for c in self.candidates})
        self._tenant_codes = {tenant: code for code, tenant in enumerate(tenants)}
        self._tenant = np.fromiter((self._tenant_codes[c.tenant] for c in self.candidates), np.int64, n)
        columns = np.array(
            [
                (
                    c.hours_min,
                    c.hours_max,
                    float(support_mask(c.essential_needs)),
                    float(support_mask(c.preferred_needs)),
                    float(len(c.preferred_needs)),
                    float(c.ladder_step),
                    math.nan if c.lat is None else c.lat,
                    math.nan if c.lon is None else c.lon,
                    math.nan if c.max_travel_km is None else c.max_travel_km,
                    float(c.consent_matching),
                    float(c.consent_share),
                )
                for c in self.candidates
            ],
            dtype=np.float64,
        ).reshape(n, len(_CANDIDATE_NUMBERS))

        def column(name: str) -> np.ndarray:
            return columns[:, _CANDIDATE_NUMBERS.index(name)]

        self._hours_min = column("hours_min")
        self._hours_max = column("hours_max")
        self._essential = column("essential").astype(np.int64)
        self._preferred = column("preferred").astype(np.int64)
        self._preferred_count = column("preferred_count")
        self._ladder = column("ladder").astype(np.int64)
        self._lat_rad = np.radians(column("lat"))
        self._lon_rad = np.radians(column("lon"))
        self._cos_lat = np.cos(self._lat_rad)
        self._max_travel = column("max_travel")
        self._consent_matching = column("consent_matching") > 0
        self._consent_share = column("consent_share") > 0
        self._id_rank = _id_ranks([c.id for c in self.candidates])
        self._mask_all_live()

    def _rows(self) -> list[CandidateProfile]:
        return self.candidates

    def _allowed_with_distances(
        self, vacancy: VacancyProfile, require_share_consent: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        tenant = self._tenant_codes.get(vacancy.tenant)
        if tenant is None or vacancy.status != "open" or vacancy.positions <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        offered = support_mask(vacancy.supports_offered)
        mask = self._live & (self._tenant == tenant) & self._consent_matching
        if require_share_consent:
            mask &= self._consent_share
        mask &= np.maximum(self._hours_min, vacancy.hours_min) <= np.minimum(self._hours_max, vacancy.hours_max)
        mask &= (self._essential & offered) == self._essential
        subset = np.flatnonzero(mask)
        if vacancy.lat is None or vacancy.lon is None:
            return subset, np.full(len(subset), np.nan)
        p2 = math.radians(vacancy.lat)
        km = _haversine(
            self._lat_rad[subset],
            self._lon_rad[subset],
            self._cos_lat[subset],
            p2,
            math.radians(vacancy.lon),
            math.cos(p2),
        )
        # NaN on either side compares False: an unknown distance or no limit is never too far.
        near = ~(km > self._max_travel[subset])
        return subset[near], km[near]

    def rank(
        self,
        vacancy: VacancyProfile,
        k: int | None = 10,
        *,
        weights: Mapping[str, float] | None = None,
        require_share_consent: bool = True,
        reranker: Reranker | None = None,
        min_score: float | None = None,
    ) -> list[Match]:
        """The ``k`` best allowed candidates (all if None), best first, equal scores by candidate id.

        ``require_share_consent`` for lists an employer sees; a candidate's own jobcoach needs only the
        matching consent. With ``min_score`` only those scoring at least that much.
        """
        scoring = _Scoring.of(weights, reranker)
        if k is not None and k <= 0:
            return []
        allowed, km = self._allowed_with_distances(vacancy, require_share_consent)
        if len(allowed) == 0:
            return []

        lexicon = self.model.lexicon
        counterparts = vacancy_phrases(vacancy, lexicon)
        counts = self._counts[allowed]
        width = int(counts.max()) if len(counts) else 0
        # best[j, i]: the best field-weighted similarity of allowed candidate i's j-th phrase, zero-padded;
        # padding never wins a max (similarities are >= 0) and adds nothing to a sum.
        best = np.zeros((width, len(allowed)))
        similarity = np.zeros((0, len(counterparts)))
        used = np.zeros(0, dtype=np.int64)
        if width and counterparts:
            offsets = np.cumsum(counts) - counts
            rows = np.repeat(self._starts[allowed] - offsets, counts) + np.arange(int(counts.sum()))
            phrase_ids = self._phrase_ids[rows]
            used, inverse = np.unique(phrase_ids, return_inverse=True)
            vacancy_matrix = self.model.transform_tokens([p.tokens for p in counterparts])
            similarity = np.asarray((self._phrase_matrix[used] @ vacancy_matrix.T).toarray())
            field_weights = np.array([FIELD_WEIGHTS[p.source] for p in counterparts])
            best_per_phrase = (similarity * field_weights).max(axis=1)
            position_in_candidate = np.arange(len(rows)) - np.repeat(offsets, counts)
            best[position_in_candidate, np.repeat(np.arange(len(allowed)), counts)] = best_per_phrase[inverse]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = best.sum(axis=0) / np.where(counts > 0, counts, 1)
        talent = np.where(
            counts > 0,
            np.clip(TALENT_BEST_SHARE * best.max(axis=0, initial=0.0) + (1.0 - TALENT_BEST_SHARE) * mean, 0.0, 1.0),
            0.0,
        )
        preferred_count = self._preferred_count[allowed]
        preferred_met = np.bitwise_count(self._preferred[allowed] & support_mask(vacancy.supports_offered))
        components = {
            "talent": talent,
            "supports": np.where(
                preferred_count > 0, preferred_met / np.where(preferred_count > 0, preferred_count, 1), 1.0
            ),
            "hours": _hours_fits(
                self._hours_min[allowed], self._hours_max[allowed], vacancy.hours_min, vacancy.hours_max
            ),
            "ladder": _ladder_fits(self._ladder[allowed], np.full(len(allowed), vacancy.rung)),
            "distance": _distance_fits(km, self._max_travel[allowed]),
        }
        scores, before, success = scoring.scores(components)

        order = _ordered(scores, self._id_rank[allowed], k)
        if min_score is not None:
            order = order[scores[order] >= min_score]
        row_of = {int(phrase_id): row for row, phrase_id in enumerate(used)}
        ranked = _Ranked(components, km, scoring, scores, before, success)
        matches = []
        for position in order:
            index = int(allowed[position])
            candidate = self.candidates[index]
            phrases = self._phrases[index]
            start = int(self._starts[index])
            mine = [row_of[int(i)] for i in self._phrase_ids[start : start + len(phrases)]] if len(used) else []
            pair_similarity = similarity[mine] if mine else np.zeros((len(phrases), len(counterparts)))
            talents = _talents_matched(phrases, counterparts, pair_similarity, lexicon)
            matches.append(ranked.match(candidate, vacancy, talents, position))
        return matches


def merge_ranked(groups: Iterable[Sequence[Match]], k: int | None, *, by: str) -> list[Match]:
    """Several ranked lists (disjoint) as one, best first, equal scores by ``by`` ("vacancy" or "candidate")."""
    key = (lambda m: (-m.score, m.vacancy_id)) if by == "vacancy" else (lambda m: (-m.score, m.candidate_id))
    merged = sorted((match for group in groups for match in group), key=key)
    return merged if k is None else merged[:k]


# --------------------------------------------------------------------------------------------------------
# Entry points


def rank_vacancies_for_candidate(
    candidate: CandidateProfile,
    vacancies: Iterable[VacancyProfile],
    *,
    top_k: int | None = 10,
    weights: Mapping[str, float] | None = None,
    model: TextModel | None = None,
    reranker: Reranker | None = None,
) -> list[Match]:
    """The best vacancies for one candidate, for their jobcoach; hard constraints are applied first.

    Without ``model`` one is fitted on these vacancies and this candidate. For repeated queries over the
    same vacancies build a :class:`VacancyIndex` once and call :meth:`VacancyIndex.top_k`.
    """
    resolve_weights(weights)
    if not candidate.consent_matching or (top_k is not None and top_k <= 0):
        return []
    index = VacancyIndex(vacancies, model=model, extra_documents=[candidate_text(candidate)])
    return index.top_k(candidate, top_k, weights=weights, reranker=reranker)


def rank_candidates_for_vacancy(
    vacancy: VacancyProfile,
    candidates: Iterable[CandidateProfile],
    *,
    top_k: int | None = 10,
    weights: Mapping[str, float] | None = None,
    model: TextModel | None = None,
    require_share_consent: bool = True,
    reranker: Reranker | None = None,
) -> list[Match]:
    """The best candidates for one vacancy; by default only those who agreed to be shown to employers.

    Without ``model`` one is fitted on this vacancy and these candidates. For repeated queries over the
    same candidates build a :class:`CandidateIndex` once and call :meth:`CandidateIndex.rank`.
    """
    resolve_weights(weights)
    candidates = list(candidates)
    if (top_k is not None and top_k <= 0) or not candidates:
        return []
    if model is None:
        model = fit_model([vacancy], candidates)
    index = CandidateIndex(candidates, model=model)
    return index.rank(vacancy, top_k, weights=weights, require_share_consent=require_share_consent, reranker=reranker)


def proposals_for_vacancy(
    vacancy: VacancyProfile,
    candidates: Iterable[CandidateProfile],
    threshold: float = DEFAULT_PROPOSAL_THRESHOLD,
    weights: Mapping[str, float] | None = None,
    model: TextModel | None = None,
    reranker: Reranker | None = None,
) -> list[Match]:
    """Every candidate scoring at least ``threshold``, to propose to that candidate's own jobcoach.

    Only the matching consent is needed here: the proposal goes to the jobcoach, not to the employer.
    """
    ranked = rank_candidates_for_vacancy(
        vacancy,
        candidates,
        top_k=None,
        weights=weights,
        model=model,
        require_share_consent=False,
        reranker=reranker,
    )
    return [match for match in ranked if match.score >= threshold]


# --------------------------------------------------------------------------------------------------------
# Fingerprints
#
# A fingerprint is a SHA-256 of a profile's normalised inputs, never of its id: equal inputs give equal
# fingerprints whoever they belong to, and nothing in it can be read back. The ranking log stores the
# fingerprint of everything that was scored; a proposal stores the fingerprint of what is *material* for
# it, so that the same pair is proposed again only when something that matters changed.
#
# Material for a vacancy: its title, tasks, skills, supports offered, hours, kind and place. Not its
# description: it weighs least in the score, and a reworded sentence or a fixed typo must not send every
# jobcoach the same alert again (the new wording still counts in every ranking, and a candidate who now
# passes the threshold for the first time is still proposed). Not its number of positions or status as
# such: a vacancy that closes and reopens is handled by the proposal store, which forgets the pairs of a
# vacancy that closes so that they are proposed afresh when it opens again.
#
# Material for a candidate: everything that is scored or filtered on for their jobcoach: talents,
# preferences, support needs, hours, ladder step, place, travel distance and the matching consent. Not
# the consent to be shown to employers, which changes nothing for the jobcoach.


def _phrase_set(texts: Iterable[str]) -> list[str]:
    return sorted({" ".join(phrase_tokens(text)) for text in _items(texts)} - {""})


def _place(lat: float | None, lon: float | None) -> list[float] | None:
    return None if lat is None or lon is None else [round(lat, 5), round(lon, 5)]


def _digest(parts: Mapping[str, Any]) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def candidate_fingerprint(candidate: CandidateProfile, *, material: bool = False) -> str:
    """SHA-256 of the candidate's scored inputs (``material``: of what a proposal depends on)."""
    parts: dict[str, Any] = {
        "kind": "candidate",
        "talents": _phrase_set(candidate.talents),
        "preferences": _phrase_set(candidate.preferences),
        "essential": sorted(candidate.essential_needs),
        "preferred": sorted(candidate.preferred_needs),
        "hours": [candidate.hours_min, candidate.hours_max],
        "ladder": candidate.ladder_step,
        "place": _place(candidate.lat, candidate.lon),
        "max_travel_km": candidate.max_travel_km,
        "consent_matching": candidate.consent_matching,
    }
    if not material:
        parts["consent_share"] = candidate.consent_share
    return _digest(parts)


def vacancy_fingerprint(vacancy: VacancyProfile, *, material: bool = False) -> str:
    """SHA-256 of the vacancy's scored inputs (``material``: of what a proposal depends on)."""
    parts: dict[str, Any] = {
        "kind": "vacancy",
        "title": " ".join(phrase_tokens(vacancy.title)),
        "tasks": _phrase_set(vacancy.tasks),
        "skills": _phrase_set(vacancy.skills),
        "supports": sorted(vacancy.supports_offered),
        "hours": [vacancy.hours_min, vacancy.hours_max],
        "vacancy_kind": vacancy.kind,
        "place": _place(vacancy.lat, vacancy.lon),
    }
    if not material:
        parts["description"] = [" ".join(phrase_tokens(s)) for s in _sentences(vacancy.description)]
        parts["open"] = vacancy.status == "open" and vacancy.positions > 0
    return _digest(parts)


def pair_fingerprint(candidate: CandidateProfile, vacancy: VacancyProfile) -> str:
    """What a proposal of this pair was based on; a new value means something material changed."""
    both = vacancy_fingerprint(vacancy, material=True) + candidate_fingerprint(candidate, material=True)
    return hashlib.sha256(both.encode()).hexdigest()
