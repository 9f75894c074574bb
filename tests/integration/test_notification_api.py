"""The notification API as jobcoaches use it: their alert inbox, acknowledgements, and their channels.

Alerts are created the way the worker creates them, by the service's event handlers fed decoded events.
The webhook secret is write-only: every answer in this file is checked for it.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from services.notification import handlers
from shared.events import EventType, decode_event, encode_event, new_event
from tests.integration.conftest import bearer
from tests.integration.helpers import assert_problem, snapshot

PROBLEM_JSON = "application/problem+json"
SECRET = "s3cr3t-" + "k" * 20


# --------------------------------------------------------------------------------------------------------
# Helpers


def decoded(type_name: str, *, tenant: str, subject: str, data: dict):
    return decode_event(encode_event(new_event(type_name, tenant=tenant, subject=subject, data=data, source="test")))


def match_proposed(tenant: str, jobcoach_id: str, *, title: str = "Hovenier", score: float = 0.8):
    candidate_id = str(uuid.uuid4())
    data = {
        "candidate_id": candidate_id,
        "vacancy_id": str(uuid.uuid4()),
        "jobcoach_id": jobcoach_id,
        "vacancy_title": title,
        "score": score,
        "explanation": {"talents_matched": [], "components": {"talent": score}},
        "ranking_version": "tfidf-1",
    }
    return decoded(EventType.MATCH_PROPOSED, tenant=tenant, subject=candidate_id, data=data)


def at_risk(tenant: str, jobcoach_id: str):
    candidate_id = str(uuid.uuid4())
    data = {
        "candidate_id": candidate_id,
        "vacancy_id": str(uuid.uuid4()),
        "jobcoach_id": jobcoach_id,
        "score": 0.9,
        "reasons": [{"signal": "absence", "weight": 0.6}],
        "episode": 1,
        "model_version": "risk-1",
    }
    return decoded(EventType.PLACEMENT_AT_RISK, tenant=tenant, subject=candidate_id, data=data)


def alerts_url(tenant: str) -> str:
    return f"/v1/tenants/{tenant}/alerts"


def channels_url(tenant: str, jobcoach_id: str = "jc-1") -> str:
    return f"/v1/tenants/{tenant}/jobcoaches/{jobcoach_id}/channels"


@pytest.fixture
def notifications(service, keys):
    return service("notification")


@pytest.fixture
def other_tenant_keys(registry, tenant) -> dict[str, str]:
    """Keys of another region whose subjects carry the same ids as this region's."""
    other = f"{tenant}-b"
    registry.create_tenant(other)
    return {"jobcoach": registry.create_key(other, "jobcoach", "jc-1")}


@pytest.fixture
def inbox(notifications, tenant) -> dict[str, str]:
    """jc-1: two match alerts and one placement alert; jc-2: one match alert. Returns alert ids by name."""
    matches = {
        "Hovenier": match_proposed(tenant, "jc-1", title="Hovenier"),
        "Inpakker": match_proposed(tenant, "jc-1", title="Inpakker"),
        "Kok": match_proposed(tenant, "jc-2", title="Kok"),
    }
    risk = at_risk(tenant, "jc-1")
    with notifications.db.session() as session:
        for event in matches.values():
            handlers.on_match_proposed(session, event)
        risk_id = handlers.create_alert(
            session,
            risk,
            alert_type="placement_at_risk",
            subject=risk.data["candidate_id"],
            episode=1,
            message="Een plaatsing loopt risico.",
            details={"score": risk.data["score"]},
        )
    alerts = notifications.store.alerts
    with notifications.db.session() as session:
        alert_of = dict(session.execute(sa.select(alerts.c.candidate_id, alerts.c.id)).all())
    return {"risk": risk_id} | {name: alert_of[event.data["candidate_id"]] for name, event in matches.items()}


# --------------------------------------------------------------------------------------------------------
# The inbox


