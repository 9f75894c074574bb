"""Commands of the candidate service: each stores its change and the event about it in one transaction."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from services.candidate import metrics, store
from services.candidate.domain import PROFILE_FIELDS, apply_patch, split_profile
from shared.events import EventType, new_event
from shared.topics import Topic

SOURCE = "candidate"


def _emit_profile(session: Session, tenant: str, candidate: dict, event_type: EventType) -> None:
    data = {name: candidate[name] for name in (*PROFILE_FIELDS, "jobcoach_id")}
    store.outbox.add(session, new_event(event_type, tenant=tenant, subject=candidate["id"], data=data, source=SOURCE))


def register_candidate(session: Session, tenant: str, jobcoach_id: str, fields: dict) -> dict:
    display_name, profile = split_profile(fields)
    candidate = store.insert_candidate(session, tenant, str(uuid.uuid4()), jobcoach_id, display_name, profile)
    _emit_profile(session, tenant, candidate, EventType.CANDIDATE_REGISTERED)
    metrics.CANDIDATES_REGISTERED.labels(tenant).inc()
    return candidate


def change_candidate(
    session: Session, tenant: str, current: dict, patch: dict, expected_version: int | None = None
) -> dict:
    display_name, profile = apply_patch(current, dict(patch))
    candidate = store.update_candidate(session, tenant, current["id"], display_name, profile, expected_version)
    if profile != {name: current[name] for name in PROFILE_FIELDS}:
        # A new pseudonym is no news for anyone else: it never leaves this service.
        _emit_profile(session, tenant, candidate, EventType.CANDIDATE_UPDATED)
    return candidate


def erase_candidate(session: Session, tenant: str, current: dict, expected_version: int | None = None) -> None:
    """GDPR erasure: gone here, then every other service is told, then Kafka's log forgets them too."""
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
