"""Interest and introductions on a real database: an employer's interest in a current match, the
candidate's answer through their jobcoach, what each side reads, consent withdrawn and erasure; every new
path against every role and another region."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest

from services.matching import worker
from services.matching.app import create_app
from services.matching.context import MatchingContext
from services.matching.ranking.engine import MatchingEngine
from services.matching.ranking.rules import DEFAULT_PROPOSAL_THRESHOLD
from shared.clock import FakeClock
from shared.events import EventType, decode_event, encode_event, new_event
from tests.integration.conftest import bearer
from tests.integration.helpers import assert_problem, outbox_rows, snapshot
from tests.integration.test_matching_api import candidate_payload, consent, profile_ref, vacancy_payload
from tests.integration.test_placements_api import outbox_events

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


@pytest.fixture
def matching(service, keys):
    svc = service("matching")
    svc.context = MatchingContext.around(dataclasses.replace(svc.context, clock=FakeClock(NOW)))
    svc.client = create_app(svc.context).test_client()
    return svc


@pytest.fixture
def feed(matching, tenant):
    """Hand one event to the worker's handler table, as the consumer would after decoding it."""
    table = worker.handler_table(MatchingEngine.with_fixed_settings(DEFAULT_PROPOSAL_THRESHOLD))

    def deliver(type_name: str, data: dict, subject: str | None = None) -> str:
        subject = subject or str(uuid.uuid4())
        event = decode_event(encode_event(new_event(type_name, tenant=tenant, subject=subject, data=data, source="t")))
        with matching.db.session() as session:
            for handler in table[event.type]:
                handler(session, event)
        return subject

    return deliver


@pytest.fixture
def all_keys(keys, registry, tenant) -> dict[str, str]:
    other = f"{tenant}-b"
    registry.create_tenant(other)
    return {
        **keys,
        "council": registry.create_key(tenant, "council", None),
        "foreign_employer": registry.create_key(other, "employer", "emp-1"),
        "foreign_jobcoach": registry.create_key(other, "jobcoach", "jc-1"),
    }


@pytest.fixture
def pair(feed):
    candidate_id = feed(EventType.CANDIDATE_REGISTERED, candidate_payload(consent=consent(True, True)))
    vacancy_id = feed(EventType.VACANCY_POSTED, vacancy_payload())
    return candidate_id, vacancy_id


def interest(matching, tenant, key, vacancy_id, ref):
    return matching.client.post(
        f"/v1/tenants/{tenant}/vacancies/{vacancy_id}/interest", json={"profile_ref": ref}, headers=bearer(key)
    )


def interested(matching, tenant, keys, pair) -> dict:
    candidate_id, vacancy_id = pair
    response = interest(matching, tenant, keys["employer"], vacancy_id, profile_ref(vacancy_id, candidate_id))
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def answer(matching, tenant, key, introduction_id, verb):
    return matching.client.post(f"/v1/tenants/{tenant}/introductions/{introduction_id}/{verb}", headers=bearer(key))


def test_interest_in_a_current_match_opens_a_pending_introduction_and_tells_the_jobcoach(matching, tenant, keys, pair):
    candidate_id, vacancy_id = pair
    ref = profile_ref(vacancy_id, candidate_id)

    response = interest(matching, tenant, keys["employer"], vacancy_id, ref)

    assert response.status_code == 201
    body = response.get_json()
    assert body["status"] == "pending"
    assert body["vacancy_id"] == vacancy_id
    assert body["profile_ref"] == ref
    assert body["created_at"].startswith("2026-11-30T10:00")
    assert response.headers["Location"].endswith(f"/vacancies/{vacancy_id}/introductions")
    assert candidate_id not in response.get_data(as_text=True)
    (event,) = outbox_events(matching, EventType.INTRODUCTION_REQUESTED)
    assert event.subject == body["id"]
    assert event.data["candidate_id"] == candidate_id
    assert event.data["jobcoach_id"] == "jc-1"
    assert event.data["employer_id"] == "emp-1"


def test_a_second_interest_while_one_is_pending_is_409_and_changes_nothing(matching, tenant, keys, pair):
    candidate_id, vacancy_id = pair
    interested(matching, tenant, keys, pair)
    before = snapshot(matching)

    response = interest(matching, tenant, keys["employer"], vacancy_id, profile_ref(vacancy_id, candidate_id))

    assert_problem(response, 409)
    after = snapshot(matching)
    # Ranking again writes its audit trail; nothing else may change.
    for table in ("introductions", "outbox"):
        assert after[table] == before[table]


