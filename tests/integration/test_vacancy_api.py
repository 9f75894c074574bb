"""The vacancy API as employers and operators use it: every status, every refusal, and the events it writes.

Each refusal is checked twice: the answer (problem+json, status, the field named) and the database
afterwards (every table, outbox included, exactly as before), because a refused request that still
wrote a row or an event would be the worse bug.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest

from shared.events import EventType, decode_event
from shared.topics import Topic
from tests.integration.conftest import bearer
from tests.integration.helpers import assert_problem, outbox_rows, snapshot

PROBLEM_JSON = "application/problem+json"
USES_POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgresql")


# --------------------------------------------------------------------------------------------------------
# Helpers


def vacancy_body(**overrides) -> dict:
    body = {
        "title": "Medewerker groenonderhoud",
        "description": "Je helpt ons team met het onderhoud van parken en plantsoenen.",
        "tasks": ["planten verzorgen", "onkruid wieden"],
        "skills": ["groenonderhoud"],
        "supports_offered": ["quiet_workplace", "work_buddy"],
        "hours_min": 16,
        "hours_max": 24,
        "kind": "work_experience",
        "positions": 2,
        "location": {"postcode": "5911", "lat": 51.37, "lon": 6.16},
        "banenafspraak": True,
    }
    body.update(overrides)
    return body


def collection(tenant: str) -> str:
    return f"/v1/tenants/{tenant}/vacancies"


@pytest.fixture
def vacancies(service, keys):
    return service("vacancy")


@pytest.fixture
def other_tenant_keys(registry, tenant) -> dict[str, str]:
    """Keys of another region whose subjects carry the same ids as this region's."""
    other = f"{tenant}-b"
    registry.create_tenant(other)
    return {
        "employer": registry.create_key(other, "employer", "emp-1"),
        "operator": registry.create_key(other, "operator", None),
    }


def post(vacancies, tenant, key, body=None, **overrides) -> dict:
    response = vacancies.client.post(collection(tenant), json=body or vacancy_body(**overrides), headers=bearer(key))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


# --------------------------------------------------------------------------------------------------------
# Happy paths


def test_posting_a_vacancy_answers_201_with_location_and_one_posted_event(vacancies, keys, tenant):
    sent = vacancy_body()
    response = vacancies.client.post(collection(tenant), json=sent, headers=bearer(keys["employer"]))

    assert response.status_code == 201
    assert response.mimetype == "application/json"
    body = response.get_json()
    uuid.UUID(body["id"])
    assert response.headers["Location"].endswith(f"{collection(tenant)}/{body['id']}")
    assert body["employer_id"] == "emp-1"
    assert body["status"] == "open"
    for name, value in sent.items():
        assert body[name] == value, name
    assert body["created_at"] and body["updated_at"]

    (row,) = outbox_rows(vacancies)
    assert row.topic == Topic.VACANCY_EVENTS
    assert row.message_key == f"{tenant}/{body['id']}"
    assert row.published_at is None
    event = decode_event(row.payload.encode("utf-8"))
    assert event.id == row.event_id
    assert event.type == EventType.VACANCY_POSTED
    assert (event.tenant, event.subject, event.source) == (tenant, body["id"], "vacancy")
    assert event.data["employer_id"] == "emp-1"
    assert event.data["status"] == "open"
    assert event.data["title"] == sent["title"]
    assert event.data["supports_offered"] == sent["supports_offered"]


def test_optional_fields_get_their_defaults(vacancies, keys, tenant):
    minimal = {
        "title": "Inpakker",
        "hours_min": 8,
        "hours_max": 16,
        "kind": "sheltered",
        "positions": 1,
        "location": {"postcode": "5912"},
    }
    body = post(vacancies, tenant, keys["employer"], minimal)

    assert body["description"] == ""
    assert body["tasks"] == body["skills"] == body["supports_offered"] == []
    assert body["banenafspraak"] is False
    assert body["location"] == {"postcode": "5912", "lat": None, "lon": None}
    (row,) = outbox_rows(vacancies)
    assert decode_event(row.payload.encode("utf-8")).data["location"]["lat"] is None


def test_the_location_header_reads_back_the_same_vacancy(vacancies, keys, tenant):
    response = vacancies.client.post(collection(tenant), json=vacancy_body(), headers=bearer(keys["employer"]))

    read = vacancies.client.get(response.headers["Location"], headers=bearer(keys["employer"]))

    assert read.status_code == 200
    assert read.get_json() == response.get_json()


