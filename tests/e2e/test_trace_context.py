"""On the running system and the real broker: the trace of an employer's POST reaches the alert it leads
to, and every event on the way is labelled by the CloudEvents Kafka binding."""

from __future__ import annotations

import json

import pytest
import requests

from shared import tracing
from tests.e2e.conftest import bearer
from tests.e2e.helpers import wait_until
from tests.e2e.payloads import GARDENER, GREEN_VACANCY
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.kafka

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"


def test_the_alert_about_a_posted_vacancy_carries_the_posts_trace(stack):
    tenant, keys = stack.new_tenant()
    gardener = stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])
    matches = f"{stack.url('matching')}/v1/tenants/{tenant}/candidates/{gardener}/matches"
    wait_until(
        lambda: requests.get(matches, headers=bearer(keys["jobcoach"]), timeout=10).status_code == 200,
        60,
        "the candidate in the matching service",
        stack,
    )

    posted = requests.post(
        f"{stack.url('vacancy')}/v1/tenants/{tenant}/vacancies",
        json=GREEN_VACANCY,
        headers={**bearer(keys["employer"]), "traceparent": f"00-{TRACE_ID}-b7ad6b7169203331-01"},
        timeout=10,
    )
    assert posted.status_code == 201, posted.text
    vacancy_id = posted.json()["id"]
    alert = stack.wait_for_alert(keys["jobcoach"], lambda a: a["vacancy_id"] == vacancy_id, 60, tenant=tenant)

    def alert_raised():
        told = read_all(stack.broker.bootstrap_servers, "alert-events", key_prefix=f"{tenant}/".encode(), idle_s=0.5)
        return [m for m in told if json.loads(m.value)["subject"] == alert["id"]]

    [message] = wait_until(alert_raised, 30, "the alert on alert-events", stack)
    document = json.loads(message.value)
    assert document["type"] == "nl.werkbrug.alert.raised"
    assert tracing.parse(document["traceparent"]).trace_id == TRACE_ID
    assert dict(message.headers)["content-type"] == b"application/cloudevents+json"
    for topic in ("vacancy-events", "match-events"):
        for on_the_way in read_all(stack.broker.bootstrap_servers, topic, key_prefix=f"{tenant}/".encode()):
            assert dict(on_the_way.headers)["content-type"] == b"application/cloudevents+json"
            assert tracing.parse(json.loads(on_the_way.value)["traceparent"]).trace_id == TRACE_ID