def test_interest_in_a_profile_no_longer_matching_is_409(matching, feed, tenant, keys, pair):
    candidate_id, vacancy_id = pair
    feed(EventType.CANDIDATE_UPDATED, candidate_payload(consent=consent(True, False)), subject=candidate_id)

    response = interest(matching, tenant, keys["employer"], vacancy_id, profile_ref(vacancy_id, candidate_id))

    assert_problem(response, 409)
    assert outbox_events(matching, EventType.INTRODUCTION_REQUESTED) == []


def test_a_made_up_profile_ref_is_409_and_a_malformed_body_is_422_field_by_field(matching, tenant, keys, pair):
    _, vacancy_id = pair
    assert_problem(interest(matching, tenant, keys["employer"], vacancy_id, uuid.uuid4().hex[:16]), 409)
    body = assert_problem(interest(matching, tenant, keys["employer"], vacancy_id, "not a ref"), 422)
    assert "profile_ref" in body["errors"]
    extra = matching.client.post(
        f"/v1/tenants/{tenant}/vacancies/{vacancy_id}/interest",
        json={"profile_ref": "0" * 16, "candidate_id": "x"},
        headers=bearer(keys["employer"]),
    )
    assert "candidate_id" in assert_problem(extra, 422)["errors"]


def test_accepting_records_who_and_when_and_shows_the_employer_the_jobcoachs_work_email(
    matching,
    feed,
    tenant,
    keys,
    pair,
):
    introduction = interested(matching, tenant, keys, pair)
    feed(EventType.JOBCOACH_CHANNELS_CHANGED, {"jobcoach_id": "jc-1", "work_email": "coach@werk.example"})

    response = answer(matching, tenant, keys["jobcoach"], introduction["id"], "accept")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "accepted"
    assert body["answered_by"] == "jc-1"
    (event,) = outbox_events(matching, EventType.INTRODUCTION_ACCEPTED)
    assert event.data["recorded_by"] == "jc-1"
    assert event.data["recorded_at"] == NOW
    listed = matching.client.get(
        f"/v1/tenants/{tenant}/vacancies/{pair[1]}/introductions", headers=bearer(keys["employer"])
    ).get_json()
    (item,) = listed["items"]
    assert item["status"] == "accepted"
    assert item["contact"] == {"work_email": "coach@werk.example", "how": "e-mail the jobcoach"}
    assert pair[0] not in str(listed)
    assert_problem(answer(matching, tenant, keys["jobcoach"], introduction["id"], "decline"), 409)


def test_without_a_work_email_the_employer_is_sent_to_the_service_desk(matching, tenant, keys, pair):
    introduction = interested(matching, tenant, keys, pair)
    answer(matching, tenant, keys["jobcoach"], introduction["id"], "accept")

    items = matching.client.get(f"/v1/tenants/{tenant}/introductions", headers=bearer(keys["employer"])).get_json()
    assert items["items"][0]["contact"] == {"work_email": None, "how": "via the region's service desk"}


def test_a_declined_introduction_shows_the_employer_only_not_now(matching, tenant, keys, pair):
    introduction = interested(matching, tenant, keys, pair)
    assert answer(matching, tenant, keys["jobcoach"], introduction["id"], "decline").status_code == 200
    (event,) = outbox_events(matching, EventType.INTRODUCTION_DECLINED)
    assert event.data["recorded_by"] == "jc-1"

    items = matching.client.get(f"/v1/tenants/{tenant}/introductions", headers=bearer(keys["employer"])).get_json()
    (item,) = items["items"]
    assert item["status"] == "not now"
    assert item["contact"] is None and item["answered_at"] is None
    assert "candidate_id" not in item and "answered_by" not in item


def test_the_jobcoach_lists_their_candidates_introductions_with_candidate_and_vacancy(matching, tenant, keys, pair):
    introduction = interested(matching, tenant, keys, pair)

    mine = matching.client.get(f"/v1/tenants/{tenant}/introductions", headers=bearer(keys["jobcoach"])).get_json()
    theirs = matching.client.get(f"/v1/tenants/{tenant}/introductions", headers=bearer(keys["jobcoach2"])).get_json()
    other_employer = matching.client.get(
        f"/v1/tenants/{tenant}/introductions", headers=bearer(keys["employer2"])
    ).get_json()

    (item,) = mine["items"]
    assert item["id"] == introduction["id"]
    assert item["candidate_id"] == pair[0]
    assert item["vacancy_id"] == pair[1]
    assert item["vacancy_title"]
    assert mine["total"] == 1
    assert theirs["items"] == [] and other_employer["items"] == []


