"""Event handlers of the notification service: plain functions turning the events it consumes into alerts,
and a candidate's handover into their alerts changing hands, listed by event type in the worker's handler
table (:func:`services.notification.worker.handler_table`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from services.notification import commands, domain, metrics, store
from shared import origin, tracing
from shared.clock import Clock
from shared.db import utcnow
from shared.events import Event, InvalidEvent

# Ids the alert table keeps in 36 characters (UUIDs); jobcoach ids (key subjects) in 100.
ID_LENGTH = 36
JOBCOACH_ID_LENGTH = 100


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
    audience: str = domain.JOBCOACH,
    timing: Timing = DEFAULT_TIMING,
) -> str | None:
    """Store one alert per (type, subject, episode), tell it and queue its deliveries; None when it exists.

    A jobcoach's alert goes to the candidate's jobcoach as the candidate events last named them, if they
    did: the event behind the alert may have left its producer before a handover. An operators' alert is
    about the event's jobcoach and has no deliveries (operators read their inbox)."""
    tenant, data = event.tenant, event.data
    candidate_id = data.get("candidate_id")
    if candidate_id is not None:
        # Waits for an erasure of the candidate under way; then an erased candidate gets no alert.
        store.hold_candidate(session, tenant, candidate_id)
        if store.candidate_erased(session, tenant, candidate_id):
            return None
    if store.alert_exists(session, tenant, alert_type, subject, episode):
        return None
    jobcoach_id = data["jobcoach_id"]
    # Only an alert about a candidate can have followed a handover.
    if audience == domain.JOBCOACH and candidate_id is not None:
        jobcoach_id = store.candidate_jobcoach(session, tenant, candidate_id) or jobcoach_id
    alert_id = str(uuid.uuid4())
    now = timing.clock()
    # The originating event's trace, kept for the webhook: the receiver joins the trace of the request
    # that set off the alert, however long the delivery waits.
    trace = tracing.parse(event.extensions.get(tracing.TRACEPARENT), event.extensions.get(tracing.TRACESTATE))
    commands.raise_alert(
        session,
        tenant,
        {
            "id": alert_id,
            "audience": audience,
            "jobcoach_id": jobcoach_id,
            "type": alert_type,
            "subject": subject,
            "episode": episode,
            "candidate_id": candidate_id,
            "vacancy_id": data.get("vacancy_id"),
            "placement_id": placement_id,
            "message": message,
            "details": details,
            "source_event_id": event.id,
            "created_at": now,
            tracing.TRACEPARENT: trace.traceparent if trace else None,
            tracing.TRACESTATE: trace.tracestate if trace else None,
        },
    )
    if audience == domain.JOBCOACH:
        _queue_deliveries(session, tenant, alert_id, jobcoach_id, now, timing)
    # Latency is real time, whatever the injected clock says: from the event consumed here, and from the
    # request or decision that set its chain off (a vacancy's POST, before its outbox, relay and matching).
    stored_at = utcnow()
    metrics.ALERT_LATENCY.observe(max((stored_at - event.time).total_seconds(), 0.0))
    metrics.ALERT_ORIGIN_LATENCY.observe(max((stored_at - origin.of(event)).total_seconds(), 0.0))
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


def _require_ids(event: Event, *ids: str | None, length: int = ID_LENGTH) -> None:
    # Checked here rather than left to the database: SQLite would store a longer id, PostgreSQL would refuse
    # it on every retry; either way the event belongs in dead-letters.
    for value in ids:
        if not value or len(value) > length:
            raise InvalidEvent(f"{event.type}: an id is empty or longer than {length} characters")


def _with_earlier_facts(details: dict, **facts) -> dict:
    """An alert's details plus whatever an event from before the facts left the topics still carries (a
    match's explanation, a risk's reasons): kept in the inbox, which erasure reaches, as they always were."""
    return {**details, **{name: value for name, value in facts.items() if value}}


def on_match_proposed(session: Session, event: Event, timing: Timing = DEFAULT_TIMING) -> None:
    data = event.data
    create_alert(
        session,
        event,
        alert_type=domain.MATCH_PROPOSED,
        subject=f"{data['vacancy_id']}:{data['candidate_id']}",
        episode=1,
        message=domain.match_message(data["vacancy_title"], data["score"]),
        details=_with_earlier_facts(
            {"score": data["score"], "ranking": data["ranking_version"]}, explanation=data["explanation"]
        ),
        timing=timing,
    )


