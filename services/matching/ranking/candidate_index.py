"""Candidates vectorised once, for ranking the best candidates for a vacancy."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np

from services.matching.ranking.phrases import FIELD_WEIGHTS, Phrase, candidate_phrases, vacancy_phrases
from services.matching.ranking.profiles import CandidateProfile, Match, VacancyProfile
from services.matching.ranking.rows import MaskableRows, id_ranks, top_positions
from services.matching.ranking.scoring import (
    DEFAULT_RANKING,
    Ranked,
    Ranking,
    Scoring,
    distance_fits,
    fused_relevance,
    haversine_arrays,
    hours_fits,
    ladder_fits,
    talent_from_best,
    talents_matched,
)
from services.matching.ranking.text_model import PhraseTable, TextModel
from services.matching.ranking.vocabulary import support_mask

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


class CandidateIndex(MaskableRows):
    """Candidates vectorised once, answering "the best candidates for this vacancy" in milliseconds.

    The mirror of :class:`VacancyIndex`, with a model that must already be fitted (usually the one the
    tenant's :class:`VacancyIndex` uses). The hard constraints are arrays over the candidates; the text
    similarity is one sparse product of the vacancy's phrases with the distinct candidate phrases. It ranks
    exactly as :func:`rank_candidates_for_vacancy` does, which is built on it.

    It holds candidates' own words for as long as it lives: it is a cache of the read model, dropped or
    rebuilt when a candidate is erased (see :mod:`services.matching.ranking.live_index`), never stored.
    """

    def __init__(self, candidates: Iterable[CandidateProfile], *, model: TextModel) -> None:
        model._require_fitted()
        self.model = model
        self.candidates: tuple[CandidateProfile, ...] = tuple(candidates)
        n = len(self.candidates)
        lexicon = model.lexicon
        self._phrases = [candidate_phrases(c, lexicon) for c in self.candidates]
        table = PhraseTable()
        documents = [[table.add(p.tokens) for p in phrases] for phrases in self._phrases]
        self._counts = np.fromiter((len(d) for d in documents), dtype=np.int64, count=n)
        self._starts = np.cumsum(self._counts) - self._counts
        self._phrase_ids = np.fromiter((i for d in documents for i in d), dtype=np.int64, count=int(self._counts.sum()))
        self._phrase_matrix = model.transform_tokens(table.tokens)
        # The BM25 channel: each candidate's words as one query (its distinct terms) and its ceiling.
        self._bm25_queries, self._bm25_ceilings = model.bm25_queries(
            [[w for p in phrases for w in p.tokens] for phrases in self._phrases]
        )

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
        self._id_rank = id_ranks([c.id for c in self.candidates])
        self._mask_all_live()

    def _rows(self) -> Sequence[CandidateProfile]:
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
        km = haversine_arrays(
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

    def _lexical(self, counterparts: Sequence[Phrase], allowed: np.ndarray) -> np.ndarray:
        """The BM25 channel: each allowed candidate's words as a query against the vacancy's words."""
        document = self.model.bm25_documents([[w for p in counterparts for w in p.tokens]])
        weights = np.asarray(document.toarray()).reshape(-1)
        scores = self._bm25_queries[allowed] @ weights
        ceilings = self._bm25_ceilings[allowed]
        safe = np.where(ceilings > 0, ceilings, 1.0)
        return np.where(ceilings > 0, np.clip(scores / safe, 0.0, 1.0), 0.0)

    def rank(self, vacancy: VacancyProfile, k: int | None = 10, ranking: Ranking = DEFAULT_RANKING) -> list[Match]:
        """The ``k`` best allowed candidates (all if None), best first, equal scores by candidate id.

        The ranking's ``require_share_consent`` for lists an employer sees; a candidate's own jobcoach needs
        only the matching consent. With its ``min_score`` only those scoring at least that much.
        """
        scoring = Scoring.of(ranking)
        if k is not None and k <= 0:
            return []
        allowed, km = self._allowed_with_distances(vacancy, ranking.require_share_consent)
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
        phrase_talent = np.where(counts > 0, talent_from_best(best, counts), 0.0) if width else np.zeros(len(allowed))
        lexical = self._lexical(counterparts, allowed)
        talent = fused_relevance(phrase_talent, lexical)
        preferred_count = self._preferred_count[allowed]
        preferred_met = np.bitwise_count(self._preferred[allowed] & support_mask(vacancy.supports_offered))
        components = {
            "talent": talent,
            "supports": np.where(
                preferred_count > 0, preferred_met / np.where(preferred_count > 0, preferred_count, 1), 1.0
            ),
            "hours": hours_fits(
                self._hours_min[allowed], self._hours_max[allowed], vacancy.hours_min, vacancy.hours_max
            ),
            "ladder": ladder_fits(self._ladder[allowed], np.full(len(allowed), vacancy.rung)),
            "distance": distance_fits(km, self._max_travel[allowed]),
        }
        scores, before, success = scoring.scores(components, counts > 0)

        order = top_positions(scores, self._id_rank[allowed], k)
        if ranking.min_score is not None:
            order = order[scores[order] >= ranking.min_score]
        row_of = {int(phrase_id): row for row, phrase_id in enumerate(used)}
        channels = {"phrases": phrase_talent, "bm25": lexical}
        ranked = Ranked(components, km, scoring, scores, before, success, counts > 0, channels)
        matches = []
        for position in order:
            index = int(allowed[position])
            candidate = self.candidates[index]
            phrases = self._phrases[index]
            start = int(self._starts[index])
            mine = [row_of[int(i)] for i in self._phrase_ids[start : start + len(phrases)]] if len(used) else []
            pair_similarity = similarity[mine] if mine else np.zeros((len(phrases), len(counterparts)))
            talents = talents_matched(phrases, counterparts, pair_similarity, lexicon)
            matches.append(ranked.match(candidate, vacancy, talents, position))
        return matches
