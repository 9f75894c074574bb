"""Erasure reaches Kafka's logs: once a candidate is erased and the log cleaner has run, a plain consumer
reading every topic from the beginning finds nothing of them but tombstones and ids that point at nothing."""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import pytest
import requests
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType

from shared.topics import TOPIC_SPECS, Topic, ensure_topics
from tests.e2e.conftest import bearer
from tests.e2e.helpers import check_in, stack_today, start_placement, wait_until
from tests.e2e.payloads import GARDENER
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.kafka

ADDED_TALENT = "bloemschikken"
BAD = {"wellbeing": 1, "hours_worked": 5, "absence_days": 3, "signals": ["conflict_with_supervisor", "missed_shift"]}
# What the candidate and their check-ins said: none of it may be left on any topic under their ids.
PERSONAL_FACTS = (
    *GARDENER["talents"],
    ADDED_TALENT,
    *(need["code"] for need in GARDENER["support_needs"]),
    *BAD["signals"],
    str(GARDENER["display_name"]),
    '"wellbeing"',
    '"signals"',
    '"reasons"',
    '"explanation"',
    '"talents"',
    '"support_needs"',
    '"supports_agreed"',
)
# A compaction now rather than within the day: segments roll on the next message, and the cleaner takes any
# dirt. ensure_topics puts the declared configs back afterwards.
COMPACT_NOW = {"segment.ms": "100", "max.compaction.lag.ms": "100", "min.cleanable.dirty.ratio": "0.01"}


def _set_topic_configs(bootstrap_servers: str, topic: Topic, configs: dict[str, str]) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=30_000)
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, str(topic), configs=configs)
        answers = admin.alter_configs([resource], raise_on_unknown=False, incremental=True)
        assert answers == {"topic": {str(topic): "OK"}}, answers
    finally:
        admin.close()


def _roll_partition(bootstrap_servers: str, topic: Topic, partition: int, tenant: str) -> None:
    """Append a message to the partition, so that the broker rolls its active segment (it rolls only on an
    append): a tombstone for an id nobody has, which every consumer takes as an erasure of nothing."""
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    try:
        key = f"{tenant}/{uuid.uuid4()}".encode()
        producer.send(str(topic), key=key, value=None, partition=partition).get(30)
    finally:
        producer.close()


def test_after_erasure_and_compaction_no_topic_holds_anything_of_the_candidate_but_tombstones_and_ids(stack):
    bootstrap = stack.broker.bootstrap_servers
    tenant, keys = stack.new_tenant()
    today = stack_today(stack)
    placement = start_placement(stack, tenant, keys, today - timedelta(days=14))
    candidate_id = placement["candidate_id"]
    check_in(stack, tenant, keys, placement["id"], today - timedelta(days=7), BAD)
    check_in(stack, tenant, keys, placement["id"], today, BAD)
    stack.wait_for_alert(keys["jobcoach"], lambda alert: alert["type"] == "placement_at_risk", 60, tenant=tenant)
    changed = requests.patch(
        f"{stack.url('candidate')}/v1/tenants/{tenant}/candidates/{candidate_id}",
        json={"talents": [*GARDENER["talents"], ADDED_TALENT]},
        headers=bearer(keys["jobcoach"]),
        timeout=10,
    )
    assert changed.status_code == 200, changed.text
    candidate_key = f"{tenant}/{candidate_id}".encode()
    before = read_all(bootstrap, Topic.CANDIDATE_EVENTS, key_prefix=candidate_key, idle_s=0.5)
    assert len([message for message in before if message.value is not None]) == 2, "registered and updated"

    erased = requests.delete(
        f"{stack.url('candidate')}/v1/tenants/{tenant}/candidates/{candidate_id}",
        headers=bearer(keys["jobcoach"]),
        timeout=10,
    )
    assert erased.status_code == 204
    wait_until(lambda: not stack.alerts(keys["jobcoach"], tenant=tenant), 60, "an inbox emptied by the erasure", stack)
    tombstoned = wait_until(
        lambda: [
            m
            for m in read_all(bootstrap, Topic.CANDIDATE_EVENTS, key_prefix=candidate_key, idle_s=0.5)
            if m.value is None
        ],
        60,
        "the candidate's tombstone on candidate-events",
        stack,
    )

    _set_topic_configs(bootstrap, Topic.CANDIDATE_EVENTS, COMPACT_NOW)
    try:
        time.sleep(0.5)  # older than segment.ms, so that the next append rolls the segment
        _roll_partition(bootstrap, Topic.CANDIDATE_EVENTS, tombstoned[0].partition, tenant)
        left = wait_until(
            lambda: (
                (found := read_all(bootstrap, Topic.CANDIDATE_EVENTS, key_prefix=candidate_key, idle_s=0.5))
                and all(message.value is None for message in found)
                and found
            ),
            120,
            "a compacted candidate-events",
            stack,
        )
    finally:
        ensure_topics(bootstrap)
    assert [message.value for message in left] == [None], "the tombstone stays, a key and nothing more"

    ids = (candidate_id.encode(), placement["id"].encode())
    for spec in TOPIC_SPECS:
        for message in read_all(bootstrap, spec.topic, idle_s=0.5):
            text = (message.key or b"") + b" " + (message.value or b"")
            if not any(identifier in text for identifier in ids):
                continue
            where = f"{spec.topic} offset {message.offset}"
            assert spec.topic != Topic.DEAD_LETTERS, f"a dead letter about the candidate: {where}"
            if spec.topic == Topic.CANDIDATE_EVENTS:
                # Only the tombstone under their key; whatever else named them was compacted away.
                assert message.key == candidate_key and message.value is None, where
                continue
            value = message.value.decode("utf-8")
            document = json.loads(value)
            assert document["tenant"] == tenant, where
            for fact in PERSONAL_FACTS:
                assert fact not in value, f"{fact} in {document['type']} on {where}"
