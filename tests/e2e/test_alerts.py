"""Placement alerts through the real system: events on the real broker, the inbox over HTTP, a real webhook
receiver and a real SMTP server; retries, the failed status and its dead letter; the clock moved to make an
unacknowledged risk alert (and check-in-overdue alert) escalate to the region's operators.

The placement events are produced here, as the matching service would publish them, so that these tests
pin down the notification service's side of the contract on their own.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta

import pytest
import requests
from kafka import KafkaProducer

from shared.clock import move_clock
from shared.events import EventType, decode_event, encode_event, new_event
from tests.e2e.conftest import bearer
from tests.e2e.helpers import put_channels, wait_until
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.kafka

SECRET = "a-webhook-secret-of-some-length"


def at_risk(tenant: str, jobcoach_id: str, *, placement_id: str | None = None) -> dict:
    return new_event(
        "nl.werkbrug.placement.at_risk",
        tenant=tenant,
        subject=placement_id or str(uuid.uuid4()),
        data={
            "candidate_id": str(uuid.uuid4()),
            "vacancy_id": str(uuid.uuid4()),
            "jobcoach_id": jobcoach_id,
            "score": 0.74,
            "reasons": [
                {"feature": "work_signals", "contribution": 1.2, "signals": ["conflict_with_supervisor"]},
                {"feature": "wellbeing_trend", "contribution": 0.31},
            ],
            "episode": 1,
            "model_version": "default-1",
        },
        source="matching",
    )


def checkin_overdue(tenant: str, jobcoach_id: str) -> dict:
    return new_event(
        "nl.werkbrug.placement.checkin_overdue",
        tenant=tenant,
        subject=str(uuid.uuid4()),
        data={
            "candidate_id": str(uuid.uuid4()),
            "vacancy_id": str(uuid.uuid4()),
            "jobcoach_id": jobcoach_id,
            "last_checkin": "2026-11-02",
            "due_since": "2026-11-16",
            "episode": 1,
        },
        source="matching",
    )


def produce(stack, *documents: dict) -> None:
    producer = KafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    try:
        for document in documents:
            key = f"{document['tenant']}/{document['subject']}".encode()
            producer.send("placement-events", key=key, value=encode_event(document)).get(30)
    finally:
        producer.close()


def delivery(alert: dict, channel: str) -> dict | None:
    return next((d for d in alert["deliveries"] if d["channel"] == channel), None)


def the_alert(stack, tenant: str, keys: dict, placement_id: str) -> dict:
    [alert] = [a for a in stack.alerts(keys["jobcoach"], tenant=tenant) if a["placement_id"] == placement_id]
    return alert


def test_a_risk_event_produced_three_times_reaches_inbox_webhook_and_mailbox_once(stack, webhook_receiver, smtp_server):
    tenant, keys = stack.new_tenant()
    mailbox = f"{keys['jobcoach_id']}@example.org"
    assert put_channels(
        stack, tenant, keys, {"webhook_url": webhook_receiver.url, "webhook_secret": SECRET, "email": mailbox}
    ).ok
    event = at_risk(tenant, keys["jobcoach_id"])

    produce(stack, event, event, event, {**event, "id": str(uuid.uuid4())})

    alert = stack.wait_for_alert(keys["jobcoach"], lambda a: a["placement_id"] == event["subject"], 60, tenant=tenant)
    assert alert["type"] == "placement_at_risk"
    assert alert["candidate_id"] == event["data"]["candidate_id"]
    assert alert["message"].startswith("Een plaatsing loopt risico (risicoscore 74%)")
    wait_until(lambda: webhook_receiver.received() and smtp_server.received(mailbox), 30, "webhook and mail", stack)
    wait_until(
        lambda: all(d["status"] == "delivered" for d in the_alert(stack, tenant, keys, event["subject"])["deliveries"]),
        30,
        "both deliveries marked delivered",
        stack,
    )
    # Give a duplicate, were one coming, time to show up before judging.
    time.sleep(3)

    assert len(stack.alerts(keys["jobcoach"], tenant=tenant)) == 1
    [call] = webhook_receiver.received()
    assert call["json"]["id"] == alert["id"] and call["json"]["type"] == "placement_at_risk"
    assert call["headers"]["Werkbrug-Alert-Id"] == alert["id"]
    [mail] = smtp_server.received(mailbox)
    assert mail["message"]["Subject"] == "Werkbrug: plaatsing loopt risico"
    assert alert["id"] in mail["body"] and event["subject"] in mail["body"]
    assert "conflict_with_supervisor" not in mail["body"] and "wellbeing_trend" not in mail["body"]
    assert sorted(
        (d["channel"], d["status"], d["attempts"])
        for d in the_alert(stack, tenant, keys, event["subject"])["deliveries"]
    ) == [
        ("email", "delivered", 1),
        ("webhook", "delivered", 1),
    ]


def test_a_webhook_receiver_that_is_down_then_up_gets_the_alert_after_retries(stack, webhook_receiver):
    tenant, keys = stack.new_tenant()
    assert put_channels(stack, tenant, keys, {"webhook_url": webhook_receiver.url, "webhook_secret": SECRET}).ok
    webhook_receiver.status = 500
    event = at_risk(tenant, keys["jobcoach_id"])

    produce(stack, event)

    # Judged at the receiver, in this process, so that it comes back well before the fifth attempt would
    # end the delivery as failed, however slowly the API answers on a busy machine.
    wait_until(lambda: webhook_receiver.refused >= 2, 60, "two failed attempts", stack)
    webhook_receiver.status = 200
    wait_until(webhook_receiver.received, 30, "the alert after the receiver came back", stack)
    state = wait_until(
        lambda: (
            (s := delivery(the_alert(stack, tenant, keys, event["subject"]), "webhook"))["status"] == "delivered" and s
        ),
        30,
        "the delivery marked delivered",
        stack,
    )

    assert state["attempts"] >= 3 and state["last_error"] is None
    [call] = webhook_receiver.received()
    assert call["json"]["placement_id"] == event["subject"]


def test_a_webhook_receiver_that_never_comes_up_ends_failed_with_a_dead_letter(stack, webhook_receiver):
    tenant, keys = stack.new_tenant()
    assert put_channels(stack, tenant, keys, {"webhook_url": webhook_receiver.url, "webhook_secret": SECRET}).ok
    webhook_receiver.status = 500
    event = at_risk(tenant, keys["jobcoach_id"])

    produce(stack, event)

    def failed():
        alerts = stack.alerts(keys["jobcoach"], tenant=tenant)
        state = delivery(alerts[0], "webhook") if alerts else None
        return (alerts[0], state) if state and state["status"] == "failed" else None

    alert, state = wait_until(failed, 60, "the failed status", stack)
    assert (state["attempts"], state["last_error"]) == (5, "HTTP 5xx")
    letters = wait_until(
        lambda: read_all(stack.broker.bootstrap_servers, "dead-letters", key_prefix=f"{tenant}/".encode(), idle_s=0.5),
        30,
        "the dead letter",
        stack,
    )
    [letter] = letters
    headers = {name: value.decode() for name, value in letter.headers}
    assert headers["dlq.reason"] == "delivery_failed"
    assert headers["dlq.channel"] == "webhook"
    assert headers["dlq.alert.id"] == alert["id"]
    assert headers["dlq.tenant"] == tenant
    assert headers["dlq.exception.message"] == "HTTP 5xx"
    assert json.loads(letter.value)["id"] == alert["id"]
    assert webhook_receiver.received() == []


def test_webhook_urls_that_are_not_http_or_carry_credentials_are_refused_and_change_nothing(stack):
    tenant, keys = stack.new_tenant()
    good = {"webhook_url": "https://hooks.example.org/werkbrug", "webhook_secret": SECRET, "email": None}
    assert put_channels(stack, tenant, keys, good).ok
    url = f"{stack.url('notification')}/v1/tenants/{tenant}/jobcoaches/{keys['jobcoach_id']}/channels"
    before = requests.get(url, headers=bearer(keys["jobcoach"]), timeout=10).json()

    for bad in ("ftp://hooks.example.org/x", "http://user:pass@hooks.example.org/x", "https://token@hooks.example.org"):
        response = put_channels(stack, tenant, keys, {"webhook_url": bad, "webhook_secret": SECRET})
        assert response.status_code == 422
        assert response.headers["Content-Type"] == "application/problem+json"
        assert "webhook_url" in response.json()["errors"]
        assert SECRET not in response.text

    assert requests.get(url, headers=bearer(keys["jobcoach"]), timeout=10).json() == before


def test_a_moved_clock_escalates_an_unacknowledged_risk_alert_to_the_operators_once(stack):
    tenant, keys = stack.new_tenant()
    ignored, acknowledged, overdue = (
        at_risk(tenant, keys["jobcoach_id"]),
        at_risk(tenant, keys["jobcoach_id"]),
        checkin_overdue(tenant, keys["jobcoach_id"]),
    )
    produce(stack, ignored, acknowledged, overdue)
    wait_until(lambda: len(stack.alerts(keys["jobcoach"], tenant=tenant)) == 3, 60, "three alerts", stack)
    assert the_alert(stack, tenant, keys, overdue["subject"])["type"] == "checkin_overdue"
    acked_id = the_alert(stack, tenant, keys, acknowledged["subject"])["id"]
    ack = requests.post(
        f"{stack.url('notification')}/v1/tenants/{tenant}/alerts/{acked_id}/ack",
        headers=bearer(keys["jobcoach"]),
        timeout=10,
    )
    assert ack.status_code == 200
    escalations_url = f"{stack.url('notification')}/v1/tenants/{tenant}/escalations"

    def escalations() -> list[dict]:
        response = requests.get(escalations_url, headers=bearer(keys["operator"]), timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["items"]

    time.sleep(1)
    assert escalations() == [], "not before the window has passed"

    move_clock(stack.clock_file, timedelta(hours=49))

    # The unacknowledged check-in-overdue alert escalates as well, in its own type.
    found = wait_until(lambda: len(escalations()) == 2 and escalations(), 30, "the escalations", stack)
    time.sleep(2)  # several more scheduler rounds
    assert sorted(e["id"] for e in escalations()) == sorted(e["id"] for e in found)
    [escalation] = [e for e in found if e["type"] == "placement_at_risk_escalated"]
    [overdue_escalation] = [e for e in found if e["type"] == "checkin_overdue_escalated"]
    assert overdue_escalation["placement_id"] == overdue["subject"]
    assert escalation["placement_id"] == ignored["subject"]
    assert escalation["details"]["jobcoach_id"] == keys["jobcoach_id"]
    assert "48 uur" in escalation["message"]
    inbox = stack.alerts(keys["jobcoach"], tenant=tenant)
    assert len(inbox) == 3, "the jobcoach's inbox holds no escalations"
    assert the_alert(stack, tenant, keys, ignored["subject"])["escalated_at"] is not None
    assert the_alert(stack, tenant, keys, acknowledged["subject"])["escalated_at"] is None

    def acknowledgements() -> list:
        told = read_all(stack.broker.bootstrap_servers, "alert-events", key_prefix=f"{tenant}/".encode(), idle_s=0.5)
        # alert-events also carries every alert raised; only the acknowledgement is looked for here.
        return [
            event for event in map(decode_event, (m.value for m in told)) if event.type == EventType.ALERT_ACKNOWLEDGED
        ]

    told = wait_until(acknowledgements, 30, "the acknowledgement on alert-events", stack)
    assert [event.subject for event in told] == [acked_id]
