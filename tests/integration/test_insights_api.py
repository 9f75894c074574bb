"""The region's insights on a real database: for operators only, filled from the read models, the
placements, the alerts raised and the acknowledgements reported, with every small cell suppressed."""

from __future__ import annotations

import copy
import dataclasses
import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from services.matching import worker
from services.matching.app import create_app
from services.matching.context import MatchingContext
from services.matching.ranking import store as ranking_store
from services.matching.ranking.engine import MatchingEngine
from services.matching.ranking.rules import DEFAULT_PROPOSAL_THRESHOLD
from shared.clock import FakeClock
from shared.events import EventType, decode_event, encode_event, load_example, new_event
from tests.integration.conftest import bearer

TODAY = date(2026, 9, 1)
BAD = {"wellbeing": 1, "hours_worked": 4, "absence_days": 3, "signals": ["conflict_with_supervisor", "missed_shift"]}


@pytest.fixture
def matching(service, keys):
    svc = service("matching")
    svc.context = MatchingContext.around(
        dataclasses.replace(svc.context, clock=FakeClock(datetime(2026, 9, 1, 12, 0, tzinfo=UTC)))
    )
    svc.client = create_app(svc.context).test_client()
    return svc


@pytest.fixture
def feed(matching):
    table = worker.handler_table(MatchingEngine.with_fixed_settings(DEFAULT_PROPOSAL_THRESHOLD))

    def deliver(tenant: str, type_name: str, data: dict) -> str:
        subject = str(uuid.uuid4())
        document = new_event(type_name, tenant=tenant, subject=subject, data=data, source="test")
        event = decode_event(encode_event(document))
        with matching.db.session() as session:
            for handler in table[type_name]:
                handler(session, event)
        return subject

    return deliver


def register(feed, tenant: str, ladder_step: int, needs: list[dict] | None = None) -> str:
    data = copy.deepcopy(load_example(EventType.CANDIDATE_REGISTERED)["data"])
    data.update(jobcoach_id="jc-1", ladder_step=ladder_step)
    if needs is not None:
        data["support_needs"] = needs
    return feed(tenant, EventType.CANDIDATE_REGISTERED, data)


def acknowledge(feed, tenant: str, alert_type: str, minutes: float) -> None:
    created = datetime(2026, 8, 1, 9, 0, tzinfo=UTC)
    data = {
        "alert_type": alert_type,
        "candidate_id": str(uuid.uuid4()),
        "created_at": created.isoformat(),
        "acknowledged_at": (created + timedelta(minutes=minutes)).isoformat(),
    }
    feed(tenant, EventType.ALERT_ACKNOWLEDGED, data)


def insights(matching, tenant: str, key: str):
    return matching.client.get(f"/v1/tenants/{tenant}/insights", headers=bearer(key))


def cells(node):
    if isinstance(node, dict):
        if set(node) == {"value", "suppressed"}:
            yield node
            return
        for value in node.values():
            yield from cells(value)
    elif isinstance(node, list):
        for value in node:
            yield from cells(value)


@pytest.mark.parametrize(("role", "status"), [("jobcoach", 403), ("employer", 403), (None, 401)])
def test_insights_are_for_the_regions_operators_only(matching, keys, tenant, role, status):
    response = matching.client.get(f"/v1/tenants/{tenant}/insights", headers=bearer(keys[role]) if role else {})

    assert response.status_code == status
    assert response.mimetype == "application/problem+json"


def test_another_regions_operator_gets_404(matching, registry, keys, tenant):
    other = f"{tenant}-b"
    registry.create_tenant(other)

    assert insights(matching, tenant, registry.create_key(other, "operator", None)).status_code == 404


def test_a_new_region_shows_every_cell_suppressed(matching, keys, tenant):
    response = insights(matching, tenant, keys["operator"])

    assert response.status_code == 200
    body = response.get_json()
    assert body["tenant"] == tenant and body["min_cell_size"] == 11
    assert all(cell == {"value": None, "suppressed": True} for cell in cells(body))


