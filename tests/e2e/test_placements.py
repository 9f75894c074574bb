"""Placements through the real system: a jobcoach's check-ins over HTTP turn into a risk alert on Kafka
exactly once, and moving every process's clock past the cadence turns into one overdue alert per gap."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TypeVar

import pytest
import requests

from shared.clock import move_clock
from shared.events import EventType, decode_event
from shared.topics import Topic
from tests.e2e.conftest import bearer
from tests.e2e.helpers import check_in, stack_today, start_placement, wait_until
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.kafka

T = TypeVar("T")

GOOD = {"wellbeing": 4, "hours_worked": 16, "absence_days": 0, "signals": ["positive_feedback"]}
MIDDLING = {"wellbeing": 3, "hours_worked": 14, "absence_days": 0, "signals": []}
BAD = {"wellbeing": 1, "hours_worked": 5, "absence_days": 3, "signals": ["conflict_with_supervisor", "missed_shift"]}


def placement_events(stack, tenant: str, placement_id: str) -> list:
    messages = read_all(
        stack.broker.bootstrap_servers,
        Topic.PLACEMENT_EVENTS,
        key_prefix=f"{tenant}/{placement_id}".encode(),
        idle_s=0.5,
    )
    return [decode_event(message.value) for message in messages]


def of_type(events: list, event_type: EventType) -> list:
    return [event for event in events if event.type == event_type]


def test_bad_check_ins_put_one_at_risk_event_on_kafka(stack):
    tenant, keys = stack.new_tenant()
    today = stack_today(stack)
    placement = start_placement(stack, tenant, keys, today - timedelta(days=21))

    first = check_in(stack, tenant, keys, placement["id"], today - timedelta(days=14), GOOD)
    second = check_in(stack, tenant, keys, placement["id"], today - timedelta(days=7), BAD)
    third = check_in(stack, tenant, keys, placement["id"], today, BAD)

    assert first["placement"]["risk"]["at_risk"] is False
    assert second["placement"]["risk"]["at_risk"] is True
    assert third["placement"]["risk"]["score"] > 0.6
    # One placement's events share a key, so they arrive in order: the third check-in comes after any
    # alert the second or third could have raised.
    events = wait_until(
        lambda: (
            (found := placement_events(stack, tenant, placement["id"]))
            and len(of_type(found, EventType.PLACEMENT_CHECKED_IN)) == 3
            and found
        ),
        60,
        "the three check-ins on placement-events",
        stack,
    )
    assert [event.type.rsplit(".", 1)[1] for event in events] == [
        "started",
        "checked_in",
        "checked_in",
        "at_risk",
        "checked_in",
    ]
    (alert,) = of_type(events, EventType.PLACEMENT_AT_RISK)
    assert alert.source == "matching" and alert.subject == placement["id"] and alert.tenant == tenant
    assert alert.data["candidate_id"] == placement["candidate_id"]
    assert alert.data["vacancy_id"] == placement["vacancy_id"]
    assert alert.data["jobcoach_id"] == keys["jobcoach_id"]
    assert alert.data["episode"] == 1
    assert alert.data["score"] == second["placement"]["risk"]["score"]
    assert alert.data["model_version"] == "default-1"
    # The reasons, wellbeing and signals are health-related and stay in matching: Kafka gets ids and scores.
    assert alert.data["reasons"] == []
    for event in events:
        assert not {"reasons", "wellbeing", "signals", "hours_worked", "absence_days"} & set(event.data) - {
            name for name, value in event.data.items() if not value
        }
    read_back = requests.get(
        f"{stack.url('matching')}/v1/tenants/{tenant}/placements/{placement['id']}",
        headers=bearer(keys["jobcoach"]),
        timeout=10,
    ).json()
    assert read_back["risk"]["at_risk"] is True and read_back["risk"]["episode"] == 1


def test_moving_the_clock_past_the_cadence_puts_one_overdue_event_per_gap_on_kafka(stack):
    tenant, keys = stack.new_tenant()
    today = stack_today(stack)
    placement = start_placement(stack, tenant, keys, today)
    check_in(stack, tenant, keys, placement["id"], today, GOOD)

    def overdue() -> list:
        return of_type(placement_events(stack, tenant, placement["id"]), EventType.PLACEMENT_CHECKIN_OVERDUE)

    time.sleep(2)
    assert overdue() == [], "nothing is due yet"

    # Time only moves forward here: other tests share the stack and its clock.
    move_clock(stack.clock_file, timedelta(days=15))
    (first,) = wait_until(overdue, 30, "the checkin_overdue event", stack)
    assert first.data["episode"] == 1
    assert first.data["last_checkin"] == today
    assert first.data["due_since"] == today + timedelta(days=14)
    assert first.data["jobcoach_id"] == keys["jobcoach_id"]
    assert (first.data["candidate_id"], first.data["vacancy_id"]) == (
        placement["candidate_id"],
        placement["vacancy_id"],
    )

    move_clock(stack.clock_file, timedelta(days=1))
    time.sleep(3)  # a new day makes the scheduler scan again within a second
    assert len(overdue()) == 1, "the same gap is reported once"

    check_in(stack, tenant, keys, placement["id"], today + timedelta(days=16), MIDDLING)
    move_clock(stack.clock_file, timedelta(days=14))
    events = wait_until(lambda: (found := overdue()) and len(found) == 2 and found, 30, "a second gap", stack)
    assert [event.data["episode"] for event in events] == [1, 2]
    assert events[1].data["due_since"] == today + timedelta(days=30)
