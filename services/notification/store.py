"""The notification service's tables and queries. Every query takes the tenant, so none can forget it,
except the worker's few that look for due work across all regions (and say so)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.notification.domain import ESCALATES_TO, JOBCOACH, OPERATORS
from shared import tracing
from shared.audit import audit_table
from shared.consumer import processed_events_table
from shared.db import StaleVersion, UtcDateTime, affected_rows, utcnow
from shared.events import message_key
from shared.idempotency import idempotency_table
from shared.outbox import Outbox, outbox_table
from shared.ratelimit import rate_limit_table

MIGRATIONS = Path(__file__).with_name("migrations")

metadata = sa.MetaData()

processed_events = processed_events_table(metadata)

outbox = Outbox(outbox_table(metadata))
# The web layer's tables (shared.web): stored answers to Idempotency-Key requests, rate-limit counters.
idempotency_table(metadata)
rate_limit_table(metadata)
audit_log = audit_table(metadata)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(63), nullable=False),
    sa.Column("jobcoach_id", sa.String(100), nullable=False),
    sa.Column("type", sa.String(40), nullable=False),
    # What the alert is about and which episode of it: one alert per (type, subject, episode), however
    # often the event behind it is delivered.
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("episode", sa.Integer, nullable=False),
    # None only for an operators' alert about a jobcoach rather than a candidate (caseload over the limit).
    sa.Column("candidate_id", sa.String(36), nullable=True),
    sa.Column("vacancy_id", sa.String(36), nullable=True),
    sa.Column("placement_id", sa.String(36), nullable=True),
    sa.Column("message", sa.String(500), nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("source_event_id", sa.String(36), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("acknowledged_at", UtcDateTime, nullable=True),
    # "jobcoach": the inbox of `jobcoach_id`; "operators": the region's operators' inbox, where
    # `jobcoach_id` names the jobcoach the alert is about.
    sa.Column("audience", sa.String(20), nullable=False, server_default=JOBCOACH),
    # When an unacknowledged at-risk alert went to the operators; set once, in the escalation's transaction.
    sa.Column("escalated_at", UtcDateTime, nullable=True),
    # The W3C trace context of the event the alert came from, sent with its webhook so that the receiver
    # can join the trace; None for alerts stored before it was kept, and for events without one.
    sa.Column("traceparent", sa.String(55), nullable=True),
    sa.Column("tracestate", sa.String(tracing.MAX_TRACESTATE), nullable=True),
    sa.UniqueConstraint("tenant", "type", "subject", "episode", name="uq_alerts_once_per_episode"),
    sa.Index("ix_alerts_inbox", "tenant", "jobcoach_id", "created_at"),
    sa.Index("ix_alerts_candidate", "tenant", "candidate_id"),
    sa.Index("ix_alerts_escalation", "type", "escalated_at", "acknowledged_at", "created_at"),
)

channels = sa.Table(
    "channels",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("jobcoach_id", sa.String(100), primary_key=True),
    sa.Column("webhook_url", sa.String(2000), nullable=True),
    # Needed in clear to sign with; never answered by the API.
    sa.Column("webhook_secret", sa.String(200), nullable=True),
    # The secret a rotation replaced: deliveries are signed with it too until the time beside it, so that
    # the receiver can switch to the new one without refusing a delivery meanwhile.
    sa.Column("webhook_secret_previous", sa.String(200), nullable=True),
    sa.Column("webhook_secret_previous_until", UtcDateTime, nullable=True),
    sa.Column("email", sa.String(254), nullable=True),
    # E-mail only the daily digest instead of one mail per alert.
    sa.Column("digest", sa.Boolean, nullable=False, server_default=sa.false()),
    # Counts every change: the ETag is made from it, and a conditional change names the version it read.
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

# Whose candidate is whose, from the candidate events: all notification knows of a candidate. An alert goes
# to the jobcoach named here rather than the one in the event behind it, which may predate a handover.
candidate_jobcoaches = sa.Table(
    "candidate_jobcoaches",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("candidate_id", sa.String(36), primary_key=True),
    sa.Column("jobcoach_id", sa.String(100), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

# Erased candidates, by their pseudonymous id alone: an alert about one that arrives after the erasure (its
# event was already on its way) is dropped instead of stored.
erased_candidates = sa.Table(
    "erased_candidates",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("candidate_id", sa.String(36), primary_key=True),
)

# An arbitrary constant naming "one candidate's alerts" among PostgreSQL advisory locks.
_CANDIDATE_LOCK_CLASS = 0x416C7274

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alert_id", sa.String(36), sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("tenant", sa.String(63), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("last_error", sa.String(300), nullable=True),
    sa.Column("delivered_at", UtcDateTime, nullable=True),
    # Who is sending it now: set with the lease, and only the holder of the token may settle the outcome
    # or renew the lease, so that a replica whose lease ran out cannot overwrite another's result.
    sa.Column("claim_token", sa.String(36), nullable=True),
    sa.UniqueConstraint("alert_id", "channel", name="uq_deliveries_alert_channel"),
    sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
)

ALERT_COLUMNS = (
    alerts.c.id,
    alerts.c.type,
    alerts.c.created_at,
    alerts.c.acknowledged_at,
    alerts.c.candidate_id,
    alerts.c.vacancy_id,
    alerts.c.placement_id,
    alerts.c.message,
    alerts.c.details,
    alerts.c.escalated_at,
)


def alert_exists(session: Session, tenant: str, alert_type: str, subject: str, episode: int) -> bool:
    query = sa.select(alerts.c.id).where(
        alerts.c.tenant == tenant, alerts.c.type == alert_type, alerts.c.subject == subject, alerts.c.episode == episode
    )
    return session.execute(query).first() is not None


def insert_alert(session: Session, tenant: str, values: dict) -> None:
    session.execute(alerts.insert().values(tenant=tenant, **{"created_at": utcnow(), **values}))


def get_channels(session: Session, tenant: str, jobcoach_id: str) -> dict | None:
    row = session.execute(
        sa.select(channels).where(channels.c.tenant == tenant, channels.c.jobcoach_id == jobcoach_id)
    ).first()
    return row._asdict() if row else None


def put_channels(
    session: Session, tenant: str, jobcoach_id: str, values: dict, expected_version: int | None = None
) -> dict:
    """Replace the jobcoach's channels; with ``expected_version``, only if they are still at that version
    (else :class:`StaleVersion`, and nothing changed)."""
    where = [channels.c.tenant == tenant, channels.c.jobcoach_id == jobcoach_id]
    if expected_version is not None:
        where.append(channels.c.version == expected_version)
    replaced = session.execute(sa.delete(channels).where(*where).returning(channels.c.version)).scalar()
    if expected_version is not None and replaced is None:
        raise StaleVersion("channels")
    version = (replaced or 0) + 1
    session.execute(
        channels.insert().values(tenant=tenant, jobcoach_id=jobcoach_id, updated_at=utcnow(), version=version, **values)
    )
    row = get_channels(session, tenant, jobcoach_id)
    assert row is not None, "inserted in this transaction"
    return row


def rotate_webhook_secret(
    session: Session, tenant: str, jobcoach_id: str, secret: str, previous_until: datetime
) -> dict | None:
    """Make ``secret`` the webhook's secret and keep the one it replaces until ``previous_until``; None when
    the jobcoach has no webhook."""
    current = channels.c.webhook_secret
    result = session.execute(
        channels.update()
        .where(channels.c.tenant == tenant, channels.c.jobcoach_id == jobcoach_id, channels.c.webhook_url.is_not(None))
        .values(
            webhook_secret=secret,
            webhook_secret_previous=current,
            webhook_secret_previous_until=previous_until,
            updated_at=utcnow(),
            # A rotation is a change like any other: a PUT holding the tag read before it must not undo it.
            version=channels.c.version + 1,
        )
    )
    return get_channels(session, tenant, jobcoach_id) if affected_rows(result) else None


def add_delivery(session: Session, tenant: str, alert_id: str, channel: str, due: datetime) -> None:
    session.execute(
        deliveries.insert().values(
            tenant=tenant, alert_id=alert_id, channel=channel, status="pending", attempts=0, next_attempt_at=due
        )
    )


def _page(session: Session, tenant: str, conditions: list, offset: int, limit: int) -> tuple[list[dict], int]:
    total = session.execute(sa.select(sa.func.count()).select_from(alerts).where(*conditions)).scalar_one()
    rows = session.execute(
        sa.select(*ALERT_COLUMNS)
        .where(*conditions)
        .order_by(alerts.c.created_at.desc(), alerts.c.id)
        .offset(offset)
        .limit(limit)
    ).all()
    items = [row._asdict() for row in rows]
    return _with_deliveries(session, tenant, items), total


def _read_state(unread: bool | None) -> list:
    if unread is True:
        return [alerts.c.acknowledged_at.is_(None)]
    if unread is False:
        return [alerts.c.acknowledged_at.is_not(None)]
    return []


def list_alerts(
    session: Session,
    tenant: str,
    jobcoach_id: str,
    *,
    unread: bool | None,
    alert_type: str | None,
    offset: int,
    limit: int,
) -> tuple[list[dict], int]:
    conditions = [alerts.c.tenant == tenant, alerts.c.jobcoach_id == jobcoach_id, alerts.c.audience == JOBCOACH]
    conditions += _read_state(unread)
    if alert_type is not None:
        conditions.append(alerts.c.type == alert_type)
    return _page(session, tenant, conditions, offset, limit)


def list_operator_alerts(
    session: Session, tenant: str, *, unread: bool | None, alert_type: str | None = None, offset: int, limit: int
) -> tuple[list[dict], int]:
    conditions = [alerts.c.tenant == tenant, alerts.c.audience == OPERATORS, *_read_state(unread)]
    if alert_type is not None:
        conditions.append(alerts.c.type == alert_type)
    return _page(session, tenant, conditions, offset, limit)


def _one(session: Session, tenant: str, conditions: list) -> dict | None:
    row = session.execute(sa.select(*ALERT_COLUMNS).where(alerts.c.tenant == tenant, *conditions)).first()
    return _with_deliveries(session, tenant, [row._asdict()])[0] if row else None


def get_alert(session: Session, tenant: str, jobcoach_id: str, alert_id: str) -> dict | None:
    """One of the jobcoach's own alerts; an operators' alert about them is not theirs."""
    return _one(
        session, tenant, [alerts.c.jobcoach_id == jobcoach_id, alerts.c.audience == JOBCOACH, alerts.c.id == alert_id]
    )


def get_operator_alert(session: Session, tenant: str, alert_id: str) -> dict | None:
    return _one(session, tenant, [alerts.c.audience == OPERATORS, alerts.c.id == alert_id])


def alert_jobcoach(session: Session, tenant: str, alert_id: str) -> str | None:
    """Whose inbox the alert is in or, for an operators' alert, which jobcoach it is about."""
    query = sa.select(alerts.c.jobcoach_id).where(alerts.c.tenant == tenant, alerts.c.id == alert_id)
    return session.execute(query).scalar_one_or_none()


