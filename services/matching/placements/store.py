"""Placements' tables: placements, their check-ins, risk models and the anonymous rows behind the
insights. Every query takes the tenant."""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.matching.outbox import outbox
from services.matching.versioned_models import VersionedModels, versioned_models_table
from shared.db import UtcDateTime, affected_rows, utcnow
from shared.events import message_key

metadata = sa.MetaData()

placements = sa.Table(
    "placements",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("candidate_id", sa.String(36), nullable=False),
    sa.Column("vacancy_id", sa.String(36), nullable=False),
    sa.Column("jobcoach_id", sa.String(100), nullable=False),
    sa.Column("start_date", sa.Date, nullable=False),
    sa.Column("agreed_hours", sa.Integer, nullable=False),
    sa.Column("supports_agreed", sa.JSON, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("end_date", sa.Date, nullable=True),
    sa.Column("outcome", sa.String(30), nullable=True),
    sa.Column("end_reason", sa.String(500), nullable=True),
    sa.Column("checkin_count", sa.Integer, nullable=False, default=0),
    sa.Column("last_checkin", sa.Date, nullable=True),
    # Risk as of the last check-in; the features are kept so that an ended placement can train a model.
    sa.Column("risk_score", sa.Float, nullable=True),
    sa.Column("risk_reasons", sa.JSON, nullable=True),
    sa.Column("risk_features", sa.JSON, nullable=True),
    sa.Column("risk_model_version", sa.String(80), nullable=True),
    sa.Column("risk_scored_at", UtcDateTime, nullable=True),
    # Hysteresis state: inside an at-risk episode or not, and how many episodes there have been.
    sa.Column("at_risk", sa.Boolean, nullable=False, default=False),
    sa.Column("risk_episode", sa.Integer, nullable=False, default=0),
    # The gap (named by the date it started from) already reported overdue, so each gap is reported once.
    sa.Column("overdue_since", sa.Date, nullable=True),
    sa.Column("overdue_episode", sa.Integer, nullable=False, default=0),
    # The path up the ladder: what the person means to learn, until when, and who stands beside them.
    sa.Column("learning_goals", sa.JSON, nullable=True),
    sa.Column("planned_end_date", sa.Date, nullable=True),
    sa.Column("supervisor_arranged", sa.Boolean, nullable=True),
    sa.Column("buddy_arranged", sa.Boolean, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # Counts every change: the ETag is made from it, and a conditional change names the version it read.
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Index("ix_placements_jobcoach", "tenant", "jobcoach_id", "status", "created_at"),
    sa.Index("ix_placements_candidate", "tenant", "candidate_id"),
    sa.Index("ix_placements_status", "tenant", "status"),
    # The check in start_placement answers the usual case with a clear 409; this index settles two
    # requests that arrive at the same instant.
    sa.Index(
        "uq_placements_one_active",
        "tenant",
        "candidate_id",
        "vacancy_id",
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    ),
)

checkins = sa.Table(
    "checkins",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("placement_id", sa.String(36), nullable=False),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("wellbeing", sa.Integer, nullable=False),
    sa.Column("hours_worked", sa.Float, nullable=False),
    sa.Column("absence_days", sa.Integer, nullable=False),
    sa.Column("signals", sa.JSON, nullable=False),
    # {learning goal: 0 not yet .. 3 mastered}; goals are the placement's own.
    sa.Column("goal_progress", sa.JSON, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("tenant", "placement_id", "date", name="uq_checkins_one_per_day"),
)

# Trained risk models, as plain coefficients (never pickles): reviewable, portable, safe to load.
risk_models = VersionedModels(versioned_models_table("risk_models", metadata))

# What an ended placement teaches a model, with no id: it survives the candidate's erasure as a bare
# row of numbers that cannot be traced back to anyone.
risk_training_rows = sa.Table(
    "risk_training_rows",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(63), nullable=False),
    sa.Column("features", sa.JSON, nullable=False),
    sa.Column("broke_down", sa.Boolean, nullable=False),
    sa.Index("ix_risk_training_rows_tenant", "tenant"),
)

# Alerts this service raised and times to acknowledge the notification service reported: counts and
# durations only, no ids, which is all the insights need.
alert_log = sa.Table(
    "placement_alert_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(63), nullable=False),
    sa.Column("alert_type", sa.String(40), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Index("ix_placement_alert_log_tenant", "tenant", "alert_type"),
)

alert_acknowledgements = sa.Table(
    "alert_acknowledgements",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(63), nullable=False),
    sa.Column("alert_type", sa.String(40), nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Index("ix_alert_acknowledgements_tenant", "tenant", "alert_type"),
)


# --------------------------------------------------------------------------------------------------------
# Placements


def insert_placement(session: Session, tenant: str, values: dict) -> None:
    now = utcnow()
    session.execute(
        placements.insert().values(
            tenant=tenant,
            status="active",
            checkin_count=0,
            at_risk=False,
            risk_episode=0,
            overdue_episode=0,
            version=1,
            created_at=now,
            updated_at=now,
            **values,
        )
    )


def get_placement(session: Session, tenant: str, placement_id: str, *, for_update: bool = False) -> dict | None:
    query = sa.select(placements).where(placements.c.tenant == tenant, placements.c.id == placement_id)
    if for_update:
        # Serialises a check-in, an end and the scheduler on one placement (SQLite serialises anyway).
        query = query.with_for_update()
    row = session.execute(query).mappings().first()
    return dict(row) if row else None


def update_placement(session: Session, tenant: str, placement_id: str, values: dict) -> None:
    session.execute(
        placements.update()
        .where(placements.c.tenant == tenant, placements.c.id == placement_id)
        .values(**values, updated_at=utcnow(), version=placements.c.version + 1)
    )


def active_placement_exists(session: Session, tenant: str, candidate_id: str, vacancy_id: str) -> bool:
    query = sa.select(placements.c.id).where(
        placements.c.tenant == tenant,
        placements.c.candidate_id == candidate_id,
        placements.c.vacancy_id == vacancy_id,
        placements.c.status == "active",
    )
    return session.execute(query).first() is not None


def list_placements(
    session: Session, tenant: str, *, jobcoach_id: str | None, status: str | None, offset: int, limit: int
) -> tuple[list[dict], int]:
    where = [placements.c.tenant == tenant]
    if jobcoach_id is not None:
        where.append(placements.c.jobcoach_id == jobcoach_id)
    if status is not None:
        where.append(placements.c.status == status)
    total = session.execute(sa.select(sa.func.count()).select_from(placements).where(*where)).scalar_one()
    rows = session.execute(
        sa.select(placements)
        .where(*where)
        .order_by(placements.c.created_at.desc(), placements.c.id.desc())
        .offset(offset)
        .limit(limit)
    ).mappings()
    return [dict(row) for row in rows], total


class PlacementOutcome(NamedTuple):
    candidate_id: str
    vacancy_id: str
    start_date: date
    end_date: date | None
    outcome: str | None


def outcomes(session: Session, tenant: str) -> list[PlacementOutcome]:
    """Every placement of the tenant with how it ended, if it did."""
    rows = session.execute(
        sa.select(
            placements.c.candidate_id,
            placements.c.vacancy_id,
            placements.c.start_date,
            placements.c.end_date,
            placements.c.outcome,
        ).where(placements.c.tenant == tenant)
    )
    return [PlacementOutcome(*row) for row in rows]


def tenants_with_active_placements(session: Session) -> list[str]:
    query = sa.select(placements.c.tenant).where(placements.c.status == "active").distinct()
    return list(session.execute(query).scalars())


def possibly_overdue(session: Session, tenant: str, latest_gap_start: date) -> list[str]:
    """Active placements whose gap began on or before ``latest_gap_start`` and is not reported yet."""
    gap_start = sa.func.coalesce(placements.c.last_checkin, placements.c.start_date)
    query = sa.select(placements.c.id).where(
        placements.c.tenant == tenant,
        placements.c.status == "active",
        gap_start <= latest_gap_start,
        sa.or_(placements.c.overdue_since.is_(None), placements.c.overdue_since != gap_start),
    )
    return list(session.execute(query).scalars())


def mark_overdue(session: Session, tenant: str, placement_id: str, gap_start: date) -> int | None:
    """Record that the gap starting at ``gap_start`` was reported; the new episode number, or None when
    another replica (or an earlier scan) already reported it."""
    updated = session.execute(
        placements.update()
        .where(
            placements.c.tenant == tenant,
            placements.c.id == placement_id,
            placements.c.status == "active",
            sa.or_(placements.c.overdue_since.is_(None), placements.c.overdue_since != gap_start),
        )
        .values(
            overdue_since=gap_start,
            overdue_episode=placements.c.overdue_episode + 1,
            updated_at=utcnow(),
            version=placements.c.version + 1,
        )
    )
    if affected_rows(updated) != 1:
        return None
    return session.execute(
        sa.select(placements.c.overdue_episode).where(placements.c.tenant == tenant, placements.c.id == placement_id)
    ).scalar_one()


# --------------------------------------------------------------------------------------------------------
# Check-ins


def insert_checkin(session: Session, tenant: str, values: dict) -> None:
    session.execute(checkins.insert().values(tenant=tenant, created_at=utcnow(), **values))


def checkin_on(session: Session, tenant: str, placement_id: str, day: date) -> bool:
    query = sa.select(checkins.c.id).where(
        checkins.c.tenant == tenant, checkins.c.placement_id == placement_id, checkins.c.date == day
    )
    return session.execute(query).first() is not None


def checkins_of(session: Session, tenant: str, placement_id: str, limit: int | None = None) -> list[dict]:
    """A placement's check-ins, newest first."""
    query = (
        sa.select(checkins)
        .where(checkins.c.tenant == tenant, checkins.c.placement_id == placement_id)
        .order_by(checkins.c.date.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    return [dict(row) for row in session.execute(query).mappings()]


def reassign_jobcoach(session: Session, tenant: str, candidate_id: str, jobcoach_id: str) -> None:
    session.execute(
        placements.update()
        .where(
            placements.c.tenant == tenant,
            placements.c.candidate_id == candidate_id,
            placements.c.jobcoach_id != jobcoach_id,
        )
        .values(jobcoach_id=jobcoach_id, updated_at=utcnow(), version=placements.c.version + 1)
    )


# --------------------------------------------------------------------------------------------------------
# Erasure


def erase_candidate_placements(session: Session, tenant: str, candidate_id: str) -> None:
    placement_ids = list(
        session.execute(
            sa.select(placements.c.id).where(placements.c.tenant == tenant, placements.c.candidate_id == candidate_id)
        ).scalars()
    )
    if not placement_ids:
        return
    session.execute(checkins.delete().where(checkins.c.tenant == tenant, checkins.c.placement_id.in_(placement_ids)))
    session.execute(placements.delete().where(placements.c.tenant == tenant, placements.c.id.in_(placement_ids)))
    # Placement events are keyed by the placement and name the candidate: unsent ones must not go out, and
    # sent ones are not kept.
    outbox.forget(session, [message_key(tenant, placement_id) for placement_id in placement_ids])


# --------------------------------------------------------------------------------------------------------
# Risk models and training rows


def add_training_row(session: Session, tenant: str, features: dict, broke_down: bool) -> None:
    session.execute(risk_training_rows.insert().values(tenant=tenant, features=features, broke_down=broke_down))


def training_rows(session: Session, tenant: str) -> list[tuple[dict, bool]]:
    rows = session.execute(
        sa.select(risk_training_rows.c.features, risk_training_rows.c.broke_down)
        .where(risk_training_rows.c.tenant == tenant)
        .order_by(risk_training_rows.c.id)
    )
    return [(row.features, row.broke_down) for row in rows]


# --------------------------------------------------------------------------------------------------------
# Alerts, for the insights


def log_alert(session: Session, tenant: str, alert_type: str) -> None:
    session.execute(alert_log.insert().values(tenant=tenant, alert_type=alert_type, created_at=utcnow()))


def record_acknowledgement(session: Session, tenant: str, alert_type: str, seconds: float) -> None:
    session.execute(alert_acknowledgements.insert().values(tenant=tenant, alert_type=alert_type, seconds=seconds))
