"""The caseload, handover and history paths of the candidate API: who may ask, what they get, and that a
refusal changes nothing (every table checked, outbox included).

The consent and ladder histories are filled here by registrations and PATCHes; the entries that events
add (a placement's end, an answered introduction) are checked in test_candidate_events_in_memory.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from shared.events import EventType, decode_event
from shared.topics import Topic
from tests.integration.conftest import bearer
from tests.integration.helpers import assert_problem, outbox_rows, snapshot
from tests.integration.test_candidate_api import PSEUDONYM, candidate_body, collection, register

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def candidates(service, keys):
    return service("candidate")


@pytest.fixture
def council_key(registry, tenant, keys) -> str:
    return registry.create_key(tenant, "council", None)


@pytest.fixture
def other_tenant_keys(registry, tenant) -> dict[str, str]:
    """Keys of another region whose subjects carry the same ids as this region's."""
    other = f"{tenant}-b"
    registry.create_tenant(other)
    return {
        "jobcoach": registry.create_key(other, "jobcoach", "jc-1"),
        "operator": registry.create_key(other, "operator", None),
    }


def set_updated_at(candidates, tenant: str, candidate_id: str, when: datetime) -> None:
    table = candidates.store.candidates
    with candidates.db.session() as session:
        session.execute(
            table.update().where(table.c.tenant == tenant, table.c.id == candidate_id).values(updated_at=when)
        )


def history(candidates, candidate_id: str) -> list[dict]:
    table = candidates.store.candidate_history
    with candidates.db.session() as session:
        query = sa.select(table).where(table.c.candidate_id == candidate_id).order_by(table.c.id)
        return [row._asdict() for row in session.execute(query)]


def listed(candidates, tenant, key, **params) -> dict:
    response = candidates.client.get(collection(tenant), query_string=params, headers=bearer(key))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def ids(page: dict) -> list[str]:
    return [item["id"] for item in page["items"]]


def hand_over(candidates, tenant, key, candidate_id, jobcoach_id="jc-2"):
    return candidates.client.post(
        f"{collection(tenant)}/{candidate_id}/handover", json={"jobcoach_id": jobcoach_id}, headers=bearer(key)
    )


