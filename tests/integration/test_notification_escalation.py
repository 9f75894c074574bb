"""Escalating unacknowledged at-risk alerts to the region's operators, with the clock moved by the test, and
acknowledgements told to the region's insights through the outbox and the real broker."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.notification import handlers
from services.notification.escalation import Escalator
from services.notification.handlers import Timing
from shared import tracing
from shared.clock import FakeClock
from shared.events import EventType, decode_event, encode_event, new_event
from shared.kafka import make_producer
from shared.outbox import OutboxRelay
from shared.topics import Topic
from tests.integration.conftest import bearer
from tests.integration.helpers import outbox_rows
from tests.kafka_helpers import read_all

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def notifications(service, keys, clock):
    built = service("notification")
    built.context.clock = clock
    return built


@pytest.fixture
def escalator(notifications, registry, clock) -> Escalator:
    return Escalator(notifications.db, registry, clock)


def risk_alert(notifications, tenant: str, clock: FakeClock, jobcoach_id: str = "jc-1") -> str:
    placement_id = str(uuid.uuid4())
    document = new_event(
        EventType.PLACEMENT_AT_RISK,
        tenant=tenant,
        subject=placement_id,
        data={
            "candidate_id": str(uuid.uuid4()),
            "vacancy_id": str(uuid.uuid4()),
            "jobcoach_id": jobcoach_id,
            "score": 0.8,
            "reasons": [{"feature": "absence", "contribution": 0.5}],
            "episode": 1,
            "model_version": "default-1",
        },
        source="test",
    )
    with notifications.db.session() as session:
        handlers.on_placement_at_risk(session, decode_event(encode_event(document)), timing=Timing(clock=clock))
    alerts = notifications.store.alerts
    with notifications.db.session() as session:
        return session.execute(sa.select(alerts.c.id).where(alerts.c.subject == placement_id)).scalar_one()


def escalations(notifications, tenant: str) -> list[dict]:
    alerts = notifications.store.alerts
    with notifications.db.session() as session:
        found = session.execute(
            sa.select(alerts).where(alerts.c.tenant == tenant, alerts.c.type == "placement_at_risk_escalated")
        ).all()
    return [row._asdict() for row in found]


def operator_inbox(notifications, keys, tenant: str, **query) -> dict:
    response = notifications.client.get(
        f"/v1/tenants/{tenant}/escalations", query_string=query, headers=bearer(keys["operator"])
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def acknowledged_events(notifications) -> list:
    """The acknowledgements the service told, oldest first."""
    events = [decode_event(row.payload.encode()) for row in outbox_rows(notifications)]
    return [event for event in events if event.type == EventType.ALERT_ACKNOWLEDGED]


# --------------------------------------------------------------------------------------------------------
# Escalation


def test_an_unacknowledged_risk_alert_is_escalated_once_when_the_window_has_passed(
    notifications, escalator, registry, clock, keys, tenant
):
    alert_id = risk_alert(notifications, tenant, clock)

    clock.advance(hours=47, minutes=59)
    assert escalator.escalate_due() == 0
    clock.advance(minutes=1)
    assert escalator.escalate_due() == 1
    # Again, and from a second replica: nothing more.
    assert escalator.escalate_due() == 0
    assert Escalator(notifications.db, registry, clock).escalate_due() == 0
    clock.advance(hours=100)
    assert escalator.escalate_due() == 0

    [escalation] = escalations(notifications, tenant)
    assert escalation["audience"] == "operators"
    assert escalation["subject"] == alert_id
    assert escalation["created_at"] == NOW + timedelta(hours=48)
    assert escalation["message"] == "Een risicomelding is na 48 uur nog niet bevestigd door de jobcoach."
    assert escalation["details"]["alert_id"] == alert_id
    assert escalation["details"]["jobcoach_id"] == "jc-1"
    page = operator_inbox(notifications, keys, tenant)
    assert [item["id"] for item in page["items"]] == [escalation["id"]]
    assert page["items"][0]["type"] == "placement_at_risk_escalated"
    original = notifications.client.get(f"/v1/tenants/{tenant}/alerts", headers=bearer(keys["jobcoach"])).get_json()
    assert [item["id"] for item in original["items"]] == [alert_id], "the jobcoach's inbox holds no escalation"
    assert original["items"][0]["escalated_at"] is not None


def test_each_escalation_starts_a_trace_of_its_own(notifications, escalator, clock, tenant):
    risk_alert(notifications, tenant, clock)
    risk_alert(notifications, tenant, clock)
    clock.advance(hours=48)
    assert escalator.escalate_due() == 2

    events = [decode_event(row.payload.encode()) for row in outbox_rows(notifications)]
    raised = [e for e in events if e.type == EventType.ALERT_RAISED and e.data["alert_type"].endswith("_escalated")]
    traces = [tracing.parse(e.extensions.get("traceparent")) for e in raised]
    assert len(traces) == 2 and None not in traces, "an escalation's event names the trace it started"
    assert len({trace.trace_id for trace in traces if trace}) == 2, "unrelated escalations share no trace"


def test_an_acknowledged_risk_alert_is_never_escalated(notifications, escalator, clock, keys, tenant):
    alert_id = risk_alert(notifications, tenant, clock)
    clock.advance(hours=47)
    acked = notifications.client.post(f"/v1/tenants/{tenant}/alerts/{alert_id}/ack", headers=bearer(keys["jobcoach"]))
    assert acked.status_code == 200

    clock.advance(hours=10)

    assert escalator.escalate_due() == 0
    assert escalations(notifications, tenant) == []


def test_the_window_is_the_regions_own_setting(notifications, escalator, registry, clock, tenant):
    registry.change_settings(tenant, {"escalation_hours": "2"})
    other = f"{tenant}-b"
    registry.create_tenant(other)
    risk_alert(notifications, tenant, clock)
    risk_alert(notifications, other, clock)

    clock.advance(hours=2)

    assert escalator.escalate_due() == 1
    assert len(escalations(notifications, tenant)) == 1
    assert escalations(notifications, other) == [], "the other region keeps the 48-hour default"
    assert "na 2 uur" in escalations(notifications, tenant)[0]["message"]


def overdue_alert(notifications, tenant: str, clock: FakeClock, jobcoach_id: str = "jc-1") -> str:
    placement_id = str(uuid.uuid4())
    overdue = new_event(
        EventType.PLACEMENT_CHECKIN_OVERDUE,
        tenant=tenant,
        subject=placement_id,
        data={
            "candidate_id": str(uuid.uuid4()),
            "vacancy_id": str(uuid.uuid4()),
            "jobcoach_id": jobcoach_id,
            "last_checkin": "2026-11-02",
            "due_since": "2026-11-16",
            "episode": 1,
        },
        source="test",
    )
    with notifications.db.session() as session:
        handlers.on_checkin_overdue(session, decode_event(encode_event(overdue)), timing=Timing(clock=clock))
    alerts = notifications.store.alerts
    with notifications.db.session() as session:
        return session.execute(sa.select(alerts.c.id).where(alerts.c.subject == placement_id)).scalar_one()


def test_an_unacknowledged_checkin_overdue_alert_is_escalated_once_like_an_at_risk_one(
    notifications, escalator, registry, clock, keys, tenant
):
    overdue_id = overdue_alert(notifications, tenant, clock)
    risk_id = risk_alert(notifications, tenant, clock)

    clock.advance(hours=47, minutes=59)
    assert escalator.escalate_due() == 0
    clock.advance(minutes=1)
    assert escalator.escalate_due() == 2
    assert escalator.escalate_due() == 0
    assert Escalator(notifications.db, registry, clock).escalate_due() == 0
    clock.advance(hours=100)
    assert escalator.escalate_due() == 0

    page = operator_inbox(notifications, keys, tenant, type="checkin_overdue_escalated")
    [escalation] = page["items"]
    assert escalation["details"]["alert_id"] == overdue_id
    assert escalation["details"]["jobcoach_id"] == "jc-1"
    assert (
        escalation["message"]
        == "Een melding over een te late check-in is na 48 uur nog niet bevestigd door de jobcoach."
    )
    assert escalation["placement_id"] is not None
    risks = operator_inbox(notifications, keys, tenant, type="placement_at_risk_escalated")["items"]
    assert [item["details"]["alert_id"] for item in risks] == [risk_id]
    inbox = notifications.client.get(f"/v1/tenants/{tenant}/alerts", headers=bearer(keys["jobcoach"])).get_json()
    assert {item["id"]: item["escalated_at"] is not None for item in inbox["items"]} == {
        overdue_id: True,
        risk_id: True,
    }, "the jobcoach's inbox shows both escalated, and holds no escalation"


def test_an_acknowledged_checkin_overdue_alert_is_never_escalated(notifications, escalator, clock, keys, tenant):
    alert_id = overdue_alert(notifications, tenant, clock)
    clock.advance(hours=47)
    acked = notifications.client.post(f"/v1/tenants/{tenant}/alerts/{alert_id}/ack", headers=bearer(keys["jobcoach"]))
    assert acked.status_code == 200

    clock.advance(hours=10)

    assert escalator.escalate_due() == 0
    assert operator_inbox(notifications, keys, tenant)["items"] == []


def test_match_out_of_sight_and_interest_alerts_never_escalate(notifications, escalator, clock, keys, tenant):
    candidate_id = str(uuid.uuid4())
    common = {"candidate_id": candidate_id, "jobcoach_id": "jc-1"}
    documents = [
        new_event(
            EventType.MATCH_PROPOSED,
            tenant=tenant,
            subject=str(uuid.uuid4()),
            data={
                **common,
                "vacancy_id": str(uuid.uuid4()),
                "vacancy_title": "Groenonderhoud",
                "score": 0.7,
                "explanation": {},
                "ranking_version": "v1",
            },
            source="test",
        ),
        new_event(
            EventType.CANDIDATE_OUT_OF_SIGHT,
            tenant=tenant,
            subject=candidate_id,
            data={**common, "last_contact": "2026-10-01", "contact_days": 30, "episode": 1},
            source="test",
        ),
        new_event(
            EventType.INTRODUCTION_REQUESTED,
            tenant=tenant,
            subject=str(uuid.uuid4()),
            data={**common, "vacancy_id": str(uuid.uuid4()), "employer_id": "emp-1", "vacancy_title": "Koffie"},
            source="test",
        ),
    ]
    timing = Timing(clock=clock)
    with notifications.db.session() as session:
        handlers.on_match_proposed(session, decode_event(encode_event(documents[0])), timing=timing)
        handlers.on_candidate_out_of_sight(session, decode_event(encode_event(documents[1])), timing=timing)
        handlers.on_introduction_requested(session, decode_event(encode_event(documents[2])), timing=timing)

    clock.advance(days=30)

    assert escalator.escalate_due() == 0
    inbox = notifications.client.get(f"/v1/tenants/{tenant}/alerts", headers=bearer(keys["jobcoach"])).get_json()
    assert sorted(item["type"] for item in inbox["items"]) == ["employer_interest", "match_proposed", "out_of_sight"]
    assert all(item["escalated_at"] is None for item in inbox["items"])


def test_operators_acknowledge_escalations_and_filter_their_inbox(notifications, escalator, clock, keys, tenant):
    risk_alert(notifications, tenant, clock)
    risk_alert(notifications, tenant, clock)
    clock.advance(hours=49)
    escalator.escalate_due()
    first, second = (item["id"] for item in operator_inbox(notifications, keys, tenant)["items"])

    acked = notifications.client.post(f"/v1/tenants/{tenant}/escalations/{first}/ack", headers=bearer(keys["operator"]))
    again = notifications.client.post(f"/v1/tenants/{tenant}/escalations/{first}/ack", headers=bearer(keys["operator"]))

    assert acked.status_code == again.status_code == 200
    assert acked.get_json()["acknowledged_at"] == again.get_json()["acknowledged_at"] is not None
    assert [item["id"] for item in operator_inbox(notifications, keys, tenant, unread="true")["items"]] == [second]
    assert [item["id"] for item in operator_inbox(notifications, keys, tenant, unread="false")["items"]] == [first]
    # Told once, with the operators' type, so that nobody takes it for a jobcoach's contact.
    [told] = acknowledged_events(notifications)
    assert (told.subject, told.data["alert_type"], told.data["jobcoach_id"]) == (
        first,
        "placement_at_risk_escalated",
        "jc-1",
    )
    assert told.data["alert_id"] == first


@pytest.mark.parametrize(
    ("caller", "status"),
    [("jobcoach", 403), ("employer", 403), ("no-key", 401), ("other-tenant-operator", 404)],
)
def test_the_operators_inbox_is_theirs_alone(notifications, registry, escalator, clock, keys, tenant, caller, status):
    risk_alert(notifications, tenant, clock)
    clock.advance(hours=49)
    escalator.escalate_due()
    [escalation] = escalations(notifications, tenant)
    registry.create_tenant(f"{tenant}-b")
    headers = {
        "jobcoach": bearer(keys["jobcoach"]),
        "employer": bearer(keys["employer"]),
        "no-key": {},
        "other-tenant-operator": bearer(registry.create_key(f"{tenant}-b", "operator", None)),
    }[caller]

    listing = notifications.client.get(f"/v1/tenants/{tenant}/escalations", headers=headers)
    ack = notifications.client.post(f"/v1/tenants/{tenant}/escalations/{escalation['id']}/ack", headers=headers)

    for response in (listing, ack):
        assert response.status_code == status
        assert response.mimetype == PROBLEM_JSON
        assert escalation["id"] not in response.get_data(as_text=True)
    assert escalations(notifications, tenant)[0]["acknowledged_at"] is None


def test_a_jobcoach_cannot_acknowledge_an_escalation_about_them(notifications, escalator, clock, keys, tenant):
    risk_alert(notifications, tenant, clock)
    clock.advance(hours=49)
    escalator.escalate_due()
    [escalation] = escalations(notifications, tenant)

    response = notifications.client.post(
        f"/v1/tenants/{tenant}/alerts/{escalation['id']}/ack", headers=bearer(keys["jobcoach"])
    )

    assert response.status_code == 404
    assert escalations(notifications, tenant)[0]["acknowledged_at"] is None


# --------------------------------------------------------------------------------------------------------
# Acknowledgements told to insights


@pytest.mark.kafka
def test_acknowledging_puts_one_acknowledged_event_in_the_outbox_and_the_relay_publishes_it(
    notifications, clock, keys, tenant, bootstrap_servers
):
    alert_id = risk_alert(notifications, tenant, clock)
    clock.advance(hours=3)
    url = f"/v1/tenants/{tenant}/alerts/{alert_id}/ack"

    first = notifications.client.post(url, headers=bearer(keys["jobcoach"]))
    notifications.client.post(url, headers=bearer(keys["jobcoach"]))

    assert first.get_json()["acknowledged_at"] == (NOW + timedelta(hours=3)).isoformat()
    outbox = notifications.store.outbox.table
    with notifications.db.session() as session:
        raised, acknowledged = session.execute(sa.select(outbox).order_by(outbox.c.id)).all()
    for row in (raised, acknowledged):
        assert (row.topic, row.message_key) == (Topic.ALERT_EVENTS, f"{tenant}/{alert_id}")

    producer = make_producer(bootstrap_servers, "test-notification-relay")
    try:
        assert OutboxRelay(notifications.db, notifications.store.outbox, producer).publish_batch() == 2
    finally:
        producer.close()
    messages = read_all(bootstrap_servers, Topic.ALERT_EVENTS, key_prefix=f"{tenant}/".encode())
    first, event = (decode_event(message.value) for message in messages)
    assert (first.type, first.subject, first.data["alert_type"]) == (
        EventType.ALERT_RAISED,
        alert_id,
        "placement_at_risk",
    )
    assert first.data["created_at"] == NOW
    assert event.type == EventType.ALERT_ACKNOWLEDGED
    assert event.subject == event.data["alert_id"] == alert_id
    assert event.data["jobcoach_id"] == "jc-1"
    assert event.data["alert_type"] == "placement_at_risk"
    assert event.data["created_at"] == NOW
    assert event.data["acknowledged_at"] == NOW + timedelta(hours=3)
    assert json.loads(acknowledged.payload)["id"] == event.id