def test_the_inbox_shows_only_the_callers_alerts_newest_first(notifications, keys, tenant, inbox):
    response = notifications.client.get(alerts_url(tenant), headers=bearer(keys["jobcoach"]))

    assert response.status_code == 200
    page = response.get_json()
    assert page["total"] == 3
    assert {item["id"] for item in page["items"]} == {inbox["Hovenier"], inbox["Inpakker"], inbox["risk"]}
    created = [item["created_at"] for item in page["items"]]
    assert created == sorted(created, reverse=True)
    match = next(item for item in page["items"] if item["id"] == inbox["Hovenier"])
    assert match["type"] == "match_proposed"
    assert match["acknowledged_at"] is None
    assert "Hovenier" in match["message"]
    assert match["details"]["score"] == 0.8
    assert match["candidate_id"] and match["vacancy_id"]

    theirs = notifications.client.get(alerts_url(tenant), headers=bearer(keys["jobcoach2"])).get_json()
    assert [item["id"] for item in theirs["items"]] == [inbox["Kok"]]


def test_a_repeated_event_makes_no_second_alert(notifications, keys, tenant):
    event = match_proposed(tenant, "jc-1")
    for _ in range(2):
        with notifications.db.session() as session:
            handlers.on_match_proposed(session, event)

    page = notifications.client.get(alerts_url(tenant), headers=bearer(keys["jobcoach"])).get_json()

    assert page["total"] == 1


def test_the_inbox_filters_by_type(notifications, keys, tenant, inbox):
    auth = bearer(keys["jobcoach"])

    risks = notifications.client.get(alerts_url(tenant), query_string={"type": "placement_at_risk"}, headers=auth)
    matches = notifications.client.get(alerts_url(tenant), query_string={"type": "match_proposed"}, headers=auth)
    overdue = notifications.client.get(alerts_url(tenant), query_string={"type": "checkin_overdue"}, headers=auth)

    assert [item["id"] for item in risks.get_json()["items"]] == [inbox["risk"]]
    assert {item["id"] for item in matches.get_json()["items"]} == {inbox["Hovenier"], inbox["Inpakker"]}
    assert overdue.get_json() == {"items": [], "page": 1, "page_size": 20, "total": 0}


def test_the_inbox_filters_by_read_state(notifications, keys, tenant, inbox):
    auth = bearer(keys["jobcoach"])
    notifications.client.post(f"{alerts_url(tenant)}/{inbox['Hovenier']}/ack", headers=auth)

    unread = notifications.client.get(alerts_url(tenant), query_string={"unread": "true"}, headers=auth).get_json()
    read = notifications.client.get(alerts_url(tenant), query_string={"unread": "false"}, headers=auth).get_json()
    combined = notifications.client.get(
        alerts_url(tenant), query_string={"unread": "true", "type": "match_proposed"}, headers=auth
    ).get_json()

    assert {item["id"] for item in unread["items"]} == {inbox["Inpakker"], inbox["risk"]}
    assert [item["id"] for item in read["items"]] == [inbox["Hovenier"]]
    assert read["items"][0]["acknowledged_at"] is not None
    assert [item["id"] for item in combined["items"]] == [inbox["Inpakker"]]


def test_the_inbox_pages(notifications, keys, tenant, inbox):
    auth = bearer(keys["jobcoach"])
    seen = []
    for page in (1, 2):
        answer = notifications.client.get(
            alerts_url(tenant), query_string={"page": page, "page_size": 2}, headers=auth
        ).get_json()
        assert answer["total"] == 3
        seen.extend(item["id"] for item in answer["items"])

    assert sorted(seen) == sorted([inbox["Hovenier"], inbox["Inpakker"], inbox["risk"]])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param({"page_size": 0}, "page_size", id="page-size-0"),
        pytest.param({"page_size": 101}, "page_size", id="page-size-101"),
        pytest.param({"page": -1}, "page", id="negative-page"),
        pytest.param({"unread": "misschien"}, "unread", id="unread-not-boolean"),
        pytest.param({"type": "vacancy_posted"}, "type", id="unknown-type"),
    ],
)
def test_bad_inbox_queries_are_422_naming_the_parameter(notifications, keys, tenant, query, field):
    response = notifications.client.get(alerts_url(tenant), query_string=query, headers=bearer(keys["jobcoach"]))

    assert field in assert_problem(response, 422)["errors"]


