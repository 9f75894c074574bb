"""What the introductions API asks for: an employer's interest in an anonymous profile of their vacancy's
current matches, the candidate's answer recorded by their jobcoach, and the lists each side may read.

Each command runs in one transaction: the introduction and its event in the outbox change together. A
command that finds a rule broken raises before it writes anything.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from services.matching.introductions import store
from services.matching.outbox import emit
from services.matching.ranking import commands as ranking
from services.matching.ranking import store as ranking_store
from services.matching.ranking.api import profile_ref as ref_of
from services.matching.ranking.engine import MatchingEngine
from shared.db import Database
from shared.events import EventType

# The most matches an employer can be shown for a vacancy: an interest must name one of these.
CURRENT_MATCHES = 50
# What an employer reads when the jobcoach has no work e-mail on file.
SERVICE_DESK = "via the region's service desk"
ANSWERS = {
    "accept": ("accepted", EventType.INTRODUCTION_ACCEPTED),
    "decline": ("declined", EventType.INTRODUCTION_DECLINED),
}


class IntroductionRefused(Exception):
    """Base of the refusals; nothing has been written when one is raised."""


class NotFound(IntroductionRefused):
    pass


class Conflict(IntroductionRefused):
    pass


def express_interest(
    db: Database,
    engine: MatchingEngine,
    tenant: str,
    employer_id: str,
    vacancy_id: str,
    profile_ref: str,
    now: datetime,
) -> dict:
    """An introduction to the candidate behind ``profile_ref``, who must be among the vacancy's current
    matches (ranked again now: consent, hours and supports as they are today)."""
    try:
        ranked = ranking.matches_for_vacancy(
            db, engine, tenant, vacancy_id, employer_id=employer_id, limit=CURRENT_MATCHES
        )
    except ranking.NotFound:
        raise NotFound("vacancy") from None
    candidate_id = next(
        (match.candidate_id for match, _ in ranked.items if ref_of(vacancy_id, match.candidate_id) == profile_ref), None
    )
    if candidate_id is None:
        raise Conflict("This profile is no longer among the vacancy's current matches.")
    try:
        with db.session() as session:
            candidate = ranking_store.get_candidate(session, tenant, candidate_id)
            vacancy = ranking_store.get_vacancy(session, tenant, vacancy_id)
            if candidate is None or vacancy is None:
                raise Conflict("This profile is no longer among the vacancy's current matches.")
            if store.pending_exists(session, tenant, vacancy_id, candidate_id):
                raise Conflict("An interest in this profile for this vacancy awaits its answer already.")
            introduction_id = str(uuid.uuid4())
            values = {
                "id": introduction_id,
                "vacancy_id": vacancy_id,
                "candidate_id": candidate_id,
                "jobcoach_id": candidate["jobcoach_id"],
                "employer_id": employer_id,
                "profile_ref": profile_ref,
                "vacancy_title": (vacancy.get("title") or "")[:200] or None,
                "created_at": now,
            }
            store.insert(session, tenant, values)
            emit(session, EventType.INTRODUCTION_REQUESTED, tenant=tenant, subject=introduction_id, data=_data(values))
            requested = store.get(session, tenant, introduction_id)
            assert requested is not None, "inserted in this transaction"
            return requested
    except IntegrityError:
        raise Conflict("An interest in this profile for this vacancy awaits its answer already.") from None


def record_answer(
    db: Database, tenant: str, jobcoach_id: str, introduction_id: str, answer: str, now: datetime
) -> dict:
    """The candidate's answer, recorded by their jobcoach; once only."""
    status, event_type = ANSWERS[answer]
    with db.session() as session:
        introduction = store.get(session, tenant, introduction_id, for_update=True)
        if introduction is None or introduction["jobcoach_id"] != jobcoach_id:
            raise NotFound("introduction")
        if not store.answer(session, tenant, introduction_id, status, jobcoach_id, now):
            raise Conflict(f"This introduction is {introduction['status']} already.")
        data = {**_data(introduction), "recorded_by": jobcoach_id, "recorded_at": now}
        emit(session, event_type, tenant=tenant, subject=introduction_id, data=data)
        answered = store.get(session, tenant, introduction_id)
        assert answered is not None, "read and answered in this transaction"
        return answered


def _data(introduction: dict) -> dict:
    return {
        key: introduction[key] for key in ("candidate_id", "vacancy_id", "jobcoach_id", "employer_id", "vacancy_title")
    }


def list_for(db: Database, tenant: str, principal, *, offset: int, limit: int) -> tuple[list[dict], int]:
    """A jobcoach's: those of their own candidates; an employer's: those of their own vacancies."""
    who = {"jobcoach_id": principal.subject} if principal.role == "jobcoach" else {"employer_id": principal.subject}
    with db.session() as session:
        rows, total = store.listed(session, tenant, offset=offset, limit=limit, **who)
        if principal.role == "employer":
            rows = _with_contact(session, tenant, rows)
        return rows, total


def list_for_vacancy(
    db: Database, tenant: str, employer_id: str, vacancy_id: str, *, offset: int, limit: int
) -> tuple[list[dict], int]:
    with db.session() as session:
        vacancy = ranking_store.get_vacancy(session, tenant, vacancy_id)
        if vacancy is None or vacancy["employer_id"] != employer_id:
            raise NotFound("vacancy")
        rows, total = store.listed(
            session, tenant, employer_id=employer_id, vacancy_id=vacancy_id, offset=offset, limit=limit
        )
        return _with_contact(session, tenant, rows), total


def _with_contact(session, tenant: str, rows: list[dict]) -> list[dict]:
    emails = store.work_emails(session, tenant, {row["jobcoach_id"] for row in rows if row["status"] == "accepted"})
    return [{**row, "work_email": emails.get(row["jobcoach_id"])} for row in rows]


def employer_view(row: dict) -> dict:
    """What an employer may see: the profile reference, never the candidate; a declined or cancelled
    introduction only as "not now", with no reason and no time that could tell the two apart."""
    accepted = row["status"] == "accepted"
    status = row["status"] if row["status"] in ("pending", "accepted") else "not now"
    contact = None
    if accepted:
        email = row.get("work_email")
        contact = {"work_email": email, "how": "e-mail the jobcoach" if email else SERVICE_DESK}
    return {
        "id": row["id"],
        "status": status,
        "vacancy_id": row["vacancy_id"],
        "vacancy_title": row["vacancy_title"],
        "profile_ref": row["profile_ref"],
        "created_at": row["created_at"],
        "answered_at": row["answered_at"] if accepted else None,
        "contact": contact,
    }


def jobcoach_view(row: dict) -> dict:
    return {
        "id": row["id"],
        "status": row["status"],
        "vacancy_id": row["vacancy_id"],
        "vacancy_title": row["vacancy_title"],
        "candidate_id": row["candidate_id"],
        "profile_ref": row["profile_ref"],
        "created_at": row["created_at"],
        "answered_at": row["answered_at"],
        "answered_by": row["answered_by"],
    }
