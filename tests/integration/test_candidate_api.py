"""The candidate API as jobcoaches and operators use it: registration, changes, GDPR erasure, refusals.

A candidate's pseudonym stays in this service: every event written is checked for it. Each refusal is
checked for its answer and for the database afterwards (every table, outbox included, as before).
"""

from __future__ import annotations

import uuid

import pytest

from shared.events import EventType, decode_event
from shared.topics import Topic
from tests.integration.conftest import bearer
from tests.integration.helpers import assert_problem, outbox_rows, snapshot

PROBLEM_JSON = "application/problem+json"
PSEUDONYM = "Zonnebloem"


# --------------------------------------------------------------------------------------------------------
# Helpers


def candidate_body(**overrides) -> dict:
    body = {
        "display_name": PSEUDONYM,
        "talents": ["planten verzorgen", "nauwkeurig werken"],
        "preferences": ["buiten werken"],
        "support_needs": [
            {"code": "quiet_workplace", "level": "essential"},
            {"code": "work_buddy", "level": "preferred"},
        ],
        "hours_min": 12,
        "hours_max": 24,
        "ladder_step": 3,
        "location": {"postcode": "5912", "lat": 51.37, "lon": 6.17, "max_travel_km": 15.0},
        "consent": {"matching": True, "share_with_employers": True},
        "target_group_register": True,
    }
    body.update(overrides)
    return body


def collection(tenant: str) -> str:
    return f"/v1/tenants/{tenant}/candidates"


@pytest.fixture
def candidates(service, keys):
    return service("candidate")


@pytest.fixture
def other_tenant_keys(registry, tenant) -> dict[str, str]:
    """Keys of another region whose subjects carry the same ids as this region's."""
    other = f"{tenant}-b"
    registry.create_tenant(other)
    return {
        "jobcoach": registry.create_key(other, "jobcoach", "jc-1"),
        "operator": registry.create_key(other, "operator", None),
    }


def register(candidates, tenant, key, **overrides) -> dict:
    response = candidates.client.post(collection(tenant), json=candidate_body(**overrides), headers=bearer(key))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def assert_no_pseudonym_in_outbox(candidates) -> None:
    for row in outbox_rows(candidates):
        if row.payload is not None:
            assert "display_name" not in row.payload
            assert PSEUDONYM not in row.payload


# --------------------------------------------------------------------------------------------------------
# Happy paths


def test_registering_a_candidate_answers_201_and_makes_them_the_callers(candidates, keys, tenant):
    sent = candidate_body()
    response = candidates.client.post(collection(tenant), json=sent, headers=bearer(keys["jobcoach"]))

    assert response.status_code == 201
    body = response.get_json()
    uuid.UUID(body["id"])
    assert response.headers["Location"].endswith(f"{collection(tenant)}/{body['id']}")
    assert body["jobcoach_id"] == "jc-1"
    for name, value in sent.items():
        assert body[name] == value, name
    assert body["created_at"] and body["updated_at"]


def test_registration_writes_one_registered_event_without_the_pseudonym(candidates, keys, tenant):
    candidate = register(candidates, tenant, keys["jobcoach"])

    (row,) = outbox_rows(candidates)
    assert row.topic == Topic.CANDIDATE_EVENTS
    assert row.message_key == f"{tenant}/{candidate['id']}"
    event = decode_event(row.payload.encode("utf-8"))
    assert event.id == row.event_id
    assert event.type == EventType.CANDIDATE_REGISTERED
    assert (event.tenant, event.subject, event.source) == (tenant, candidate["id"], "candidate")
    assert event.data["jobcoach_id"] == "jc-1"
    assert event.data["support_needs"] == candidate["support_needs"]
    assert event.data["consent"] == {"matching": True, "share_with_employers": True}
    assert_no_pseudonym_in_outbox(candidates)


def test_optional_fields_get_their_defaults(candidates, keys, tenant):
    minimal = {
        "display_name": "Kim",
        "hours_min": 8,
        "hours_max": 16,
        "ladder_step": 2,
        "location": {"postcode": "5912"},
        "consent": {"matching": False, "share_with_employers": False},
    }
    response = candidates.client.post(collection(tenant), json=minimal, headers=bearer(keys["jobcoach"]))

    assert response.status_code == 201
    body = response.get_json()
    assert body["talents"] == body["preferences"] == body["support_needs"] == []
    assert body["target_group_register"] is False
    assert body["location"] == {"postcode": "5912", "lat": None, "lon": None, "max_travel_km": None}


