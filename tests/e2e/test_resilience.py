"""Killing things mid-flight loses nothing and doubles nothing; poison messages do not stop a worker."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import requests
from kafka import KafkaProducer

from tests.e2e.conftest import bearer
from tests.e2e.payloads import GARDENER, GREEN_VACANCY
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.kafka

VACANCIES_BEFORE, VACANCIES_DURING, VACANCIES_AFTER = 8, 8, 8


def _wait_until_matching_knows(stack, tenant: str, key: str, candidate_id: str) -> None:
    url = f"{stack.url('matching')}/v1/tenants/{tenant}/candidates/{candidate_id}/matches"
    deadline = time.monotonic() + 60
    while requests.get(url, headers=bearer(key), timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the candidate never reached the matching service"
        time.sleep(0.2)


def _alerts_by_vacancy(stack, tenant: str, key: str) -> Counter:
    # Match proposals only: the inbox also holds other kinds (a candidate out of sight once the shared clock
    # has moved far enough), which are about no vacancy.
    return Counter(
        alert["vacancy_id"] for alert in stack.alerts(key, tenant=tenant) if alert["type"] == "match_proposed"
    )


def test_every_vacancy_accepted_while_the_broker_is_killed_produces_its_alert_exactly_once(stack):
    tenant, keys = stack.new_tenant()
    candidate_id = stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])
    _wait_until_matching_knows(stack, tenant, keys["jobcoach"], candidate_id)

    accepted = [stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"]) for _ in range(VACANCIES_BEFORE)]
    stack.broker.kill()
    try:
        # The web processes never talk to Kafka: posting goes on, into the outbox.
        accepted += [
            stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"]) for _ in range(VACANCIES_DURING)
        ]
        # Still ready: the broker's absence is reported, but the outbox keeps writes working.
        readiness = requests.get(f"{stack.url('vacancy')}/readyz", timeout=5)
        assert readiness.status_code == 200 and readiness.json()["checks"]["kafka"] == "unavailable"
    finally:
        stack.broker.restart(timeout=120)
    accepted += [stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"]) for _ in range(VACANCIES_AFTER)]

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        seen = _alerts_by_vacancy(stack, tenant, keys["jobcoach"])
        if set(seen) >= set(accepted):
            break
        time.sleep(0.5)
    # Give a duplicate, if any were coming, time to show up before judging.
    time.sleep(3)
    seen = _alerts_by_vacancy(stack, tenant, keys["jobcoach"])
    missing = set(accepted) - set(seen)
    assert not missing, f"{len(missing)} of {len(accepted)} accepted vacancies never produced an alert"
    assert set(seen) == set(accepted)
    assert all(count == 1 for count in seen.values()), f"doubled alerts: {[v for v, c in seen.items() if c > 1]}"


def test_a_killed_matching_worker_resumes_where_it_left_off(stack):
    tenant, keys = stack.new_tenant()
    candidate_id = stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])
    _wait_until_matching_knows(stack, tenant, keys["jobcoach"], candidate_id)
    stack.processes.kill("matching-worker")
    try:
        accepted = [stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"]) for _ in range(5)]
    finally:
        stack.processes.restart("matching-worker")
    deadline = time.monotonic() + 90
    while set(_alerts_by_vacancy(stack, tenant, keys["jobcoach"])) != set(accepted):
        assert time.monotonic() < deadline, "alerts did not arrive after the worker came back"
        time.sleep(0.5)
    assert all(count == 1 for count in _alerts_by_vacancy(stack, tenant, keys["jobcoach"]).values())


def test_a_poison_message_is_dead_lettered_and_the_worker_keeps_matching(stack):
    tenant, keys = stack.new_tenant()
    candidate_id = stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])
    _wait_until_matching_knows(stack, tenant, keys["jobcoach"], candidate_id)
    poison_key = f"{tenant}/poison".encode()
    producer = KafkaProducer(bootstrap_servers=stack.broker.bootstrap_servers)
    try:
        producer.send("vacancy-events", key=poison_key, value=b"{not json at all").get(30)
        producer.send("vacancy-events", key=poison_key, value=b'{"specversion":"1.0","type":"x"}').get(30)
    finally:
        producer.close()
    vacancy_id = stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"])
    stack.wait_for_alert(keys["jobcoach"], lambda a: a["vacancy_id"] == vacancy_id, 60, tenant=tenant)

    dead = read_all(stack.broker.bootstrap_servers, "dead-letters", key_prefix=poison_key)
    groups = sorted(dict(message.headers)["dlq.consumer.group"].decode() for message in dead)
    assert groups == ["werkbrug-matching", "werkbrug-matching"]
    assert {dict(m.headers)["dlq.original.topic"] for m in dead} == {b"vacancy-events"}


def test_an_erased_candidate_disappears_from_matching_and_the_inbox(stack):
    tenant, keys = stack.new_tenant()
    candidate_id = stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])
    _wait_until_matching_knows(stack, tenant, keys["jobcoach"], candidate_id)
    vacancy_id = stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"])
    stack.wait_for_alert(keys["jobcoach"], lambda a: a["vacancy_id"] == vacancy_id, 60, tenant=tenant)

    erased = requests.delete(
        f"{stack.url('candidate')}/v1/tenants/{tenant}/candidates/{candidate_id}",
        headers=bearer(keys["jobcoach"]),
        timeout=10,
    )
    assert erased.status_code == 204
    matches_url = f"{stack.url('matching')}/v1/tenants/{tenant}/candidates/{candidate_id}/matches"
    deadline = time.monotonic() + 60
    while requests.get(matches_url, headers=bearer(keys["jobcoach"]), timeout=10).status_code != 404:
        assert time.monotonic() < deadline, "matching still knows the erased candidate"
        time.sleep(0.2)
    while stack.alerts(keys["jobcoach"], tenant=tenant):
        assert time.monotonic() < deadline, "the inbox still holds alerts about the erased candidate"
        time.sleep(0.2)
    employer_view = requests.get(
        f"{stack.url('matching')}/v1/tenants/{tenant}/vacancies/{vacancy_id}/matches",
        headers=bearer(keys["employer"]),
        timeout=10,
    ).json()
    assert employer_view["items"] == []
