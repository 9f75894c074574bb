"""The placement routes (a jobcoach's placements, check-ins, endings) and the region's insights."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from flask import url_for
from flask.views import MethodView
from webargs.flaskparser import abort

from services.matching.context import context
from services.matching.placements import commands
from services.matching.placements.cadence import Cadence
from services.matching.placements.schemas import (
    CheckinCreateSchema,
    CheckinResultSchema,
    InsightsSchema,
    PlacementCreateSchema,
    PlacementDetailSchema,
    PlacementEndSchema,
    PlacementListQuerySchema,
    PlacementPageSchema,
    PlacementSchema,
)
from services.matching.settings import MatchingSettings
from services.matching.store import audit_log
from shared.web.audit import Auditor, from_answer, from_items
from shared.web.auth import authorize, current_principal, current_subject
from shared.web.blueprint import Blueprint
from shared.web.conditional import etag_header, expected_version
from shared.web.openapi import mark_etag, mark_if_match
from shared.web.resources import conflict, invalid, page_bounds, page_of

blp = Blueprint("placements", __name__, url_prefix="/v1/tenants/<tenant:tenant>", description="Placements and insights")
audit = Auditor(audit_log)


def _today():
    # The context's clock: the environment's in production, which an end-to-end test can move; a test's own.
    return commands.local_today(context().clock)


def _cadence(tenant: str) -> Cadence:
    return Cadence.from_settings(context().registry.settings(tenant))


KIND = "placement"


def _expected_version(tenant: str, placement_id: str) -> int | None:
    """The version a change must still find, from If-Match (412, 428 or 400 as the header asks)."""
    try:
        current = commands.current_placement(context().db, tenant, current_principal(), placement_id)
    except commands.PlacementRuleBroken as exc:
        _refuse(exc)
    return expected_version(KIND, current, tenant)


def _refuse(exc: commands.PlacementRuleBroken) -> NoReturn:
    if isinstance(exc, commands.Invalid):
        invalid(exc.errors)
    if isinstance(exc, commands.Conflict):
        conflict(str(exc))
    abort(404, message=str(exc))


def placement_view(placement: Mapping[str, Any], cadence: Cadence) -> dict:
    """A placement as the API shows it, with its current risk and when the next check-in is due."""
    active = placement["status"] == "active"
    return {
        "id": placement["id"],
        "candidate_id": placement["candidate_id"],
        "vacancy_id": placement["vacancy_id"],
        "jobcoach_id": placement["jobcoach_id"],
        "start_date": placement["start_date"],
        "agreed_hours": placement["agreed_hours"],
        "supports_agreed": placement["supports_agreed"],
        "status": placement["status"],
        "end_date": placement["end_date"],
        "outcome": placement["outcome"],
        "reason": placement["end_reason"],
        "checkin_count": placement["checkin_count"],
        "last_checkin": placement["last_checkin"],
        "next_checkin_due": cadence.due_date(placement["start_date"], placement["last_checkin"]) if active else None,
        "risk": {
            "score": placement["risk_score"],
            "at_risk": placement["at_risk"],
            "episode": placement["risk_episode"],
            "reasons": placement["risk_reasons"] or [],
            "model_version": placement["risk_model_version"],
            "scored_at": placement["risk_scored_at"],
        },
        "learning_goals": placement["learning_goals"] or [],
        "planned_end_date": placement["planned_end_date"],
        "supervisor_arranged": placement["supervisor_arranged"],
        "buddy_arranged": placement["buddy_arranged"],
        "created_at": placement["created_at"],
    }


@blp.route("/placements")
class Placements(MethodView):
    @authorize("jobcoach", "operator")
    @audit("read", from_items())
    @blp.arguments(PlacementListQuerySchema, location="query")
    @blp.response(200, PlacementPageSchema)
    def get(self, query, tenant):
        """The calling jobcoach's placements (an operator's: the region's), newest first, with current risk"""
        offset, limit = page_bounds(query)
        rows, total = commands.list_placements(
            context().db, tenant, current_principal(), status=query["status"], offset=offset, limit=limit
        )
        cadence = _cadence(tenant)
        return page_of([placement_view(row, cadence) for row in rows], total, query)

    @mark_etag
    @authorize("jobcoach")
    @audit("create", from_answer())
    @blp.arguments(PlacementCreateSchema)
    @blp.response(201, PlacementSchema)
    @blp.alt_response(404, description="No such candidate of the caller's, or no such vacancy")
    @blp.alt_response(409, description="The vacancy is not open, or the placement exists already")
    @blp.alt_response(422, description="Invalid fields")
    def post(self, fields, tenant):
        """Start a placement: the calling jobcoach's candidate starts at a vacancy"""
        try:
            placement = commands.start_placement(context().db, tenant, current_subject(), fields, _today())
        except commands.PlacementRuleBroken as exc:
            _refuse(exc)
        location = url_for("placements.Placement", tenant=tenant, placement_id=placement["id"])
        return placement_view(placement, _cadence(tenant)), 201, {"Location": location, **etag_header(KIND, placement)}


