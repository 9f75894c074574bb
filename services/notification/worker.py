"""The notification service's background process: it consumes match and candidate events into alerts
and delivers them to the jobcoaches' webhooks."""

from __future__ import annotations

from services.notification import config, store
from services.notification.delivery import WebhookDelivery
from services.notification.handlers import HANDLERS, TOMBSTONE_HANDLERS
from shared import metrics
from shared.config import Settings
from shared.db import Database
from shared.topics import Topic
from shared.worker import WorkerLoop, consumer_loop, main_for

TOPICS = [Topic.MATCH_EVENTS, Topic.PLACEMENT_EVENTS, Topic.CANDIDATE_EVENTS]


def bootstrap(settings: Settings, db: Database | None = None) -> list[WorkerLoop]:
    db = db or Database(settings.database_url)
    delivery = WebhookDelivery(db, config.delivery(settings))
    metrics.prime_delivery_series()
    return [
        consumer_loop(settings, db, store.processed_events, [str(t) for t in TOPICS], HANDLERS, TOMBSTONE_HANDLERS),
        WorkerLoop("webhook-delivery", delivery.run),
    ]


if __name__ == "__main__":
    settings = config.load()
    main_for(settings, bootstrap(settings))
