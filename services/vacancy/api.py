"""The vacancy routes: validate, call a command, shape the answer."""

from __future__ import annotations

from flask import url_for
from flask.views import MethodView

from services.vacancy import commands, store
from services.vacancy.domain import VacancyRuleBroken, may_see
from services.vacancy.schemas import (
    VacancyCreateSchema,
    VacancyListQuerySchema,
    VacancyPageSchema,
    VacancyPatchSchema,
    VacancySchema,
)
from shared.web.app import current_context
from shared.web.auth import authorize, current_principal
from shared.web.blueprint import Blueprint
from shared.web.resources import invalid, not_found, page_bounds, page_of

blp = Blueprint("vacancies", __name__, url_prefix="/v1/tenants/<tenant:tenant>/vacancies", description="Vacancies")


def _db():
    return current_context().db


def _visible_vacancy(session, tenant: str, vacancy_id: str) -> dict:
    vacancy = store.get_vacancy(session, tenant, vacancy_id)
    if vacancy is None or not may_see(current_principal(), vacancy):
        not_found()
    return vacancy


@blp.route("")
class Vacancies(MethodView):
    @authorize("employer")
    @blp.arguments(VacancyCreateSchema)
    @blp.response(201, VacancySchema)
    @blp.alt_response(422, description="Invalid fields")
    def post(self, fields, tenant):
        """Post an inclusive vacancy"""
        with _db().session() as session:
            vacancy = commands.post_vacancy(session, tenant, current_principal().subject, fields)
        location = url_for("vacancies.Vacancy", tenant=tenant, vacancy_id=vacancy["id"])
        return vacancy, 201, {"Location": location}

    @authorize("employer", "operator")
    @blp.arguments(VacancyListQuerySchema, location="query")
    @blp.response(200, VacancyPageSchema)
    def get(self, query, tenant):
        """List vacancies: an employer's own, or the region's for an operator"""
        principal = current_principal()
        employer_id = principal.subject if principal.role == "employer" else None
        offset, limit = page_bounds(query)
        with _db().session() as session:
            items, total = store.list_vacancies(
                session, tenant, employer_id=employer_id, status=query.get("status"), offset=offset, limit=limit
            )
        return page_of(items, total, query)


@blp.route("/<id:vacancy_id>")
class Vacancy(MethodView):
    @authorize("employer", "operator")
    @blp.response(200, VacancySchema)
    def get(self, tenant, vacancy_id):
        """Read a vacancy"""
        with _db().session() as session:
            return _visible_vacancy(session, tenant, vacancy_id)

    @authorize("employer", "operator")
    @blp.arguments(VacancyPatchSchema(partial=True))
    @blp.response(200, VacancySchema)
    def patch(self, patch, tenant, vacancy_id):
        """Change a vacancy"""
        with _db().session() as session:
            current = _visible_vacancy(session, tenant, vacancy_id)
            try:
                return commands.change_vacancy(session, tenant, current, patch)
            except VacancyRuleBroken as exc:
                invalid(exc.errors)

    @authorize("employer", "operator")
    @blp.response(200, VacancySchema)
    def delete(self, tenant, vacancy_id):
        """Close a vacancy for good"""
        with _db().session() as session:
            return commands.close_vacancy(session, tenant, _visible_vacancy(session, tenant, vacancy_id))