def patch(candidates, tenant, key, candidate_id, **fields):
    response = candidates.client.patch(f"{collection(tenant)}/{candidate_id}", json=fields, headers=bearer(key))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def entries(candidates, tenant, key, candidate_id, which: str, **params) -> dict:
    response = candidates.client.get(
        f"{collection(tenant)}/{candidate_id}/{which}", query_string=params, headers=bearer(key)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


# --------------------------------------------------------------------------------------------------------
# The caseload list


def test_a_jobcoach_lists_their_own_candidates_and_an_operator_the_regions(candidates, keys, tenant):
    mine = [register(candidates, tenant, keys["jobcoach"])["id"] for _ in range(2)]
    theirs = register(candidates, tenant, keys["jobcoach2"])["id"]

    own = listed(candidates, tenant, keys["jobcoach"])
    region = listed(candidates, tenant, keys["operator"])

    assert sorted(ids(own)) == sorted(mine)
    assert own["total"] == 2
    assert {item["jobcoach_id"] for item in own["items"]} == {"jc-1"}
    assert own["items"][0]["display_name"] == PSEUDONYM, "the caseload is the jobcoach's own working list"
    assert sorted(ids(region)) == sorted([*mine, theirs])
    assert ids(listed(candidates, tenant, keys["operator"], jobcoach_id="jc-2")) == [theirs]
    assert ids(listed(candidates, tenant, keys["jobcoach2"], jobcoach_id="jc-2")) == [theirs]
    assert listed(candidates, tenant, keys["operator"], jobcoach_id="jc-nobody")["items"] == []


def test_the_caseload_puts_the_longest_unchanged_first_and_pages_without_overlap(candidates, keys, tenant):
    registered = [register(candidates, tenant, keys["jobcoach"])["id"] for _ in range(5)]
    # Two share a moment, so that the order between them comes from the id alone.
    moments = [T0 + timedelta(days=3), T0, T0 + timedelta(days=1), T0 + timedelta(days=1), T0 + timedelta(days=2)]
    for candidate_id, when in zip(registered, moments, strict=True):
        set_updated_at(candidates, tenant, candidate_id, when)
    expected = [candidate_id for _, candidate_id in sorted(zip(moments, registered, strict=True))]

    pages = [listed(candidates, tenant, keys["jobcoach"], page=page, page_size=2) for page in (1, 2, 3)]

    assert [ids(page) for page in pages] == [expected[0:2], expected[2:4], expected[4:]]
    assert {(page["total"], page["page_size"]) for page in pages} == {(5, 2)}
    assert [page["page"] for page in pages] == [1, 2, 3]


def test_updated_since_lists_only_the_candidates_changed_from_then_on(candidates, keys, tenant):
    old, new, edge = (register(candidates, tenant, keys["jobcoach"])["id"] for _ in range(3))
    set_updated_at(candidates, tenant, old, T0 - timedelta(seconds=1))
    set_updated_at(candidates, tenant, edge, T0)
    set_updated_at(candidates, tenant, new, T0 + timedelta(hours=5))

    in_utc = listed(candidates, tenant, keys["operator"], updated_since=T0.isoformat())
    # The same moment in Dutch winter time: an aware datetime means the same instant in any offset.
    in_amsterdam = listed(candidates, tenant, keys["jobcoach"], updated_since="2026-11-02T10:00:00+01:00")

    assert ids(in_utc) == ids(in_amsterdam) == [edge, new]
    assert in_utc["total"] == 2


def test_a_change_brings_a_candidate_into_updated_since(candidates, keys, tenant):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    set_updated_at(candidates, tenant, candidate_id, T0)
    since = (T0 + timedelta(days=1)).isoformat()
    assert ids(listed(candidates, tenant, keys["jobcoach"], updated_since=since)) == []

    patch(candidates, tenant, keys["jobcoach"], candidate_id, hours_max=30)

    assert ids(listed(candidates, tenant, keys["jobcoach"], updated_since=since)) == [candidate_id]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"updated_since": "2026-11-02T09:00:00"}, "updated_since", id="naive-datetime"),
        pytest.param({"updated_since": "gisteren"}, "updated_since", id="not-a-datetime"),
        pytest.param({"jobcoach_id": "jc 2"}, "jobcoach_id", id="jobcoach-id-with-a-space"),
        pytest.param({"jobcoach_id": "x" * 101}, "jobcoach_id", id="jobcoach-id-too-long"),
        pytest.param({"jobcoach_id": "jc-2"}, "jobcoach_id", id="jobcoach-asks-for-another"),
        pytest.param({"page_size": "101"}, "page_size", id="page-too-large"),
        pytest.param({"page": "0"}, "page", id="page-zero"),
        pytest.param({"jobcoach": "jc-1"}, "jobcoach", id="unknown-parameter"),
    ],
)
def test_bad_caseload_queries_are_422_naming_the_parameter(candidates, keys, tenant, params, field):
    register(candidates, tenant, keys["jobcoach"])

    response = candidates.client.get(collection(tenant), query_string=params, headers=bearer(keys["jobcoach"]))

    body = assert_problem(response, 422)
    assert field in str(body["errors"]), body["errors"]
    assert PSEUDONYM not in response.get_data(as_text=True)


# --------------------------------------------------------------------------------------------------------
# Handover