@pytest.mark.parametrize(
    ("caller", "status"),
    [("no-key", 401), ("garbage-key", 401), ("other-tenant-jobcoach", 404), ("employer", 403), ("operator", 403)],
)
def test_the_inbox_refuses_callers_who_may_not(notifications, keys, other_tenant_keys, tenant, inbox, caller, status):
    headers = {
        "no-key": {},
        "garbage-key": bearer("wbk_" + "y" * 43),
        "other-tenant-jobcoach": bearer(other_tenant_keys["jobcoach"]),
        "employer": bearer(keys["employer"]),
        "operator": bearer(keys["operator"]),
    }[caller]

    response = notifications.client.get(alerts_url(tenant), headers=headers)

    assert_problem(response, status)


def test_another_regions_jobcoach_with_the_same_id_sees_an_empty_inbox(notifications, other_tenant_keys, tenant, inbox):
    response = notifications.client.get(alerts_url(f"{tenant}-b"), headers=bearer(other_tenant_keys["jobcoach"]))

    assert response.status_code == 200
    assert response.get_json()["items"] == []


# --------------------------------------------------------------------------------------------------------
# Acknowledging


def test_acknowledging_is_idempotent_and_keeps_the_first_time(notifications, keys, tenant, inbox):
    url, auth = f"{alerts_url(tenant)}/{inbox['risk']}/ack", bearer(keys["jobcoach"])

    first = notifications.client.post(url, headers=auth)
    after_first = snapshot(notifications)
    second = notifications.client.post(url, headers=auth)

    assert first.status_code == second.status_code == 200
    assert first.get_json()["id"] == inbox["risk"]
    assert first.get_json()["acknowledged_at"] is not None
    assert second.get_json() == first.get_json()
    after_second = snapshot(notifications)
    # Only the audit log grows: the second acknowledgement is one more access to the candidate's alert.
    assert len(after_second.pop("audit_log")) == len(after_first.pop("audit_log")) + 1
    assert after_second == after_first


@pytest.mark.parametrize(
    ("caller", "alert", "status"),
    [
        ("other-jobcoach", "Hovenier", 404),
        ("other-tenant-jobcoach", "Hovenier", 404),
        ("employer", "Hovenier", 403),
        ("operator", "Hovenier", 403),
        ("no-key", "Hovenier", 401),
        ("jobcoach", "unknown", 404),
        ("jobcoach", "Kok", 404),
    ],
)
def test_an_alert_that_is_not_the_callers_cannot_be_acknowledged(
    notifications, keys, other_tenant_keys, tenant, inbox, caller, alert, status
):
    headers = {
        "jobcoach": bearer(keys["jobcoach"]),
        "other-jobcoach": bearer(keys["jobcoach2"]),
        "other-tenant-jobcoach": bearer(other_tenant_keys["jobcoach"]),
        "employer": bearer(keys["employer"]),
        "operator": bearer(keys["operator"]),
        "no-key": {},
    }[caller]
    alert_id = inbox.get(alert, str(uuid.uuid4()))
    before = snapshot(notifications)

    response = notifications.client.post(f"{alerts_url(tenant)}/{alert_id}/ack", headers=headers)

    assert_problem(response, status)
    assert snapshot(notifications) == before


# --------------------------------------------------------------------------------------------------------
# Channels


def test_channels_are_404_until_set(notifications, keys, tenant):
    assert_problem(notifications.client.get(channels_url(tenant), headers=bearer(keys["jobcoach"])), 404)


def test_setting_channels_answers_them_without_the_secret(notifications, keys, tenant):
    sent = {"webhook_url": "https://hooks.example.org/werkbrug", "webhook_secret": SECRET, "email": "jc1@example.org"}

    put = notifications.client.put(channels_url(tenant), json=sent, headers=bearer(keys["jobcoach"]))
    got = notifications.client.get(channels_url(tenant), headers=bearer(keys["jobcoach"]))

    assert put.status_code == got.status_code == 200
    for response in (put, got):
        body = response.get_json()
        assert body["webhook_url"] == sent["webhook_url"]
        assert body["email"] == sent["email"]
        assert body["webhook_secret_set"] is True
        assert "webhook_secret" not in body
        assert SECRET not in response.get_data(as_text=True)
    with notifications.db.session() as session:
        stored = notifications.store.get_channels(session, tenant, "jc-1")
    assert stored["webhook_secret"] == SECRET


