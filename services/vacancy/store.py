"""The vacancy service's tables and queries. Every query takes the tenant, so none can forget it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.audit import audit_table
from shared.db import PreparedStatement, StaleVersion, UtcDateTime, affected_rows, utcnow
from shared.idempotency import idempotency_table
from shared.outbox import Outbox, outbox_table
from shared.ratelimit import rate_limit_table

MIGRATIONS = Path(__file__).with_name("migrations")

metadata = sa.MetaData()

vacancies = sa.Table(
    "vacancies",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("tenant", sa.String(63), nullable=False),
    sa.Column("employer_id", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    # The vacancy's fields as the API accepted them; the columns above are the ones queries filter on.
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    # Counts every change: the ETag is made from it, and a conditional change names the version it read.
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Index("ix_vacancies_tenant_employer", "tenant", "employer_id", "created_at"),
    sa.Index("ix_vacancies_tenant_status", "tenant", "status", "created_at"),
)

outbox = Outbox(outbox_table(metadata))
idempotency_table(metadata)
rate_limit_table(metadata)
audit_log = audit_table(metadata)


_INSERT_VACANCY = PreparedStatement(vacancies.insert())


def _as_dict(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "employer_id": row.employer_id,
        "status": row.status,
        **row.fields,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "version": row.version,
    }


def new_vacancy(vacancy_id: str, employer_id: str, fields: dict) -> dict:
    """A vacancy as :func:`insert_vacancy` will store it and :func:`get_vacancy` will read it back."""
    now = utcnow()
    return {
        "id": vacancy_id,
        "employer_id": employer_id,
        "status": "open",
        **fields,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }


def insert_vacancy(session: Session, tenant: str, vacancy: dict, fields: dict) -> None:
    """Store a vacancy made by :func:`new_vacancy` from ``fields``."""
    # Prepared once: on SQLite this insert takes the database's write lock, which every other writer then
    # waits for until the transaction ends.
    _INSERT_VACANCY.execute(
        session.connection(),
        {
            "id": vacancy["id"],
            "tenant": tenant,
            "employer_id": vacancy["employer_id"],
            "status": vacancy["status"],
            "fields": fields,
            "created_at": vacancy["created_at"],
            "updated_at": vacancy["updated_at"],
            "version": vacancy["version"],
        },
    )


def get_vacancy(session: Session, tenant: str, vacancy_id: str, *, for_update: bool = False) -> dict | None:
    """One vacancy; ``for_update`` locks the row until the transaction ends (on PostgreSQL; SQLite has one
    writer at a time anyway), so a change computed from what was read cannot undo a concurrent one: a
    PATCH racing a DELETE would otherwise reopen the closed vacancy."""
    query = sa.select(vacancies).where(vacancies.c.tenant == tenant, vacancies.c.id == vacancy_id)
    row = session.execute(query.with_for_update() if for_update else query).first()
    return _as_dict(row) if row else None


def update_vacancy(
    session: Session,
    tenant: str,
    vacancy_id: str,
    *,
    status: str,
    fields: dict,
    expected_version: int | None = None,
) -> dict | None:
    """Change a vacancy; with ``expected_version``, only if it is still at that version (else
    :class:`StaleVersion`, nothing changed): one statement, so two writers cannot both pass. The vacancy
    as changed, or None when there is no such vacancy (only without ``expected_version``)."""
    conditions = [vacancies.c.tenant == tenant, vacancies.c.id == vacancy_id]
    if expected_version is not None:
        conditions.append(vacancies.c.version == expected_version)
    result = session.execute(
        vacancies.update()
        .where(*conditions)
        .values(status=status, fields=fields, updated_at=utcnow(), version=vacancies.c.version + 1)
    )
    if expected_version is not None and affected_rows(result) != 1:
        raise StaleVersion(vacancy_id)
    return get_vacancy(session, tenant, vacancy_id)


def list_vacancies(
    session: Session, tenant: str, *, employer_id: str | None, status: str | None, offset: int, limit: int
) -> tuple[list[dict], int]:
    conditions = [vacancies.c.tenant == tenant]
    if employer_id is not None:
        conditions.append(vacancies.c.employer_id == employer_id)
    if status is not None:
        conditions.append(vacancies.c.status == status)
    total = session.execute(sa.select(sa.func.count()).select_from(vacancies).where(*conditions)).scalar_one()
    rows = session.execute(
        sa.select(vacancies)
        .where(*conditions)
        .order_by(vacancies.c.created_at.desc(), vacancies.c.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return [_as_dict(row) for row in rows], total