def on_placement_at_risk(session: Session, event: Event, timing: Timing = DEFAULT_TIMING) -> None:
    data = event.data
    _require_ids(event, event.subject, data["candidate_id"], data["vacancy_id"])
    create_alert(
        session,
        event,
        alert_type=domain.AT_RISK,
        subject=event.subject,
        episode=data["episode"],
        message=domain.at_risk_message(data["score"]),
        details=_with_earlier_facts(
            {"score": data["score"], "episode": data["episode"], "model_version": data["model_version"]},
            reasons=data["reasons"],
        ),
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
        alert_type=domain.CHECKIN_OVERDUE,
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


def on_candidate_out_of_sight(session: Session, event: Event, timing: Timing = DEFAULT_TIMING) -> None:
    """No contact with the candidate for the region's ``contact_days``: once per gap (episode)."""
    data = event.data
    _require_ids(event, data["candidate_id"])
    create_alert(
        session,
        event,
        alert_type=domain.OUT_OF_SIGHT,
        subject=data["candidate_id"],
        episode=data["episode"],
        message=domain.out_of_sight_message(data["last_contact"], timing.clock().date(), data["contact_days"]),
        details={
            "last_contact": data["last_contact"].isoformat(),
            "contact_days": data["contact_days"],
            "episode": data["episode"],
        },
        timing=timing,
    )


def on_introduction_requested(session: Session, event: Event, timing: Timing = DEFAULT_TIMING) -> None:
    """An employer's interest in the candidate's anonymous profile. The alert names the vacancy and carries
    the introduction's id, which the jobcoach answers at matching (accept or decline); the employer's id
    stays out of it, since the jobcoach answers the introduction, not a person."""
    data = event.data
    _require_ids(event, event.subject, data["candidate_id"], data["vacancy_id"])
    create_alert(
        session,
        event,
        alert_type=domain.EMPLOYER_INTEREST,
        subject=event.subject,
        episode=1,
        message=domain.employer_interest_message(data["vacancy_title"]),
        details={"introduction_id": event.subject, "vacancy_title": data["vacancy_title"]},
        timing=timing,
    )


def on_caseload_over_limit(session: Session, event: Event, timing: Timing = DEFAULT_TIMING) -> None:
    """A jobcoach's caseload passed the region's limit: the region's operators hear of it, once per episode
    (matching starts a new one only after the caseload fell back under the limit)."""
    data = event.data
    _require_ids(event, data["jobcoach_id"], length=JOBCOACH_ID_LENGTH)
    create_alert(
        session,
        event,
        alert_type=domain.CASELOAD_OVER_LIMIT,
        subject=data["jobcoach_id"],
        episode=data["episode"],
        message=domain.caseload_message(data["jobcoach_id"], data["caseload"], data["caseload_limit"]),
        details={
            "jobcoach_id": data["jobcoach_id"],
            "caseload": data["caseload"],
            "caseload_limit": data["caseload_limit"],
            "episode": data["episode"],
        },
        audience=domain.OPERATORS,
        timing=timing,
    )


def on_candidate_profile(session: Session, event: Event, timing: Timing = DEFAULT_TIMING) -> None:
    """A candidate registered or changed: remember their jobcoach and, after a handover, hand every alert about
    them to the new jobcoach, acknowledged ones too, so that the old jobcoach loses sight of the candidate.
    The open ones' deliveries start again on the new jobcoach's channels; the acknowledged ones need none."""
    tenant, candidate_id, jobcoach_id = event.tenant, event.subject, event.data["jobcoach_id"]
    _require_ids(event, candidate_id)
    now = timing.clock()
    store.set_candidate_jobcoach(session, tenant, candidate_id, jobcoach_id, now)
    for alert in store.move_candidate_alerts(session, tenant, candidate_id, jobcoach_id):
        if alert["acknowledged_at"] is None:
            _queue_deliveries(session, tenant, alert["id"], jobcoach_id, now, timing)


def on_candidate_erased(session: Session, event: Event) -> None:
    store.erase_candidate(session, event.tenant, event.subject)


def on_candidate_tombstone(session: Session, tenant: str, candidate_id: str) -> None:
    store.erase_candidate(session, tenant, candidate_id)
