"""Delivering alerts to the jobcoach's channels, with retries, from the notification worker.

Each alert has one delivery per channel: ``webhook`` (a signed POST), ``email`` (one mail per alert) or
``digest`` (the alert waits for the jobcoach's daily summary mail). A delivery is leased before it is sent,
so that replicas do not send it together, and its outcome is stored after. A crash between sending and
storing sends it again: receivers recognise the repeat by the ``Werkbrug-Alert-Id`` header, mail readers
by the Message-ID.

A delivery that fails is retried with exponential backoff and jitter; after the last attempt it is marked
``failed`` and, in the same transaction, the alert document goes into the outbox for ``dead-letters``.
"""

from __future__ import annotations

import json
import logging
import random
import smtplib
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests

from services.notification import domain, metrics, store
from services.notification.config import DeliverySettings, SmtpSettings
from shared.db import Database, utcnow
from shared.loops import WorkerLoop, periodic

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
DEAD_LETTER_REASON = "delivery_failed"


class ChannelRemoved(Exception):
    """The jobcoach took the channel away after the alert was queued: nothing to send to, nothing to retry."""


def alert_document(tenant: str, alert: dict) -> dict:
    return {
        "tenant": tenant,
        **{key: value.isoformat() if isinstance(value, datetime) else value for key, value in alert.items()},
    }


class WebhookSender:
    def __init__(
        self,
        timeout_s: float,
        session: requests.Session | None = None,
        *,
        allow_private_networks: bool = False,
        resolve: Callable[[str, int], list[str]] | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.http = session or requests.Session()
        self.allow_private_networks = allow_private_networks
        self.resolve = resolve or _resolve

    def _refusal(self, url: str) -> str | None:
        """Why the URL may not be called from here, checked on every delivery: a name may point elsewhere
        tomorrow than when it was registered."""
        if self.allow_private_networks:
            return None
        parts = urlsplit(url)
        try:
            addresses = self.resolve(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        except OSError:
            return "DNS lookup failed"
        if not addresses or any(domain.forbidden_address(address) for address in addresses):
            return "address not allowed"
        return None

    def send(self, tenant: str, alert: dict, channels: dict) -> str | None:
        """POST the signed alert; the error that makes it worth another try, or None when it arrived."""
        if not channels["webhook_url"]:
            raise ChannelRemoved
        refusal = self._refusal(channels["webhook_url"])
        if refusal:
            return refusal
        body = json.dumps(alert_document(tenant, alert), separators=(",", ":")).encode("utf-8")
        # Real time, not the injected clock: the receiver checks it against its own clock.
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
                channels["webhook_url"], data=body, headers=headers, timeout=self.timeout_s, allow_redirects=False
            )
        except requests.RequestException as exc:
            return type(exc).__name__
        return None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"


def _resolve(host: str, port: int) -> list[str]:
    return sorted({info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)})


def build_mail(sender: str, recipient: str, text: domain.MailText, message_id: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = text.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = f"<{message_id}@werkbrug.nl>"
    message["Auto-Submitted"] = "auto-generated"
    # Quoted-printable keeps the Dutch text intact through relays that do not speak 8BITMIME.
    message.set_content(text.body, charset="utf-8", cte="quoted-printable")
    return message


class EmailSender:
    def __init__(self, settings: SmtpSettings, zone: ZoneInfo, smtp_factory: Callable[..., smtplib.SMTP] | None = None):
        self.settings = settings
        self.zone = zone
        self.smtp_factory = smtp_factory or smtplib.SMTP

    def send(self, tenant: str, alert: dict, channels: dict) -> str | None:
        if not channels["email"]:
            raise ChannelRemoved
        mail = build_mail(self.settings.sender, channels["email"], domain.alert_mail(alert, self.zone), alert["id"])
        return self._send(mail)

    def send_digest(self, tenant: str, alerts: list[dict], channels: dict, day: date) -> str | None:
        if not channels["email"]:
            raise ChannelRemoved
        # The same alerts give the same Message-ID, so a digest sent twice after a crash reads as one.
        message_id = uuid.uuid5(uuid.NAMESPACE_URL, "digest:" + ",".join(sorted(a["id"] for a in alerts)))
        text = domain.digest_mail(alerts, day, self.zone)
        return self._send(build_mail(self.settings.sender, channels["email"], text, str(message_id)))

    def _send(self, mail: EmailMessage) -> str | None:
        """Hand the mail to the SMTP server; the error (codes only: a server's text may quote the address),
        or None once the server accepted it."""
        settings = self.settings
        try:
            with self.smtp_factory(settings.host, settings.port, timeout=settings.timeout_s) as smtp:
                if settings.starttls:
                    smtp.starttls()
                if settings.username:
                    smtp.login(settings.username, settings.password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _text in exc.recipients.values()})
            return f"SMTP {'/'.join(str(code) for code in codes)} recipient refused"
        except smtplib.SMTPResponseException as exc:
            return f"SMTP {exc.smtp_code}"
        except (smtplib.SMTPException, OSError) as exc:
            return type(exc).__name__
        return None