def acknowledge_alert(session: Session, tenant: str, alert_id: str, now: datetime) -> bool:
    """Acknowledge once; False when it was acknowledged before, so the first time stays."""
    result = session.execute(
        alerts.update()
        .where(alerts.c.tenant == tenant, alerts.c.id == alert_id, alerts.c.acknowledged_at.is_(None))
        .values(acknowledged_at=now)
    )
    return affected_rows(result) == 1


def hold_candidate(session: Session, tenant: str, candidate_id: str) -> None:
    """Until this transaction ends, no other transaction raises an alert about the candidate or erases them.
    On PostgreSQL an alert and an erasure of one candidate could otherwise overlap, and the erasure miss
    the alert committed after it looked; SQLite lets one writer in at a time anyway."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:lock_class, hashtext(:key))"),
            {"lock_class": _CANDIDATE_LOCK_CLASS, "key": message_key(tenant, candidate_id)},
        )


def candidate_erased(session: Session, tenant: str, candidate_id: str) -> bool:
    where = (erased_candidates.c.tenant == tenant, erased_candidates.c.candidate_id == candidate_id)
    return session.execute(sa.select(erased_candidates.c.candidate_id).where(*where)).first() is not None


def erase_candidate(session: Session, tenant: str, candidate_id: str) -> int:
    """Every alert about the candidate, their deliveries and the outbox rows about them (acknowledgements,
    dead letters), published or not; and their id kept, so that a late alert about them is dropped."""
    hold_candidate(session, tenant, candidate_id)
    if not candidate_erased(session, tenant, candidate_id):
        session.execute(erased_candidates.insert().values(tenant=tenant, candidate_id=candidate_id))
    alert_ids = list(
        session.execute(
            sa.select(alerts.c.id).where(alerts.c.tenant == tenant, alerts.c.candidate_id == candidate_id)
        ).scalars()
    )
    outbox.forget(session, [message_key(tenant, alert_id) for alert_id in alert_ids])
    session.execute(
        deliveries.delete().where(
            deliveries.c.alert_id.in_(
                sa.select(alerts.c.id).where(alerts.c.tenant == tenant, alerts.c.candidate_id == candidate_id)
            )
        )
    )
    result = session.execute(alerts.delete().where(alerts.c.tenant == tenant, alerts.c.candidate_id == candidate_id))
    session.execute(
        candidate_jobcoaches.delete().where(
            candidate_jobcoaches.c.tenant == tenant, candidate_jobcoaches.c.candidate_id == candidate_id
        )
    )
    return affected_rows(result)


def candidate_jobcoach(session: Session, tenant: str, candidate_id: str) -> str | None:
    """The candidate's jobcoach as the candidate events last said, or None when none has come yet."""
    query = sa.select(candidate_jobcoaches.c.jobcoach_id).where(
        candidate_jobcoaches.c.tenant == tenant, candidate_jobcoaches.c.candidate_id == candidate_id
    )
    return session.execute(query).scalar_one_or_none()


