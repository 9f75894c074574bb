"""The matching service's web application."""

from __future__ import annotations

from flask import Flask

from services.matching import api, config, metrics, placements_api
from services.matching.settings import MatchingSettings
from shared.web.app import ServiceContext, build_app


def create_app(context: ServiceContext | None = None) -> Flask:
    return build_app(
        context or ServiceContext.from_settings(config.load(), MatchingSettings),
        [api.blp, placements_api.blp],
        title="Werkbrug matching service",
        description="Rankings of vacancies for candidates and of anonymous candidates for vacancies.",
        prime_tenant_metrics=metrics.prime_tenant_series,
    )
