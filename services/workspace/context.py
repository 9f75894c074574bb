"""The workspace's composition: what a page handler may reach, built once by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass

from services.workspace.client import ApiClient
from services.workspace.config import WorkspaceSettings
from shared.clock import Clock, clock_from_env
from shared.db import Database, utcnow
from shared.registry import Registry


@dataclass
class WorkspaceContext:
    settings: WorkspaceSettings
    db: Database
    registry: Registry
    api: ApiClient
    clock: Clock = utcnow

    @classmethod
    def from_settings(cls, settings: WorkspaceSettings) -> WorkspaceContext:
        return cls(
            settings=settings,
            db=Database(settings.database_url),
            registry=Registry(Database(settings.registry_database_url)),
            api=ApiClient(settings.api_urls, settings.api_timeout_s),
            clock=clock_from_env(),
        )
