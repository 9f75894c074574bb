"""The services of one installation, in the order they are migrated and started, and what each contributes
to the whole: its ports, its database migrations, its per-tenant settings and its admin commands."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from services.candidate import config as candidate_config
from services.matching import cli as matching_cli
from services.matching import config as matching_config
from services.notification import config as notification_config
from services.vacancy import config as vacancy_config
from services.workspace import cli as workspace_cli
from shared.config import Settings
from shared.tenant_settings import TenantSettings, combine

CONFIGS = (candidate_config, vacancy_config, matching_config, notification_config)
SERVICES: tuple[str, ...] = tuple(config.SERVICE for config in CONFIGS)
SERVICE_PORTS: dict[str, int] = {config.SERVICE: config.PORT for config in CONFIGS}
WORKER_METRICS_PORTS: dict[str, int] = {config.SERVICE: config.WORKER_METRICS_PORT for config in CONFIGS}

# Each adds its own subcommands to ``werkbrug``.
COMMANDS: tuple[Callable, ...] = (matching_cli.add_commands, workspace_cli.add_commands)


def settings_of(service: str) -> Settings:
    """The service's settings as its own processes read them from this environment."""
    return {config.SERVICE: config for config in CONFIGS}[service].load()


def metric_modules() -> tuple[ModuleType, ...]:
    """Every module defining Prometheus metrics, the common ones and each service's own: the names and labels
    dashboards and alert rules may use."""
    # Imported here, not above: defining the metrics registers them, which only their readers need.
    from services.candidate import metrics as candidate_metrics
    from services.matching import metrics as matching_metrics
    from services.notification import metrics as notification_metrics
    from services.vacancy import metrics as vacancy_metrics
    from shared import metrics

    return (metrics, candidate_metrics, vacancy_metrics, matching_metrics, notification_metrics)


def migrations() -> dict[str, Path]:
    """Each service's migrations directory."""
    # Imported here, not above: the stores' tables are only needed to migrate, and every other command
    # would pay for loading them.
    from services.candidate import store as candidate_store
    from services.matching import store as matching_store
    from services.notification import store as notification_store
    from services.vacancy import store as vacancy_store

    stores = (candidate_store, vacancy_store, matching_store, notification_store)
    return dict(zip(SERVICES, (store.MIGRATIONS for store in stores), strict=True))


@functools.cache
def tenant_settings() -> type[TenantSettings]:
    """Every service's per-tenant settings as one: what ``werkbrug tenants set`` shows and changes."""
    # Imported here, not above: matching's defaults come with its scoring code (numpy, scikit-learn), which
    # only this command needs.
    from services.matching.settings import MatchingSettings
    from services.notification.settings import NotificationSettings
    from shared.web.settings import WebSettings

    return combine(MatchingSettings, NotificationSettings, WebSettings)
