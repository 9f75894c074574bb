"""The matching API: ranked vacancies for a jobcoach's candidate, anonymous candidates for an employer.

The read models are filled the way the worker fills them, by the service's handlers fed decoded events.
The employer's view is checked for every way a candidate could be identified and for consent.
"""

from __future__ import annotations

import copy
import hashlib
import uuid

import pytest
import sqlalchemy as sa

from services.matching import worker
from services.matching.ranking.engine import MatchingEngine
from services.matching.ranking.rules import DEFAULT_PROPOSAL_THRESHOLD
from shared.events import EventType, decode_event, encode_event, load_example, new_event
from tests.integration.conftest import bearer
from tests.integration.helpers import assert_problem, snapshot

PROBLEM_JSON = "application/problem+json"
ANONYMOUS_FIELDS = {"profile_ref", "score", "talents_matched", "accommodations", "hours", "ladder_step"}


# --------------------------------------------------------------------------------------------------------
# Helpers


def candidate_payload(jobcoach_id: str = "jc-1", **overrides) -> dict:
    """A gardener: quiet workplace essential, 12 to 24 hours, step 3, close to Venlo."""
    data = copy.deepcopy(load_example(EventType.CANDIDATE_REGISTERED)["data"])
    data["jobcoach_id"] = jobcoach_id
    data.update(overrides)
    return data


def vacancy_payload(employer_id: str = "emp-1", **overrides) -> dict:
    """Park maintenance in Venlo offering a quiet workplace and a work buddy, 16 to 24 hours."""
    data = copy.deepcopy(load_example(EventType.VACANCY_POSTED)["data"])
    data["employer_id"] = employer_id
    data.update(overrides)
    return data


def consent(matching: bool, share: bool) -> dict:
    return {"matching": matching, "share_with_employers": share}


@pytest.fixture
def matching(service, keys):
    return service("matching")


@pytest.fixture
def feed(matching, tenant):
    """Hand one event to the matching handlers, as the worker would after decoding it from Kafka."""
    table = worker.handler_table(MatchingEngine.with_fixed_settings(DEFAULT_PROPOSAL_THRESHOLD))

    def deliver(type_name: str, data: dict, subject: str | None = None, region: str | None = None) -> str:
        subject = subject or str(uuid.uuid4())
        document = new_event(type_name, tenant=region or tenant, subject=subject, data=data, source="test")
        event = decode_event(encode_event(document))
        with matching.db.session() as session:
            for handler in table[event.type]:
                handler(session, event)
        return subject

    return deliver


@pytest.fixture
def other_tenant_keys(registry, tenant) -> dict[str, str]:
    """Keys of another region whose subjects carry the same ids as this region's."""
    other = f"{tenant}-b"
    registry.create_tenant(other)
    return {
        "employer": registry.create_key(other, "employer", "emp-1"),
        "jobcoach": registry.create_key(other, "jobcoach", "jc-1"),
    }


def candidate_matches(tenant: str, candidate_id: str) -> str:
    return f"/v1/tenants/{tenant}/candidates/{candidate_id}/matches"


def vacancy_matches(tenant: str, vacancy_id: str) -> str:
    return f"/v1/tenants/{tenant}/vacancies/{vacancy_id}/matches"