def test_a_handover_moves_the_candidate_and_tells_the_others_in_one_updated_event(candidates, keys, tenant):
    created = register(candidates, tenant, keys["jobcoach"])
    url = f"{collection(tenant)}/{created['id']}"

    response = hand_over(candidates, tenant, keys["operator"], created["id"])

    assert response.status_code == 200, response.get_data(as_text=True)
    moved = response.get_json()
    assert moved["jobcoach_id"] == "jc-2"
    assert {k: v for k, v in moved.items() if k not in ("jobcoach_id", "updated_at")} == {
        k: v for k, v in created.items() if k not in ("jobcoach_id", "updated_at")
    }
    _registered, updated = outbox_rows(candidates, f"{tenant}/{created['id']}")
    event = decode_event(updated.payload.encode("utf-8"))
    assert (event.type, updated.topic) == (EventType.CANDIDATE_UPDATED, Topic.CANDIDATE_EVENTS)
    assert event.data["jobcoach_id"] == "jc-2"
    assert event.data["ladder_step"] == created["ladder_step"]
    assert PSEUDONYM not in updated.payload
    [entry] = [row for row in history(candidates, created["id"]) if row["kind"] == "handover"]
    assert entry["recorded_by"] == "operator"
    assert entry["details"] == {"from_jobcoach_id": "jc-1", "to_jobcoach_id": "jc-2"}
    assert entry["recorded_at"].isoformat() == moved["updated_at"]

    # The former jobcoach loses sight at once, on every path; the new one sees the candidate.
    old, new = bearer(keys["jobcoach"]), bearer(keys["jobcoach2"])
    for method, path, kwargs in (
        ("get", url, {}),
        ("patch", url, {"json": {"hours_max": 30}}),
        ("delete", url, {}),
        ("get", f"{url}/consent", {}),
        ("get", f"{url}/ladder", {}),
    ):
        assert_problem(getattr(candidates.client, method)(path, headers=old, **kwargs), 404)
    assert ids(listed(candidates, tenant, keys["jobcoach"])) == []
    assert ids(listed(candidates, tenant, keys["jobcoach2"])) == [created["id"]]
    assert candidates.client.get(url, headers=new).get_json()["jobcoach_id"] == "jc-2"


def test_a_candidate_can_be_handed_back(candidates, keys, tenant):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    assert hand_over(candidates, tenant, keys["operator"], candidate_id, "jc-2").status_code == 200

    back = hand_over(candidates, tenant, keys["operator"], candidate_id, "jc-1")

    assert back.get_json()["jobcoach_id"] == "jc-1"
    moves = [row["details"] for row in history(candidates, candidate_id) if row["kind"] == "handover"]
    assert moves == [
        {"from_jobcoach_id": "jc-1", "to_jobcoach_id": "jc-2"},
        {"from_jobcoach_id": "jc-2", "to_jobcoach_id": "jc-1"},
    ]


def _raw(text: str) -> dict:
    return {"data": text, "content_type": "application/json"}


@pytest.mark.parametrize(
    ("request_kwargs", "status", "field"),
    [
        pytest.param({"json": {"jobcoach_id": "jc-1"}}, 422, "jobcoach_id", id="same-jobcoach"),
        pytest.param({"json": {"jobcoach_id": "jc 2"}}, 422, "jobcoach_id", id="space-in-id"),
        pytest.param({"json": {"jobcoach_id": "-jc-2"}}, 422, "jobcoach_id", id="leading-dash"),
        pytest.param({"json": {"jobcoach_id": "jc/2"}}, 422, "jobcoach_id", id="slash-in-id"),
        pytest.param({"json": {"jobcoach_id": "jc-\u00e9"}}, 422, "jobcoach_id", id="non-ascii-id"),
        pytest.param({"json": {"jobcoach_id": "jc-2\u0000"}}, 422, "jobcoach_id", id="nul-in-id"),
        pytest.param({"json": {"jobcoach_id": "x" * 101}}, 422, "jobcoach_id", id="id-too-long"),
        pytest.param({"json": {"jobcoach_id": ""}}, 422, "jobcoach_id", id="empty-id"),
        pytest.param({"json": {"jobcoach_id": None}}, 422, "jobcoach_id", id="null-id"),
        pytest.param({"json": {"jobcoach_id": 2}}, 422, "jobcoach_id", id="number-id"),
        pytest.param({"json": {}}, 422, "jobcoach_id", id="no-id"),
        pytest.param({"json": {"jobcoach_id": "jc-2", "reason": "ziek"}}, 422, "reason", id="unknown-field"),
        pytest.param({"json": ["jc-2"]}, 422, "_schema", id="list-instead-of-object"),
        pytest.param(_raw('{"jobcoach_id": '), 400, None, id="malformed-json"),
    ],
)
def test_bad_handovers_are_refused_field_by_field_and_change_nothing(
    candidates, keys, tenant, request_kwargs, status, field
):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    before = snapshot(candidates)

    response = candidates.client.post(
        f"{collection(tenant)}/{candidate_id}/handover", headers=bearer(keys["operator"]), **request_kwargs
    )

    body = assert_problem(response, status)
    if field is not None:
        assert field in body["errors"], body["errors"]
    assert snapshot(candidates) == before


