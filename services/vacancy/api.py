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
from shared.web.auth import authorize, current_principal, current_subject
from shared.web.blueprint import Blueprint
from shared.web.conditional import etag_header, expected_version
from shared.web.idempotency import transaction
from shared.web.openapi import mark_etag
from shared.web.resources import invalid, not_found, page_bounds, page_of

blp = Blueprint("vacancies", __name__, url_prefix="/v1/tenants/<tenant:tenant>/vacancies", description="Vacancies")

KIND = "vacancy"
EXAMPLE = {
    "title": "Medewerker groenonderhoud",
    "description": "Planten verzorgen in een rustig team.",
    "tasks": ["planten verzorgen"],
    "skills": ["groenonderhoud"],
    "supports_offered": ["quiet_workplace", "work_buddy"],
    "hours_min": 16,
    "hours_max": 24,
    "kind": "work_experience",
    "positions": 1,
    "location": {"postcode": "5911"},
}


def _db():
    return current_context().db


def _visible_vacancy(session, tenant: str, vacancy_id: str, *, for_update: bool = False) -> dict:
    vacancy = store.get_vacancy(session, tenant, vacancy_id, for_update=for_update)
    if vacancy is None or not may_see(current_principal(), vacancy):
        not_found()
    return vacancy


@blp.route("")
class Vacancies(MethodView):
    @mark_etag
    @authorize("employer")
    @blp.arguments(VacancyCreateSchema, example=EXAMPLE)
    @blp.response(201, VacancySchema)
    def post(self, fields, tenant):
        """Post an inclusive vacancy"""
        with transaction(_db()) as session:
            vacancy = commands.post_vacancy(session, tenant, current_subject(), fields)
        location = url_for("vacancies.Vacancy", tenant=tenant, vacancy_id=vacancy["id"])
        return vacancy, 201, {"Location": location, **etag_header(KIND, vacancy)}

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
    @mark_etag
    @authorize("employer", "operator")
    @blp.response(200, VacancySchema)
    def get(self, tenant, vacancy_id):
        """Read a vacancy"""
        with _db().session() as session:
            vacancy = _visible_vacancy(session, tenant, vacancy_id)
        return vacancy, 200, etag_header(KIND, vacancy)

    @mark_etag
    @authorize("employer", "operator")
    @blp.arguments(VacancyPatchSchema(partial=True), example={"positions": 2, "status": "open"})
    @blp.response(200, VacancySchema)
    def patch(self, patch, tenant, vacancy_id):
        """Change a vacancy"""
        with transaction(_db()) as session:
            current = _visible_vacancy(session, tenant, vacancy_id, for_update=True)
            version = expected_version(KIND, current, tenant)
            try:
                vacancy = commands.change_vacancy(session, tenant, current, patch, version)
            except VacancyRuleBroken as exc:
                invalid(exc.errors)
        return vacancy, 200, etag_header(KIND, vacancy)

    @mark_etag
    @authorize("employer", "operator")
    @blp.response(200, VacancySchema)
    def delete(self, tenant, vacancy_id):
        """Close a vacancy for good"""
        with transaction(_db()) as session:
            current = _visible_vacancy(session, tenant, vacancy_id, for_update=True)
            vacancy = commands.close_vacancy(session, tenant, current, expected_version(KIND, current, tenant))
        return vacancy, 200, etag_header(KIND, vacancy)
