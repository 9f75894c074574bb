"""Signing in and out, and setting a password from an invitation link."""

from __future__ import annotations

import math

from flask import Blueprint, redirect, request, session, url_for

from services.workspace import sessions
from services.workspace.pages.common import context, home_url, person, render, safe_next
from shared.registry import RegistryError

blp = Blueprint("auth", __name__)

WRONG = "Het e-mailadres of het wachtwoord klopt niet."
SESSION_ENDED = "Je bent uitgelogd, omdat je toegang is ingetrokken of verlopen. Log opnieuw in om verder te gaan."


def _client_address() -> str:
    # Behind a proxy, gunicorn's forwarded_allow_ips and ProxyFix decide what remote_addr is.
    return request.remote_addr or "unknown"


@blp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        if person() is not None:
            return redirect(next_url or home_url())
        notice = SESSION_ENDED if request.args.get("ended") else None
        return render("sign_in.html", next_url=next_url, email="", notice=notice)
    email = (request.form.get("email") or "").strip()
    password = request.form.get("password") or ""
    outcome = sessions.sign_in(context(), email, password, _client_address())
    if isinstance(outcome, sessions.Throttled):
        minutes = max(1, math.ceil(outcome.retry_after.total_seconds() / 60))
        message = f"Te veel pogingen. Probeer het over {minutes} minuten opnieuw."
        page, status = render("sign_in.html", 429, next_url=next_url, email=email, error=message)
        return page, status, {"Retry-After": str(math.ceil(outcome.retry_after.total_seconds()))}
    if outcome is None:
        return render("sign_in.html", 200, next_url=next_url, email=email, error=WRONG)
    # A fresh cookie (and CSRF token) at sign-in: nothing set before it carries over into the session.
    session.clear()
    session["sid"] = outcome
    session.permanent = True
    return redirect(next_url or url_for("auth.after_sign_in"))


@blp.get("/welcome")
def after_sign_in():
    return redirect(home_url())


@blp.route("/sign-out", methods=["GET", "POST"])
def sign_out():
    if request.method == "GET":
        if person() is None:
            return redirect(url_for("auth.sign_in"))
        return render("sign_out.html")
    token = session.get("sid")
    if isinstance(token, str):
        sessions.sign_out(context(), token)
    session.clear()
    return render("signed_out.html")


@blp.route("/set-password", methods=["GET", "POST"])
def set_password():
    token = request.values.get("token") or ""
    invited = context().registry.invitation(token) if token else None
    if invited is None:
        return render("set_password.html", 404, token=None)
    if request.method == "GET":
        return render("set_password.html", token=token, email=invited.email)
    password = request.form.get("password") or ""
    if password != (request.form.get("password_again") or ""):
        return render(
            "set_password.html", token=token, email=invited.email, error="De twee wachtwoorden zijn niet gelijk."
        )
    try:
        redeemed = context().registry.redeem_invitation(token, password)
    except RegistryError:
        return render(
            "set_password.html",
            token=token,
            email=invited.email,
            error="Kies een wachtwoord van minstens 12 tekens.",
        )
    if redeemed is None:
        return render("set_password.html", 404, token=None)
    return render("password_set.html")
