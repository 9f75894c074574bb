"""From components to a score and its explanation: the weights, the reranker, and the vectorised fits the
indexes compute the components with."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol

import numpy as np

from services.matching.ranking.concepts import Lexicon
from services.matching.ranking.phrases import FIELD_WEIGHTS, Phrase, display_text
from services.matching.ranking.profiles import CandidateProfile, Match, VacancyProfile
from services.matching.ranking.rules import (
    EARTH_RADIUS_KM,
    hours_overlap,
    ladder_fit,
    resolve_weights,
)
from services.matching.ranking.vocabulary import TOP_LADDER_STEP

# Changes whenever a change here can move a score, so a stored proposal says which ranking produced it.
# 2: phrases are expanded with the concept layer before they are vectorised.
# 3: relevance first (the soft fit scales the talent score instead of being added to it), and the
#    candidate's phrases add up to the talent score with saturation instead of the best phrase leading.
# 4: a vacancy phrase that many documents share weighs less (TextModel.phrase_weight).
# 5: the word block counts Dutch and English Snowball stems and Dutch compound parts (.morphology).
# 6: relevance fuses the phrase channel with Okapi BM25 over the same terms (fused_relevance).
# 7: no weight in the text score comes from how many of the region's texts share a word or phrase: BM25
#    with a fixed idf and average length over all the candidate's terms, and no phrase df weight.
# 8: the shipped concept list covers twelve fields of work in job titles and everyday wordings, so more
#    phrases are expanded with concept labels (and loaded CompetentNL concepts expand them too).
RANKING_VERSION: Final = "fused-8"


EXPLAIN_MIN_SIMILARITY: Final = 0.25

# Relevance first: score = talent * (1 - a + a * soft), where soft is the weighted mean of the other
# components (their weights weigh them against each other) and a, the soft share, is half the soft
# components' share of all the weights, at most SOFT_SHARE_MAX. With the default weights a = 0.25: the
# best soft fit adds at most a third to a vacancy's score (1 / 0.75), so a vacancy whose talent score is
# below 0.75 times another's never passes it, however well the rest fits. A tenant that raises the soft
# weights gets more say for them, never more than SOFT_SHARE_MAX; a tenant that sets them to zero ranks
# by relevance alone; a tenant that sets the talent weight to zero ranks by the soft fit alone.
SOFT_SHARE_MAX: Final = 0.4
# A candidate with no usable talent text has no relevance to rank by: such pairs are ranked by the soft
# fit, scaled so that they stay below the default proposal threshold (and are labelled so).
SOFT_ONLY_SCALE: Final = 0.45
# Evidence adds up with saturation, as term frequency does in BM25: E = the sum of the candidate phrases'
# best field-weighted similarities, saturated as E / (E + k); the talent score is that over the same for
# a candidate all of whose phrases matched perfectly, so it stays in [0, 1] whatever the list's length.
TALENT_SATURATION: Final = 0.5
# Candidate phrases counted at most: past this many, a longer list no longer lowers the ceiling.
TALENT_MAX_PHRASES: Final = 12
# Relevance fuses two channels linearly: the phrase-to-phrase similarity above (character n-grams, terms
# and concepts) and Okapi BM25 of all the candidate's terms against the whole vacancy, over the most the
# query could score, saturated as x / (x + LEXICAL_SATURATION) and scaled back to 1 at 1. Both weights
# were fitted on a training half of the quality benchmark's unit groups and reported on the other half
# (bench/fusion_fit.py, bench/results/2026-11-30T211400-fusion-fit.json). The share was searched up to
# 0.7 and no further: the phrase channel carries the concept layer (Dutch and English synonyms, which an
# English benchmark cannot reward) and the explanation's talent pairs, so it keeps at least 0.3.
LEXICAL_SHARE: Final = 0.7
LEXICAL_SATURATION: Final = 0.2


class Reranker(Protocol):
    """Adjusts soft scores from their components (see :mod:`services.matching.ranking.reranker`)."""

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


@dataclass(frozen=True)
class Ranking:
    """How one ranking scores and filters, as one value: built once per request or event from the tenant's
    settings and its reranker, and handed down unchanged to the indexes and the ranking log."""

    # The tenant's score weights over the defaults; None for the defaults.
    weights: Mapping[str, float] | None = None
    reranker: Reranker | None = None
    # Only matches scoring at least this much (a proposal's threshold); None keeps every allowed one.
    min_score: float | None = None
    # A list an employer sees needs the candidate's consent to be shown; a jobcoach's own list does not.
    require_share_consent: bool = True

    @property
    def version(self) -> str:
        return ranking_version(self.reranker)

    @property
    def weights_version(self) -> str:
        return weights_version(self.weights)


DEFAULT_RANKING: Final = Ranking()


class Scoring(NamedTuple):
    weights: dict[str, float]
    weights_version: str
    ranking_version: str
    reranker: Reranker | None

    @classmethod
    def of(cls, ranking: Ranking) -> Scoring:
        resolved = resolve_weights(ranking.weights)
        return cls(resolved, weights_version(resolved), ranking.version, ranking.reranker)

    def scores(
        self, components: Mapping[str, np.ndarray], text: Any = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(final scores, scores before the reranker, predicted success or None); ``text`` is False for
        the pairs whose candidate has no usable talent text (see :func:`final_score`)."""
        base = np.asarray(final_score(components, self.weights, text), dtype=np.float64)
        if self.reranker is None:
            return base, base, None
        adjusted, success = self.reranker.adjust(components, base)
        return np.round(np.clip(np.asarray(adjusted, dtype=np.float64), 0.0, 1.0), 4), base, np.asarray(success)


