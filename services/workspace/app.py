"""The workspace's web application: ``create_app()`` builds it; nothing happens at import time."""

from __future__ import annotations

import logging
import re
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import Flask, Response, current_app, g, jsonify, redirect, request, send_from_directory, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from services.workspace import config, domain, sessions
from services.workspace.client import ApiError
from services.workspace.context import WorkspaceContext
from services.workspace.pages import auth, employer, jobcoach, region
from services.workspace.pages.common import NAVIGATION, ROLE_LABELS, is_htmx, person, render, safe_next
from shared import metrics
from shared.config import trusted_proxy_hops
from shared.logging import configure_logging
from shared.registry import prepare_password_checks
from shared.web.proxies import trust_proxies

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
LOCAL_TIME = ZoneInfo("Europe/Amsterdam")
# A value no route holds, marking where a row's own value goes in a link built once (see ``row_url``).
ROW_VALUE = "row-value-a7f3c1"
PATH_SAFE = "!$&'()*+,/:;=@"  # what a route's string part leaves unquoted (werkzeug's default converter)
TENANT = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
# Only our own files: no inline script or style, no framing, forms post only here.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
ERROR_PAGES = {
    400: ("Dit verzoek klopt niet", "Het formulier was verlopen of onvolledig. Ga terug en probeer het opnieuw."),
    403: ("Geen toegang", "Deze pagina is niet voor jouw rol. Ga naar je startpagina."),
    404: ("Niet gevonden", "Deze pagina bestaat niet, of is niet van jou."),
    405: ("Dit kan hier niet", "Deze pagina werkt niet op deze manier."),
    409: ("Dit kan nu niet", "Dit botst met iets dat er al is. Laad de pagina opnieuw."),
    413: ("Te veel tekst", "Het formulier is te groot. Maak het korter."),
    429: ("Even wachten", "Je hebt te vaak iets geprobeerd. Wacht even en probeer het dan opnieuw."),
    500: ("Er ging iets mis", "Dit is onze fout. Probeer het later nog eens."),
    503: ("Even niet bereikbaar", "Een deel van Werkbrug reageert nu niet. Probeer het over een paar minuten opnieuw."),
}


def create_app(context: WorkspaceContext | None = None) -> Flask:
    context = context or WorkspaceContext.from_settings(config.load())
    settings = context.settings
    configure_logging(config.SERVICE, settings.log_level)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        SESSION_COOKIE_NAME="werkbrug_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.idle_minutes),
        SESSION_REFRESH_EACH_REQUEST=True,
        # The token lives as long as the session; the session's idle limit is what ends it.
        WTF_CSRF_TIME_LIMIT=None,
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.extensions["workspace"] = context
    trust_proxies(app, trusted_proxy_hops())
    CSRFProtect(app)
    prepare_password_checks()
    for blueprint in (auth.blp, jobcoach.blp, region.blp, employer.blp):
        app.register_blueprint(blueprint)
    _add_template_helpers(app, context)
    _add_error_pages(app)
    _add_operations(app, context)
    return app


