"""Placements on a real database: starting, checking in, ending, reading; every kind of bad input refused
with nothing changed; the events in the outbox; the risk episodes; the overdue scheduler on a moved clock;
erasure; training and rolling back a tenant's model; and the migrations matching the tables."""

from __future__ import annotations

import copy
import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from admin import cli
from services.matching import worker
from services.matching.app import create_app
from services.matching.context import MatchingContext
from services.matching.placements import scheduler
from services.matching.placements import store as pstore
from services.matching.ranking.engine import MatchingEngine
from services.matching.ranking.rules import DEFAULT_PROPOSAL_THRESHOLD
from shared import tracing
from shared.clock import FakeClock
from shared.events import EventType, InvalidEvent, decode_event, encode_event, load_example, new_event
from shared.topics import Topic
from tests.integration.conftest import bearer
from tests.integration.helpers import assert_problem, snapshot

PROBLEM_JSON = "application/problem+json"
TODAY = date(2026, 3, 2)
START = TODAY - timedelta(days=20)

GOOD = {"wellbeing": 4, "hours_worked": 16, "absence_days": 0, "signals": ["positive_feedback"]}
BAD = {"wellbeing": 1, "hours_worked": 6, "absence_days": 2, "signals": ["conflict_with_supervisor", "missed_shift"]}
MIDDLING = {"wellbeing": 3, "hours_worked": 14, "absence_days": 0, "signals": []}


# --------------------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(TODAY.year, TODAY.month, TODAY.day, 10, 0, tzinfo=UTC))


@pytest.fixture
def matching(service, keys, clock):
    svc = service("matching")
    svc.context = MatchingContext.around(dataclasses.replace(svc.context, clock=clock))
    svc.client = create_app(svc.context).test_client()
    return svc


@pytest.fixture
def feed(matching, tenant):
    """Hand one event to the worker's handler table, as the consumer would after decoding it."""
    table = worker.handler_table(MatchingEngine.with_fixed_settings(DEFAULT_PROPOSAL_THRESHOLD))

    def deliver(type_name: str, data: dict, subject: str | None = None) -> str:
        subject = subject or str(uuid.uuid4())
        document = new_event(type_name, tenant=tenant, subject=subject, data=data, source="test")
        event = decode_event(encode_event(document))
        with matching.db.session() as session:
            for handler in table[type_name]:
                handler(session, event)
        return subject

    return deliver


@pytest.fixture
def candidate(feed) -> str:
    data = copy.deepcopy(load_example(EventType.CANDIDATE_REGISTERED)["data"])
    data["jobcoach_id"] = "jc-1"
    return feed(EventType.CANDIDATE_REGISTERED, data)


@pytest.fixture
def vacancy(feed) -> str:
    data = copy.deepcopy(load_example(EventType.VACANCY_POSTED)["data"])
    data["employer_id"] = "emp-1"
    return feed(EventType.VACANCY_POSTED, data)


@pytest.fixture
def other_tenant_jobcoach(registry, tenant) -> str:
    other = f"{tenant}-b"
    registry.create_tenant(other)
    return registry.create_key(other, "jobcoach", "jc-1")


def outbox_events(svc, type_name: str | None = None) -> list:
    table = svc.store.outbox.table
    with svc.db.session() as session:
        rows = session.execute(sa.select(table).order_by(table.c.id)).all()
    found = []
    for row in rows:
        event = decode_event(row.payload.encode("utf-8"))
        assert row.message_key == f"{event.tenant}/{event.subject}"
        if type_name is None or event.type == type_name:
            found.append(event)
    return found


def base(tenant: str) -> str:
    return f"/v1/tenants/{tenant}/placements"


def start(matching, tenant, key, who, where, **overrides):
    body = {
        "candidate_id": who,
        "vacancy_id": where,
        "start_date": START.isoformat(),
        "agreed_hours": 16,
        "supports_agreed": ["quiet_workplace", "work_buddy"],
        **overrides,
    }
    return matching.client.post(base(tenant), json=body, headers=bearer(key))


def started(matching, tenant, keys, candidate, vacancy, **overrides) -> str:
    response = start(matching, tenant, keys["jobcoach"], candidate, vacancy, **overrides)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()["id"]


def check_in(matching, tenant, key, placement_id, on: date, values: dict):
    body = {"date": on.isoformat(), **values}
    return matching.client.post(f"{base(tenant)}/{placement_id}/checkins", json=body, headers=bearer(key))


def checked_in(matching, tenant, keys, placement_id, on: date, values: dict) -> dict:
    response = check_in(matching, tenant, keys["jobcoach"], placement_id, on, values)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def end(matching, tenant, key, placement_id, on: date, outcome: str = "retained", **extra):
    body = {"date": on.isoformat(), "outcome": outcome, **extra}
    return matching.client.post(f"{base(tenant)}/{placement_id}/end", json=body, headers=bearer(key))


