"""The notification service's background process: it consumes match, placement and candidate events into
alerts (and candidates' handovers into alerts changing hands), delivers them to the jobcoaches' webhooks and
mailboxes, escalates at-risk and check-in-overdue alerts nobody acknowledged, and publishes its outbox
(alerts raised and acknowledged, jobcoaches' work e-mail, the dead letters of failed deliveries)."""

from __future__ import annotations

import functools

from services.notification import config, domain, handlers, metrics, store
from services.notification.delivery import AlertDelivery
from services.notification.escalation import Escalator
from services.notification.handlers import Timing
from services.notification.senders import EmailSender, WebhookSender
from services.notification.settings import NotificationSettings
from shared.clock import Clock, clock_from_env
from shared.config import Settings
from shared.consumer import HandlerTable, TombstoneTable
from shared.db import Database
from shared.events import EventType
from shared.registry import Registry
from shared.topics import Topic
from shared.worker import WorkerLoop, audit_purge_loop, consumer_loop, main_for, outbox_relay_loop

TOPICS = [Topic.MATCH_EVENTS, Topic.PLACEMENT_EVENTS, Topic.CANDIDATE_EVENTS]

# An erased candidate's tombstone erases them too: after compaction it may be all a late reader sees.
TOMBSTONE_HANDLERS: TombstoneTable = {Topic.CANDIDATE_EVENTS: [handlers.on_candidate_tombstone]}


def handler_table(timing: Timing) -> HandlerTable:
    """Everything that runs on each event this worker consumes, in order."""
    return {
        EventType.MATCH_PROPOSED: [functools.partial(handlers.on_match_proposed, timing=timing)],
        EventType.PLACEMENT_AT_RISK: [functools.partial(handlers.on_placement_at_risk, timing=timing)],
        EventType.PLACEMENT_CHECKIN_OVERDUE: [functools.partial(handlers.on_checkin_overdue, timing=timing)],
        EventType.CANDIDATE_OUT_OF_SIGHT: [functools.partial(handlers.on_candidate_out_of_sight, timing=timing)],
        EventType.INTRODUCTION_REQUESTED: [functools.partial(handlers.on_introduction_requested, timing=timing)],
        EventType.CASELOAD_OVER_LIMIT: [functools.partial(handlers.on_caseload_over_limit, timing=timing)],
        EventType.CANDIDATE_REGISTERED: [functools.partial(handlers.on_candidate_profile, timing=timing)],
        EventType.CANDIDATE_UPDATED: [functools.partial(handlers.on_candidate_profile, timing=timing)],
        EventType.CANDIDATE_ERASED: [handlers.on_candidate_erased],
    }


def bootstrap(settings: Settings, db: Database | None = None, clock: Clock | None = None) -> list[WorkerLoop]:
    db = db or Database(settings.database_url)
    clock = clock or clock_from_env()
    delivery_settings = config.delivery(settings)
    schedule = config.schedule(settings)
    timing = Timing(clock=clock, digest=domain.DigestSchedule(schedule.digest_hour, schedule.digest_zone))
    webhooks = AlertDelivery(
        db,
        delivery_settings,
        channels=[domain.WEBHOOK],
        webhook=WebhookSender(
            delivery_settings.webhook_timeout_s, allow_private_networks=delivery_settings.allow_private_networks
        ),
        clock=clock,
    )
    mail = AlertDelivery(
        db,
        delivery_settings,
        channels=[domain.EMAIL, domain.DIGEST],
        email=EmailSender(config.smtp(settings), schedule.digest_zone),
        clock=clock,
    )
    escalator = Escalator(
        db, Registry(Database(settings.registry_database_url), tenant_settings=NotificationSettings), clock
    )

    return [
        consumer_loop(
            settings, db, store.processed_events, [str(t) for t in TOPICS], handler_table(timing), TOMBSTONE_HANDLERS
        ),
        WorkerLoop("webhook-delivery", webhooks.run),
        WorkerLoop("email-delivery", mail.run),
        escalator.loop(schedule.escalation_poll_s),
        outbox_relay_loop(settings, db, store.outbox),
        audit_purge_loop(settings, db, store.audit_log, clock),
    ]


if __name__ == "__main__":
    settings = config.load()
    main_for(settings, bootstrap(settings), prime_tenant_metrics=metrics.prime_tenant_series)