def test_handing_over_an_unknown_or_erased_candidate_is_404(candidates, keys, tenant):
    erased = register(candidates, tenant, keys["jobcoach"])["id"]
    candidates.client.delete(f"{collection(tenant)}/{erased}", headers=bearer(keys["jobcoach"]))
    before = snapshot(candidates)

    for candidate_id in (str(uuid.uuid4()), erased):
        assert_problem(hand_over(candidates, tenant, keys["operator"], candidate_id), 404)

    assert snapshot(candidates) == before


# --------------------------------------------------------------------------------------------------------
# Consent and ladder histories


def test_registration_records_the_first_consent_and_step_by_the_jobcoach(candidates, keys, tenant):
    created = register(candidates, tenant, keys["jobcoach"], consent={"matching": True, "share_with_employers": False})

    consent = entries(candidates, tenant, keys["jobcoach"], created["id"], "consent")
    ladder = entries(candidates, tenant, keys["operator"], created["id"], "ladder")

    [given] = consent["items"]
    assert given["type"] == "consent"
    assert given["reason"] == "registered"
    assert given["consent"] == {"matching": True, "share_with_employers": False}
    assert given["previous"] is None
    assert given["introduction_id"] is None
    assert given["recorded_by"] == "jc-1"
    assert given["recorded_at"] == created["created_at"]
    [first_step] = ladder["items"]
    assert (first_step["step"], first_step["previous_step"], first_step["reason"]) == (3, None, "registered")
    assert first_step["recorded_by"] == "jc-1"
    assert consent["total"] == ladder["total"] == 1


def test_each_consent_change_is_recorded_newest_first_with_who_made_it(candidates, keys, tenant):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    patch(candidates, tenant, keys["jobcoach"], candidate_id, hours_max=30)
    patch(candidates, tenant, keys["jobcoach"], candidate_id, consent={"matching": True, "share_with_employers": False})
    patch(
        candidates, tenant, keys["operator"], candidate_id, consent={"matching": False, "share_with_employers": False}
    )
    patch(
        candidates, tenant, keys["operator"], candidate_id, consent={"matching": False, "share_with_employers": False}
    )

    consent = entries(candidates, tenant, keys["jobcoach"], candidate_id, "consent")

    assert consent["total"] == 3, "the hours and the unchanged consent leave no entry"
    assert [(item["reason"], item["recorded_by"]) for item in consent["items"]] == [
        ("changed", "operator"),
        ("changed", "jc-1"),
        ("registered", "jc-1"),
    ]
    newest = consent["items"][0]
    assert newest["consent"] == {"matching": False, "share_with_employers": False}
    assert newest["previous"] == {"matching": True, "share_with_employers": False}
    times = [item["recorded_at"] for item in consent["items"]]
    assert times == sorted(times, reverse=True)


def test_each_step_change_is_recorded_and_other_changes_are_not(candidates, keys, tenant):
    candidate_id = register(candidates, tenant, keys["jobcoach"], ladder_step=2)["id"]
    patch(candidates, tenant, keys["jobcoach"], candidate_id, ladder_step=3, talents=["koken"])
    patch(candidates, tenant, keys["jobcoach"], candidate_id, talents=["schoonmaken"])
    patch(candidates, tenant, keys["operator"], candidate_id, ladder_step=2)

    ladder = entries(candidates, tenant, keys["jobcoach"], candidate_id, "ladder")

    assert [(item["step"], item["previous_step"], item["recorded_by"]) for item in ladder["items"]] == [
        (2, 3, "operator"),
        (3, 2, "jc-1"),
        (2, None, "jc-1"),
    ]
    assert {item["reason"] for item in ladder["items"][:2]} == {"changed"}
    assert all(item["placement_id"] is None for item in ladder["items"])


def test_a_refused_patch_leaves_no_history(candidates, keys, tenant):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    before = snapshot(candidates)

    response = candidates.client.patch(
        f"{collection(tenant)}/{candidate_id}",
        json={"ladder_step": 4, "hours_max": 2},
        headers=bearer(keys["jobcoach"]),
    )

    assert_problem(response, 422)
    assert snapshot(candidates) == before


