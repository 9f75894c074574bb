"""The caseload's tables: each candidate's jobcoach and last contact, the alerts still open about them, and
each jobcoach's over-limit state. Every query takes the tenant.

Contact is kept as a Dutch calendar day: registration, a profile change, a check-in, an acknowledged alert.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.matching.placements import store as placements_store
from services.matching.ranking import store as ranking_store
from shared.db import UtcDateTime, affected_rows, utcnow

metadata = sa.MetaData()

caseload = sa.Table(
    "caseload",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("candidate_id", sa.String(36), primary_key=True),
    sa.Column("jobcoach_id", sa.String(100), nullable=False),
    sa.Column("last_contact", sa.Date, nullable=False),
    # The contact the current out-of-sight gap started from, once reported, so each gap is reported once.
    sa.Column("out_of_sight_since", sa.Date, nullable=True),
    sa.Column("out_of_sight_episode", sa.Integer, nullable=False, default=0),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index("ix_caseload_jobcoach", "tenant", "jobcoach_id", "last_contact"),
)

# Alerts raised about a candidate (or a jobcoach) and whether they were acknowledged, by the alert's id:
# an acknowledgement that arrives before its alert still closes it.
open_alerts = sa.Table(
    "caseload_alerts",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("alert_id", sa.String(64), primary_key=True),
    sa.Column("candidate_id", sa.String(36), nullable=True),
    sa.Column("is_open", sa.Boolean, nullable=False),
    sa.Index("ix_caseload_alerts_candidate", "tenant", "candidate_id"),
)

# Who was erased, by pseudonymous id only. Alerts travel on their own topic, so one about a candidate can
# arrive after the candidate's erasure (or before their registration, on a replay): only this list tells the
# two apart, so that a late alert does not bring a row about an erased person back.
erased = sa.Table(
    "caseload_erased",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("candidate_id", sa.String(36), primary_key=True),
)

caseload_limits = sa.Table(
    "caseload_limits",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("jobcoach_id", sa.String(100), primary_key=True),
    sa.Column("over_limit", sa.Boolean, nullable=False),
    sa.Column("episode", sa.Integer, nullable=False),
)


def record_candidate(session: Session, tenant: str, candidate_id: str, jobcoach_id: str, day: date) -> None:
    where = (caseload.c.tenant == tenant, caseload.c.candidate_id == candidate_id)
    current = session.execute(sa.select(caseload.c.last_contact).where(*where)).scalar()
    if current is None:
        session.execute(
            caseload.insert().values(
                tenant=tenant,
                candidate_id=candidate_id,
                jobcoach_id=jobcoach_id,
                last_contact=day,
                out_of_sight_episode=0,
                updated_at=utcnow(),
            )
        )
        return
    session.execute(
        caseload.update()
        .where(*where)
        .values(jobcoach_id=jobcoach_id, last_contact=max(current, day), updated_at=utcnow())
    )


def record_contact(session: Session, tenant: str, candidate_id: str, day: date) -> None:
    session.execute(
        caseload.update()
        .where(caseload.c.tenant == tenant, caseload.c.candidate_id == candidate_id, caseload.c.last_contact < day)
        .values(last_contact=day, updated_at=utcnow())
    )


def _forgotten(session: Session, tenant: str, candidate_id: str | None) -> bool:
    # Alerts about a jobcoach carry no candidate.
    if candidate_id is None:
        return False
    where = (erased.c.tenant == tenant, erased.c.candidate_id == candidate_id)
    return session.execute(sa.select(erased.c.candidate_id).where(*where)).first() is not None


def alert_raised(session: Session, tenant: str, alert_id: str, candidate_id: str | None) -> None:
    if _forgotten(session, tenant, candidate_id):
        return
    where = (open_alerts.c.tenant == tenant, open_alerts.c.alert_id == alert_id)
    if session.execute(sa.select(open_alerts.c.alert_id).where(*where)).first() is None:
        session.execute(
            open_alerts.insert().values(tenant=tenant, alert_id=alert_id, candidate_id=candidate_id, is_open=True)
        )


def alert_acknowledged(session: Session, tenant: str, alert_id: str, candidate_id: str | None) -> None:
    if _forgotten(session, tenant, candidate_id):
        return
    where = (open_alerts.c.tenant == tenant, open_alerts.c.alert_id == alert_id)
    if not affected_rows(session.execute(open_alerts.update().where(*where).values(is_open=False))):
        session.execute(
            open_alerts.insert().values(tenant=tenant, alert_id=alert_id, candidate_id=candidate_id, is_open=False)
        )


def erase_candidate(session: Session, tenant: str, candidate_id: str) -> None:
    if not _forgotten(session, tenant, candidate_id):
        session.execute(erased.insert().values(tenant=tenant, candidate_id=candidate_id))
    session.execute(caseload.delete().where(caseload.c.tenant == tenant, caseload.c.candidate_id == candidate_id))
    session.execute(
        open_alerts.delete().where(open_alerts.c.tenant == tenant, open_alerts.c.candidate_id == candidate_id)
    )


def rows(session: Session, tenant: str, jobcoach_id: str | None = None) -> list[dict]:
    """The caseload, longest without contact first (candidate id breaks ties, so pages are stable)."""
    query = sa.select(caseload).where(caseload.c.tenant == tenant)
    if jobcoach_id is not None:
        query = query.where(caseload.c.jobcoach_id == jobcoach_id)
    query = query.order_by(caseload.c.last_contact, caseload.c.candidate_id)
    return [dict(row) for row in session.execute(query).mappings()]


def open_alert_counts(session: Session, tenant: str) -> dict[str, int]:
    query = (
        sa.select(open_alerts.c.candidate_id, sa.func.count())
        .where(open_alerts.c.tenant == tenant, open_alerts.c.is_open, open_alerts.c.candidate_id.is_not(None))
        .group_by(open_alerts.c.candidate_id)
    )
    return {candidate_id: count for candidate_id, count in session.execute(query)}


def placement_facts(session: Session, tenant: str) -> list[sa.Row]:
    """Every placement of the tenant with what the caseload status needs."""
    p = placements_store.placements
    gap_start = sa.func.coalesce(p.c.last_checkin, p.c.start_date)
    overdue = sa.and_(p.c.overdue_since.is_not(None), p.c.overdue_since == gap_start)
    query = sa.select(p.c.candidate_id, p.c.status, p.c.at_risk, overdue.label("overdue"), p.c.end_date).where(
        p.c.tenant == tenant
    )
    return list(session.execute(query).all())


def last_proposals(session: Session, tenant: str) -> dict[str, datetime]:
    """When each candidate was last proposed a match."""
    proposals = ranking_store.proposals
    query = (
        sa.select(proposals.c.candidate_id, sa.func.max(proposals.c.created_at))
        .where(proposals.c.tenant == tenant)
        .group_by(proposals.c.candidate_id)
    )
    return {candidate_id: latest for candidate_id, latest in session.execute(query)}


def tenants(session: Session) -> list[str]:
    return list(session.execute(sa.select(caseload.c.tenant).distinct()).scalars())


def mark_out_of_sight(session: Session, tenant: str, candidate_id: str, since: date) -> int | None:
    """Record that the gap since ``since`` was reported; the episode, or None if reported already."""
    where = (caseload.c.tenant == tenant, caseload.c.candidate_id == candidate_id)
    updated = session.execute(
        caseload.update()
        .where(
            *where,
            caseload.c.last_contact == since,
            sa.or_(caseload.c.out_of_sight_since.is_(None), caseload.c.out_of_sight_since != since),
        )
        .values(out_of_sight_since=since, out_of_sight_episode=caseload.c.out_of_sight_episode + 1)
    )
    if affected_rows(updated) != 1:
        return None
    return session.execute(sa.select(caseload.c.out_of_sight_episode).where(*where)).scalar_one()


def enter_over_limit(session: Session, tenant: str, jobcoach_id: str) -> int | None:
    """Start an over-limit episode unless one is under way; its number, or None if under way already."""
    where = (caseload_limits.c.tenant == tenant, caseload_limits.c.jobcoach_id == jobcoach_id)
    if session.execute(sa.select(caseload_limits.c.episode).where(*where)).first() is None:
        session.execute(
            caseload_limits.insert().values(tenant=tenant, jobcoach_id=jobcoach_id, over_limit=False, episode=0)
        )
    updated = session.execute(
        caseload_limits.update()
        .where(*where, caseload_limits.c.over_limit.is_(False))
        .values(over_limit=True, episode=caseload_limits.c.episode + 1)
    )
    if affected_rows(updated) != 1:
        return None
    return session.execute(sa.select(caseload_limits.c.episode).where(*where)).scalar_one()


def leave_over_limit(session: Session, tenant: str, jobcoach_id: str) -> None:
    session.execute(
        caseload_limits.update()
        .where(caseload_limits.c.tenant == tenant, caseload_limits.c.jobcoach_id == jobcoach_id)
        .values(over_limit=False)
    )


def jobcoaches_with_limit_state(session: Session, tenant: str) -> list[str]:
    query = sa.select(caseload_limits.c.jobcoach_id).where(caseload_limits.c.tenant == tenant)
    return list(session.execute(query).scalars())
