"""The candidate worker's event handlers through the shared consumer loop, on the in-memory broker.

The ladder step rises when matching says a placement's end moved the person up (never down), and goes
out as ``candidate.updated`` through the outbox; answered introductions enter the consent history. The
database is real; only the broker is the double (tests/contract keeps it in step with Kafka).
test_candidate_events.py runs the same handlers through the real broker.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from kafka.structs import TopicPartition

from services.candidate import worker as candidate_worker
from services.candidate.worker import HANDLERS, TOPICS
from shared import worker
from shared.consumer import EventConsumer
from shared.events import EventType, decode_event, encode_event, new_event
from shared.topics import Topic
from tests.doubles.memory_broker import MemoryBroker
from tests.integration.conftest import bearer
from tests.integration.helpers import outbox_rows
from tests.integration.test_candidate_api import collection, register

RECORDED_AT = datetime(2026, 11, 30, 10, 15, 11, tzinfo=UTC)


def placement_ended(
    tenant: str,
    candidate_id: str,
    step_after: int | None,
    *,
    placement_id: str | None = None,
    outcome: str = "step_up",
    jobcoach_id: str = "jc-1",
) -> dict:
    return new_event(
        EventType.PLACEMENT_ENDED,
        tenant=tenant,
        subject=placement_id or str(uuid.uuid4()),
        data={
            "candidate_id": candidate_id,
            "vacancy_id": str(uuid.uuid4()),
            "jobcoach_id": jobcoach_id,
            "end_date": "2027-05-02",
            "outcome": outcome,
            "ladder_step_after": step_after,
        },
        source="matching",
    )


def introduction(
    event_type: EventType, tenant: str, candidate_id: str, *, introduction_id: str | None = None, **extra
) -> dict:
    return new_event(
        event_type,
        tenant=tenant,
        subject=introduction_id or str(uuid.uuid4()),
        data={
            "candidate_id": candidate_id,
            "vacancy_id": str(uuid.uuid4()),
            "jobcoach_id": "jc-1",
            "employer_id": "emp-1",
            "vacancy_title": "Medewerker groenonderhoud",
            **extra,
        },
        source="matching",
    )


def send(broker: MemoryBroker, document: dict, topic: Topic) -> None:
    key = f"{document['tenant']}/{document['subject']}".encode()
    broker.make_producer().send(str(topic), key=key, value=encode_event(document)).get(1)


@pytest.fixture
def candidates(service, keys):
    return service("candidate")


@pytest.fixture
def consume(candidates, memory_broker: MemoryBroker):
    """Run the worker's handler table over everything sent so far; returns how many messages were taken."""

    def run() -> int:
        kafka_consumer = memory_broker.make_consumer("", f"test-{uuid.uuid4().hex[:8]}", "test-consumer")
        kafka_consumer.subscribe([str(topic) for topic in TOPICS])
        consumer = EventConsumer(
            db=candidates.db,
            processed_events=candidates.store.processed_events,
            consumer=kafka_consumer,
            dead_letter_producer=memory_broker.make_producer(),
            group_id="test-candidate",
            handlers=HANDLERS,
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


def read(candidates, tenant, key, candidate_id, suffix="") -> dict:
    response = candidates.client.get(f"{collection(tenant)}/{candidate_id}{suffix}", headers=bearer(key))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def updated_events(candidates, tenant, candidate_id) -> list:
    events = [decode_event(row.payload.encode("utf-8")) for row in outbox_rows(candidates, f"{tenant}/{candidate_id}")]
    return [event for event in events if event.type == EventType.CANDIDATE_UPDATED]


def rows(candidates, table_name: str) -> list[dict]:
    table = candidates.store.metadata.tables[table_name]
    with candidates.db.session() as session:
        return [row._asdict() for row in session.execute(sa.select(table))]


# --------------------------------------------------------------------------------------------------------
# The ladder


def test_a_placements_end_raises_the_step_records_it_and_tells_the_others(
    candidates, memory_broker, consume, keys, tenant
):
    candidate_id = register(candidates, tenant, keys["jobcoach"], ladder_step=3)["id"]
    ended = placement_ended(tenant, candidate_id, 5, outcome="moved_to_paid_work")
    send(memory_broker, ended, Topic.PLACEMENT_EVENTS)

    assert consume() == 1

    candidate = read(candidates, tenant, keys["jobcoach"], candidate_id)
    assert candidate["ladder_step"] == 5
    newest, first = read(candidates, tenant, keys["operator"], candidate_id, "/ladder")["items"]
    assert (newest["step"], newest["previous_step"], newest["reason"]) == (5, 3, "placement_ended")
    assert (newest["placement_id"], newest["outcome"], newest["end_date"]) == (
        ended["subject"],
        "moved_to_paid_work",
        "2027-05-02",
    )
    assert newest["recorded_by"] == "jc-1"
    assert first["reason"] == "registered"
    [event] = updated_events(candidates, tenant, candidate_id)
    assert event.data["ladder_step"] == 5
    assert event.data["jobcoach_id"] == "jc-1"
    assert "display_name" not in event.data


@pytest.mark.parametrize(
    ("step_after", "outcome"),
    [(3, "retained"), (2, "ended_by_employer"), (1, "step_up"), (None, "retained"), (None, "ended_by_candidate")],
)
def test_a_placements_end_never_lowers_the_step_nor_records_a_non_change(
    candidates, memory_broker, consume, keys, tenant, step_after, outcome
):
    candidate_id = register(candidates, tenant, keys["jobcoach"], ladder_step=3)["id"]
    history_before = read(candidates, tenant, keys["jobcoach"], candidate_id, "/ladder")
    send(memory_broker, placement_ended(tenant, candidate_id, step_after, outcome=outcome), Topic.PLACEMENT_EVENTS)

    assert consume() == 1

    assert read(candidates, tenant, keys["jobcoach"], candidate_id)["ladder_step"] == 3
    assert read(candidates, tenant, keys["jobcoach"], candidate_id, "/ladder") == history_before
    assert updated_events(candidates, tenant, candidate_id) == []
    assert len(rows(candidates, "processed_events")) == 1


def test_the_same_placements_end_raises_the_step_once_however_often_and_under_whatever_id_it_comes(
    candidates, memory_broker, consume, keys, tenant
):
    candidate_id = register(candidates, tenant, keys["jobcoach"], ladder_step=3)["id"]
    ended = placement_ended(tenant, candidate_id, 5)
    for document in (ended, ended, ended, {**ended, "id": str(uuid.uuid4())}):
        send(memory_broker, document, Topic.PLACEMENT_EVENTS)
    consume()
    # The jobcoach sets the step back by hand; the same end arriving once more must not undo that.
    response = candidates.client.patch(
        f"{collection(tenant)}/{candidate_id}", json={"ladder_step": 4}, headers=bearer(keys["jobcoach"])
    )
    assert response.status_code == 200
    send(memory_broker, {**ended, "id": str(uuid.uuid4())}, Topic.PLACEMENT_EVENTS)
    consume()

    assert read(candidates, tenant, keys["jobcoach"], candidate_id)["ladder_step"] == 4
    ladder = read(candidates, tenant, keys["jobcoach"], candidate_id, "/ladder")["items"]
    assert [(item["step"], item["reason"]) for item in ladder] == [
        (4, "changed"),
        (5, "placement_ended"),
        (3, "registered"),
    ]
    assert [event.data["ladder_step"] for event in updated_events(candidates, tenant, candidate_id)] == [5, 4]
    assert len(rows(candidates, "processed_events")) == 3


def test_two_placements_ending_raise_the_step_twice(candidates, memory_broker, consume, keys, tenant):
    candidate_id = register(candidates, tenant, keys["jobcoach"], ladder_step=3)["id"]
    # One after the other: two placements' events are keyed by placement, so Kafka keeps no order between them.
    send(memory_broker, placement_ended(tenant, candidate_id, 4), Topic.PLACEMENT_EVENTS)
    consume()
    send(memory_broker, placement_ended(tenant, candidate_id, 6), Topic.PLACEMENT_EVENTS)
    consume()

    ladder = read(candidates, tenant, keys["jobcoach"], candidate_id, "/ladder")["items"]
    assert [(item["step"], item["previous_step"]) for item in ladder[:2]] == [(6, 4), (4, 3)]


# --------------------------------------------------------------------------------------------------------
# Introductions


def test_answered_introductions_enter_the_consent_history_with_who_recorded_them_and_when(
    candidates, memory_broker, consume, keys, tenant
):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    accepted = introduction(
        EventType.INTRODUCTION_ACCEPTED,
        tenant,
        candidate_id,
        recorded_by="jc-1",
        recorded_at=RECORDED_AT.isoformat(),
    )
    # An older producer that names no recorder: the candidate's jobcoach at the event's time.
    declined = introduction(EventType.INTRODUCTION_DECLINED, tenant, candidate_id)
    send(memory_broker, accepted, Topic.MATCH_EVENTS)
    send(memory_broker, declined, Topic.MATCH_EVENTS)

    assert consume() == 2

    consent = read(candidates, tenant, keys["jobcoach"], candidate_id, "/consent")
    answers = {item["type"]: item for item in consent["items"] if item["type"] != "consent"}
    assert set(answers) == {"introduction_accepted", "introduction_declined"}
    yes, no = answers["introduction_accepted"], answers["introduction_declined"]
    assert (yes["introduction_id"], yes["recorded_by"], yes["recorded_at"]) == (
        accepted["subject"],
        "jc-1",
        RECORDED_AT.isoformat(),
    )
    assert (yes["vacancy_id"], yes["employer_id"]) == (accepted["data"]["vacancy_id"], "emp-1")
    assert yes["vacancy_title"] == "Medewerker groenonderhoud"
    assert yes["consent"] is None
    assert no["recorded_by"] == "jc-1"
    assert datetime.fromisoformat(no["recorded_at"]) == decode_event(encode_event(declined)).time
    assert consent["total"] == 3
    assert updated_events(candidates, tenant, candidate_id) == [], "an answer changes no profile"


def test_an_introduction_answer_is_recorded_once_however_often_it_comes(
    candidates, memory_broker, consume, keys, tenant
):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    accepted = introduction(EventType.INTRODUCTION_ACCEPTED, tenant, candidate_id, recorded_by="jc-1")
    for document in (accepted, accepted, {**accepted, "id": str(uuid.uuid4())}):
        send(memory_broker, document, Topic.MATCH_EVENTS)

    assert consume() == 3

    consent = read(candidates, tenant, keys["jobcoach"], candidate_id, "/consent")["items"]
    assert [item["type"] for item in consent] == ["introduction_accepted", "consent"]


def test_an_introduction_requested_is_none_of_this_workers_business(candidates, memory_broker, consume, keys, tenant):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    send(memory_broker, introduction(EventType.INTRODUCTION_REQUESTED, tenant, candidate_id), Topic.MATCH_EVENTS)

    assert consume() == 1

    assert read(candidates, tenant, keys["jobcoach"], candidate_id, "/consent")["total"] == 1
    assert rows(candidates, "processed_events") == []


# --------------------------------------------------------------------------------------------------------
# Events about candidates who are not here, and events that cannot be handled


def test_events_about_unknown_erased_or_another_regions_candidates_change_nothing_and_are_not_dead_lettered(
    candidates, memory_broker, consume, keys, tenant
):
    erased = register(candidates, tenant, keys["jobcoach"], ladder_step=3)["id"]
    candidates.client.delete(f"{collection(tenant)}/{erased}", headers=bearer(keys["jobcoach"]))
    here = register(candidates, tenant, keys["jobcoach"], ladder_step=3)["id"]
    elsewhere = f"{tenant}-b"
    documents = [
        (placement_ended(tenant, str(uuid.uuid4()), 5), Topic.PLACEMENT_EVENTS),
        (placement_ended(tenant, erased, 5), Topic.PLACEMENT_EVENTS),
        (placement_ended(elsewhere, here, 5), Topic.PLACEMENT_EVENTS),
        (placement_ended(tenant, "x" * 120, 5), Topic.PLACEMENT_EVENTS),
        (introduction(EventType.INTRODUCTION_ACCEPTED, tenant, erased), Topic.MATCH_EVENTS),
        (introduction(EventType.INTRODUCTION_DECLINED, elsewhere, here), Topic.MATCH_EVENTS),
    ]
    outbox_before = outbox_rows(candidates)
    for document, topic in documents:
        send(memory_broker, document, topic)

    assert consume() == len(documents)

    assert memory_broker.messages(str(Topic.DEAD_LETTERS)) == []
    assert len(rows(candidates, "processed_events")) == len(documents)
    assert outbox_rows(candidates) == outbox_before
    assert read(candidates, tenant, keys["jobcoach"], here)["ladder_step"] == 3
    assert {row["candidate_id"] for row in rows(candidates, "candidate_history")} == {here}
    assert len(rows(candidates, "candidate_history")) == 2, "only the registration's consent and step"


def test_an_answer_whose_recorder_does_not_fit_is_dead_lettered_and_the_next_one_is_handled(
    candidates, memory_broker, consume, keys, tenant
):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    too_long = introduction(EventType.INTRODUCTION_ACCEPTED, tenant, candidate_id, recorded_by="j" * 101)
    fine = introduction(EventType.INTRODUCTION_DECLINED, tenant, candidate_id)
    send(memory_broker, too_long, Topic.MATCH_EVENTS)
    send(memory_broker, fine, Topic.MATCH_EVENTS)

    consume()

    consent = read(candidates, tenant, keys["jobcoach"], candidate_id, "/consent")["items"]
    assert [item["type"] for item in consent] == ["introduction_declined", "consent"]
    [dead] = memory_broker.messages(str(Topic.DEAD_LETTERS))
    assert dict(dead.headers)["dlq.reason"] == b"invalid"
    assert decode_event(dead.value).id == too_long["id"], "dead-lettered unchanged"


def test_erasure_takes_the_entries_events_made_along(candidates, memory_broker, consume, keys, tenant):
    erased = register(candidates, tenant, keys["jobcoach"], ladder_step=3)["id"]
    kept = register(candidates, tenant, keys["jobcoach"], ladder_step=3)["id"]
    for candidate_id in (erased, kept):
        send(memory_broker, placement_ended(tenant, candidate_id, 4), Topic.PLACEMENT_EVENTS)
        send(memory_broker, introduction(EventType.INTRODUCTION_ACCEPTED, tenant, candidate_id), Topic.MATCH_EVENTS)
    consume()

    assert (
        candidates.client.delete(f"{collection(tenant)}/{erased}", headers=bearer(keys["operator"])).status_code == 204
    )

    left = rows(candidates, "candidate_history")
    assert {row["candidate_id"] for row in left} == {kept}
    assert {row["kind"] for row in left} == {"consent", "ladder", "introduction_accepted"}


# --------------------------------------------------------------------------------------------------------
# The worker as it runs


def test_the_workers_own_loops_raise_the_step_commit_the_offset_and_publish_the_update(
    candidates, memory_broker, keys, tenant, monkeypatch
):
    # The loops build their clients through shared.kafka's factories; the broker's take the same arguments.
    monkeypatch.setattr(worker, "make_consumer", memory_broker.make_consumer)
    monkeypatch.setattr(worker, "make_producer", memory_broker.make_producer)
    settings = candidates.context.settings
    candidate_id = register(candidates, tenant, keys["jobcoach"], ladder_step=4)["id"]
    send(memory_broker, placement_ended(tenant, candidate_id, 6), Topic.PLACEMENT_EVENTS)
    key = f"{tenant}/{candidate_id}".encode()

    def published() -> list:
        return [m for m in memory_broker.messages(str(Topic.CANDIDATE_EVENTS)) if m.key == key]

    loops = candidate_worker.bootstrap(settings, candidates.db)
    assert [loop.name for loop in loops] == ["consumer", "outbox-relay", "audit-purge"]
    stop = threading.Event()
    threads = [threading.Thread(target=loop.run, args=(stop,), daemon=True) for loop in loops]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 15
        while len(published()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)

    assert not any(thread.is_alive() for thread in threads)
    registered, updated = (decode_event(message.value) for message in published())
    assert registered.type == EventType.CANDIDATE_REGISTERED
    assert (updated.type, updated.data["ladder_step"]) == (EventType.CANDIDATE_UPDATED, 6)
    [ended] = memory_broker.messages(str(Topic.PLACEMENT_EVENTS))
    home = TopicPartition(ended.topic, ended.partition)
    assert settings.consumer_group == "werkbrug-candidate"
    assert memory_broker.committed(settings.consumer_group, home) == ended.offset + 1
