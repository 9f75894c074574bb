"""Webhook delivery beside slow and dead receivers, against the same run with every receiver healthy.

100 receivers on 127.0.0.1, one jobcoach each, spread over five regions. In the mixed run 10 of them are
slow (they trickle even their status line, one byte every two seconds, so every call runs into the
deadline) and 10 are dead (they accept the connection and never answer); in the baseline all 100 answer
at once. The notification worker's webhook loop runs as in production (its settings from the
environment's defaults, on a SQLite database of the benchmark's own).

Two figures per run:
- throughput: after a warm-up (one alert per receiver, then one deadline for the bad ones to show), a
  backlog of alerts for every receiver is queued at once and the loop drains it; deliveries per second
  to the healthy receivers, from the backlog's queueing to the last healthy arrival (the cold start's
  time until every healthy receiver had its first alert is reported beside it);
- latency: then alerts arrive at a steady rate for every receiver (bad ones included), and for each
  healthy one the time from storing the alert to its webhook call arriving is measured.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from services.notification import config, domain, handlers, store
from services.notification.delivery import AlertDelivery
from services.notification.handlers import Timing
from services.notification.senders import WebhookSender
from shared.db import Database, upgrade
from shared.devstack.receivers import Receiver
from shared.events import decode_event, encode_event, new_event

REGIONS = ("noord-limburg", "midden-limburg", "zuid-limburg", "achterhoek", "groot-amsterdam")
SECRET = "bench-secret-" + "x" * 20


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _event(tenant: str, jobcoach_id: str):
    candidate_id = str(uuid.uuid4())
    data = {
        "candidate_id": candidate_id,
        "vacancy_id": str(uuid.uuid4()),
        "jobcoach_id": jobcoach_id,
        "vacancy_title": "Medewerker groenonderhoud",
        "score": 0.8,
        "explanation": {},
        "ranking_version": "bench",
    }
    document = new_event("nl.werkbrug.match.proposed", tenant=tenant, subject=candidate_id, data=data, source="bench")
    return decode_event(encode_event(document))


def _store_alert(db: Database, tenant: str, jobcoach_id: str) -> str:
    event = _event(tenant, jobcoach_id)
    with db.session() as session:
        handlers.on_match_proposed(session, event, timing=Timing())
        query = sa.select(store.alerts.c.id).where(store.alerts.c.source_event_id == event.id)
        return session.execute(query).scalar_one()


def _one_run(directory: Path, healthy: int, slow: int, dead: int, backlog: int, rate: float, stream_s: float) -> dict:
    url = f"sqlite:///{directory / f'notification-{uuid.uuid4().hex[:6]}.db'}"
    upgrade(store.MIGRATIONS, url)
    db = Database(url)
    behaviours = ["healthy"] * healthy + ["trickle_status"] * slow + ["silent"] * dead
    random.Random(7).shuffle(behaviours)
    receivers = [Receiver(behaviour) for behaviour in behaviours]
    jobcoaches = []
    with db.session() as session:
        for index, receiver in enumerate(receivers):
            tenant, jobcoach_id = REGIONS[index % len(REGIONS)], f"jc-{index}"
            channels = {"webhook_url": receiver.url, "webhook_secret": SECRET, "email": None, "digest": False}
            store.put_channels(session, tenant, jobcoach_id, channels)
            jobcoaches.append((tenant, jobcoach_id, receiver))
    good = [receiver for receiver in receivers if receiver.behaviour == "healthy"]

    settings = config.load({"DATABASE_URL": url})
    delivery_settings = config.delivery(settings, {"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true"})
    delivery = AlertDelivery(
        db,
        delivery_settings,
        channels=[domain.WEBHOOK],
        webhook=WebhookSender(delivery_settings.webhook_timeout_s, allow_private_networks=True),
    )

    def start() -> tuple[threading.Event, threading.Thread]:
        stop = threading.Event()
        thread = threading.Thread(target=delivery.run, args=(stop,), daemon=True)
        thread.start()
        return stop, thread

    def halt(running: tuple[threading.Event, threading.Thread]) -> None:
        running[0].set()
        running[1].join(timeout=30)

    # Cold start: one alert per receiver, queued before the loop starts.
    for tenant, jobcoach_id, _receiver in jobcoaches:
        _store_alert(db, tenant, jobcoach_id)
    started = time.monotonic()
    running = start()
    try:
        while sum(len(r.arrivals) for r in good) < len(good) and time.monotonic() - started < 120:
            time.sleep(0.02)
        cold = max(at for r in good for _, at in r.arrivals) - started
        # Warm: one deadline more for the bad receivers to show themselves, as in a worker that has been
        # running a while. The loop stops while the backlog is queued, and the clock starts with it.
        time.sleep(delivery_settings.webhook_timeout_s + 1)
        halt(running)
        for _ in range(backlog):
            for tenant, jobcoach_id, _receiver in jobcoaches:
                _store_alert(db, tenant, jobcoach_id)
        expected = (backlog + 1) * len(good)
        started = time.monotonic()
        running = start()
        while sum(len(r.arrivals) for r in good) < expected and time.monotonic() - started < 600:
            time.sleep(0.02)
        drained = max(at for r in good for _, at in r.arrivals) - started

        created: dict[str, float] = {}
        rng = random.Random(11)
        stream_end = time.monotonic() + stream_s
        while time.monotonic() < stream_end:
            tenant, jobcoach_id, receiver = rng.choice(jobcoaches)
            at = time.monotonic()
            alert_id = _store_alert(db, tenant, jobcoach_id)
            if receiver.behaviour == "healthy":
                created[alert_id] = at
            time.sleep(max(0.0, 1 / rate - (time.monotonic() - at)))
        wait_until = time.monotonic() + 30
        arrived: dict[str, float] = {}
        while time.monotonic() < wait_until:
            arrived = {alert_id: at for r in good for alert_id, at in r.arrivals}
            if set(created) <= set(arrived):
                break
            time.sleep(0.05)
    finally:
        halt(running)
        for receiver in receivers:
            receiver.close()
        db.dispose()
    latencies = [arrived[alert_id] - at for alert_id, at in created.items() if alert_id in arrived]
    return {
        "receivers": {"healthy": healthy, "slow": slow, "dead": dead},
        "backlog_per_receiver": backlog,
        "cold_start_seconds_until_every_healthy_receiver_had_one": round(cold, 2),
        "healthy_deliveries": backlog * len(good),
        "drain_seconds": round(drained, 2),
        "healthy_deliveries_per_second": round(backlog * len(good) / drained, 1),
        "stream_alerts_to_healthy": len(created),
        "stream_arrived": len(latencies),
        "latency_p50_ms": round(_percentile(latencies, 0.50) * 1000, 1),
        "latency_p95_ms": round(_percentile(latencies, 0.95) * 1000, 1),
        "latency_max_ms": round(max(latencies) * 1000, 1),
    }


def run(backlog: int = 10, rate: float = 25.0, stream_s: float = 12.0) -> dict:
    with tempfile.TemporaryDirectory(prefix="werkbrug-bench-") as directory:
        mixed = _one_run(Path(directory), 80, 10, 10, backlog, rate, stream_s)
        baseline = _one_run(Path(directory), 100, 0, 0, backlog, rate, stream_s)
    return {
        "mixed": mixed,
        "all_healthy": baseline,
        "throughput_ratio": round(
            mixed["healthy_deliveries_per_second"] / baseline["healthy_deliveries_per_second"], 2
        ),
        "target": "ratio >= 0.8; healthy p95 <= 1000 ms",
    }
