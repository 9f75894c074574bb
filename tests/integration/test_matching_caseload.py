"""The caseload on a real database: status, last contact and open alerts per candidate, for the jobcoach
and the operator; the handover; and the sweep that reports candidates out of sight and caseloads over the
limit once per episode."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from services.matching import worker
from services.matching.app import create_app
from services.matching.caseload.sweep import sweep
from services.matching.context import MatchingContext
from services.matching.placements import store as pstore
from services.matching.ranking.engine import MatchingEngine
from services.matching.ranking.rules import DEFAULT_PROPOSAL_THRESHOLD
from services.matching.settings import MatchingSettings
from shared.clock import FakeClock
from shared.events import EventType, decode_event, encode_event, new_event
from tests.integration.conftest import bearer
from tests.integration.helpers import assert_problem
from tests.integration.test_matching_api import candidate_payload, consent, vacancy_payload
from tests.integration.test_placements_api import outbox_events

NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
TODAY = date(2026, 11, 30)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def matching(service, keys, clock):
    svc = service("matching")
    svc.context = MatchingContext.around(dataclasses.replace(svc.context, clock=clock))
    svc.client = create_app(svc.context).test_client()
    return svc


@pytest.fixture
def feed(matching, tenant):
    """Hand one event, sent and handled at ``at``, to the worker's handler table as the consumer would."""
    handled_at = [NOW]
    table = worker.handler_table(
        MatchingEngine.with_fixed_settings(DEFAULT_PROPOSAL_THRESHOLD), clock=lambda: handled_at[0]
    )

    def deliver(type_name: str, data: dict, subject: str | None = None, at: datetime = NOW) -> str:
        handled_at[0] = at
        subject = subject or str(uuid.uuid4())
        document = new_event(type_name, tenant=tenant, subject=subject, data=data, source="test")
        document["time"] = at.isoformat()
        event = decode_event(encode_event(document))
        with matching.db.session() as session:
            for handler in table[event.type]:
                handler(session, event)
        return subject

    return deliver


def register(feed, jobcoach_id="jc-1", days_ago=0, **overrides) -> str:
    payload = candidate_payload(jobcoach_id, consent=consent(False, False), **overrides)
    return feed(EventType.CANDIDATE_REGISTERED, payload, at=NOW - timedelta(days=days_ago))


def caseload(matching, tenant, key, **query):
    return matching.client.get(f"/v1/tenants/{tenant}/caseload", query_string=query, headers=bearer(key))