@pytest.mark.parametrize("which", ["consent", "ladder"])
def test_histories_are_paged(candidates, keys, tenant, which):
    candidate_id = register(candidates, tenant, keys["jobcoach"], ladder_step=1)["id"]
    for step in (2, 3, 4):
        patch(
            candidates,
            tenant,
            keys["jobcoach"],
            candidate_id,
            ladder_step=step,
            consent={"matching": step % 2 == 1, "share_with_employers": True},
        )

    everything = entries(candidates, tenant, keys["jobcoach"], candidate_id, which, page_size=100)["items"]
    pages = [
        entries(candidates, tenant, keys["jobcoach"], candidate_id, which, page=page, page_size=3) for page in (1, 2, 3)
    ]

    assert len(everything) == 4
    assert [item for page in pages for item in page["items"]] == everything
    assert [len(page["items"]) for page in pages] == [3, 1, 0]
    assert {page["total"] for page in pages} == {4}


@pytest.mark.parametrize("which", ["consent", "ladder"])
@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"page_size": "0"}, "page_size", id="page-size-zero"),
        pytest.param({"page": "een"}, "page", id="page-not-a-number"),
        pytest.param({"since": "2026-11-01T00:00:00Z"}, "since", id="unknown-parameter"),
    ],
)
def test_bad_history_queries_are_422_naming_the_parameter(candidates, keys, tenant, which, params, field):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]

    response = candidates.client.get(
        f"{collection(tenant)}/{candidate_id}/{which}", query_string=params, headers=bearer(keys["jobcoach"])
    )

    assert field in str(assert_problem(response, 422)["errors"])


@pytest.mark.parametrize("which", ["consent", "ladder"])
def test_the_history_of_an_unknown_candidate_is_404(candidates, keys, tenant, which):
    response = candidates.client.get(f"{collection(tenant)}/{uuid.uuid4()}/{which}", headers=bearer(keys["operator"]))

    assert_problem(response, 404)


# --------------------------------------------------------------------------------------------------------
# Who may act: every new path against every role, another jobcoach and another region


def _caller_headers(keys, other_tenant_keys, council_key, caller: str) -> dict:
    return {
        "no-key": {},
        "employer": bearer(keys["employer"]),
        "own-jobcoach": bearer(keys["jobcoach"]),
        "other-jobcoach": bearer(keys["jobcoach2"]),
        "operator": bearer(keys["operator"]),
        "council": bearer(council_key),
        "other-tenant-jobcoach": bearer(other_tenant_keys["jobcoach"]),
        "other-tenant-operator": bearer(other_tenant_keys["operator"]),
    }[caller]


# For each path: what each caller gets. "list" is the caseload, whose answer for a jobcoach who does not
# hold the candidate is their own (empty) list rather than a refusal.
MATRIX = {
    "list": {
        "no-key": 401,
        "employer": 403,
        "own-jobcoach": 200,
        "other-jobcoach": 200,
        "operator": 200,
        "council": 403,
        "other-tenant-jobcoach": 404,
        "other-tenant-operator": 404,
    },
    "handover": {
        "no-key": 401,
        "employer": 403,
        "own-jobcoach": 403,
        "other-jobcoach": 403,
        "operator": 200,
        "council": 403,
        "other-tenant-jobcoach": 404,
        "other-tenant-operator": 404,
    },
    **{
        which: {
            "no-key": 401,
            "employer": 403,
            "own-jobcoach": 200,
            "other-jobcoach": 404,
            "operator": 200,
            "council": 403,
            "other-tenant-jobcoach": 404,
            "other-tenant-operator": 404,
        }
        for which in ("consent", "ladder")
    },
}


