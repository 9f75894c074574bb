"""The matching service's background process: it consumes candidate and vacancy events into its read
models, proposes matches, and publishes its outbox."""

from __future__ import annotations

from services.matching import config, metrics, placements, scheduler, store
from services.matching.handlers import TOMBSTONE_HANDLERS, build_handlers
from services.matching.index import MatchingEngine
from services.matching.settings import MatchingSettings
from shared.clock import clock_from_env
from shared.config import Settings
from shared.db import Database
from shared.registry import Registry
from shared.topics import Topic
from shared.worker import WorkerLoop, consumer_loop, main_for, outbox_relay_loop

TOPICS = [str(Topic.CANDIDATE_EVENTS), str(Topic.VACANCY_EVENTS), str(Topic.ALERT_EVENTS)]


def bootstrap(settings: Settings, db: Database | None = None) -> list[WorkerLoop]:
    db = db or Database(settings.database_url)
    registry = Registry(Database(settings.registry_database_url), tenant_settings=MatchingSettings)
    # Each tenant's threshold, weights and reranker, and the live index, from the registry and this database.
    engine = MatchingEngine.for_process(db, registry, policy=config.refit_policy(settings))
    handlers = placements.with_placement_handlers(build_handlers(engine))
    tombstone_handlers = placements.with_placement_tombstone_handlers(TOMBSTONE_HANDLERS)
    scan_every = settings.float_setting("CHECKIN_SCAN_SECONDS", 60.0)
    return [
        consumer_loop(settings, db, store.processed_events, TOPICS, handlers, tombstone_handlers),
        outbox_relay_loop(settings, db, store.outbox),
        scheduler.scheduler_loop(db, registry.settings, clock_from_env(), interval_s=scan_every),
        WorkerLoop("index-warmup", lambda stop: engine.cache.warm(registry.tenant_slugs, stop)),
    ]


if __name__ == "__main__":
    settings = config.load()
    main_for(settings, bootstrap(settings), prime_tenant_metrics=metrics.prime_tenant_series)
