"""The candidate service's web application."""

from __future__ import annotations

from flask import Flask

from services.candidate import api, config, metrics, store
from shared.web.app import ServiceContext, build_app


def create_app(context: ServiceContext | None = None) -> Flask:
    return build_app(
        context or ServiceContext.from_settings(config.load()),
        [api.blp],
        title="Werkbrug candidate service",
        description="Jobcoaches register candidates: talents, support needs, hours, ladder step, consent.",
        prime_tenant_metrics=metrics.prime_tenant_series,
        audit_log=store.audit_log,
    )
