"""The candidate service's tables and queries. Every query takes the tenant, so none can forget it.

This is the one place that holds a candidate's pseudonym beside their profile. Erasure deletes the row
and every outbox row about the candidate; nothing is kept "just in case".
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.db import StaleVersion, UtcDateTime, utcnow
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

outbox = Outbox(outbox_table(metadata))
idempotency_table(metadata)
rate_limit_table(metadata)


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
    return get_candidate(session, tenant, candidate_id)


def get_candidate(session: Session, tenant: str, candidate_id: str) -> dict | None:
    row = session.execute(
        sa.select(candidates).where(candidates.c.tenant == tenant, candidates.c.id == candidate_id)
    ).first()
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
) -> dict:
    """Change a candidate; with ``expected_version``, only if it is still at that version (else
    :class:`StaleVersion`, nothing changed): one statement, so two writers cannot both pass."""
    result = session.execute(
        candidates.update()
        .where(*_at_version(tenant, candidate_id, expected_version))
        .values(display_name=display_name, profile=profile, updated_at=utcnow(), version=candidates.c.version + 1)
    )
    if expected_version is not None and result.rowcount != 1:
        raise StaleVersion(candidate_id)
    return get_candidate(session, tenant, candidate_id)


def delete_candidate(session: Session, tenant: str, candidate_id: str, expected_version: int | None = None) -> None:
    result = session.execute(candidates.delete().where(*_at_version(tenant, candidate_id, expected_version)))
    if expected_version is not None and result.rowcount != 1:
        raise StaleVersion(candidate_id)
    # Earlier events about the candidate carry their profile: once erased, no copy stays behind here.
    session.execute(outbox.table.delete().where(outbox.table.c.message_key == message_key(tenant, candidate_id)))


def count_candidates(session: Session, tenant: str) -> int:
    query = sa.select(sa.func.count()).select_from(candidates).where(candidates.c.tenant == tenant)
    return session.execute(query).scalar_one()