def _add_template_helpers(app: Flask, context: WorkspaceContext) -> None:
    app.jinja_env.globals.update(
        support_label=domain.support_label,
        ladder_label=domain.ladder_label,
        percent=domain.percent,
        alert_type_label=lambda code: domain.ALERT_TYPES.get(code, code),
        signal_label=lambda code: domain.SIGNALS.get(code, code),
        level_label=lambda code: domain.SUPPORT_LEVEL_LABELS.get(code, code),
        caseload_label=lambda code: domain.CHIP_LABELS.get(code, code),
        urgent_chips=domain.URGENT_CHIPS,
        introduction_label=lambda code: domain.INTRODUCTION_STATUSES.get(code, code),
        form_error=domain.FORM_ERROR,
    )

    @app.template_global()
    def row_url(endpoint: str, name: str, value: str) -> str:
        """``url_for(endpoint, name=value)`` for a link drawn on every row of a long list (the inbox draws
        three per alert): the route is built once per request and each row's value set in, quoted as the
        route's string part quotes it."""
        built = g.setdefault("row_urls", {})
        if endpoint not in built:
            values: dict[str, Any] = {name: ROW_VALUE}
            built[endpoint] = url_for(endpoint, **values).split(ROW_VALUE)
        before, after = built[endpoint]
        return f"{before}{quote(str(value), safe=PATH_SAFE)}{after}"

    @app.template_filter("day")
    def _day(value: str | None) -> str:
        if not value:
            return ""
        text = str(value)
        return f"{text[8:10]}-{text[5:7]}-{text[0:4]}" if len(text) >= 10 else text

    @app.template_filter("moment")
    def _moment(value: str | None) -> str:
        """An API timestamp (UTC) as the regions read it: Dutch local time."""
        if not value:
            return ""
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
        if moment.tzinfo is not None:
            moment = moment.astimezone(LOCAL_TIME)
        return moment.strftime("%d-%m-%Y %H:%M")

    @app.context_processor
    def _page_globals() -> dict:
        who = person() if request.endpoint not in (None, "static") else None
        theme = who.tenant if who and (context.settings.theme_dir / f"{who.tenant}.css").is_file() else None
        return {
            "who": who,
            "role_label": ROLE_LABELS.get(who.role, "") if who else "",
            "navigation": NAVIGATION.get(who.role, []) if who else [],
            "theme_tenant": theme,
        }


def _add_error_pages(app: Flask) -> None:
    def page(status: int, headers: dict | None = None):
        title, text = ERROR_PAGES.get(status, ERROR_PAGES[500])
        body, code = render("error.html", status, title=title, text=text, code=status)
        return body, code, headers or {}

    @app.errorhandler(CSRFError)
    def _csrf(_error):
        return page(400)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        return page(error.code if error.code in ERROR_PAGES else 500)

    @app.errorhandler(ApiError)
    def _api(error: ApiError):
        if error.status == 401:
            # The session's key was revoked (or expired) under a live session: whoever revoked it meant the
            # person to be out, so the session ends here too, and the sign-in page says why.
            token = session.get("sid")
            if isinstance(token, str):
                sessions.sign_out(current_app.extensions["workspace"], token)
            session.clear()
            target = url_for("auth.sign_in", ended=1, next=safe_next(request.full_path.rstrip("?")))
            if is_htmx():
                # A fragment request would swap the sign-in page into the page; htmx navigates instead.
                return "", 200, {"HX-Redirect": target}
            return redirect(target)
        if error.status in (403, 404, 409, 413):
            return page(error.status)
        if error.status == 429:
            return page(429, {"Retry-After": error.problem.get("retry_after", "5")})
        return page(503)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        # Never a stack trace for the browser: the page says sorry, the log has the exception's class.
        log.error("unhandled error", exc_info=error, extra={"ctx": {"route": _route()}})
        return page(500)


def _route() -> str:
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


def _add_operations(app: Flask, context: WorkspaceContext) -> None:
    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", service=config.SERVICE)

    @app.get("/readyz")
    def readyz():
        checks = {"database": "ok", "registry": "ok"}
        for name, db in (("database", context.db), ("registry", context.registry.db)):
            try:
                db.ping()
            except Exception:
                checks[name] = "unavailable"
        ready = all(value == "ok" for value in checks.values())
        return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503

    @app.get("/metrics")
    def prometheus_metrics():
        return Response(metrics.render_latest(), mimetype="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/theme/<tenant>.css")
    def theme(tenant: str):
        """A region's own colours and logo as design-token overrides, from the theme directory."""
        if not TENANT.match(tenant) or not (context.settings.theme_dir / f"{tenant}.css").is_file():
            return Response("", mimetype="text/css")
        return send_from_directory(context.settings.theme_dir, f"{tenant}.css", mimetype="text/css", max_age=300)

    sweep = sessions.IdleSweep()
    quiet_routes = ("/metrics", "/healthz", "/readyz", "/static/<path:filename>")

    @app.before_request
    def _start_timer():
        g.request_started = time.perf_counter()
        if _route() not in quiet_routes:
            sweep(context)

    @app.after_request
    def _headers(response: Response):
        route = _route()
        if route not in quiet_routes:
            elapsed = time.perf_counter() - g.get("request_started", time.perf_counter())
            metrics.HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
            metrics.HTTP_DURATION.labels(route).observe(elapsed)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response
