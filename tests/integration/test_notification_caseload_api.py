"""Round 2's alerts over HTTP, role by role: the jobcoach's inbox and acknowledgement of out-of-sight and
employer-interest alerts (before and after a handover), the operators' inbox holding caseloads over the limit,
and a jobcoach's work e-mail told when their channels are set. Every path is tried by the jobcoach it belongs
to, another jobcoach, an employer, an operator, a council, the same jobcoach id in another region and no key.

Alerts are made the way the worker makes them, by the handlers fed decoded events.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.notification.handlers import Timing
from services.notification.worker import handler_table
from shared.clock import FakeClock
from shared.events import EventType, decode_event, encode_event
from tests.integration.conftest import bearer
from tests.integration.helpers import assert_problem, outbox_rows, snapshot
from tests.integration.test_notification_caseload_events import (
    candidate_profile,
    introduction,
    new_id,
    out_of_sight,
    over_limit,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
CALLERS = ("own", "other", "employer", "operator", "council", "foreign-jobcoach", "foreign-operator", "no-key")


@dataclass
class People:
    tenant: str
    own: str
    other: str
    keys: dict[str, str]

    def headers(self, caller: str) -> dict[str, str]:
        return bearer(self.keys[caller]) if caller in self.keys else {}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def notifications(service, keys, clock):
    built = service("notification")
    built.context.clock = clock
    return built


@pytest.fixture
def people(registry, keys, tenant) -> People:
    """Two jobcoaches with random ids, the region's other roles, and the own jobcoach's id in another region."""
    own, other = f"jc-{uuid.uuid4().hex[:10]}", f"jc-{uuid.uuid4().hex[:10]}"
    foreign = f"{tenant}-x"
    registry.create_tenant(foreign)
    return People(
        tenant,
        own,
        other,
        {
            "own": registry.create_key(tenant, "jobcoach", own),
            "other": registry.create_key(tenant, "jobcoach", other),
            "employer": keys["employer"],
            "operator": keys["operator"],
            "council": registry.create_key(tenant, "council", None),
            "foreign-jobcoach": registry.create_key(foreign, "jobcoach", own),
            "foreign-operator": registry.create_key(foreign, "operator", None),
        },
    )


def handle(notifications, clock: FakeClock, *documents: dict) -> None:
    """Each document through everything the worker's handler table runs on it, one transaction each."""
    handlers_by_type = handler_table(Timing(clock=clock))
    for document in documents:
        event = decode_event(encode_event(document))
        with notifications.db.session() as session:
            for handler in handlers_by_type[event.type]:
                handler(session, event)


def alert_of(notifications, tenant: str, alert_type: str) -> dict:
    alerts = notifications.store.alerts
    with notifications.db.session() as session:
        [row] = session.execute(sa.select(alerts).where(alerts.c.tenant == tenant, alerts.c.type == alert_type)).all()
    return row._asdict()


def told(notifications, event_type: str) -> list:
    events = (decode_event(row.payload.encode()) for row in outbox_rows(notifications) if row.payload)
    return [event for event in events if event.type == event_type]


def jobcoach_alerts(people: People, tenant: str, candidate_id: str) -> list[dict]:
    return [
        out_of_sight(tenant, candidate_id, people.own),
        introduction(tenant, candidate_id, people.own, title="Medewerker groenonderhoud"),
    ]


# --------------------------------------------------------------------------------------------------------
# The jobcoach's inbox


@pytest.mark.parametrize(
    ("caller", "status", "sees"),
    [
        ("own", 200, True),
        ("other", 200, False),
        ("employer", 403, False),
        ("operator", 403, False),
        ("council", 403, False),
        ("foreign-jobcoach", 404, False),
        ("foreign-operator", 404, False),
        ("no-key", 401, False),
    ],
)
def test_out_of_sight_and_interest_alerts_are_in_their_jobcoachs_inbox_only(
    notifications, people, clock, tenant, caller, status, sees
):
    candidate_id = new_id()
    handle(notifications, clock, *jobcoach_alerts(people, tenant, candidate_id))

    response = notifications.client.get(f"/v1/tenants/{tenant}/alerts", headers=people.headers(caller))

    assert response.status_code == status, response.get_data(as_text=True)
    assert (candidate_id in response.get_data(as_text=True)) is sees
    if status != 200:
        assert_problem(response, status)
    elif sees:
        items = {item["type"]: item for item in response.get_json()["items"]}
        assert set(items) == {"out_of_sight", "employer_interest"}
        interest = items["employer_interest"]
        assert interest["details"]["introduction_id"] == alert_of(notifications, tenant, "employer_interest")["subject"]
        assert interest["vacancy_id"] and interest["candidate_id"] == candidate_id
        assert items["out_of_sight"]["message"].startswith("Al 30 dagen geen contact met deze kandidaat")
        only = notifications.client.get(
            f"/v1/tenants/{tenant}/alerts", query_string={"type": "out_of_sight"}, headers=people.headers(caller)
        ).get_json()
        assert [item["type"] for item in only["items"]] == ["out_of_sight"]


