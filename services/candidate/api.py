"""The candidate routes: validate, call a command, shape the answer."""

from __future__ import annotations

from flask import url_for
from flask.views import MethodView

from services.candidate import commands, store
from services.candidate.domain import CandidateRuleBroken, may_see
from services.candidate.schemas import CandidateCreateSchema, CandidatePatchSchema, CandidateSchema
from shared.web.app import current_context
from shared.web.auth import authorize, current_principal
from shared.web.blueprint import Blueprint
from shared.web.resources import invalid, not_found

blp = Blueprint("candidates", __name__, url_prefix="/v1/tenants/<tenant:tenant>/candidates", description="Candidates")


def _db():
    return current_context().db


def _visible_candidate(session, tenant: str, candidate_id: str) -> dict:
    candidate = store.get_candidate(session, tenant, candidate_id)
    if candidate is None or not may_see(current_principal(), candidate):
        not_found()
    return candidate


@blp.route("")
class Candidates(MethodView):
    @authorize("jobcoach")
    @blp.arguments(CandidateCreateSchema)
    @blp.response(201, CandidateSchema)
    @blp.alt_response(422, description="Invalid fields")
    def post(self, fields, tenant):
        """Register a candidate; the calling jobcoach becomes theirs"""
        with _db().session() as session:
            candidate = commands.register_candidate(session, tenant, current_principal().subject, fields)
        location = url_for("candidates.Candidate", tenant=tenant, candidate_id=candidate["id"])
        return candidate, 201, {"Location": location}


@blp.route("/<id:candidate_id>")
class Candidate(MethodView):
    @authorize("jobcoach", "operator")
    @blp.response(200, CandidateSchema)
    def get(self, tenant, candidate_id):
        """Read a candidate"""
        with _db().session() as session:
            return _visible_candidate(session, tenant, candidate_id)

    @authorize("jobcoach", "operator")
    @blp.arguments(CandidatePatchSchema(partial=True))
    @blp.response(200, CandidateSchema)
    def patch(self, patch, tenant, candidate_id):
        """Change a candidate's profile"""
        with _db().session() as session:
            current = _visible_candidate(session, tenant, candidate_id)
            try:
                return commands.change_candidate(session, tenant, current, patch)
            except CandidateRuleBroken as exc:
                invalid(exc.errors)

    @authorize("jobcoach", "operator")
    @blp.response(204)
    def delete(self, tenant, candidate_id):
        """Erase a candidate everywhere (GDPR article 17)"""
        with _db().session() as session:
            commands.erase_candidate(session, tenant, _visible_candidate(session, tenant, candidate_id))
