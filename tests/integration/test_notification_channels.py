"""The daily-digest choice on a jobcoach's channels, and the operators' paths in the OpenAPI document."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.integration.conftest import bearer

SECRET = "s3cr3t-" + "k" * 20


@pytest.fixture
def notifications(service, keys):
    return service("notification")


def channels_url(tenant: str) -> str:
    return f"/v1/tenants/{tenant}/jobcoaches/jc-1/channels"


def all_channels(notifications) -> list[tuple]:
    with notifications.db.session() as session:
        return [tuple(row) for row in session.execute(sa.select(notifications.store.channels))]


def test_a_jobcoach_chooses_the_daily_digest_and_reads_the_choice_back(notifications, keys, tenant):
    auth = bearer(keys["jobcoach"])

    put = notifications.client.put(
        channels_url(tenant), json={"email": "jc1@example.org", "digest": True}, headers=auth
    )
    got = notifications.client.get(channels_url(tenant), headers=auth)

    assert put.status_code == got.status_code == 200
    assert put.get_json()["digest"] is got.get_json()["digest"] is True
    plain = notifications.client.put(channels_url(tenant), json={"email": "jc1@example.org"}, headers=auth)
    assert plain.get_json()["digest"] is False, "channels are replaced as a whole; the digest is opt-in"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"digest": True}, id="digest-without-email"),
        pytest.param(
            {"webhook_url": "https://hooks.example.org/a", "webhook_secret": SECRET, "digest": True}, id="webhook-only"
        ),
        pytest.param({"email": "jc1@example.org", "digest": None}, id="digest-null"),
        pytest.param({"email": "jc1@example.org", "digest": "ja"}, id="digest-not-boolean"),
    ],
)
def test_a_digest_without_an_address_or_not_a_boolean_is_422_and_changes_nothing(notifications, keys, tenant, body):
    auth = bearer(keys["jobcoach"])
    notifications.client.put(channels_url(tenant), json={"email": "jc1@example.org"}, headers=auth)
    before = all_channels(notifications)

    response = notifications.client.put(channels_url(tenant), json=body, headers=auth)

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert "digest" in response.get_json()["errors"]
    assert all_channels(notifications) == before


def test_openapi_documents_the_operators_escalations_and_the_deliveries(notifications):
    spec = notifications.client.get("/openapi.json").get_json()

    assert "get" in spec["paths"]["/v1/tenants/{tenant}/escalations"]
    assert "post" in spec["paths"]["/v1/tenants/{tenant}/escalations/{alert_id}/ack"]
    schemas = spec["components"]["schemas"]
    assert {"channel", "status", "attempts", "last_error"} <= set(schemas["Delivery"]["properties"])
    assert "deliveries" in schemas["Alert"]["properties"]
    assert "escalated_at" in schemas["Alert"]["properties"]
    assert "digest" in schemas["Channels"]["properties"]
