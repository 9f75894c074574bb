"""The jobcoach's pages: Vandaag (the inbox), the caseload (operators see the region's), candidates and their
matches, placements and check-ins, introductions to answer (employers see theirs), and alert channels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Blueprint, abort, redirect, request, url_for

from services.workspace import charts, domain
from services.workspace.client import ApiError
from services.workspace.pages.common import HOME, api, context, current_person, is_htmx, render, signed_in
from shared.vocabulary import LADDER_STEPS, SUPPORT_CODES

blp = Blueprint("jobcoach", __name__)

INBOX_PAGE = 50


@blp.get("/")
@signed_in()
def today():
    who = current_person()
    if who.role != "jobcoach":
        return redirect(url_for(HOME[who.role]))
    page = max(1, request.args.get("page", 1, type=int) or 1)
    person_api = api()
    unread, recent = context().api.together(
        lambda: person_api.alerts(unread=True, page=page, page_size=INBOX_PAGE),
        lambda: person_api.alerts(unread=False, page=1, page_size=10) if page == 1 else {"items": []},
    )
    return render(
        "today.html",
        unread=unread["items"],
        unread_total=unread["total"],
        page=page,
        more=page * INBOX_PAGE < unread["total"],
        recent=recent["items"],
    )


@blp.post("/alerts/<alert_id>/ack")
@signed_in("jobcoach")
def acknowledge(alert_id: str):
    alert = api().acknowledge(alert_id)
    if is_htmx():
        return render("_alert.html", alert=alert, acknowledged_now=True)
    return redirect(url_for("jobcoach.today"))


@dataclass(frozen=True)
class CaseloadView:
    rows: list[dict]
    loads: list[dict]
    contact_days: int | None
    answers: list[Any]


def caseload_view(jobcoach_id: str | None, *more: Callable[[], Any]) -> CaseloadView:
    """The caseload's rows (one jobcoach's, or for an operator the region's), for an operator each jobcoach's
    load, the region's ``contact_days`` as matching answers it, and the answers of ``more``: further reads of
    the page, all asked side by side. The calls run in other threads, so they get the API as this person,
    never Flask's request globals."""
    person_api = api()
    try:
        candidates, caseload, *answers = context().api.together(
            lambda: person_api.candidates(jobcoach_id), lambda: person_api.caseload(jobcoach_id), *more
        )
    except ApiError as exc:
        if exc.status == 422:
            abort(404)  # a jobcoach id no region has
        raise
    rows = domain.caseload_rows(candidates, caseload.entries, caseload.contact_days)
    return CaseloadView(rows, domain.region_loads(caseload.loads, rows), caseload.contact_days, answers)


@blp.get("/caseload")
@signed_in("jobcoach", "operator")
def caseload():
    who = current_person()
    coach = (request.args.get("jobcoach_id") or "").strip() or None if who.role == "operator" else None
    column, descending = domain.caseload_sort(request.args.get("sort"), request.args.get("order"))
    # Placements carry the link to each check-in form: a jobcoach's daily path from here. Asked beside the
    # caseload's own reads rather than after them, so the page waits for the slowest read only.
    person_api = api()
    more = (lambda: person_api.placements(status="active")["items"],) if who.role == "jobcoach" else ()
    view = caseload_view(coach, *more)
    placements = view.answers[0] if view.answers else []
    return render(
        "caseload.html",
        rows=domain.sort_caseload(view.rows, column, descending),
        sort=column,
        descending=descending,
        jobcoach_id=coach,
        placements=placements,
        contact_days=view.contact_days,
    )


@blp.get("/introductions")
@signed_in("jobcoach", "employer")
def introductions():
    page = max(1, request.args.get("page", 1, type=int) or 1)
    person_api = api()
    if current_person().role == "jobcoach":
        # The jobcoach answers for a person: their name, which only the candidate service knows.
        found, candidates = context().api.together(
            lambda: person_api.introductions(page=page), lambda: person_api.candidates()
        )
        names = {candidate["id"]: candidate.get("display_name") or "" for candidate in candidates}
    else:
        found, names = person_api.introductions(page=page), {}
    return render(
        "introductions.html",
        introductions=found["items"],
        names=names,
        total=found["total"],
        page=page,
        more=page * found["page_size"] < found["total"],
        answered=request.args.get("answered"),
    )