def profile_ref(vacancy_id: str, candidate_id: str) -> str:
    return hashlib.sha256(f"{vacancy_id}:{candidate_id}".encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------------
# A candidate's matches, for their jobcoach


def test_a_candidate_in_a_region_without_vacancies_gets_an_empty_list_with_a_reason(matching, feed, keys, tenant):
    candidate_id = feed(EventType.CANDIDATE_REGISTERED, candidate_payload())

    response = matching.client.get(candidate_matches(tenant, candidate_id), headers=bearer(keys["jobcoach"]))

    assert response.status_code == 200
    body = response.get_json()
    assert body["candidate_id"] == candidate_id
    assert body["items"] == []
    assert isinstance(body["reason"], str)
    assert body["reason"]
    assert body["ranking_version"]


def test_another_regions_vacancies_do_not_count(matching, feed, keys, tenant):
    candidate_id = feed(EventType.CANDIDATE_REGISTERED, candidate_payload())
    feed(EventType.VACANCY_POSTED, vacancy_payload(), region=f"{tenant}-b")

    body = matching.client.get(candidate_matches(tenant, candidate_id), headers=bearer(keys["jobcoach"])).get_json()

    assert body["items"] == []
    assert body["reason"]


def test_a_candidate_gets_open_vacancies_best_first_with_score_and_explanation(matching, feed, keys, tenant):
    candidate_id = feed(EventType.CANDIDATE_REGISTERED, candidate_payload())
    garden = feed(EventType.VACANCY_POSTED, vacancy_payload())
    kitchen = feed(
        EventType.VACANCY_POSTED,
        vacancy_payload(
            title="Afwasser",
            description="Afwassen in een drukke keuken.",
            tasks=["afwassen"],
            skills=["schoonmaken"],
            supports_offered=["quiet_workplace"],
        ),
    )

    response = matching.client.get(candidate_matches(tenant, candidate_id), headers=bearer(keys["jobcoach"]))

    assert response.status_code == 200
    body = response.get_json()
    assert body["reason"] is None
    assert [item["vacancy_id"] for item in body["items"]] == [garden, kitchen]
    first, second = body["items"]
    assert first["title"] == "Medewerker groenonderhoud"
    assert 0 <= second["score"] <= first["score"] <= 1
    assert set(first["explanation"]["components"]) == {"talent", "supports", "hours", "ladder", "distance"}
    assert "quiet_workplace" in first["explanation"]["supports"]["essential_met"]
    assert any(pair["talent"] == "planten verzorgen" for pair in first["explanation"]["talents_matched"])


def test_the_limit_caps_the_list(matching, feed, keys, tenant):
    candidate_id = feed(EventType.CANDIDATE_REGISTERED, candidate_payload())
    for _ in range(3):
        feed(EventType.VACANCY_POSTED, vacancy_payload())

    body = matching.client.get(
        candidate_matches(tenant, candidate_id), query_string={"limit": 2}, headers=bearer(keys["jobcoach"])
    ).get_json()

    assert len(body["items"]) == 2


@pytest.mark.parametrize(
    "closing",
    [
        pytest.param({"employer_id": "emp-1", "status": "closed"}, id="closed"),
        pytest.param({"employer_id": "emp-1", "status": "filled"}, id="filled"),
    ],
)
def test_a_vacancy_no_longer_open_is_not_offered(matching, feed, keys, tenant, closing):
    candidate_id = feed(EventType.CANDIDATE_REGISTERED, candidate_payload())
    vacancy_id = feed(EventType.VACANCY_POSTED, vacancy_payload())
    feed(EventType.VACANCY_CLOSED, closing, subject=vacancy_id)

    body = matching.client.get(candidate_matches(tenant, candidate_id), headers=bearer(keys["jobcoach"])).get_json()

    assert body["items"] == []
    assert body["reason"]


def test_a_candidate_whose_essential_needs_nothing_meets_gets_an_empty_list_with_a_reason(matching, feed, keys, tenant):
    needs = [{"code": "wheelchair_access", "level": "essential"}]
    candidate_id = feed(EventType.CANDIDATE_REGISTERED, candidate_payload(support_needs=needs))
    feed(EventType.VACANCY_POSTED, vacancy_payload())

    body = matching.client.get(candidate_matches(tenant, candidate_id), headers=bearer(keys["jobcoach"])).get_json()

    assert body["items"] == []
    assert body["reason"]
    assert "no open vacancies" not in body["reason"], "the region does have an open vacancy"


def test_a_candidate_without_matching_consent_gets_an_empty_list_with_a_reason(matching, feed, keys, tenant):
    candidate_id = feed(EventType.CANDIDATE_REGISTERED, candidate_payload(consent=consent(False, True)))
    feed(EventType.VACANCY_POSTED, vacancy_payload())

    body = matching.client.get(candidate_matches(tenant, candidate_id), headers=bearer(keys["jobcoach"])).get_json()

    assert body["items"] == []
    assert "consent" in body["reason"]


def test_an_updated_profile_is_what_gets_ranked(matching, feed, keys, tenant):
    candidate_id = feed(EventType.CANDIDATE_REGISTERED, candidate_payload())
    feed(EventType.VACANCY_POSTED, vacancy_payload())
    feed(EventType.CANDIDATE_UPDATED, candidate_payload(hours_min=30, hours_max=40), subject=candidate_id)

    body = matching.client.get(candidate_matches(tenant, candidate_id), headers=bearer(keys["jobcoach"])).get_json()

    assert body["items"] == []


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        ("other-jobcoach", 404),
        ("other-tenant-jobcoach", 404),
        ("employer", 403),
        ("operator", 403),
        ("no-key", 401),
        ("garbage-key", 401),
    ],
)
def test_a_candidates_matches_are_only_for_their_jobcoach(
    matching, feed, keys, other_tenant_keys, tenant, caller, status
):
    candidate_id = feed(EventType.CANDIDATE_REGISTERED, candidate_payload())
    feed(EventType.VACANCY_POSTED, vacancy_payload())
    headers = {
        "other-jobcoach": bearer(keys["jobcoach2"]),
        "other-tenant-jobcoach": bearer(other_tenant_keys["jobcoach"]),
        "employer": bearer(keys["employer"]),
        "operator": bearer(keys["operator"]),
        "no-key": {},
        "garbage-key": bearer("wbk_" + "q" * 43),
    }[caller]

    response = matching.client.get(candidate_matches(tenant, candidate_id), headers=headers)

    assert_problem(response, status)
    assert "Medewerker groenonderhoud" not in response.get_data(as_text=True)