def test_the_location_header_reads_back_for_the_jobcoach_and_the_operator(candidates, keys, tenant):
    response = candidates.client.post(collection(tenant), json=candidate_body(), headers=bearer(keys["jobcoach"]))

    for role in ("jobcoach", "operator"):
        read = candidates.client.get(response.headers["Location"], headers=bearer(keys[role]))
        assert read.status_code == 200
        assert read.get_json() == response.get_json()


# --------------------------------------------------------------------------------------------------------
# Bad input on POST


def _raw(text: str | bytes) -> dict:
    return {"data": text, "content_type": "application/json"}


def _without(name: str) -> dict:
    body = candidate_body()
    del body[name]
    return body


BAD_POSTS = [
    pytest.param(_raw('{"display_name": "Kim", '), 400, None, id="malformed-json"),
    pytest.param(_raw(b'{"display_name": "\xff"}'), 400, None, id="not-utf8"),
    pytest.param(_raw(""), 422, "display_name", id="empty-body"),
    pytest.param(_raw("null"), 422, "_schema", id="json-null"),
    pytest.param({"json": [candidate_body()]}, 422, "_schema", id="list-instead-of-object"),
    pytest.param({"json": {}}, 422, "ladder_step", id="empty-object"),
    pytest.param({"json": _without("display_name")}, 422, "display_name", id="no-pseudonym"),
    pytest.param({"json": _without("consent")}, 422, "consent", id="no-consent"),
    pytest.param({"json": candidate_body(display_name=42)}, 422, "display_name", id="pseudonym-not-text"),
    pytest.param({"json": candidate_body(hours_min="twaalf")}, 422, "hours_min", id="hours-not-a-number"),
    pytest.param({"json": candidate_body(ladder_step="hoog")}, 422, "ladder_step", id="ladder-not-a-number"),
    pytest.param({"json": candidate_body(ladder_step=True)}, 422, "ladder_step", id="ladder-a-boolean"),
    pytest.param({"json": candidate_body(talents="planten")}, 422, "talents", id="talents-not-a-list"),
    pytest.param({"json": candidate_body(support_needs="work_buddy")}, 422, "support_needs", id="needs-not-a-list"),
    pytest.param({"json": candidate_body(consent=True)}, 422, "consent", id="consent-not-an-object"),
    pytest.param({"json": candidate_body(consent={"matching": True})}, 422, "consent", id="consent-missing-share"),
    pytest.param({"json": candidate_body(jobcoach_id="jc-2")}, 422, "jobcoach_id", id="mass-assign-jobcoach"),
    pytest.param({"json": candidate_body(id=str(uuid.uuid4()))}, 422, "id", id="mass-assign-id"),
    pytest.param({"json": candidate_body(hours_min=30, hours_max=20)}, 422, "hours_max", id="hours-min-above-max"),
    pytest.param({"json": candidate_body(hours_max=61)}, 422, "hours_max", id="hours-above-weekly-max"),
    pytest.param({"json": candidate_body(ladder_step=0)}, 422, "ladder_step", id="ladder-step-0"),
    pytest.param({"json": candidate_body(ladder_step=7)}, 422, "ladder_step", id="ladder-step-7"),
    pytest.param({"json": candidate_body(ladder_step=-3)}, 422, "ladder_step", id="ladder-step-negative"),
    pytest.param(
        {"json": candidate_body(support_needs=[{"code": "work_buddy", "level": "sometimes"}])},
        422,
        "support_needs",
        id="unknown-need-level",
    ),
    pytest.param(
        {
            "json": candidate_body(
                support_needs=[
                    {"code": "work_buddy", "level": "essential"},
                    {"code": "work_buddy", "level": "preferred"},
                ]
            )
        },
        422,
        "support_needs",
        id="need-listed-twice",
    ),
    pytest.param(
        {"json": candidate_body(location={"postcode": "5912", "max_travel_km": 501})},
        422,
        "location",
        id="travel-too-far",
    ),
    pytest.param({"json": candidate_body(location={"postcode": "591"})}, 422, "location", id="bad-postcode"),
    pytest.param({"json": candidate_body(display_name="")}, 422, "display_name", id="empty-pseudonym"),
    pytest.param({"json": candidate_body(display_name="x" * 61)}, 422, "display_name", id="huge-pseudonym"),
    pytest.param({"json": candidate_body(talents=["x" * 201])}, 422, "talents", id="huge-talent"),
    pytest.param({"json": candidate_body(talents=["talent"] * 51)}, 422, "talents", id="too-many-talents"),
    pytest.param({"json": candidate_body(preferences=[""])}, 422, "preferences", id="empty-preference"),
]


