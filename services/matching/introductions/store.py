"""Introductions' tables: an employer's interest in an anonymous profile and the candidate's answer, and the
read model of jobcoaches' work e-mail addresses. Every query takes the tenant."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.matching.outbox import outbox
from shared.db import UtcDateTime, affected_rows, utcnow
from shared.events import message_key

metadata = sa.MetaData()

introductions = sa.Table(
    "introductions",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("vacancy_id", sa.String(36), nullable=False),
    sa.Column("candidate_id", sa.String(36), nullable=False),
    # The candidate's jobcoach now: follows a handover, so that only the new jobcoach answers.
    sa.Column("jobcoach_id", sa.String(100), nullable=False),
    sa.Column("employer_id", sa.String(100), nullable=False),
    sa.Column("profile_ref", sa.String(32), nullable=False),
    sa.Column("vacancy_title", sa.String(200), nullable=True),
    # pending, accepted, declined, or cancelled (the candidate withdrew sharing with employers).
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("answered_at", UtcDateTime, nullable=True),
    sa.Column("answered_by", sa.String(100), nullable=True),
    sa.Index("ix_introductions_jobcoach", "tenant", "jobcoach_id", "created_at"),
    sa.Index("ix_introductions_employer", "tenant", "employer_id", "created_at"),
    sa.Index("ix_introductions_candidate", "tenant", "candidate_id"),
    # The check in the command answers the usual case with a clear 409; this settles two at one instant.
    sa.Index(
        "uq_introductions_one_pending",
        "tenant",
        "vacancy_id",
        "candidate_id",
        unique=True,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    ),
)

# What the notification service told of each jobcoach's work e-mail: how an employer reaches the jobcoach
# after an accepted introduction. A professional's address, never a candidate's.
jobcoach_channels = sa.Table(
    "jobcoach_work_email",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("jobcoach_id", sa.String(100), primary_key=True),
    sa.Column("work_email", sa.String(320), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)


def insert(session: Session, tenant: str, values: dict) -> None:
    session.execute(introductions.insert().values(tenant=tenant, status="pending", **values))


def get(session: Session, tenant: str, introduction_id: str, *, for_update: bool = False) -> dict | None:
    query = sa.select(introductions).where(introductions.c.tenant == tenant, introductions.c.id == introduction_id)
    if for_update:
        query = query.with_for_update()
    row = session.execute(query).mappings().first()
    return dict(row) if row else None


def pending_exists(session: Session, tenant: str, vacancy_id: str, candidate_id: str) -> bool:
    query = sa.select(introductions.c.id).where(
        introductions.c.tenant == tenant,
        introductions.c.vacancy_id == vacancy_id,
        introductions.c.candidate_id == candidate_id,
        introductions.c.status == "pending",
    )
    return session.execute(query).first() is not None


def answer(session: Session, tenant: str, introduction_id: str, status: str, by: str, at: datetime) -> bool:
    """Record the answer unless one was recorded already; True when this call recorded it."""
    updated = session.execute(
        introductions.update()
        .where(
            introductions.c.tenant == tenant,
            introductions.c.id == introduction_id,
            introductions.c.status == "pending",
        )
        .values(status=status, answered_at=at, answered_by=by)
    )
    return affected_rows(updated) == 1


def listed(
    session: Session,
    tenant: str,
    *,
    jobcoach_id: str | None = None,
    employer_id: str | None = None,
    vacancy_id: str | None = None,
    offset: int,
    limit: int,
) -> tuple[list[dict], int]:
    """Introductions newest first (id breaks ties), filtered by whoever asks; and how many in all."""
    where = [introductions.c.tenant == tenant]
    if jobcoach_id is not None:
        where.append(introductions.c.jobcoach_id == jobcoach_id)
    if employer_id is not None:
        where.append(introductions.c.employer_id == employer_id)
    if vacancy_id is not None:
        where.append(introductions.c.vacancy_id == vacancy_id)
    total = session.execute(sa.select(sa.func.count()).select_from(introductions).where(*where)).scalar_one()
    rows = session.execute(
        sa.select(introductions)
        .where(*where)
        .order_by(introductions.c.created_at.desc(), introductions.c.id)
        .offset(offset)
        .limit(limit)
    ).mappings()
    return [dict(row) for row in rows], total


def follow_jobcoach(session: Session, tenant: str, candidate_id: str, jobcoach_id: str) -> None:
    session.execute(
        introductions.update()
        .where(
            introductions.c.tenant == tenant,
            introductions.c.candidate_id == candidate_id,
            introductions.c.jobcoach_id != jobcoach_id,
        )
        .values(jobcoach_id=jobcoach_id)
    )


def cancel_pending(session: Session, tenant: str, candidate_id: str, at: datetime) -> int:
    updated = session.execute(
        introductions.update()
        .where(
            introductions.c.tenant == tenant,
            introductions.c.candidate_id == candidate_id,
            introductions.c.status == "pending",
        )
        .values(status="cancelled", answered_at=at)
    )
    return affected_rows(updated)


def erase_candidate(session: Session, tenant: str, candidate_id: str) -> None:
    ids = list(
        session.execute(
            sa.select(introductions.c.id).where(
                introductions.c.tenant == tenant, introductions.c.candidate_id == candidate_id
            )
        ).scalars()
    )
    if not ids:
        return
    session.execute(introductions.delete().where(introductions.c.tenant == tenant, introductions.c.id.in_(ids)))
    # Introduction events are keyed by the introduction and name the candidate: unsent ones must not go out,
    # and sent ones are not kept.
    outbox.forget(session, [message_key(tenant, introduction_id) for introduction_id in ids])


def set_work_email(session: Session, tenant: str, jobcoach_id: str, work_email: str | None) -> None:
    where = (jobcoach_channels.c.tenant == tenant, jobcoach_channels.c.jobcoach_id == jobcoach_id)
    if not work_email:
        session.execute(jobcoach_channels.delete().where(*where))
        return
    updated = session.execute(
        jobcoach_channels.update().where(*where).values(work_email=work_email, updated_at=utcnow())
    )
    if not affected_rows(updated):
        session.execute(
            jobcoach_channels.insert().values(
                tenant=tenant, jobcoach_id=jobcoach_id, work_email=work_email, updated_at=utcnow()
            )
        )


def work_emails(session: Session, tenant: str, jobcoach_ids: set[str]) -> dict[str, str]:
    if not jobcoach_ids:
        return {}
    rows = session.execute(
        sa.select(jobcoach_channels.c.jobcoach_id, jobcoach_channels.c.work_email).where(
            jobcoach_channels.c.tenant == tenant, jobcoach_channels.c.jobcoach_id.in_(sorted(jobcoach_ids))
        )
    )
    return {row.jobcoach_id: row.work_email for row in rows}
