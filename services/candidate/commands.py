"""Commands of the candidate service: each stores its change and the event about it in one transaction."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from services.candidate import domain, metrics, store
from services.candidate.domain import PROFILE_FIELDS, apply_patch, split_profile
from shared.events import EventType, new_event
from shared.topics import Topic

SOURCE = "candidate"


def emit_profile(session: Session, tenant: str, candidate: dict, event_type: EventType) -> None:
    data = {name: candidate[name] for name in (*PROFILE_FIELDS, "jobcoach_id")}
    store.outbox.add(session, new_event(event_type, tenant=tenant, subject=candidate["id"], data=data, source=SOURCE))


def record_consent_and_ladder(
    session: Session, tenant: str, before: dict | None, after: dict, reason: str, recorded_by: str
) -> None:
    """History entries for whatever a registration or a change did to the consent and the ladder step."""
    for kind, details in (
        (domain.CONSENT, domain.consent_entry(reason, before, after)),
        (domain.LADDER, domain.ladder_entry(reason, before, after)),
    ):
        if details is not None:
            store.add_history(
                session,
                tenant,
                after["id"],
                kind,
                recorded_by=recorded_by,
                recorded_at=after["updated_at"],
                details=details,
            )


def register_candidate(session: Session, tenant: str, jobcoach_id: str, fields: dict) -> dict:
    display_name, profile = split_profile(fields)
    candidate = store.insert_candidate(session, tenant, str(uuid.uuid4()), jobcoach_id, display_name, profile)
    record_consent_and_ladder(session, tenant, None, candidate, domain.REGISTERED, jobcoach_id)
    emit_profile(session, tenant, candidate, EventType.CANDIDATE_REGISTERED)
    metrics.CANDIDATES_REGISTERED.labels(tenant).inc()
    return candidate


def change_candidate(
    session: Session, tenant: str, current: dict, patch: dict, recorded_by: str, expected_version: int | None = None
) -> dict:
    display_name, profile = apply_patch(current, dict(patch))
    candidate = store.update_candidate(session, tenant, current["id"], display_name, profile, expected_version)
    assert candidate is not None, "the caller read and locked the candidate in this transaction"
    if profile != {name: current[name] for name in PROFILE_FIELDS}:
        record_consent_and_ladder(session, tenant, current, candidate, domain.CHANGED, recorded_by)
        # A new pseudonym is no news for anyone else: it never leaves this service.
        emit_profile(session, tenant, candidate, EventType.CANDIDATE_UPDATED)
    return candidate


def hand_over(session: Session, tenant: str, current: dict, jobcoach_id: str, recorded_by: str) -> dict:
    """The candidate becomes another jobcoach's: the others learn it from ``candidate.updated``, whose
    ``jobcoach_id`` changed, and the history keeps who moved them from whom to whom."""
    problem = domain.handover_problem(current, jobcoach_id)
    if problem is not None:
        raise domain.CandidateRuleBroken(problem)
    candidate = store.set_jobcoach(session, tenant, current["id"], jobcoach_id)
    assert candidate is not None, "the caller read and locked the candidate in this transaction"
    store.add_history(
        session,
        tenant,
        current["id"],
        domain.HANDOVER,
        recorded_by=recorded_by,
        recorded_at=candidate["updated_at"],
        details={"from_jobcoach_id": current["jobcoach_id"], "to_jobcoach_id": jobcoach_id},
    )
    emit_profile(session, tenant, candidate, EventType.CANDIDATE_UPDATED)
    metrics.HANDOVERS.labels(tenant).inc()
    return candidate


def erase_candidate(session: Session, tenant: str, current: dict, expected_version: int | None = None) -> None:
    """GDPR erasure: gone here (history included), then every other service is told, then Kafka's log
    forgets them too."""
    store.delete_candidate(session, tenant, current["id"], expected_version)
    erased = new_event(
        EventType.CANDIDATE_ERASED,
        tenant=tenant,
        subject=current["id"],
        data={"jobcoach_id": current["jobcoach_id"]},
        source=SOURCE,
    )
    store.outbox.add(session, erased)
    store.outbox.add_tombstone(session, Topic.CANDIDATE_EVENTS, tenant, current["id"])