@pytest.mark.parametrize(("request_kwargs", "status", "field"), BAD_POSTS)
def test_bad_registrations_are_refused_naming_the_field_and_change_nothing(
    candidates, keys, tenant, request_kwargs, status, field
):
    before = snapshot(candidates)

    response = candidates.client.post(collection(tenant), headers=bearer(keys["jobcoach"]), **request_kwargs)

    body = assert_problem(response, status)
    if status == 422:
        assert field in body["errors"], body["errors"]
    assert snapshot(candidates) == before


def test_an_unknown_support_code_is_422_naming_support_needs(candidates, keys, tenant):
    before = snapshot(candidates)

    response = candidates.client.post(
        collection(tenant),
        json=candidate_body(support_needs=[{"code": "teleporter", "level": "essential"}]),
        headers=bearer(keys["jobcoach"]),
    )

    assert "support_needs" in assert_problem(response, 422)["errors"]
    assert snapshot(candidates) == before


def test_a_fractional_ladder_step_is_refused_not_truncated(candidates, keys, tenant):
    before = snapshot(candidates)

    response = candidates.client.post(
        collection(tenant), json=candidate_body(ladder_step=2.5), headers=bearer(keys["jobcoach"])
    )

    assert "ladder_step" in assert_problem(response, 422)["errors"]
    assert snapshot(candidates) == before


# --------------------------------------------------------------------------------------------------------
# Who may act


def _headers(keys: dict, other_tenant_keys: dict, caller: str) -> dict:
    return {
        "no-key": {},
        "garbage-key": bearer("wbk_" + "x" * 43),
        "empty-bearer": {"Authorization": "Bearer "},
        "other-tenant-jobcoach": bearer(other_tenant_keys["jobcoach"]),
        "other-tenant-operator": bearer(other_tenant_keys["operator"]),
        "employer": bearer(keys["employer"]),
        "operator": bearer(keys["operator"]),
        "other-jobcoach": bearer(keys["jobcoach2"]),
    }[caller]


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        ("no-key", 401),
        ("garbage-key", 401),
        ("empty-bearer", 401),
        ("other-tenant-jobcoach", 404),
        ("employer", 403),
        ("operator", 403),
    ],
)
def test_registering_by_a_caller_who_may_not_is_refused_and_changes_nothing(
    candidates, keys, other_tenant_keys, tenant, caller, status
):
    before = snapshot(candidates)

    response = candidates.client.post(
        collection(tenant), json=candidate_body(), headers=_headers(keys, other_tenant_keys, caller)
    )

    assert_problem(response, status)
    assert snapshot(candidates) == before


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        ("no-key", 401),
        ("garbage-key", 401),
        ("other-tenant-jobcoach", 404),
        ("other-tenant-operator", 404),
        ("employer", 403),
        ("other-jobcoach", 404),
    ],
)
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_a_candidate_refuses_callers_who_may_not_and_changes_nothing(
    candidates, keys, other_tenant_keys, tenant, caller, status, method
):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    before = snapshot(candidates)
    kwargs = {"json": {"hours_max": 32}} if method == "patch" else {}

    response = getattr(candidates.client, method)(
        f"{collection(tenant)}/{candidate_id}", headers=_headers(keys, other_tenant_keys, caller), **kwargs
    )

    body = assert_problem(response, status)
    assert PSEUDONYM not in response.get_data(as_text=True)
    assert "detail" in body
    assert snapshot(candidates) == before


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_an_unknown_candidate_is_404(candidates, keys, tenant, method):
    kwargs = {"json": {"hours_max": 32}} if method == "patch" else {}

    response = getattr(candidates.client, method)(
        f"{collection(tenant)}/{uuid.uuid4()}", headers=bearer(keys["operator"]), **kwargs
    )

    assert_problem(response, 404)


# --------------------------------------------------------------------------------------------------------
# PATCH