@blp.post("/introductions/<introduction_id>/<any(accept, decline):answer>")
@signed_in("jobcoach")
def answer_introduction(introduction_id: str, answer: str):
    try:
        api().answer_introduction(introduction_id, answer)
    except ApiError as exc:
        if exc.status != 409:
            raise
        # Answered in another tab, or cancelled when consent was withdrawn: the list shows how it stands.
        return redirect(url_for("jobcoach.introductions", answered="already"), 303)
    return redirect(url_for("jobcoach.introductions", answered=answer), 303)


# Candidates


def _candidate_page(candidate: dict | None, values: dict, errors: dict, status: int = 200, **extra):
    return render(
        "candidate.html",
        status,
        candidate=candidate,
        values=values,
        errors=errors,
        supports=SUPPORT_CODES,
        ladder=LADDER_STEPS,
        **extra,
    )


@blp.route("/candidates/new", methods=["GET", "POST"])
@signed_in("jobcoach")
def new_candidate():
    if request.method == "GET":
        defaults = {"consent.matching": "on", "ladder_step": "3"}
        return _candidate_page(None, defaults, {})
    try:
        created = api().register_candidate(domain.candidate_payload(request.form))
    except ApiError as exc:
        if exc.status != 422:
            raise
        return _candidate_page(None, request.form, domain.field_errors(exc.errors, domain.CANDIDATE_FIELDS), 422)
    return redirect(url_for("jobcoach.candidate", candidate_id=created["id"], saved="new"), 303)


@blp.route("/candidates/<candidate_id>", methods=["GET", "POST"])
@signed_in("jobcoach", "operator")
def candidate(candidate_id: str):
    stored = api().candidate(candidate_id)
    if request.method == "POST":
        try:
            api().change_candidate(candidate_id, domain.candidate_payload(request.form), domain.form_etag(request.form))
        except ApiError as exc:
            if exc.status in domain.STALE_FORM:
                # Shown again as typed, with the tag just read: saving once more is a choice made knowingly.
                return _candidate_page(stored.body, request.form, {}, 409, stale=exc.status, etag=stored.etag)
            if exc.status != 422:
                raise
            errors = domain.field_errors(exc.errors, domain.CANDIDATE_FIELDS)
            return _candidate_page(
                stored.body, request.form, errors, 422, matches=None, etag=request.form.get(domain.ETAG_FIELD)
            )
        return redirect(url_for("jobcoach.candidate", candidate_id=candidate_id, saved="1"), 303)
    matches = _matches(candidate_id) if current_person().role == "jobcoach" else None
    return _candidate_page(
        stored.body,
        domain.candidate_form(stored.body),
        {},
        matches=matches,
        saved=request.args.get("saved"),
        etag=stored.etag,
    )


def _matches(candidate_id: str) -> dict:
    """The ranked vacancies; ``pending`` while the matching service has not yet taken in a new candidate."""
    try:
        found = api().candidate_matches(candidate_id)
    except ApiError as exc:
        if exc.status == 404:
            return {"pending": True, "items": []}
        raise
    items = [{**item, "summary": domain.match_summary(item.get("explanation") or {})} for item in found["items"]]
    return {"pending": False, "items": items, "reason": found.get("reason")}


@blp.get("/candidates/<candidate_id>/matches")
@signed_in("jobcoach")
def candidate_matches(candidate_id: str):
    if not is_htmx():
        return redirect(url_for("jobcoach.candidate", candidate_id=candidate_id))
    stored = api().candidate(candidate_id).body
    return render("_matches.html", candidate=stored, matches=_matches(candidate_id), supports=SUPPORT_CODES)


@blp.post("/candidates/<candidate_id>/placements")
@signed_in("jobcoach")
def start_placement(candidate_id: str):
    tagged = api().candidate(candidate_id)
    stored = tagged.body
    payload = domain.placement_payload(candidate_id, request.form, request.form.getlist("supports_agreed"))
    try:
        placement = api().start_placement(payload)
    except ApiError as exc:
        if exc.status not in (404, 409, 422):
            raise
        errors = domain.field_errors(exc.errors, domain.PLACEMENT_FIELDS) if exc.status == 422 else {}
        if exc.status == 409:
            errors = {domain.FORM_ERROR: ["Deze kandidaat heeft hier al een plaatsing, of de vacature is niet open."]}
        if exc.status == 404:
            errors = {domain.FORM_ERROR: ["Deze vacature is er niet (meer), of de kandidaat is nog niet verwerkt."]}
        return _candidate_page(
            stored,
            domain.candidate_form(stored),
            {},
            422 if exc.status == 422 else exc.status,
            matches=_matches(candidate_id),
            placement_errors=errors,
            placement_values=request.form,
            etag=tagged.etag,
        )
    return redirect(url_for("jobcoach.placement", placement_id=placement["id"], saved="new"), 303)


