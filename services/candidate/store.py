"""The candidate service's tables and queries. Every query takes the tenant, so none can forget it.

This is the one place that holds a candidate's pseudonym beside their profile. Erasure deletes the row,
their history and every outbox row about the candidate; nothing is kept "just in case".
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.audit import audit_table
from shared.consumer import processed_events_table
from shared.db import StaleVersion, UtcDateTime, affected_rows, utcnow
from shared.events import message_key
from shared.idempotency import idempotency_table
from shared.outbox import Outbox, outbox_table
from shared.ratelimit import rate_limit_table

MIGRATIONS = Path(__file__).with_name("migrations")

metadata = sa.MetaData()

candidates = sa.Table(
    "candidates",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(63), nullable=False),
    sa.Column("jobcoach_id", sa.String(100), nullable=False),
    sa.Column("display_name", sa.String(100), nullable=False),
    sa.Column("profile", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # Counts every change: the ETag is made from it, and a conditional change names the version it read.
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Index("ix_candidates_tenant_jobcoach", "tenant", "jobcoach_id"),
)

# What happened to a candidate, who recorded it and when: the ladder steps, every consent given or changed,
# the introductions they answered, and handovers between jobcoaches. ``kind`` says which (see
# services.candidate.domain); ``details`` holds that kind's facts. ``ref`` names what an entry came from
# when something outside this service caused it (a placement, an introduction), so that the same cause is
# recorded once however often its event arrives.
candidate_history = sa.Table(
    "candidate_history",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("tenant", sa.String(63), nullable=False),
    sa.Column("candidate_id", sa.String(36), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("recorded_at", UtcDateTime, nullable=False),
    sa.Column("recorded_by", sa.String(100), nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("ref", sa.String(200), nullable=True),
    sa.UniqueConstraint("tenant", "candidate_id", "kind", "ref", name="uq_candidate_history_once_per_cause"),
    sa.Index("ix_candidate_history_candidate", "tenant", "candidate_id", "kind", "recorded_at"),
)

outbox = Outbox(outbox_table(metadata))
idempotency_table(metadata)
rate_limit_table(metadata)
audit_log = audit_table(metadata)

processed_events = processed_events_table(metadata)


def _as_dict(row) -> dict:
    return {
        "id": row.id,
        "jobcoach_id": row.jobcoach_id,
        "display_name": row.display_name,
        **row.profile,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "version": row.version,
    }


def insert_candidate(
    session: Session, tenant: str, candidate_id: str, jobcoach_id: str, display_name: str, profile: dict
) -> dict:
    now = utcnow()
    session.execute(
        candidates.insert().values(
            id=candidate_id,
            tenant=tenant,
            jobcoach_id=jobcoach_id,
            display_name=display_name,
            profile=profile,
            created_at=now,
            updated_at=now,
            version=1,
        )
    )
    candidate = get_candidate(session, tenant, candidate_id)
    assert candidate is not None, "inserted in this transaction"
    return candidate


def get_candidate(session: Session, tenant: str, candidate_id: str, *, for_update: bool = False) -> dict | None:
    """One candidate; ``for_update`` locks the row until the transaction ends (on PostgreSQL; SQLite has one
    writer at a time anyway), so that two changes made at once cannot overwrite each other's profile."""
    query = sa.select(candidates).where(candidates.c.tenant == tenant, candidates.c.id == candidate_id)
    row = session.execute(query.with_for_update() if for_update else query).first()
    return _as_dict(row) if row else None


def _at_version(tenant: str, candidate_id: str, expected_version: int | None) -> list:
    conditions = [candidates.c.tenant == tenant, candidates.c.id == candidate_id]
    if expected_version is not None:
        conditions.append(candidates.c.version == expected_version)
    return conditions


def update_candidate(
    session: Session,
    tenant: str,
    candidate_id: str,
    display_name: str,
    profile: dict,
    expected_version: int | None = None,
) -> dict | None:
    """Change a candidate; with ``expected_version``, only if it is still at that version (else
    :class:`StaleVersion`, nothing changed): one statement, so two writers cannot both pass. The candidate
    as changed, or None when there is no such candidate (only without ``expected_version``)."""
    result = session.execute(
        candidates.update()
        .where(*_at_version(tenant, candidate_id, expected_version))
        .values(display_name=display_name, profile=profile, updated_at=utcnow(), version=candidates.c.version + 1)
    )
    if expected_version is not None and affected_rows(result) != 1:
        raise StaleVersion(candidate_id)
    return get_candidate(session, tenant, candidate_id)