def test_operator_reads_any_vacancy_of_the_region(vacancies, keys, tenant):
    created = post(vacancies, tenant, keys["employer"])

    read = vacancies.client.get(f"{collection(tenant)}/{created['id']}", headers=bearer(keys["operator"]))

    assert read.status_code == 200
    assert read.get_json()["id"] == created["id"]


def test_list_shows_an_employer_only_their_own_and_an_operator_all(vacancies, keys, tenant):
    own = {post(vacancies, tenant, keys["employer"], title=f"Eigen {n}")["id"] for n in range(2)}
    theirs = post(vacancies, tenant, keys["employer2"], title="Van een ander")["id"]

    as_employer = vacancies.client.get(collection(tenant), headers=bearer(keys["employer"])).get_json()
    as_operator = vacancies.client.get(collection(tenant), headers=bearer(keys["operator"])).get_json()

    assert {item["id"] for item in as_employer["items"]} == own
    assert as_employer["total"] == 2
    assert {item["id"] for item in as_operator["items"]} == own | {theirs}
    assert as_operator["total"] == 3
    assert (as_operator["page"], as_operator["page_size"]) == (1, 20)


def test_list_filters_by_status(vacancies, keys, tenant):
    open_id = post(vacancies, tenant, keys["employer"])["id"]
    filled_id = post(vacancies, tenant, keys["employer"])["id"]
    closed_id = post(vacancies, tenant, keys["employer"])["id"]
    auth = bearer(keys["employer"])
    vacancies.client.patch(f"{collection(tenant)}/{filled_id}", json={"status": "filled"}, headers=auth)
    vacancies.client.delete(f"{collection(tenant)}/{closed_id}", headers=auth)

    def ids(status: str) -> set[str]:
        page = vacancies.client.get(collection(tenant), query_string={"status": status}, headers=auth).get_json()
        assert page["total"] == len(page["items"])
        return {item["id"] for item in page["items"]}

    assert ids("open") == {open_id}
    assert ids("filled") == {filled_id}
    assert ids("closed") == {closed_id}


def test_list_pages_through_every_vacancy_once(vacancies, keys, tenant):
    created = {post(vacancies, tenant, keys["employer"], title=f"Vacature {n}")["id"] for n in range(5)}
    seen: list[str] = []
    for page in (1, 2, 3):
        answer = vacancies.client.get(
            collection(tenant), query_string={"page": page, "page_size": 2}, headers=bearer(keys["employer"])
        ).get_json()
        assert answer["total"] == 5
        assert (answer["page"], answer["page_size"]) == (page, 2)
        seen.extend(item["id"] for item in answer["items"])

    assert len(seen) == 5
    assert set(seen) == created


def test_page_size_100_is_the_largest_accepted(vacancies, keys, tenant):
    response = vacancies.client.get(
        collection(tenant), query_string={"page_size": 100}, headers=bearer(keys["operator"])
    )

    assert response.status_code == 200
    assert response.get_json()["page_size"] == 100


# --------------------------------------------------------------------------------------------------------
# Bad input on POST


def _raw(text: str | bytes) -> dict:
    return {"data": text, "content_type": "application/json"}


