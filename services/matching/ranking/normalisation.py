"""Text as the text model reads it: normalised, cut into words, stop words dropped, long input cut short."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, Final

from services.matching.ranking.concepts import Lexicon, build_lexicon

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
GENERIC_JOB_WORDS: Final[frozenset[str]] = frozenset(_GENERIC_JOB_WORDS.split())
STOP_WORDS: Final[frozenset[str]] = frozenset(f"{_DUTCH_STOP_WORDS} {_ENGLISH_STOP_WORDS}".split()) | GENERIC_JOB_WORDS


# Text normalisation


_NON_WORD = re.compile(r"[\W_]+")
# After normalisation a word is a run of letters and digits, so this splits exactly where str.split does.
WORD_PATTERN: Final = r"(?u)\b\w+\b"


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


def lexicon_with(loaded: Iterable[Any]) -> Lexicon:
    """The shipped concepts plus loaded ESCO and CompetentNL concepts (:class:`~.concepts.ConceptLabels`)."""
    return build_lexicon(phrase_tokens, loaded)
