"""Round 2's alerts through the notification worker's handler table and the shared consumer loop, on the
in-memory broker and the real database: nobody out of sight, an employer's interest, a caseload over the
limit, a candidate's handover, the alert events told through the outbox, and erasure of all of it.

The event builders here are what matching and candidate publish; the HTTP side is in
test_notification_caseload_api.py, and one path through real Kafka at the end of this file.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from services.notification.escalation import Escalator
from services.notification.handlers import Timing
from services.notification.worker import TOMBSTONE_HANDLERS, TOPICS, handler_table
from shared.clock import FakeClock
from shared.consumer import EventConsumer
from shared.events import EventType, decode_event, encode_event, load_example, new_event
from shared.kafka import make_consumer, make_producer
from shared.outbox import OutboxRelay
from shared.topics import Topic
from tests.doubles.memory_broker import MemoryBroker
from tests.integration.helpers import outbox_rows
from tests.kafka_helpers import fresh_topic, read_all

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


# --------------------------------------------------------------------------------------------------------
# Events as their producers publish them


def new_id() -> str:
    return str(uuid.uuid4())


def jobcoach() -> str:
    return f"jc-{uuid.uuid4().hex[:10]}"


def out_of_sight(tenant: str, candidate_id: str, jobcoach_id: str, *, episode: int = 1, last: str = "2026-10-24"):
    return new_event(
        EventType.CANDIDATE_OUT_OF_SIGHT,
        tenant=tenant,
        subject=candidate_id,
        data={
            "candidate_id": candidate_id,
            "jobcoach_id": jobcoach_id,
            "last_contact": last,
            "contact_days": 30,
            "episode": episode,
        },
        source="matching",
    )


def introduction(tenant: str, candidate_id: str, jobcoach_id: str, *, employer_id: str = "", title="Hovenier"):
    return new_event(
        EventType.INTRODUCTION_REQUESTED,
        tenant=tenant,
        subject=new_id(),
        data={
            "candidate_id": candidate_id,
            "vacancy_id": new_id(),
            "jobcoach_id": jobcoach_id,
            "employer_id": employer_id or f"emp-{uuid.uuid4().hex[:10]}",
            "vacancy_title": title,
        },
        source="matching",
    )


def over_limit(tenant: str, jobcoach_id: str, *, episode: int = 1, caseload: int = 23):
    return new_event(
        EventType.CASELOAD_OVER_LIMIT,
        tenant=tenant,
        subject=jobcoach_id,
        data={"jobcoach_id": jobcoach_id, "caseload": caseload, "caseload_limit": 20, "episode": episode},
        source="matching",
    )


def at_risk(tenant: str, candidate_id: str, jobcoach_id: str):
    return new_event(
        EventType.PLACEMENT_AT_RISK,
        tenant=tenant,
        subject=new_id(),
        data={
            "candidate_id": candidate_id,
            "vacancy_id": new_id(),
            "jobcoach_id": jobcoach_id,
            "score": 0.8,
            "reasons": [{"feature": "absence", "contribution": 0.5}],
            "episode": 1,
            "model_version": "default-1",
        },
        source="matching",
    )


def candidate_profile(tenant: str, candidate_id: str, jobcoach_id: str, *, registered: bool = False):
    event_type = EventType.CANDIDATE_REGISTERED if registered else EventType.CANDIDATE_UPDATED
    data = {**load_example(EventType.CANDIDATE_UPDATED)["data"], "jobcoach_id": jobcoach_id}
    return new_event(event_type, tenant=tenant, subject=candidate_id, data=data, source="candidate")


def erased(tenant: str, candidate_id: str, jobcoach_id: str):
    return new_event(
        EventType.CANDIDATE_ERASED, tenant=tenant, subject=candidate_id, data={"jobcoach_id": jobcoach_id}, source="c"
    )


TOPIC_OF = {
    EventType.CANDIDATE_REGISTERED: Topic.CANDIDATE_EVENTS,
    EventType.CANDIDATE_UPDATED: Topic.CANDIDATE_EVENTS,
    EventType.CANDIDATE_ERASED: Topic.CANDIDATE_EVENTS,
    EventType.PLACEMENT_AT_RISK: Topic.PLACEMENT_EVENTS,
}


# --------------------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture
def notifications(service, keys):
    return service("notification")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def send(memory_broker: MemoryBroker):
    def put(*documents: dict) -> None:
        producer = memory_broker.make_producer()
        for document in documents:
            topic = TOPIC_OF.get(document["type"], Topic.MATCH_EVENTS)
            key = f"{document['tenant']}/{document['subject']}".encode()
            producer.send(str(topic), key=key, value=encode_event(document)).get(1)

    return put


@pytest.fixture
def consume(notifications, memory_broker: MemoryBroker, clock):
    """Run the worker's handler table over everything sent so far, as a consumer group of its own."""

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


