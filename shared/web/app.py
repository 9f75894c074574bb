"""The application factory every service's ``create_app()`` builds on."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self

import sqlalchemy as sa
from flask import Flask, Response, current_app, g, jsonify, request
from flask_smorest import Blueprint
from werkzeug.exceptions import InternalServerError

from shared import metrics, tracing
from shared.clock import Clock, clock_from_env
from shared.config import ConfigError, Settings, trusted_proxy_hops
from shared.db import Database, StaleVersion, is_transient, utcnow
from shared.logging import configure_logging
from shared.registry import Registry
from shared.tenant_settings import TenantSettings
from shared.web.audit import audit_blueprint
from shared.web.blueprint import URL_CONVERTERS
from shared.web.conditional import STALE_DETAIL
from shared.web.openapi import ProblemApi, init_openapi, openapi_config
from shared.web.problems import VALIDATION_PROBLEM, problem, problem_from_http_exception
from shared.web.proxies import trust_proxies
from shared.web.ratelimit import RateLimitConfig, init_rate_limits
from shared.web.request_id import init_request_ids

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024


@dataclass
class ServiceContext:
    """What a request handler may reach: the service's settings, its database, the key registry and the
    clock. A service that needs more subclasses it with typed fields; ``create_app`` builds it (the
    composition root) and tests hand in their own."""

    settings: Settings
    db: Database
    registry: Registry
    clock: Clock = utcnow

    @classmethod
    def from_settings(
        cls, settings: Settings, tenant_settings: type[TenantSettings] = TenantSettings, **fields: Any
    ) -> Self:
        """The production context: the service's database and the registry from its settings, reading the
        service's own per-tenant settings; the clock from the environment (tests move it through a shared
        file)."""
        fields.setdefault("clock", clock_from_env())
        registry = Registry(Database(settings.registry_database_url), tenant_settings=tenant_settings)
        return cls(settings, Database(settings.database_url), registry, **fields)


def current_context() -> ServiceContext:
    """The context of the app serving this request."""
    return current_app.extensions["werkbrug"]


__all__ = ["ProblemApi", "ServiceContext", "build_app", "current_context"]


def rate_limit_config(settings: Settings) -> RateLimitConfig:
    defaults = RateLimitConfig().defaults
    if settings.ratelimit_defaults:
        try:
            given = json.loads(settings.ratelimit_defaults)
        except ValueError as exc:
            raise ConfigError("RATELIMIT_DEFAULTS must be a JSON object of role to limit") from exc
        if not isinstance(given, dict):
            raise ConfigError("RATELIMIT_DEFAULTS must be a JSON object of role to limit")
        defaults = {**defaults, **{str(role): str(limit) for role, limit in given.items()}}
    anonymous = defaults.pop("anonymous", RateLimitConfig().anonymous)
    return RateLimitConfig(
        enabled=settings.ratelimit_enabled,
        storage_uri=settings.ratelimit_storage_uri or None,
        defaults=defaults,
        anonymous=anonymous,
        sync_hits=settings.ratelimit_sync_hits,
    )


TRANSIENT_DETAIL = "The service's database is briefly unavailable; nothing was changed. Try again shortly."
TRANSIENT_RETRY_AFTER_S = 5


def kafka_reachable(bootstrap_servers: str, timeout_s: float = 1.0) -> bool:
    """Whether any bootstrap broker accepts a connection: enough for readiness, cheap enough per probe."""
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False


def build_app(
    context: ServiceContext,
    blueprints: Iterable[Blueprint],
    *,
    title: str,
    description: str,
    prime_tenant_metrics: Callable[[list[str]], None] | None = None,
    audit_log: sa.Table | None = None,
    readiness: Mapping[str, Callable[[], bool]] | None = None,
) -> Flask:
    """The service's app; with ``audit_log`` (its audit table) it also serves the operators' audit route;
    ``readiness`` adds checks of its own to the database's (true when met)."""
    settings = context.settings
    configure_logging(settings.service, settings.log_level)
    tracing.configure(settings.service)
    app = Flask(settings.service)
    app.url_map.converters.update(URL_CONVERTERS)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, JSON_SORT_KEYS=False, **openapi_config(title, description))
    trust_proxies(app, trusted_proxy_hops())
    app.extensions["werkbrug"] = context
    if prime_tenant_metrics is not None:
        metrics.prime_tenant_series_from(context.registry, prime_tenant_metrics)
    api = init_openapi(app, URL_CONVERTERS.values())
    for blueprint in blueprints:
        api.register_blueprint(blueprint)
    if audit_log is not None:
        api.register_blueprint(audit_blueprint(audit_log))
    init_request_ids(app)
    init_rate_limits(app, rate_limit_config(settings), context.db)

    @app.errorhandler(StaleVersion)
    def _stale(error: StaleVersion):
        # A conditional write lost to another writer after If-Match was checked: nothing was changed.
        return problem(412, STALE_DETAIL)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        if is_transient(error):
            # The database's passing state (read-only after a failover, no connection free), not the
            # request's fault: the transaction was rolled back, so a retry is safe and may well succeed.
            log.warning("database briefly unavailable", extra={"ctx": {"route": _route()}})
            answer = problem(503, TRANSIENT_DETAIL)
            answer.headers["Retry-After"] = str(TRANSIENT_RETRY_AFTER_S)
            return answer
        # The body never carries the exception: it might hold a row's values. The log carries its class.
        log.error("unhandled error", exc_info=error, extra={"ctx": {"route": _route()}})
        return problem_from_http_exception(InternalServerError())

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", service=settings.service)

    @app.get("/readyz")
    def readyz():
        # Ready means the database answers. The broker's state is told but does not count: writes go to the
        # outbox, so a broker outage must not take every web process out of its load balancer.
        checks = {"database": "ok", "kafka": "ok"}
        try:
            context.db.ping()
        except Exception:
            checks["database"] = "unavailable"
        if not kafka_reachable(settings.kafka_bootstrap_servers):
            checks["kafka"] = "unavailable"
        own = {name: "ok" if check() else "not yet" for name, check in (readiness or {}).items()}
        checks.update(own)
        ready = checks["database"] == "ok" and all(state == "ok" for state in own.values())
        return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503

    @app.get("/metrics")
    def prometheus_metrics():
        return Response(metrics.render_latest(), mimetype="text/plain; version=0.0.4; charset=utf-8")

    @app.before_request
    def _start_timer():
        g.request_started = time.perf_counter()

    @app.before_request
    def _join_trace():
        # The request's trace (the caller's, or a new one) is what the events it writes carry on.
        if request.path.startswith("/v1/"):
            carrier = {name: request.headers.get(name) for name in (tracing.TRACEPARENT, tracing.TRACESTATE)}
            span = tracing.traced(f"{request.method} {_route()}", "server", carrier)
            span.__enter__()
            g.trace_span = span

    @app.teardown_request
    def _leave_trace(error: BaseException | None):
        span = g.pop("trace_span", None)
        if span is not None:
            span.__exit__(type(error) if error else None, error, None)

    @app.before_request
    def _refuse_unknown_query_parameters():
        # Routes with query arguments refuse unknown ones in their parser (shared.web.blueprint); the same
        # holds where a route takes none: `?status=open` on a single resource is a mistake to say so.
        if request.args and request.path.startswith("/v1/") and not _declares_query(app):
            errors = {name: ["Unknown field."] for name in request.args}
            return problem(422, "The request has unknown query parameters.", type_=VALIDATION_PROBLEM, errors=errors)
        return None

    @app.after_request
    def _record(response: Response):
        route = _route()
        if route not in ("/metrics", "/healthz", "/readyz"):
            elapsed = time.perf_counter() - g.get("request_started", time.perf_counter())
            metrics.HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
            metrics.HTTP_DURATION.labels(route).observe(elapsed)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


def _declares_query(app: Flask) -> bool:
    view = app.view_functions.get(request.endpoint) if request.endpoint else None
    if view is None:
        return True  # not ours to judge: 404 and 405 answer it
    view_class = getattr(view, "view_class", None)
    function = getattr(view_class, request.method.lower(), None) if view_class is not None else view
    parameters = getattr(function, "_apidoc", {}).get("arguments", {}).get("parameters", [])
    return any(isinstance(parameter, dict) and parameter.get("in") == "query" for parameter in parameters)


def _route() -> str:
    # The route template, never the concrete path: low-cardinality labels and no ids in logs.
    return request.url_rule.rule if request.url_rule is not None else "unmatched"
