"""Vacancies vectorised once, for ranking the best vacancies for a candidate."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from services.matching.ranking.concepts import Lexicon
from services.matching.ranking.normalisation import default_lexicon, document_tokens
from services.matching.ranking.phrases import (
    FIELD_WEIGHTS,
    VACANCY_NUMBERS,
    Phrase,
    candidate_phrases,
    display_text,
    vacancy_record,
)
from services.matching.ranking.profiles import CandidateProfile, Match, VacancyProfile
from services.matching.ranking.rows import MaskableRows, id_ranks, kth_largest, top_positions
from services.matching.ranking.rules import EARTH_RADIUS_KM
from services.matching.ranking.scoring import (
    DEFAULT_RANKING,
    Ranked,
    Ranking,
    Scoring,
    TalentScores,
    distance_fits,
    fused_relevance,
    haversine_arrays,
    hours_fits,
    ladder_fits,
    lexical_fits,
    talent_bounds,
    talent_from_best,
    talents_matched,
)
from services.matching.ranking.text_model import PhraseTable, TextModel, fit_on_phrases
from services.matching.ranking.vocabulary import support_mask


class VacancyIndex(MaskableRows):
    """Vacancies vectorised once, answering "the best vacancies for this candidate" in milliseconds.

    Build one per tenant from its current vacancies, ideally with a model fitted on the tenant's vacancy
    and candidate texts. It is never modified after construction, so one index can serve concurrent
    requests; :meth:`without` gives a view in which some vacancies no longer take part, which is how
    :mod:`~.live_index` retires changed rows without rebuilding. Hard constraints run on numpy
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
        records = [vacancy_record(v, lexicon) for v in self.vacancies]
        self._phrases = [record.phrases for record in records]

        # Each vacancy owns a contiguous run of rows, its phrases in their own order (at least one, the
        # empty phrase, if it has none); the explanation reads a vacancy's similarities in that order.
        table = PhraseTable()
        documents = [[table.add(p.tokens) for p in phrases] or [0] for phrases in self._phrases]
        self._counts = np.fromiter((len(d) for d in documents), dtype=np.int64, count=n)
        self._starts = np.cumsum(self._counts) - self._counts
        self._phrase_ids = np.fromiter((i for d in documents for i in d), dtype=np.int64, count=int(self._counts.sum()))
        if model is None:
            documents += [[table.add(lexicon.expand(document_tokens(text))[0])] for text in extra_documents]
            model = fit_on_phrases(table, documents, lexicon)
        self.model = model
        self._phrase_weights = np.fromiter(
            (w for record in records for w in record.phrase_weights),
            dtype=np.float64,
            count=len(self._phrase_ids),
        )

        # The rows split into two blocks. Skills, tasks and titles come from short lists that vacancies
        # share, so their distinct phrases are few and a query compares with all of them. Description
        # sentences are mostly unique and weigh least, so a query compares with them only for the vacancies
        # that can still reach its top k once every sentence is assumed to match perfectly.
        flags = [[p.source == "description" for p in phrases] or [False] for phrases in self._phrases]
        in_description = np.fromiter((f for row in flags for f in row), dtype=bool, count=len(self._phrase_ids))
        self._in_description = in_description
        vectors = model.transform_tokens(table.tokens)
        # The BM25 channel: each vacancy's words as one document, posted per term so that a query adds up
        # only the postings of its own terms.
        self._bm25_postings = model.bm25_documents(
            [[w for p in record.phrases for w in p.tokens] for record in records]
        ).T.tocsr()
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
        columns = np.array([record.numbers for record in records], dtype=np.float64).reshape(n, len(VACANCY_NUMBERS))
        self._open = columns[:, VACANCY_NUMBERS.index("open")] > 0
        self._positions = columns[:, VACANCY_NUMBERS.index("positions")].astype(np.int64)
        self._matchable = self._open & (self._positions > 0)
        self._hours_min = columns[:, VACANCY_NUMBERS.index("hours_min")]
        self._hours_max = columns[:, VACANCY_NUMBERS.index("hours_max")]
        self._supports = columns[:, VACANCY_NUMBERS.index("supports")].astype(np.int64)
        self._rung = columns[:, VACANCY_NUMBERS.index("rung")].astype(np.int64)
        self._lat_rad = np.radians(columns[:, VACANCY_NUMBERS.index("lat")])
        self._lon_rad = np.radians(columns[:, VACANCY_NUMBERS.index("lon")])
        self._cos_lat = np.cos(self._lat_rad)
        self._id_rank = id_ranks([v.id for v in self.vacancies])
        self._mask_all_live()

    def _rows(self) -> Sequence[VacancyProfile]:
        return self.vacancies

    def matchable_count(self) -> int:
        """How many vacancies here are open with a position left: the ones any candidate could get."""
        return int((self._live & self._open & (self._positions > 0)).sum())

    def _distances(self, candidate: CandidateProfile, subset: np.ndarray) -> np.ndarray:
        """Haversine km from the candidate to the vacancies in ``subset``; NaN where either has no place."""
        if candidate.lat is None or candidate.lon is None:
            return np.full(len(subset), np.nan)
        p1 = math.radians(candidate.lat)
        return haversine_arrays(
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
        if candidate.max_travel_km is not None and candidate.lat is not None and candidate.lon is not None:
            # A great circle is at least as long as the difference in latitude it spans (the haversine's
            # first term alone gives that much), so a vacancy further north or south than the limit is
            # out of reach without the rest of the formula; the margin covers rounding, and an unknown
            # place (NaN) stays, as below.
            reach = candidate.max_travel_km * (1.0 + 1e-9) + 1e-9
            north_south = np.abs(self._lat_rad[subset] - math.radians(candidate.lat)) * EARTH_RADIUS_KM
            subset = subset[~(north_south > reach)]
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

    def _lexical(self, phrases: Sequence[Phrase], allowed: np.ndarray) -> np.ndarray:
        """The BM25 channel for the allowed vacancies: the candidate's words as one query, over its ceiling."""
        terms, ceiling = self.model.bm25_query([w for p in phrases for w in p.tokens])
        postings = self._bm25_postings
        starts = postings.indptr[terms]
        entries = _runs(starts, postings.indptr[terms + 1] - starts)
        # The query's postings term by term in ascending order, which bincount adds up one after another:
        # every vacancy's sum is taken in the order the candidate index's product takes it, so the two
        # directions agree to the last bit.
        scores = np.bincount(postings.indices[entries], weights=postings.data[entries], minlength=len(self.vacancies))
        return lexical_fits(scores[allowed], ceiling)

    def _in_reach(
        self,
        weighted: np.ndarray,
        allowed: np.ndarray,
        lexical: np.ndarray,
        described: np.ndarray,
        score: TalentScores,
        k: int,
        best: np.ndarray,
    ) -> np.ndarray:
        """The allowed positions whose description sentences have to be compared for the top ``k``.

        On the way it compares the skill, task and title rows of the vacancies that can still reach the
        top ``k`` (the heads), and writes their best values into ``best``.

        Each step bounds the remaining vacancies' scores from below and from above; one whose upper bound
        stays under the k-th best lower bound cannot be among the k best. The margins cover rounding: a
        bound taken on fewer columns than the exact score may differ from it in its last bit.
        """
        n_phrases = weighted.shape[0]
        # The BM25 channel is exact already and the phrase channel lies between 0 and 1: this needs no
        # phrase of any vacancy and rules out most of those that share few words with the candidate.
        floor = kth_largest(score(fused_relevance(0.0, lexical) * (1.0 - 1e-9)), k)
        reach = np.flatnonzero(score(np.minimum(fused_relevance(1.0, lexical) * (1.0 + 1e-9), 1.0)) >= floor)
        # The best weighted pair of a vacancy's head bounds its talent: from below by the best phrase's
        # share of it, from above by it or by the most a sentence could add. Everything ruled out above
        # scores under the floor, so the k-th best lower bound among the rest is the k-th best of all.
        top = self._best_pair(weighted.max(axis=0), allowed[reach])
        lower = fused_relevance(talent_bounds(top, n_phrases)[0], lexical[reach])
        floor = kth_largest(score(lower * (1.0 - 1e-9), reach), k)
        sentence_bound = np.where(described[reach], self._description_bound, 0.0)
        upper = fused_relevance(talent_bounds(np.maximum(top, sentence_bound), n_phrases)[1], lexical[reach])
        heads = reach[score(np.minimum(upper * (1.0 + 1e-9), 1.0), reach) >= floor]

        # The heads' exact scores without their sentences are lower bounds, with every sentence a perfect
        # match upper bounds.
        head_best = _best_per_vacancy(weighted, self._head, allowed[heads], self._head_pair)
        best[:, heads] = head_best
        lower = fused_relevance(talent_from_best(head_best), lexical[heads])
        floor = kth_largest(score(lower * (1.0 - 1e-9), heads), k)
        sentence_bound = np.where(described[heads], self._description_bound, 0.0)
        upper = fused_relevance(talent_from_best(np.maximum(head_best, sentence_bound)), lexical[heads])
        survivors = heads[described[heads] & (score(np.minimum(upper * (1.0 + 1e-9), 1.0), heads) >= floor)]
        return survivors

    def top_k(self, candidate: CandidateProfile, k: int | None = 10, ranking: Ranking = DEFAULT_RANKING) -> list[Match]:
        """The ``k`` best allowed vacancies (all if ``k`` is None), best first, equal scores by vacancy id.

        With the ranking's ``min_score`` only those scoring at least that much.
        """
        scoring = Scoring.of(ranking)
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
        lexical = self._lexical(phrases, allowed)

        limit = np.nan if candidate.max_travel_km is None else candidate.max_travel_km
        preferred = support_mask(candidate.preferred_needs)
        components = {
            "talent": np.zeros(len(allowed)),
            "supports": (
                np.bitwise_count(self._supports[allowed] & preferred) / len(candidate.preferred_needs)
                if candidate.preferred_needs
                else np.ones(len(allowed))
            ),
            "hours": hours_fits(
                self._hours_min[allowed], self._hours_max[allowed], candidate.hours_min, candidate.hours_max
            ),
            "ladder": ladder_fits(np.full(len(allowed), candidate.ladder_step), self._rung[allowed]),
            # Without a travel limit every distance fits fully.
            "distance": np.ones(len(allowed)) if np.isnan(limit) else distance_fits(km, np.full(len(allowed), limit)),
        }
        described = self._description.counts[allowed] > 0
        # The number of best vacancies the exact scoring may stop at, when pruning applies at all.
        prune_to = k if query is not None and ranking.reranker is None and k is not None and len(allowed) > k else None

        # Exact scores are needed only for vacancies that can reach the top k, and cheap bounds rule out
        # most of the rest. The exact talent is still taken over every allowed vacancy at once, the
        # ruled-out ones holding lower values, so that it comes out to the last bit as without pruning
        # (numpy adds up a few columns in another order than many). A reranker may reorder scores
        # freely, so with one every vacancy is scored in full.
        if prune_to is None:
            best = _best_per_vacancy(weighted, self._head, allowed, self._head_pair)
            survivors = np.flatnonzero(described)
        else:
            best = np.zeros((len(phrases), len(allowed)))
            score = TalentScores(components, scoring.weights, len(allowed))
            survivors = self._in_reach(weighted, allowed, lexical, described, score, prune_to, best)
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
        phrase_talent = talent_from_best(best)
        components["talent"] = fused_relevance(phrase_talent, lexical)
        if prune_to is None:
            scores, before, success = scoring.scores(components, bool(phrases))
        else:
            # Pruning runs only with talent text and without a reranker, where the score is final_score,
            # whose soft fit the bounds have computed already.
            scores = before = score(components["talent"])
            success = None

        order = top_positions(scores, self._id_rank[allowed], k)
        if ranking.min_score is not None:
            order = order[scores[order] >= ranking.min_score]
        if candidate.max_travel_km is None:
            km = km.copy()
            km[order] = self._distances(candidate, allowed[order])
        channels = {"phrases": phrase_talent, "bm25": lexical}
        ranked = Ranked(components, km, scoring, scores, before, success, bool(phrases), channels)
        # The explanation reads each returned vacancy's similarities in the order of its own phrases.
        returned = allowed[order]
        lengths = np.fromiter((len(self._phrases[i]) for i in returned.tolist()), dtype=np.int64, count=len(order))
        rows = _runs(self._starts[returned], lengths)
        pair_similarity = np.empty((len(phrases), len(rows)))
        if len(phrases) and len(rows):
            sentence = self._in_description[rows]
            pair_similarity[:, ~sentence] = head_similarity[:, self._column[rows[~sentence]]]
            # A vacancy in the top k had its sentences compared: every one of them is among ``used``.
            pair_similarity[:, sentence] = description_similarity[
                :, np.searchsorted(used, self._column[rows[sentence]])
            ]
        field_weights = self._phrase_weights[rows]
        shown = [display_text(p.text) for p in phrases]
        matches = []
        ends = np.cumsum(lengths).tolist()
        for position, index, end, length in zip(order.tolist(), returned.tolist(), ends, lengths.tolist(), strict=True):
            counterparts = self._phrases[index]
            talents = talents_matched(
                phrases,
                counterparts,
                pair_similarity[:, end - length : end],
                lexicon,
                field_weights=field_weights[end - length : end],
                shown=shown,
            )
            matches.append(ranked.match(candidate, self.vacancies[index], talents, position))
        return matches


class _Block(NamedTuple):
    """Some of an index's phrase rows, each vacancy's still contiguous and in its own order."""

    counts: np.ndarray
    starts: np.ndarray
    # Per row: which of the block's distinct phrases (rows of ``vectors``) it is.
    columns: np.ndarray
    weights: np.ndarray
    vectors: sp.csr_matrix


def _runs(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``starts[0], starts[0] + 1, ...`` for ``lengths[0]`` numbers, then the same for each further run."""
    offsets = np.cumsum(lengths) - lengths
    return np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))


def _block_rows(block: _Block, vacancies: np.ndarray) -> np.ndarray:
    """The block's rows of these vacancies, one run per vacancy in the order given."""
    return _runs(block.starts[vacancies], block.counts[vacancies])


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
