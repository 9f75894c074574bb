"""Placements' event handlers: what placements take from candidate and alert events. Plain functions; the
worker's handler table (:mod:`services.matching.worker`) says which run on which event."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.matching.placements import store
from shared.events import Event, InvalidEvent


def on_alert_acknowledged(session: Session, event: Event) -> None:
    seconds = (event.data["acknowledged_at"] - event.data["created_at"]).total_seconds()
    if seconds < 0:
        raise InvalidEvent("an alert cannot be acknowledged before it was created")
    store.record_acknowledgement(session, event.tenant, event.data["alert_type"], seconds)


def on_candidate_profile(session: Session, event: Event) -> None:
    # A candidate who changes jobcoach takes their placements along, so the new jobcoach gets the alerts.
    store.reassign_jobcoach(session, event.tenant, event.subject, event.data["jobcoach_id"])


def on_candidate_erased(session: Session, event: Event) -> None:
    store.erase_candidate_placements(session, event.tenant, event.subject)


def on_candidate_tombstone(session: Session, tenant: str, candidate_id: str) -> None:
    store.erase_candidate_placements(session, tenant, candidate_id)