def rows(notifications, table_name: str, **where) -> list[dict]:
    table = notifications.store.metadata.tables[table_name]
    query = sa.select(table).where(*(table.c[name] == value for name, value in where.items()))
    with notifications.db.session() as session:
        return [row._asdict() for row in session.execute(query)]


def set_channels(notifications, tenant: str, jobcoach_id: str, **values) -> None:
    channels = {"webhook_url": None, "webhook_secret": None, "email": None, "digest": False, **values}
    with notifications.db.session() as session:
        notifications.store.put_channels(session, tenant, jobcoach_id, channels)


def told(notifications, event_type: str) -> list:
    """The events of one type in the outbox, oldest first, decoded as their consumers will decode them."""
    return [
        event
        for event in (decode_event(row.payload.encode()) for row in outbox_rows(notifications) if row.payload)
        if event.type == event_type
    ]


def delivery_channels(notifications, alert_id: str) -> dict[str, str]:
    return {d["channel"]: d["status"] for d in rows(notifications, "deliveries", alert_id=alert_id)}


# --------------------------------------------------------------------------------------------------------
# Out of sight


def test_out_of_sight_is_one_alert_per_gap_for_the_candidates_jobcoach(notifications, send, consume, tenant):
    candidate_id, coach = new_id(), jobcoach()
    set_channels(notifications, tenant, coach, webhook_url="https://hooks.example.org/a", webhook_secret="s" * 20)
    first = out_of_sight(tenant, candidate_id, coach)
    send(first, first, {**first, "id": new_id()}, out_of_sight(tenant, candidate_id, coach, episode=2))

    assert consume() == 4

    alerts = sorted(rows(notifications, "alerts"), key=lambda alert: alert["episode"])
    assert [(a["type"], a["subject"], a["episode"]) for a in alerts] == [
        ("out_of_sight", candidate_id, 1),
        ("out_of_sight", candidate_id, 2),
    ]
    alert = alerts[0]
    assert (alert["jobcoach_id"], alert["candidate_id"], alert["audience"]) == (coach, candidate_id, "jobcoach")
    assert alert["vacancy_id"] is None and alert["placement_id"] is None
    assert alert["message"] == (
        "Al 30 dagen geen contact met deze kandidaat (laatste contact 24-10-2026). Neem contact op."
    )
    assert alert["details"] == {"last_contact": "2026-10-24", "contact_days": 30, "episode": 1}
    assert alert["created_at"] == NOW
    assert delivery_channels(notifications, alert["id"]) == {"webhook": "pending"}
    raised = told(notifications, EventType.ALERT_RAISED)
    assert sorted(event.subject for event in raised) == sorted(a["id"] for a in alerts)
    assert {(e.data["alert_type"], e.data["candidate_id"], e.data["jobcoach_id"]) for e in raised} == {
        ("out_of_sight", candidate_id, coach)
    }
    assert {event.data["created_at"] for event in raised} == {NOW}


# --------------------------------------------------------------------------------------------------------
# Employer interest


def test_an_employers_interest_is_one_alert_naming_the_vacancy_and_the_introduction_never_the_employer(
    notifications, send, consume, tenant
):
    candidate_id, coach, employer_id = new_id(), jobcoach(), f"emp-{uuid.uuid4().hex}"
    event = introduction(tenant, candidate_id, coach, employer_id=employer_id, title="Medewerker groenonderhoud")
    send(event, {**event, "id": new_id()})

    consume()

    [alert] = rows(notifications, "alerts")
    assert (alert["type"], alert["subject"], alert["episode"]) == ("employer_interest", event["subject"], 1)
    assert (alert["jobcoach_id"], alert["candidate_id"]) == (coach, candidate_id)
    assert alert["vacancy_id"] == event["data"]["vacancy_id"]
    assert alert["details"] == {"introduction_id": event["subject"], "vacancy_title": "Medewerker groenonderhoud"}
    assert "Medewerker groenonderhoud" in alert["message"]
    assert employer_id not in str(alert), "the employer stays out of the alert"
    assert employer_id not in str([row.payload for row in outbox_rows(notifications)])


