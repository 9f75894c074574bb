"""Where an ending leaves the candidate on the Participatieladder."""

from __future__ import annotations

import pytest

from services.matching.placements.ladder import step_after


@pytest.mark.parametrize(("step", "expected"), [(1, 2), (4, 5), (5, 6), (6, 6)])
def test_a_step_up_is_one_rung_up_to_at_most_six(step, expected):
    assert step_after("step_up", step, "regular_paid") == expected


@pytest.mark.parametrize(
    ("kind", "step", "expected"),
    [
        ("sheltered", 3, 5),
        ("supported_paid", 4, 5),
        ("work_experience", 4, 5),
        ("regular_paid", 4, 6),
        (None, 4, 6),
        ("sheltered", 6, 6),
    ],
)
def test_paid_work_is_rung_five_with_support_six_without_and_never_a_step_down(kind, step, expected):
    assert step_after("moved_to_paid_work", step, kind) == expected


@pytest.mark.parametrize("outcome", ["retained", "ended_by_candidate", "ended_by_employer"])
def test_other_endings_leave_the_step_alone(outcome):
    assert step_after(outcome, 3, "sheltered") is None
