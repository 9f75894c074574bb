"""Event handlers of the matching service: plain functions, listed by event type at the bottom."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from services.matching import domain, store
from shared import metrics
from shared.events import Event, new_event

SOURCE = "matching"


def on_candidate_profile(session: Session, event: Event) -> None:
    store.upsert_candidate(session, event.tenant, event.subject, event.data)


def on_candidate_erased(session: Session, event: Event) -> None:
    store.erase_candidate(session, event.tenant, event.subject)


def on_candidate_tombstone(session: Session, tenant: str, candidate_id: str) -> None:
    store.erase_candidate(session, tenant, candidate_id)


def on_vacancy_closed(session: Session, event: Event) -> None:
    store.set_vacancy_status(session, event.tenant, event.subject, event.data["status"])


def proposing_handler(threshold: float) -> Callable[[Session, Event], None]:
    """The handler for posted and updated vacancies, proposing above the configured threshold."""

    def on_vacancy_changed(session: Session, event: Event) -> None:
        store.upsert_vacancy(session, event.tenant, event.subject, event.data)
        propose_candidates(session, event.tenant, event.subject, threshold)

    return on_vacancy_changed


def propose_candidates(session: Session, tenant: str, vacancy_id: str, threshold: float) -> int:
    """Propose each candidate who scores above the threshold to their jobcoach, once per pair."""
    vacancy_payload = store.get_vacancy(session, tenant, vacancy_id)
    vacancy = domain.VacancyProfile.from_payload(vacancy_payload, id=vacancy_id, tenant=tenant)
    candidates = [
        domain.CandidateProfile.from_payload(profile, id=candidate_id, tenant=tenant)
        for candidate_id, profile in store.consenting_candidates(session, tenant)
    ]
    already = store.proposed_candidate_ids(session, tenant, vacancy_id)
    jobcoach_of = {candidate.id: candidate.jobcoach_id for candidate in candidates}
    proposed = 0
    for match in domain.proposals_for_vacancy(vacancy, candidates, threshold):
        if match.candidate_id in already:
            continue
        store.record_proposal(session, tenant, vacancy_id, match.candidate_id, match.score)
        data = {
            "candidate_id": match.candidate_id,
            "vacancy_id": vacancy_id,
            "jobcoach_id": jobcoach_of[match.candidate_id],
            "vacancy_title": vacancy.title,
            "score": match.score,
            "explanation": match.explanation,
            "ranking_version": domain.RANKING_VERSION,
        }
        event = new_event(
            "nl.werkbrug.match.proposed", tenant=tenant, subject=match.candidate_id, data=data, source=SOURCE
        )
        store.outbox.add(session, event)
        metrics.MATCHES_PROPOSED.labels(tenant).inc()
        proposed += 1
    return proposed


def build_handlers(threshold: float) -> dict[str, Callable[[Session, Event], None]]:
    on_vacancy_changed = proposing_handler(threshold)
    return {
        "nl.werkbrug.candidate.registered": on_candidate_profile,
        "nl.werkbrug.candidate.updated": on_candidate_profile,
        "nl.werkbrug.candidate.erased": on_candidate_erased,
        "nl.werkbrug.vacancy.posted": on_vacancy_changed,
        "nl.werkbrug.vacancy.updated": on_vacancy_changed,
        "nl.werkbrug.vacancy.closed": on_vacancy_closed,
    }


TOMBSTONE_HANDLERS = {"candidate-events": on_candidate_tombstone}