def items_of(matching, tenant, key, **query) -> dict[str, dict]:
    response = caseload(matching, tenant, key, **query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return {item["candidate_id"]: item for item in response.get_json()["items"]}


def test_a_jobcoach_sees_their_own_candidates_with_last_contact_and_days_since(matching, feed, tenant, keys):
    mine = register(feed, days_ago=12)
    register(feed, "jc-2")

    items = items_of(matching, tenant, keys["jobcoach"])

    assert list(items) == [mine]
    assert items[mine] == {
        "candidate_id": mine,
        "jobcoach_id": "jc-1",
        "status": "unmatched",
        "last_contact": (TODAY - timedelta(days=12)).isoformat(),
        "days_since_contact": 12,
        "open_alerts": 0,
    }


def test_open_alerts_are_raised_minus_acknowledged_and_an_acknowledgement_is_contact(matching, feed, tenant, keys):
    who = register(feed, days_ago=40)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    for alert_id in (first, second):
        raised = {"alert_type": "placement_at_risk", "candidate_id": who, "jobcoach_id": "jc-1", "created_at": NOW}
        feed(EventType.ALERT_RAISED, raised, subject=alert_id)
    assert items_of(matching, tenant, keys["jobcoach"])[who]["open_alerts"] == 2

    ack = {
        "alert_type": "placement_at_risk",
        "candidate_id": who,
        "created_at": NOW - timedelta(days=3),
        "acknowledged_at": NOW - timedelta(days=2),
        "alert_id": first,
        "jobcoach_id": "jc-1",
    }
    feed(EventType.ALERT_ACKNOWLEDGED, ack, subject=first)

    item = items_of(matching, tenant, keys["jobcoach"])[who]
    assert item["open_alerts"] == 1
    assert item["days_since_contact"] == 2


def test_status_follows_proposals_and_placements(matching, feed, tenant, keys):
    proposed = feed(EventType.CANDIDATE_REGISTERED, candidate_payload(consent=consent(True, True)))
    feed(EventType.VACANCY_POSTED, vacancy_payload())
    placed, risky, overdue = (register(feed) for _ in range(3))
    with matching.db.session() as session:
        for candidate_id, extra in ((placed, {}), (risky, {"at_risk": True}), (overdue, {"overdue_since": TODAY})):
            values = {
                "id": str(uuid.uuid4()),
                "candidate_id": candidate_id,
                "vacancy_id": str(uuid.uuid4()),
                "jobcoach_id": "jc-1",
                "start_date": TODAY,
                "agreed_hours": 16,
                "supports_agreed": [],
            }
            pstore.insert_placement(session, tenant, values)
            if extra:
                pstore.update_placement(session, tenant, values["id"], extra)

    items = items_of(matching, tenant, keys["jobcoach"])

    assert items[proposed]["status"] == "proposed"
    assert items[placed]["status"] == "placed"
    assert items[risky]["status"] == "at_risk"
    assert items[overdue]["status"] == "checkin_overdue"
    operator = caseload(matching, tenant, keys["operator"]).get_json()
    assert operator["jobcoaches"] == [{"jobcoach_id": "jc-1", "candidates": 4, "at_risk": 1, "checkin_overdue": 1}]


def test_the_operator_sees_everyone_filters_by_jobcoach_and_pages_stably(matching, feed, tenant, keys):
    ids = [register(feed, "jc-1", days_ago=5) for _ in range(3)] + [register(feed, "jc-2", days_ago=9)]

    everyone = caseload(matching, tenant, keys["operator"], page_size=2).get_json()
    second = caseload(matching, tenant, keys["operator"], page_size=2, page=2).get_json()
    filtered = items_of(matching, tenant, keys["operator"], jobcoach_id="jc-2")

    assert everyone["total"] == 4
    order = [item["candidate_id"] for item in everyone["items"] + second["items"]]
    assert order[0] == ids[3]  # longest without contact first
    assert order[1:] == sorted(ids[:3])
    assert list(filtered) == [ids[3]]
    assert {load["jobcoach_id"]: load["candidates"] for load in everyone["jobcoaches"]} == {"jc-1": 3, "jc-2": 1}


def test_the_caseload_says_how_many_days_without_contact_are_out_of_sight_in_the_region(
    matching, feed, registry, tenant, keys
):
    register(feed)
    for key in (keys["jobcoach"], keys["operator"]):
        assert caseload(matching, tenant, key).get_json()["contact_days"] == MatchingSettings().contact_days
    registry.change_settings(tenant, {"contact_days": "21"})
    for key in (keys["jobcoach"], keys["operator"]):
        assert caseload(matching, tenant, key).get_json()["contact_days"] == 21


def test_after_a_handover_the_candidate_is_the_new_jobcoachs_only(matching, feed, tenant, keys):
    who = register(feed)
    feed(EventType.CANDIDATE_UPDATED, candidate_payload("jc-2", consent=consent(False, False)), subject=who)

    assert items_of(matching, tenant, keys["jobcoach"]) == {}
    assert list(items_of(matching, tenant, keys["jobcoach2"])) == [who]
    matches = f"/v1/tenants/{tenant}/candidates/{who}/matches"
    assert_problem(matching.client.get(matches, headers=bearer(keys["jobcoach"])), 404)
    assert matching.client.get(matches, headers=bearer(keys["jobcoach2"])).status_code == 200


def test_erasure_takes_the_candidate_out_of_the_caseload(matching, feed, tenant, keys):
    who = register(feed)
    feed(EventType.CANDIDATE_ERASED, {"jobcoach_id": "jc-1"}, subject=who)
    assert items_of(matching, tenant, keys["jobcoach"]) == {}


@pytest.fixture
def council(registry, tenant) -> str:
    return registry.create_key(tenant, "council", None)


@pytest.fixture
def foreign(registry, tenant) -> dict[str, str]:
    other = f"{tenant}-b"
    registry.create_tenant(other)
    return {
        "operator": registry.create_key(other, "operator", None),
        "jobcoach": registry.create_key(other, "jobcoach", "jc-1"),
    }


def test_the_caseload_answers_each_role_as_the_contract_says(matching, feed, tenant, keys, council, foreign):
    who = register(feed)
    assert_problem(caseload(matching, tenant, keys["employer"]), 403)
    assert_problem(caseload(matching, tenant, keys["employer2"]), 403)
    assert_problem(caseload(matching, tenant, council), 403)
    assert_problem(caseload(matching, tenant, keys["jobcoach"], jobcoach_id="jc-2"), 403)
    assert items_of(matching, tenant, keys["jobcoach2"]) == {}
    for key in foreign.values():
        assert who not in assert_problem(caseload(matching, tenant, key), 404).__repr__()
    bad = assert_problem(caseload(matching, tenant, keys["operator"], page_size=0), 422)
    assert "page_size" in str(bad["errors"])


# --------------------------------------------------------------------------------------------------------
# The sweep


def settings_of(**values):
    return lambda _tenant: MatchingSettings(**values)


def test_a_candidate_out_of_sight_is_reported_once_per_gap(matching, feed, tenant):
    who = register(feed, days_ago=30)
    register(feed, days_ago=29)

    assert sweep(matching.db, settings_of(contact_days=30), TODAY) == 1
    assert sweep(matching.db, settings_of(contact_days=30), TODAY + timedelta(days=1)) == 1  # the second one
    assert sweep(matching.db, settings_of(contact_days=30), TODAY + timedelta(days=2)) == 0

    (first, _) = outbox_events(matching, EventType.CANDIDATE_OUT_OF_SIGHT)
    assert first.subject == who
    assert first.data["episode"] == 1 and first.data["contact_days"] == 30
    assert first.data["last_contact"] == TODAY - timedelta(days=30)

    feed(EventType.CANDIDATE_UPDATED, candidate_payload(consent=consent(False, False)), subject=who, at=NOW)
    # The other one's gap goes on: reported already.
    assert sweep(matching.db, settings_of(contact_days=30), TODAY + timedelta(days=30)) == 1
    again = [e for e in outbox_events(matching, EventType.CANDIDATE_OUT_OF_SIGHT) if e.subject == who]
    assert [e.data["episode"] for e in again] == [1, 2]


def test_a_caseload_over_the_limit_is_reported_once_until_it_falls_back(matching, feed, tenant):
    ids = [register(feed, "jc-7") for _ in range(3)]
    limited = settings_of(caseload_limit=2)

    assert sweep(matching.db, limited, TODAY) == 1
    assert sweep(matching.db, limited, TODAY) == 0
    gauge = REGISTRY.get_sample_value("werkbrug_caseload_candidates", {"tenant": tenant, "jobcoach": "jc-7"})
    assert gauge == 3

    feed(EventType.CANDIDATE_ERASED, {"jobcoach_id": "jc-7"}, subject=ids[0])
    assert sweep(matching.db, limited, TODAY) == 0
    register(feed, "jc-7")
    assert sweep(matching.db, limited, TODAY) == 1

    events = outbox_events(matching, EventType.CASELOAD_OVER_LIMIT)
    assert [(e.data["episode"], e.data["caseload"], e.data["caseload_limit"]) for e in events] == [(1, 3, 2), (2, 3, 2)]
    with matching.db.session() as session:
        assert session.execute(sa.text("SELECT count(*) FROM caseload_limits")).scalar_one() == 1


def test_the_migration_brings_known_candidates_into_the_caseload(database_url):
    from services.matching import store
    from shared.db import Database, upgrade

    url = database_url("matching-upgrade")
    upgrade(store.MIGRATIONS, url, "0007")
    with Database(url).session() as session:
        session.execute(
            sa.text(
                "INSERT INTO candidates (tenant, id, jobcoach_id, consent_matching, profile, updated_at, seq) "
                "VALUES ('regio-x', 'c-1', 'jc-1', :yes, '{}', :at, 1)"
            ),
            {"at": NOW - timedelta(days=3), "yes": True},
        )
    upgrade(store.MIGRATIONS, url)
    with Database(url).session() as session:
        row = session.execute(sa.select(store.metadata.tables["caseload"])).mappings().one()
    assert (row["candidate_id"], row["jobcoach_id"], row["last_contact"]) == ("c-1", "jc-1", TODAY - timedelta(days=3))
