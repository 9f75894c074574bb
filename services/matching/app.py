"""The matching service's web application."""

from __future__ import annotations

from flask import Flask

from services.matching import config, metrics, store
from services.matching.caseload import api as caseload_api
from services.matching.context import MatchingContext
from services.matching.introductions import api as introductions_api
from services.matching.placements import api as placements_api
from services.matching.ranking import api as ranking_api
from services.matching.ranking.index_cache import IndexWarming
from services.matching.settings import MatchingSettings
from shared.web.app import ServiceContext, build_app
from shared.web.problems import problem


def create_app(context: ServiceContext | None = None) -> Flask:
    """The app on ``context``; a plain service context gets the process's own ranking engine.

    The tenants' indexes start building at once, in a thread of this process (gunicorn builds the app after
    forking each worker), and the process is not ready until they are built: the first users after a deploy
    do not wait for them.
    """
    if not isinstance(context, MatchingContext):
        context = MatchingContext.around(context or ServiceContext.from_settings(config.load(), MatchingSettings))
    cache = context.engine.cache
    cache.start_warm_up(context.registry.tenant_slugs)
    app = build_app(
        context,
        [ranking_api.blp, placements_api.blp, introductions_api.blp, caseload_api.blp],
        title="Werkbrug matching service",
        description="Rankings of vacancies for candidates and of anonymous candidates for vacancies.",
        prime_tenant_metrics=metrics.prime_tenant_series,
        audit_log=store.audit_log,
        readiness={"indexes": cache.warmed_up},
    )

    @app.errorhandler(IndexWarming)
    def _warming(error: IndexWarming):
        response = problem(503, "This region's matching index is being built; retry after Retry-After.")
        response.headers["Retry-After"] = str(error.retry_after_s)
        return response

    return app
