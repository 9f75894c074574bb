"""The placement routes (a jobcoach's placements, check-ins, endings) and the region's insights."""

from __future__ import annotations

from typing import NoReturn

from flask import current_app, url_for
from flask.views import MethodView
from flask_smorest import abort
from sqlalchemy.exc import IntegrityError

from services.matching import insights, placements
from services.matching import placements_store as pstore
from services.matching.cadence import Cadence
from services.matching.placements_schemas import (
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
from shared.clock import clock_from_env
from shared.web.auth import authorize, current_principal
from shared.web.blueprint import Blueprint
from shared.web.resources import conflict, invalid, page_bounds, page_of

blp = Blueprint("placements", __name__, url_prefix="/v1/tenants/<tenant:tenant>", description="Placements and insights")


def _context():
    return current_app.extensions["werkbrug"]


def _clock():
    # Tests hand in a clock of their own; otherwise the environment's, which an end-to-end test can move.
    return _context().extras.get("clock") or clock_from_env()


def _cadence(tenant: str) -> Cadence:
    return Cadence.from_settings(_context().registry.settings(tenant))


def _refuse(exc: placements.PlacementRuleBroken) -> NoReturn:
    if isinstance(exc, placements.Invalid):
        invalid(exc.errors)
    if isinstance(exc, placements.Conflict):
        conflict(str(exc))
    abort(404, message=str(exc))


@blp.route("/placements")
class Placements(MethodView):
    @authorize("jobcoach", "operator")
    @blp.arguments(PlacementListQuerySchema, location="query")
    @blp.response(200, PlacementPageSchema)
    def get(self, query, tenant):
        """The calling jobcoach's placements (an operator's: the region's), newest first, with current risk"""
        principal = current_principal()
        offset, limit = page_bounds(query)
        with _context().db.session() as session:
            rows, total = pstore.list_placements(
                session,
                tenant,
                jobcoach_id=principal.subject if principal.role == "jobcoach" else None,
                status=query["status"],
                offset=offset,
                limit=limit,
            )
        cadence = _cadence(tenant)
        return page_of([placements.placement_view(row, cadence) for row in rows], total, query)

    @authorize("jobcoach")
    @blp.arguments(PlacementCreateSchema)
    @blp.response(201, PlacementSchema)
    @blp.alt_response(404, description="No such candidate of the caller's, or no such vacancy")
    @blp.alt_response(409, description="The vacancy is not open, or the placement exists already")
    @blp.alt_response(422, description="Invalid fields")
    def post(self, fields, tenant):
        """Start a placement: the calling jobcoach's candidate starts at a vacancy"""
        today = placements.local_today(_clock())
        try:
            with _context().db.session() as session:
                placement = placements.start_placement(session, tenant, current_principal().subject, fields, today)
        except placements.PlacementRuleBroken as exc:
            _refuse(exc)
        except IntegrityError:
            conflict("The candidate already has an active placement at this vacancy.")
        location = url_for("placements.Placement", tenant=tenant, placement_id=placement["id"])
        return placements.placement_view(placement, _cadence(tenant)), 201, {"Location": location}


@blp.route("/placements/<id:placement_id>")
class Placement(MethodView):
    @authorize("jobcoach", "operator")
    @blp.response(200, PlacementDetailSchema)
    def get(self, tenant, placement_id):
        """A placement with its current risk score and reasons, and its latest check-ins"""
        try:
            with _context().db.session() as session:
                placement, recent = placements.get_placement(session, tenant, current_principal(), placement_id)
        except placements.PlacementRuleBroken as exc:
            _refuse(exc)
        return {**placements.placement_view(placement, _cadence(tenant)), "recent_checkins": recent}


@blp.route("/placements/<id:placement_id>/checkins")
class Checkins(MethodView):
    @authorize("jobcoach")
    @blp.arguments(CheckinCreateSchema)
    @blp.response(201, CheckinResultSchema)
    @blp.alt_response(404, description="No such placement of the caller's")
    @blp.alt_response(409, description="The placement has ended, or has a check-in on that date")
    @blp.alt_response(422, description="Invalid fields, a date in the future or before the start")
    def post(self, fields, tenant, placement_id):
        """Record a check-in: wellbeing, hours, absence and signals; the placement is rescored"""
        context = _context()
        settings = context.registry.settings(tenant)
        today = placements.local_today(_clock())
        try:
            with context.db.session() as session:
                checkin, placement = placements.check_in(
                    session, tenant, current_principal(), placement_id, fields, today, settings
                )
        except placements.PlacementRuleBroken as exc:
            _refuse(exc)
        view = placements.placement_view(placement, Cadence.from_settings(settings))
        location = url_for("placements.Placement", tenant=tenant, placement_id=placement_id)
        return {**checkin, "placement": view}, 201, {"Location": location}


@blp.route("/placements/<id:placement_id>/end")
class PlacementEnd(MethodView):
    @authorize("jobcoach")
    @blp.arguments(PlacementEndSchema)
    @blp.response(200, PlacementSchema)
    @blp.alt_response(404, description="No such placement of the caller's")
    @blp.alt_response(409, description="The placement has ended already")
    @blp.alt_response(422, description="Invalid fields, or a date in the future, before the start or last check-in")
    def post(self, fields, tenant, placement_id):
        """End a placement with its outcome"""
        today = placements.local_today(_clock())
        try:
            with _context().db.session() as session:
                placement = placements.end_placement(session, tenant, current_principal(), placement_id, fields, today)
        except placements.PlacementRuleBroken as exc:
            _refuse(exc)
        return placements.placement_view(placement, _cadence(tenant))


@blp.route("/insights")
class Insights(MethodView):
    @authorize("operator")
    @blp.response(200, InsightsSchema)
    def get(self, tenant):
        """Anonymous bundled figures for the region: every cell under 11 people suppressed"""
        now = _clock()()
        with _context().db.session() as session:
            return insights.insights_for(session, tenant, now, placements.local_today(lambda: now))