def test_an_introduction_without_a_title_still_alerts_and_one_with_a_bad_id_is_dead_lettered(
    notifications, memory_broker, send, consume, tenant
):
    coach = jobcoach()
    untitled = introduction(tenant, new_id(), coach, title=None)
    bad = {**introduction(tenant, "c" * 40, coach), "subject": new_id()}
    send(bad, untitled)

    consume()

    [alert] = rows(notifications, "alerts")
    assert alert["subject"] == untitled["subject"]
    assert "voor een vacature" in alert["message"]
    [dead] = memory_broker.messages(str(Topic.DEAD_LETTERS))
    assert dict(dead.headers)["dlq.reason"] == b"invalid"
    assert decode_event(dead.value).id == bad["id"]


# --------------------------------------------------------------------------------------------------------
# Caseload over the limit


def test_a_caseload_over_the_limit_goes_to_the_operators_once_per_episode_and_to_no_channel(
    notifications, send, consume, tenant
):
    coach = jobcoach()
    set_channels(notifications, tenant, coach, email="coach@example.org")
    first = over_limit(tenant, coach)
    send(first, {**first, "id": new_id()}, over_limit(tenant, coach, episode=1, caseload=25))
    consume()
    send(over_limit(tenant, coach, episode=2, caseload=21))
    consume()

    alerts = sorted(rows(notifications, "alerts"), key=lambda alert: alert["episode"])
    assert [(a["type"], a["subject"], a["episode"], a["audience"]) for a in alerts] == [
        ("caseload_over_limit", coach, 1, "operators"),
        ("caseload_over_limit", coach, 2, "operators"),
    ]
    assert alerts[0]["jobcoach_id"] == coach
    assert alerts[0]["candidate_id"] is None
    assert alerts[0]["message"] == f"Jobcoach {coach} heeft 23 kandidaten. Dat is meer dan de grens van 20."
    assert alerts[1]["details"] == {"jobcoach_id": coach, "caseload": 21, "caseload_limit": 20, "episode": 2}
    assert rows(notifications, "deliveries") == [], "operators read their inbox; the jobcoach's mail is not theirs"
    raised = told(notifications, EventType.ALERT_RAISED)
    assert [(e.data["alert_type"], e.data["candidate_id"], e.data["jobcoach_id"]) for e in raised] == [
        ("caseload_over_limit", None, coach)
    ] * 2


def test_a_caseload_event_naming_an_impossible_jobcoach_id_is_dead_lettered(
    notifications, memory_broker, send, consume, tenant
):
    send(over_limit(tenant, "j" * 101), over_limit(tenant, jobcoach()))

    consume()

    assert len(rows(notifications, "alerts")) == 1
    [dead] = memory_broker.messages(str(Topic.DEAD_LETTERS))
    assert dict(dead.headers)["dlq.reason"] == b"invalid"


# --------------------------------------------------------------------------------------------------------
# Handover


