"""The notification worker's event handlers through the shared consumer loop, on the in-memory broker.

The same behaviour as test_notification_events.py checks through Kafka, in a fraction of the time: the
database is real, only the broker is the double, which tests/contract keeps in step with Kafka. Each test
has a broker of its own, so events go to the topics the worker really subscribes to.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from kafka.structs import TopicPartition

from services.notification.handlers import Timing
from services.notification.worker import TOMBSTONE_HANDLERS, TOPICS, handler_table
from shared import worker
from shared.clock import FakeClock
from shared.consumer import EventConsumer
from shared.events import EventType, decode_event, encode_event, new_event
from shared.topics import Topic
from tests.conftest import USES_POSTGRES
from tests.doubles.memory_broker import MemoryBroker
from tests.integration.test_notification_events import NOW, at_risk, rows, set_channels


@pytest.fixture
def notifications(service, keys):
    return service("notification")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


def send(broker: MemoryBroker, document: dict | None, *, topic: Topic = Topic.PLACEMENT_EVENTS, key: str = "") -> None:
    key = key or f"{document['tenant']}/{document['subject']}"
    value = encode_event(document) if document is not None else None
    broker.make_producer().send(str(topic), key=key.encode(), value=value).get(1)


@pytest.fixture
def consume(notifications, memory_broker: MemoryBroker, clock):
    """Run the worker's handler tables over everything sent so far; returns how many messages were taken."""

    def run() -> int:
        kafka_consumer = memory_broker.make_consumer("", f"test-{uuid.uuid4().hex[:8]}", "test-consumer")
        kafka_consumer.subscribe([str(topic) for topic in TOPICS])
        consumer = EventConsumer(
            db=notifications.db,
            processed_events=notifications.store.processed_events,
            consumer=kafka_consumer,
            dead_letter_producer=memory_broker.make_producer(),
            group_id="test-notification",
            handlers=handler_table(Timing(clock=clock)),
            tombstone_handlers=TOMBSTONE_HANDLERS,
            retry_backoff_s=0.01,
        )
        taken = 0
        try:
            while batch := consumer.poll_once(timeout_ms=0):
                taken += batch
        finally:
            kafka_consumer.close(autocommit=False)
        return taken

    return run


def test_an_at_risk_event_delivered_three_times_and_once_more_under_a_new_id_makes_one_alert(
    notifications, memory_broker, consume, tenant
):
    set_channels(notifications, tenant, webhook_url="https://hooks.example.org/a", webhook_secret="s" * 20)
    event = at_risk(tenant)
    for document in (event, event, event, {**event, "id": str(uuid.uuid4())}):
        send(memory_broker, document)

    assert consume() == 4

    [alert] = rows(notifications, "alerts")
    assert (alert["type"], alert["subject"], alert["episode"]) == ("placement_at_risk", event["subject"], 1)
    assert alert["created_at"] == NOW
    assert [d["channel"] for d in rows(notifications, "deliveries")] == ["webhook"]
    assert len(rows(notifications, "processed_events")) == 2


def test_a_new_risk_episode_of_the_same_placement_is_a_new_alert(notifications, memory_broker, consume, tenant):
    placement_id = str(uuid.uuid4())
    send(memory_broker, at_risk(tenant, placement_id=placement_id, episode=1))
    send(memory_broker, at_risk(tenant, placement_id=placement_id, episode=2))

    consume()

    assert sorted(alert["episode"] for alert in rows(notifications, "alerts")) == [1, 2]


def test_an_event_whose_placement_id_does_not_fit_is_dead_lettered_and_the_next_one_is_handled(
    notifications, memory_broker, consume, tenant
):
    too_long, fine = at_risk(tenant, placement_id="p" * 80), at_risk(tenant)
    send(memory_broker, too_long)
    send(memory_broker, fine)

    consume()

    assert [alert["subject"] for alert in rows(notifications, "alerts")] == [fine["subject"]]
    [dead] = memory_broker.messages(str(Topic.DEAD_LETTERS))
    assert dict(dead.headers)["dlq.reason"] == b"invalid"
    assert decode_event(dead.value).id == too_long["id"], "dead-lettered unchanged"


