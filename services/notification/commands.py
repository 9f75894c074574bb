"""Commands of the notification service: what the API asks (acknowledgements, channels), what the escalation
loop asks (escalations), and raising an alert, which the event handlers ask too. Each stores its change, and
the event about it, in one transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from services.notification import domain, metrics, store
from shared.events import EventType, new_event

SOURCE = "notification"


def _publish(session: Session, event_type: str, tenant: str, subject: str, data: dict) -> None:
    store.outbox.add(session, new_event(event_type, tenant=tenant, subject=subject, data=data, source=SOURCE))


def raise_alert(session: Session, tenant: str, values: dict) -> None:
    """Store a new alert and tell it (``alert.raised``) in the same transaction, so that the caseload's count
    of open alerts is never ahead of or behind the inboxes. ``values`` hold every column but the tenant."""
    store.insert_alert(session, tenant, values)
    data = {
        "alert_type": values["type"],
        "candidate_id": values.get("candidate_id"),
        "jobcoach_id": values["jobcoach_id"],
        "created_at": values["created_at"].isoformat(),
    }
    _publish(session, EventType.ALERT_RAISED, tenant, values["id"], data)
    metrics.count_alert_created(tenant, values["type"])


def _tell_acknowledged(session: Session, tenant: str, alert: dict, jobcoach_id: str, now: datetime) -> None:
    # Every acknowledgement is told, whoever's inbox it was in: the alert type says which (the operators'
    # types are in domain.OPERATOR_ALERT_TYPES), and each consumer keeps what it needs. Insights time the
    # jobcoaches' reactions to the three original types; the caseload counts a jobcoach's as contact.
    data = {
        "alert_type": alert["type"],
        "candidate_id": alert["candidate_id"],
        "created_at": alert["created_at"].isoformat(),
        "acknowledged_at": now.isoformat(),
        "alert_id": alert["id"],
        "jobcoach_id": jobcoach_id,
    }
    _publish(session, EventType.ALERT_ACKNOWLEDGED, tenant, alert["id"], data)


def acknowledge(session: Session, tenant: str, jobcoach_id: str, alert_id: str, now: datetime) -> dict | None:
    """The jobcoach acknowledges one of their alerts; the first time is also told, in the same transaction.
    None when the alert is not theirs."""
    alert = store.get_alert(session, tenant, jobcoach_id, alert_id)
    if alert is None:
        return None
    if store.acknowledge_alert(session, tenant, alert_id, now):
        _tell_acknowledged(session, tenant, alert, jobcoach_id, now)
    return store.get_alert(session, tenant, jobcoach_id, alert_id)


def acknowledge_operator_alert(session: Session, tenant: str, alert_id: str, now: datetime) -> dict | None:
    """An operator acknowledges an alert of the region's operators' inbox, once. The event names the jobcoach
    the alert is about; its operators' type tells consumers that this was no jobcoach's contact."""
    alert = store.get_operator_alert(session, tenant, alert_id)
    if alert is None:
        return None
    # The acknowledged event's contract demands a candidate: an alert about a caseload, which has none, is
    # not told (it is nobody's contact with a candidate either).
    if store.acknowledge_alert(session, tenant, alert_id, now) and alert["candidate_id"] is not None:
        jobcoach_id = store.alert_jobcoach(session, tenant, alert_id)
        assert jobcoach_id is not None, "acknowledged just now, in this transaction, and every alert names a jobcoach"
        _tell_acknowledged(session, tenant, alert, jobcoach_id, now)
    return store.get_operator_alert(session, tenant, alert_id)


def escalate(session: Session, tenant: str, original: dict, hours: int, now: datetime) -> str | None:
    """Put an unacknowledged at-risk or check-in-overdue alert in the region's operators' inbox, once; None
    when it already was (or was acknowledged meanwhile)."""
    escalated_type = domain.ESCALATES_TO[original["type"]]
    if not store.mark_escalated(session, tenant, original["id"], now):
        return None
    # The unique (type, subject, episode) is the last guard: the subject of an escalation is the alert it
    # escalates, so a second one cannot be stored even if the claim above were bypassed.
    if store.alert_exists(session, tenant, escalated_type, original["id"], 1):
        return None
    alert_id = str(uuid.uuid4())
    raise_alert(
        session,
        tenant,
        {
            "id": alert_id,
            "audience": domain.OPERATORS,
            "jobcoach_id": original["jobcoach_id"],
            "type": escalated_type,
            "subject": original["id"],
            "episode": 1,
            "candidate_id": original["candidate_id"],
            "vacancy_id": original["vacancy_id"],
            "placement_id": original["placement_id"],
            "message": domain.escalation_message(hours, original["type"]),
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
    return alert_id


def set_channels(
    session: Session, tenant: str, jobcoach_id: str, channels: dict, expected_version: int | None = None
) -> dict:
    """Set the jobcoach's channels and tell their work e-mail (or that there is none): after an accepted
    introduction it is how the employer reaches the jobcoach. The webhook never travels. With
    ``expected_version`` (from If-Match), only if they are still at that version."""
    before = store.get_channels(session, tenant, jobcoach_id)
    if before is not None and before["webhook_secret"] and before["webhook_secret"] == channels.get("webhook_secret"):
        # Setting the channels again with the same secret (to change the e-mail, say) leaves a rotation's
        # previous secret in place; a new secret replaces both at once.
        channels = {
            **channels,
            "webhook_secret_previous": before["webhook_secret_previous"],
            "webhook_secret_previous_until": before["webhook_secret_previous_until"],
        }
    row = store.put_channels(session, tenant, jobcoach_id, channels, expected_version)
    data = {"jobcoach_id": jobcoach_id, "work_email": row["email"]}
    _publish(session, EventType.JOBCOACH_CHANNELS_CHANGED, tenant, jobcoach_id, data)
    return row


class SameSecret(Exception):
    """A rotation to the secret already in use would leave nothing to rotate from."""


def rotate_webhook_secret(
    session: Session, tenant: str, jobcoach_id: str, secret: str, previous_until: datetime
) -> dict | None:
    """Sign with ``secret`` from now on, and with the secret it replaces as well until ``previous_until``;
    None when the jobcoach has no webhook."""
    before = store.get_channels(session, tenant, jobcoach_id)
    if before is None or not before["webhook_url"]:
        return None
    if before["webhook_secret"] == secret:
        raise SameSecret
    return store.rotate_webhook_secret(session, tenant, jobcoach_id, secret, previous_until)
