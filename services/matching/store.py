"""The matching service's read models, proposals and outbox. Every query takes the tenant."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from shared.consumer import processed_events_table
from shared.db import UtcDateTime, utcnow
from shared.events import message_key
from shared.outbox import Outbox, outbox_table

MIGRATIONS = Path(__file__).with_name("migrations")

metadata = sa.MetaData()

processed_events = processed_events_table(metadata)
outbox = Outbox(outbox_table(metadata))

# Read models: this service's own copies of what the candidate and vacancy events said.
candidates = sa.Table(
    "candidates",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("jobcoach_id", sa.String(100), nullable=False),
    sa.Column("consent_matching", sa.Boolean, nullable=False),
    sa.Column("profile", sa.JSON, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

vacancies = sa.Table(
    "vacancies",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("employer_id", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("profile", sa.JSON, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index("ix_matching_vacancies_status", "tenant", "status"),
)

proposals = sa.Table(
    "proposals",
    metadata,
    sa.Column("tenant", sa.String(63), primary_key=True),
    sa.Column("vacancy_id", sa.String(36), primary_key=True),
    sa.Column("candidate_id", sa.String(36), primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)


def _upsert(session: Session, table: sa.Table, tenant: str, entity_id: str, values: dict) -> None:
    where = (table.c.tenant == tenant, table.c.id == entity_id)
    updated = session.execute(table.update().where(*where).values(**values, updated_at=utcnow()))
    if not updated.rowcount:
        session.execute(table.insert().values(tenant=tenant, id=entity_id, **values, updated_at=utcnow()))


def upsert_candidate(session: Session, tenant: str, candidate_id: str, profile: dict) -> None:
    values = {
        "jobcoach_id": profile["jobcoach_id"],
        "consent_matching": bool(profile["consent"]["matching"]),
        "profile": profile,
    }
    _upsert(session, candidates, tenant, candidate_id, values)


def upsert_vacancy(session: Session, tenant: str, vacancy_id: str, profile: dict) -> None:
    values = {"employer_id": profile["employer_id"], "status": profile["status"], "profile": profile}
    _upsert(session, vacancies, tenant, vacancy_id, values)


def set_vacancy_status(session: Session, tenant: str, vacancy_id: str, status: str) -> None:
    row = get_vacancy(session, tenant, vacancy_id)
    if row is not None:
        upsert_vacancy(session, tenant, vacancy_id, {**row, "status": status})


def get_candidate(session: Session, tenant: str, candidate_id: str) -> dict | None:
    row = session.execute(
        sa.select(candidates.c.profile).where(candidates.c.tenant == tenant, candidates.c.id == candidate_id)
    ).first()
    return row.profile if row else None


def get_vacancy(session: Session, tenant: str, vacancy_id: str) -> dict | None:
    row = session.execute(
        sa.select(vacancies.c.profile).where(vacancies.c.tenant == tenant, vacancies.c.id == vacancy_id)
    ).first()
    return row.profile if row else None


def consenting_candidates(session: Session, tenant: str) -> list[tuple[str, dict]]:
    rows = session.execute(
        sa.select(candidates.c.id, candidates.c.profile).where(
            candidates.c.tenant == tenant, candidates.c.consent_matching.is_(True)
        )
    ).all()
    return [(row.id, row.profile) for row in rows]


def open_vacancies(session: Session, tenant: str) -> list[tuple[str, dict]]:
    rows = session.execute(
        sa.select(vacancies.c.id, vacancies.c.profile).where(vacancies.c.tenant == tenant, vacancies.c.status == "open")
    ).all()
    return [(row.id, row.profile) for row in rows]


def proposed_candidate_ids(session: Session, tenant: str, vacancy_id: str) -> set[str]:
    rows = session.execute(
        sa.select(proposals.c.candidate_id).where(proposals.c.tenant == tenant, proposals.c.vacancy_id == vacancy_id)
    )
    return set(rows.scalars())


def record_proposal(session: Session, tenant: str, vacancy_id: str, candidate_id: str, score: float) -> None:
    session.execute(
        proposals.insert().values(
            tenant=tenant, vacancy_id=vacancy_id, candidate_id=candidate_id, score=score, created_at=utcnow()
        )
    )


def erase_candidate(session: Session, tenant: str, candidate_id: str) -> None:
    session.execute(candidates.delete().where(candidates.c.tenant == tenant, candidates.c.id == candidate_id))
    session.execute(proposals.delete().where(proposals.c.tenant == tenant, proposals.c.candidate_id == candidate_id))
    # Match events are keyed by the candidate: unsent ones about an erased person must not go out.
    session.execute(outbox.table.delete().where(outbox.table.c.message_key == message_key(tenant, candidate_id)))