def test_putting_channels_replaces_them_as_a_whole(notifications, keys, tenant):
    auth = bearer(keys["jobcoach"])
    notifications.client.put(
        channels_url(tenant), json={"webhook_url": "http://hooks.example.org/a", "webhook_secret": SECRET}, headers=auth
    )

    response = notifications.client.put(channels_url(tenant), json={"email": "jc1@example.org"}, headers=auth)

    assert response.status_code == 200
    assert response.get_json()["webhook_url"] is None
    assert response.get_json()["webhook_secret_set"] is False
    assert response.get_json()["email"] == "jc1@example.org"
    with notifications.db.session() as session:
        assert len(session.execute(sa.select(notifications.store.channels)).all()) == 1


BAD_CHANNELS = [
    pytest.param({"webhook_url": "ftp://hooks.example.org/x", "webhook_secret": SECRET}, "webhook_url", id="ftp"),
    pytest.param({"webhook_url": "javascript:alert(1)", "webhook_secret": SECRET}, "webhook_url", id="javascript"),
    pytest.param(
        {"webhook_url": "http://user:pass@hooks.example.org/x", "webhook_secret": SECRET},
        "webhook_url",
        id="user-and-password",
    ),
    pytest.param(
        {"webhook_url": "https://token@hooks.example.org/x", "webhook_secret": SECRET}, "webhook_url", id="user-only"
    ),
    pytest.param({"webhook_url": "https:///path", "webhook_secret": SECRET}, "webhook_url", id="no-host"),
    pytest.param({"webhook_url": "http://[::1", "webhook_secret": SECRET}, "webhook_url", id="not-a-url"),
    pytest.param({"webhook_url": 42, "webhook_secret": SECRET}, "webhook_url", id="url-not-text"),
    pytest.param(
        {"webhook_url": "https://hooks.example.org/" + "x" * 2000, "webhook_secret": SECRET},
        "webhook_url",
        id="huge-url",
    ),
    pytest.param({"webhook_url": "https://hooks.example.org/x"}, "webhook_secret", id="missing-secret"),
    pytest.param(
        {"webhook_url": "https://hooks.example.org/x", "webhook_secret": None}, "webhook_secret", id="null-secret"
    ),
    pytest.param(
        {"webhook_url": "https://hooks.example.org/x", "webhook_secret": "kort-geheim"}, "webhook_secret", id="short"
    ),
    pytest.param(
        {"webhook_url": "https://hooks.example.org/x", "webhook_secret": SECRET + "x" * 200},
        "webhook_secret",
        id="huge-secret",
    ),
    pytest.param({"email": "geen-adres"}, "email", id="bad-email"),
    pytest.param({"email": "jc1@"}, "email", id="email-without-domain"),
    pytest.param({"email": ["jc1@example.org"]}, "email", id="email-a-list"),
    pytest.param({"webhook_secret_set": True, "webhook_secret": SECRET}, "webhook_secret_set", id="answer-field"),
    pytest.param({"jobcoach_id": "jc-2", "webhook_secret": SECRET}, "jobcoach_id", id="mass-assign-jobcoach"),
    pytest.param([{"email": "jc1@example.org", "webhook_secret": SECRET}], "_schema", id="list-instead-of-object"),
]


@pytest.mark.parametrize(("body", "field"), BAD_CHANNELS)
def test_bad_channels_are_422_naming_the_field_change_nothing_and_never_echo_the_secret(
    notifications, keys, tenant, body, field
):
    auth = bearer(keys["jobcoach"])
    notifications.client.put(channels_url(tenant), json={"email": "jc1@example.org"}, headers=auth)
    before = snapshot(notifications)

    response = notifications.client.put(channels_url(tenant), json=body, headers=auth)

    assert field in assert_problem(response, 422)["errors"]
    assert SECRET not in response.get_data(as_text=True)
    assert snapshot(notifications) == before