@pytest.mark.parametrize(
    ("path", "caller", "status"),
    [(path, caller, status) for path, answers in MATRIX.items() for caller, status in answers.items()],
)
def test_every_new_path_answers_every_caller_as_the_matrix_says(
    candidates, keys, other_tenant_keys, council_key, tenant, path, caller, status
):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    headers = _caller_headers(keys, other_tenant_keys, council_key, caller)
    before = snapshot(candidates)

    if path == "list":
        response = candidates.client.get(collection(tenant), headers=headers)
    elif path == "handover":
        response = candidates.client.post(
            f"{collection(tenant)}/{candidate_id}/handover", json={"jobcoach_id": "jc-2"}, headers=headers
        )
    else:
        response = candidates.client.get(f"{collection(tenant)}/{candidate_id}/{path}", headers=headers)

    if status != 200:
        assert_problem(response, status)
        assert PSEUDONYM not in response.get_data(as_text=True)
        assert snapshot(candidates) == before
        return
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    if path == "list":
        assert ids(body) == ([candidate_id] if caller in ("own-jobcoach", "operator") else [])
    elif path == "handover":
        assert body["jobcoach_id"] == "jc-2"
    else:
        assert body["total"] == 1
        after = snapshot(candidates)
        # Reading a history changes nothing; the audit log records the read.
        assert [row[5:7] for row in after.pop("audit_log")[len(before.pop("audit_log")) :]] == [("read", candidate_id)]
        assert after == before, "reading a history changes nothing"


@pytest.mark.parametrize(
    ("method", "suffix", "kwargs"),
    [
        ("post", "", {"json": candidate_body()}),
        ("get", "", {}),
        ("get", "/{id}", {}),
        ("patch", "/{id}", {"json": {"hours_max": 30}}),
        ("delete", "/{id}", {}),
        ("post", "/{id}/handover", {"json": {"jobcoach_id": "jc-2"}}),
        ("get", "/{id}/consent", {}),
        ("get", "/{id}/ladder", {}),
    ],
)
def test_a_council_key_gets_403_on_every_candidate_path_and_changes_nothing(
    candidates, keys, council_key, tenant, method, suffix, kwargs
):
    candidate_id = register(candidates, tenant, keys["jobcoach"])["id"]
    before = snapshot(candidates)

    response = getattr(candidates.client, method)(
        collection(tenant) + suffix.format(id=candidate_id), headers=bearer(council_key), **kwargs
    )

    assert_problem(response, 403)
    assert snapshot(candidates) == before


# --------------------------------------------------------------------------------------------------------
# Erasure and the OpenAPI document


def test_erasure_takes_the_candidates_whole_history_along_and_leaves_others(candidates, keys, tenant):
    erased = register(candidates, tenant, keys["jobcoach"])["id"]
    kept = register(candidates, tenant, keys["jobcoach"])["id"]
    for candidate_id in (erased, kept):
        patch(candidates, tenant, keys["jobcoach"], candidate_id, ladder_step=4)
        patch(
            candidates,
            tenant,
            keys["jobcoach"],
            candidate_id,
            consent={"matching": False, "share_with_employers": False},
        )
        assert hand_over(candidates, tenant, keys["operator"], candidate_id).status_code == 200
    kept_history = history(candidates, kept)
    assert {row["kind"] for row in history(candidates, erased)} == {"consent", "ladder", "handover"}

    response = candidates.client.delete(f"{collection(tenant)}/{erased}", headers=bearer(keys["jobcoach2"]))

    assert response.status_code == 204
    assert history(candidates, erased) == []
    assert history(candidates, kept) == kept_history
    erasure, tombstone = outbox_rows(candidates, f"{tenant}/{erased}")
    assert decode_event(erasure.payload.encode("utf-8")).data == {"jobcoach_id": "jc-2"}
    assert (tombstone.payload, tombstone.topic) == (None, Topic.CANDIDATE_EVENTS)


def test_openapi_lists_the_new_paths(candidates):
    paths = candidates.client.get("/openapi.json").get_json()["paths"]
    base = "/v1/tenants/{tenant}/candidates"

    assert {"get", "post"} <= set(paths[base])
    assert {parameter["name"] for parameter in paths[base]["get"]["parameters"]} >= {
        "jobcoach_id",
        "updated_since",
        "page",
        "page_size",
    }
    assert "post" in paths[f"{base}/{{candidate_id}}/handover"]
    assert "get" in paths[f"{base}/{{candidate_id}}/consent"]
    assert "get" in paths[f"{base}/{{candidate_id}}/ladder"]