def set_candidate_jobcoach(session: Session, tenant: str, candidate_id: str, jobcoach_id: str, now: datetime) -> None:
    # One candidate's events come in order from one partition, so the last one written is the newest.
    updated = session.execute(
        candidate_jobcoaches.update()
        .where(candidate_jobcoaches.c.tenant == tenant, candidate_jobcoaches.c.candidate_id == candidate_id)
        .values(jobcoach_id=jobcoach_id, updated_at=now)
    )
    if affected_rows(updated) == 0:
        session.execute(
            candidate_jobcoaches.insert().values(
                tenant=tenant, candidate_id=candidate_id, jobcoach_id=jobcoach_id, updated_at=now
            )
        )


def move_candidate_alerts(session: Session, tenant: str, candidate_id: str, jobcoach_id: str) -> list[dict]:
    """Hand every jobcoach's alert about the candidate that another jobcoach holds, open or acknowledged,
    to ``jobcoach_id``, and drop those alerts' deliveries (they were meant for the other jobcoach's
    channels). Returns the moved alerts as ``{id, acknowledged_at}``; the caller queues the open ones'
    deliveries again for their new jobcoach. Operators' alerts about the candidate stay as they were."""
    conditions = (
        alerts.c.tenant == tenant,
        alerts.c.candidate_id == candidate_id,
        alerts.c.audience == JOBCOACH,
        alerts.c.jobcoach_id != jobcoach_id,
    )
    moved = [
        row._asdict()
        for row in session.execute(sa.select(alerts.c.id, alerts.c.acknowledged_at).where(*conditions)).all()
    ]
    ids = [alert["id"] for alert in moved]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        # A delivery being sent right now loses its row: its sender then finds nothing to settle.
        session.execute(deliveries.delete().where(deliveries.c.tenant == tenant, deliveries.c.alert_id.in_(chunk)))
        session.execute(
            alerts.update().where(alerts.c.tenant == tenant, alerts.c.id.in_(chunk)).values(jobcoach_id=jobcoach_id)
        )
    return moved


