"""The matching routes: ranked vacancies for a jobcoach's candidate, anonymous candidates for a vacancy."""

from __future__ import annotations

import hashlib

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from services.matching import domain, store
from services.matching.schemas import CandidateMatchesSchema, MatchQuerySchema, VacancyMatchesSchema
from shared.vocabulary import SUPPORT_CODES
from shared.web.auth import authorize, current_principal
from shared.web.resources import not_found

blp = Blueprint("matches", __name__, url_prefix="/v1/tenants/<tenant>", description="Rankings")


def _db():
    return current_app.extensions["werkbrug"].db


def profile_ref(vacancy_id: str, candidate_id: str) -> str:
    """A reference an employer can quote to the jobcoach, useless for linking across vacancies."""
    return hashlib.sha256(f"{vacancy_id}:{candidate_id}".encode()).hexdigest()[:16]


def _anonymous(vacancy_id: str, match: domain.Match, candidate: domain.CandidateProfile) -> dict:
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


@blp.route("/candidates/<candidate_id>/matches")
class CandidateMatches(MethodView):
    @authorize("jobcoach")
    @blp.arguments(MatchQuerySchema, location="query")
    @blp.response(200, CandidateMatchesSchema)
    def get(self, query, tenant, candidate_id):
        """Open vacancies ranked for the calling jobcoach's candidate, each with score and explanation"""
        with _db().session() as session:
            payload = store.get_candidate(session, tenant, candidate_id)
            if payload is None or payload["jobcoach_id"] != current_principal().subject:
                not_found()
            open_vacancies = store.open_vacancies(session, tenant)
        candidate = domain.CandidateProfile.from_payload(payload, id=candidate_id, tenant=tenant)
        vacancies = [domain.VacancyProfile.from_payload(p, id=vid, tenant=tenant) for vid, p in open_vacancies]
        titles = {vacancy.id: vacancy.title for vacancy in vacancies}
        matches = domain.rank_vacancies_for_candidate(candidate, vacancies, top_k=query["limit"])
        reason = None
        if not matches:
            reason = "no open vacancies in this region yet" if not vacancies else "no open vacancy meets every need"
        if not candidate.consent_matching:
            matches, reason = [], "the candidate has not consented to matching"
        items = [
            {"vacancy_id": m.vacancy_id, "title": titles[m.vacancy_id], "score": m.score, "explanation": m.explanation}
            for m in matches
        ]
        return {
            "candidate_id": candidate_id,
            "ranking_version": domain.RANKING_VERSION,
            "items": items,
            "reason": reason,
        }


@blp.route("/vacancies/<vacancy_id>/matches")
class VacancyMatches(MethodView):
    @authorize("employer")
    @blp.arguments(MatchQuerySchema, location="query")
    @blp.response(200, VacancyMatchesSchema)
    def get(self, query, tenant, vacancy_id):
        """Anonymous profiles of consenting candidates ranked for the calling employer's vacancy"""
        with _db().session() as session:
            payload = store.get_vacancy(session, tenant, vacancy_id)
            if payload is None or payload["employer_id"] != current_principal().subject:
                not_found()
            consenting = store.consenting_candidates(session, tenant)
        vacancy = domain.VacancyProfile.from_payload(payload, id=vacancy_id, tenant=tenant)
        candidates = {
            cid: domain.CandidateProfile.from_payload(profile, id=cid, tenant=tenant) for cid, profile in consenting
        }
        matches = domain.rank_candidates_for_vacancy(vacancy, list(candidates.values()), top_k=query["limit"])
        items = [_anonymous(vacancy_id, m, candidates[m.candidate_id]) for m in matches]
        reason = None if items else "no consenting candidate fits this vacancy's hours and supports yet"
        return {"vacancy_id": vacancy_id, "ranking_version": domain.RANKING_VERSION, "items": items, "reason": reason}
