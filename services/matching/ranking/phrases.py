"""Profiles as phrases: talents and preferences, skills, tasks, title and description sentences, each
normalised, expanded with the concept layer and tagged with the field it came from."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Final, NamedTuple

from services.matching.ranking.concepts import Lexicon
from services.matching.ranking.normalisation import (
    MAX_DESCRIPTION_CHARS,
    MAX_DESCRIPTION_SENTENCES,
    MAX_PHRASE_CHARS,
    MAX_PHRASES_PER_FIELD,
    default_lexicon,
    phrase_tokens,
)
from services.matching.ranking.profiles import CandidateProfile, VacancyProfile
from services.matching.ranking.vocabulary import support_mask

# Multiplies a vacancy phrase's similarity by the field it comes from: what the work is (skills, tasks)
# says more about fit than what it is called (title), and far more than the surrounding prose.
FIELD_WEIGHTS: Final[Mapping[str, float]] = MappingProxyType(
    {"skill": 1.0, "task": 1.0, "title": 0.7, "description": 0.4}
)


SENTENCE_END = re.compile(r"[.!?;:]+(?:\s+|$)|[\r\n\u2022]+")
# "planten verzorgen, groenonderhoud" is two skills in one entry; a comma without a space ("2,5 uur") is not.
LIST_SEPARATOR = re.compile(r"[;\r\n\u2022]+|,\s+")


class Phrase(NamedTuple):
    text: str
    source: str
    tokens: tuple[str, ...]
    # The concepts the phrase named, whose labels are among its tokens.
    concepts: tuple[str, ...] = ()


def display_text(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_PHRASE_CHARS else text[: MAX_PHRASE_CHARS - 1] + "\u2026"


Tokenised = tuple[tuple[str, ...], tuple[str, ...]]

# Vacancy texts repeat across vacancies and across calls, so their phrases are cached; candidate texts are
# not, so that nothing a candidate wrote outlives the request that used it.
_vacancy_tokens = lru_cache(maxsize=1 << 16)(phrase_tokens)


@lru_cache(maxsize=1 << 16)
def _vacancy_phrase(text: str, source: str, lexicon: Lexicon) -> Phrase | None:
    tokens, concepts = lexicon.expand(_vacancy_tokens(text))
    return Phrase(text.strip(), source, tokens, concepts) if tokens else None


def _candidate_phrase(text: str, source: str, lexicon: Lexicon) -> Phrase | None:
    tokens, concepts = lexicon.expand(phrase_tokens(text))
    return Phrase(text.strip(), source, tokens, concepts) if tokens else None


@lru_cache(maxsize=1 << 15)
def description_sentences(description: str) -> tuple[str, ...]:
    parts = SENTENCE_END.split(description[:MAX_DESCRIPTION_CHARS])
    return tuple(part for part in parts if part.strip())[:MAX_DESCRIPTION_SENTENCES]


def split_items(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        if "," in text or ";" in text or "\n" in text or "\u2022" in text:
            yield from LIST_SEPARATOR.split(text)
        else:
            yield text


def _collect(
    texts: Iterable[str],
    source: str,
    make: Callable[[str, str, Lexicon], Phrase | None],
    lexicon: Lexicon,
    out: list[Phrase],
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


def candidate_phrases(candidate: CandidateProfile, lexicon: Lexicon | None = None) -> list[Phrase]:
    """Talents, then preferences, split into single items, each once; items without words are dropped."""
    lexicon = lexicon or default_lexicon()
    phrases: list[Phrase] = []
    seen: set[tuple[str, ...]] = set()
    _collect(split_items(candidate.talents), "talent", _candidate_phrase, lexicon, phrases, seen)
    _collect(split_items(candidate.preferences), "preference", _candidate_phrase, lexicon, phrases, seen)
    return phrases


def vacancy_phrases(vacancy: VacancyProfile, lexicon: Lexicon | None = None) -> list[Phrase]:
    """Skills, tasks, the title and the description's sentences, each tagged with its field."""
    lexicon = lexicon or default_lexicon()
    phrases: list[Phrase] = []
    # De-duplicated per field only: a phrase that is both a skill and a task appears under both, and the
    # explanation then shows the field with the higher weight.
    _collect(split_items(vacancy.skills), "skill", _vacancy_phrase, lexicon, phrases, set())
    _collect(split_items(vacancy.tasks), "task", _vacancy_phrase, lexicon, phrases, set())
    _collect((vacancy.title,), "title", _vacancy_phrase, lexicon, phrases, set())
    _collect(description_sentences(vacancy.description), "description", _vacancy_phrase, lexicon, phrases, set())
    return phrases


def candidate_text(candidate: CandidateProfile, lexicon: Lexicon | None = None) -> str:
    """The candidate as one (normalised, concept-expanded) document, for fitting a :class:`TextModel`."""
    return " ".join(" ".join(p.tokens) for p in candidate_phrases(candidate, lexicon))


def vacancy_text(vacancy: VacancyProfile, lexicon: Lexicon | None = None) -> str:
    """The vacancy as one (normalised, concept-expanded) document, for fitting a :class:`TextModel`."""
    return " ".join(" ".join(p.tokens) for p in vacancy_phrases(vacancy, lexicon))


VACANCY_NUMBERS: Final = ("open", "positions", "hours_min", "hours_max", "supports", "rung", "lat", "lon")


class VacancyRecord(NamedTuple):
    phrases: tuple[Phrase, ...]
    phrase_weights: tuple[float, ...]
    numbers: tuple[float, ...]


# Vacancies are public and are ranked again and again; what an index needs of each is computed once.
@lru_cache(maxsize=1 << 15)
def vacancy_record(vacancy: VacancyProfile, lexicon: Lexicon) -> VacancyRecord:
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
    return VacancyRecord(phrases, weights, numbers)
