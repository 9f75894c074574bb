"""The candidate worker's handler table through the real broker and the shared consumer loop: a placement's
end raises the ladder step and an answered introduction enters the consent history, each once however
often it is delivered, and the offsets are committed after the effect is stored."""

from __future__ import annotations

import uuid

import pytest
from kafka import TopicPartition

from services.candidate.worker import HANDLERS
from shared.consumer import EventConsumer
from shared.events import EventType, encode_event
from shared.kafka import make_consumer, make_producer
from tests.integration.conftest import bearer
from tests.integration.test_candidate_api import collection, register
from tests.integration.test_candidate_events_in_memory import introduction, placement_ended, updated_events
from tests.kafka_helpers import fresh_topic

pytestmark = pytest.mark.kafka


@pytest.fixture
def candidates(service, keys):
    return service("candidate")


def test_through_kafka_the_step_rises_and_the_answer_is_recorded_once_each(candidates, keys, tenant, bootstrap_servers):
    candidate_id = register(candidates, tenant, keys["jobcoach"], ladder_step=3)["id"]
    ended = placement_ended(tenant, candidate_id, 5)
    accepted = introduction(EventType.INTRODUCTION_ACCEPTED, tenant, candidate_id, recorded_by="jc-1")
    documents = [ended, accepted, ended, accepted]
    topic = fresh_topic(bootstrap_servers)
    group = f"test-{uuid.uuid4().hex[:8]}"
    producer = make_producer(bootstrap_servers, "test-producer")
    kafka_consumer = make_consumer(bootstrap_servers, group, "test-consumer")
    try:
        for document in documents:
            key = f"{document['tenant']}/{document['subject']}".encode()
            producer.send(topic, key=key, value=encode_event(document)).get(30)
        kafka_consumer.subscribe([topic])
        consumer = EventConsumer(
            db=candidates.db,
            processed_events=candidates.store.processed_events,
            consumer=kafka_consumer,
            dead_letter_producer=producer,
            group_id=group,
            handlers=HANDLERS,
            retry_backoff_s=0.01,
        )
        taken = 0
        for _ in range(60):
            taken += consumer.poll_once(timeout_ms=500)
            if taken >= len(documents):
                break
        committed = kafka_consumer.committed(TopicPartition(topic, 0))
    finally:
        kafka_consumer.close(autocommit=False)
        producer.close()

    assert taken == len(documents)
    assert committed == len(documents)
    url, auth = f"{collection(tenant)}/{candidate_id}", bearer(keys["jobcoach"])
    assert candidates.client.get(url, headers=auth).get_json()["ladder_step"] == 5
    ladder = candidates.client.get(f"{url}/ladder", headers=auth).get_json()["items"]
    assert [(item["step"], item["reason"]) for item in ladder] == [(5, "placement_ended"), (3, "registered")]
    consent = candidates.client.get(f"{url}/consent", headers=auth).get_json()["items"]
    assert [item["type"] for item in consent] == ["introduction_accepted", "consent"]
    assert [event.data["ladder_step"] for event in updated_events(candidates, tenant, candidate_id)] == [5]