BAD_POSTS = [
    pytest.param(_raw('{"title": "Inpakker", '), 400, None, id="malformed-json"),
    pytest.param(_raw(b'{"title": "\xff\xfe"}'), 400, None, id="not-utf8"),
    pytest.param(_raw(""), 422, "title", id="empty-body"),
    pytest.param(_raw("null"), 422, "_schema", id="json-null"),
    pytest.param(_raw('"a vacancy"'), 422, "_schema", id="json-string"),
    pytest.param({"json": [vacancy_body()]}, 422, "_schema", id="list-instead-of-object"),
    pytest.param({"json": {}}, 422, "title", id="empty-object"),
    pytest.param({"json": vacancy_body(title=123)}, 422, "title", id="title-not-text"),
    pytest.param({"json": vacancy_body(hours_min="tien")}, 422, "hours_min", id="hours-not-a-number"),
    pytest.param({"json": vacancy_body(positions=[2])}, 422, "positions", id="positions-a-list"),
    pytest.param({"json": vacancy_body(tasks="planten verzorgen")}, 422, "tasks", id="tasks-not-a-list"),
    pytest.param({"json": vacancy_body(location="5911")}, 422, "location", id="location-not-an-object"),
    pytest.param({"json": vacancy_body(banenafspraak="misschien")}, 422, "banenafspraak", id="flag-not-boolean"),
    pytest.param({"json": vacancy_body(employer_id="emp-2")}, 422, "employer_id", id="mass-assign-employer"),
    pytest.param({"json": vacancy_body(status="filled")}, 422, "status", id="mass-assign-status"),
    pytest.param({"json": vacancy_body(id=str(uuid.uuid4()))}, 422, "id", id="mass-assign-id"),
    pytest.param({"json": vacancy_body(created_at="2020-01-01T00:00:00Z")}, 422, "created_at", id="mass-assign-ts"),
    pytest.param({"json": vacancy_body(hours_min=30, hours_max=20)}, 422, "hours_max", id="hours-min-above-max"),
    pytest.param({"json": vacancy_body(hours_max=61)}, 422, "hours_max", id="hours-above-weekly-max"),
    pytest.param({"json": vacancy_body(hours_min=-1)}, 422, "hours_min", id="hours-negative"),
    pytest.param({"json": vacancy_body(positions=10_001)}, 422, "positions", id="positions-too-many"),
    pytest.param({"json": vacancy_body(supports_offered=["teleporter"])}, 422, "supports_offered", id="unknown-code"),
    pytest.param({"json": vacancy_body(kind="internship")}, 422, "kind", id="unknown-kind"),
    pytest.param({"json": vacancy_body(location={"postcode": "0123"})}, 422, "location", id="bad-postcode"),
    pytest.param({"json": vacancy_body(location={"postcode": "5911", "lat": 91})}, 422, "location", id="bad-lat"),
    pytest.param({"json": vacancy_body(title="")}, 422, "title", id="empty-title"),
    pytest.param({"json": vacancy_body(title="x" * 201)}, 422, "title", id="huge-title"),
    pytest.param({"json": vacancy_body(description="x" * 10_001)}, 422, "description", id="huge-description"),
    pytest.param({"json": vacancy_body(tasks=["x" * 201])}, 422, "tasks", id="huge-task"),
    pytest.param({"json": vacancy_body(tasks=["taak"] * 51)}, 422, "tasks", id="too-many-tasks"),
    pytest.param({"json": vacancy_body(supports_offered=["work_buddy"] * 13)}, 422, "supports_offered", id="13-codes"),
    pytest.param(_raw(json.dumps(vacancy_body()).replace('"lat": 51.37', '"lat": NaN')), 422, "location", id="lat-nan"),
]


@pytest.mark.parametrize(("request_kwargs", "status", "field"), BAD_POSTS)
def test_bad_post_bodies_are_refused_naming_the_field_and_change_nothing(
    vacancies, keys, tenant, request_kwargs, status, field
):
    before = snapshot(vacancies)

    response = vacancies.client.post(collection(tenant), headers=bearer(keys["employer"]), **request_kwargs)

    body = assert_problem(response, status)
    if status == 422:
        assert field in body["errors"], body["errors"]
    assert snapshot(vacancies) == before


def test_a_body_over_the_size_limit_is_413_and_changes_nothing(vacancies, keys, tenant):
    before = snapshot(vacancies)

    response = vacancies.client.post(
        collection(tenant), json=vacancy_body(description="x" * 300_000), headers=bearer(keys["employer"])
    )

    assert_problem(response, 413)
    assert snapshot(vacancies) == before


def test_a_deeply_nested_json_body_is_400_and_changes_nothing(vacancies, keys, tenant):
    before = snapshot(vacancies)

    response = vacancies.client.post(
        collection(tenant),
        data="[" * 50_000 + "]" * 50_000,
        headers=bearer(keys["employer"]),
        content_type="application/json",
    )

    assert_problem(response, 400)
    assert snapshot(vacancies) == before


@pytest.mark.parametrize(
    ("query", "field"),
    [
        pytest.param({"page_size": 0}, "page_size", id="page-size-0"),
        pytest.param({"page_size": 101}, "page_size", id="page-size-101"),
        pytest.param({"page_size": "veel"}, "page_size", id="page-size-not-a-number"),
        pytest.param({"page": 0}, "page", id="page-0"),
        pytest.param({"status": "archived"}, "status", id="unknown-status"),
    ],
)
def test_bad_list_queries_are_422_naming_the_parameter(vacancies, keys, tenant, query, field):
    response = vacancies.client.get(collection(tenant), query_string=query, headers=bearer(keys["operator"]))

    assert field in assert_problem(response, 422)["errors"]


# --------------------------------------------------------------------------------------------------------
# Who may act


