"""The matching service's background process: it consumes candidate and vacancy events into its read
models, proposes matches, and publishes its outbox."""

from __future__ import annotations

from services.matching import config, store
from services.matching.handlers import TOMBSTONE_HANDLERS, build_handlers
from shared.config import Settings
from shared.db import Database
from shared.topics import Topic
from shared.worker import WorkerLoop, consumer_loop, main_for, outbox_relay_loop

TOPICS = [str(Topic.CANDIDATE_EVENTS), str(Topic.VACANCY_EVENTS)]


def bootstrap(settings: Settings, db: Database | None = None) -> list[WorkerLoop]:
    db = db or Database(settings.database_url)
    handlers = build_handlers(config.proposal_threshold(settings))
    return [
        consumer_loop(settings, db, store.processed_events, TOPICS, handlers, TOMBSTONE_HANDLERS),
        outbox_relay_loop(settings, db, store.outbox),
    ]


if __name__ == "__main__":
    settings = config.load()
    main_for(settings, bootstrap(settings))
