"""Commands of the vacancy service: each stores its change and the event about it in one transaction."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from services.vacancy import metrics, store
from services.vacancy.domain import FIELD_NAMES, apply_patch, event_type_for
from shared.events import EventType, new_event

SOURCE = "vacancy"


def _event(tenant: str, vacancy: dict, event_type: EventType) -> dict:
    if event_type == EventType.VACANCY_CLOSED:
        data = {"employer_id": vacancy["employer_id"], "status": vacancy["status"]}
    else:
        data = {name: vacancy[name] for name in (*FIELD_NAMES, "employer_id", "status")}
    return new_event(event_type, tenant=tenant, subject=vacancy["id"], data=data, source=SOURCE)


def _emit(session: Session, tenant: str, vacancy: dict, event_type: EventType) -> None:
    store.outbox.add(session, _event(tenant, vacancy, event_type))


def post_vacancy(session: Session, tenant: str, employer_id: str, fields: dict) -> dict:
    vacancy = store.new_vacancy(str(uuid.uuid4()), employer_id, fields)
    # The event's row goes first, since the outbox builds, checks and encodes it before inserting it: on
    # SQLite the first write takes the database's one write lock, and every other writer waits for as long
    # as this transaction holds it.
    store.outbox.add(session, _event(tenant, vacancy, EventType.VACANCY_POSTED))
    store.insert_vacancy(session, tenant, vacancy, fields)
    metrics.VACANCIES_POSTED.labels(tenant).inc()
    return vacancy


def change_vacancy(
    session: Session, tenant: str, current: dict, patch: dict, expected_version: int | None = None
) -> dict:
    fields, status = apply_patch(current, dict(patch))
    vacancy = store.update_vacancy(
        session, tenant, current["id"], status=status, fields=fields, expected_version=expected_version
    )
    assert vacancy is not None, "the caller read the vacancy, and vacancies are never deleted"
    _emit(session, tenant, vacancy, event_type_for(current["status"], status))
    return vacancy


def close_vacancy(session: Session, tenant: str, current: dict, expected_version: int | None = None) -> dict:
    if current["status"] == "closed":
        return current
    vacancy = store.update_vacancy(
        session,
        tenant,
        current["id"],
        status="closed",
        fields={name: current[name] for name in FIELD_NAMES},
        expected_version=expected_version,
    )
    assert vacancy is not None, "the caller read the vacancy, and vacancies are never deleted"
    _emit(session, tenant, vacancy, EventType.VACANCY_CLOSED)
    return vacancy
