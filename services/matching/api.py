"""The matching routes: ranked vacancies for a jobcoach's candidate, anonymous candidates for a vacancy, and
for operators the exposure report and the ranking log.

Every ranking runs on the process's live index with the tenant's own weights and reranker, and is logged
(see :mod:`services.matching.traceability`); reading matches therefore writes the audit trail, and nothing
else.
"""

from __future__ import annotations

import hashlib

from flask import current_app
from flask.views import MethodView

from services.matching import config, store, traceability
from services.matching.index import MatchingEngine
from services.matching.ranking import fingerprints, profiles, scoring
from services.matching.schemas import (
    CandidateMatchesSchema,
    ExposureSchema,
    MatchQuerySchema,
    RankingLogQuerySchema,
    RankingLogSchema,
    VacancyMatchesSchema,
)
from shared.vocabulary import SUPPORT_CODES
from shared.web.auth import authorize, current_principal
from shared.web.blueprint import Blueprint
from shared.web.resources import not_found

blp = Blueprint("matches", __name__, url_prefix="/v1/tenants/<tenant:tenant>", description="Rankings")

ENGINE = "matching_engine"


def _db():
    return current_app.extensions["werkbrug"].db


def _engine() -> MatchingEngine:
    """The process's engine, made on first use: each gunicorn worker keeps its own index."""
    context = current_app.extensions["werkbrug"]
    engine = context.extras.get(ENGINE)
    if engine is None:
        made = MatchingEngine.for_process(context.db, context.registry, policy=config.refit_policy(context.settings))
        engine = context.extras.setdefault(ENGINE, made)
    return engine


def profile_ref(vacancy_id: str, candidate_id: str) -> str:
    """A reference an employer can quote to the jobcoach, useless for linking across vacancies."""
    return hashlib.sha256(f"{vacancy_id}:{candidate_id}".encode()).hexdigest()[:16]


def _anonymous(vacancy_id: str, match: profiles.Match, candidate: profiles.CandidateProfile) -> dict:
    explanation = match.explanation
    needs = sorted(candidate.essential_needs | candidate.preferred_needs)
    return {
        "profile_ref": profile_ref(vacancy_id, match.candidate_id),
        "score": match.score,
        "talents_matched": explanation.get("talents_matched", []),
        "accommodations": [{"code": code, "label": SUPPORT_CODES[code]} for code in needs],
        "hours": {"min": candidate.hours_min, "max": candidate.hours_max},
        "ladder_step": candidate.ladder_step,
    }


def _empty(key: str, subject_id: str, reason: str, engine: MatchingEngine, tenant: str) -> dict:
    return {
        key: subject_id,
        "ranking_version": scoring.RANKING_VERSION,
        "weights_version": scoring.weights_version(engine.weights(tenant)),
        "items": [],
        "reason": reason,
    }


@blp.route("/candidates/<id:candidate_id>/matches")
class CandidateMatches(MethodView):
    @authorize("jobcoach")
    @blp.arguments(MatchQuerySchema, location="query")
    @blp.response(200, CandidateMatchesSchema)
    def get(self, query, tenant, candidate_id):
        """Open vacancies ranked for the calling jobcoach's candidate, each with score and explanation"""
        engine = _engine()
        with _db().session() as session:
            payload = store.get_candidate(session, tenant, candidate_id)
            if payload is None or payload["jobcoach_id"] != current_principal().subject:
                not_found()
            try:
                candidate = profiles.CandidateProfile.from_payload(payload, id=candidate_id, tenant=tenant)
            except ValueError:
                return _empty("candidate_id", candidate_id, "the profile cannot be matched as stored", engine, tenant)
            if not candidate.consent_matching:
                return _empty(
                    "candidate_id", candidate_id, "the candidate has not consented to matching", engine, tenant
                )
            index = engine.index(session, tenant)
            reranker = engine.reranker(session, tenant)
            weights = engine.weights(tenant)
            matches = index.vacancies_for(candidate, query["limit"], weights=weights, reranker=reranker)
            traceability.log_ranking(
                session,
                tenant=tenant,
                direction=traceability.CANDIDATE_TO_VACANCIES,
                subject_fingerprint=fingerprints.candidate_fingerprint(candidate),
                index=index,
                weights=weights,
                reranker=reranker,
                matches=matches,
            )
        reason = None
        if not matches:
            if index.matchable_vacancies() == 0:
                reason = "no open vacancies in this region yet"
            else:
                reason = "no open vacancy meets every need"
        items = []
        for match in matches:
            vacancy = index.vacancy(match.vacancy_id)
            items.append(
                {
                    "vacancy_id": match.vacancy_id,
                    "title": vacancy.title if vacancy else "",
                    "score": match.score,
                    "explanation": match.explanation,
                }
            )
        return {
            "candidate_id": candidate_id,
            "ranking_version": scoring.ranking_version(reranker),
            "weights_version": scoring.weights_version(weights),
            "items": items,
            "reason": reason,
        }


