"""The README's walkthrough, for real: an employer posts, the jobcoach's inbox and webhook get the alert."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
import requests

from tests.e2e.conftest import bearer
from tests.e2e.payloads import GARDENER, GREEN_VACANCY, NOISY_CALL_CENTRE

pytestmark = pytest.mark.kafka

SECRET = "a-webhook-secret-of-some-length"


def _verify_like_the_readme_says(secret: str, headers: dict, body: bytes) -> bool:
    timestamp = headers["Werkbrug-Timestamp"]
    expected = "v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) < 300
    return fresh and hmac.compare_digest(expected, headers["Werkbrug-Signature"])


def test_employer_posts_a_vacancy_and_the_jobcoach_gets_a_signed_alert(stack, webhook_receiver):
    tenant, keys = stack.new_tenant()
    channels = requests.put(
        f"{stack.url('notification')}/v1/tenants/{tenant}/jobcoaches/{keys['jobcoach_id']}/channels",
        json={"webhook_url": webhook_receiver.url, "webhook_secret": SECRET},
        headers=bearer(keys["jobcoach"]),
        timeout=10,
    )
    assert channels.status_code == 200, channels.text
    assert "webhook_secret" not in channels.json()

    candidate_id = stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])
    # The candidate must reach the matching service before the vacancy does for a proposal to follow.
    deadline = time.monotonic() + 60
    matches_url = f"{stack.url('matching')}/v1/tenants/{tenant}/candidates/{candidate_id}/matches"
    while requests.get(matches_url, headers=bearer(keys["jobcoach"]), timeout=10).status_code == 404:
        assert time.monotonic() < deadline, "the candidate never reached the matching service"
        time.sleep(0.2)
    unrelated_id = stack.post_vacancy(NOISY_CALL_CENTRE, tenant=tenant, key=keys["employer"])
    vacancy_id = stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"])

    alert = stack.wait_for_alert(keys["jobcoach"], lambda a: a["vacancy_id"] == vacancy_id, 60, tenant=tenant)
    assert alert["type"] == "match_proposed"
    assert alert["candidate_id"] == candidate_id
    assert alert["acknowledged_at"] is None
    assert "Medewerker groenonderhoud" in alert["message"]
    # The explanation names the candidate's talents and needs, so it stays in matching, which erases it.
    assert "explanation" not in alert["details"]

    deadline = time.monotonic() + 30
    while not webhook_receiver.received() and time.monotonic() < deadline:
        time.sleep(0.1)
    [delivery] = webhook_receiver.received()
    assert delivery["json"]["id"] == alert["id"]
    assert delivery["headers"]["Werkbrug-Alert-Id"] == alert["id"]
    assert _verify_like_the_readme_says(SECRET, delivery["headers"], delivery["body"])
    assert not _verify_like_the_readme_says("another secret entirely", delivery["headers"], delivery["body"])

    alerts = stack.alerts(keys["jobcoach"], tenant=tenant)
    assert [a["vacancy_id"] for a in alerts] == [vacancy_id], "the call centre lacks the essential quiet workplace"

    ranked = requests.get(matches_url, headers=bearer(keys["jobcoach"]), timeout=10).json()
    assert [item["vacancy_id"] for item in ranked["items"]] == [vacancy_id]
    assert ranked["items"][0]["explanation"]["supports"]["essential_met"] == ["quiet_workplace"]
    assert unrelated_id not in str(ranked)

    acked = requests.post(
        f"{stack.url('notification')}/v1/tenants/{tenant}/alerts/{alert['id']}/ack",
        headers=bearer(keys["jobcoach"]),
        timeout=10,
    )
    assert acked.status_code == 200 and acked.json()["acknowledged_at"]
    assert stack.alerts(keys["jobcoach"], tenant=tenant, unread="true") == []


def test_another_regions_keys_see_nothing_of_this_one(stack):
    tenant, keys = stack.new_tenant()
    other_tenant, other_keys = stack.new_tenant()
    candidate_id = stack.post_candidate(GARDENER, tenant=tenant, key=keys["jobcoach"])
    vacancy_id = stack.post_vacancy(GREEN_VACANCY, tenant=tenant, key=keys["employer"])
    checks = [
        ("candidate", f"/v1/tenants/{tenant}/candidates/{candidate_id}", other_keys["jobcoach"]),
        ("candidate", f"/v1/tenants/{other_tenant}/candidates/{candidate_id}", other_keys["jobcoach"]),
        ("vacancy", f"/v1/tenants/{tenant}/vacancies/{vacancy_id}", other_keys["employer"]),
        ("vacancy", f"/v1/tenants/{other_tenant}/vacancies/{vacancy_id}", other_keys["operator"]),
        ("matching", f"/v1/tenants/{tenant}/candidates/{candidate_id}/matches", other_keys["jobcoach"]),
        ("notification", f"/v1/tenants/{tenant}/alerts", other_keys["jobcoach"]),
    ]
    for service, path, key in checks:
        response = requests.get(f"{stack.url(service)}{path}", headers=bearer(key), timeout=10)
        assert response.status_code == 404, (service, path, response.status_code)
        assert response.headers["Content-Type"] == "application/problem+json"
        assert candidate_id not in response.text and vacancy_id not in response.text


def test_every_service_is_healthy_ready_and_documents_its_api(stack):
    for service in ("candidate", "vacancy", "matching", "notification"):
        base = stack.url(service)
        assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
        ready = requests.get(f"{base}/readyz", timeout=5)
        # Matching is ready once its regions' indexes are built, too.
        own = {"indexes": "ok"} if service == "matching" else {}
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "kafka": "ok", **own}
        worker_ready = requests.get(stack.processes.worker_ready_url(service), timeout=5)
        assert worker_ready.status_code == 200 and worker_ready.json()["waiting_for"] == []
        worker_live = stack.processes.worker_ready_url(service).replace("/readyz", "/livez")
        assert requests.get(worker_live, timeout=5).json() == {"status": "live", "stalled": []}
        spec = requests.get(f"{base}/openapi.json", timeout=5).json()
        assert spec["openapi"].startswith("3.") and any(path.startswith("/v1/tenants/") for path in spec["paths"])
        metrics = requests.get(f"{base}/metrics", timeout=5).text
        assert "werkbrug_http_requests_total" in metrics
