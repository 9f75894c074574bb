"""ETag and If-Match on placements (matching) and on a jobcoach's channels (notification), as on candidates
and vacancies: a stale tag is 412 and changes nothing, a region can require the header (428), a malformed
one is 400."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from services.matching.app import create_app as create_matching_app
from services.matching.context import MatchingContext
from shared.clock import FakeClock
from shared.events import EventType, load_example
from tests.integration.conftest import bearer
from tests.integration.helpers import assert_problem, feed_matching

CHECKIN = {"wellbeing": 4, "hours_worked": 16, "absence_days": 0, "signals": []}


@pytest.fixture
def matching(service, keys, tenant):
    svc = service("matching")
    svc.context = MatchingContext.around(
        dataclasses.replace(svc.context, clock=FakeClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC)))
    )
    svc.client = create_matching_app(svc.context).test_client()
    return svc


@pytest.fixture
def placement(matching, keys, tenant) -> str:
    candidate = copy.deepcopy(load_example(EventType.CANDIDATE_REGISTERED)["data"]) | {"jobcoach_id": "jc-1"}
    vacancy = copy.deepcopy(load_example(EventType.VACANCY_POSTED)["data"]) | {"employer_id": "emp-1"}
    body = {
        "candidate_id": feed_matching(matching, tenant, EventType.CANDIDATE_REGISTERED, candidate),
        "vacancy_id": feed_matching(matching, tenant, EventType.VACANCY_POSTED, vacancy),
        "start_date": "2026-02-09",
        "agreed_hours": 16,
        "supports_agreed": [],
    }
    started = matching.client.post(f"/v1/tenants/{tenant}/placements", json=body, headers=bearer(keys["jobcoach"]))
    assert started.status_code == 201
    assert started.headers["ETag"]
    return started.get_json()["id"]


def _placement_row(matching, tenant, placement_id) -> dict:
    table = matching.store.metadata.tables["placements"]
    with matching.db.session() as session:
        row = session.execute(sa.select(table).where(table.c.tenant == tenant, table.c.id == placement_id)).first()
    assert row is not None
    return dict(row._mapping)


def test_a_placement_carries_an_etag_that_changes_with_each_check_in(matching, keys, tenant, placement):
    url = f"/v1/tenants/{tenant}/placements/{placement}"
    auth = bearer(keys["jobcoach"])
    first = matching.client.get(url, headers=auth).headers["ETag"]
    assert matching.client.get(url, headers=bearer(keys["operator"])).headers["ETag"] == first

    checked = matching.client.post(
        f"{url}/checkins", json={"date": "2026-02-16", **CHECKIN}, headers={**auth, "If-Match": first}
    )
    assert checked.status_code == 201
    second = checked.headers["ETag"]
    assert second != first
    assert matching.client.get(url, headers=auth).headers["ETag"] == second

    # The tag read before the check-in is stale now: neither a check-in nor the end goes through.
    before = _placement_row(matching, tenant, placement)
    stale_checkin = matching.client.post(
        f"{url}/checkins", json={"date": "2026-02-23", **CHECKIN}, headers={**auth, "If-Match": first}
    )
    assert_problem(stale_checkin, 412)
    stale_end = matching.client.post(
        f"{url}/end", json={"date": "2026-03-01", "outcome": "retained"}, headers={**auth, "If-Match": first}
    )
    assert_problem(stale_end, 412)
    assert _placement_row(matching, tenant, placement) == before

    ended = matching.client.post(
        f"{url}/end", json={"date": "2026-03-01", "outcome": "retained"}, headers={**auth, "If-Match": second}
    )
    assert ended.status_code == 200, ended.get_data(as_text=True)
    assert ended.headers["ETag"] not in (first, second)
    assert matching.client.get(url, headers=auth).headers["ETag"] == ended.headers["ETag"]


def test_a_region_can_require_if_match_on_placement_changes(matching, keys, tenant, placement, registry):
    url = f"/v1/tenants/{tenant}/placements/{placement}"
    auth = bearer(keys["jobcoach"])
    registry.change_settings(tenant, {"require_if_match": "true"})
    before = _placement_row(matching, tenant, placement)
    assert_problem(matching.client.post(f"{url}/checkins", json={"date": "2026-02-16", **CHECKIN}, headers=auth), 428)
    assert_problem(
        matching.client.post(f"{url}/end", json={"date": "2026-03-01", "outcome": "retained"}, headers=auth), 428
    )
    assert_problem(
        matching.client.post(
            f"{url}/checkins", json={"date": "2026-02-16", **CHECKIN}, headers={**auth, "If-Match": "not-a-tag"}
        ),
        400,
    )
    assert _placement_row(matching, tenant, placement) == before
    tag = matching.client.get(url, headers=auth).headers["ETag"]
    checked = matching.client.post(
        f"{url}/checkins", json={"date": "2026-02-16", **CHECKIN}, headers={**auth, "If-Match": tag}
    )
    assert checked.status_code == 201


def test_openapi_documents_if_match_on_placement_changes_and_channels(matching, service):
    paths = matching.client.get("/openapi.json").get_json()["paths"]
    for path in (
        "/v1/tenants/{tenant}/placements/{placement_id}/checkins",
        "/v1/tenants/{tenant}/placements/{placement_id}/end",
    ):
        operation = paths[path]["post"]
        assert {"412", "428"} <= set(operation["responses"])
        assert any(parameter.get("name") == "If-Match" for parameter in operation["parameters"])
    channels = service("notification").client.get("/openapi.json").get_json()["paths"]
    put = channels["/v1/tenants/{tenant}/jobcoaches/{jobcoach_id}/channels"]["put"]
    assert {"412", "428"} <= set(put["responses"])


@pytest.fixture
def notifications(service, keys):
    return service("notification")


def _channels(notifications) -> list[tuple]:
    with notifications.db.session() as session:
        return [tuple(row) for row in session.execute(sa.select(notifications.store.channels))]


def test_channels_carry_an_etag_and_a_stale_if_match_changes_nothing(notifications, keys, tenant):
    url = f"/v1/tenants/{tenant}/jobcoaches/jc-1/channels"
    auth = bearer(keys["jobcoach"])
    # Setting channels for the first time needs no tag; a tag then names nothing that exists.
    assert_problem(
        notifications.client.put(url, json={"email": "a@example.org"}, headers={**auth, "If-Match": '"x"'}), 412
    )
    created = notifications.client.put(url, json={"email": "a@example.org"}, headers=auth)
    assert created.status_code == 200
    first = created.headers["ETag"]
    assert notifications.client.get(url, headers=auth).headers["ETag"] == first

    changed = notifications.client.put(url, json={"email": "b@example.org"}, headers={**auth, "If-Match": first})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != first

    before = _channels(notifications)
    assert_problem(
        notifications.client.put(url, json={"email": "c@example.org"}, headers={**auth, "If-Match": first}), 412
    )
    assert_problem(
        notifications.client.put(url, json={"email": "c@example.org"}, headers={**auth, "If-Match": "W/x"}), 400
    )
    assert _channels(notifications) == before
    assert notifications.client.get(url, headers=auth).get_json()["email"] == "b@example.org"


def test_a_region_can_require_if_match_on_channels(notifications, keys, tenant, registry):
    url = f"/v1/tenants/{tenant}/jobcoaches/jc-1/channels"
    auth = bearer(keys["jobcoach"])
    registry.change_settings(tenant, {"require_if_match": "true"})
    created = notifications.client.put(url, json={"email": "a@example.org"}, headers=auth)
    assert created.status_code == 200  # nothing to overwrite yet
    before = _channels(notifications)
    assert_problem(notifications.client.put(url, json={"email": "b@example.org"}, headers=auth), 428)
    assert _channels(notifications) == before
    again = notifications.client.put(
        url, json={"email": "b@example.org"}, headers={**auth, "If-Match": created.headers["ETag"]}
    )
    assert again.status_code == 200
