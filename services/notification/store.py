"""The notification service's tables and queries. Every query takes the tenant, so none can forget it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.consumer import processed_events_table
from shared.db import UtcDateTime, utcnow

MIGRATIONS = Path(__file__).with_name("migrations")

metadata = sa.MetaData()

processed_events = processed_events_table(metadata)

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
    sa.Column("candidate_id", sa.String(36), nullable=False),
    sa.Column("vacancy_id", sa.String(36), nullable=True),
    sa.Column("placement_id", sa.String(36), nullable=True),
    sa.Column("message", sa.String(500), nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("source_event_id", sa.String(36), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("acknowledged_at", UtcDateTime, nullable=True),
    sa.UniqueConstraint("tenant", "type", "subject", "episode", name="uq_alerts_once_per_episode"),
    sa.Index("ix_alerts_inbox", "tenant", "jobcoach_id", "created_at"),
    sa.Index("ix_alerts_candidate", "tenant", "candidate_id"),
)

channels = sa.Table(
    "channels",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("jobcoach_id", sa.String(100), primary_key=True),
    sa.Column("webhook_url", sa.String(2000), nullable=True),
    # Needed in clear to sign with; never answered by the API.
    sa.Column("webhook_secret", sa.String(200), nullable=True),
    sa.Column("email", sa.String(254), nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

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
)


def alert_exists(session: Session, tenant: str, alert_type: str, subject: str, episode: int) -> bool:
    query = sa.select(alerts.c.id).where(
        alerts.c.tenant == tenant, alerts.c.type == alert_type, alerts.c.subject == subject, alerts.c.episode == episode
    )
    return session.execute(query).first() is not None


def insert_alert(session: Session, tenant: str, values: dict) -> None:
    session.execute(alerts.insert().values(tenant=tenant, created_at=utcnow(), **values))


def get_channels(session: Session, tenant: str, jobcoach_id: str) -> dict | None:
    row = session.execute(
        sa.select(channels).where(channels.c.tenant == tenant, channels.c.jobcoach_id == jobcoach_id)
    ).first()
    return row._asdict() if row else None


def put_channels(session: Session, tenant: str, jobcoach_id: str, values: dict) -> dict:
    session.execute(channels.delete().where(channels.c.tenant == tenant, channels.c.jobcoach_id == jobcoach_id))
    session.execute(channels.insert().values(tenant=tenant, jobcoach_id=jobcoach_id, updated_at=utcnow(), **values))
    return get_channels(session, tenant, jobcoach_id)


def add_delivery(session: Session, tenant: str, alert_id: str, channel: str, due: datetime) -> None:
    session.execute(
        deliveries.insert().values(
            tenant=tenant, alert_id=alert_id, channel=channel, status="pending", attempts=0, next_attempt_at=due
        )
    )


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
    conditions = [alerts.c.tenant == tenant, alerts.c.jobcoach_id == jobcoach_id]
    if unread is True:
        conditions.append(alerts.c.acknowledged_at.is_(None))
    elif unread is False:
        conditions.append(alerts.c.acknowledged_at.is_not(None))
    if alert_type is not None:
        conditions.append(alerts.c.type == alert_type)
    total = session.execute(sa.select(sa.func.count()).select_from(alerts).where(*conditions)).scalar_one()
    rows = session.execute(
        sa.select(*ALERT_COLUMNS)
        .where(*conditions)
        .order_by(alerts.c.created_at.desc(), alerts.c.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return [row._asdict() for row in rows], total


def get_alert(session: Session, tenant: str, jobcoach_id: str, alert_id: str) -> dict | None:
    row = session.execute(
        sa.select(*ALERT_COLUMNS).where(
            alerts.c.tenant == tenant, alerts.c.jobcoach_id == jobcoach_id, alerts.c.id == alert_id
        )
    ).first()
    return row._asdict() if row else None


def acknowledge_alert(session: Session, tenant: str, alert_id: str) -> None:
    session.execute(
        alerts.update()
        .where(alerts.c.tenant == tenant, alerts.c.id == alert_id, alerts.c.acknowledged_at.is_(None))
        .values(acknowledged_at=utcnow())
    )


def erase_candidate(session: Session, tenant: str, candidate_id: str) -> int:
    alert_ids = sa.select(alerts.c.id).where(alerts.c.tenant == tenant, alerts.c.candidate_id == candidate_id)
    session.execute(deliveries.delete().where(deliveries.c.alert_id.in_(alert_ids)))
    result = session.execute(alerts.delete().where(alerts.c.tenant == tenant, alerts.c.candidate_id == candidate_id))
    return result.rowcount or 0


def claim_due_deliveries(session: Session, now: datetime, lease_until: datetime, limit: int) -> list[dict]:
    """Due deliveries across tenants, leased so that another replica does not send them meanwhile."""
    query = (
        sa.select(deliveries.c.id)
        .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now)
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update(skip_locked=True)
    ids = list(session.execute(query).scalars())
    if not ids:
        return []
    session.execute(deliveries.update().where(deliveries.c.id.in_(ids)).values(next_attempt_at=lease_until))
    rows = session.execute(
        sa.select(
            deliveries.c.id,
            deliveries.c.tenant,
            deliveries.c.channel,
            deliveries.c.attempts,
            alerts.c.id.label("alert_id"),
            alerts.c.jobcoach_id,
        )
        .join(alerts, alerts.c.id == deliveries.c.alert_id)
        .where(deliveries.c.id.in_(ids))
    ).all()
    return [row._asdict() for row in rows]


def alert_for_delivery(session: Session, tenant: str, alert_id: str) -> dict | None:
    row = session.execute(sa.select(*ALERT_COLUMNS).where(alerts.c.tenant == tenant, alerts.c.id == alert_id)).first()
    return row._asdict() if row else None


def record_delivery(
    session: Session,
    delivery_id: int,
    *,
    status: str,
    attempts: int,
    next_attempt_at: datetime,
    error: str | None,
    delivered_at: datetime | None,
) -> None:
    session.execute(
        deliveries.update()
        .where(deliveries.c.id == delivery_id)
        .values(
            status=status,
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            last_error=error,
            delivered_at=delivered_at,
        )
    )


def delivery_states(session: Session, tenant: str, alert_id: str) -> list[dict]:
    rows = session.execute(
        sa.select(deliveries.c.channel, deliveries.c.status, deliveries.c.attempts, deliveries.c.last_error).where(
            deliveries.c.tenant == tenant, deliveries.c.alert_id == alert_id
        )
    ).all()
    return [row._asdict() for row in rows]
