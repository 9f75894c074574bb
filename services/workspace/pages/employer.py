"""The employer's pages: their vacancies, posting and changing them, and anonymous matches per vacancy."""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for

from services.workspace import domain
from services.workspace.client import ApiError
from services.workspace.pages.common import api, render, signed_in
from shared.vocabulary import SUPPORT_CODES

blp = Blueprint("employer", __name__)


def _form_page(vacancy: dict | None, values, errors: dict, status: int = 200, **extra):
    return render(
        "vacancy.html",
        status,
        vacancy=vacancy,
        values=values,
        chosen_supports=(
            values.getlist("supports_offered") if hasattr(values, "getlist") else values.get("supports_offered", [])
        ),
        errors=errors,
        supports=SUPPORT_CODES,
        kinds=domain.VACANCY_KINDS,
        statuses=domain.VACANCY_STATUSES,
        **extra,
    )


@blp.get("/vacancies")
@signed_in("employer")
def vacancies():
    page = max(1, request.args.get("page", 1, type=int) or 1)
    found = api().vacancies(page=page)
    return render(
        "vacancies.html",
        vacancies=found["items"],
        total=found["total"],
        page=page,
        more=page * found["page_size"] < found["total"],
        kinds=domain.VACANCY_KINDS,
        statuses=domain.VACANCY_STATUSES,
    )


@blp.route("/vacancies/new", methods=["GET", "POST"])
@signed_in("employer")
def new_vacancy():
    if request.method == "GET":
        return _form_page(None, {"positions": "1", "kind": "work_experience"}, {})
    try:
        created = api().post_vacancy(domain.vacancy_payload(request.form, request.form.getlist("supports_offered")))
    except ApiError as exc:
        if exc.status != 422:
            raise
        return _form_page(None, request.form, domain.field_errors(exc.errors, domain.VACANCY_FIELDS), 422)
    return redirect(url_for("employer.vacancy", vacancy_id=created["id"], saved="new"), 303)


@blp.route("/vacancies/<vacancy_id>", methods=["GET", "POST"])
@signed_in("employer")
def vacancy(vacancy_id: str):
    stored = api().vacancy(vacancy_id)
    if request.method == "POST":
        try:
            api().change_vacancy(
                vacancy_id, domain.vacancy_payload(request.form, request.form.getlist("supports_offered"))
            )
        except ApiError as exc:
            if exc.status != 422:
                raise
            errors = domain.field_errors(exc.errors, domain.VACANCY_FIELDS)
            return _form_page(stored, request.form, errors, 422, matches=None)
        return redirect(url_for("employer.vacancy", vacancy_id=vacancy_id, saved="1"), 303)
    try:
        matches = api().vacancy_matches(vacancy_id)
    except ApiError as exc:
        if exc.status != 404:
            raise
        # Just posted: the matching service has not taken the vacancy in yet (events are asynchronous).
        matches = {"pending": True, "items": []}
    return _form_page(stored, domain.vacancy_form(stored), {}, matches=matches, saved=request.args.get("saved"))
