"""The caseload's event handlers: who each candidate's jobcoach is, when there was contact, which alerts
are open. Plain functions; the worker's handler table says which run on which event."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.matching.caseload import store
from services.matching.placements.commands import LOCAL_ZONE
from shared.clock import Clock
from shared.db import utcnow
from shared.events import Event


def on_candidate_profile(session: Session, event: Event, *, clock: Clock = utcnow) -> None:
    # Registration and every profile change count as contact; a handover moves the candidate to the new coach.
    # The day is this worker's, on the same clock as the days since contact are counted: the event's own
    # time is the producer's real time, which an injected clock does not move.
    day = clock().astimezone(LOCAL_ZONE).date()
    store.record_candidate(session, event.tenant, event.subject, event.data["jobcoach_id"], day)


def on_alert_raised(session: Session, event: Event) -> None:
    store.alert_raised(session, event.tenant, event.subject, event.data.get("candidate_id"))


def on_alert_acknowledged(session: Session, event: Event) -> None:
    alert_id = event.data.get("alert_id") or event.subject
    candidate_id = event.data["candidate_id"]
    if candidate_id is None:
        # An operator's alert about a jobcoach (caseload over limit): nobody's contact.
        return
    store.alert_acknowledged(session, event.tenant, alert_id, candidate_id)
    store.record_contact(
        session, event.tenant, candidate_id, event.data["acknowledged_at"].astimezone(LOCAL_ZONE).date()
    )


def on_candidate_erased(session: Session, event: Event) -> None:
    store.erase_candidate(session, event.tenant, event.subject)


def on_candidate_tombstone(session: Session, tenant: str, candidate_id: str) -> None:
    store.erase_candidate(session, tenant, candidate_id)
