"""Commands of the notification service: what the API asks (acknowledgements) and what the escalation loop
asks (escalations). Each stores its change, and any event about it, in one transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from services.notification import domain, metrics, store
from shared.events import EventType, new_event

SOURCE = "notification"
# The alert types the acknowledged event's schema knows; an operator's acknowledgement of an escalation is
# not a jobcoach's reaction time, so insights do not hear of it.
ACKNOWLEDGED_EVENT_TYPES = ("match_proposed", "placement_at_risk", "checkin_overdue")


def acknowledge(session: Session, tenant: str, jobcoach_id: str, alert_id: str, now: datetime) -> dict | None:
    """The jobcoach acknowledges one of their alerts; the first time also tells the region's insights, in the
    same transaction. None when the alert is not theirs."""
    alert = store.get_alert(session, tenant, jobcoach_id, alert_id)
    if alert is None:
        return None
    if store.acknowledge_alert(session, tenant, alert_id, now) and alert["type"] in ACKNOWLEDGED_EVENT_TYPES:
        data = {
            "alert_type": alert["type"],
            "candidate_id": alert["candidate_id"],
            "created_at": alert["created_at"].isoformat(),
            "acknowledged_at": now.isoformat(),
        }
        store.outbox.add(
            session,
            new_event(EventType.ALERT_ACKNOWLEDGED, tenant=tenant, subject=alert_id, data=data, source=SOURCE),
        )
    return store.get_alert(session, tenant, jobcoach_id, alert_id)


def acknowledge_operator_alert(session: Session, tenant: str, alert_id: str, now: datetime) -> dict | None:
    if store.get_operator_alert(session, tenant, alert_id) is None:
        return None
    store.acknowledge_alert(session, tenant, alert_id, now)
    return store.get_operator_alert(session, tenant, alert_id)


def escalate(session: Session, tenant: str, original: dict, hours: int, now: datetime) -> str | None:
    """Put an unacknowledged at-risk alert in the region's operators' inbox, once; None when it already was
    (or was acknowledged meanwhile)."""
    if not store.mark_escalated(session, tenant, original["id"], now):
        return None
    # The unique (type, subject, episode) is the last guard: the subject of an escalation is the alert it
    # escalates, so a second one cannot be stored even if the claim above were bypassed.
    if store.alert_exists(session, tenant, domain.ESCALATED_RISK, original["id"], 1):
        return None
    alert_id = str(uuid.uuid4())
    store.insert_alert(
        session,
        tenant,
        {
            "id": alert_id,
            "audience": domain.OPERATORS,
            "jobcoach_id": original["jobcoach_id"],
            "type": domain.ESCALATED_RISK,
            "subject": original["id"],
            "episode": 1,
            "candidate_id": original["candidate_id"],
            "vacancy_id": original["vacancy_id"],
            "placement_id": original["placement_id"],
            "message": domain.escalation_message(hours),
            "details": {
                "alert_id": original["id"],
                "jobcoach_id": original["jobcoach_id"],
                "alert_created_at": original["created_at"].isoformat(),
                "escalation_hours": hours,
            },
            "source_event_id": original["source_event_id"],
            "created_at": now,
        },
    )
    metrics.ALERTS_CREATED.labels(tenant, domain.ESCALATED_RISK).inc()
    return alert_id
