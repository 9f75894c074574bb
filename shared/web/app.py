"""The application factory every service's ``create_app()`` builds on."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Self

from flask import Flask, Response, current_app, g, jsonify, request
from flask_smorest import Api, Blueprint
from werkzeug.exceptions import HTTPException, InternalServerError

from shared import metrics
from shared.clock import Clock, clock_from_env
from shared.config import Settings
from shared.db import Database, utcnow
from shared.logging import configure_logging
from shared.registry import Registry
from shared.tenant_settings import TenantSettings
from shared.web.blueprint import URL_CONVERTERS
from shared.web.problems import problem_from_http_exception

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
    # Transitional: being replaced by typed fields of each service's own context.
    extras: dict[str, Any] = field(default_factory=dict)

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


class ProblemApi(Api):
    """flask-smorest answering RFC 9457 problem+json instead of its own error body."""

    def handle_http_exception(self, error: HTTPException):
        return problem_from_http_exception(error)


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
) -> Flask:
    settings = context.settings
    configure_logging(settings.service, settings.log_level)
    app = Flask(settings.service)
    app.url_map.converters.update(URL_CONVERTERS)
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        API_TITLE=title,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {"description": description},
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearerAuth": []}],
        },
        JSON_SORT_KEYS=False,
    )
    app.extensions["werkbrug"] = context
    if prime_tenant_metrics is not None:
        metrics.prime_tenant_series_from(context.registry, prime_tenant_metrics)
    api = ProblemApi(app)
    for blueprint in blueprints:
        api.register_blueprint(blueprint)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        # The body never carries the exception: it might hold a row's values. The log carries its class.
        log.error("unhandled error", exc_info=error, extra={"ctx": {"route": _route()}})
        return problem_from_http_exception(InternalServerError())

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok", service=settings.service)

    @app.get("/readyz")
    def readyz():
        checks = {"database": "ok", "kafka": "ok"}
        try:
            context.db.ping()
        except Exception:
            checks["database"] = "unavailable"
        if not kafka_reachable(settings.kafka_bootstrap_servers):
            checks["kafka"] = "unavailable"
        ready = all(value == "ok" for value in checks.values())
        return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503

    @app.get("/metrics")
    def prometheus_metrics():
        return Response(metrics.render_latest(), mimetype="text/plain; version=0.0.4; charset=utf-8")

    @app.before_request
    def _start_timer():
        g.request_started = time.perf_counter()

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


def _route() -> str:
    # The route template, never the concrete path: low-cardinality labels and no ids in logs.
    return request.url_rule.rule if request.url_rule is not None else "unmatched"