def test_a_handover_moves_every_alert_of_the_candidate_to_the_new_jobcoach_and_restarts_open_deliveries(
    notifications, send, consume, tenant, clock
):
    candidate_id, other_candidate, old, new = new_id(), new_id(), jobcoach(), jobcoach()
    set_channels(notifications, tenant, old, webhook_url="https://old.example.org/h", webhook_secret="s" * 20)
    set_channels(notifications, tenant, new, email="new@example.org", digest=True)
    send(
        candidate_profile(tenant, candidate_id, old, registered=True),
        at_risk(tenant, candidate_id, old),
        introduction(tenant, candidate_id, old),
        out_of_sight(tenant, other_candidate, old),
    )
    consume()
    risk = rows(notifications, "alerts", type="placement_at_risk")[0]
    interest = rows(notifications, "alerts", type="employer_interest")[0]
    with notifications.db.session() as session:
        notifications.store.acknowledge_alert(session, tenant, interest["id"], NOW)
        # The webhook delivery went out already: the old jobcoach's receiver has it, the new one must too.
        session.execute(
            notifications.store.deliveries.update()
            .where(notifications.store.deliveries.c.alert_id == risk["id"])
            .values(status="delivered", attempts=1)
        )
    clock.advance(hours=5)

    send(candidate_profile(tenant, candidate_id, new))
    consume()

    holders = {alert["id"]: alert["jobcoach_id"] for alert in rows(notifications, "alerts")}
    assert holders[risk["id"]] == holders[interest["id"]] == new, "open and acknowledged alerts both move"
    assert list(holders.values()).count(old) == 1, "the old jobcoach keeps their other candidate's alert"
    [risk_delivery] = rows(notifications, "deliveries", alert_id=risk["id"])
    assert (risk_delivery["channel"], risk_delivery["status"], risk_delivery["attempts"]) == ("digest", "pending", 0)
    assert risk_delivery["next_attempt_at"] > clock.now, "the new jobcoach's digest, the next morning"
    assert rows(notifications, "deliveries", alert_id=interest["id"]) == [], "an acknowledged alert is not sent"
    assert rows(notifications, "alerts", id=interest["id"])[0]["acknowledged_at"] == NOW
    assert rows(notifications, "candidate_jobcoaches") == [
        {"tenant": tenant, "candidate_id": candidate_id, "jobcoach_id": new, "updated_at": clock.now}
    ]


def test_an_alert_from_an_event_older_than_the_handover_goes_to_the_new_jobcoach(notifications, send, consume, tenant):
    candidate_id, old, new = new_id(), jobcoach(), jobcoach()
    set_channels(notifications, tenant, old, email="old@example.org")
    send(candidate_profile(tenant, candidate_id, new))
    consume()

    # Matching had not heard of the handover yet when it saw the candidate out of sight.
    send(out_of_sight(tenant, candidate_id, old), introduction(tenant, candidate_id, old))
    consume()

    assert {alert["jobcoach_id"] for alert in rows(notifications, "alerts")} == {new}
    assert rows(notifications, "deliveries") == [], "nothing goes to the old jobcoach's mailbox"
    assert {event.data["jobcoach_id"] for event in told(notifications, EventType.ALERT_RAISED)} == {new}


def test_a_profile_change_that_keeps_the_jobcoach_moves_nothing_and_leaves_deliveries_alone(
    notifications, send, consume, tenant
):
    candidate_id, coach = new_id(), jobcoach()
    set_channels(notifications, tenant, coach, webhook_url="https://hooks.example.org/a", webhook_secret="s" * 20)
    send(at_risk(tenant, candidate_id, coach))
    consume()
    [alert] = rows(notifications, "alerts")
    [before] = rows(notifications, "deliveries")

    send(candidate_profile(tenant, candidate_id, coach), candidate_profile(tenant, candidate_id, coach))
    consume()

    assert rows(notifications, "alerts")[0]["jobcoach_id"] == coach
    assert rows(notifications, "deliveries") == [before]
    assert alert["id"] == before["alert_id"]


def test_an_escalation_stays_with_the_operators_after_a_handover_and_its_alert_does_not_escalate_again(
    notifications, registry, send, consume, tenant, clock
):
    candidate_id, old, new = new_id(), jobcoach(), jobcoach()
    send(at_risk(tenant, candidate_id, old))
    consume()
    clock.advance(hours=49)
    escalator = Escalator(notifications.db, registry, clock)
    assert escalator.escalate_due() == 1

    send(candidate_profile(tenant, candidate_id, new))
    consume()
    clock.advance(hours=49)

    assert escalator.escalate_due() == 0
    [escalation] = rows(notifications, "alerts", type="placement_at_risk_escalated")
    assert (escalation["audience"], escalation["jobcoach_id"]) == ("operators", old), "it records who let it lie"
    [original] = rows(notifications, "alerts", type="placement_at_risk")
    assert original["jobcoach_id"] == new


# --------------------------------------------------------------------------------------------------------
# Erasure