# Placements


@blp.route("/placements/<placement_id>", methods=["GET", "POST"])
@signed_in("jobcoach", "operator")
def placement(placement_id: str):
    values: dict = {"date": context().clock().date().isoformat(), "absence_days": "0"}
    errors: dict = {}
    status = 200
    stale = None
    if request.method == "POST":
        payload = domain.checkin_payload(request.form, request.form.getlist("signals"))
        try:
            api().check_in(placement_id, payload, domain.form_etag(request.form))
        except ApiError as exc:
            if exc.status not in (409, 422, *domain.STALE_FORM):
                raise
            values, status = request.form, exc.status
            if exc.status in domain.STALE_FORM:
                # Another check-in or the end came first; the form, as typed, now carries the tag read below.
                stale, status = exc.status, 409
            elif exc.status == 422:
                errors = domain.field_errors(exc.errors, domain.CHECKIN_FIELDS)
            else:
                errors = {domain.FORM_ERROR: ["Deze plaatsing is afgelopen, of heeft al een check-in op die datum."]}
        else:
            return redirect(url_for("jobcoach.placement", placement_id=placement_id, saved="checkin"), 303)
    tagged = api().placement(placement_id)
    found = tagged.body
    # A form refused for its fields keeps the tag it was shown with, so that a change by someone else
    # meanwhile is still noticed when it is sent again.
    shown_with = request.form.get(domain.ETAG_FIELD) if request.method == "POST" and not stale else tagged.etag
    return render(
        "placement.html",
        status,
        placement=found,
        etag=shown_with,
        stale=stale,
        values=values,
        errors=errors,
        signals=domain.SIGNALS,
        chosen_signals=request.form.getlist("signals") if request.method == "POST" else [],
        wellbeing_chart=_wellbeing_chart(found),
        hours_chart=_hours_chart(found),
        saved=request.args.get("saved"),
    )


def _oldest_first(found: dict) -> list[dict]:
    return sorted(found.get("recent_checkins") or [], key=lambda checkin: checkin["date"])


def _day(text: str) -> str:
    return date.fromisoformat(text).strftime("%d-%m")


def _wellbeing_chart(found: dict):
    points = [charts.Point(_day(c["date"]), c["wellbeing"]) for c in _oldest_first(found)]
    return charts.line_chart("welbevinden", "Welbevinden per check-in (1 tot 5)", points, low=1, high=5)


def _hours_chart(found: dict):
    points = [charts.Point(_day(c["date"]), c["hours_worked"]) for c in _oldest_first(found)]
    top = max([found.get("agreed_hours") or 0, *(p.value or 0 for p in points)]) or 1
    return charts.line_chart(
        "uren",
        "Gewerkte uren per week, gestippeld: afgesproken uren",
        points,
        low=0,
        high=top,
        reference=found.get("agreed_hours"),
    )


# Channels


@blp.route("/channels", methods=["GET", "POST"])
@signed_in("jobcoach")
def channels():
    subject = current_person().subject
    # The registry gives every jobcoach account its jobcoach id (see shared.registry.ROLES_WITH_SUBJECT).
    assert subject is not None, "a jobcoach account without a jobcoach id"
    if request.method == "POST":
        try:
            api().set_channels(subject, domain.channels_payload(request.form), domain.form_etag(request.form))
        except ApiError as exc:
            if exc.status in domain.STALE_FORM:
                now = api().channels(subject)
                return render(
                    "channels.html",
                    409,
                    values=request.form,
                    errors={},
                    stale=exc.status,
                    etag=now.etag if now else None,
                    secret_set=bool(now and now.body.get("webhook_secret_set")),
                )
            if exc.status != 422:
                raise
            return render(
                "channels.html",
                422,
                values=request.form,
                errors=domain.field_errors(exc.errors, domain.CHANNEL_FIELDS),
                etag=request.form.get(domain.ETAG_FIELD),
            )
        return redirect(url_for("jobcoach.channels", saved="1"), 303)
    tagged = api().channels(subject)
    current = tagged.body if tagged else {}
    values = {
        "webhook_url": current.get("webhook_url") or "",
        "email": current.get("email") or "",
        "digest": "on" if current.get("digest") else "",
    }
    return render(
        "channels.html",
        values=values,
        errors={},
        secret_set=current.get("webhook_secret_set"),
        saved=request.args.get("saved"),
        etag=tagged.etag if tagged else None,
    )