def set_jobcoach(session: Session, tenant: str, candidate_id: str, jobcoach_id: str) -> dict | None:
    """Hand the candidate to ``jobcoach_id``; the candidate as changed, or None when there is no such candidate."""
    session.execute(
        candidates.update()
        .where(candidates.c.tenant == tenant, candidates.c.id == candidate_id)
        .values(jobcoach_id=jobcoach_id, updated_at=utcnow(), version=candidates.c.version + 1)
    )
    return get_candidate(session, tenant, candidate_id)


def list_candidates(
    session: Session,
    tenant: str,
    *,
    jobcoach_id: str | None,
    updated_since: datetime | None,
    offset: int,
    limit: int,
) -> tuple[list[dict], int]:
    """A caseload: longest unchanged first, then by id, so that pages never overlap or skip."""
    conditions = [candidates.c.tenant == tenant]
    if jobcoach_id is not None:
        conditions.append(candidates.c.jobcoach_id == jobcoach_id)
    if updated_since is not None:
        conditions.append(candidates.c.updated_at >= updated_since)
    total = session.execute(sa.select(sa.func.count()).select_from(candidates).where(*conditions)).scalar_one()
    rows = session.execute(
        sa.select(candidates)
        .where(*conditions)
        .order_by(candidates.c.updated_at, candidates.c.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return [_as_dict(row) for row in rows], total


def add_history(
    session: Session,
    tenant: str,
    candidate_id: str,
    kind: str,
    *,
    recorded_by: str,
    details: dict,
    recorded_at: datetime | None = None,
    ref: str | None = None,
) -> None:
    session.execute(
        candidate_history.insert().values(
            tenant=tenant,
            candidate_id=candidate_id,
            kind=kind,
            recorded_at=recorded_at or utcnow(),
            recorded_by=recorded_by,
            details=details,
            ref=ref,
        )
    )


def history_recorded(session: Session, tenant: str, candidate_id: str, kind: str, ref: str) -> bool:
    """Whether the cause ``ref`` already left an entry of this kind (a replayed event, say)."""
    h = candidate_history.c
    query = sa.select(h.id).where(h.tenant == tenant, h.candidate_id == candidate_id, h.kind == kind, h.ref == ref)
    return session.execute(query).first() is not None


def list_history(
    session: Session, tenant: str, candidate_id: str, kinds: tuple[str, ...], *, offset: int, limit: int
) -> tuple[list[dict], int]:
    """Entries of the given kinds, newest first (by the time recorded, then by the order stored)."""
    h = candidate_history.c
    conditions = [h.tenant == tenant, h.candidate_id == candidate_id, h.kind.in_(kinds)]
    total = session.execute(sa.select(sa.func.count()).select_from(candidate_history).where(*conditions)).scalar_one()
    rows = session.execute(
        sa.select(h.kind, h.recorded_at, h.recorded_by, h.details)
        .where(*conditions)
        .order_by(h.recorded_at.desc(), h.id.desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return [row._asdict() for row in rows], total


def delete_candidate(session: Session, tenant: str, candidate_id: str, expected_version: int | None = None) -> None:
    result = session.execute(candidates.delete().where(*_at_version(tenant, candidate_id, expected_version)))
    if expected_version is not None and affected_rows(result) != 1:
        raise StaleVersion(candidate_id)
    session.execute(
        candidate_history.delete().where(
            candidate_history.c.tenant == tenant, candidate_history.c.candidate_id == candidate_id
        )
    )
    # Earlier events about the candidate carry their profile: once erased, no copy stays behind here.
    outbox.forget(session, [message_key(tenant, candidate_id)])


def count_candidates(session: Session, tenant: str) -> int:
    query = sa.select(sa.func.count()).select_from(candidates).where(candidates.c.tenant == tenant)
    return session.execute(query).scalar_one()