# --------------------------------------------------------------------------------------------------------
# Starting a placement


def test_a_jobcoach_starts_a_placement_for_their_candidate_and_it_is_announced(
    matching, keys, tenant, candidate, vacancy
):
    response = start(matching, tenant, keys["jobcoach"], candidate, vacancy)

    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"].endswith(f"{base(tenant)}/{body['id']}")
    assert body["candidate_id"] == candidate and body["vacancy_id"] == vacancy
    assert body["jobcoach_id"] == "jc-1"
    assert body["status"] == "active"
    assert body["start_date"] == START.isoformat()
    assert body["next_checkin_due"] == (START + timedelta(days=14)).isoformat()
    assert body["risk"] == {
        "score": None,
        "at_risk": False,
        "episode": 0,
        "reasons": [],
        "model_version": None,
        "scored_at": None,
    }
    (event,) = outbox_events(matching, EventType.PLACEMENT_STARTED)
    assert event.subject == body["id"] and event.tenant == tenant
    assert event.data == {
        "candidate_id": candidate,
        "vacancy_id": vacancy,
        "jobcoach_id": "jc-1",
        "start_date": START,
        "agreed_hours": 16,
        # The supports tell of the candidate's needs: kept here (the API shows them), not sent.
        "supports_agreed": [],
    }
    assert body["supports_agreed"] == ["quiet_workplace", "work_buddy"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"agreed_hours": 0}, "agreed_hours"),
        ({"agreed_hours": 61}, "agreed_hours"),
        ({"agreed_hours": 16.5}, "agreed_hours"),
        ({"agreed_hours": "zestien"}, "agreed_hours"),
        ({"start_date": "2026-02-30"}, "start_date"),
        ({"start_date": "morgen"}, "start_date"),
        ({"start_date": (TODAY + timedelta(days=400)).isoformat()}, "start_date"),
        ({"start_date": (TODAY - timedelta(days=400)).isoformat()}, "start_date"),
        ({"supports_agreed": ["a_pony"]}, "supports_agreed"),
        ({"supports_agreed": ["work_buddy", "work_buddy"]}, "supports_agreed"),
        ({"candidate_id": ""}, "candidate_id"),
        ({"vacancy_id": None}, "vacancy_id"),
        ({"jobcoach_id": "jc-2"}, "jobcoach_id"),
    ],
)
def test_a_placement_with_invalid_fields_is_422_naming_them_and_changes_nothing(
    matching, keys, tenant, candidate, vacancy, overrides, field
):
    before = snapshot(matching)

    response = start(matching, tenant, keys["jobcoach"], candidate, vacancy, **overrides)

    assert field in assert_problem(response, 422)["errors"]
    assert snapshot(matching) == before


def test_a_placement_missing_its_fields_names_each_of_them(matching, keys, tenant):
    response = matching.client.post(base(tenant), json={}, headers=bearer(keys["jobcoach"]))

    errors = assert_problem(response, 422)["errors"]
    assert {"candidate_id", "vacancy_id", "start_date", "agreed_hours"} <= set(errors)


def test_malformed_json_is_400(matching, keys, tenant):
    response = matching.client.post(
        base(tenant), data="{not json", content_type="application/json", headers=bearer(keys["jobcoach"])
    )

    assert_problem(response, 400)


@pytest.mark.parametrize("which", ["unknown", "erased", "another_jobcoachs"])
def test_a_placement_for_a_candidate_not_there_or_not_yours_is_404(
    matching, feed, keys, tenant, candidate, vacancy, which
):
    candidate_id = candidate
    if which == "unknown":
        candidate_id = str(uuid.uuid4())
    elif which == "erased":
        feed(EventType.CANDIDATE_ERASED, {"jobcoach_id": "jc-1"}, subject=candidate)
    before = snapshot(matching)
    key = keys["jobcoach2"] if which == "another_jobcoachs" else keys["jobcoach"]

    response = start(matching, tenant, key, candidate_id, vacancy)

    assert "candidate" in assert_problem(response, 404)["detail"]
    assert snapshot(matching) == before


def test_a_placement_at_an_unknown_vacancy_is_404(matching, keys, tenant, candidate):
    before = snapshot(matching)

    response = start(matching, tenant, keys["jobcoach"], candidate, str(uuid.uuid4()))

    assert "vacancy" in assert_problem(response, 404)["detail"]
    assert snapshot(matching) == before


@pytest.mark.parametrize("status", ["closed", "filled"])
def test_a_placement_at_a_vacancy_no_longer_open_is_409(matching, feed, keys, tenant, candidate, vacancy, status):
    feed(EventType.VACANCY_CLOSED, {"employer_id": "emp-1", "status": status}, subject=vacancy)
    before = snapshot(matching)

    response = start(matching, tenant, keys["jobcoach"], candidate, vacancy)

    assert status in assert_problem(response, 409)["detail"]
    assert snapshot(matching) == before


