"""The caseload route: a jobcoach's own candidates, or for an operator the region's, with their status."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import abort

from services.matching.caseload import commands
from services.matching.caseload.schemas import CaseloadPageSchema, CaseloadQuerySchema
from services.matching.context import context
from services.matching.placements.commands import local_today
from services.matching.settings import MatchingSettings
from services.matching.store import audit_log
from shared.web.audit import Auditor, from_items
from shared.web.auth import authorize, current_principal
from shared.web.blueprint import Blueprint
from shared.web.resources import page_bounds, page_of

blp = Blueprint("caseload", __name__, url_prefix="/v1/tenants/<tenant:tenant>", description="Caseload")
audit = Auditor(audit_log)


@blp.route("/caseload")
class Caseload(MethodView):
    @authorize("jobcoach", "operator")
    @audit("read", from_items())
    @blp.arguments(CaseloadQuerySchema, location="query")
    @blp.response(200, CaseloadPageSchema)
    def get(self, query, tenant):
        """Each candidate's status, last contact and open alerts; longest without contact first"""
        principal = current_principal()
        ctx = context()
        coach = query["jobcoach_id"]
        if principal.role == "jobcoach":
            if coach not in (None, principal.subject):
                abort(403, message="A jobcoach sees their own caseload only.")
            coach = principal.subject
        items = commands.entries(ctx.db, tenant, local_today(ctx.clock), jobcoach_id=coach)
        offset, limit = page_bounds(query)
        answer = page_of(items[offset : offset + limit], len(items), query)
        # What "out of sight" means in this region, as the sweep counts it, so a page shows the same.
        answer["contact_days"] = ctx.registry.settings(tenant, MatchingSettings).contact_days
        if principal.role == "operator":
            answer["jobcoaches"] = commands.loads(items)
        return answer