def _saturated(evidence: Any) -> Any:
    return evidence / (evidence + TALENT_SATURATION)


def talent_from_best(best: np.ndarray, counts: Any = None) -> np.ndarray:
    """``best[i, j]``: best field-weighted similarity of candidate phrase ``i`` within pair ``j``.

    ``counts`` (per pair, or one number) says how many of the rows are the candidate's phrases; the rest is
    zero padding. Without it every row is a phrase.
    """
    if best.shape[0] == 0:
        return np.zeros(best.shape[1])
    n = best.shape[0] if counts is None else counts
    ceiling = _saturated(np.minimum(np.maximum(n, 1), TALENT_MAX_PHRASES).astype(np.float64))
    clipped = np.clip(best, 0.0, 1.0)
    if best.shape[0] > TALENT_MAX_PHRASES:
        clipped = -np.partition(-clipped, TALENT_MAX_PHRASES - 1, axis=0)[:TALENT_MAX_PHRASES]
    return np.clip(_saturated(clipped.sum(axis=0)) / ceiling, 0.0, 1.0)


def fused_relevance(text: Any, lexical: Any) -> Any:
    """Relevance from the phrase channel's talent score and the BM25 channel's share of its ceiling."""
    lexical = np.clip(lexical, 0.0, 1.0)
    saturated = lexical / (lexical + LEXICAL_SATURATION) * (1.0 + LEXICAL_SATURATION)
    return np.clip((1.0 - LEXICAL_SHARE) * text + LEXICAL_SHARE * saturated, 0.0, 1.0)


def lexical_fits(scores: np.ndarray, ceiling: float) -> np.ndarray:
    """BM25 scores as shares of the most the query could score (zero for a query without known terms)."""
    return np.clip(scores / ceiling, 0.0, 1.0) if ceiling > 0 else np.zeros(len(scores))


def talent_bounds(top: np.ndarray, n_phrases: int) -> tuple[np.ndarray, np.ndarray]:
    """Bounds on the talent score from ``top``, the best any one candidate phrase reaches in a pair:
    from below, that phrase alone; from above, every phrase as good as it."""
    n = min(max(n_phrases, 1), TALENT_MAX_PHRASES)
    ceiling = _saturated(float(n))
    top = np.clip(top, 0.0, 1.0)
    return np.clip(_saturated(top) / ceiling, 0.0, 1.0), np.clip(_saturated(n * top) / ceiling, 0.0, 1.0)


def _number_out(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 4)