def due_deliveries(
    session: Session, now: datetime, limit: int, channel_names: Iterable[str], per_jobcoach: int
) -> list[dict]:
    """Across tenants: due deliveries of the given channels, oldest first, at most ``per_jobcoach`` of each
    jobcoach, so that one jobcoach's backlog cannot fill the window and hide every other's. Not claimed:
    :func:`claim_deliveries` takes the ones the caller chooses."""
    ranked = (
        sa.select(
            deliveries.c.id,
            deliveries.c.tenant,
            deliveries.c.channel,
            deliveries.c.attempts,
            deliveries.c.next_attempt_at,
            alerts.c.id.label("alert_id"),
            alerts.c.jobcoach_id,
            channels.c.webhook_url,
            sa.func.row_number()
            .over(
                partition_by=(deliveries.c.tenant, alerts.c.jobcoach_id),
                order_by=(deliveries.c.next_attempt_at, deliveries.c.id),
            )
            .label("rank"),
        )
        .join(alerts, alerts.c.id == deliveries.c.alert_id)
        .outerjoin(
            channels, (channels.c.tenant == deliveries.c.tenant) & (channels.c.jobcoach_id == alerts.c.jobcoach_id)
        )
        .where(
            deliveries.c.status == "pending",
            deliveries.c.next_attempt_at <= now,
            deliveries.c.channel.in_(list(channel_names)),
        )
        .subquery()
    )
    query = (
        sa.select(ranked)
        .where(ranked.c.rank <= per_jobcoach)
        .order_by(ranked.c.next_attempt_at, ranked.c.id)
        .limit(limit)
    )
    return [row._asdict() for row in session.execute(query).all()]


def claim_deliveries(session: Session, ids: list[int], now: datetime, lease_until: datetime, token: str) -> list[int]:
    """Lease the given deliveries to ``token`` if they are still due and unclaimed; the ids it got.

    The condition is checked again by the UPDATE itself: on PostgreSQL a replica that claims the same row
    at the same moment waits for this transaction and then finds the row no longer due; on SQLite writers
    queue. So each delivery is leased to one token at a time, without locking rows while selecting.
    """
    if not ids:
        return []
    session.execute(
        deliveries.update()
        .where(deliveries.c.id.in_(ids), deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now)
        .values(next_attempt_at=lease_until, claim_token=token)
    )
    query = sa.select(deliveries.c.id).where(deliveries.c.id.in_(ids), deliveries.c.claim_token == token)
    return list(session.execute(query).scalars())


