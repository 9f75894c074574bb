"""Delivering alerts to the jobcoach's channels, with retries, from the notification worker.

Each alert has one delivery per channel: ``webhook`` (a signed POST), ``email`` (one mail per alert) or
``digest`` (the alert waits for the jobcoach's daily summary mail).

A delivery is claimed before it is sent: leased to a token of this replica, renewed while the send lasts,
and settled only by the token's holder, so that two replicas never send it together and a replica whose
lease ran out cannot overwrite another's result. A crash between sending and storing sends it again after
the lease: receivers recognise the repeat by the ``Werkbrug-Alert-Id`` header, mail readers by the
Message-ID.

Webhooks go out side by side on a bounded pool of threads, each call under one deadline for connecting,
sending and reading, and fairly: at most a few in flight to one receiver, a receiver that failed rests
before it is tried again, and receivers that fail (or have not answered yet) share a small part of the
pool between them. So one jobcoach's slow or dead receiver cannot hold up another's alerts, in any region.

A delivery that fails is retried with exponential backoff and jitter; after the last attempt it is marked
``failed`` and, in the same transaction, the alert document goes into the outbox for ``dead-letters``.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.notification import domain, metrics, store
from services.notification.config import DeliverySettings
from services.notification.senders import (
    CHANNEL_REMOVED,
    CONNECTION_FAILED,
    DEAD_LETTER_REASON,
    ChannelRemoved,
    EmailSender,
    WebhookSender,
    alert_document,
    receiver_of,
)
from shared.db import Database, utcnow
from shared.loops import WorkerLoop, periodic

log = logging.getLogger(__name__)


class Receivers:
    """How each receiver fared in this process, and so how much of the pool it may hold.

    A receiver that has answered and did not fail since may have ``per_receiver`` deliveries in flight.
    One that has not answered yet gets one at a time, and so does one whose last attempt failed, after a
    rest (half the first retry delay, doubling up to a minute, on the injected clock). Receivers not yet
    heard from share at most half of the pool, and failing ones a quarter: however many receivers are
    slow or dead, a quarter of the pool always stays with those that answer, and once the bad ones are
    known (one deadline after they were first tried) three quarters; a newcomer that answers is never
    stuck behind receivers known to fail.
    """

    def __init__(self, per_receiver: int, concurrency: int, first_rest_s: float, max_rest_s: float = 60.0):
        self.per_receiver = per_receiver
        self.shares = {"unknown": max(1, concurrency // 2), "failing": max(1, concurrency // 4)}
        self.first_rest_s = first_rest_s
        self.max_rest_s = max_rest_s
        self.in_flight: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.answered: set[str] = set()
        self.resting_until: dict[str, datetime] = {}

    def standing(self, receiver: str) -> str:
        if self.failures[receiver]:
            return "failing"
        return "answering" if receiver in self.answered else "unknown"

    def may_start(self, receiver: str, now: datetime, planned: Counter[str] | None = None) -> bool:
        """Whether one more delivery to ``receiver`` may start, besides those ``planned`` this round."""
        planned = planned or Counter()
        in_flight = self.in_flight[receiver] + planned[receiver]
        standing = self.standing(receiver)
        if standing == "answering":
            return in_flight < self.per_receiver
        if self.resting_until.get(receiver, now) > now or in_flight >= 1:
            return False
        alike = {name for name in (*self.in_flight, *planned) if self.standing(name) == standing}
        return sum(self.in_flight[name] + planned[name] for name in alike) < self.shares[standing]

    def started(self, receiver: str) -> None:
        self.in_flight[receiver] += 1

    def finished(self, receiver: str, ok: bool, now: datetime) -> None:
        self.in_flight[receiver] -= 1
        if self.in_flight[receiver] <= 0:
            del self.in_flight[receiver]
        if ok:
            self.answered.add(receiver)
            self.failures.pop(receiver, None)
            self.resting_until.pop(receiver, None)
            return
        self.failures[receiver] += 1
        rest = min(self.max_rest_s, self.first_rest_s * 2 ** (self.failures[receiver] - 1))
        self.resting_until[receiver] = now + timedelta(seconds=rest)


@dataclass
class _Task:
    """Deliveries sent together (one webhook or mail, or one digest for several alerts) under one claim."""

    deliveries: list[dict]
    token: str
    receiver: str
    alerts: dict[int, dict | None] = field(default_factory=dict)
    channels: dict | None = None
    outcome: str | None = None
    documents: dict[int, dict] = field(default_factory=dict)
    cancelled: bool = False
    skipped: bool = False


class AlertDelivery:
    """Sends the due deliveries of some channels; the worker runs one for webhooks and one for mail, so that
    a slow mail server does not hold up the webhooks. Webhooks go out on a pool of threads; mail one at a
    time (the platform's own SMTP relay takes them in order)."""

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
        concurrency: int | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.channels = tuple(channels)
        self.webhook = webhook
        self.email = email
        self.clock = clock
        self.rng = rng
        sends_webhooks = domain.WEBHOOK in self.channels
        self.concurrency = concurrency or (settings.webhook_concurrency if sends_webhooks else 1)
        per_receiver = min(settings.per_receiver, self.concurrency) if sends_webhooks else self.concurrency
        self.receivers = Receivers(per_receiver, self.concurrency, first_rest_s=settings.first_retry_s / 2)
        # A digest gathers all of a jobcoach's waiting alerts into one mail, so it must see them all.
        self.per_jobcoach = 500 if domain.DIGEST in self.channels else max(per_receiver, 1)
        # Renewed every quarter of itself while a send lasts (the configuration keeps it at least twice the
        # webhook deadline, so even a missed renewal does not let it run out during one send).
        self.lease = timedelta(seconds=settings.lease_s)
        self._pool: ThreadPoolExecutor | None = None
        self._results: queue.Queue[_Task] = queue.Queue()
        self._in_flight: dict[int, _Task] = {}
        self._lost: set[int] = set()
        self._renewed_at = time.monotonic()

    # -- the loop -----------------------------------------------------------------------------------------

    def loop(self, name: str = "webhook-delivery") -> WorkerLoop:
        """The worker's loop for these channels: claim what is due, send it, settle what came back."""
        return periodic(name, self.step, every_s=0.0, retry_s=1.0, max_retry_s=30.0)

    def run(self, stop: threading.Event) -> None:
        try:
            self.loop().run(stop)
        finally:
            self.close()

    def step(self) -> bool:
        """One round: renew the leases of what is in flight, start what is due and fits, then settle what
        finished, waiting up to the poll interval for something to finish."""
        self._renew_leases()
        self._start_due()
        self._settle_finished(wait_s=self.settings.poll_s)
        return True

    def deliver_due(self, limit: int | None = None) -> int:
        """Start what is due now and wait until all of it is settled; how many deliveries were taken."""
        started = self._start_due(limit)
        while self._in_flight:
            self._settle_finished(wait_s=self.settings.poll_s)
        return started

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=False)
            self._pool = None
        self._settle_finished(wait_s=0)

    # -- claiming -----------------------------------------------------------------------------------------

    def _start_due(self, limit: int | None = None) -> int:
        free = self.concurrency - len({id(task) for task in self._in_flight.values()})
        if limit is not None:
            free = min(free, limit)
        if free <= 0:
            return 0
        now = self.clock()
        with self.db.session() as session:
            window = store.due_deliveries(
                session,
                now,
                limit=max(4 * self.concurrency, 200),
                channel_names=self.channels,
                per_jobcoach=self.per_jobcoach,
            )
        window = [row for row in window if row["id"] not in self._in_flight]
        tasks = self._choose(window, free, now)
        if not tasks:
            return 0
        token = str(uuid.uuid4())
        with self.db.session() as session:
            ids = [delivery["id"] for task in tasks for delivery in task.deliveries]
            got = set(store.claim_deliveries(session, ids, now, now + self.lease, token))
            # What to send is read here, in the claim's transaction, so that the pool's threads only talk
            # to receivers and never wait for the database.
            for task in tasks:
                task.deliveries = [d for d in task.deliveries if d["id"] in got]
                first = task.deliveries[0] if task.deliveries else None
                if first is None:
                    continue
                task.alerts = {
                    d["id"]: store.alert_for_delivery(session, d["tenant"], d["alert_id"]) for d in task.deliveries
                }
                task.channels = store.get_channels(session, first["tenant"], first["jobcoach_id"])
                if task.channels is not None:
                    task.channels["signing_secrets"] = domain.signing_secrets(task.channels, now)
        started = 0
        for task in tasks:
            if not task.deliveries:
                continue
            task.token = token
            for delivery in task.deliveries:
                self._in_flight[delivery["id"]] = task
            self.receivers.started(task.receiver)
            self._submit(task)
            started += len(task.deliveries)
        return started

    def _choose(self, window: list[dict], free: int, now: datetime) -> list[_Task]:
        """Up to ``free`` tasks from the window, taking turns between regions and, within a region,
        between receivers, so that no region's and no receiver's backlog goes first for long."""
        lines: dict[str, dict[str, deque[_Task]]] = {}
        for task in self._tasks_of(window):
            lines.setdefault(task.deliveries[0]["tenant"], {}).setdefault(task.receiver, deque()).append(task)
        turns = {tenant: deque(receivers) for tenant, receivers in lines.items()}
        chosen: list[_Task] = []
        planned: Counter[str] = Counter()
        progress = True
        while len(chosen) < free and progress:
            progress = False
            for tenant, receivers in turns.items():
                for _ in range(len(receivers)):
                    receiver = receivers[0]
                    receivers.rotate(-1)
                    waiting = lines[tenant][receiver]
                    if waiting and self.receivers.may_start(receiver, now, planned):
                        chosen.append(waiting.popleft())
                        planned[receiver] += 1
                        progress = True
                        break
                if len(chosen) >= free:
                    break
        return chosen

    def _tasks_of(self, window: list[dict]) -> list[_Task]:
        tasks: list[_Task] = []
        digests: dict[tuple[str, str], _Task] = {}
        for delivery in window:
            if delivery["channel"] == domain.DIGEST:
                key = (delivery["tenant"], delivery["jobcoach_id"])
                if key in digests:
                    digests[key].deliveries.append(delivery)
                    continue
                digests[key] = _Task([delivery], "", "smtp")
                tasks.append(digests[key])
            elif delivery["channel"] == domain.WEBHOOK:
                tasks.append(_Task([delivery], "", receiver_of(delivery["webhook_url"])))
            else:
                tasks.append(_Task([delivery], "", "smtp"))
        return tasks

    def _renew_leases(self) -> None:
        if not self._in_flight or time.monotonic() - self._renewed_at < self.lease.total_seconds() / 4:
            return
        self._renewed_at = time.monotonic()
        by_token: dict[str, list[int]] = {}
        for delivery_id, task in self._in_flight.items():
            by_token.setdefault(task.token, []).append(delivery_id)
        with self.db.session() as session:
            for token, ids in by_token.items():
                held = set(store.renew_claims(session, ids, token, self.clock() + self.lease))
                self._lost.update(set(ids) - held)

    # -- sending (on the pool's threads, which never touch the database) ---------------------------------

    def _submit(self, task: _Task) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="delivery")
        future = self._pool.submit(self._send, task)
        future.add_done_callback(lambda _f: self._results.put(task))

    def _send(self, task: _Task) -> None:
        try:
            if all(d["id"] in self._lost for d in task.deliveries):
                task.skipped = True
                return
            if task.deliveries[0]["channel"] == domain.DIGEST:
                self._send_digest(task)
            else:
                self._send_one(task)
        except ChannelRemoved:
            task.cancelled = True
        except Exception as exc:
            # Whatever it was, the delivery is retried like any failed attempt rather than lost.
            log.warning("delivery attempt failed", extra={"ctx": {"error": type(exc).__name__}})
            task.outcome = task.outcome or CONNECTION_FAILED

    def _send_one(self, task: _Task) -> None:
        delivery = task.deliveries[0]
        tenant = delivery["tenant"]
        alert, channels = task.alerts[delivery["id"]], task.channels
        sender = self.webhook if delivery["channel"] == domain.WEBHOOK else self.email
        if alert is None or not channels or sender is None:
            raise ChannelRemoved
        task.documents[delivery["id"]] = alert_document(tenant, alert)
        task.outcome = sender.send(tenant, alert, channels)

    def _send_digest(self, task: _Task) -> None:
        tenant = task.deliveries[0]["tenant"]
        # Each delivery with its alert, leaving out those whose alert is gone.
        present: list[tuple[dict, dict]] = []
        for delivery in task.deliveries:
            alert = task.alerts[delivery["id"]]
            if alert is not None:
                present.append((delivery, alert))
        if not present:
            task.skipped = True
            return
        task.deliveries = [delivery for delivery, _ in present]
        if not task.channels or self.email is None:
            raise ChannelRemoved
        day = self.clock().astimezone(self.email.zone).date()
        alerts = [alert for _, alert in present]
        task.documents = {delivery["id"]: alert_document(tenant, alert) for delivery, alert in present}
        task.outcome = self.email.send_digest(tenant, alerts, task.channels, day)

    # -- settling (on the loop's thread) ------------------------------------------------------------------

    def _settle_finished(self, wait_s: float) -> None:
        """Settle every finished task in one transaction (one commit, not one per delivery), waiting up to
        ``wait_s`` for the first to finish."""
        try:
            finished = [self._results.get(timeout=wait_s) if wait_s > 0 else self._results.get_nowait()]
        except queue.Empty:
            return
        while True:
            try:
                finished.append(self._results.get_nowait())
            except queue.Empty:
                break
        now = self.clock()
        outcomes: list[tuple[dict, str, str | None]] = []
        try:
            with self.db.session() as session:
                for task in finished:
                    if task.skipped:
                        continue
                    for delivery in task.deliveries:
                        status, error, dead_letter = self._status_of(delivery, task)
                        if self._record(session, delivery, task.token, status, error, dead_letter, now):
                            outcomes.append((delivery, status, error))
        finally:
            for task in finished:
                self.receivers.finished(task.receiver, ok=task.outcome is None and not task.skipped, now=now)
                for delivery in task.deliveries:
                    self._in_flight.pop(delivery["id"], None)
                    self._lost.discard(delivery["id"])
        for delivery, status, error in outcomes:
            self._report(delivery, status, error)

    def _status_of(self, delivery: dict, task: _Task) -> tuple[str, str | None, dict | None]:
        if task.cancelled:
            return "cancelled", CHANNEL_REMOVED, None
        if task.outcome is None:
            return "delivered", None, None
        if delivery["attempts"] + 1 >= self.settings.max_attempts:
            return "failed", task.outcome, task.documents.get(delivery["id"])
        return "pending", task.outcome, None

    def _record(
        self,
        session,
        delivery: dict,
        token: str,
        status: str,
        error: str | None,
        dead_letter: dict | None,
        now: datetime,
    ) -> bool:
        attempt = delivery["attempts"] + 1
        retry_at = now + domain.retry_delay(attempt, self.settings.first_retry_s, self.settings.max_retry_s, self.rng)
        held = store.record_delivery(
            session,
            delivery["id"],
            token=token,
            status=status,
            attempts=attempt,
            next_attempt_at=retry_at if status == "pending" else now,
            error=error,
            delivered_at=now if status == "delivered" else None,
        )
        if not held:
            # The lease ran out and another replica took the delivery over: its outcome is the one that
            # counts, and this one is dropped rather than written over it.
            log.warning(
                "delivery lease lost; outcome dropped",
                extra={"ctx": {"tenant": delivery["tenant"], "alert_id": delivery["alert_id"]}},
            )
            return False
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
        return True

    def _report(self, delivery: dict, status: str, error: str | None) -> None:
        outcome = {"pending": "retrying"}.get(status, status)
        metrics.ALERT_DELIVERIES.labels(delivery["tenant"], _metric_channel(delivery["channel"]), outcome).inc()
        log.info(
            "alert delivery",
            extra={
                "ctx": {
                    "tenant": delivery["tenant"],
                    "alert_id": delivery["alert_id"],
                    "channel": delivery["channel"],
                    "status": outcome,
                    "attempt": delivery["attempts"] + 1,
                    "error": error,
                }
            },
        )


def _metric_channel(channel: str) -> str:
    # The digest is mail too; the dashboards know two channels.
    return domain.EMAIL if channel == domain.DIGEST else channel
