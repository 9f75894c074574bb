"""Delivering alerts to the jobcoach's webhook, with retries, from the notification worker.

A delivery is leased before it is sent, so that replicas do not send it together, and its outcome is
stored after. A crash between sending and storing sends it again: receivers recognise the repeat by the
``Werkbrug-Alert-Id`` header.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import requests

from services.notification import domain, store
from services.notification.config import DeliverySettings
from shared import metrics
from shared.db import Database, utcnow

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)


def alert_document(tenant: str, alert: dict) -> dict:
    return {
        "tenant": tenant,
        **{key: value.isoformat() if isinstance(value, datetime) else value for key, value in alert.items()},
    }


class WebhookDelivery:
    def __init__(
        self,
        db: Database,
        settings: DeliverySettings,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.settings = settings
        self.http = session or requests.Session()
        self.clock = clock

    def deliver_due(self, limit: int = 50) -> int:
        now = self.clock()
        with self.db.session() as session:
            due = store.claim_due_deliveries(session, now, now + LEASE, limit)
        for delivery in due:
            self._deliver(delivery)
        return len(due)

    def _deliver(self, delivery: dict) -> None:
        tenant = delivery["tenant"]
        with self.db.session() as session:
            alert = store.alert_for_delivery(session, tenant, delivery["alert_id"])
            channels = store.get_channels(session, tenant, delivery["jobcoach_id"])
        attempt = delivery["attempts"] + 1
        if alert is None or not channels or not channels["webhook_url"]:
            self._record(delivery, "cancelled", attempt, "channel removed")
            return
        body = json.dumps(alert_document(tenant, alert), separators=(",", ":")).encode("utf-8")
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            domain.TIMESTAMP_HEADER: str(timestamp),
            domain.SIGNATURE_HEADER: domain.sign(channels["webhook_secret"] or "", timestamp, body),
            domain.ALERT_ID_HEADER: alert["id"],
            "User-Agent": "werkbrug-notification/1",
        }
        try:
            response = self.http.post(
                channels["webhook_url"],
                data=body,
                headers=headers,
                timeout=self.settings.webhook_timeout_s,
                allow_redirects=False,
            )
            error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        except requests.RequestException as exc:
            error = type(exc).__name__
        if error is None:
            self._record(delivery, "delivered", attempt, None)
        elif attempt >= self.settings.max_attempts:
            self._record(delivery, "failed", attempt, error)
        else:
            self._record(delivery, "pending", attempt, error)

    def _record(self, delivery: dict, status: str, attempt: int, error: str | None) -> None:
        now = self.clock()
        retry_at = now + domain.retry_delay(attempt, self.settings.first_retry_s, self.settings.max_retry_s)
        with self.db.session() as session:
            store.record_delivery(
                session,
                delivery["id"],
                status=status,
                attempts=attempt,
                next_attempt_at=retry_at if status == "pending" else now,
                error=error,
                delivered_at=now if status == "delivered" else None,
            )
        outcome = {"pending": "retrying"}.get(status, status)
        metrics.ALERT_DELIVERIES.labels("webhook", outcome).inc()
        log.info(
            "webhook delivery",
            extra={
                "ctx": {
                    "tenant": delivery["tenant"],
                    "alert_id": delivery["alert_id"],
                    "status": outcome,
                    "attempt": attempt,
                    "error": error,
                }
            },
        )

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                if self.deliver_due() == 0:
                    stop.wait(self.settings.poll_s)
            except Exception as exc:
                log.warning("delivery round failed", extra={"ctx": {"error": type(exc).__name__}})
                stop.wait(1.0)