class AlertDelivery:
    """Sends the due deliveries of some channels; the worker runs one for webhooks and one for mail, so that
    a slow mail server does not hold up the webhooks."""

    def __init__(
        self,
        db: Database,
        settings: DeliverySettings,
        *,
        channels: Iterable[str],
        webhook: WebhookSender | None = None,
        email: EmailSender | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.channels = tuple(channels)
        self.webhook = webhook
        self.email = email
        self.clock = clock
        self.rng = rng

    def deliver_due(self, limit: int = 50) -> int:
        now = self.clock()
        with self.db.session() as session:
            due = store.claim_due_deliveries(session, now, now + LEASE, limit, self.channels)
        digests: dict[tuple[str, str], list[dict]] = {}
        for delivery in due:
            if delivery["channel"] == domain.DIGEST:
                digests.setdefault((delivery["tenant"], delivery["jobcoach_id"]), []).append(delivery)
            else:
                self._deliver(delivery)
        for group in digests.values():
            self._deliver_digest(group)
        return len(due)

    def _deliver(self, delivery: dict) -> None:
        tenant = delivery["tenant"]
        with self.db.session() as session:
            alert = store.alert_for_delivery(session, tenant, delivery["alert_id"])
            channels = store.get_channels(session, tenant, delivery["jobcoach_id"])
        sender = self.webhook if delivery["channel"] == domain.WEBHOOK else self.email
        if alert is None or not channels or sender is None:
            self._record(delivery, "cancelled", "channel removed", None)
            return
        try:
            error = sender.send(tenant, alert, channels)
        except ChannelRemoved:
            self._record(delivery, "cancelled", "channel removed", None)
            return
        self._settle(delivery, error, alert_document(tenant, alert))

    def _deliver_digest(self, group: list[dict]) -> None:
        tenant, jobcoach_id = group[0]["tenant"], group[0]["jobcoach_id"]
        with self.db.session() as session:
            alerts = {d["id"]: store.alert_for_delivery(session, tenant, d["alert_id"]) for d in group}
            channels = store.get_channels(session, tenant, jobcoach_id)
        present = [d for d in group if alerts[d["id"]] is not None]
        if not present:
            return
        try:
            if not channels or self.email is None:
                raise ChannelRemoved
            day = self.clock().astimezone(self.email.zone).date()
            error = self.email.send_digest(tenant, [alerts[d["id"]] for d in present], channels, day)
        except ChannelRemoved:
            for delivery in present:
                self._record(delivery, "cancelled", "channel removed", None)
            return
        for delivery in present:
            self._settle(delivery, error, alert_document(tenant, alerts[delivery["id"]]))

    def _settle(self, delivery: dict, error: str | None, document: dict) -> None:
        if error is None:
            self._record(delivery, "delivered", None, None)
        elif delivery["attempts"] + 1 >= self.settings.max_attempts:
            self._record(delivery, "failed", error, document)
        else:
            self._record(delivery, "pending", error, None)

    def _record(self, delivery: dict, status: str, error: str | None, dead_letter: dict | None) -> None:
        attempt = delivery["attempts"] + 1
        now = self.clock()
        retry_at = now + domain.retry_delay(attempt, self.settings.first_retry_s, self.settings.max_retry_s, self.rng)
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
            if status == "failed" and dead_letter is not None:
                store.outbox.add_dead_letter(
                    session,
                    delivery["tenant"],
                    delivery["alert_id"],
                    json.dumps(dead_letter, separators=(",", ":"), ensure_ascii=False),
                    {
                        "dlq.reason": DEAD_LETTER_REASON,
                        "dlq.channel": delivery["channel"],
                        "dlq.alert.id": delivery["alert_id"],
                        "dlq.tenant": delivery["tenant"],
                        "dlq.attempts": str(attempt),
                        "dlq.exception.message": error or "",
                    },
                )
        outcome = {"pending": "retrying"}.get(status, status)
        metrics.ALERT_DELIVERIES.labels(_metric_channel(delivery["channel"]), outcome).inc()
        log.info(
            "alert delivery",
            extra={
                "ctx": {
                    "tenant": delivery["tenant"],
                    "alert_id": delivery["alert_id"],
                    "channel": delivery["channel"],
                    "status": outcome,
                    "attempt": attempt,
                    "error": error,
                }
            },
        )

    def loop(self, name: str) -> WorkerLoop:
        """Deliver until stopped: at once again while deliveries were due, else after ``poll_s``."""
        return periodic(name, self.deliver_due, every_s=self.settings.poll_s, retry_s=1.0)


def _metric_channel(channel: str) -> str:
    # The digest is mail too; the dashboards know two channels.
    return domain.EMAIL if channel == domain.DIGEST else channel