def test_after_a_handover_only_the_new_jobcoach_answers(matching, feed, tenant, keys, pair):
    introduction = interested(matching, tenant, keys, pair)
    feed(EventType.CANDIDATE_UPDATED, candidate_payload("jc-2", consent=consent(True, True)), subject=pair[0])

    assert_problem(answer(matching, tenant, keys["jobcoach"], introduction["id"], "accept"), 404)
    assert answer(matching, tenant, keys["jobcoach2"], introduction["id"], "accept").status_code == 200


def test_withdrawing_sharing_cancels_the_pending_interest_at_once(matching, feed, tenant, keys, pair):
    introduction = interested(matching, tenant, keys, pair)
    feed(EventType.CANDIDATE_UPDATED, candidate_payload(consent=consent(True, False)), subject=pair[0])

    mine = matching.client.get(f"/v1/tenants/{tenant}/introductions", headers=bearer(keys["jobcoach"])).get_json()
    assert mine["items"][0]["status"] == "cancelled"
    assert_problem(answer(matching, tenant, keys["jobcoach"], introduction["id"], "accept"), 409)
    employer = matching.client.get(f"/v1/tenants/{tenant}/introductions", headers=bearer(keys["employer"])).get_json()
    assert employer["items"][0]["status"] == "not now"


@pytest.mark.parametrize("relayed", [False, True], ids=["unsent", "sent"])
def test_erasure_deletes_the_candidates_introductions_and_their_outbox_rows(
    matching,
    feed,
    tenant,
    keys,
    pair,
    relayed,
):
    introduction = interested(matching, tenant, keys, pair)
    assert outbox_rows(matching, f"{tenant}/{introduction['id']}")
    if relayed:
        with matching.db.session() as session:
            session.execute(matching.store.outbox.table.update().values(published_at=datetime.now(UTC)))
    feed(EventType.CANDIDATE_ERASED, {"jobcoach_id": "jc-1"}, subject=pair[0])

    assert snapshot(matching)["introductions"] == []
    assert outbox_rows(matching, f"{tenant}/{introduction['id']}") == []
    assert_problem(answer(matching, tenant, keys["jobcoach"], introduction["id"], "accept"), 404)


# --------------------------------------------------------------------------------------------------------
# Every new path against every role and another region

ROLES = (
    "employer",
    "employer2",
    "jobcoach",
    "jobcoach2",
    "operator",
    "council",
    "foreign_employer",
    "foreign_jobcoach",
)
EXPECTED = {
    # path kind: status per caller (the introduction's candidate belongs to jc-1, its vacancy to emp-1)
    "interest": {"employer": 201, "employer2": 404, "jobcoach": 403, "jobcoach2": 403, "operator": 403, "council": 403},
    "list": {"employer": 200, "employer2": 200, "jobcoach": 200, "jobcoach2": 200, "operator": 403, "council": 403},
    "accept": {"employer": 403, "employer2": 403, "jobcoach": 200, "jobcoach2": 404, "operator": 403, "council": 403},
    "decline": {"employer": 403, "employer2": 403, "jobcoach": 200, "jobcoach2": 404, "operator": 403, "council": 403},
    "vacancy": {"employer": 200, "employer2": 404, "jobcoach": 403, "jobcoach2": 403, "operator": 403, "council": 403},
}


@pytest.mark.parametrize("caller", ROLES)
@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_every_introduction_path_answers_each_role_as_the_contract_says(matching, tenant, all_keys, pair, kind, caller):
    candidate_id, vacancy_id = pair
    ref = profile_ref(vacancy_id, candidate_id)
    introduction_id = None
    if kind in ("accept", "decline"):
        introduction_id = interested(matching, tenant, all_keys, pair)["id"]
    base = f"/v1/tenants/{tenant}"
    headers = bearer(all_keys[caller])
    if kind == "interest":
        response = matching.client.post(
            f"{base}/vacancies/{vacancy_id}/interest", json={"profile_ref": ref}, headers=headers
        )
    elif kind == "list":
        response = matching.client.get(f"{base}/introductions", headers=headers)
    elif kind == "vacancy":
        response = matching.client.get(f"{base}/vacancies/{vacancy_id}/introductions", headers=headers)
    else:
        response = matching.client.post(f"{base}/introductions/{introduction_id}/{kind}", headers=headers)

    expected = EXPECTED[kind].get(caller, 404)  # another region: as if nothing were there
    if expected >= 400:
        assert_problem(response, expected)
        assert candidate_id not in response.get_data(as_text=True)
    else:
        assert response.status_code == expected, response.get_data(as_text=True)
