"""Placement events into alerts, through the real broker and the shared consumer loop: one alert per
(type, placement, episode) however often the event comes, one delivery per channel, bad events dead-lettered."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.notification import commands, domain, worker
from services.notification.handlers import Timing
from shared.clock import FakeClock
from shared.consumer import EventConsumer
from shared.events import EventType, decode_event, encode_event, load_example, new_event
from shared.kafka import make_consumer, make_producer
from shared.topics import Topic
from tests.integration.conftest import bearer
from tests.kafka_helpers import fresh_topic, read_all

pytestmark = pytest.mark.kafka

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def at_risk(tenant: str, jobcoach_id: str = "jc-1", *, placement_id: str | None = None, episode: int = 1) -> dict:
    return new_event(
        EventType.PLACEMENT_AT_RISK,
        tenant=tenant,
        subject=placement_id or str(uuid.uuid4()),
        data={
            "candidate_id": str(uuid.uuid4()),
            "vacancy_id": str(uuid.uuid4()),
            "jobcoach_id": jobcoach_id,
            "score": 0.74,
            "reasons": [{"feature": "wellbeing_trend", "contribution": 0.31}],
            "episode": episode,
            "model_version": "default-1",
        },
        source="test",
    )


def checkin_overdue(tenant: str, jobcoach_id: str = "jc-1", *, placement_id: str | None = None) -> dict:
    return new_event(
        EventType.PLACEMENT_CHECKIN_OVERDUE,
        tenant=tenant,
        subject=placement_id or str(uuid.uuid4()),
        data={
            "candidate_id": str(uuid.uuid4()),
            "vacancy_id": str(uuid.uuid4()),
            "jobcoach_id": jobcoach_id,
            "last_checkin": None,
            "due_since": "2026-11-16",
            "episode": 1,
        },
        source="test",
    )


@pytest.fixture
def notifications(service, keys):
    return service("notification")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def consume(notifications, bootstrap_servers, clock):
    """Produce documents onto a topic of the test's own and run the worker's handlers over them."""
    opened = []

    def run(documents: list[dict]) -> int:
        topic = fresh_topic(bootstrap_servers)
        producer = make_producer(bootstrap_servers, "test-producer")
        opened.append(producer)
        for document in documents:
            key = f"{document['tenant']}/{document['subject']}".encode()
            producer.send(topic, key=key, value=encode_event(document)).get(30)
        kafka_consumer = make_consumer(bootstrap_servers, f"test-{uuid.uuid4().hex[:8]}", "test-consumer")
        kafka_consumer.subscribe([topic])
        consumer = EventConsumer(
            db=notifications.db,
            processed_events=notifications.store.processed_events,
            consumer=kafka_consumer,
            dead_letter_producer=producer,
            group_id="test-notification",
            handlers=worker.handler_table(Timing(clock=clock)),
            retry_backoff_s=0.01,
        )
        taken = 0
        try:
            for _ in range(60):
                taken += consumer.poll_once(timeout_ms=500)
                if taken >= len(documents):
                    break
        finally:
            kafka_consumer.close(autocommit=False)
        return taken

    yield run
    for producer in opened:
        producer.close()


def rows(notifications, table_name: str) -> list[dict]:
    table = notifications.store.metadata.tables[table_name]
    with notifications.db.session() as session:
        return [row._asdict() for row in session.execute(sa.select(table))]


def set_channels(notifications, tenant: str, jobcoach_id: str = "jc-1", **values) -> None:
    channels = {"webhook_url": None, "webhook_secret": None, "email": None, "digest": False, **values}
    with notifications.db.session() as session:
        notifications.store.put_channels(session, tenant, jobcoach_id, channels)


def test_an_at_risk_event_and_a_match_without_reasons_or_explanation_make_alerts_of_ids_and_the_score(
    notifications, consume, tenant
):
    """Risk reasons and match explanations no longer travel; an alert needs only the ids and the score."""
    event = at_risk(tenant)
    del event["data"]["reasons"]
    match = load_example(EventType.MATCH_PROPOSED)
    match = {**match, "id": str(uuid.uuid4()), "tenant": tenant}
    assert "explanation" not in match["data"]

    assert consume([event, match]) == 2

    alerts = {alert["type"]: alert for alert in rows(notifications, "alerts")}
    assert alerts["placement_at_risk"]["message"] == domain.at_risk_message(0.74)
    assert alerts["placement_at_risk"]["details"] == {"score": 0.74, "episode": 1, "model_version": "default-1"}
    assert alerts["match_proposed"]["message"] == domain.match_message(match["data"]["vacancy_title"], 0.81)
    assert alerts["match_proposed"]["details"] == {"score": 0.81, "ranking": "tfidf-1"}


def test_an_at_risk_event_produced_three_times_and_once_more_under_a_new_id_makes_one_alert(
    notifications, consume, keys, tenant
):
    set_channels(
        notifications, tenant, webhook_url="https://hooks.example.org/a", webhook_secret="s" * 20, email="jc@x.nl"
    )
    event = at_risk(tenant)
    republished = {**event, "id": str(uuid.uuid4())}

    assert consume([event, event, event, republished]) == 4

    [alert] = rows(notifications, "alerts")
    assert (alert["type"], alert["subject"], alert["episode"]) == ("placement_at_risk", event["subject"], 1)
    assert alert["placement_id"] == event["subject"]
    assert alert["candidate_id"] == event["data"]["candidate_id"]
    assert alert["vacancy_id"] == event["data"]["vacancy_id"]
    assert alert["created_at"] == NOW, "stamped by the injected clock"
    assert alert["message"] == domain.at_risk_message(0.74)
    assert alert["details"]["reasons"] == event["data"]["reasons"]
    assert sorted(d["channel"] for d in rows(notifications, "deliveries")) == ["email", "webhook"]
    assert len(rows(notifications, "processed_events")) == 2

    inbox = notifications.client.get(f"/v1/tenants/{tenant}/alerts", headers=bearer(keys["jobcoach"])).get_json()
    [item] = inbox["items"]
    assert item["placement_id"] == event["subject"]
    assert item["escalated_at"] is None
    assert item["deliveries"] == [
        {"channel": "email", "status": "pending", "attempts": 0, "last_error": None},
        {"channel": "webhook", "status": "pending", "attempts": 0, "last_error": None},
    ]


def test_a_new_risk_episode_of_the_same_placement_is_a_new_alert(notifications, consume, tenant):
    placement_id = str(uuid.uuid4())

    consume(
        [at_risk(tenant, placement_id=placement_id, episode=1), at_risk(tenant, placement_id=placement_id, episode=2)]
    )

    assert sorted(alert["episode"] for alert in rows(notifications, "alerts")) == [1, 2]


def test_a_checkin_overdue_event_makes_one_dutch_alert_about_the_placement(notifications, consume, keys, tenant):
    event = checkin_overdue(tenant)

    consume([event, event])

    [alert] = rows(notifications, "alerts")
    assert alert["type"] == "checkin_overdue"
    assert alert["placement_id"] == alert["subject"] == event["subject"]
    assert alert["message"] == "De check-in van een plaatsing is te laat: verwacht sinds 16-11-2026."
    assert alert["details"] == {"due_since": "2026-11-16", "last_checkin": None, "episode": 1}
    assert rows(notifications, "deliveries") == [], "a jobcoach without channels has only the inbox"
    overdue = notifications.client.get(
        f"/v1/tenants/{tenant}/alerts", query_string={"type": "checkin_overdue"}, headers=bearer(keys["jobcoach"])
    ).get_json()
    assert [item["id"] for item in overdue["items"]] == [alert["id"]]


def test_an_event_whose_placement_id_does_not_fit_is_dead_lettered_and_the_next_one_is_handled(
    notifications, consume, bootstrap_servers, tenant
):
    too_long = at_risk(tenant, placement_id="p" * 80)
    fine = at_risk(tenant)

    consume([too_long, fine])

    assert [alert["subject"] for alert in rows(notifications, "alerts")] == [fine["subject"]]
    dead = read_all(bootstrap_servers, Topic.DEAD_LETTERS, key_prefix=f"{tenant}/{'p' * 80}".encode())
    assert len(dead) == 1
    assert dict(dead[0].headers)["dlq.reason"] == b"invalid"
    assert decode_event(dead[0].value).id == too_long["id"], "dead-lettered unchanged"


def test_a_digest_jobcoachs_alert_waits_for_the_next_morning(notifications, consume, tenant):
    set_channels(notifications, tenant, email="jc@x.nl", digest=True)

    consume([at_risk(tenant)])

    [delivery] = rows(notifications, "deliveries")
    assert delivery["channel"] == "digest"
    # 10:00 UTC is 11:00 in Amsterdam; the digest goes at 07:00 local, 06:00 UTC, the next day.
    assert delivery["next_attempt_at"] == NOW.replace(hour=6) + timedelta(days=1)


def test_an_erased_candidate_takes_their_placement_alerts_along(notifications, consume, tenant):
    event = at_risk(tenant)
    consume([event])
    with notifications.db.session() as session:
        [alert] = notifications.store.list_alerts(
            session, tenant, "jc-1", unread=None, alert_type=None, offset=0, limit=10
        )[0]
        commands.acknowledge(session, tenant, "jc-1", alert["id"], NOW)

    erased = new_event(
        EventType.CANDIDATE_ERASED,
        tenant=tenant,
        subject=event["data"]["candidate_id"],
        data={"jobcoach_id": "jc-1"},
        source="test",
    )
    consume([erased])

    assert rows(notifications, "alerts") == []
    assert rows(notifications, "outbox") == [], "the acknowledgement about them is gone too"
