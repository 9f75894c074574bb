"""The candidate service's tables and queries. Every query takes the tenant, so none can forget it.

This is the one place that holds a candidate's pseudonym beside their profile. Erasure deletes the row
and every outbox row about the candidate; nothing is kept "just in case".
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.db import UtcDateTime, utcnow
from shared.events import message_key
from shared.outbox import Outbox, outbox_table

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
    sa.Index("ix_candidates_tenant_jobcoach", "tenant", "jobcoach_id"),
)

outbox = Outbox(outbox_table(metadata))


def _as_dict(row) -> dict:
    return {
        "id": row.id,
        "jobcoach_id": row.jobcoach_id,
        "display_name": row.display_name,
        **row.profile,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
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
        )
    )
    return get_candidate(session, tenant, candidate_id)


def get_candidate(session: Session, tenant: str, candidate_id: str) -> dict | None:
    row = session.execute(
        sa.select(candidates).where(candidates.c.tenant == tenant, candidates.c.id == candidate_id)
    ).first()
    return _as_dict(row) if row else None


def update_candidate(session: Session, tenant: str, candidate_id: str, display_name: str, profile: dict) -> dict:
    session.execute(
        candidates.update()
        .where(candidates.c.tenant == tenant, candidates.c.id == candidate_id)
        .values(display_name=display_name, profile=profile, updated_at=utcnow())
    )
    return get_candidate(session, tenant, candidate_id)


def delete_candidate(session: Session, tenant: str, candidate_id: str) -> None:
    session.execute(candidates.delete().where(candidates.c.tenant == tenant, candidates.c.id == candidate_id))
    # Earlier events about the candidate carry their profile: once erased, no copy stays behind here.
    session.execute(outbox.table.delete().where(outbox.table.c.message_key == message_key(tenant, candidate_id)))


def count_candidates(session: Session, tenant: str) -> int:
    query = sa.select(sa.func.count()).select_from(candidates).where(candidates.c.tenant == tenant)
    return session.execute(query).scalar_one()
