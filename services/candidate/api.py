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
from shared.web.conditional import etag_header, expected_version
from shared.web.idempotency import transaction
from shared.web.openapi import mark_etag
from shared.web.resources import invalid, not_found

blp = Blueprint("candidates", __name__, url_prefix="/v1/tenants/<tenant:tenant>/candidates", description="Candidates")

KIND = "candidate"
EXAMPLE = {
    "display_name": "Zonnebloem",
    "talents": ["planten verzorgen", "nauwkeurig werken"],
    "preferences": ["buiten werken"],
    "support_needs": [{"code": "quiet_workplace", "level": "essential"}, {"code": "work_buddy", "level": "preferred"}],
    "hours_min": 12,
    "hours_max": 24,
    "ladder_step": 3,
    "location": {"postcode": "5912", "max_travel_km": 15},
    "consent": {"matching": True, "share_with_employers": True},
}


def _db():
    return current_context().db


def _visible_candidate(session, tenant: str, candidate_id: str) -> dict:
    candidate = store.get_candidate(session, tenant, candidate_id)
    if candidate is None or not may_see(current_principal(), candidate):
        not_found()
    return candidate


@blp.route("")
class Candidates(MethodView):
    @mark_etag
    @authorize("jobcoach")
    @blp.arguments(CandidateCreateSchema, example=EXAMPLE)
    @blp.response(201, CandidateSchema)
    def post(self, fields, tenant):
        """Register a candidate; the calling jobcoach becomes theirs"""
        with transaction(_db()) as session:
            candidate = commands.register_candidate(session, tenant, current_principal().subject, fields)
        location = url_for("candidates.Candidate", tenant=tenant, candidate_id=candidate["id"])
        return candidate, 201, {"Location": location, **etag_header(KIND, candidate)}


@blp.route("/<id:candidate_id>")
class Candidate(MethodView):
    @mark_etag
    @authorize("jobcoach", "operator")
    @blp.response(200, CandidateSchema)
    def get(self, tenant, candidate_id):
        """Read a candidate"""
        with _db().session() as session:
            candidate = _visible_candidate(session, tenant, candidate_id)
        return candidate, 200, etag_header(KIND, candidate)

    @mark_etag
    @authorize("jobcoach", "operator")
    @blp.arguments(CandidatePatchSchema(partial=True), example={"hours_max": 28, "ladder_step": 4})
    @blp.response(200, CandidateSchema)
    def patch(self, patch, tenant, candidate_id):
        """Change a candidate's profile"""
        with transaction(_db()) as session:
            current = _visible_candidate(session, tenant, candidate_id)
            version = expected_version(KIND, current, tenant)
            try:
                candidate = commands.change_candidate(session, tenant, current, patch, version)
            except CandidateRuleBroken as exc:
                invalid(exc.errors)
        return candidate, 200, etag_header(KIND, candidate)

    @mark_etag
    @authorize("jobcoach", "operator")
    @blp.response(204)
    def delete(self, tenant, candidate_id):
        """Erase a candidate everywhere (GDPR article 17)"""
        with transaction(_db()) as session:
            current = _visible_candidate(session, tenant, candidate_id)
            commands.erase_candidate(session, tenant, current, expected_version(KIND, current, tenant))