def test_the_same_placement_twice_is_409(matching, keys, tenant, candidate, vacancy):
    started(matching, tenant, keys, candidate, vacancy)
    before = snapshot(matching)

    assert_problem(start(matching, tenant, keys["jobcoach"], candidate, vacancy), 409)
    assert snapshot(matching) == before


@pytest.mark.parametrize(("role", "status"), [("employer", 403), ("operator", 403), (None, 401)])
def test_only_a_jobcoach_starts_placements(matching, keys, tenant, candidate, vacancy, role, status):
    headers = bearer(keys[role]) if role else {}
    body = {"candidate_id": candidate, "vacancy_id": vacancy, "start_date": START.isoformat(), "agreed_hours": 16}

    assert_problem(matching.client.post(base(tenant), json=body, headers=headers), status)


# --------------------------------------------------------------------------------------------------------
# Reading placements


def test_a_placement_is_read_by_its_jobcoach_and_the_regions_operator_only(
    matching, keys, tenant, candidate, vacancy, other_tenant_jobcoach
):
    placement_id = started(matching, tenant, keys, candidate, vacancy)
    checked_in(matching, tenant, keys, placement_id, TODAY, GOOD)
    url = f"{base(tenant)}/{placement_id}"

    own = matching.client.get(url, headers=bearer(keys["jobcoach"]))
    operator = matching.client.get(url, headers=bearer(keys["operator"]))

    assert own.status_code == 200
    assert own.get_json() == operator.get_json()
    body = own.get_json()
    assert body["checkin_count"] == 1
    assert body["last_checkin"] == TODAY.isoformat()
    assert body["risk"]["model_version"] == "default-1"
    assert 0 <= body["risk"]["score"] < 0.6
    (recent,) = body["recent_checkins"]
    assert recent["wellbeing"] == 4
    assert_problem(matching.client.get(url, headers=bearer(keys["jobcoach2"])), 404)
    assert_problem(matching.client.get(url, headers=bearer(keys["employer"])), 403)
    assert_problem(matching.client.get(url, headers={}), 401)
    other = f"/v1/tenants/{tenant}-b/placements/{placement_id}"
    assert_problem(matching.client.get(other, headers=bearer(other_tenant_jobcoach)), 404)
    assert_problem(matching.client.get(f"{base(tenant)}/{uuid.uuid4()}", headers=bearer(keys["jobcoach"])), 404)


def test_a_jobcoach_lists_their_placements_newest_first_with_risk_filtered_and_paged(
    matching, feed, keys, tenant, candidate, vacancy
):
    first = started(matching, tenant, keys, candidate, vacancy)
    second_vacancy = feed(EventType.VACANCY_POSTED, {**load_example(EventType.VACANCY_POSTED)["data"]})
    second = started(matching, tenant, keys, candidate, second_vacancy)
    checked_in(matching, tenant, keys, second, TODAY, BAD)
    assert end(matching, tenant, keys["jobcoach"], first, TODAY).status_code == 200
    auth = bearer(keys["jobcoach"])

    everything = matching.client.get(base(tenant), headers=auth).get_json()
    active = matching.client.get(base(tenant), query_string={"status": "active"}, headers=auth).get_json()
    ended = matching.client.get(base(tenant), query_string={"status": "ended"}, headers=auth).get_json()
    paged = matching.client.get(base(tenant), query_string={"page": 2, "page_size": 1}, headers=auth).get_json()

    assert [item["id"] for item in everything["items"]] == [second, first]
    assert everything["total"] == 2
    assert everything["items"][0]["risk"]["score"] > 0.6
    assert everything["items"][0]["risk"]["reasons"]
    assert [item["id"] for item in active["items"]] == [second]
    assert [item["id"] for item in ended["items"]] == [first]
    assert paged["total"] == 2 and [item["id"] for item in paged["items"]] == [first]
    assert matching.client.get(base(tenant), headers=bearer(keys["jobcoach2"])).get_json()["items"] == []
    operator = matching.client.get(base(tenant), headers=bearer(keys["operator"])).get_json()
    assert operator["total"] == 2
    bad_filter = matching.client.get(base(tenant), query_string={"status": "lost"}, headers=auth)
    assert "status" in assert_problem(bad_filter, 422)["errors"]
    misspelt = matching.client.get(base(tenant), query_string={"statsu": "ended"}, headers=auth)
    assert "statsu" in assert_problem(misspelt, 422)["errors"]


# --------------------------------------------------------------------------------------------------------
# Check-ins