@pytest.mark.parametrize("alert_type", ["employer_interest", "out_of_sight"])
@pytest.mark.parametrize(
    ("caller", "status"),
    [
        ("own", 200),
        ("other", 404),
        ("employer", 403),
        ("operator", 403),
        ("council", 403),
        ("foreign-jobcoach", 404),
        ("foreign-operator", 404),
        ("no-key", 401),
    ],
)
def test_only_their_jobcoach_acknowledges_and_every_acknowledgement_is_told_with_alert_and_jobcoach(
    notifications, people, clock, tenant, alert_type, caller, status
):
    candidate_id = new_id()
    handle(notifications, clock, *jobcoach_alerts(people, tenant, candidate_id))
    alert = alert_of(notifications, tenant, alert_type)
    before = snapshot(notifications)
    clock.advance(hours=2)

    response = notifications.client.post(
        f"/v1/tenants/{tenant}/alerts/{alert['id']}/ack", headers=people.headers(caller)
    )

    if status != 200:
        assert_problem(response, status)
        assert snapshot(notifications) == before, "nothing changes, nothing is told"
        return
    assert response.get_json()["acknowledged_at"] == (NOW + timedelta(hours=2)).isoformat()
    again = notifications.client.post(f"/v1/tenants/{tenant}/alerts/{alert['id']}/ack", headers=people.headers(caller))
    assert again.get_json()["acknowledged_at"] == response.get_json()["acknowledged_at"]
    [event] = told(notifications, EventType.ALERT_ACKNOWLEDGED)
    assert event.subject == event.data["alert_id"] == alert["id"]
    assert (event.data["alert_type"], event.data["jobcoach_id"]) == (alert_type, people.own)
    assert event.data["candidate_id"] == candidate_id
    assert (event.data["created_at"], event.data["acknowledged_at"]) == (NOW, NOW + timedelta(hours=2))


# --------------------------------------------------------------------------------------------------------
# Handover


def test_after_a_handover_the_old_jobcoach_no_longer_sees_or_acknowledges_the_candidates_alerts(
    notifications, people, clock, tenant
):
    candidate_id = new_id()
    handle(notifications, clock, candidate_profile(tenant, candidate_id, people.own, registered=True))
    handle(notifications, clock, *jobcoach_alerts(people, tenant, candidate_id))
    seen = alert_of(notifications, tenant, "out_of_sight")
    notifications.client.post(f"/v1/tenants/{tenant}/alerts/{seen['id']}/ack", headers=people.headers("own"))
    interest = alert_of(notifications, tenant, "employer_interest")

    handle(notifications, clock, candidate_profile(tenant, candidate_id, people.other))

    old_inbox = notifications.client.get(f"/v1/tenants/{tenant}/alerts", headers=people.headers("own"))
    assert old_inbox.status_code == 200 and old_inbox.get_json()["items"] == []
    for alert_id in (interest["id"], seen["id"]):
        assert_problem(
            notifications.client.post(f"/v1/tenants/{tenant}/alerts/{alert_id}/ack", headers=people.headers("own")),
            404,
        )
    new_inbox = notifications.client.get(f"/v1/tenants/{tenant}/alerts", headers=people.headers("other")).get_json()
    assert {item["id"]: item["acknowledged_at"] is not None for item in new_inbox["items"]} == {
        interest["id"]: False,
        seen["id"]: True,
    }, "the history moves along: the old jobcoach loses sight of the candidate"
    acked = notifications.client.post(
        f"/v1/tenants/{tenant}/alerts/{interest['id']}/ack", headers=people.headers("other")
    )
    assert acked.status_code == 200
    assert [e.data["jobcoach_id"] for e in told(notifications, EventType.ALERT_ACKNOWLEDGED)] == [
        people.own,
        people.other,
    ]


# --------------------------------------------------------------------------------------------------------
# The operators' inbox


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        ("operator", 200),
        ("own", 403),
        ("other", 403),
        ("employer", 403),
        ("council", 403),
        ("foreign-operator", 404),
        ("foreign-jobcoach", 404),
        ("no-key", 401),
    ],
)
def test_a_caseload_over_the_limit_is_in_the_operators_inbox_and_theirs_to_acknowledge(
    notifications, people, clock, tenant, caller, status
):
    handle(notifications, clock, over_limit(tenant, people.own))
    alert = alert_of(notifications, tenant, "caseload_over_limit")
    before = snapshot(notifications)
    headers = people.headers(caller)

    listing = notifications.client.get(
        f"/v1/tenants/{tenant}/escalations", query_string={"type": "caseload_over_limit"}, headers=headers
    )
    ack = notifications.client.post(f"/v1/tenants/{tenant}/escalations/{alert['id']}/ack", headers=headers)

    if status != 200:
        for response in (listing, ack):
            assert_problem(response, status)
            assert alert["id"] not in response.get_data(as_text=True)
        assert snapshot(notifications) == before
        return
    [item] = listing.get_json()["items"]
    assert (item["id"], item["type"], item["candidate_id"]) == (alert["id"], "caseload_over_limit", None)
    assert item["details"]["jobcoach_id"] == people.own
    assert item["message"] == f"Jobcoach {people.own} heeft 23 kandidaten. Dat is meer dan de grens van 20."
    assert ack.status_code == 200 and ack.get_json()["acknowledged_at"] == NOW.isoformat()
    again = notifications.client.post(f"/v1/tenants/{tenant}/escalations/{alert['id']}/ack", headers=headers)
    assert again.get_json()["acknowledged_at"] == NOW.isoformat(), "the first time stays"
    # The acknowledged event's contract demands a candidate, and a caseload has none: not told.
    assert told(notifications, EventType.ALERT_ACKNOWLEDGED) == []