def test_an_erasure_or_a_tombstone_takes_the_candidates_alerts_along(notifications, memory_broker, consume, tenant):
    erased_by_event, erased_by_tombstone, kept = at_risk(tenant), at_risk(tenant), at_risk(tenant)
    for document in (erased_by_event, erased_by_tombstone, kept):
        send(memory_broker, document)
    consume()
    assert len(rows(notifications, "alerts")) == 3

    candidate_id = erased_by_event["data"]["candidate_id"]
    erasure = new_event(
        EventType.CANDIDATE_ERASED,
        tenant=tenant,
        subject=candidate_id,
        data={"jobcoach_id": "jc-1"},
        source="test",
    )
    send(memory_broker, erasure, topic=Topic.CANDIDATE_EVENTS)
    tombstone_key = f"{tenant}/{erased_by_tombstone['data']['candidate_id']}"
    send(memory_broker, None, topic=Topic.CANDIDATE_EVENTS, key=tombstone_key)
    consume()

    assert [alert["subject"] for alert in rows(notifications, "alerts")] == [kept["subject"]]


def test_an_alert_about_a_candidate_that_arrives_after_their_erasure_leaves_no_row(
    notifications, memory_broker, consume, tenant
):
    """Placement events travel on another topic than the erasure, so one may arrive after it."""
    late = at_risk(tenant)
    candidate_id = late["data"]["candidate_id"]
    erasure = new_event(
        EventType.CANDIDATE_ERASED, tenant=tenant, subject=candidate_id, data={"jobcoach_id": "jc-1"}, source="test"
    )
    send(memory_broker, erasure, topic=Topic.CANDIDATE_EVENTS)
    consume()
    send(memory_broker, late)
    consume()

    assert rows(notifications, "alerts") == []
    assert rows(notifications, "deliveries") == []
    assert [row["candidate_id"] for row in rows(notifications, "erased_candidates")] == [candidate_id]


@pytest.mark.skipif(not USES_POSTGRES, reason="SQLite lets one writer in at a time: the two cannot overlap")
def test_an_erasure_racing_an_alert_about_the_candidate_leaves_no_alert(notifications, tenant):
    """The alert's transaction has stored the alert and not committed when the erasure starts on another
    replica: the erasure waits for it, then deletes what it committed."""
    event = decode_event(encode_event(at_risk(tenant)))
    candidate_id = event.data["candidate_id"]
    erasure = decode_event(
        encode_event(
            new_event(
                EventType.CANDIDATE_ERASED,
                tenant=tenant,
                subject=candidate_id,
                data={"jobcoach_id": "jc-1"},
                source="test",
            )
        )
    )

    def erase() -> None:
        with notifications.db.session() as session:
            for handler in handler_table(Timing())[EventType.CANDIDATE_ERASED]:
                handler(session, erasure)

    erasing = threading.Thread(target=erase)
    with notifications.db.session() as alerting:
        for handler in handler_table(Timing())[EventType.PLACEMENT_AT_RISK]:
            handler(alerting, event)
        alerter = alerting.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        erasing.start()
        # Commit only once the erasure waits for this transaction, so that the two overlap for certain.
        waiting = sa.text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
        with notifications.db.engine.connect() as watcher:
            for _ in range(500):
                if watcher.execute(waiting, {"pid": alerter}).scalar_one():
                    break
                time.sleep(0.02)
    erasing.join(30)
    assert not erasing.is_alive()

    assert rows(notifications, "alerts") == []


def test_the_workers_own_consumer_loop_turns_an_event_into_an_alert_and_commits_it(
    notifications, memory_broker, clock, tenant, monkeypatch
):
    # The loop builds its clients through shared.kafka's factories; the broker's take the same arguments.
    monkeypatch.setattr(worker, "make_consumer", memory_broker.make_consumer)
    monkeypatch.setattr(worker, "make_producer", memory_broker.make_producer)
    settings = notifications.context.settings
    loop = worker.consumer_loop(
        settings,
        notifications.db,
        notifications.store.processed_events,
        [str(topic) for topic in TOPICS],
        handler_table(Timing(clock=clock)),
        TOMBSTONE_HANDLERS,
    )
    event = at_risk(tenant)
    send(memory_broker, event)
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not rows(notifications, "alerts") and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=10)

    assert not thread.is_alive()
    assert [alert["subject"] for alert in rows(notifications, "alerts")] == [event["subject"]]
    [placed] = memory_broker.messages(str(Topic.PLACEMENT_EVENTS))
    home = TopicPartition(placed.topic, placed.partition)
    assert memory_broker.committed(settings.consumer_group, home) == placed.offset + 1
