"""The candidate service's background process: it publishes the outbox, and consumes the placement and
match events that change what this service owns (the ladder step, the consent history)."""

from __future__ import annotations

from services.candidate import config, handlers, metrics, store
from shared.config import Settings
from shared.consumer import HandlerTable
from shared.db import Database
from shared.events import EventType
from shared.topics import Topic
from shared.worker import WorkerLoop, audit_purge_loop, consumer_loop, main_for, outbox_relay_loop

TOPICS = [Topic.PLACEMENT_EVENTS, Topic.MATCH_EVENTS]

# Everything that runs on each event this worker consumes, in order.
HANDLERS: HandlerTable = {
    EventType.PLACEMENT_ENDED: [handlers.on_placement_ended],
    EventType.INTRODUCTION_ACCEPTED: [handlers.on_introduction_answered],
    EventType.INTRODUCTION_DECLINED: [handlers.on_introduction_answered],
}


def bootstrap(settings: Settings, db: Database | None = None) -> list[WorkerLoop]:
    db = db or Database(settings.database_url)
    return [
        consumer_loop(settings, db, store.processed_events, [str(topic) for topic in TOPICS], HANDLERS),
        outbox_relay_loop(settings, db, store.outbox),
        audit_purge_loop(settings, db, store.audit_log),
    ]


if __name__ == "__main__":
    settings = config.load()
    main_for(settings, bootstrap(settings), prime_tenant_metrics=metrics.prime_tenant_series)