def test_malformed_channels_are_400_and_change_nothing(notifications, keys, tenant):
    before = snapshot(notifications)

    response = notifications.client.put(
        channels_url(tenant),
        data='{"webhook_secret": "' + SECRET + '"',
        content_type="application/json",
        headers=bearer(keys["jobcoach"]),
    )

    assert_problem(response, 400)
    assert SECRET not in response.get_data(as_text=True)
    assert snapshot(notifications) == before


@pytest.mark.parametrize(
    ("caller", "path_jobcoach", "status"),
    [
        ("jobcoach", "jc-2", 404),
        ("other-tenant-jobcoach", "jc-1", 404),
        ("employer", "jc-1", 403),
        ("operator", "jc-1", 403),
        ("no-key", "jc-1", 401),
        ("garbage-key", "jc-1", 401),
    ],
)
@pytest.mark.parametrize("method", ["get", "put"])
def test_only_that_jobcoach_may_read_or_set_their_channels(
    notifications, keys, other_tenant_keys, tenant, caller, path_jobcoach, status, method
):
    for owner in ("jobcoach", "jobcoach2"):
        subject = "jc-1" if owner == "jobcoach" else "jc-2"
        notifications.client.put(
            channels_url(tenant, subject),
            json={"webhook_url": f"https://hooks.example.org/{subject}", "webhook_secret": SECRET},
            headers=bearer(keys[owner]),
        )
    headers = {
        "jobcoach": bearer(keys["jobcoach"]),
        "other-tenant-jobcoach": bearer(other_tenant_keys["jobcoach"]),
        "employer": bearer(keys["employer"]),
        "operator": bearer(keys["operator"]),
        "no-key": {},
        "garbage-key": bearer("wbk_" + "z" * 43),
    }[caller]
    before = snapshot(notifications)
    kwargs = (
        {"json": {"webhook_url": "https://evil.example.org/", "webhook_secret": "x" * 16}} if method == "put" else {}
    )

    response = getattr(notifications.client, method)(channels_url(tenant, path_jobcoach), headers=headers, **kwargs)

    assert_problem(response, status)
    assert "hooks.example.org" not in response.get_data(as_text=True)
    assert snapshot(notifications) == before


def test_the_secret_appears_in_no_answer_at_all(notifications, keys, tenant, inbox):
    auth = bearer(keys["jobcoach"])
    url = channels_url(tenant)
    answers = [
        notifications.client.put(
            url, json={"webhook_url": "https://hooks.example.org/a", "webhook_secret": SECRET}, headers=auth
        ),
        notifications.client.get(url, headers=auth),
        notifications.client.put(
            url, json={"webhook_url": "ftp://hooks.example.org/a", "webhook_secret": SECRET}, headers=auth
        ),
        notifications.client.get(alerts_url(tenant), headers=auth),
        notifications.client.post(f"{alerts_url(tenant)}/{inbox['risk']}/ack", headers=auth),
        notifications.client.get("/openapi.json"),
    ]

    for answer in answers:
        assert SECRET not in answer.get_data(as_text=True)
    answered = answers[-1].get_json()["components"]["schemas"]["Channels"]["properties"]
    assert "webhook_secret" not in answered
    assert "webhook_secret_set" in answered


# --------------------------------------------------------------------------------------------------------
# Service endpoints


def test_openapi_lists_the_notification_paths_and_healthz_is_ok(notifications):
    spec = notifications.client.get("/openapi.json")
    health = notifications.client.get("/healthz")

    assert spec.status_code == 200
    paths = spec.get_json()["paths"]
    assert "get" in paths["/v1/tenants/{tenant}/alerts"]
    assert "post" in paths["/v1/tenants/{tenant}/alerts/{alert_id}/ack"]
    assert {"get", "put"} <= set(paths["/v1/tenants/{tenant}/jobcoaches/{jobcoach_id}/channels"])
    assert health.status_code == 200
    assert health.get_json() == {"status": "ok", "service": "notification"}