def test_a_check_in_is_stored_scored_and_announced(matching, keys, tenant, candidate, vacancy):
    placement_id = started(matching, tenant, keys, candidate, vacancy)

    body = checked_in(matching, tenant, keys, placement_id, TODAY - timedelta(days=1), MIDDLING)

    assert body["date"] == (TODAY - timedelta(days=1)).isoformat()
    assert body["wellbeing"] == 3
    placement = body["placement"]
    assert placement["checkin_count"] == 1
    assert placement["next_checkin_due"] == (TODAY + timedelta(days=13)).isoformat()
    assert placement["risk"]["score"] is not None
    (event,) = outbox_events(matching, EventType.PLACEMENT_CHECKED_IN)
    assert event.subject == placement_id
    assert event.data["candidate_id"] == candidate and event.data["vacancy_id"] == vacancy
    assert event.data["jobcoach_id"] == "jc-1"
    # What the check-in said is health-related and stays in matching: the event only says it happened.
    assert event.data["date"] == TODAY - timedelta(days=1)
    assert event.data["wellbeing"] is None and event.data["hours_worked"] is None
    assert event.data["absence_days"] is None and event.data["signals"] == []
    table = matching.store.outbox.table
    with matching.db.session() as session:
        sent = " ".join(session.execute(sa.select(table.c.payload).where(table.c.payload.is_not(None))).scalars())
    for fact in ("wellbeing", "hours_worked", "absence_days", "signals"):
        assert fact not in sent
    assert event.data["risk_score"] == placement["risk"]["score"]
    assert event.data["model_version"] == "default-1"
    assert outbox_events(matching, EventType.PLACEMENT_AT_RISK) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"wellbeing": 0}, "wellbeing"),
        ({"wellbeing": 6}, "wellbeing"),
        ({"wellbeing": 2.5}, "wellbeing"),
        ({"wellbeing": "3"}, "wellbeing"),
        ({"hours_worked": -1}, "hours_worked"),
        ({"hours_worked": 61}, "hours_worked"),
        ({"hours_worked": "NaN"}, "hours_worked"),
        ({"absence_days": 8}, "absence_days"),
        ({"absence_days": -1}, "absence_days"),
        ({"signals": ["feeling_blue"]}, "signals"),
        ({"signals": ["missed_shift", "missed_shift"]}, "signals"),
        ({"signals": "missed_shift"}, "signals"),
        ({"date": "2026-13-01"}, "date"),
        ({"date": (TODAY + timedelta(days=1)).isoformat()}, "date"),
        ({"date": (START - timedelta(days=1)).isoformat()}, "date"),
        ({"note": "Sanne had ruzie met haar baas"}, "note"),
    ],
)
def test_a_bad_check_in_is_422_naming_the_field_and_changes_nothing(
    matching, keys, tenant, candidate, vacancy, changes, field
):
    placement_id = started(matching, tenant, keys, candidate, vacancy)
    before = snapshot(matching)
    body = {"date": TODAY.isoformat(), **GOOD, **changes}

    response = matching.client.post(
        f"{base(tenant)}/{placement_id}/checkins", json=body, headers=bearer(keys["jobcoach"])
    )

    assert field in assert_problem(response, 422)["errors"]
    assert snapshot(matching) == before


def test_a_check_in_missing_its_fields_names_each_of_them(matching, keys, tenant, candidate, vacancy):
    placement_id = started(matching, tenant, keys, candidate, vacancy)

    response = matching.client.post(
        f"{base(tenant)}/{placement_id}/checkins", json={}, headers=bearer(keys["jobcoach"])
    )

    assert {"date", "wellbeing", "hours_worked", "absence_days"} <= set(assert_problem(response, 422)["errors"])


def test_the_future_is_judged_by_the_injected_clock(matching, keys, tenant, candidate, vacancy, clock):
    placement_id = started(matching, tenant, keys, candidate, vacancy)
    later = TODAY + timedelta(days=5)
    assert_problem(check_in(matching, tenant, keys["jobcoach"], placement_id, later, GOOD), 422)

    clock.advance(days=5)

    assert check_in(matching, tenant, keys["jobcoach"], placement_id, later, GOOD).status_code == 201


def test_a_check_in_on_an_ended_placement_is_409_and_changes_nothing(matching, keys, tenant, candidate, vacancy):
    placement_id = started(matching, tenant, keys, candidate, vacancy)
    assert end(matching, tenant, keys["jobcoach"], placement_id, TODAY - timedelta(days=2)).status_code == 200
    before = snapshot(matching)

    response = check_in(matching, tenant, keys["jobcoach"], placement_id, TODAY, GOOD)

    assert "ended" in assert_problem(response, 409)["detail"]
    assert snapshot(matching) == before