def _headers(keys: dict, other_tenant_keys: dict, caller: str) -> dict:
    return {
        "no-key": {},
        "garbage-key": bearer("wbk_" + "x" * 43),
        "not-a-werkbrug-key": bearer("not-even-prefixed"),
        "basic-auth": {"Authorization": f"Basic {keys['employer']}"},
        "other-tenant-employer": bearer(other_tenant_keys["employer"]),
        "other-tenant-operator": bearer(other_tenant_keys["operator"]),
        "jobcoach": bearer(keys["jobcoach"]),
        "operator": bearer(keys["operator"]),
    }[caller]


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        ("no-key", 401),
        ("garbage-key", 401),
        ("not-a-werkbrug-key", 401),
        ("basic-auth", 401),
        ("other-tenant-employer", 404),
        ("jobcoach", 403),
        ("operator", 403),
    ],
)
def test_posting_by_a_caller_who_may_not_is_refused_and_changes_nothing(
    vacancies, keys, other_tenant_keys, tenant, caller, status
):
    before = snapshot(vacancies)

    response = vacancies.client.post(
        collection(tenant), json=vacancy_body(), headers=_headers(keys, other_tenant_keys, caller)
    )

    assert_problem(response, status)
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert snapshot(vacancies) == before


def test_authentication_is_checked_before_the_body(vacancies, keys, tenant):
    response = vacancies.client.post(collection(tenant), data="{not json", content_type="application/json")

    assert_problem(response, 401)


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        ("no-key", 401),
        ("garbage-key", 401),
        ("other-tenant-employer", 404),
        ("other-tenant-operator", 404),
        ("jobcoach", 403),
    ],
)
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_a_vacancy_refuses_callers_who_may_not_and_changes_nothing(
    vacancies, keys, other_tenant_keys, tenant, caller, status, method
):
    vacancy_id = post(vacancies, tenant, keys["employer"])["id"]
    before = snapshot(vacancies)
    kwargs = {"json": {"title": "Overgenomen"}} if method == "patch" else {}

    response = getattr(vacancies.client, method)(
        f"{collection(tenant)}/{vacancy_id}", headers=_headers(keys, other_tenant_keys, caller), **kwargs
    )

    assert_problem(response, status)
    assert snapshot(vacancies) == before


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_another_employers_vacancy_is_404_and_changes_nothing(vacancies, keys, tenant, method):
    vacancy_id = post(vacancies, tenant, keys["employer"])["id"]
    before = snapshot(vacancies)
    kwargs = {"json": {"title": "Overgenomen"}} if method == "patch" else {}

    response = getattr(vacancies.client, method)(
        f"{collection(tenant)}/{vacancy_id}", headers=bearer(keys["employer2"]), **kwargs
    )

    assert_problem(response, 404)
    assert snapshot(vacancies) == before


def test_another_regions_keys_see_none_of_this_regions_vacancies(vacancies, keys, other_tenant_keys, tenant):
    post(vacancies, tenant, keys["employer"])

    for key in other_tenant_keys.values():
        assert_problem(vacancies.client.get(collection(tenant), headers=bearer(key)), 404)
        own_region = vacancies.client.get(collection(f"{tenant}-b"), headers=bearer(key))
        assert own_region.status_code == 200
        assert own_region.get_json()["items"] == []


def test_the_list_refuses_a_jobcoach(vacancies, keys, tenant):
    assert_problem(vacancies.client.get(collection(tenant), headers=bearer(keys["jobcoach"])), 403)


@pytest.mark.parametrize("vacancy_id", ["00000000-0000-4000-8000-000000000000", "x" * 100, "niet-bestaand"])
@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_an_unknown_vacancy_is_404(vacancies, keys, tenant, vacancy_id, method):
    kwargs = {"json": {"title": "Nieuw"}} if method == "patch" else {}

    response = getattr(vacancies.client, method)(
        f"{collection(tenant)}/{vacancy_id}", headers=bearer(keys["operator"]), **kwargs
    )

    assert_problem(response, 404)


def test_a_nul_byte_in_a_vacancy_id_is_404(vacancies, keys, tenant):
    response = vacancies.client.get(f"{collection(tenant)}/a%00b", headers=bearer(keys["operator"]))

    assert_problem(response, 404)


# --------------------------------------------------------------------------------------------------------
# PATCH


