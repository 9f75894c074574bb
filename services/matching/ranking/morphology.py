"""Dutch and English morphology for the text model: Snowball stems and Dutch compound parts.

A word's *terms* are what the text model's word block counts instead of the bare word: its Dutch and
English Snowball stems (``schoonmaken`` and ``schoonmaak`` both become ``schoonmak``; ``cleaning`` and
``cleaners`` become ``clean`` and ``cleaner``), and the stems of the parts of a Dutch compound
(``magazijnmedewerker`` also counts as ``magazijn``; ``groenvoorziening`` as ``groen`` and
``voorziening``). Texts are not labelled with their language and candidates mix the two, so both stems
are taken; where the stemmers agree that is one term.

Compounds are split against a dictionary of words known to be words: the vocabulary the tenant's model
was fitted on, the concept list's words and the generic job words. A word is split only into parts that
are all in it (with a linking ``s`` allowed after a part, as in ``arbeidsplaats``), preferring the
fewest parts, so ``schoonmaakwerkzaamheden`` becomes ``schoonmaak`` and ``werkzaamheden`` when both are
known. Parts are added to the word's terms, never replace them: an exact word still counts for more
than a shared part. A part that is a stop word or a generic job word (``medewerker``) adds no term.

Stemming uses PyStemmer, the C Snowball stemmers. Its stemmer objects keep state between calls, so each
thread has its own. This module does no I/O.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Final

import Stemmer

from services.matching.ranking.normalisation import GENERIC_JOB_WORDS, STOP_WORDS

LANGUAGES: Final = ("dutch", "english")
# Parts shorter than this are mostly prefixes and endings ("ver", "aan", "ing"), not words.
MIN_PART_CHARS: Final = 4
# Longer compounds than this many parts are rare, and splitting further finds fragments, not words.
MAX_PARTS: Final = 4
LINKING_LETTERS: Final = ("s",)

_local = threading.local()


def _stemmers() -> tuple[Stemmer.Stemmer, ...]:
    stemmers: tuple[Stemmer.Stemmer, ...] | None = getattr(_local, "stemmers", None)
    if stemmers is None:
        stemmers = _local.stemmers = tuple(Stemmer.Stemmer(language) for language in LANGUAGES)
    return stemmers


def stems(word: str) -> tuple[str, ...]:
    """The word's Dutch and English Snowball stems, each once, Dutch first."""
    found: list[str] = []
    for stemmer in _stemmers():
        stem = stemmer.stemWord(word)
        if stem and stem not in found:
            found.append(stem)
    return tuple(found)


class CompoundSplitter:
    """Splits words into parts that are all in a dictionary of known words."""

    def __init__(self, dictionary: Iterable[str]) -> None:
        self.dictionary: frozenset[str] = frozenset(
            word for word in dictionary if len(word) >= MIN_PART_CHARS and word.isalpha()
        )

    def split(self, word: str) -> tuple[str, ...]:
        """The parts of ``word``, fewest first and then longest first part; () if it cannot be split."""
        n = len(word)
        if n < 2 * MIN_PART_CHARS or not word.isalpha():
            return ()
        dictionary = self.dictionary
        # best[i]: the fewest known parts that spell word[i:], or None.
        best: list[tuple[str, ...] | None] = [None] * (n + 1)
        best[n] = ()
        for start in range(n - MIN_PART_CHARS, -1, -1):
            chosen: tuple[str, ...] | None = None
            for end in range(n, start + MIN_PART_CHARS - 1, -1):
                part = word[start:end]
                # The whole word is not a split of itself.
                if (start == 0 and end == n) or part not in dictionary:
                    continue
                for rest_start in (end, *(end + len(link) for link in LINKING_LETTERS if word.startswith(link, end))):
                    rest = best[rest_start] if rest_start <= n else None
                    if rest is None or (rest_start > end and rest_start == n):
                        continue
                    candidate = (part, *rest)
                    if len(candidate) <= MAX_PARTS and (chosen is None or len(candidate) < len(chosen)):
                        chosen = candidate
            best[start] = chosen
        parts = best[0]
        return parts if parts is not None and len(parts) > 1 else ()


def word_terms(word: str, splitter: CompoundSplitter | None = None) -> tuple[str, ...]:
    """What the text model's word block counts for ``word``: its stems, then its compound parts' stems."""
    terms = list(stems(word))
    if splitter is not None:
        for part in splitter.split(word):
            if part in STOP_WORDS or part in GENERIC_JOB_WORDS:
                continue
            terms.extend(stem for stem in stems(part) if stem not in terms)
    return tuple(terms)