def test_a_second_check_in_on_the_same_day_is_409(matching, keys, tenant, candidate, vacancy):
    placement_id = started(matching, tenant, keys, candidate, vacancy)
    checked_in(matching, tenant, keys, placement_id, TODAY, GOOD)
    before = snapshot(matching)

    assert_problem(check_in(matching, tenant, keys["jobcoach"], placement_id, TODAY, BAD), 409)
    assert snapshot(matching) == before


@pytest.mark.parametrize(("caller", "status"), [("jobcoach2", 404), ("employer", 403), ("operator", 403)])
def test_only_the_placements_jobcoach_checks_in(matching, keys, tenant, candidate, vacancy, caller, status):
    placement_id = started(matching, tenant, keys, candidate, vacancy)
    before = snapshot(matching)

    assert_problem(check_in(matching, tenant, keys[caller], placement_id, TODAY, GOOD), status)
    assert_problem(check_in(matching, tenant, keys["jobcoach"], str(uuid.uuid4()), TODAY, GOOD), 404)
    assert snapshot(matching) == before


def test_a_check_in_for_another_regions_placement_is_404(
    matching, keys, tenant, candidate, vacancy, other_tenant_jobcoach
):
    placement_id = started(matching, tenant, keys, candidate, vacancy)
    before = snapshot(matching)

    response = check_in(matching, f"{tenant}-b", other_tenant_jobcoach, placement_id, TODAY, GOOD)

    assert_problem(response, 404)
    assert snapshot(matching) == before


# --------------------------------------------------------------------------------------------------------
# Risk episodes


def test_at_risk_is_announced_once_per_episode_through_a_sequence_of_check_ins(
    matching, keys, tenant, candidate, vacancy
):
    placement_id = started(
        matching, tenant, keys, candidate, vacancy, start_date=(TODAY - timedelta(days=70)).isoformat()
    )
    days = [TODAY - timedelta(days=d) for d in (63, 56, 49, 42, 35, 28, 21, 14, 7)]
    sequence = [GOOD, BAD, BAD, MIDDLING, GOOD, GOOD, BAD, BAD, BAD]
    scores, at_risk = [], []
    for on, values in zip(days, sequence, strict=True):
        risk = checked_in(matching, tenant, keys, placement_id, on, values)["placement"]["risk"]
        scores.append(risk["score"])
        at_risk.append(risk["at_risk"])

    assert at_risk == [False, True, True, True, False, False, True, True, True]
    assert 0.45 <= scores[3] <= 0.6, "a middling check-in in between neither alerts nor releases"
    alerts = outbox_events(matching, EventType.PLACEMENT_AT_RISK)
    assert [event.data["episode"] for event in alerts] == [1, 2]
    first = alerts[0]
    assert first.subject == placement_id
    assert (first.data["candidate_id"], first.data["vacancy_id"], first.data["jobcoach_id"]) == (
        candidate,
        vacancy,
        "jc-1",
    )
    assert first.data["score"] == scores[1] > 0.6
    assert first.data["model_version"] == "default-1"
    assert first.data["threshold"] == 0.6
    # The reasons name the check-ins' signals: the API shows them, the event does not carry them.
    assert first.data["reasons"] == []
    body = matching.client.get(f"{base(tenant)}/{placement_id}", headers=bearer(keys["jobcoach"])).get_json()
    assert {reason["feature"] for reason in body["risk"]["reasons"]} & {"work_signals", "low_wellbeing"}
    assert all(reason["label"] and reason["contribution"] > 0 for reason in body["risk"]["reasons"])
    assert body["risk"]["episode"] == 2 and body["risk"]["at_risk"] is True


def test_a_tenants_own_threshold_decides_when_to_alert(matching, registry, keys, tenant, candidate, vacancy):
    registry.change_settings(tenant, {"risk_threshold": "0.95", "risk_release": "0.5"})
    placement_id = started(matching, tenant, keys, candidate, vacancy)

    checked_in(matching, tenant, keys, placement_id, TODAY - timedelta(days=7), GOOD)
    risk = checked_in(matching, tenant, keys, placement_id, TODAY, BAD)["placement"]["risk"]

    assert 0.6 < risk["score"] < 0.95
    assert risk["at_risk"] is False
    assert outbox_events(matching, EventType.PLACEMENT_AT_RISK) == []


# --------------------------------------------------------------------------------------------------------
# Ending