def test_a_busy_region_sees_its_figures_and_never_a_small_one(matching, feed, keys, tenant):
    quiet = [{"code": "quiet_workplace", "level": "essential"}]
    step3 = [register(feed, tenant, 3, quiet) for _ in range(12)]
    step4 = [register(feed, tenant, 4, quiet) for _ in range(11)]
    register(feed, tenant, 5, [{"code": "wheelchair_access", "level": "essential"}])
    register(feed, f"{tenant}-b", 2)
    vacancy = feed(tenant, EventType.VACANCY_POSTED, load_example(EventType.VACANCY_POSTED)["data"])
    auth = bearer(keys["jobcoach"])
    start = (TODAY - timedelta(days=120)).isoformat()
    ids = []
    for candidate_id in step3 + step4:
        body = {"candidate_id": candidate_id, "vacancy_id": vacancy, "start_date": start, "agreed_hours": 16}
        response = matching.client.post(f"/v1/tenants/{tenant}/placements", json=body, headers=auth)
        assert response.status_code == 201, response.get_data(as_text=True)
        ids.append(response.get_json()["id"])
    for placement_id in ids[:12]:
        body = {"date": (TODAY - timedelta(days=1)).isoformat(), **BAD}
        response = matching.client.post(
            f"/v1/tenants/{tenant}/placements/{placement_id}/checkins", json=body, headers=auth
        )
        assert response.status_code == 201
    for placement_id in ids[12:]:
        body = {"date": (TODAY - timedelta(days=90)).isoformat(), "outcome": "ended_by_candidate"}
        response = matching.client.post(f"/v1/tenants/{tenant}/placements/{placement_id}/end", json=body, headers=auth)
        assert response.status_code == 200
    for minutes in range(10, 120, 10):
        acknowledge(feed, tenant, "placement_at_risk", minutes)
    for minutes in (5, 6, 7):
        acknowledge(feed, tenant, "checkin_overdue", minutes)

    body = insights(matching, tenant, keys["operator"]).get_json()

    steps = {row["step"]: row["count"] for row in body["candidates"]["by_ladder_step"]}
    assert steps[3] == {"value": 12, "suppressed": False}
    assert all(steps[step]["suppressed"] for step in (1, 2, 5, 6))
    # Steps 1, 2, 5 and 6 hold one person between them: step 4 is hidden too, so they cannot be told apart.
    assert steps[4]["suppressed"]
    assert body["candidates"]["total"] == {"value": 24, "suppressed": False}
    quiet_row = next(row for row in body["support_gap"] if row["code"] == "quiet_workplace")
    assert quiet_row["candidates_needing"] == {"value": 23, "suppressed": False}
    assert quiet_row["vacancies_offering"] == 1
    assert quiet_row["gap"] == {"value": 22, "suppressed": False}
    wheelchair = next(row for row in body["support_gap"] if row["code"] == "wheelchair_access")
    assert wheelchair["candidates_needing"]["suppressed"] and wheelchair["gap"]["suppressed"]
    three = body["placements"]["after_3_months"]
    assert three == {
        "eligible": {"value": 23, "suppressed": False},
        "still_working": {"value": 12, "suppressed": False},
        "stopped": {"value": 11, "suppressed": False},
    }
    assert body["placements"]["after_6_months"]["eligible"]["suppressed"]
    assert body["alerts_by_type"]["placement_at_risk"] == {"value": 12, "suppressed": False}
    assert body["alerts_by_type"]["checkin_overdue"]["suppressed"]
    with matching.db.session() as session:
        proposed = session.execute(sa.select(sa.func.count()).select_from(ranking_store.proposals)).scalar()
    expected = {"value": proposed, "suppressed": False} if proposed >= 11 else {"value": None, "suppressed": True}
    assert body["matches_proposed"] == body["alerts_by_type"]["match_proposed"] == expected
    medians = body["median_seconds_to_acknowledge"]
    assert medians["placement_at_risk"] == {"value": 3600.0, "suppressed": False}
    assert medians["checkin_overdue"] == {"value": None, "suppressed": True}
    assert medians["all"]["suppressed"] is False
    shown = [cell["value"] for cell in cells(body) if not cell["suppressed"] and isinstance(cell["value"], int)]
    assert all(value >= 11 for value in shown if value >= 0), "a shown count under 11"
    text = json.dumps(body)
    for secret in [*step3, *step4, *ids, vacancy, "jc-1"]:
        assert secret not in text


def test_reading_insights_changes_nothing(matching, feed, keys, tenant):
    register(feed, tenant, 3)
    with matching.db.session() as session:
        before = {
            t.name: session.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in _tables(matching)
        }

    insights(matching, tenant, keys["operator"])

    with matching.db.session() as session:
        after = {t.name: session.execute(sa.select(sa.func.count()).select_from(t)).scalar() for t in _tables(matching)}
    assert after == before


def _tables(matching):
    # The rate-limit counters move with every request, reads included, by design.
    return [table for table in matching.store.metadata.sorted_tables if table.name != "rate_limits"]
