"""Introductions' event handlers. Plain functions; the worker's handler table says which run on which event."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.matching.introductions import store
from shared.events import Event


def on_candidate_profile(session: Session, event: Event) -> None:
    # After a handover only the new jobcoach sees and answers the candidate's introductions.
    store.follow_jobcoach(session, event.tenant, event.subject, event.data["jobcoach_id"])
    if not event.data["consent"]["share_with_employers"]:
        # Withdrawn consent to share with employers ends every interest still waiting, at once.
        store.cancel_pending(session, event.tenant, event.subject, event.time)


def on_jobcoach_channels_changed(session: Session, event: Event) -> None:
    store.set_work_email(session, event.tenant, event.data["jobcoach_id"], event.data.get("work_email"))


def on_candidate_erased(session: Session, event: Event) -> None:
    store.erase_candidate(session, event.tenant, event.subject)


def on_candidate_tombstone(session: Session, tenant: str, candidate_id: str) -> None:
    store.erase_candidate(session, tenant, candidate_id)
