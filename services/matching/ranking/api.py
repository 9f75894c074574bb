"""The ranking routes: ranked vacancies for a jobcoach's candidate, anonymous candidates for a vacancy, and
for operators the exposure report and the ranking log."""

from __future__ import annotations

import hashlib

from flask.views import MethodView

from services.matching.context import context
from services.matching.ranking import commands
from services.matching.ranking.commands import RankedList
from services.matching.ranking.profiles import CandidateProfile, Match
from services.matching.ranking.schemas import (
    CandidateMatchesSchema,
    ExposureSchema,
    MatchQuerySchema,
    RankingLogQuerySchema,
    RankingLogSchema,
    VacancyMatchesSchema,
)
from services.matching.store import audit_log
from shared.vocabulary import SUPPORT_CODES
from shared.web.audit import Auditor
from shared.web.auth import authorize, current_principal
from shared.web.blueprint import Blueprint
from shared.web.resources import not_found

blp = Blueprint("matches", __name__, url_prefix="/v1/tenants/<tenant:tenant>", description="Rankings")
audit = Auditor(audit_log)


def profile_ref(vacancy_id: str, candidate_id: str) -> str:
    """A reference an employer can quote to the jobcoach, useless for linking across vacancies."""
    return hashlib.sha256(f"{vacancy_id}:{candidate_id}".encode()).hexdigest()[:16]


def _anonymous(vacancy_id: str, match: Match, candidate: CandidateProfile) -> dict:
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


def _answer(key: str, subject_id: str, ranked: RankedList, items: list[dict]) -> dict:
    return {
        key: subject_id,
        "ranking_version": ranked.ranking_version,
        "weights_version": ranked.weights_version,
        "items": items,
        "reason": ranked.reason,
    }


@blp.route("/candidates/<id:candidate_id>/matches")
class CandidateMatches(MethodView):
    @authorize("jobcoach")
    @audit("read")
    @blp.arguments(MatchQuerySchema, location="query")
    @blp.response(200, CandidateMatchesSchema)
    # The region's index is being built (see services/matching/ranking/index_cache.py).
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    def get(self, query, tenant, candidate_id):
        """Open vacancies ranked for the calling jobcoach's candidate, each with score and explanation"""
        ctx = context()
        try:
            ranked = commands.matches_for_candidate(
                ctx.db,
                ctx.engine,
                tenant,
                candidate_id,
                jobcoach_id=current_principal().subject,
                limit=query["limit"],
            )
        except commands.NotFound:
            not_found()
        items = [
            {
                "vacancy_id": match.vacancy_id,
                "title": vacancy.title if vacancy else "",
                "score": match.score,
                "explanation": match.explanation,
            }
            for match, vacancy in ranked.items
        ]
        return _answer("candidate_id", candidate_id, ranked, items)


@blp.route("/vacancies/<id:vacancy_id>/matches")
class VacancyMatches(MethodView):
    @authorize("employer")
    @blp.arguments(MatchQuerySchema, location="query")
    @blp.response(200, VacancyMatchesSchema)
    # The region's index is being built (see services/matching/ranking/index_cache.py).
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    def get(self, query, tenant, vacancy_id):
        """Anonymous profiles of consenting candidates ranked for the calling employer's vacancy"""
        ctx = context()
        try:
            ranked = commands.matches_for_vacancy(
                ctx.db,
                ctx.engine,
                tenant,
                vacancy_id,
                employer_id=current_principal().subject,
                limit=query["limit"],
            )
        except commands.NotFound:
            not_found()
        items = [_anonymous(vacancy_id, match, candidate) for match, candidate in ranked.items]
        return _answer("vacancy_id", vacancy_id, ranked, items)


@blp.route("/exposure")
class Exposure(MethodView):
    @authorize("operator", "council")
    @blp.response(200, ExposureSchema)
    # The region's index is being built (see services/matching/ranking/index_cache.py).
    @blp.alt_response(503, response="SERVICE_UNAVAILABLE")
    def get(self, tenant):
        """How often candidates were shown and proposed, per ladder step and target-group membership"""
        ctx = context()
        return commands.exposure_report(ctx.db, ctx.engine, tenant)


@blp.route("/ranking-log")
class RankingLog(MethodView):
    @authorize("operator")
    @blp.arguments(RankingLogQuerySchema, location="query")
    @blp.response(200, RankingLogSchema)
    def get(self, query, tenant):
        """The most recent rankings served or proposed: versions, input fingerprints, top results"""
        rows = commands.ranking_log(context().db, tenant, limit=query["limit"])
        return {"tenant": tenant, "items": rows}