@pytest.mark.parametrize("how", ["event", "tombstone"])
def test_erasure_takes_the_new_alerts_their_events_and_the_candidates_jobcoach_along(
    notifications, memory_broker, send, consume, tenant, how
):
    candidate_id, kept_candidate, coach = new_id(), new_id(), jobcoach()
    set_channels(notifications, tenant, coach, email="coach@example.org")
    send(
        candidate_profile(tenant, candidate_id, coach, registered=True),
        candidate_profile(tenant, kept_candidate, coach, registered=True),
        out_of_sight(tenant, candidate_id, coach),
        introduction(tenant, candidate_id, coach),
        introduction(tenant, kept_candidate, coach),
        over_limit(tenant, coach),
    )
    consume()
    # Half of the outbox already went out: erasure deletes published rows as well as waiting ones.
    with notifications.db.session() as session:
        first_raised = min(row.id for row in outbox_rows(notifications))
        table = notifications.store.outbox.table
        session.execute(table.update().where(table.c.id == first_raised).values(published_at=NOW))
    erased_ids = {a["id"] for a in rows(notifications, "alerts", candidate_id=candidate_id)}
    assert len(erased_ids) == 2

    if how == "event":
        send(erased(tenant, candidate_id, coach))
    else:
        memory_broker.make_producer().send(
            str(Topic.CANDIDATE_EVENTS), key=f"{tenant}/{candidate_id}".encode(), value=None
        ).get(1)
    consume()

    remaining = rows(notifications, "alerts")
    assert sorted(a["type"] for a in remaining) == ["caseload_over_limit", "employer_interest"]
    assert candidate_id not in str(remaining)
    assert not [d for d in rows(notifications, "deliveries") if d["alert_id"] in erased_ids]
    assert candidate_id not in str([row.payload for row in outbox_rows(notifications)])
    assert [row["candidate_id"] for row in rows(notifications, "candidate_jobcoaches")] == [kept_candidate]
    assert len(told(notifications, EventType.ALERT_RAISED)) == 2


# --------------------------------------------------------------------------------------------------------
# Through real Kafka


@pytest.mark.kafka
def test_through_kafka_an_introduction_and_a_handover_end_in_the_new_jobcoachs_inbox_and_are_told(
    notifications, bootstrap_servers, clock, tenant
):
    candidate_id, old, new = new_id(), jobcoach(), jobcoach()
    documents = [
        candidate_profile(tenant, candidate_id, old, registered=True),
        introduction(tenant, candidate_id, old, title="Koffie zetten"),
        candidate_profile(tenant, candidate_id, new),
        over_limit(tenant, new),
    ]
    # One topic of the test's own, every document keyed as its producer keys it.
    topic = fresh_topic(bootstrap_servers)
    producer = make_producer(bootstrap_servers, "test-producer")
    kafka_consumer = make_consumer(bootstrap_servers, f"test-{uuid.uuid4().hex[:8]}", "test-consumer")
    try:
        for document in documents:
            key = f"{document['tenant']}/{document['subject']}".encode()
            producer.send(topic, key=key, value=encode_event(document)).get(30)
        producer.flush()
        kafka_consumer.subscribe([topic])
        consumer = EventConsumer(
            db=notifications.db,
            processed_events=notifications.store.processed_events,
            consumer=kafka_consumer,
            dead_letter_producer=producer,
            group_id="test-notification",
            handlers=handler_table(Timing(clock=clock)),
            retry_backoff_s=0.01,
        )
        taken = 0
        for _ in range(60):
            taken += consumer.poll_once(timeout_ms=500)
            if taken >= len(documents):
                break
        assert taken == len(documents)
        # Kafka keeps order per key only: whether the introduction was handled before the handover (and its
        # alert moved) or after it (and went to the new jobcoach straight away), the alert is the new one's.
        assert {a["type"]: a["jobcoach_id"] for a in rows(notifications, "alerts")} == {
            "employer_interest": new,
            "caseload_over_limit": new,
        }

        assert OutboxRelay(notifications.db, notifications.store.outbox, producer).publish_batch() == 2
    finally:
        kafka_consumer.close(autocommit=False)
        producer.close()
    messages = read_all(bootstrap_servers, Topic.ALERT_EVENTS, key_prefix=f"{tenant}/".encode())
    published = sorted((decode_event(m.value) for m in messages), key=lambda event: event.data["alert_type"])
    assert [(e.type, e.data["alert_type"]) for e in published] == [
        (EventType.ALERT_RAISED, "caseload_over_limit"),
        (EventType.ALERT_RAISED, "employer_interest"),
    ]
    assert {m.key for m in messages} == {f"{tenant}/{e.subject}".encode() for e in published}
