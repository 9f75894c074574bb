"""The candidate service's pure rules for its history: who a change is recorded as, which changes leave an
entry, how far a placement's end raises the ladder step, handovers, and whose caseload a request lists."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.candidate import domain
from services.candidate.domain import (
    actor,
    caseload_filter,
    consent_entry,
    consent_view,
    handover_problem,
    ladder_entry,
    ladder_view,
    may_see,
    rise_to,
)
from shared.registry import Principal

JOBCOACH = Principal("regio", "jobcoach", "jc-1")
OTHER_JOBCOACH = Principal("regio", "jobcoach", "jc-2")
OPERATOR = Principal("regio", "operator", None)


def candidate(**overrides) -> dict:
    return {
        "id": "c-1",
        "jobcoach_id": "jc-1",
        "ladder_step": 3,
        "consent": {"matching": True, "share_with_employers": False},
        **overrides,
    }


def test_a_jobcoach_is_recorded_by_their_id_and_an_operator_as_operator():
    assert actor(JOBCOACH) == "jc-1"
    assert actor(OPERATOR) == "operator"


@pytest.mark.parametrize(
    ("current", "after", "expected"),
    [
        (3, 5, 5),
        (5, 6, 6),
        (1, 6, 6),
        (3, 3, None),
        (5, 4, None),
        (6, 1, None),
        (3, None, None),
    ],
)
def test_a_placements_end_only_ever_raises_the_ladder_step(current, after, expected):
    assert rise_to(current, after) == expected


def test_registration_records_the_consent_and_the_step_without_a_previous_one():
    entry = consent_entry(domain.REGISTERED, None, candidate())
    assert entry == {
        "reason": "registered",
        "consent": {"matching": True, "share_with_employers": False},
        "previous": None,
    }
    assert ladder_entry(domain.REGISTERED, None, candidate()) == {
        "reason": "registered",
        "step": 3,
        "previous_step": None,
    }


def test_a_change_records_the_consent_before_and_after_and_nothing_when_it_stayed():
    before = candidate()
    after = candidate(consent={"matching": True, "share_with_employers": True})

    assert consent_entry(domain.CHANGED, before, after) == {
        "reason": "changed",
        "consent": {"matching": True, "share_with_employers": True},
        "previous": {"matching": True, "share_with_employers": False},
    }
    assert consent_entry(domain.CHANGED, before, candidate(hours_max=40)) is None


def test_a_ladder_entry_carries_its_cause_and_none_is_made_for_the_same_step():
    entry = ladder_entry(domain.PLACEMENT_ENDED, candidate(), candidate(ladder_step=5), placement_id="p-1")
    assert entry == {"reason": "placement_ended", "step": 5, "previous_step": 3, "placement_id": "p-1"}
    assert ladder_entry(domain.CHANGED, candidate(), candidate()) is None


def test_a_handover_to_the_same_jobcoach_is_refused_naming_the_field():
    assert handover_problem(candidate(), "jc-2") is None
    assert set(handover_problem(candidate(), "jc-1")) == {"jobcoach_id"}


def test_after_a_handover_only_the_new_jobcoach_and_the_operator_see_the_candidate():
    handed_over = candidate(jobcoach_id="jc-2")
    assert not may_see(JOBCOACH, handed_over)
    assert may_see(OTHER_JOBCOACH, handed_over)
    assert may_see(OPERATOR, handed_over)


@pytest.mark.parametrize(
    ("principal", "asked", "listed", "refused"),
    [
        (JOBCOACH, None, "jc-1", False),
        (JOBCOACH, "jc-1", "jc-1", False),
        (JOBCOACH, "jc-2", None, True),
        (OPERATOR, None, None, False),
        (OPERATOR, "jc-2", "jc-2", False),
    ],
)
def test_a_caseload_lists_a_jobcoachs_own_and_the_operator_any_jobcoachs(principal, asked, listed, refused):
    jobcoach_id, problem = caseload_filter(principal, asked)
    assert jobcoach_id == listed
    assert (problem is not None) == refused
    if refused:
        assert set(problem) == {"jobcoach_id"}


def test_history_views_answer_every_member_with_null_where_it_does_not_apply():
    at = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    introduction = consent_view(
        {
            "kind": domain.INTRODUCTION_DECLINED,
            "recorded_at": at,
            "recorded_by": "jc-1",
            "details": {"introduction_id": "i-1", "vacancy_id": "v-1", "employer_id": "emp-1", "vacancy_title": None},
        }
    )
    assert introduction["type"] == "introduction_declined"
    assert introduction["consent"] is introduction["previous"] is introduction["reason"] is None
    assert (introduction["introduction_id"], introduction["recorded_at"]) == ("i-1", at)

    step = ladder_view(
        {
            "kind": domain.LADDER,
            "recorded_at": at,
            "recorded_by": "operator",
            "details": {"reason": "changed", "step": 4, "previous_step": 3},
        }
    )
    assert step == {
        "step": 4,
        "previous_step": 3,
        "reason": "changed",
        "placement_id": None,
        "outcome": None,
        "end_date": None,
        "recorded_at": at,
        "recorded_by": "operator",
    }
