"""A placement from the jobcoach's first request to the operator's escalation, through every real process:
check-ins over HTTP, the risk model in the matching service, Kafka, the notification service's inbox,
webhook and mail, the overdue scheduler and the escalation, each driven by the moved clock."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

import pytest
import requests

from shared.clock import move_clock
from tests.e2e.conftest import bearer
from tests.e2e.helpers import check_in, put_channels, stack_today, start_placement, wait_until

pytestmark = pytest.mark.kafka

SECRET = "a-webhook-secret-of-some-length"
GOOD = {"wellbeing": 4, "hours_worked": 16, "absence_days": 0, "signals": ["positive_feedback"]}
BAD = {"wellbeing": 1, "hours_worked": 4, "absence_days": 3, "signals": ["conflict_with_supervisor", "missed_shift"]}


def test_bad_check_ins_alert_once_by_inbox_webhook_and_mail_then_overdue_then_escalation(
    stack, webhook_receiver, smtp_server
):
    tenant, keys = stack.new_tenant()
    mailbox = f"{keys['jobcoach_id']}@example.org"
    channels = {"webhook_url": webhook_receiver.url, "webhook_secret": SECRET, "email": mailbox}
    assert put_channels(stack, tenant, keys, channels).status_code == 200
    today = stack_today(stack)
    placement = start_placement(stack, tenant, keys, today - timedelta(days=12))
    placement_id = placement["id"]

    check_in(stack, tenant, keys, placement_id, today - timedelta(days=10), GOOD)
    check_in(stack, tenant, keys, placement_id, today - timedelta(days=5), BAD)
    check_in(stack, tenant, keys, placement_id, today, BAD)

    def alerts_of(kind: str) -> list[dict]:
        return [
            alert
            for alert in stack.alerts(keys["jobcoach"], tenant=tenant)
            if alert["type"] == kind and alert["placement_id"] == placement_id
        ]

    [at_risk] = wait_until(lambda: alerts_of("placement_at_risk"), 60, "risk alert", stack)
    wait_until(lambda: webhook_receiver.received() and smtp_server.received(mailbox), 30, "webhook and mail", stack)
    risk = requests.get(
        f"{stack.url('matching')}/v1/tenants/{tenant}/placements/{placement_id}",
        headers=bearer(keys["jobcoach"]),
        timeout=10,
    ).json()
    assert risk["risk"]["score"] >= 0.6 and risk["risk"]["reasons"], risk

    move_clock(stack.clock_file, timedelta(days=15))
    [overdue] = wait_until(lambda: alerts_of("checkin_overdue"), 90, "overdue alert", stack)

    escalations_url = f"{stack.url('notification')}/v1/tenants/{tenant}/escalations"

    def escalations() -> list[dict]:
        response = requests.get(escalations_url, headers=bearer(keys["operator"]), timeout=10)
        assert response.status_code == 200, response.text
        return [e for e in response.json()["items"] if e["placement_id"] == placement_id]

    [escalation] = wait_until(escalations, 60, "escalation of the unacknowledged risk alert", stack)
    assert escalation["type"] == "placement_at_risk_escalated"

    time.sleep(3)  # more scheduler and delivery rounds: nothing may come twice
    assert [a["id"] for a in alerts_of("placement_at_risk")] == [at_risk["id"]]
    assert [a["id"] for a in alerts_of("checkin_overdue")] == [overdue["id"]]
    assert [e["id"] for e in escalations()] == [escalation["id"]]
    # The candidate and vacancy also matched each other: that alert comes by every channel too.
    inbox = stack.alerts(keys["jobcoach"], tenant=tenant)
    assert sorted(a["type"] for a in inbox) == ["checkin_overdue", "match_proposed", "placement_at_risk"]
    webhook_alerts = Counter(request["json"]["id"] for request in webhook_receiver.received())
    assert webhook_alerts == Counter({alert["id"]: 1 for alert in inbox})
    mails = smtp_server.received(mailbox)
    assert len(mails) == len(inbox) == len({mail["message"]["Message-ID"] for mail in mails})
    assert all("conflict" not in mail["body"] and "Tulp" not in mail["body"] for mail in mails), (
        "mail carries no signals and no pseudonym"
    )