def test_an_unknown_or_erased_candidate_is_404(matching, feed, keys, tenant):
    erased = feed(EventType.CANDIDATE_REGISTERED, candidate_payload())
    feed(EventType.CANDIDATE_ERASED, {"jobcoach_id": "jc-1"}, subject=erased)
    auth = bearer(keys["jobcoach"])

    assert_problem(matching.client.get(candidate_matches(tenant, erased), headers=auth), 404)
    assert_problem(matching.client.get(candidate_matches(tenant, str(uuid.uuid4())), headers=auth), 404)


@pytest.mark.parametrize("limit", [0, 51, -1, "tien"])
def test_a_bad_limit_is_422_naming_it(matching, feed, keys, tenant, limit):
    candidate_id = feed(EventType.CANDIDATE_REGISTERED, candidate_payload())

    response = matching.client.get(
        candidate_matches(tenant, candidate_id), query_string={"limit": limit}, headers=bearer(keys["jobcoach"])
    )

    assert "limit" in assert_problem(response, 422)["errors"]


# --------------------------------------------------------------------------------------------------------
# A vacancy's candidates, anonymous, for its employer


def test_the_employer_sees_only_consenting_candidates_and_never_who_they_are(matching, feed, keys, tenant):
    sharing = feed(EventType.CANDIDATE_REGISTERED, candidate_payload(consent=consent(True, True)))
    not_sharing = feed(EventType.CANDIDATE_REGISTERED, candidate_payload(consent=consent(True, False)))
    no_matching = feed(EventType.CANDIDATE_REGISTERED, candidate_payload(consent=consent(False, True)))
    vacancy_id = feed(EventType.VACANCY_POSTED, vacancy_payload())

    response = matching.client.get(vacancy_matches(tenant, vacancy_id), headers=bearer(keys["employer"]))

    assert response.status_code == 200
    body = response.get_json()
    assert body["vacancy_id"] == vacancy_id
    assert body["reason"] is None
    (item,) = body["items"]
    assert set(item) == ANONYMOUS_FIELDS
    assert item["profile_ref"] == profile_ref(vacancy_id, sharing)
    assert item["hours"] == {"min": 12, "max": 24}
    assert item["ladder_step"] == 3
    assert {need["code"] for need in item["accommodations"]} == {"quiet_workplace", "work_buddy"}
    assert all(need["label"] for need in item["accommodations"])
    text = response.get_data(as_text=True)
    for secret in (sharing, not_sharing, no_matching, "candidate_id", "display_name", "jobcoach_id", "jc-1"):
        assert secret not in text


def test_the_profile_reference_differs_per_vacancy(matching, feed, keys, tenant):
    feed(EventType.CANDIDATE_REGISTERED, candidate_payload())
    first = feed(EventType.VACANCY_POSTED, vacancy_payload())
    second = feed(EventType.VACANCY_POSTED, vacancy_payload())
    auth = bearer(keys["employer"])

    refs = [
        matching.client.get(vacancy_matches(tenant, vacancy_id), headers=auth).get_json()["items"][0]["profile_ref"]
        for vacancy_id in (first, second)
    ]

    assert refs[0] != refs[1]


def test_a_vacancy_without_consenting_candidates_gets_an_empty_list_with_a_reason(matching, feed, keys, tenant):
    feed(EventType.CANDIDATE_REGISTERED, candidate_payload(consent=consent(True, False)))
    vacancy_id = feed(EventType.VACANCY_POSTED, vacancy_payload())

    body = matching.client.get(vacancy_matches(tenant, vacancy_id), headers=bearer(keys["employer"])).get_json()

    assert body["items"] == []
    assert body["reason"]


