"""A tenant's trained models, numbered and kept for the record: the rerankers of ranking and the risk
models of placements are both stored this way."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.db import UtcDateTime, utcnow


def versioned_models_table(name: str, metadata: sa.MetaData) -> sa.Table:
    """A tenant's trained models, numbered; every version stays for the record."""
    return sa.Table(
        name,
        metadata,
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.String(80), nullable=False),
        sa.Column("model", sa.JSON, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        # A rolled-back model stays but is never used again.
        sa.Column("retired_at", UtcDateTime, nullable=True),
    )


class VersionedModels:
    """The newest model not rolled back is the one in use; rolling back retires it for good."""

    def __init__(self, table: sa.Table) -> None:
        self.table = table

    def _newest_in_use(self, tenant: str) -> sa.Select:
        columns = self.table.c
        return (
            sa.select(columns.number, columns.version, columns.model)
            .where(columns.tenant == tenant, columns.retired_at.is_(None))
            .order_by(columns.number.desc())
            .limit(1)
        )

    def active(self, session: Session, tenant: str) -> dict | None:
        row = session.execute(self._newest_in_use(tenant)).first()
        return row.model if row else None

    def next_number(self, session: Session, tenant: str) -> int:
        newest = session.execute(sa.select(sa.func.max(self.table.c.number)).where(self.table.c.tenant == tenant))
        return int(newest.scalar() or 0) + 1

    def add(self, session: Session, tenant: str, number: int, version: str, model: dict) -> None:
        session.execute(
            self.table.insert().values(tenant=tenant, number=number, version=version, model=model, created_at=utcnow())
        )

    def retire_active(self, session: Session, tenant: str) -> str | None:
        """Roll back the model in use; its version, or None when none was in use."""
        row = session.execute(self._newest_in_use(tenant).with_for_update()).first()
        if row is None:
            return None
        session.execute(
            self.table.update()
            .where(self.table.c.tenant == tenant, self.table.c.number == row.number)
            .values(retired_at=utcnow())
        )
        return row.version

    def history(self, session: Session, tenant: str) -> list[dict]:
        columns = self.table.c
        query = (
            sa.select(columns.number, columns.version, columns.created_at, columns.retired_at)
            .where(columns.tenant == tenant)
            .order_by(columns.number)
        )
        return [dict(row._mapping) for row in session.execute(query)]