def talents_matched(
    phrases: Sequence[Phrase],
    counterparts: Sequence[Phrase],
    similarity: np.ndarray,
    lexicon: Lexicon,
    *,
    field_weights: np.ndarray | None = None,
    shown: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Per candidate phrase its best vacancy phrase (by field-weighted similarity), if similar enough.

    Explaining one candidate's phrases against many vacancies, the caller may pass what stays the same or
    is already known: the counterparts' ``field_weights`` and the phrases' display texts (``shown``).
    """
    if not phrases or not counterparts:
        return []
    weights = np.array([FIELD_WEIGHTS[p.source] for p in counterparts]) if field_weights is None else field_weights
    columns = np.argmax(similarity * weights, axis=1)
    values = similarity[np.arange(len(phrases)), columns].tolist()
    texts = [display_text(p.text) for p in phrases] if shown is None else shown
    pairs = []
    for phrase, text, best, value in zip(phrases, texts, columns.tolist(), values, strict=True):
        if value >= EXPLAIN_MIN_SIMILARITY:
            counterpart = counterparts[best]
            pair: dict[str, Any] = {
                "talent": text,
                "source": phrase.source,
                "matched": display_text(counterpart.text),
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


def explanation_of(
    candidate: CandidateProfile,
    vacancy: VacancyProfile,
    talents_matched: list[dict[str, Any]],
    components: Mapping[str, float],
    scoring: Scoring,
    km: float | None,
    before_rerank: float | None = None,
    success: float | None = None,
    text: bool = True,
    channels: Mapping[str, float] | None = None,
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
        "composition": composition_of(components, scoring.weights, text, channels),
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


def soft_share(weights: Mapping[str, float]) -> float:
    """How much the soft fit can move a score: ``a`` in ``talent * (1 - a + a * soft)``."""
    total = sum(weights.values())
    soft_total = total - weights["talent"]
    return min(SOFT_SHARE_MAX, 0.5 * soft_total / total) if total > 0 else 0.0


def soft_fit(components: Mapping[str, Any], weights: Mapping[str, float]) -> Any:
    """Weighted mean of the components other than talent (1.0 when they all weigh zero)."""
    soft_total = sum(weight for name, weight in weights.items() if name != "talent")
    if soft_total <= 0:
        return 1.0
    return sum(weights[name] * components[name] for name in weights if name != "talent") / soft_total


def final_score(components: Mapping[str, Any], weights: Mapping[str, float], text: Any = True) -> Any:
    """The score, rounded; works on floats and on numpy arrays alike.

    Relevance first: ``talent * (1 - a + a * soft)`` (see :data:`SOFT_SHARE_MAX`). Where ``text`` is False
    (a candidate without usable talent text) there is no relevance to gate with, and the score is the soft
    fit times :data:`SOFT_ONLY_SCALE`. A talent weight of zero ranks by the soft fit alone.
    """
    soft = soft_fit(components, weights)
    if weights["talent"] <= 0:
        score = soft + 0.0 * components["talent"]
    else:
        share = soft_share(weights)
        score = np.where(text, components["talent"] * (1.0 - share + share * soft), SOFT_ONLY_SCALE * soft)
    return np.round(np.clip(score, 0.0, 1.0), 4)


class TalentScores:
    """:func:`final_score` of pairs with text as a function of their talent alone, the other components
    fixed: the pruning bounds score the same vacancies with several talents, and the soft fit they share
    is computed once. Equal to :func:`final_score` to the last bit."""

    def __init__(self, components: Mapping[str, np.ndarray], weights: Mapping[str, float], count: int) -> None:
        soft = np.broadcast_to(np.asarray(soft_fit(components, weights), dtype=np.float64), (count,))
        self._soft_only = weights["talent"] <= 0
        share = soft_share(weights)
        self._by_talent = soft if self._soft_only else 1.0 - share + share * soft

    def __call__(self, talent: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
        """Scores for these talents, of the pairs at ``positions`` (all pairs when None)."""
        factor = self._by_talent if positions is None else self._by_talent[positions]
        score = factor + 0.0 * talent if self._soft_only else talent * factor
        return np.round(np.clip(score, 0.0, 1.0), 4)


def composition_of(
    components: Mapping[str, float],
    weights: Mapping[str, float],
    text: bool,
    channels: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """How a pair's score was composed, for its explanation."""
    soft = round(float(soft_fit(components, weights)), 4)
    if weights["talent"] <= 0:
        return {"method": "soft_only", "reason": "talent_weight_zero", "soft": soft, "formula": "soft"}
    if not text:
        return {
            "method": "soft_only",
            "reason": "no_talent_text",
            "soft": soft,
            "formula": f"{SOFT_ONLY_SCALE} * soft",
        }
    share = soft_share(weights)
    composition: dict[str, Any] = {
        "method": "relevance_gated",
        "relevance": round(float(components["talent"]), 4),
        "soft": soft,
        "soft_share": round(share, 4),
        "formula": "relevance * (1 - soft_share + soft_share * soft)",
    }
    if channels is not None:
        # Which channel the relevance came from: the phrases that met, and the words the texts share.
        composition["relevance_channels"] = {
            "phrases": round(float(channels["phrases"]), 4),
            "bm25": round(float(channels["bm25"]), 4),
            "bm25_share": LEXICAL_SHARE,
            "formula": f"(1 - bm25_share) * phrases + bm25_share * bm25 / (bm25 + {LEXICAL_SATURATION}) * "
            f"{1 + LEXICAL_SATURATION}",
        }
    return composition


# Ladder fit by (rung - step), for a step below the top; index with diff + offset.
_LADDER_OFFSET: Final = TOP_LADDER_STEP
_LADDER_BY_DIFF: Final = np.array([ladder_fit(1, 1 + diff) for diff in range(-TOP_LADDER_STEP, TOP_LADDER_STEP + 1)])


def ladder_fits(steps: np.ndarray, rungs: np.ndarray) -> np.ndarray:
    diff = rungs - steps
    diff = np.where((diff == 0) & (steps == TOP_LADDER_STEP), 1, diff)
    return _LADDER_BY_DIFF[diff + _LADDER_OFFSET]


def hours_fits(low_a: np.ndarray, high_a: np.ndarray, low_b: Any, high_b: Any) -> np.ndarray:
    overlap = np.minimum(high_a, high_b) - np.maximum(low_a, low_b)
    narrower = np.minimum(high_a - low_a, high_b - low_b)
    safe = np.where(narrower > 0, narrower, 1.0)
    return np.clip(np.where(narrower > 0, overlap / safe, 1.0), 0.0, 1.0)


def distance_fits(km: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Vectorised :func:`distance_fit`; NaN stands for an unknown distance or no travel limit."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sloped = np.clip(1.0 - km / np.where(limit > 0, limit, 1.0), 0.0, 1.0)
    fit = np.where(limit <= 0, np.where(km <= 0, 1.0, 0.0), sloped)
    return np.where(np.isnan(km) | np.isnan(limit), 1.0, fit)


def haversine_arrays(lat1_rad: Any, lon1_rad: Any, cos_lat1: Any, lat2_rad: Any, lon2_rad: Any, cos_lat2: Any) -> Any:
    a = np.sin((lat2_rad - lat1_rad) / 2) ** 2 + cos_lat1 * cos_lat2 * np.sin((lon2_rad - lon1_rad) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(a)))


class Ranked(NamedTuple):
    """One ranking's arrays, by position among the allowed rows, for explaining the pairs it returns."""

    components: dict[str, np.ndarray]
    km: np.ndarray
    scoring: Scoring
    scores: np.ndarray
    before: np.ndarray
    success: np.ndarray | None
    # Per pair: does the candidate have usable talent text (see :func:`final_score`).
    text: Any = True
    # The relevance channels before fusion (:func:`fused_relevance`), by name.
    channels: dict[str, np.ndarray] | None = None

    def match(self, candidate: CandidateProfile, vacancy: VacancyProfile, talents: list, position: int) -> Match:
        explanation = explanation_of(
            candidate,
            vacancy,
            talents,
            {name: float(values[position]) for name, values in self.components.items()},
            self.scoring,
            None if np.isnan(self.km[position]) else float(self.km[position]),
            float(self.before[position]),
            None if self.success is None else float(self.success[position]),
            bool(self.text[position] if isinstance(self.text, np.ndarray) else self.text),
            None if self.channels is None else {name: float(v[position]) for name, v in self.channels.items()},
        )
        return Match(candidate.id, vacancy.id, float(self.scores[position]), explanation)