def test_ending_a_placement_records_the_outcome_announces_it_and_keeps_an_anonymous_training_row(
    matching, keys, tenant, candidate, vacancy
):
    placement_id = started(matching, tenant, keys, candidate, vacancy)
    checked_in(matching, tenant, keys, placement_id, TODAY - timedelta(days=3), BAD)

    response = end(matching, tenant, keys["jobcoach"], placement_id, TODAY, "ended_by_candidate", reason="verhuisd")

    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["outcome"], body["end_date"]) == ("ended", "ended_by_candidate", TODAY.isoformat())
    assert body["reason"] == "verhuisd"
    assert body["next_checkin_due"] is None
    (event,) = outbox_events(matching, EventType.PLACEMENT_ENDED)
    assert event.data["outcome"] == "ended_by_candidate" and event.data["end_date"] == TODAY
    assert "verhuisd" not in str(event.data), "the free-text reason stays in the service"
    with matching.db.session() as session:
        ((features, broke_down),) = pstore.training_rows(session, tenant)
    assert broke_down is True
    assert features["work_signals"] > 0


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"date": TODAY.isoformat(), "outcome": "vanished"}, 422, "outcome"),
        ({"date": TODAY.isoformat()}, 422, "outcome"),
        ({"outcome": "retained"}, 422, "date"),
        ({"date": (TODAY + timedelta(days=1)).isoformat(), "outcome": "retained"}, 422, "date"),
        ({"date": (START - timedelta(days=1)).isoformat(), "outcome": "retained"}, 422, "date"),
        ({"date": (TODAY - timedelta(days=6)).isoformat(), "outcome": "retained"}, 422, "date"),
        ({"date": TODAY.isoformat(), "outcome": "retained", "reason": "x" * 501}, 422, "reason"),
    ],
)
def test_a_bad_ending_is_refused_and_changes_nothing(matching, keys, tenant, candidate, vacancy, body, status, field):
    placement_id = started(matching, tenant, keys, candidate, vacancy)
    checked_in(matching, tenant, keys, placement_id, TODAY - timedelta(days=5), GOOD)
    before = snapshot(matching)

    response = matching.client.post(f"{base(tenant)}/{placement_id}/end", json=body, headers=bearer(keys["jobcoach"]))

    assert field in assert_problem(response, status)["errors"]
    assert snapshot(matching) == before


def test_ending_twice_is_409_and_another_jobcoach_cannot_end_it(matching, keys, tenant, candidate, vacancy):
    placement_id = started(matching, tenant, keys, candidate, vacancy)
    assert_problem(end(matching, tenant, keys["jobcoach2"], placement_id, TODAY), 404)
    assert end(matching, tenant, keys["jobcoach"], placement_id, TODAY).status_code == 200
    before = snapshot(matching)

    assert_problem(end(matching, tenant, keys["jobcoach"], placement_id, TODAY, "ended_by_employer"), 409)
    assert snapshot(matching) == before


# --------------------------------------------------------------------------------------------------------
# The overdue scheduler on an injected clock


def test_the_scheduler_reports_each_gap_in_check_ins_once(matching, keys, tenant, candidate, vacancy, clock):
    placement_id = started(matching, tenant, keys, candidate, vacancy, start_date=TODAY.isoformat())
    settings_of = matching.context.registry.settings

    def scan_on(offset: int) -> int:
        return scheduler.scan(matching.db, settings_of, TODAY + timedelta(days=offset))

    assert scan_on(13) == 0
    assert scan_on(14) == 1
    assert scan_on(14) == 0
    assert scan_on(25) == 0, "the same gap is reported once, however long it lasts"
    clock.advance(days=26)
    checked_in(matching, tenant, keys, placement_id, TODAY + timedelta(days=26), GOOD)
    assert scan_on(39) == 0
    assert scan_on(40) == 1
    clock.advance(days=74)
    checked_in(matching, tenant, keys, placement_id, TODAY + timedelta(days=100), GOOD)
    assert scan_on(127) == 0, "after the first three months the cadence is four weeks"
    assert scan_on(128) == 1

    events = outbox_events(matching, EventType.PLACEMENT_CHECKIN_OVERDUE)
    assert [event.data["episode"] for event in events] == [1, 2, 3]
    assert [event.data["due_since"] for event in events] == [TODAY + timedelta(days=d) for d in (14, 40, 128)]
    assert [event.data["last_checkin"] for event in events] == [
        None,
        TODAY + timedelta(days=26),
        TODAY + timedelta(days=100),
    ]
    assert [event.data["cadence_days"] for event in events] == [14, 14, 28]
    assert all(
        (e.subject, e.data["candidate_id"], e.data["vacancy_id"], e.data["jobcoach_id"])
        == (placement_id, candidate, vacancy, "jc-1")
        for e in events
    )


def test_each_overdue_check_in_the_scheduler_reports_starts_a_trace_of_its_own(
    matching, keys, tenant, candidate, vacancy, clock
):
    placement_id = started(matching, tenant, keys, candidate, vacancy, start_date=TODAY.isoformat())
    settings_of = matching.context.registry.settings
    assert scheduler.scan(matching.db, settings_of, TODAY + timedelta(days=14)) == 1
    clock.advance(days=26)
    checked_in(matching, tenant, keys, placement_id, TODAY + timedelta(days=26), GOOD)
    assert scheduler.scan(matching.db, settings_of, TODAY + timedelta(days=40)) == 1

    events = outbox_events(matching, EventType.PLACEMENT_CHECKIN_OVERDUE)
    traces = [tracing.parse(event.extensions.get("traceparent")) for event in events]
    assert len(traces) == 2 and None not in traces, "a scheduled report names the trace it started"
    assert len({trace.trace_id for trace in traces if trace}) == 2, "two reports, two traces"


