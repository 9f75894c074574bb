"""The introduction routes: an employer's interest in an anonymous profile, the candidate's answer through
their jobcoach, and each side's list."""

from __future__ import annotations

from typing import NoReturn

from flask import url_for
from flask.views import MethodView

from services.matching.context import context
from services.matching.introductions import commands
from services.matching.introductions.schemas import (
    EmployerIntroductionPageSchema,
    EmployerIntroductionSchema,
    InterestSchema,
    IntroductionPageSchema,
    JobcoachIntroductionSchema,
)
from services.matching.store import audit_log
from shared.web.audit import Auditor, from_answer, from_items
from shared.web.auth import authorize, current_principal, current_subject
from shared.web.blueprint import Blueprint
from shared.web.resources import PageQuerySchema, conflict, not_found, page_bounds, page_of

blp = Blueprint(
    "introductions", __name__, url_prefix="/v1/tenants/<tenant:tenant>", description="Interest and introductions"
)
audit = Auditor(audit_log)


def _refuse(exc: commands.IntroductionRefused) -> NoReturn:
    if isinstance(exc, commands.Conflict):
        conflict(str(exc))
    not_found()


@blp.route("/vacancies/<id:vacancy_id>/interest")
class Interest(MethodView):
    @authorize("employer")
    @blp.arguments(InterestSchema)
    @blp.response(201, EmployerIntroductionSchema)
    @blp.alt_response(404, description="No such vacancy of the caller's")
    @blp.alt_response(409, description="The profile is no longer a current match, or an interest awaits its answer")
    def post(self, fields, tenant, vacancy_id):
        """Ask to be introduced to a candidate behind an anonymous profile of the vacancy's matches"""
        ctx = context()
        try:
            row = commands.express_interest(
                ctx.db, ctx.engine, tenant, current_subject(), vacancy_id, fields["profile_ref"], ctx.clock()
            )
        except commands.IntroductionRefused as exc:
            _refuse(exc)
        # No introduction has a page of its own: its place is in the vacancy's list.
        location = url_for("introductions.VacancyIntroductions", tenant=tenant, vacancy_id=vacancy_id)
        return commands.employer_view(row), 201, {"Location": location}


@blp.route("/introductions")
class Introductions(MethodView):
    @authorize("jobcoach", "employer")
    @audit("read", from_items())
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, IntroductionPageSchema)
    def get(self, query, tenant):
        """A jobcoach's introductions of their own candidates, an employer's of their own vacancies; newest first"""
        principal = current_principal()
        offset, limit = page_bounds(query)
        rows, total = commands.list_for(context().db, tenant, principal, offset=offset, limit=limit)
        view = commands.jobcoach_view if principal.role == "jobcoach" else commands.employer_view
        return page_of([view(row) for row in rows], total, query)


def _answer(tenant: str, introduction_id: str, answer: str):
    ctx = context()
    try:
        row = commands.record_answer(ctx.db, tenant, current_subject(), introduction_id, answer, ctx.clock())
    except commands.IntroductionRefused as exc:
        _refuse(exc)
    return commands.jobcoach_view(row)


@blp.route("/introductions/<id:introduction_id>/accept")
class AcceptIntroduction(MethodView):
    @authorize("jobcoach")
    @audit("change", from_answer())
    @blp.response(200, JobcoachIntroductionSchema)
    @blp.alt_response(404, description="No such introduction of the caller's candidates")
    @blp.alt_response(409, description="Answered already")
    def post(self, tenant, introduction_id):
        """Record that the candidate accepts the introduction"""
        return _answer(tenant, introduction_id, "accept")


@blp.route("/introductions/<id:introduction_id>/decline")
class DeclineIntroduction(MethodView):
    @authorize("jobcoach")
    @audit("change", from_answer())
    @blp.response(200, JobcoachIntroductionSchema)
    @blp.alt_response(404, description="No such introduction of the caller's candidates")
    @blp.alt_response(409, description="Answered already")
    def post(self, tenant, introduction_id):
        """Record that the candidate declines the introduction (the employer reads only "not now")"""
        return _answer(tenant, introduction_id, "decline")


@blp.route("/vacancies/<id:vacancy_id>/introductions")
class VacancyIntroductions(MethodView):
    @authorize("employer")
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, EmployerIntroductionPageSchema)
    @blp.alt_response(404, description="No such vacancy of the caller's")
    def get(self, query, tenant, vacancy_id):
        """The vacancy's introductions: accepted ones with how to reach the jobcoach; never the candidate"""
        offset, limit = page_bounds(query)
        try:
            rows, total = commands.list_for_vacancy(
                context().db, tenant, current_subject(), vacancy_id, offset=offset, limit=limit
            )
        except commands.IntroductionRefused as exc:
            _refuse(exc)
        return page_of([commands.employer_view(row) for row in rows], total, query)