def test_patch_changes_only_the_given_fields_and_emits_updated(vacancies, keys, tenant):
    created = post(vacancies, tenant, keys["employer"])

    response = vacancies.client.patch(
        f"{collection(tenant)}/{created['id']}",
        json={"title": "Hovenier", "positions": 1},
        headers=bearer(keys["employer"]),
    )

    assert response.status_code == 200
    changed = response.get_json()
    assert (changed["title"], changed["positions"]) == ("Hovenier", 1)
    untouched = {name: value for name, value in created.items() if name not in ("title", "positions", "updated_at")}
    assert {name: changed[name] for name in untouched} == untouched
    posted, updated = outbox_rows(vacancies)
    assert updated.message_key == posted.message_key == f"{tenant}/{created['id']}"
    event = decode_event(updated.payload.encode("utf-8"))
    assert event.type == EventType.VACANCY_UPDATED
    assert event.data["title"] == "Hovenier"
    assert event.data["description"] == created["description"]
    assert (event.data["employer_id"], event.data["status"]) == ("emp-1", "open")


def test_patch_replaces_a_nested_location_as_a_whole(vacancies, keys, tenant):
    created = post(vacancies, tenant, keys["employer"])

    response = vacancies.client.patch(
        f"{collection(tenant)}/{created['id']}",
        json={"location": {"postcode": "1234"}},
        headers=bearer(keys["employer"]),
    )

    assert response.status_code == 200
    assert response.get_json()["location"] == {"postcode": "1234", "lat": None, "lon": None}


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        pytest.param({"hours_max": 10}, "hours_max", id="max-below-stored-min"),
        pytest.param({"hours_min": 30}, "hours_max", id="min-above-stored-max"),
        pytest.param({"hours_min": 30, "hours_max": 20}, "hours_max", id="both-given-reversed"),
        pytest.param({"employer_id": "emp-2"}, "employer_id", id="mass-assign-employer"),
        pytest.param({"id": "ander-id"}, "id", id="mass-assign-id"),
        pytest.param({"status": "closed"}, "status", id="close-through-patch"),
        pytest.param({"status": "gone"}, "status", id="unknown-status"),
        pytest.param({"title": None}, "title", id="null-title"),
        pytest.param({"title": ""}, "title", id="empty-title"),
        pytest.param({"title": "x" * 201}, "title", id="huge-title"),
        pytest.param({"supports_offered": ["teleporter"]}, "supports_offered", id="unknown-code"),
        pytest.param({"hours_min": "acht"}, "hours_min", id="wrong-type"),
        pytest.param({"location": {"lat": 51.0}}, "location", id="location-without-postcode"),
        pytest.param([{"title": "lijst"}], "_schema", id="list-instead-of-object"),
    ],
)
def test_bad_patches_are_422_naming_the_field_and_change_nothing(vacancies, keys, tenant, patch, field):
    vacancy_id = post(vacancies, tenant, keys["employer"])["id"]
    before = snapshot(vacancies)

    response = vacancies.client.patch(
        f"{collection(tenant)}/{vacancy_id}", json=patch, headers=bearer(keys["employer"])
    )

    assert field in assert_problem(response, 422)["errors"]
    assert snapshot(vacancies) == before


def test_a_malformed_patch_is_400_and_changes_nothing(vacancies, keys, tenant):
    vacancy_id = post(vacancies, tenant, keys["employer"])["id"]
    before = snapshot(vacancies)

    response = vacancies.client.patch(
        f"{collection(tenant)}/{vacancy_id}",
        data='{"title": ',
        content_type="application/json",
        headers=bearer(keys["employer"]),
    )

    assert_problem(response, 400)
    assert snapshot(vacancies) == before


def test_marking_filled_emits_closed_with_status_filled_and_reopening_emits_updated(vacancies, keys, tenant):
    vacancy_id = post(vacancies, tenant, keys["employer"])["id"]
    url, auth = f"{collection(tenant)}/{vacancy_id}", bearer(keys["employer"])

    filled = vacancies.client.patch(url, json={"status": "filled"}, headers=auth)
    reopened = vacancies.client.patch(url, json={"status": "open"}, headers=auth)

    assert filled.get_json()["status"] == "filled"
    assert reopened.get_json()["status"] == "open"
    events = [decode_event(row.payload.encode("utf-8")) for row in outbox_rows(vacancies)]
    assert [event.type for event in events] == [
        EventType.VACANCY_POSTED,
        EventType.VACANCY_CLOSED,
        EventType.VACANCY_UPDATED,
    ]
    assert events[1].data == {"employer_id": "emp-1", "status": "filled"}
    assert events[2].data["status"] == "open"


