"""Event handlers of the notification service: plain functions turning the events it consumes into alerts,
listed by event type in the worker's handler table (:func:`services.notification.worker.handler_table`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from services.notification import domain, metrics, store
from shared.clock import Clock
from shared.db import utcnow
from shared.events import Event, InvalidEvent

# Ids the alert table keeps in 36 characters (UUIDs).
ID_LENGTH = 36


@dataclass(frozen=True)
class Timing:
    """The clock alerts are stamped with and the schedule of the daily digest. Injected, so that the worker
    and the tests decide what time it is."""

    clock: Clock = utcnow
    digest: domain.DigestSchedule = field(default_factory=domain.DigestSchedule)


DEFAULT_TIMING = Timing()


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
    timing: Timing = DEFAULT_TIMING,
) -> str | None:
    """Store one alert per (type, subject, episode) and queue its deliveries; None when it exists."""
    tenant, data = event.tenant, event.data
    if store.alert_exists(session, tenant, alert_type, subject, episode):
        return None
    alert_id = str(uuid.uuid4())
    now = timing.clock()
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
            "created_at": now,
        },
    )
    _queue_deliveries(session, tenant, alert_id, data["jobcoach_id"], now, timing)
    metrics.ALERTS_CREATED.labels(tenant, alert_type).inc()
    # Latency is real time from the source event, whatever the injected clock says.
    metrics.ALERT_LATENCY.observe(max((utcnow() - event.time).total_seconds(), 0.0))
    return alert_id


def _queue_deliveries(
    session: Session, tenant: str, alert_id: str, jobcoach_id: str, now: datetime, timing: Timing
) -> None:
    channels = store.get_channels(session, tenant, jobcoach_id)
    if not channels:
        return
    if channels["webhook_url"]:
        store.add_delivery(session, tenant, alert_id, domain.WEBHOOK, now)
    if channels["email"]:
        if channels["digest"]:
            store.add_delivery(session, tenant, alert_id, domain.DIGEST, timing.digest.next_after(now))
        else:
            store.add_delivery(session, tenant, alert_id, domain.EMAIL, now)


def _require_ids(event: Event, *ids: str) -> None:
    # Checked here rather than left to the database: SQLite would store a longer id, PostgreSQL would refuse
    # it on every retry; either way the event belongs in dead-letters.
    for value in ids:
        if not value or len(value) > ID_LENGTH:
            raise InvalidEvent(f"{event.type}: an id is empty or longer than {ID_LENGTH} characters")


def on_match_proposed(session: Session, event: Event, timing: Timing = DEFAULT_TIMING) -> None:
    data = event.data
    create_alert(
        session,
        event,
        alert_type="match_proposed",
        subject=f"{data['vacancy_id']}:{data['candidate_id']}",
        episode=1,
        message=domain.match_message(data["vacancy_title"], data["score"]),
        details={"score": data["score"], "explanation": data["explanation"], "ranking": data["ranking_version"]},
        timing=timing,
    )


def on_placement_at_risk(session: Session, event: Event, timing: Timing = DEFAULT_TIMING) -> None:
    data = event.data
    _require_ids(event, event.subject, data["candidate_id"], data["vacancy_id"])
    create_alert(
        session,
        event,
        alert_type="placement_at_risk",
        subject=event.subject,
        episode=data["episode"],
        message=domain.at_risk_message(data["score"]),
        details={
            "score": data["score"],
            "reasons": data["reasons"],
            "episode": data["episode"],
            "model_version": data["model_version"],
        },
        placement_id=event.subject,
        timing=timing,
    )


def on_checkin_overdue(session: Session, event: Event, timing: Timing = DEFAULT_TIMING) -> None:
    data = event.data
    _require_ids(event, event.subject, data["candidate_id"], data["vacancy_id"])
    last_checkin = data["last_checkin"]
    create_alert(
        session,
        event,
        alert_type="checkin_overdue",
        subject=event.subject,
        episode=data["episode"],
        message=domain.checkin_overdue_message(data["due_since"]),
        details={
            "due_since": data["due_since"].isoformat(),
            "last_checkin": last_checkin.isoformat() if last_checkin else None,
            "episode": data["episode"],
        },
        placement_id=event.subject,
        timing=timing,
    )


def on_candidate_erased(session: Session, event: Event) -> None:
    store.erase_candidate(session, event.tenant, event.subject)


def on_candidate_tombstone(session: Session, tenant: str, candidate_id: str) -> None:
    store.erase_candidate(session, tenant, candidate_id)
