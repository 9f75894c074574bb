"""The employer's pages: their vacancies, posting and changing them, anonymous matches per vacancy, and
interest in a match that becomes an introduction once the candidate agrees."""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for

from services.workspace import domain
from services.workspace.client import ApiError, Tagged
from services.workspace.pages.common import api, context, render, signed_in
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
                vacancy_id,
                domain.vacancy_payload(request.form, request.form.getlist("supports_offered")),
                domain.form_etag(request.form),
            )
        except ApiError as exc:
            if exc.status in domain.STALE_FORM:
                # Shown again as typed, with the tag just read: saving once more is a choice made knowingly.
                return _form_page(stored.body, request.form, {}, 409, stale=exc.status, etag=stored.etag)
            if exc.status != 422:
                raise
            errors = domain.field_errors(exc.errors, domain.VACANCY_FIELDS)
            return _form_page(
                stored.body, request.form, errors, 422, matches=None, etag=request.form.get(domain.ETAG_FIELD)
            )
        return redirect(url_for("employer.vacancy", vacancy_id=vacancy_id, saved="1"), 303)
    return _vacancy_page(stored, saved=request.args.get("saved"))


def _vacancy_page(tagged: Tagged, status: int = 200, **extra):
    """The vacancy with its anonymous matches and the introductions asked for so far."""
    stored = tagged.body
    person_api = api()
    matches, introductions = context().api.together(
        lambda: _matches(person_api, stored["id"]),
        lambda: _introductions(person_api, stored["id"]),
    )
    # A profile asked for before and answered "not now" may be asked for again; one still open or accepted not.
    asked = {item["profile_ref"]: item for item in introductions if item["status"] in ("pending", "accepted")}
    return _form_page(
        stored,
        domain.vacancy_form(stored),
        {},
        status,
        matches=matches,
        introductions=introductions,
        asked=asked,
        etag=tagged.etag,
        **extra,
    )


def _matches(person_api, vacancy_id: str) -> dict:
    try:
        return person_api.vacancy_matches(vacancy_id)
    except ApiError as exc:
        if exc.status != 404:
            raise
        # Just posted: the matching service has not taken the vacancy in yet (events are asynchronous).
        return {"pending": True, "items": []}


def _introductions(person_api, vacancy_id: str) -> list[dict]:
    try:
        return person_api.vacancy_introductions(vacancy_id)["items"]
    except ApiError as exc:
        if exc.status != 404:
            raise
        return []  # not yet known to matching, like the matches


@blp.post("/vacancies/<vacancy_id>/interest")
@signed_in("employer")
def express_interest(vacancy_id: str):
    stored = api().vacancy(vacancy_id)
    try:
        api().express_interest(vacancy_id, (request.form.get("profile_ref") or "").strip())
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        # 409: the profile left the matches, or the interest already waits; 422: not a profile of this list.
        message = (
            "Dit profiel past niet meer bij de vacature, of u wacht al op antwoord. Bekijk de lijst hieronder."
            if exc.status == 409
            else "Dit profiel staat niet in de lijst. Kies een profiel uit de lijst hieronder."
        )
        return _vacancy_page(stored, exc.status, interest_error=message)
    return redirect(url_for("employer.vacancy", vacancy_id=vacancy_id, saved="interest") + "#kennismakingen", 303)