def test_the_scheduler_follows_the_tenants_cadence_and_skips_ended_placements(
    matching, registry, keys, tenant, candidate, vacancy, clock
):
    registry.change_settings(tenant, {"checkin_days_early": "7"})
    placement_id = started(matching, tenant, keys, candidate, vacancy, start_date=TODAY.isoformat())
    settings_of = matching.context.registry.settings

    assert scheduler.scan(matching.db, settings_of, TODAY + timedelta(days=7)) == 1
    clock.advance(days=8)
    assert end(matching, tenant, keys["jobcoach"], placement_id, TODAY + timedelta(days=8)).status_code == 200
    assert scheduler.scan(matching.db, settings_of, TODAY + timedelta(days=60)) == 0


def test_the_scheduler_loop_scans_when_the_clock_moves_to_another_day(
    matching, keys, tenant, candidate, vacancy, clock
):
    import threading

    started(matching, tenant, keys, candidate, vacancy, start_date=TODAY.isoformat())
    loop = scheduler.scheduler_loop(
        matching.db, matching.context.registry.settings, clock, interval_s=3600, tick_s=0.02
    )
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,), daemon=True)
    thread.start()
    try:
        clock.advance(days=15)
        for _ in range(250):
            if outbox_events(matching, EventType.PLACEMENT_CHECKIN_OVERDUE):
                break
            stop.wait(0.02)
    finally:
        stop.set()
        thread.join(5)

    assert len(outbox_events(matching, EventType.PLACEMENT_CHECKIN_OVERDUE)) == 1


# --------------------------------------------------------------------------------------------------------
# Events the worker takes


@pytest.mark.parametrize("relayed", [False, True], ids=["unsent", "sent"])
def test_an_erased_candidate_takes_their_placements_check_ins_and_outbox_rows_along(
    matching, feed, keys, tenant, candidate, vacancy, relayed
):
    placement_id = started(matching, tenant, keys, candidate, vacancy)
    checked_in(matching, tenant, keys, placement_id, TODAY, BAD)
    assert outbox_events(matching, EventType.PLACEMENT_AT_RISK)
    if relayed:
        # Published rows were kept a day for nothing; an erasure takes them at once.
        with matching.db.session() as session:
            session.execute(matching.store.outbox.table.update().values(published_at=datetime.now(UTC)))

    feed(EventType.CANDIDATE_ERASED, {"jobcoach_id": "jc-1"}, subject=candidate)

    with matching.db.session() as session:
        assert session.execute(sa.select(pstore.placements)).all() == []
        assert session.execute(sa.select(pstore.checkins)).all() == []
    assert [e for e in outbox_events(matching) if e.type.startswith("nl.werkbrug.placement.")] == []
    assert_problem(matching.client.get(f"{base(tenant)}/{placement_id}", headers=bearer(keys["jobcoach"])), 404)


def test_a_candidate_tombstone_erases_their_placements_too(matching, keys, tenant, candidate, vacancy):
    started(matching, tenant, keys, candidate, vacancy)
    with matching.db.session() as session:
        for handler in worker.TOMBSTONE_HANDLERS[Topic.CANDIDATE_EVENTS]:
            handler(session, tenant, candidate)

    with matching.db.session() as session:
        assert session.execute(sa.select(pstore.placements)).all() == []


def test_a_candidate_who_changes_jobcoach_takes_their_placements_along(
    matching, feed, keys, tenant, candidate, vacancy
):
    placement_id = started(matching, tenant, keys, candidate, vacancy)
    data = copy.deepcopy(load_example(EventType.CANDIDATE_UPDATED)["data"])
    data["jobcoach_id"] = "jc-2"

    feed(EventType.CANDIDATE_UPDATED, data, subject=candidate)

    url = f"{base(tenant)}/{placement_id}"
    assert matching.client.get(url, headers=bearer(keys["jobcoach2"])).status_code == 200
    assert_problem(matching.client.get(url, headers=bearer(keys["jobcoach"])), 404)


