"""The notification service's web application."""

from __future__ import annotations

from flask import Flask

from services.notification import api, config, metrics, store
from services.notification.settings import NotificationSettings
from shared.web.app import ServiceContext, build_app


def create_app(context: ServiceContext | None = None) -> Flask:
    return build_app(
        # Acknowledgements are stamped by the context's clock, the same as the worker's alerts and escalations.
        context or ServiceContext.from_settings(config.load(), NotificationSettings),
        [api.blp],
        title="Werkbrug notification service",
        description="Jobcoaches' alert inbox and their webhook and e-mail channels; the operators' escalations.",
        prime_tenant_metrics=metrics.prime_tenant_series,
        audit_log=store.audit_log,
    )
