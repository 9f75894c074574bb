"""What the ranking API asks for: a jobcoach's ranked vacancies for their candidate, an employer's ranked
anonymous candidates for their vacancy, and the operator's reports.

Every ranking runs on the process's live index with the tenant's own weights and reranker, and is logged
(see :mod:`services.matching.ranking.traceability`); reading matches therefore writes the audit trail, and
nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from services.matching.ranking import fingerprints, scoring, store, traceability
from services.matching.ranking.engine import MatchingEngine
from services.matching.ranking.profiles import CandidateProfile, Match, VacancyProfile
from shared.db import Database

Profile = TypeVar("Profile")


class NotFound(Exception):
    """No such candidate or vacancy of the caller's: answered as if it did not exist."""


@dataclass(frozen=True)
class RankedList(Generic[Profile]):
    """A ranking as served: each match with the profile it ranked (for vacancies, None where the index no
    longer holds it), the versions it was ranked with, and why it is empty when it is."""

    ranking_version: str
    weights_version: str
    items: Sequence[tuple[Match, Profile]] = field(default_factory=list)
    reason: str | None = None


def _empty(engine: MatchingEngine, tenant: str, reason: str) -> RankedList[Any]:
    # Nothing was ranked, so no reranker took part: the plain ranking version names what would have run.
    return RankedList(scoring.RANKING_VERSION, scoring.weights_version(engine.weights(tenant)), reason=reason)


def matches_for_candidate(
    db: Database, engine: MatchingEngine, tenant: str, candidate_id: str, *, jobcoach_id: str | None, limit: int
) -> RankedList[VacancyProfile | None]:
    """Open vacancies ranked for the jobcoach's own candidate; raises :class:`NotFound` for anyone else's."""
    engine.await_index(tenant)
    with db.session() as session:
        payload = store.get_candidate(session, tenant, candidate_id)
        if payload is None or payload["jobcoach_id"] != jobcoach_id:
            raise NotFound("candidate")
        try:
            candidate = CandidateProfile.from_payload(payload, id=candidate_id, tenant=tenant)
        except ValueError:
            return _empty(engine, tenant, "the profile cannot be matched as stored")
        if not candidate.consent_matching:
            return _empty(engine, tenant, "the candidate has not consented to matching")
        index = engine.index(session, tenant)
        ranking = engine.list_ranking(session, tenant, require_share_consent=False)
        matches = index.vacancies_for(candidate, limit, ranking)
        traceability.log_ranking(
            session,
            direction=traceability.CANDIDATE_TO_VACANCIES,
            subject_fingerprint=fingerprints.candidate_fingerprint(candidate),
            index=index,
            ranking=ranking,
            matches=matches,
        )
    reason = None
    if not matches:
        if index.matchable_vacancies() == 0:
            reason = "no open vacancies in this region yet"
        else:
            reason = "no open vacancy meets every need"
    items = [(match, index.vacancy(match.vacancy_id)) for match in matches]
    return RankedList(ranking.version, ranking.weights_version, items, reason)


def matches_for_vacancy(
    db: Database, engine: MatchingEngine, tenant: str, vacancy_id: str, *, employer_id: str | None, limit: int
) -> RankedList[CandidateProfile]:
    """Consenting candidates ranked for the employer's own vacancy, counted as shown to employers; raises
    :class:`NotFound` for anyone else's vacancy."""
    engine.await_index(tenant)
    with db.session() as session:
        payload = store.get_vacancy(session, tenant, vacancy_id)
        if payload is None or payload["employer_id"] != employer_id:
            raise NotFound("vacancy")
        try:
            vacancy = VacancyProfile.from_payload(payload, id=vacancy_id, tenant=tenant)
        except ValueError:
            return _empty(engine, tenant, "the vacancy cannot be matched as stored")
        if vacancy.status != "open" or vacancy.positions <= 0:
            return _empty(engine, tenant, "the vacancy is not open")
        index = engine.index(session, tenant)
        ranking = engine.list_ranking(session, tenant, require_share_consent=True)
        matches = index.candidates_for(vacancy, limit, ranking)
        shown = [index.candidate(match.candidate_id) for match in matches]
        traceability.log_ranking(
            session,
            direction=traceability.VACANCY_TO_CANDIDATES,
            subject_fingerprint=fingerprints.vacancy_fingerprint(vacancy),
            index=index,
            ranking=ranking,
            matches=matches,
        )
        traceability.count_exposures(session, tenant, traceability.SHOWN, filter(None, shown))
    items = [(match, candidate) for match, candidate in zip(matches, shown, strict=True) if candidate is not None]
    reason = None
    if not items:
        if index.candidate_count() == 0:
            reason = "no candidate in this region has consented to matching yet"
        else:
            reason = "no consenting candidate fits this vacancy's hours and supports yet"
    return RankedList(ranking.version, ranking.weights_version, items, reason)


def exposure_report(db: Database, engine: MatchingEngine, tenant: str) -> dict[str, Any]:
    """How often candidates were shown and proposed, per ladder step and target-group membership."""
    engine.await_index(tenant)
    with db.session() as session:
        return traceability.exposure_report(session, tenant, engine.index(session, tenant))


def purge_ranking_log(db: Database, now: datetime, kept: timedelta) -> int:
    """Drop what the ranking log holds beyond its retention (``RANKING_LOG_RETENTION_DAYS``); how many rows."""
    with db.session() as session:
        return store.purge_ranking_log(session, now - kept)


def ranking_log(db: Database, tenant: str, *, limit: int) -> list[dict]:
    """The most recent rankings served or proposed, newest first."""
    with db.session() as session:
        return store.ranking_log_rows(session, tenant, limit=limit)