@blp.route("/vacancies/<id:vacancy_id>/matches")
class VacancyMatches(MethodView):
    @authorize("employer")
    @blp.arguments(MatchQuerySchema, location="query")
    @blp.response(200, VacancyMatchesSchema)
    def get(self, query, tenant, vacancy_id):
        """Anonymous profiles of consenting candidates ranked for the calling employer's vacancy"""
        engine = _engine()
        with _db().session() as session:
            payload = store.get_vacancy(session, tenant, vacancy_id)
            if payload is None or payload["employer_id"] != current_principal().subject:
                not_found()
            try:
                vacancy = profiles.VacancyProfile.from_payload(payload, id=vacancy_id, tenant=tenant)
            except ValueError:
                return _empty("vacancy_id", vacancy_id, "the vacancy cannot be matched as stored", engine, tenant)
            if vacancy.status != "open" or vacancy.positions <= 0:
                return _empty("vacancy_id", vacancy_id, "the vacancy is not open", engine, tenant)
            index = engine.index(session, tenant)
            reranker = engine.reranker(session, tenant)
            weights = engine.weights(tenant)
            matches = index.candidates_for(
                vacancy, query["limit"], weights=weights, require_share_consent=True, reranker=reranker
            )
            shown = [index.candidate(match.candidate_id) for match in matches]
            traceability.log_ranking(
                session,
                tenant=tenant,
                direction=traceability.VACANCY_TO_CANDIDATES,
                subject_fingerprint=fingerprints.vacancy_fingerprint(vacancy),
                index=index,
                weights=weights,
                reranker=reranker,
                matches=matches,
            )
            traceability.count_exposures(session, tenant, traceability.SHOWN, filter(None, shown))
        items = [
            _anonymous(vacancy_id, match, candidate)
            for match, candidate in zip(matches, shown, strict=True)
            if candidate is not None
        ]
        reason = None
        if not items:
            if index.candidate_count() == 0:
                reason = "no candidate in this region has consented to matching yet"
            else:
                reason = "no consenting candidate fits this vacancy's hours and supports yet"
        return {
            "vacancy_id": vacancy_id,
            "ranking_version": scoring.ranking_version(reranker),
            "weights_version": scoring.weights_version(weights),
            "items": items,
            "reason": reason,
        }


@blp.route("/exposure")
class Exposure(MethodView):
    @authorize("operator")
    @blp.response(200, ExposureSchema)
    def get(self, tenant):
        """How often candidates were shown and proposed, per ladder step and target-group membership"""
        with _db().session() as session:
            index = _engine().index(session, tenant)
            return traceability.exposure_report(session, tenant, index)


@blp.route("/ranking-log")
class RankingLog(MethodView):
    @authorize("operator")
    @blp.arguments(RankingLogQuerySchema, location="query")
    @blp.response(200, RankingLogSchema)
    def get(self, query, tenant):
        """The most recent rankings served or proposed: versions, input fingerprints, top results"""
        with _db().session() as session:
            rows = store.ranking_log_rows(session, tenant, limit=query["limit"])
        return {"tenant": tenant, "items": rows}
