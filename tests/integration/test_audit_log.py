"""The audit log: every service records who read or changed which candidate (ids only), operators read it
through ``GET /audit``, nobody else does, one region never sees another's, and old rows are purged."""

from __future__ import annotations

import copy
import dataclasses
import json
from datetime import UTC, date, datetime, timedelta

import pytest

from services.matching.app import create_app as create_matching_app
from services.matching.context import MatchingContext
from shared import audit
from shared.clock import FakeClock
from shared.config import ConfigError, load_settings
from shared.events import EventType, load_example
from shared.worker import audit_purge_loop
from tests.integration.conftest import bearer
from tests.integration.helpers import assert_problem, feed_matching

PSEUDONYM = "Zonnebloem"
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CANDIDATE = {
    "display_name": PSEUDONYM,
    "talents": ["planten verzorgen"],
    "preferences": [],
    "support_needs": [{"code": "quiet_workplace", "level": "essential"}],
    "hours_min": 12,
    "hours_max": 24,
    "ladder_step": 3,
    "location": {"postcode": "5912", "max_travel_km": 15.0},
    "consent": {"matching": True, "share_with_employers": True},
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def candidates(service, keys, clock):
    svc = service("candidate")
    svc.context.clock = clock
    return svc


def audit_page(svc, tenant: str, key: str, **params):
    return svc.client.get(f"/v1/tenants/{tenant}/audit", query_string=params, headers=bearer(key))


def all_entries(svc, tenant: str, key: str, **params) -> list[dict]:
    answer = audit_page(svc, tenant, key, page_size=100, **params)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()["items"]


def register(candidates, tenant, key) -> str:
    answer = candidates.client.post(f"/v1/tenants/{tenant}/candidates", json=CANDIDATE, headers=bearer(key))
    assert answer.status_code == 201
    return answer.get_json()["id"]


def test_an_operator_reads_who_registered_read_changed_and_erased_a_candidate(candidates, keys, tenant, clock):
    base = f"/v1/tenants/{tenant}/candidates"
    created = candidates.client.post(
        base, json=CANDIDATE, headers={**bearer(keys["jobcoach"]), "X-Request-Id": "req-registration-1"}
    )
    candidate_id = created.get_json()["id"]
    assert created.headers["X-Request-Id"] == "req-registration-1"
    clock.advance(minutes=1)
    read = candidates.client.get(f"{base}/{candidate_id}", headers=bearer(keys["jobcoach"]))
    clock.advance(minutes=1)
    candidates.client.patch(f"{base}/{candidate_id}", json={"hours_max": 28}, headers=bearer(keys["jobcoach"]))
    clock.advance(minutes=1)
    # Refusals show and change nothing, so they leave no row: another jobcoach's read is a 404.
    assert candidates.client.get(f"{base}/{candidate_id}", headers=bearer(keys["jobcoach2"])).status_code == 404
    candidates.client.delete(f"{base}/{candidate_id}", headers=bearer(keys["operator"]))

    entries = all_entries(candidates, tenant, keys["operator"])
    assert [(e["action"], e["actor_role"], e["actor_subject"], e["candidate_id"]) for e in entries] == [
        ("create", "jobcoach", "jc-1", candidate_id),
        ("read", "jobcoach", "jc-1", candidate_id),
        ("change", "jobcoach", "jc-1", candidate_id),
        ("erase", "operator", None, candidate_id),
    ]
    assert entries[0]["request_id"] == "req-registration-1"
    assert entries[1]["request_id"] == read.headers["X-Request-Id"]
    assert [datetime.fromisoformat(e["at"]) for e in entries] == [NOW + timedelta(minutes=n) for n in (0, 1, 2, 3)]
    # Erasure kept the rows, which hold ids only: nothing the candidate told us.
    body = json.dumps(entries)
    assert PSEUDONYM not in body and "quiet_workplace" not in body and "planten" not in body


def test_a_caseload_list_records_a_read_of_each_candidate_on_the_page(candidates, keys, tenant):
    first, second = register(candidates, tenant, keys["jobcoach"]), register(candidates, tenant, keys["jobcoach"])
    candidates.client.get(f"/v1/tenants/{tenant}/candidates", headers=bearer(keys["operator"]))
    reads = [e for e in all_entries(candidates, tenant, keys["operator"]) if e["action"] == "read"]
    assert sorted(e["candidate_id"] for e in reads) == sorted([first, second])
    assert {e["actor_role"] for e in reads} == {"operator"}


@pytest.mark.parametrize("role", ["jobcoach", "employer"])
def test_only_operators_read_the_audit_log(candidates, keys, tenant, role):
    register(candidates, tenant, keys["jobcoach"])
    assert_problem(audit_page(candidates, tenant, keys[role]), 403)
    assert_problem(audit_page(candidates, tenant, "wbk_not-a-key"), 401)


def test_another_region_sees_nothing_of_this_ones_log(candidates, keys, tenant, registry):
    register(candidates, tenant, keys["jobcoach"])
    other = f"{tenant}-b"
    registry.create_tenant(other)
    other_operator = registry.create_key(other, "operator", None)
    assert_problem(audit_page(candidates, tenant, other_operator), 404)
    answer = audit_page(candidates, other, other_operator)
    assert answer.status_code == 200
    assert answer.get_json()["total"] == 0 and answer.get_json()["items"] == []


def test_pages_are_stable_and_filters_narrow_them(candidates, keys, tenant, clock):
    ids = []
    for _ in range(5):
        ids.append(register(candidates, tenant, keys["jobcoach"]))  # several in the same second
    clock.advance(hours=1)
    for candidate_id in ids[:2]:
        candidates.client.get(f"/v1/tenants/{tenant}/candidates/{candidate_id}", headers=bearer(keys["jobcoach"]))

    everything = all_entries(candidates, tenant, keys["operator"])
    assert len(everything) == 7
    paged: list[dict] = []
    for page in (1, 2, 3, 4):
        answer = audit_page(candidates, tenant, keys["operator"], page=page, page_size=2).get_json()
        assert answer["total"] == 7
        paged.extend(answer["items"])
    assert paged == everything
    assert [e["candidate_id"] for e in everything[:5]] == ids

    only_first = all_entries(candidates, tenant, keys["operator"], candidate_id=ids[0])
    assert [e["action"] for e in only_first] == ["create", "read"]
    since = all_entries(candidates, tenant, keys["operator"], since=(NOW + timedelta(minutes=30)).isoformat())
    assert [(e["action"], e["candidate_id"]) for e in since] == [("read", ids[0]), ("read", ids[1])]

    assert_problem(audit_page(candidates, tenant, keys["operator"], since="yesterday"), 422)
    assert_problem(audit_page(candidates, tenant, keys["operator"], name="Zonnebloem"), 422)


def test_the_worker_purges_rows_past_the_retention_period_only(candidates, keys, tenant, clock):
    old = register(candidates, tenant, keys["jobcoach"])
    clock.advance(days=300)
    recent = register(candidates, tenant, keys["jobcoach"])
    settings = dataclasses.replace(candidates.context.settings, audit_retention_days=365)
    loop = audit_purge_loop(settings, candidates.db, candidates.store.audit_log, FakeClock(NOW + timedelta(days=400)))
    _run_one_turn(loop)
    assert [e["candidate_id"] for e in all_entries(candidates, tenant, keys["operator"])] == [recent]
    assert old != recent


def test_the_retention_comes_from_the_environment_and_defaults_to_a_year():
    assert load_settings("candidate", {}, port=1, worker_metrics_port=2).audit_retention_days == 365
    env = {"AUDIT_RETENTION_DAYS": "30"}
    assert load_settings("candidate", env, port=1, worker_metrics_port=2).audit_retention_days == 30
    with pytest.raises(ConfigError):
        load_settings("candidate", {"AUDIT_RETENTION_DAYS": "0"}, port=1, worker_metrics_port=2)


def test_each_service_serves_its_own_audit_log(service, keys, tenant):
    for name in ("vacancy", "notification"):
        svc = service(name)
        answer = audit_page(svc, tenant, keys["operator"])
        assert answer.status_code == 200 and answer.get_json()["total"] == 0
        assert_problem(audit_page(svc, tenant, keys["jobcoach"]), 403)
        assert "/v1/tenants/{tenant}/audit" in svc.client.get("/openapi.json").get_json()["paths"]


def test_matching_records_placements_started_and_read(service, keys, tenant):
    svc = service("matching")
    clock = FakeClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    svc.context = MatchingContext.around(dataclasses.replace(svc.context, clock=clock))
    client = create_matching_app(svc.context).test_client()

    def feed(type_name: str, data: dict) -> str:
        return feed_matching(svc, tenant, type_name, data)

    candidate_data = copy.deepcopy(load_example(EventType.CANDIDATE_REGISTERED)["data"])
    candidate_data["jobcoach_id"] = "jc-1"
    candidate_id = feed(EventType.CANDIDATE_REGISTERED, candidate_data)
    vacancy_data = copy.deepcopy(load_example(EventType.VACANCY_POSTED)["data"])
    vacancy_data["employer_id"] = "emp-1"
    vacancy_id = feed(EventType.VACANCY_POSTED, vacancy_data)

    started = client.post(
        f"/v1/tenants/{tenant}/placements",
        json={
            "candidate_id": candidate_id,
            "vacancy_id": vacancy_id,
            "start_date": date(2026, 2, 20).isoformat(),
            "agreed_hours": 16,
            "supports_agreed": [],
        },
        headers=bearer(keys["jobcoach"]),
    )
    assert started.status_code == 201, started.get_data(as_text=True)
    client.get(f"/v1/tenants/{tenant}/placements/{started.get_json()['id']}", headers=bearer(keys["operator"]))

    answer = client.get(f"/v1/tenants/{tenant}/audit", headers=bearer(keys["operator"])).get_json()
    assert [(e["action"], e["actor_role"], e["candidate_id"]) for e in answer["items"]] == [
        ("create", "jobcoach", candidate_id),
        ("read", "operator", candidate_id),
    ]
    assert_problem(client.get(f"/v1/tenants/{tenant}/audit", headers=bearer(keys["employer"])), 403)


def test_an_unknown_action_is_a_programming_error():
    with pytest.raises(ValueError):
        audit.record(None, None, "t", audit.Actor("operator", None), "peek", ["c"], NOW, "r")  # type: ignore[arg-type]


def _run_one_turn(loop) -> None:
    """Run a periodic loop until its first wait: the stop event is set as soon as it waits."""

    class StopAfterFirstWait:
        def __init__(self) -> None:
            self._set = False

        def is_set(self) -> bool:
            return self._set

        def wait(self, _seconds: float) -> bool:
            self._set = True
            return True

    loop.run(StopAfterFirstWait())