def test_an_acknowledgement_keeps_only_the_type_and_the_seconds(matching, feed, tenant):
    data = load_example(EventType.ALERT_ACKNOWLEDGED)["data"]

    feed(EventType.ALERT_ACKNOWLEDGED, data)

    with matching.db.session() as session:
        rows = session.execute(sa.select(pstore.alert_acknowledgements)).mappings().all()
    assert [(r["tenant"], r["alert_type"], r["seconds"]) for r in rows] == [(tenant, "placement_at_risk", 23400.0)]
    with pytest.raises(InvalidEvent):
        feed(EventType.ALERT_ACKNOWLEDGED, {**data, "acknowledged_at": "2026-11-19T08:00:00.000Z"})


# --------------------------------------------------------------------------------------------------------
# Training and rolling back a tenant's model


@pytest.fixture
def cli_env(monkeypatch, matching, registry):
    monkeypatch.setenv("DATABASE_URL", matching.context.settings.database_url)
    monkeypatch.setenv("REGISTRY_DATABASE_URL", registry.db.url)


def test_training_refuses_without_enough_outcomes_and_the_default_stays(cli_env, matching, tenant, capsys):
    assert cli.main(["risk", "train", "--tenant", tenant]) == 2

    assert "at least 30" in capsys.readouterr().err
    with matching.db.session() as session:
        assert pstore.risk_models.active(session, tenant) is None
    assert cli.main(["risk", "rollback", "--tenant", tenant]) == 2
    assert cli.main(["risk", "train", "--tenant", "no-such-region"]) == 2


def test_a_trained_model_scores_the_next_check_ins_until_it_is_rolled_back(
    cli_env, matching, keys, tenant, candidate, vacancy, capsys
):
    with matching.db.session() as session:
        for i in range(40):
            broke = i % 3 == 0
            values = {"work_signals": 1.0 if broke else 0.0, "low_wellbeing": 0.5 if broke else -0.5}
            pstore.add_training_row(session, tenant, values, broke)
        pstore.add_training_row(session, f"{tenant}-b", {"absence": 1.0}, True)

    assert cli.main(["risk", "train", "--tenant", tenant]) == 0
    assert f"{tenant}-1" in capsys.readouterr().err
    placement_id = started(matching, tenant, keys, candidate, vacancy)
    trained = checked_in(matching, tenant, keys, placement_id, TODAY - timedelta(days=1), BAD)["placement"]["risk"]
    assert cli.main(["risk", "train", "--tenant", tenant]) == 0
    assert cli.main(["risk", "rollback", "--tenant", tenant]) == 0
    assert f"{tenant}-2 rolled back; {tenant} now uses {tenant}-1" in capsys.readouterr().err
    assert cli.main(["risk", "rollback", "--tenant", tenant]) == 0
    default = checked_in(matching, tenant, keys, placement_id, TODAY, BAD)["placement"]["risk"]

    assert trained["model_version"] == f"{tenant}-1"
    assert {reason["feature"] for reason in trained["reasons"]} == {"work_signals", "low_wellbeing"}
    assert default["model_version"] == "default-1"
    with matching.db.session() as session:
        versions = session.execute(
            sa.select(pstore.risk_models.table.c.version, pstore.risk_models.table.c.retired_at)
        ).all()
    assert sorted(v for v, retired in versions if retired is not None) == [f"{tenant}-1", f"{tenant}-2"]


# --------------------------------------------------------------------------------------------------------
# Migrations


def test_the_migrations_create_exactly_the_tables_the_code_uses(matching):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with matching.db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, matching.store.metadata)

    assert differences == []


def test_the_openapi_document_lists_the_placement_paths(matching):
    paths = matching.client.get("/openapi.json").get_json()["paths"]

    assert {"get", "post"} <= set(paths["/v1/tenants/{tenant}/placements"])
    assert "get" in paths["/v1/tenants/{tenant}/placements/{placement_id}"]
    assert "post" in paths["/v1/tenants/{tenant}/placements/{placement_id}/checkins"]
    assert "post" in paths["/v1/tenants/{tenant}/placements/{placement_id}/end"]
    assert "get" in paths["/v1/tenants/{tenant}/insights"]


def test_the_database_itself_refuses_a_second_active_placement_for_the_same_pair(
    matching, keys, tenant, candidate, vacancy, clock
):
    # Two requests at the same instant both pass the check in the command; the unique index stops one.
    first = started(matching, tenant, keys, candidate, vacancy)
    duplicate = {
        "id": "a-second-placement",
        "candidate_id": candidate,
        "vacancy_id": vacancy,
        "jobcoach_id": "jc-1",
        "start_date": date(2026, 11, 2),
        "agreed_hours": 16,
        "supports_agreed": [],
    }
    with pytest.raises(IntegrityError), matching.db.session() as session:
        pstore.insert_placement(session, tenant, duplicate)

    assert end(matching, tenant, keys["jobcoach"], first, clock().date()).status_code == 200
    with matching.db.session() as session:
        pstore.insert_placement(session, tenant, duplicate)
        assert pstore.get_placement(session, tenant, "a-second-placement")["status"] == "active"
