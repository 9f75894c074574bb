"""Ranking's event handlers: the read models of candidates and vacancies, and proposals. Plain functions;
the worker's handler table (:mod:`services.matching.worker`) says which run on which event.

Proposals
---------
When a vacancy is posted or changed, each candidate scoring at least the tenant's ``match_threshold`` (with
the tenant's weights, and its reranker when one is in use) is proposed to their own jobcoach. When a
candidate is registered or changed, their best open vacancies above the threshold are proposed to their
jobcoach too, at most :data:`MAX_PROPOSALS_PER_CANDIDATE` at a time: with the live index this costs one
ranking, and without it a candidate registered after the vacancies were posted would never hear of them.

A pair is proposed once, and again only when something material to it changed (see
``fingerprints.pair_fingerprint``: not a reworded vacancy description, not an employer-consent change), or
when its vacancy closed and opened again. Each proposal stores the pair's fingerprint and its components; the
components are what the reranker later learns from.

Ranking runs on the in-memory index, refreshed first up to (not including) the change this handler just
wrote: what it ranks against is committed, and the event's own entity is ranked directly from its payload.
Because the tenant's change counter stays locked until this transaction ends, a candidate and a vacancy
written at the same moment by two replicas are still seen by whichever of the two handlers commits last.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Final

from sqlalchemy.orm import Session

from services.matching import metrics
from services.matching.outbox import emit
from services.matching.ranking import fingerprints, store, traceability
from services.matching.ranking.engine import MatchingEngine
from services.matching.ranking.live_index import TenantIndex
from services.matching.ranking.profiles import CandidateProfile, Match, VacancyProfile
from services.matching.ranking.scoring import Ranking
from shared.events import Event, EventType

log = logging.getLogger(__name__)

# A new or changed candidate hears of a few good vacancies at a time, not of every one in the region;
# their jobcoach sees the whole list on the matches endpoint.
MAX_PROPOSALS_PER_CANDIDATE: Final = 5


def on_candidate_profile(engine: MatchingEngine, session: Session, event: Event) -> None:
    seq = store.upsert_candidate(session, event.tenant, event.subject, event.data)
    try:
        candidate = CandidateProfile.from_payload(event.data, id=event.subject, tenant=event.tenant)
    except ValueError:
        # Stored for the jobcoach to see and fix; a profile the domain refuses is never matched.
        log.warning("candidate cannot be ranked", extra={"ctx": {"tenant": event.tenant}})
        return
    if candidate.consent_matching:
        propose_vacancies(engine, session, candidate, upto=seq - 1)


def on_candidate_erased(session: Session, event: Event) -> None:
    store.erase_candidate(session, event.tenant, event.subject)


def on_candidate_tombstone(session: Session, tenant: str, candidate_id: str) -> None:
    store.erase_candidate(session, tenant, candidate_id)


def on_vacancy_changed(engine: MatchingEngine, session: Session, event: Event) -> None:
    seq = store.upsert_vacancy(session, event.tenant, event.subject, event.data)
    try:
        vacancy = VacancyProfile.from_payload(event.data, id=event.subject, tenant=event.tenant)
    except ValueError:
        log.warning("vacancy cannot be ranked", extra={"ctx": {"tenant": event.tenant}})
        return
    if vacancy.status != "open" or vacancy.positions <= 0:
        store.forget_proposal_fingerprints(session, event.tenant, event.subject)
        return
    propose_candidates(engine, session, vacancy, upto=seq - 1)


def on_vacancy_closed(session: Session, event: Event) -> None:
    store.set_vacancy_status(session, event.tenant, event.subject, event.data["status"])
    # If it opens again, its candidates are due to hear of it again.
    store.forget_proposal_fingerprints(session, event.tenant, event.subject)


def propose_candidates(engine: MatchingEngine, session: Session, vacancy: VacancyProfile, *, upto: int) -> int:
    """Propose each candidate at or above the tenant's threshold for this vacancy, as far as not done."""
    tenant = vacancy.tenant
    index = engine.index(session, tenant, upto=upto)
    ranking = engine.proposal_ranking(session, tenant)
    matches = index.candidates_for(vacancy, None, ranking)
    already = store.proposal_fingerprints(session, tenant, vacancy_id=vacancy.id)
    return _propose_new_pairs(
        session,
        ((index.candidate(match.candidate_id), vacancy, match) for match in matches),
        already,
        index=index,
        ranking=ranking,
        direction=traceability.VACANCY_PROPOSALS,
        subject_fingerprint=fingerprints.vacancy_fingerprint(vacancy),
    )