@blp.route("/placements/<id:placement_id>")
class Placement(MethodView):
    @mark_etag
    @authorize("jobcoach", "operator")
    @audit("read", from_answer())
    @blp.response(200, PlacementDetailSchema)
    def get(self, tenant, placement_id):
        """A placement with its current risk score and reasons, and its latest check-ins"""
        try:
            placement, recent = commands.get_placement(context().db, tenant, current_principal(), placement_id)
        except commands.PlacementRuleBroken as exc:
            _refuse(exc)
        view = {**placement_view(placement, _cadence(tenant)), "recent_checkins": recent}
        return view, 200, etag_header(KIND, placement)


@blp.route("/placements/<id:placement_id>/checkins")
class Checkins(MethodView):
    @mark_etag
    @mark_if_match
    @authorize("jobcoach")
    @audit("change", from_answer("placement.candidate_id"))
    @blp.arguments(CheckinCreateSchema)
    @blp.response(201, CheckinResultSchema)
    @blp.alt_response(404, description="No such placement of the caller's")
    @blp.alt_response(409, description="The placement has ended, or has a check-in on that date")
    @blp.alt_response(422, description="Invalid fields, a date in the future or before the start")
    def post(self, fields, tenant, placement_id):
        """Record a check-in: wellbeing, hours, absence and signals; the placement is rescored"""
        settings = context().registry.settings(tenant, MatchingSettings)
        version = _expected_version(tenant, placement_id)
        try:
            checkin, placement = commands.check_in(
                context().db, tenant, current_principal(), placement_id, fields, _today(), settings, version
            )
        except commands.PlacementRuleBroken as exc:
            _refuse(exc)
        view = placement_view(placement, Cadence.from_settings(settings))
        location = url_for("placements.Placement", tenant=tenant, placement_id=placement_id)
        return {**checkin, "placement": view}, 201, {"Location": location, **etag_header(KIND, placement)}


@blp.route("/placements/<id:placement_id>/end")
class PlacementEnd(MethodView):
    @mark_etag
    @mark_if_match
    @authorize("jobcoach")
    @audit("change", from_answer())
    @blp.arguments(PlacementEndSchema)
    @blp.response(200, PlacementSchema)
    @blp.alt_response(404, description="No such placement of the caller's")
    @blp.alt_response(409, description="The placement has ended already")
    @blp.alt_response(422, description="Invalid fields, or a date in the future, before the start or last check-in")
    def post(self, fields, tenant, placement_id):
        """End a placement with its outcome"""
        version = _expected_version(tenant, placement_id)
        try:
            placement = commands.end_placement(
                context().db, tenant, current_principal(), placement_id, fields, _today(), version
            )
        except commands.PlacementRuleBroken as exc:
            _refuse(exc)
        return placement_view(placement, _cadence(tenant)), 200, etag_header(KIND, placement)


@blp.route("/insights")
class Insights(MethodView):
    @authorize("operator", "council")
    @blp.response(200, InsightsSchema)
    def get(self, tenant):
        """Anonymous bundled figures for the region: every cell under 11 people suppressed"""
        return commands.region_insights(context().db, tenant, context().clock())
