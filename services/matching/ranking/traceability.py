"""Traceability of rankings and exposure of candidates (EU AI Act, high-risk: employment).

Every ranking served (a jobcoach's list, an employer's list) or acted on (proposals) is logged with what is
needed to account for it later: when, for which region, which direction, a fingerprint of the subject's
inputs, the versions of the text model, weights and reranker, and the top results. It holds no personal
data: the subject appears only as a SHA-256 of its normalised inputs (never its id or its words), and
candidates appear only as scores; vacancies, which are public, appear by id.

Exposure counts how often candidates were shown to employers and proposed to jobcoaches, per ladder step
and per membership of the target-group register, both in the database (for the operator's report) and as
a Prometheus counter (for dashboards), so that operators can see whether some groups are systematically
left out. The report sets the counts against how many consenting candidates each group has.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Final

from sqlalchemy.orm import Session

from services.matching import metrics
from services.matching.ranking import rules, scoring, store, vocabulary
from services.matching.ranking.live_index import TenantIndex
from services.matching.ranking.profiles import CandidateProfile, Match
from services.matching.ranking.scoring import Ranking

CANDIDATE_TO_VACANCIES: Final = "candidate_vacancies"
VACANCY_TO_CANDIDATES: Final = "vacancy_candidates"
VACANCY_PROPOSALS: Final = "vacancy_proposals"
CANDIDATE_PROPOSALS: Final = "candidate_proposals"

SHOWN: Final = "shown"
PROPOSED: Final = "proposed"

# The log keeps the head of a list: what a person most likely saw.
LOGGED_RESULTS: Final = 10


def log_ranking(
    session: Session,
    *,
    direction: str,
    subject_fingerprint: str,
    index: TenantIndex,
    ranking: Ranking,
    matches: Sequence[Match],
) -> None:
    """Record one ranking of the index's tenant; vacancies by id and score, candidates by score only."""
    head = matches[:LOGGED_RESULTS]
    if direction == CANDIDATE_TO_VACANCIES:
        results: list[Any] = [{"vacancy_id": m.vacancy_id, "score": m.score} for m in head]
    else:
        results = [m.score for m in head]
    resolved = rules.resolve_weights(ranking.weights)
    reranker = ranking.reranker
    store.log_ranking(
        session,
        index.tenant,
        direction=direction,
        subject_fingerprint=subject_fingerprint,
        ranking_version=ranking.version,
        model_version=index.model.version,
        weights_version=scoring.weights_version(resolved),
        weights=resolved,
        reranker_version=reranker.version if reranker is not None else None,
        result_count=len(matches),
        results=results,
    )


def _groups(candidates: Iterable[CandidateProfile]) -> Counter[tuple[int, bool]]:
    return Counter((candidate.ladder_step, candidate.target_group_register) for candidate in candidates)


def count_exposures(session: Session, tenant: str, kind: str, candidates: Iterable[CandidateProfile]) -> None:
    """Count these candidates as shown or proposed once each, in the database and in Prometheus."""
    groups = _groups(candidates)
    if not groups:
        return
    store.add_exposures(session, tenant, kind, groups)
    for (step, target_group), count in groups.items():
        metrics.CANDIDATE_EXPOSURES.labels(tenant, str(step), "yes" if target_group else "no", kind).inc(count)


def exposure_report(session: Session, tenant: str, index: TenantIndex) -> dict[str, Any]:
    """Per ladder step and target-group membership: consenting candidates, times shown, times proposed."""
    counts = store.exposures(session, tenant)
    population = index.candidate_groups()
    groups = []
    for step in range(1, vocabulary.TOP_LADDER_STEP + 1):
        for target_group in (True, False):
            candidates = population.get((step, target_group), 0)
            shown = counts.get((step, target_group, SHOWN), 0)
            proposed = counts.get((step, target_group, PROPOSED), 0)
            groups.append(
                {
                    "ladder_step": step,
                    "target_group": target_group,
                    "candidates": candidates,
                    "shown": shown,
                    "proposed": proposed,
                    "shown_per_candidate": round(shown / candidates, 3) if candidates else None,
                    "proposed_per_candidate": round(proposed / candidates, 3) if candidates else None,
                }
            )
    totals = {
        "candidates": sum(population.values()),
        "shown": sum(count for (_, _, kind), count in counts.items() if kind == SHOWN),
        "proposed": sum(count for (_, _, kind), count in counts.items() if kind == PROPOSED),
    }
    return {"tenant": tenant, "groups": groups, "totals": totals}
