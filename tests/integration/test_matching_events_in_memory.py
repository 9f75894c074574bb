"""The matching worker's new handlers through the shared consumer loop, on the in-memory broker: alerts
raised and acknowledged, jobcoaches' work e-mail and erasure reach the caseload and the introductions."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.matching.ranking.engine import MatchingEngine
from services.matching.ranking.rules import DEFAULT_PROPOSAL_THRESHOLD
from services.matching.worker import TOMBSTONE_HANDLERS, TOPICS, handler_table
from shared.events import EventType, encode_event, load_example, new_event
from shared.topics import Topic
from tests.doubles.memory_broker import MemoryBroker, drain

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


@pytest.fixture
def matching(service, keys):
    return service("matching")


def send(broker: MemoryBroker, topic: Topic, type_name: str, tenant: str, subject: str, data: dict) -> dict:
    document = new_event(type_name, tenant=tenant, subject=subject, data=data, source="test")
    document["time"] = NOW.isoformat()
    broker.make_producer().send(str(topic), key=f"{tenant}/{subject}".encode(), value=encode_event(document)).get(1)
    return document


@pytest.fixture
def consume(matching, memory_broker: MemoryBroker):
    """Run the worker's handler table over what was sent since the last run; how many messages were taken."""
    group = f"test-{uuid.uuid4().hex[:8]}"

    def run() -> int:
        return drain(
            memory_broker,
            matching,
            TOPICS,
            handler_table(MatchingEngine.with_fixed_settings(DEFAULT_PROPOSAL_THRESHOLD)),
            group=group,
            tombstone_handlers=TOMBSTONE_HANDLERS,
        )

    return run


def table(matching, name: str) -> list[dict]:
    rows = matching.store.metadata.tables[name]
    with matching.db.session() as session:
        return [dict(row) for row in session.execute(sa.select(rows)).mappings()]


def test_alerts_and_work_email_reach_the_caseload_and_the_introductions(matching, memory_broker, consume, tenant):
    candidate_id, alert_id = str(uuid.uuid4()), str(uuid.uuid4())
    person = copy.deepcopy(load_example(EventType.CANDIDATE_REGISTERED)["data"])
    person["jobcoach_id"] = "jc-1"
    send(memory_broker, Topic.CANDIDATE_EVENTS, EventType.CANDIDATE_REGISTERED, tenant, candidate_id, person)
    raised = {"alert_type": "out_of_sight", "candidate_id": candidate_id, "jobcoach_id": "jc-1", "created_at": NOW}
    send(memory_broker, Topic.ALERT_EVENTS, EventType.ALERT_RAISED, tenant, alert_id, raised)
    email = {"jobcoach_id": "jc-1", "work_email": "coach@werk.example"}
    send(memory_broker, Topic.ALERT_EVENTS, EventType.JOBCOACH_CHANNELS_CHANGED, tenant, "jc-1", email)

    assert consume() == 3

    assert [(row["candidate_id"], row["is_open"]) for row in table(matching, "caseload_alerts")] == [
        (candidate_id, True)
    ]
    assert [row["work_email"] for row in table(matching, "jobcoach_work_email")] == ["coach@werk.example"]

    ack = {
        "alert_type": "out_of_sight",
        "candidate_id": candidate_id,
        "created_at": NOW - timedelta(hours=1),
        "acknowledged_at": NOW,
        "alert_id": alert_id,
        "jobcoach_id": "jc-1",
    }
    send(memory_broker, Topic.ALERT_EVENTS, EventType.ALERT_ACKNOWLEDGED, tenant, alert_id, ack)
    send(
        memory_broker, Topic.ALERT_EVENTS, EventType.JOBCOACH_CHANNELS_CHANGED, tenant, "jc-1", {"jobcoach_id": "jc-1"}
    )
    send(
        memory_broker, Topic.CANDIDATE_EVENTS, EventType.CANDIDATE_ERASED, tenant, candidate_id, {"jobcoach_id": "jc-1"}
    )

    assert consume() == 3

    assert table(matching, "jobcoach_work_email") == []
    assert table(matching, "caseload") == []
    assert table(matching, "caseload_alerts") == []
    assert memory_broker.messages(str(Topic.DEAD_LETTERS)) == []


def test_an_alert_that_arrives_after_its_candidates_erasure_leaves_no_row_about_them(
    matching, memory_broker, consume, tenant
):
    candidate_id = str(uuid.uuid4())
    person = copy.deepcopy(load_example(EventType.CANDIDATE_REGISTERED)["data"])
    person["jobcoach_id"] = "jc-1"
    send(memory_broker, Topic.CANDIDATE_EVENTS, EventType.CANDIDATE_REGISTERED, tenant, candidate_id, person)
    send(
        memory_broker, Topic.CANDIDATE_EVENTS, EventType.CANDIDATE_ERASED, tenant, candidate_id, {"jobcoach_id": "jc-1"}
    )
    assert consume() == 2

    raised_id, acknowledged_id = str(uuid.uuid4()), str(uuid.uuid4())
    raised = {"alert_type": "out_of_sight", "candidate_id": candidate_id, "jobcoach_id": "jc-1", "created_at": NOW}
    send(memory_broker, Topic.ALERT_EVENTS, EventType.ALERT_RAISED, tenant, raised_id, raised)
    ack = {**raised, "alert_id": acknowledged_id, "acknowledged_at": NOW}
    send(memory_broker, Topic.ALERT_EVENTS, EventType.ALERT_ACKNOWLEDGED, tenant, acknowledged_id, ack)
    assert consume() == 2

    assert table(matching, "caseload") == []
    assert table(matching, "caseload_alerts") == []
    assert memory_broker.messages(str(Topic.DEAD_LETTERS)) == []