def renew_claims(session: Session, ids: list[int], token: str, lease_until: datetime) -> list[int]:
    """Extend the lease of the deliveries ``token`` still holds; the ids it still holds."""
    if not ids:
        return []
    session.execute(
        deliveries.update()
        .where(deliveries.c.id.in_(ids), deliveries.c.claim_token == token, deliveries.c.status == "pending")
        .values(next_attempt_at=lease_until)
    )
    query = sa.select(deliveries.c.id).where(deliveries.c.id.in_(ids), deliveries.c.claim_token == token)
    return list(session.execute(query).scalars())


def alert_for_delivery(session: Session, tenant: str, alert_id: str) -> dict | None:
    """The alert as it is sent, with the trace context its webhook carries in headers (not in the body)."""
    query = sa.select(*ALERT_COLUMNS, alerts.c.traceparent, alerts.c.tracestate).where(
        alerts.c.tenant == tenant, alerts.c.id == alert_id
    )
    row = session.execute(query).first()
    return row._asdict() if row else None


def record_delivery(
    session: Session,
    delivery_id: int,
    *,
    token: str,
    status: str,
    attempts: int,
    next_attempt_at: datetime,
    error: str | None,
    delivered_at: datetime | None,
) -> bool:
    """Store an attempt's outcome if ``token`` still holds the delivery; False when it does not (its lease
    ran out and another replica took it over), and then nothing is written."""
    result = session.execute(
        deliveries.update()
        .where(deliveries.c.id == delivery_id, deliveries.c.claim_token == token)
        .values(
            status=status,
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            last_error=error,
            delivered_at=delivered_at,
            claim_token=None,
        )
    )
    return affected_rows(result) == 1


def _delivery_states(session: Session, tenant: str, alert_ids: Iterable[str]) -> dict[str, list[dict]]:
    ids = list(alert_ids)
    if not ids:
        return {}
    rows = session.execute(
        sa.select(
            deliveries.c.alert_id,
            deliveries.c.channel,
            deliveries.c.status,
            deliveries.c.attempts,
            deliveries.c.last_error,
        )
        .where(deliveries.c.tenant == tenant, deliveries.c.alert_id.in_(ids))
        .order_by(deliveries.c.alert_id, deliveries.c.channel)
    ).all()
    states: dict[str, list[dict]] = {}
    for row in rows:
        state = row._asdict()
        states.setdefault(state.pop("alert_id"), []).append(state)
    return states


def _with_deliveries(session: Session, tenant: str, items: list[dict]) -> list[dict]:
    states = _delivery_states(session, tenant, [item["id"] for item in items])
    return [{**item, "deliveries": states.get(item["id"], [])} for item in items]


def tenants_awaiting_escalation(session: Session) -> list[str]:
    """Across tenants: the regions holding alerts of an escalating type (at risk, check-in overdue) that
    nobody has acknowledged or escalated yet."""
    query = (
        sa.select(alerts.c.tenant)
        .where(
            alerts.c.type.in_(list(ESCALATES_TO)),
            alerts.c.escalated_at.is_(None),
            alerts.c.acknowledged_at.is_(None),
        )
        .distinct()
        .order_by(alerts.c.tenant)
    )
    return list(session.execute(query).scalars())


def due_escalations(session: Session, tenant: str, cutoff: datetime, limit: int) -> list[dict]:
    query = (
        sa.select(alerts)
        .where(
            alerts.c.tenant == tenant,
            alerts.c.type.in_(list(ESCALATES_TO)),
            alerts.c.escalated_at.is_(None),
            alerts.c.acknowledged_at.is_(None),
            alerts.c.created_at <= cutoff,
        )
        .order_by(alerts.c.created_at, alerts.c.id)
        .limit(limit)
    )
    return [row._asdict() for row in session.execute(query).all()]


def mark_escalated(session: Session, tenant: str, alert_id: str, now: datetime) -> bool:
    """Claim the escalation of one alert. Only one transaction can: on PostgreSQL a concurrent one waits for
    this row, then finds ``escalated_at`` set; on SQLite writers queue. An acknowledgement that got there
    first wins too."""
    result = session.execute(
        alerts.update()
        .where(
            alerts.c.tenant == tenant,
            alerts.c.id == alert_id,
            alerts.c.escalated_at.is_(None),
            alerts.c.acknowledged_at.is_(None),
        )
        .values(escalated_at=now)
    )
    return affected_rows(result) == 1