def propose_vacancies(engine: MatchingEngine, session: Session, candidate: CandidateProfile, *, upto: int) -> int:
    """Propose this candidate's best open vacancies at or above the threshold, a few at a time."""
    tenant = candidate.tenant
    index = engine.index(session, tenant, upto=upto)
    ranking = engine.proposal_ranking(session, tenant)
    already = store.proposal_fingerprints(session, tenant, candidate_id=candidate.id)
    matches = index.vacancies_for(candidate, MAX_PROPOSALS_PER_CANDIDATE + len(already), ranking)
    return _propose_new_pairs(
        session,
        ((candidate, index.vacancy(match.vacancy_id), match) for match in matches),
        already,
        index=index,
        ranking=ranking,
        direction=traceability.CANDIDATE_PROPOSALS,
        subject_fingerprint=fingerprints.candidate_fingerprint(candidate),
        limit=MAX_PROPOSALS_PER_CANDIDATE,
    )


def _propose_new_pairs(
    session: Session,
    pairs: Iterable[tuple[CandidateProfile | None, VacancyProfile | None, Match]],
    already: Mapping[tuple[str, str], str | None],
    *,
    index: TenantIndex,
    ranking: Ranking,
    direction: str,
    subject_fingerprint: str,
    limit: int | None = None,
) -> int:
    """Propose every pair not proposed before with the same material inputs, log the ranking behind them
    and count whom it exposed; returns how many."""
    proposed: list[Match] = []
    people: list[CandidateProfile] = []
    for candidate, vacancy, match in pairs:
        if limit is not None and len(proposed) >= limit:
            break
        if candidate is None or vacancy is None:
            continue
        fingerprint = fingerprints.pair_fingerprint(candidate, vacancy)
        if already.get((vacancy.id, candidate.id)) == fingerprint:
            continue
        _propose(session, candidate, vacancy, match, fingerprint)
        proposed.append(match)
        people.append(candidate)
    if proposed:
        traceability.log_ranking(
            session,
            direction=direction,
            subject_fingerprint=subject_fingerprint,
            index=index,
            ranking=ranking,
            matches=proposed,
        )
        traceability.count_exposures(session, index.tenant, traceability.PROPOSED, people)
    return len(proposed)


def _propose(
    session: Session, candidate: CandidateProfile, vacancy: VacancyProfile, match: Match, fingerprint: str
) -> None:
    tenant = vacancy.tenant
    store.save_proposal(
        session,
        tenant,
        vacancy.id,
        candidate.id,
        match.score,
        fingerprint=fingerprint,
        components=match.explanation["components"],
        ranking_version=match.explanation["ranking_version"],
    )
    data = {
        "candidate_id": candidate.id,
        "vacancy_id": vacancy.id,
        "jobcoach_id": candidate.jobcoach_id,
        "vacancy_title": vacancy.title,
        "score": match.score,
        # The explanation names the candidate's talents and support needs: match-events cannot forget them.
        "ranking_version": match.explanation["ranking_version"],
    }
    emit(session, EventType.MATCH_PROPOSED, tenant=tenant, subject=candidate.id, data=data)
    metrics.MATCHES_PROPOSED.labels(tenant).inc()