def test_patch_changes_only_the_given_fields_and_emits_updated_without_the_pseudonym(candidates, keys, tenant):
    created = register(candidates, tenant, keys["jobcoach"])

    response = candidates.client.patch(
        f"{collection(tenant)}/{created['id']}",
        json={"hours_max": 32, "talents": ["koken"]},
        headers=bearer(keys["jobcoach"]),
    )

    assert response.status_code == 200
    changed = response.get_json()
    assert (changed["hours_max"], changed["talents"]) == (32, ["koken"])
    untouched = {k: v for k, v in created.items() if k not in ("hours_max", "talents", "updated_at")}
    assert {name: changed[name] for name in untouched} == untouched
    registered, updated = outbox_rows(candidates)
    assert updated.message_key == registered.message_key == f"{tenant}/{created['id']}"
    event = decode_event(updated.payload.encode("utf-8"))
    assert event.type == EventType.CANDIDATE_UPDATED
    assert (event.data["hours_max"], event.data["talents"]) == (32, ["koken"])
    assert event.data["jobcoach_id"] == "jc-1"
    assert event.data["ladder_step"] == created["ladder_step"]
    assert_no_pseudonym_in_outbox(candidates)


def test_operator_may_change_a_candidate_who_stays_their_jobcoachs(candidates, keys, tenant):
    created = register(candidates, tenant, keys["jobcoach"])

    response = candidates.client.patch(
        f"{collection(tenant)}/{created['id']}", json={"ladder_step": 4}, headers=bearer(keys["operator"])
    )

    assert response.status_code == 200
    assert response.get_json()["jobcoach_id"] == "jc-1"
    assert decode_event(outbox_rows(candidates)[-1].payload.encode("utf-8")).data["jobcoach_id"] == "jc-1"


def test_a_new_pseudonym_alone_is_stored_but_emits_no_event(candidates, keys, tenant):
    created = register(candidates, tenant, keys["jobcoach"])
    events_before = len(outbox_rows(candidates))

    response = candidates.client.patch(
        f"{collection(tenant)}/{created['id']}", json={"display_name": "Klaproos"}, headers=bearer(keys["jobcoach"])
    )

    assert response.status_code == 200
    assert response.get_json()["display_name"] == "Klaproos"
    assert len(outbox_rows(candidates)) == events_before
    read = candidates.client.get(f"{collection(tenant)}/{created['id']}", headers=bearer(keys["jobcoach"]))
    assert read.get_json()["display_name"] == "Klaproos"


@pytest.mark.parametrize(
    "patch",
    [
        pytest.param({}, id="empty"),
        pytest.param({"hours_min": 12, "ladder_step": 3}, id="same-values"),
        pytest.param({"consent": {"matching": True, "share_with_employers": True}}, id="same-consent"),
    ],
)
def test_a_patch_that_changes_nothing_emits_no_event(candidates, keys, tenant, patch):
    created = register(candidates, tenant, keys["jobcoach"])
    events_before = len(outbox_rows(candidates))

    response = candidates.client.patch(
        f"{collection(tenant)}/{created['id']}", json=patch, headers=bearer(keys["jobcoach"])
    )

    assert response.status_code == 200
    assert len(outbox_rows(candidates)) == events_before


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        pytest.param({"hours_max": 8}, "hours_max", id="max-below-stored-min"),
        pytest.param({"hours_min": 30}, "hours_max", id="min-above-stored-max"),
        pytest.param({"ladder_step": 7}, "ladder_step", id="ladder-out-of-range"),
        pytest.param({"jobcoach_id": "jc-2"}, "jobcoach_id", id="mass-assign-jobcoach"),
        pytest.param({"id": "ander-id"}, "id", id="mass-assign-id"),
        pytest.param({"display_name": None}, "display_name", id="null-pseudonym"),
        pytest.param({"display_name": ""}, "display_name", id="empty-pseudonym"),
        pytest.param({"display_name": "x" * 61}, "display_name", id="huge-pseudonym"),
        pytest.param({"talents": ["x" * 201]}, "talents", id="huge-talent"),
        pytest.param({"consent": {"matching": False}}, "consent", id="half-a-consent"),
        pytest.param({"location": {"lat": 51.0}}, "location", id="location-without-postcode"),
        pytest.param({"hours_min": "veel"}, "hours_min", id="wrong-type"),
        pytest.param([{"hours_min": 8}], "_schema", id="list-instead-of-object"),
    ],
)
def test_bad_patches_are_422_naming_the_field_and_change_nothing(candidates, keys, tenant, patch, field):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    before = snapshot(candidates)

    response = candidates.client.patch(
        f"{collection(tenant)}/{candidate_id}", json=patch, headers=bearer(keys["jobcoach"])
    )

    assert field in assert_problem(response, 422)["errors"]
    assert snapshot(candidates) == before