def test_operator_may_change_and_close_any_vacancy_of_the_region(vacancies, keys, tenant):
    vacancy_id = post(vacancies, tenant, keys["employer"])["id"]
    url, auth = f"{collection(tenant)}/{vacancy_id}", bearer(keys["operator"])

    changed = vacancies.client.patch(url, json={"title": "Door de regio aangepast"}, headers=auth)
    closed = vacancies.client.delete(url, headers=auth)

    assert changed.status_code == 200
    assert changed.get_json()["employer_id"] == "emp-1"
    assert closed.status_code == 200
    assert closed.get_json()["status"] == "closed"
    last = decode_event(outbox_rows(vacancies)[-1].payload.encode("utf-8"))
    assert last.data == {"employer_id": "emp-1", "status": "closed"}


# --------------------------------------------------------------------------------------------------------
# DELETE closes


def test_delete_closes_the_vacancy_and_emits_closed(vacancies, keys, tenant):
    vacancy_id = post(vacancies, tenant, keys["employer"])["id"]

    response = vacancies.client.delete(f"{collection(tenant)}/{vacancy_id}", headers=bearer(keys["employer"]))

    assert response.status_code == 200
    assert response.get_json()["status"] == "closed"
    read = vacancies.client.get(f"{collection(tenant)}/{vacancy_id}", headers=bearer(keys["employer"]))
    assert read.get_json()["status"] == "closed"
    _posted, closed = outbox_rows(vacancies)
    assert closed.topic == Topic.VACANCY_EVENTS
    assert closed.message_key == f"{tenant}/{vacancy_id}"
    event = decode_event(closed.payload.encode("utf-8"))
    assert event.type == EventType.VACANCY_CLOSED
    assert event.subject == vacancy_id
    assert event.data == {"employer_id": "emp-1", "status": "closed"}


def test_closing_twice_answers_the_closed_vacancy_and_emits_nothing_more(vacancies, keys, tenant):
    vacancy_id = post(vacancies, tenant, keys["employer"])["id"]
    url, auth = f"{collection(tenant)}/{vacancy_id}", bearer(keys["employer"])
    vacancies.client.delete(url, headers=auth)
    before = snapshot(vacancies)

    again = vacancies.client.delete(url, headers=auth)

    assert again.status_code == 200
    assert again.get_json()["status"] == "closed"
    assert snapshot(vacancies) == before


@pytest.mark.parametrize("patch", [{"title": "Toch nog"}, {"status": "open"}, {"status": "filled"}, {}])
def test_a_closed_vacancy_cannot_be_changed(vacancies, keys, tenant, patch):
    vacancy_id = post(vacancies, tenant, keys["employer"])["id"]
    url, auth = f"{collection(tenant)}/{vacancy_id}", bearer(keys["employer"])
    vacancies.client.delete(url, headers=auth)
    before = snapshot(vacancies)

    response = vacancies.client.patch(url, json=patch, headers=auth)

    assert "status" in assert_problem(response, 422)["errors"]
    assert snapshot(vacancies) == before


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("put", "/v1/tenants/{tenant}/vacancies/{vacancy_id}", 405, id="put-not-allowed"),
        pytest.param("get", "/v1/tenants/{tenant}/vacatures", 404, id="unknown-route"),
    ],
)
def test_unknown_routes_and_methods_answer_problem_json(vacancies, keys, tenant, method, path, status):
    vacancy_id = post(vacancies, tenant, keys["employer"])["id"]
    before = snapshot(vacancies)

    response = getattr(vacancies.client, method)(
        path.format(tenant=tenant, vacancy_id=vacancy_id), json=vacancy_body(), headers=bearer(keys["employer"])
    )

    assert_problem(response, status)
    assert snapshot(vacancies) == before


# --------------------------------------------------------------------------------------------------------
# Service endpoints


def test_openapi_lists_the_vacancy_paths_and_healthz_is_ok(vacancies):
    spec = vacancies.client.get("/openapi.json")
    health = vacancies.client.get("/healthz")

    assert spec.status_code == 200
    paths = spec.get_json()["paths"]
    assert {"get", "post"} <= set(paths["/v1/tenants/{tenant}/vacancies"])
    assert {"get", "patch", "delete"} <= set(paths["/v1/tenants/{tenant}/vacancies/{vacancy_id}"])
    assert health.status_code == 200
    assert health.get_json() == {"status": "ok", "service": "vacancy"}
