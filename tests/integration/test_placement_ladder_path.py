"""The path up the ladder on a real database: learning goals, planned end, supervisor and buddy on a
placement; goal progress on check-ins; and the rung an ending leaves the candidate on, in its event."""

# The placements suite's fixtures are imported by name, and pytest hands them back as arguments.
# ruff: noqa: F811

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from shared.events import EventType, load_example
from tests.integration.conftest import bearer
from tests.integration.helpers import assert_problem, snapshot
from tests.integration.test_placements_api import (  # noqa: F401  (fixtures)
    GOOD,
    START,
    TODAY,
    base,
    candidate,
    check_in,
    clock,
    end,
    feed,
    matching,
    outbox_events,
    start,
    started,
    vacancy,
)

GOALS = ["orderpicken", "op tijd beginnen"]


def test_a_placement_carries_its_path_up_the_ladder_and_shows_it(matching, keys, tenant, candidate, vacancy):
    extra = {
        "learning_goals": GOALS,
        "planned_end_date": (START + timedelta(days=180)).isoformat(),
        "supervisor_arranged": True,
        "buddy_arranged": False,
    }
    placement_id = started(matching, tenant, keys, candidate, vacancy, **extra)

    body = matching.client.get(f"{base(tenant)}/{placement_id}", headers=bearer(keys["jobcoach"])).get_json()

    assert {key: body[key] for key in extra} == extra
    (event,) = outbox_events(matching, EventType.PLACEMENT_STARTED)
    assert "learning_goals" not in event.data


def test_a_placement_without_a_path_shows_empty_goals(matching, keys, tenant, candidate, vacancy):
    placement_id = started(matching, tenant, keys, candidate, vacancy)
    body = matching.client.get(f"{base(tenant)}/{placement_id}", headers=bearer(keys["jobcoach"])).get_json()
    assert body["learning_goals"] == [] and body["planned_end_date"] is None and body["buddy_arranged"] is None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"learning_goals": ["x" * 101]}, "learning_goals"),
        ({"learning_goals": [f"doel {n}" for n in range(21)]}, "learning_goals"),
        ({"learning_goals": ["a", "a"]}, "learning_goals"),
        ({"learning_goals": "orderpicken"}, "learning_goals"),
        ({"planned_end_date": "soon"}, "planned_end_date"),
        ({"planned_end_date": (START - timedelta(days=1)).isoformat()}, "planned_end_date"),
        ({"supervisor_arranged": "yes"}, "supervisor_arranged"),
        ({"buddy_arranged": 1}, "buddy_arranged"),
    ],
)
def test_a_bad_path_is_422_naming_the_field_and_changes_nothing(
    matching,
    keys,
    tenant,
    candidate,
    vacancy,
    extra,
    field,
):
    before = snapshot(matching)
    body = assert_problem(start(matching, tenant, keys["jobcoach"], candidate, vacancy, **extra), 422)
    assert field in str(body["errors"])
    assert snapshot(matching) == before


def test_a_check_in_records_progress_on_the_placements_own_goals(matching, keys, tenant, candidate, vacancy):
    placement_id = started(matching, tenant, keys, candidate, vacancy, learning_goals=GOALS)

    response = check_in(
        matching, tenant, keys["jobcoach"], placement_id, TODAY, {**GOOD, "goal_progress": {"orderpicken": 2}}
    )

    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["goal_progress"] == {"orderpicken": 2}
    detail = matching.client.get(f"{base(tenant)}/{placement_id}", headers=bearer(keys["jobcoach"])).get_json()
    assert detail["recent_checkins"][0]["goal_progress"] == {"orderpicken": 2}


@pytest.mark.parametrize("progress", [{"koken": 1}, {"orderpicken": 4}, {"orderpicken": -1}, {"orderpicken": "2"}])
def test_progress_on_another_goal_or_out_of_range_is_422_and_changes_nothing(
    matching,
    keys,
    tenant,
    candidate,
    vacancy,
    progress,
):
    placement_id = started(matching, tenant, keys, candidate, vacancy, learning_goals=GOALS)
    before = snapshot(matching)

    response = check_in(matching, tenant, keys["jobcoach"], placement_id, TODAY, {**GOOD, "goal_progress": progress})

    assert "goal_progress" in str(assert_problem(response, 422)["errors"])
    assert snapshot(matching) == before


@pytest.fixture
def placed_on(feed, matching, keys, tenant):
    """A placement of a candidate on ``step`` at a vacancy of ``kind``."""

    def place(step: int, kind: str) -> str:
        person = copy.deepcopy(load_example(EventType.CANDIDATE_REGISTERED)["data"])
        person.update(jobcoach_id="jc-1", ladder_step=step)
        job = copy.deepcopy(load_example(EventType.VACANCY_POSTED)["data"])
        job.update(employer_id="emp-1", kind=kind)
        return started(
            matching, tenant, keys, feed(EventType.CANDIDATE_REGISTERED, person), feed(EventType.VACANCY_POSTED, job)
        )

    return place


@pytest.mark.parametrize(
    ("outcome", "step", "kind", "after"),
    [
        ("step_up", 3, "work_experience", 4),
        ("step_up", 6, "regular_paid", 6),
        ("moved_to_paid_work", 4, "supported_paid", 5),
        ("moved_to_paid_work", 4, "regular_paid", 6),
        ("retained", 4, "regular_paid", None),
    ],
)
def test_an_ending_up_the_ladder_names_the_step_after_in_its_event(
    matching, keys, tenant, placed_on, outcome, step, kind, after
):
    placement_id = placed_on(step, kind)

    response = end(matching, tenant, keys["jobcoach"], placement_id, TODAY, outcome)

    assert response.status_code == 200, response.get_data(as_text=True)
    (event,) = outbox_events(matching, EventType.PLACEMENT_ENDED)
    assert event.data["outcome"] == outcome
    assert event.data["ladder_step_after"] == after
