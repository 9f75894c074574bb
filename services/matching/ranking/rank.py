"""Ranking a handful of profiles without a live index: for tools and tests, and the reference the indexes
are held to."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from services.matching.ranking.candidate_index import CandidateIndex
from services.matching.ranking.phrases import candidate_text
from services.matching.ranking.profiles import CandidateProfile, Match, VacancyProfile
from services.matching.ranking.rules import DEFAULT_PROPOSAL_THRESHOLD, resolve_weights
from services.matching.ranking.scoring import DEFAULT_RANKING, Ranking
from services.matching.ranking.text_model import TextModel, fit_model
from services.matching.ranking.vacancy_index import VacancyIndex


def rank_vacancies_for_candidate(
    candidate: CandidateProfile,
    vacancies: Iterable[VacancyProfile],
    *,
    top_k: int | None = 10,
    ranking: Ranking = DEFAULT_RANKING,
    model: TextModel | None = None,
) -> list[Match]:
    """The best vacancies for one candidate, for their jobcoach; hard constraints are applied first.

    Without ``model`` one is fitted on these vacancies and this candidate. For repeated queries over the
    same vacancies build a :class:`VacancyIndex` once and call :meth:`VacancyIndex.top_k`.
    """
    resolve_weights(ranking.weights)
    if not candidate.consent_matching or (top_k is not None and top_k <= 0):
        return []
    index = VacancyIndex(vacancies, model=model, extra_documents=[candidate_text(candidate)])
    return index.top_k(candidate, top_k, ranking)


def rank_candidates_for_vacancy(
    vacancy: VacancyProfile,
    candidates: Iterable[CandidateProfile],
    *,
    top_k: int | None = 10,
    ranking: Ranking = DEFAULT_RANKING,
    model: TextModel | None = None,
) -> list[Match]:
    """The best candidates for one vacancy; by default only those who agreed to be shown to employers.

    Without ``model`` one is fitted on this vacancy and these candidates. For repeated queries over the
    same candidates build a :class:`CandidateIndex` once and call :meth:`CandidateIndex.rank`.
    """
    resolve_weights(ranking.weights)
    candidates = list(candidates)
    if (top_k is not None and top_k <= 0) or not candidates:
        return []
    if model is None:
        model = fit_model([vacancy], candidates)
    index = CandidateIndex(candidates, model=model)
    return index.rank(vacancy, top_k, ranking)


def proposals_for_vacancy(
    vacancy: VacancyProfile,
    candidates: Iterable[CandidateProfile],
    threshold: float = DEFAULT_PROPOSAL_THRESHOLD,
    *,
    ranking: Ranking = DEFAULT_RANKING,
    model: TextModel | None = None,
) -> list[Match]:
    """Every candidate scoring at least ``threshold`` (with the ranking's weights and reranker), to propose
    to that candidate's own jobcoach.

    Only the matching consent is needed here: the proposal goes to the jobcoach, not to the employer.
    """
    for_jobcoach = dataclasses.replace(ranking, require_share_consent=False)
    ranked = rank_candidates_for_vacancy(vacancy, candidates, top_k=None, ranking=for_jobcoach, model=model)
    return [match for match in ranked if match.score >= threshold]
