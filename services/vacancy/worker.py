"""The vacancy service's background process: it publishes the outbox."""

from __future__ import annotations

from services.vacancy import config, metrics, store
from shared.config import Settings
from shared.db import Database
from shared.worker import WorkerLoop, audit_purge_loop, main_for, outbox_relay_loop


def bootstrap(settings: Settings, db: Database | None = None) -> list[WorkerLoop]:
    db = db or Database(settings.database_url)
    return [outbox_relay_loop(settings, db, store.outbox), audit_purge_loop(settings, db, store.audit_log)]


if __name__ == "__main__":
    settings = config.load()
    main_for(settings, bootstrap(settings), prime_tenant_metrics=metrics.prime_tenant_series)
