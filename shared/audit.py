"""Who read or changed which candidate: one table per service, in that service's own database.

A row holds the caller's role and subject (the API key's, a pseudonymous id), what was done, the
candidate's id, when, and the request's id; never a name, a support need or anything else a candidate
told us. Erasing a candidate therefore leaves their audit rows: they are the record of who touched the
data, and hold nothing but ids. Rows older than the retention period are purged by the service's worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.db import UtcDateTime, affected_rows

TABLE = "audit_log"
ACTIONS = ("read", "create", "change", "erase")
DEFAULT_RETENTION_DAYS = 365
# A purge deletes in batches, so that a year's backlog never becomes one long lock.
PURGE_BATCH = 5_000


def _columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("actor_role", sa.String(20), nullable=False),
        sa.Column("actor_subject", sa.String(100), nullable=True),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("candidate_id", sa.String(36), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
    ]


_INDEXES = (
    ("ix_audit_log_tenant_at", ("tenant", "at", "id")),
    ("ix_audit_log_tenant_candidate", ("tenant", "candidate_id", "at", "id")),
)


def audit_table(metadata: sa.MetaData) -> sa.Table:
    """The audit table in a service's metadata."""
    indexes = [sa.Index(name, *columns) for name, columns in _INDEXES]
    return sa.Table(TABLE, metadata, *_columns(), *indexes)


def create_audit_table(op) -> None:
    """For a service's migration: the same table, so that no service copies its definition."""
    op.create_table(TABLE, *_columns())
    for name, columns in _INDEXES:
        op.create_index(name, TABLE, list(columns))


def drop_audit_table(op) -> None:
    for name, _ in _INDEXES:
        op.drop_index(name, table_name=TABLE)
    op.drop_table(TABLE)


@dataclass(frozen=True)
class Actor:
    role: str
    subject: str | None


def record(
    session: Session,
    table: sa.Table,
    tenant: str,
    actor: Actor,
    action: str,
    candidate_ids: Iterable[str],
    at: datetime,
    request_id: str,
) -> int:
    """One row per distinct candidate; returns how many were written."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    rows = [
        {
            "tenant": tenant,
            "at": at,
            "actor_role": actor.role,
            "actor_subject": actor.subject,
            "action": action,
            "candidate_id": candidate_id,
            "request_id": request_id,
        }
        for candidate_id in dict.fromkeys(candidate_ids)
    ]
    if rows:
        session.execute(table.insert(), rows)
    return len(rows)


def entries(
    session: Session,
    table: sa.Table,
    tenant: str,
    *,
    candidate_id: str | None = None,
    since: datetime | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[dict], int]:
    """A tenant's rows, oldest first and by id within the same moment, so that pages neither skip nor
    repeat a row while new ones are added at the end."""
    conditions = [table.c.tenant == tenant]
    if candidate_id is not None:
        conditions.append(table.c.candidate_id == candidate_id)
    if since is not None:
        conditions.append(table.c.at >= since)
    total = session.execute(sa.select(sa.func.count()).select_from(table).where(*conditions)).scalar_one()
    rows = session.execute(
        sa.select(table).where(*conditions).order_by(table.c.at, table.c.id).offset(offset).limit(limit)
    ).all()
    return [dict(row._mapping) for row in rows], total


def purge(session: Session, table: sa.Table, before: datetime) -> int:
    """Delete up to a batch of rows older than ``before`` (every tenant); returns how many went."""
    oldest = sa.select(table.c.id).where(table.c.at < before).order_by(table.c.id).limit(PURGE_BATCH)
    return affected_rows(session.execute(table.delete().where(table.c.id.in_(oldest.scalar_subquery()))))


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    return now - timedelta(days=retention_days)