def test_an_erased_candidate_leaves_the_employers_list(matching, feed, keys, tenant):
    candidate_id = feed(EventType.CANDIDATE_REGISTERED, candidate_payload())
    vacancy_id = feed(EventType.VACANCY_POSTED, vacancy_payload())
    feed(EventType.CANDIDATE_ERASED, {"jobcoach_id": "jc-1"}, subject=candidate_id)

    body = matching.client.get(vacancy_matches(tenant, vacancy_id), headers=bearer(keys["employer"])).get_json()

    assert body["items"] == []


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        ("other-employer", 404),
        ("other-tenant-employer", 404),
        ("jobcoach", 403),
        ("operator", 403),
        ("no-key", 401),
        ("garbage-key", 401),
    ],
)
def test_a_vacancys_matches_are_only_for_its_employer(matching, feed, keys, other_tenant_keys, tenant, caller, status):
    feed(EventType.CANDIDATE_REGISTERED, candidate_payload())
    vacancy_id = feed(EventType.VACANCY_POSTED, vacancy_payload())
    headers = {
        "other-employer": bearer(keys["employer2"]),
        "other-tenant-employer": bearer(other_tenant_keys["employer"]),
        "jobcoach": bearer(keys["jobcoach"]),
        "operator": bearer(keys["operator"]),
        "no-key": {},
        "garbage-key": bearer("wbk_" + "q" * 43),
    }[caller]

    response = matching.client.get(vacancy_matches(tenant, vacancy_id), headers=headers)

    assert_problem(response, status)
    assert "profile_ref" not in response.get_data(as_text=True)


def test_an_unknown_vacancy_is_404(matching, keys, tenant):
    response = matching.client.get(vacancy_matches(tenant, str(uuid.uuid4())), headers=bearer(keys["employer"]))

    assert_problem(response, 404)


# --------------------------------------------------------------------------------------------------------
# Side effects


AUDIT_TABLES = {"ranking_log", "exposure_counts", "audit_log"}


def test_reading_matches_changes_nothing_but_the_audit_trail(matching, feed, keys, tenant):
    candidate_id = feed(EventType.CANDIDATE_REGISTERED, candidate_payload())
    vacancy_id = feed(EventType.VACANCY_POSTED, vacancy_payload())
    before = snapshot(matching)

    matching.client.get(candidate_matches(tenant, candidate_id), headers=bearer(keys["jobcoach"]))
    matching.client.get(vacancy_matches(tenant, vacancy_id), headers=bearer(keys["employer"]))

    after = snapshot(matching)
    assert {name: rows for name, rows in after.items() if name not in AUDIT_TABLES} == {
        name: rows for name, rows in before.items() if name not in AUDIT_TABLES
    }
    assert len(after["ranking_log"]) == len(before["ranking_log"]) + 2
    # The jobcoach read about one candidate; the employer's anonymous profiles name none.
    assert [row[5:7] for row in after["audit_log"]] == [("read", candidate_id)]


def test_posting_a_fitting_vacancy_proposes_the_candidate_to_their_jobcoach_once(matching, feed, keys, tenant):
    candidate_id = feed(EventType.CANDIDATE_REGISTERED, candidate_payload())
    vacancy_id = feed(EventType.VACANCY_POSTED, vacancy_payload())
    feed(EventType.VACANCY_UPDATED, vacancy_payload(), subject=vacancy_id)

    table = matching.store.outbox.table
    with matching.db.session() as session:
        (row,) = session.execute(sa.select(table)).all()
    event = decode_event(row.payload.encode("utf-8"))
    assert event.type == EventType.MATCH_PROPOSED
    assert row.message_key == f"{tenant}/{candidate_id}"
    assert (event.data["candidate_id"], event.data["vacancy_id"]) == (candidate_id, vacancy_id)
    assert event.data["jobcoach_id"] == "jc-1"
    assert event.data["score"] >= DEFAULT_PROPOSAL_THRESHOLD


# --------------------------------------------------------------------------------------------------------
# Service endpoints


def test_openapi_lists_the_matching_paths_and_healthz_is_ok(matching):
    spec = matching.client.get("/openapi.json")
    health = matching.client.get("/healthz")

    assert spec.status_code == 200
    paths = spec.get_json()["paths"]
    assert "get" in paths["/v1/tenants/{tenant}/candidates/{candidate_id}/matches"]
    assert "get" in paths["/v1/tenants/{tenant}/vacancies/{vacancy_id}/matches"]
    assert health.status_code == 200
    assert health.get_json() == {"status": "ok", "service": "matching"}
