"""The candidate routes: validate, call a command, shape the answer."""

from __future__ import annotations

from flask import url_for
from flask.views import MethodView

from services.candidate import commands, domain, store
from services.candidate.domain import CandidateRuleBroken, may_see
from services.candidate.schemas import (
    CandidateCreateSchema,
    CandidatePageSchema,
    CandidatePatchSchema,
    CandidateSchema,
    CaseloadQuerySchema,
    ConsentPageSchema,
    HandoverSchema,
    LadderPageSchema,
)
from shared.web.app import current_context
from shared.web.audit import Auditor, from_answer, from_items
from shared.web.auth import authorize, current_principal, current_subject
from shared.web.blueprint import Blueprint
from shared.web.conditional import etag_header, expected_version
from shared.web.idempotency import transaction
from shared.web.openapi import mark_etag
from shared.web.resources import PageQuerySchema, invalid, not_found, page_bounds, page_of

blp = Blueprint("candidates", __name__, url_prefix="/v1/tenants/<tenant:tenant>/candidates", description="Candidates")
audit = Auditor(store.audit_log)

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


def _visible_candidate(session, tenant: str, candidate_id: str, *, for_update: bool = False) -> dict:
    candidate = store.get_candidate(session, tenant, candidate_id, for_update=for_update)
    if candidate is None or not may_see(current_principal(), candidate):
        not_found()
    return candidate


def _history_page(tenant: str, candidate_id: str, query: dict, kinds: tuple[str, ...], view) -> dict:
    offset, limit = page_bounds(query)
    with _db().session() as session:
        _visible_candidate(session, tenant, candidate_id)
        entries, total = store.list_history(session, tenant, candidate_id, kinds, offset=offset, limit=limit)
    return page_of([view(entry) for entry in entries], total, query)


@blp.route("")
class Candidates(MethodView):
    @mark_etag
    @authorize("jobcoach")
    @audit("create", from_answer("id"))
    @blp.arguments(CandidateCreateSchema, example=EXAMPLE)
    @blp.response(201, CandidateSchema)
    def post(self, fields, tenant):
        """Register a candidate; the calling jobcoach becomes theirs"""
        with transaction(_db()) as session:
            candidate = commands.register_candidate(session, tenant, current_subject(), fields)
        location = url_for("candidates.Candidate", tenant=tenant, candidate_id=candidate["id"])
        return candidate, 201, {"Location": location, **etag_header(KIND, candidate)}

    @authorize("jobcoach", "operator")
    @audit("read", from_items("id"))
    @blp.arguments(CaseloadQuerySchema, location="query")
    @blp.response(200, CandidatePageSchema)
    def get(self, query, tenant):
        """The caseload: a jobcoach's own candidates, or the region's for an operator; longest unchanged first"""
        jobcoach_id, problem = domain.caseload_filter(current_principal(), query.get("jobcoach_id"))
        if problem is not None:
            invalid(problem)
        offset, limit = page_bounds(query)
        with _db().session() as session:
            items, total = store.list_candidates(
                session,
                tenant,
                jobcoach_id=jobcoach_id,
                updated_since=query.get("updated_since"),
                offset=offset,
                limit=limit,
            )
        return page_of(items, total, query)


@blp.route("/<id:candidate_id>")
class Candidate(MethodView):
    @mark_etag
    @authorize("jobcoach", "operator")
    @audit("read")
    @blp.response(200, CandidateSchema)
    def get(self, tenant, candidate_id):
        """Read a candidate"""
        with _db().session() as session:
            candidate = _visible_candidate(session, tenant, candidate_id)
        return candidate, 200, etag_header(KIND, candidate)

    @mark_etag
    @authorize("jobcoach", "operator")
    @audit("change")
    @blp.arguments(CandidatePatchSchema(partial=True), example={"hours_max": 28, "ladder_step": 4})
    @blp.response(200, CandidateSchema)
    def patch(self, patch, tenant, candidate_id):
        """Change a candidate's profile"""
        with transaction(_db()) as session:
            current = _visible_candidate(session, tenant, candidate_id, for_update=True)
            version = expected_version(KIND, current, tenant)
            try:
                candidate = commands.change_candidate(
                    session, tenant, current, patch, domain.actor(current_principal()), version
                )
            except CandidateRuleBroken as exc:
                invalid(exc.errors)
        return candidate, 200, etag_header(KIND, candidate)

    @mark_etag
    @authorize("jobcoach", "operator")
    @audit("erase")
    @blp.response(204)
    def delete(self, tenant, candidate_id):
        """Erase a candidate everywhere (GDPR article 17)"""
        with transaction(_db()) as session:
            current = _visible_candidate(session, tenant, candidate_id)
            commands.erase_candidate(session, tenant, current, expected_version(KIND, current, tenant))


@blp.route("/<id:candidate_id>/handover")
class Handover(MethodView):
    @mark_etag
    @authorize("operator")
    @audit("change")
    @blp.arguments(HandoverSchema)
    @blp.response(200, CandidateSchema)
    @blp.alt_response(422, description="Invalid fields, or the candidate is already this jobcoach's")
    def post(self, handover, tenant, candidate_id):
        """Hand a candidate over to another jobcoach, who from then on is theirs (and the former one loses sight)"""
        with transaction(_db()) as session:
            current = _visible_candidate(session, tenant, candidate_id, for_update=True)
            try:
                candidate = commands.hand_over(
                    session, tenant, current, handover["jobcoach_id"], domain.actor(current_principal())
                )
            except CandidateRuleBroken as exc:
                invalid(exc.errors)
        return candidate, 200, etag_header(KIND, candidate)


@blp.route("/<id:candidate_id>/consent")
class ConsentHistory(MethodView):
    @authorize("jobcoach", "operator")
    @audit("read")
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, ConsentPageSchema)
    def get(self, query, tenant, candidate_id):
        """Every consent given or changed and every introduction answered, with who recorded it; newest first"""
        return _history_page(tenant, candidate_id, query, domain.CONSENT_KINDS, domain.consent_view)


@blp.route("/<id:candidate_id>/ladder")
class LadderHistory(MethodView):
    @authorize("jobcoach", "operator")
    @audit("read")
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, LadderPageSchema)
    def get(self, query, tenant, candidate_id):
        """The candidate's steps on the Participatieladder with when and why they changed; newest first"""
        return _history_page(tenant, candidate_id, query, domain.LADDER_KINDS, domain.ladder_view)
