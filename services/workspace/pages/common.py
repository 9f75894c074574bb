"""What every page shares: who is signed in, the API as them, role checks, rendering and error pages."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import abort, current_app, g, redirect, render_template, request, session, url_for

from services.workspace import sessions
from services.workspace.client import Api
from services.workspace.context import WorkspaceContext

ROLE_LABELS = {
    "jobcoach": "Jobcoach",
    "operator": "Regiobeheerder",
    "council": "Cliëntenraad",
    "employer": "Werkgever",
}

# Where each role starts, and which pages it sees in the menu.
HOME = {
    "jobcoach": "jobcoach.today",
    "operator": "region.region",
    "council": "region.insights",
    "employer": "employer.vacancies",
}
NAVIGATION = {
    "jobcoach": [
        ("jobcoach.today", "Vandaag"),
        ("jobcoach.caseload", "Mijn kandidaten"),
        ("jobcoach.new_candidate", "Nieuwe kandidaat"),
        ("jobcoach.introductions", "Kennismakingen"),
        ("jobcoach.channels", "Meldingen instellen"),
    ],
    "operator": [("region.region", "Regio"), ("jobcoach.caseload", "Kandidaten"), ("region.insights", "Inzicht")],
    "council": [("region.insights", "Inzicht")],
    "employer": [
        ("employer.vacancies", "Vacatures"),
        ("employer.new_vacancy", "Nieuwe vacature"),
        ("jobcoach.introductions", "Kennismakingen"),
    ],
}


def context() -> WorkspaceContext:
    return current_app.extensions["workspace"]


def person() -> sessions.SignedIn | None:
    """The signed-in person of this request, looked up once."""
    if "person" not in g:
        token = session.get("sid")
        g.person = sessions.resume(context(), token) if isinstance(token, str) else None
        if token and g.person is None:
            session.clear()
    return g.person


def current_person() -> sessions.SignedIn:
    """The signed-in person, in a view behind :func:`signed_in` (which sends everyone else to sign in)."""
    who = person()
    assert who is not None, "only for views behind @signed_in"
    return who


def api() -> Api:
    signed_in = current_person()
    return context().api.as_person(signed_in.api_key, signed_in.tenant)


def signed_in(*roles: str) -> Callable:
    """Only for a signed-in person (else to the sign-in page) of one of ``roles`` (else the 403 page)."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            who = person()
            if who is None:
                return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
            if roles and who.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapper

    return decorator


def safe_next(target: str | None) -> str | None:
    """A path on this site to return to after signing in; nothing that leads elsewhere."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def home_url() -> str:
    who = person()
    return url_for(HOME[who.role]) if who else url_for("auth.sign_in")


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


def render(template: str, status: int = 200, **values: Any):
    return render_template(template, **values), status