def test_a_malformed_patch_is_400_and_changes_nothing(candidates, keys, tenant):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    before = snapshot(candidates)

    response = candidates.client.patch(
        f"{collection(tenant)}/{candidate_id}",
        data="{'hours_min': 8}",
        content_type="application/json",
        headers=bearer(keys["jobcoach"]),
    )

    assert_problem(response, 400)
    assert snapshot(candidates) == before


# --------------------------------------------------------------------------------------------------------
# Erasure


@pytest.mark.parametrize("role", ["jobcoach", "operator"])
def test_erasure_removes_the_candidate_and_every_earlier_event_about_them(candidates, keys, tenant, role):
    erased = register(candidates, tenant, keys["jobcoach"])
    kept = register(candidates, tenant, keys["jobcoach"], display_name="Klaproos")
    candidates.client.patch(
        f"{collection(tenant)}/{erased['id']}", json={"hours_max": 32}, headers=bearer(keys["jobcoach"])
    )
    key = f"{tenant}/{erased['id']}"
    assert len(outbox_rows(candidates, key)) == 2

    response = candidates.client.delete(f"{collection(tenant)}/{erased['id']}", headers=bearer(keys[role]))

    assert response.status_code == 204
    assert response.get_data() == b""
    gone = candidates.client.get(f"{collection(tenant)}/{erased['id']}", headers=bearer(keys["jobcoach"]))
    assert_problem(gone, 404)
    with candidates.db.session() as session:
        assert candidates.store.get_candidate(session, tenant, erased["id"]) is None
        assert candidates.store.count_candidates(session, tenant) == 1

    event_row, tombstone = outbox_rows(candidates, key)
    event = decode_event(event_row.payload.encode("utf-8"))
    assert event.type == EventType.CANDIDATE_ERASED
    assert (event.tenant, event.subject) == (tenant, erased["id"])
    assert event.data == {"jobcoach_id": "jc-1"}
    assert event_row.topic == tombstone.topic == Topic.CANDIDATE_EVENTS
    assert tombstone.payload is None
    assert tombstone.event_id is None
    assert tombstone.id > event_row.id

    (kept_row,) = outbox_rows(candidates, f"{tenant}/{kept['id']}")
    assert decode_event(kept_row.payload.encode("utf-8")).type == EventType.CANDIDATE_REGISTERED


def test_erasing_twice_is_404_the_second_time_and_changes_nothing(candidates, keys, tenant):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    url, auth = f"{collection(tenant)}/{candidate_id}", bearer(keys["jobcoach"])
    assert candidates.client.delete(url, headers=auth).status_code == 204
    before = snapshot(candidates)

    again = candidates.client.delete(url, headers=auth)

    assert_problem(again, 404)
    assert snapshot(candidates) == before


def test_an_erased_candidate_cannot_be_changed(candidates, keys, tenant):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    url, auth = f"{collection(tenant)}/{candidate_id}", bearer(keys["jobcoach"])
    candidates.client.delete(url, headers=auth)
    before = snapshot(candidates)

    response = candidates.client.patch(url, json={"hours_max": 32}, headers=auth)

    assert_problem(response, 404)
    assert snapshot(candidates) == before


def test_no_event_ever_carries_the_pseudonym(candidates, keys, tenant):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    url, auth = f"{collection(tenant)}/{candidate_id}", bearer(keys["jobcoach"])
    candidates.client.patch(url, json={"hours_max": 30, "display_name": f"{PSEUDONYM} twee"}, headers=auth)
    candidates.client.delete(url, headers=auth)

    rows = outbox_rows(candidates)
    assert rows
    assert_no_pseudonym_in_outbox(candidates)


# --------------------------------------------------------------------------------------------------------
# Service endpoints


def test_openapi_lists_the_candidate_paths_and_healthz_is_ok(candidates):
    spec = candidates.client.get("/openapi.json")
    health = candidates.client.get("/healthz")

    assert spec.status_code == 200
    paths = spec.get_json()["paths"]
    assert "post" in paths["/v1/tenants/{tenant}/candidates"]
    assert {"get", "patch", "delete"} <= set(paths["/v1/tenants/{tenant}/candidates/{candidate_id}"])
    assert health.status_code == 200
    assert health.get_json() == {"status": "ok", "service": "candidate"}