def test_the_jobcoach_a_caseload_alert_is_about_neither_sees_nor_acknowledges_it(notifications, people, clock, tenant):
    handle(notifications, clock, over_limit(tenant, people.own))
    alert = alert_of(notifications, tenant, "caseload_over_limit")

    inbox = notifications.client.get(f"/v1/tenants/{tenant}/alerts", headers=people.headers("own")).get_json()
    ack = notifications.client.post(f"/v1/tenants/{tenant}/alerts/{alert['id']}/ack", headers=people.headers("own"))

    assert inbox["items"] == []
    assert_problem(ack, 404)
    assert alert_of(notifications, tenant, "caseload_over_limit")["acknowledged_at"] is None


def test_operators_filter_their_inbox_by_their_own_types_only(notifications, people, clock, tenant):
    handle(notifications, clock, over_limit(tenant, people.own), over_limit(tenant, people.other))
    auth = people.headers("operator")
    url = f"/v1/tenants/{tenant}/escalations"

    caseloads = notifications.client.get(url, query_string={"type": "caseload_over_limit"}, headers=auth).get_json()
    escalated = notifications.client.get(
        url, query_string={"type": "checkin_overdue_escalated"}, headers=auth
    ).get_json()
    jobcoach_type = notifications.client.get(url, query_string={"type": "out_of_sight"}, headers=auth)

    assert sorted(item["details"]["jobcoach_id"] for item in caseloads["items"]) == sorted([people.own, people.other])
    assert escalated["items"] == []
    assert "type" in assert_problem(jobcoach_type, 422)["errors"]


# --------------------------------------------------------------------------------------------------------
# Channels: the work e-mail told


def test_setting_channels_tells_the_jobcoachs_work_email_or_that_there_is_none(notifications, people, tenant):
    url = f"/v1/tenants/{tenant}/jobcoaches/{people.own}/channels"
    auth = people.headers("own")

    with_mail = notifications.client.put(url, json={"email": "coach@werk.example.org"}, headers=auth)
    webhook_only = notifications.client.put(
        url, json={"webhook_url": "https://hooks.example.org/a", "webhook_secret": "s" * 20}, headers=auth
    )
    refused = notifications.client.put(url, json={"email": "not an address"}, headers=auth)

    assert with_mail.status_code == webhook_only.status_code == 200
    assert_problem(refused, 422)
    events = told(notifications, EventType.JOBCOACH_CHANNELS_CHANGED)
    assert [(e.subject, e.data) for e in events] == [
        (people.own, {"jobcoach_id": people.own, "work_email": "coach@werk.example.org"}),
        (people.own, {"jobcoach_id": people.own, "work_email": None}),
    ]
    keys = {row.message_key for row in outbox_rows(notifications)}
    assert keys == {f"{tenant}/{people.own}"}
    assert "hooks.example.org" not in str([row.payload for row in outbox_rows(notifications)]), "no webhook travels"


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        ("other", 404),
        ("employer", 403),
        ("operator", 403),
        ("council", 403),
        ("foreign-jobcoach", 404),
        ("foreign-operator", 404),
        ("no-key", 401),
    ],
)
def test_nobody_else_sets_a_jobcoachs_channels_or_makes_them_told(notifications, people, tenant, caller, status):
    url = f"/v1/tenants/{tenant}/jobcoaches/{people.own}/channels"
    before = snapshot(notifications)

    response = notifications.client.put(url, json={"email": "evil@example.org"}, headers=people.headers(caller))

    assert_problem(response, status)
    assert snapshot(notifications) == before
    assert told(notifications, EventType.JOBCOACH_CHANNELS_CHANGED) == []


def test_openapi_documents_the_operators_type_filter_and_alerts_without_a_candidate(notifications):
    spec = notifications.client.get("/openapi.json").get_json()

    parameters = spec["paths"]["/v1/tenants/{tenant}/escalations"]["get"]["parameters"]
    [type_filter] = [p for p in parameters if p["name"] == "type"]
    assert set(type_filter["schema"]["enum"]) == {
        "placement_at_risk_escalated",
        "checkin_overdue_escalated",
        "caseload_over_limit",
    }
    alert = spec["components"]["schemas"]["Alert"]["properties"]
    assert alert["candidate_id"].get("nullable") is True or "null" in str(alert["candidate_id"].get("type"))
    assert "introduction_id" in alert["details"]["description"]
