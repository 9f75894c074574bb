"""The matching service's background process: it consumes candidate and vacancy events into its read
models, proposes matches, follows placements' candidates, reports overdue check-ins, and publishes its
outbox."""

from __future__ import annotations

from functools import partial

from services.matching import config, metrics, outbox, store
from services.matching.caseload import handlers as caseload
from services.matching.introductions import handlers as introductions
from services.matching.placements import handlers as placements
from services.matching.placements import scheduler
from services.matching.ranking import handlers as ranking
from services.matching.ranking.engine import MatchingEngine
from services.matching.settings import MatchingSettings
from shared.clock import Clock, clock_from_env
from shared.config import Settings
from shared.consumer import HandlerTable, TombstoneTable
from shared.db import Database, utcnow
from shared.events import EventType
from shared.loops import WorkerLoop
from shared.registry import Registry
from shared.topics import Topic
from shared.worker import audit_purge_loop, consumer_loop, main_for, outbox_relay_loop

TOPICS = [str(Topic.CANDIDATE_EVENTS), str(Topic.VACANCY_EVENTS), str(Topic.ALERT_EVENTS)]


def handler_table(engine: MatchingEngine, clock: Clock = utcnow) -> HandlerTable:
    """Everything that runs on each event, in order, in the event's one transaction."""
    on_candidate_profile = partial(ranking.on_candidate_profile, engine)
    contact_on_profile = partial(caseload.on_candidate_profile, clock=clock)
    on_vacancy_changed = partial(ranking.on_vacancy_changed, engine)
    return {
        EventType.CANDIDATE_REGISTERED: [
            on_candidate_profile,
            placements.on_candidate_profile,
            introductions.on_candidate_profile,
            contact_on_profile,
        ],
        EventType.CANDIDATE_UPDATED: [
            on_candidate_profile,
            placements.on_candidate_profile,
            introductions.on_candidate_profile,
            contact_on_profile,
        ],
        EventType.CANDIDATE_ERASED: [
            ranking.on_candidate_erased,
            placements.on_candidate_erased,
            introductions.on_candidate_erased,
            caseload.on_candidate_erased,
        ],
        EventType.VACANCY_POSTED: [on_vacancy_changed],
        EventType.VACANCY_UPDATED: [on_vacancy_changed],
        EventType.VACANCY_CLOSED: [ranking.on_vacancy_closed],
        EventType.ALERT_RAISED: [caseload.on_alert_raised],
        EventType.ALERT_ACKNOWLEDGED: [placements.on_alert_acknowledged, caseload.on_alert_acknowledged],
        EventType.JOBCOACH_CHANNELS_CHANGED: [introductions.on_jobcoach_channels_changed],
    }


# A tombstone may be all a late reader ever sees of an erasure, so it erases everywhere the event does.
TOMBSTONE_HANDLERS: TombstoneTable = {
    Topic.CANDIDATE_EVENTS: [
        ranking.on_candidate_tombstone,
        placements.on_candidate_tombstone,
        introductions.on_candidate_tombstone,
        caseload.on_candidate_tombstone,
    ],
}


def bootstrap(settings: Settings, db: Database | None = None) -> list[WorkerLoop]:
    db = db or Database(settings.database_url)
    registry = Registry(Database(settings.registry_database_url), tenant_settings=MatchingSettings)
    # Each tenant's threshold, weights and reranker, and the live index, from the registry and this database.
    # An event waits for its tenant's first build however long it takes: there is no one to answer 503 to.
    engine = MatchingEngine.for_process(
        db,
        registry,
        policy=config.refit_policy(settings),
        memory_budget_bytes=config.index_memory_budget_bytes(settings),
    )
    scan_every = settings.float_setting("CHECKIN_SCAN_SECONDS", 60.0)
    clock = clock_from_env()
    return [
        consumer_loop(settings, db, outbox.processed_events, TOPICS, handler_table(engine, clock), TOMBSTONE_HANDLERS),
        outbox_relay_loop(settings, db, outbox.outbox),
        audit_purge_loop(settings, db, store.audit_log, clock),
        scheduler.scheduler_loop(
            db,
            registry.settings,
            clock,
            interval_s=scan_every,
            ranking_log_kept=config.ranking_log_retention(settings),
        ),
        WorkerLoop("index-warmup", lambda stop: engine.cache.warm(registry.tenant_slugs, stop)),
    ]


if __name__ == "__main__":
    settings = config.load()
    main_for(settings, bootstrap(settings), prime_tenant_metrics=metrics.prime_tenant_series)
