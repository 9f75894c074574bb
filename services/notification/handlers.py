"""Event handlers of the notification service: plain functions, listed by event type at the bottom."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from services.notification import domain, store
from shared import metrics
from shared.db import utcnow
from shared.events import Event


def create_alert(
    session: Session,
    event: Event,
    *,
    alert_type: str,
    subject: str,
    episode: int,
    message: str,
    details: dict,
    placement_id: str | None = None,
) -> str | None:
    """Store one alert per (type, subject, episode) and queue its deliveries; None when it exists."""
    tenant, data = event.tenant, event.data
    if store.alert_exists(session, tenant, alert_type, subject, episode):
        return None
    alert_id = str(uuid.uuid4())
    store.insert_alert(
        session,
        tenant,
        {
            "id": alert_id,
            "jobcoach_id": data["jobcoach_id"],
            "type": alert_type,
            "subject": subject,
            "episode": episode,
            "candidate_id": data["candidate_id"],
            "vacancy_id": data.get("vacancy_id"),
            "placement_id": placement_id,
            "message": message,
            "details": details,
            "source_event_id": event.id,
        },
    )
    channels = store.get_channels(session, tenant, data["jobcoach_id"])
    if channels and channels["webhook_url"]:
        store.add_delivery(session, tenant, alert_id, "webhook", utcnow())
    metrics.ALERTS_CREATED.labels(tenant, alert_type).inc()
    metrics.ALERT_LATENCY.observe(max((utcnow() - event.time).total_seconds(), 0.0))
    return alert_id


def on_match_proposed(session: Session, event: Event) -> None:
    data = event.data
    create_alert(
        session,
        event,
        alert_type="match_proposed",
        subject=f"{data['vacancy_id']}:{data['candidate_id']}",
        episode=1,
        message=domain.match_message(data["vacancy_title"], data["score"]),
        details={"score": data["score"], "explanation": data["explanation"], "ranking": data["ranking_version"]},
    )


def on_candidate_erased(session: Session, event: Event) -> None:
    store.erase_candidate(session, event.tenant, event.subject)


def on_candidate_tombstone(session: Session, tenant: str, candidate_id: str) -> None:
    store.erase_candidate(session, tenant, candidate_id)


HANDLERS = {
    "nl.werkbrug.match.proposed": on_match_proposed,
    "nl.werkbrug.candidate.erased": on_candidate_erased,
}

TOMBSTONE_HANDLERS = {"candidate-events": on_candidate_tombstone}
