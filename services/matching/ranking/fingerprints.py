"""Fingerprints of profiles: what the ranking log names a subject by, and what a proposal was based on."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from services.matching.ranking.normalisation import phrase_tokens
from services.matching.ranking.phrases import description_sentences, split_items
from services.matching.ranking.profiles import CandidateProfile, VacancyProfile

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
    return sorted({" ".join(phrase_tokens(text)) for text in split_items(texts)} - {""})


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
        parts["description"] = [" ".join(phrase_tokens(s)) for s in description_sentences(vacancy.description)]
        parts["open"] = vacancy.status == "open" and vacancy.positions > 0
    return _digest(parts)


def pair_fingerprint(candidate: CandidateProfile, vacancy: VacancyProfile) -> str:
    """What a proposal of this pair was based on; a new value means something material changed."""
    both = vacancy_fingerprint(vacancy, material=True) + candidate_fingerprint(candidate, material=True)
    return hashlib.sha256(both.encode()).hexdigest()
