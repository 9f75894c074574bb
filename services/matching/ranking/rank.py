"""Ranking a handful of profiles without a live index: for tools and tests, and the reference the indexes
are held to."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from services.matching.ranking.candidate_index import CandidateIndex
from services.matching.ranking.phrases import candidate_text
from services.matching.ranking.profiles import CandidateProfile, Match, VacancyProfile
from services.matching.ranking.rules import DEFAULT_PROPOSAL_THRESHOLD, resolve_weights
from services.matching.ranking.scoring import Reranker
from services.matching.ranking.text_model import TextModel, fit_model
from services.matching.ranking.vacancy_index import VacancyIndex


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
