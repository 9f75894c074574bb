"""Escalating at-risk alerts that no jobcoach acknowledged in time to the region's operators.

A scheduler loop in the notification worker. The window is each region's own (``escalation_hours`` in the
tenant settings) and time comes from the injected clock, so tests move the clock instead of waiting two
days. Every replica may run it: the escalation of one alert is claimed in the database, so it happens once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.orm import Session

from services.notification import commands, domain, store
from services.notification.settings import NotificationSettings
from shared import tracing
from shared.clock import Clock
from shared.db import Database
from shared.loops import WorkerLoop, periodic
from shared.registry import Registry

log = logging.getLogger(__name__)


class Escalator:
    def __init__(self, db: Database, registry: Registry, clock: Clock, *, batch_size: int = 200) -> None:
        self.db = db
        self.registry = registry
        self.clock = clock
        self.batch_size = batch_size

    def escalate_due(self) -> int:
        """Escalate every alert that is due now; returns how many were escalated."""
        now = self.clock()
        with self.db.session() as session:
            tenants = store.tenants_awaiting_escalation(session)
        escalated = 0
        for tenant in tenants:
            hours = self.registry.settings(tenant, NotificationSettings).escalation_hours
            cutoff = domain.escalation_cutoff(now, hours)
            while True:
                # One short transaction per batch, so that the inbox and acknowledgements are never held up.
                with self.db.session() as session:
                    due = store.due_escalations(session, tenant, cutoff, self.batch_size)
                    created = [self._escalate(session, tenant, alert, hours, now) for alert in due]
                done = sum(1 for alert_id in created if alert_id)
                escalated += done
                if done:
                    log.info("alerts escalated", extra={"ctx": {"tenant": tenant, "count": done}})
                if len(due) < self.batch_size:
                    break
        return escalated

    @staticmethod
    def _escalate(session: Session, tenant: str, alert: dict, hours: int, now: datetime) -> str | None:
        with tracing.scheduled("escalation"):
            return commands.escalate(session, tenant, alert, hours, now)

    def loop(self, poll_s: float) -> WorkerLoop:
        """Escalate what is due every ``poll_s`` seconds, and wait as long after a failed round."""

        def step() -> bool:
            # One round escalates everything due, so the next can wait.
            self.escalate_due()
            return False

        return periodic("escalation", step, every_s=poll_s, retry_s=poll_s)
