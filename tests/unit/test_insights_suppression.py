"""Small-cell suppression for the insights: no cell under 11 is shown, and none can be worked out from the
cells that are shown."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

import numpy as np
import pytest

from services.matching.placements import insights
from services.matching.placements.insights import (
    CellTable,
    Equation,
    PlacementFacts,
    RawFigures,
    build_insights,
    suppress,
)

TODAY = date(2026, 6, 1)


def determinable(counts: dict[str, int], equations: list[Equation], hidden: set[str]) -> set[str]:
    """The hidden cells whose exact value follows from the visible ones through the equations.

    With the visible cells known, the equations constrain the hidden ones to ``A_h x_h = b``; a hidden
    cell is fixed exactly when its unit vector lies in the row space of ``A_h``.
    """
    hidden_keys = sorted(hidden)
    if not equations or not hidden_keys:
        return set()
    index = {key: i for i, key in enumerate(hidden_keys)}
    rows = []
    for equation in equations:
        row = np.zeros(len(hidden_keys))
        if equation.total in index:
            row[index[equation.total]] += 1
        for part in equation.parts:
            if part in index:
                row[index[part]] -= 1
        rows.append(row)
    matrix = np.array(rows)
    rank = np.linalg.matrix_rank(matrix)
    fixed = set()
    for key in hidden_keys:
        unit = np.zeros(len(hidden_keys))
        unit[index[key]] = 1
        if np.linalg.matrix_rank(np.vstack([matrix, unit])) == rank:
            fixed.add(key)
    return fixed


# --------------------------------------------------------------------------------------------------------
# Primary suppression


@pytest.mark.parametrize(("value", "hidden"), [(0, True), (1, True), (10, True), (11, False), (500, False)])
def test_every_cell_under_eleven_is_hidden_zero_included(value, hidden):
    assert (suppress({"cell": value}) == {"cell"}) is hidden


def test_the_threshold_can_be_set():
    assert suppress({"a": 4, "b": 5}, k=5) == {"a"}


def test_a_cell_is_published_as_null_with_a_marker():
    table = CellTable()
    table.add("small", 3)
    table.add("large", 30)

    assert table.publish() == {
        "small": {"value": None, "suppressed": True},
        "large": {"value": 30, "suppressed": False},
    }


def test_a_cell_cannot_be_added_twice_and_equations_must_name_known_cells():
    table = CellTable()
    table.add("a", 1)
    with pytest.raises(ValueError):
        table.add("a", 2)
    with pytest.raises(ValueError):
        suppress({"a": 20}, [Equation("a", ("b",))])


# --------------------------------------------------------------------------------------------------------
# Complementary suppression


def test_one_hidden_part_beside_a_published_total_takes_the_smallest_other_part_with_it():
    counts = {"total": 80, "a": 5, "b": 40, "c": 20, "d": 15}

    hidden = suppress(counts, [Equation("total", ("a", "b", "c", "d"))])

    assert hidden == {"a", "d"}


def test_ties_are_broken_by_name_so_the_result_is_always_the_same():
    counts = {"total": 70, "a": 5, "x": 20, "y": 20, "z": 25}

    assert suppress(counts, [Equation("total", ("a", "x", "y", "z"))]) == {"a", "x"}


def test_two_hidden_parts_already_protect_each_other():
    counts = {"total": 60, "a": 5, "b": 7, "c": 48}

    assert suppress(counts, [Equation("total", ("a", "b", "c"))]) == {"a", "b"}


def test_a_small_total_hides_every_part():
    counts = {"total": 9, "a": 4, "b": 5}

    assert suppress(counts, [Equation("total", ("a", "b"))]) == {"total", "a", "b"}


def test_with_one_part_hidden_and_no_other_part_the_total_goes_too():
    counts = {"total": 25, "a": 3}

    assert suppress(counts, [Equation("total", ("a",))]) == {"total", "a"}


def test_a_cell_that_equals_another_is_hidden_with_it():
    counts = {"matches": 8, "alerts.match": 8}

    assert suppress(counts, [Equation("alerts.match", ("matches",))]) == {"matches", "alerts.match"}


def test_hiding_a_cell_to_protect_one_equation_cascades_through_the_next():
    # eligible_3 = band_b + band_c and eligible_6 = band_c: hiding band_b hides band_c, which then hides
    # eligible_6; and started - eligible_3 would give band_a away, so that is protected too.
    counts = {
        "started": 100,
        "band_a": 40,
        "band_b": 6,
        "band_c": 54,
        "eligible_3": 60,
        "eligible_6": 54,
        "working_6": 50,
        "stopped_6": 4,
        "working_3": 55,
        "stopped_3": 5,
    }
    equations = [
        Equation("started", ("band_a", "band_b", "band_c")),
        Equation("eligible_3", ("band_b", "band_c")),
        Equation("eligible_3", ("working_3", "stopped_3")),
        Equation("eligible_6", ("band_c",)),
        Equation("eligible_6", ("working_6", "stopped_6")),
    ]

    hidden = suppress(counts, equations)

    assert {"band_b", "band_c", "eligible_6", "stopped_6", "stopped_3", "working_3"} <= hidden
    assert "band_a" in hidden and "started" in hidden
    assert not determinable(counts, equations, hidden)


def test_after_suppression_no_equation_has_exactly_one_hidden_term():
    rng = random.Random(11)
    for _ in range(300):
        parts = [f"p{i}" for i in range(rng.randint(1, 6))]
        counts = {part: rng.choice([0, 1, 4, 9, 10, 11, 12, 30, 200]) for part in parts}
        counts["total"] = sum(counts.values())
        equation = Equation("total", tuple(parts))

        hidden = suppress(counts, [equation])

        assert sum(1 for term in ("total", *parts) if term in hidden) != 1
        assert {key for key, value in counts.items() if value < 11} <= hidden
        assert not determinable(counts, [equation], hidden)


def test_randomly_filled_insight_tables_never_let_a_hidden_cell_be_worked_out():
    rng = random.Random(5)
    for _ in range(80):
        raw = _random_raw(rng)
        table = _table_of(raw)
        hidden = suppress(table.counts, table.equations)
        assert {key for key, value in table.counts.items() if value < 11} <= hidden
        assert not determinable(table.counts, table.equations, hidden), sorted(hidden)


# --------------------------------------------------------------------------------------------------------
# The published insights


def _placement(days_ago: int, status: str = "active", lasted: int | None = None, outcome: str | None = None):
    start = TODAY - timedelta(days=days_ago)
    end = start + timedelta(days=lasted) if lasted is not None else None
    return PlacementFacts(start, status, end, outcome)


def _random_raw(rng: random.Random) -> RawFigures:
    scale = rng.choice([3, 12, 40])
    placements = []
    for _ in range(rng.randint(0, 4 * scale)):
        days_ago = rng.randint(0, 400)
        if rng.random() < 0.4 and days_ago > 1:
            outcome = rng.choice(["retained", "moved_to_paid_work", "ended_by_candidate", "ended_by_employer"])
            placements.append(_placement(days_ago, "ended", rng.randint(0, days_ago), outcome))
        else:
            placements.append(_placement(days_ago))
    return RawFigures(
        ladder_steps=[rng.randint(1, 6) for _ in range(rng.randint(0, 6 * scale))],
        support_needs=[
            [(code, rng.choice(["essential", "preferred"])) for code in rng.sample(list(insights.SUPPORT_CODES), 2)]
            for _ in range(rng.randint(0, 3 * scale))
        ],
        supports_offered=[["quiet_workplace"]] * rng.randint(0, 5),
        proposals=rng.randint(0, 3 * scale),
        placements=placements,
        alerts={"placement_at_risk": rng.randint(0, scale), "checkin_overdue": rng.randint(0, scale)},
        acknowledgements={"placement_at_risk": [rng.random() * 3600 for _ in range(rng.randint(0, scale))]},
    )


def _table_of(raw: RawFigures) -> CellTable:
    """The cell table build_insights publishes from, rebuilt by capturing what it adds."""
    captured = {}
    original = CellTable.publish

    def capture(self, k=insights.MIN_CELL_SIZE):
        captured["table"] = self
        return original(self, k)

    CellTable.publish = capture
    try:
        build_insights(raw, TODAY)
    finally:
        CellTable.publish = original
    return captured["table"]


def _big_raw() -> RawFigures:
    placements = (
        [_placement(30) for _ in range(12)]  # under three months
        + [_placement(120) for _ in range(15)]  # three to six months, still working
        + [_placement(120, "ended", 40, "ended_by_candidate") for _ in range(11)]  # stopped before 3 months
        + [_placement(300) for _ in range(20)]  # over six months, still working
        + [_placement(300, "ended", 150, "ended_by_employer") for _ in range(12)]  # stopped between 3 and 6
        + [_placement(300, "ended", 60, "moved_to_paid_work") for _ in range(11)]  # moved on: still working
        + [_placement(-10) for _ in range(3)]  # starts next week: not started yet
    )
    return RawFigures(
        ladder_steps=[step for step in range(1, 7) for _ in range(12)],
        support_needs=[[("quiet_workplace", "essential")]] * 15 + [[("quiet_workplace", "preferred")]] * 12,
        supports_offered=[["quiet_workplace", "work_buddy"]] * 4,
        proposals=25,
        placements=placements,
        alerts={"placement_at_risk": 14, "checkin_overdue": 30},
        acknowledgements={"placement_at_risk": [60.0 * i for i in range(1, 12)]},
    )


def test_a_large_region_sees_every_figure():
    result = build_insights(_big_raw(), TODAY)

    assert result["min_cell_size"] == 11
    assert result["candidates"]["total"] == {"value": 72, "suppressed": False}
    assert [row["count"]["value"] for row in result["candidates"]["by_ladder_step"]] == [12] * 6
    quiet = next(row for row in result["support_gap"] if row["code"] == "quiet_workplace")
    assert quiet["candidates_needing"]["value"] == 27
    assert (quiet["essential"]["value"], quiet["preferred"]["value"]) == (15, 12)
    assert quiet["vacancies_offering"] == 4
    assert quiet["gap"] == {"value": 23, "suppressed": False}
    placements = result["placements"]
    assert placements["started"]["value"] == 81
    assert {band: c["value"] for band, c in placements["started_by_age"].items()} == {
        "under_3_months": 12,
        "3_to_6_months": 26,
        "over_6_months": 43,
    }
    assert {part: c["value"] for part, c in placements["after_3_months"].items()} == {
        "eligible": 69,
        "still_working": 58,
        "stopped": 11,
    }
    assert {part: c["value"] for part, c in placements["after_6_months"].items()} == {
        "eligible": 43,
        "still_working": 31,
        "stopped": 12,
    }
    assert result["matches_proposed"]["value"] == 25
    assert {t: c["value"] for t, c in result["alerts_by_type"].items()} == {
        "match_proposed": 25,
        "placement_at_risk": 14,
        "checkin_overdue": 30,
    }
    medians = result["median_seconds_to_acknowledge"]
    assert medians["placement_at_risk"] == {"value": 360.0, "suppressed": False}
    assert medians["all"]["value"] == 360.0
    assert medians["checkin_overdue"] == {"value": None, "suppressed": True}


def test_an_empty_region_publishes_nothing_but_markers():
    result = build_insights(RawFigures(), TODAY)

    cells = list(_cells(result))
    assert cells
    assert all(c == {"value": None, "suppressed": True} for c in cells)


def test_a_small_support_need_hides_its_gap_too():
    raw = _big_raw()
    raw.support_needs = [[("wheelchair_access", "essential")]] * 4 + [[("wheelchair_access", "preferred")]] * 20
    row = next(r for r in build_insights(raw, TODAY)["support_gap"] if r["code"] == "wheelchair_access")

    assert row["essential"]["suppressed"]
    assert row["preferred"]["suppressed"], "the total and one level would give away the other level"
    assert row["candidates_needing"] == {"value": 24, "suppressed": False}
    assert row["gap"] == {"value": 24, "suppressed": False}

    raw.support_needs = [[("wheelchair_access", "essential")]] * 3
    row = next(r for r in build_insights(raw, TODAY)["support_gap"] if r["code"] == "wheelchair_access")
    assert row["candidates_needing"]["suppressed"]
    assert row["gap"] == {"value": None, "suppressed": True}


def test_one_small_ladder_step_takes_the_next_smallest_with_it():
    raw = _big_raw()
    raw.ladder_steps = [1] * 4 + [2] * 30 + [3] * 12 + [4] * 13 + [5] * 40 + [6] * 50
    result = build_insights(raw, TODAY)

    counts = {row["step"]: row["count"] for row in result["candidates"]["by_ladder_step"]}
    assert counts[1]["suppressed"] and counts[3]["suppressed"]
    assert [step for step, c in counts.items() if c["suppressed"]] == [1, 3]
    assert result["candidates"]["total"]["value"] == 149


def test_few_proposals_are_hidden_in_both_places_they_appear():
    raw = _big_raw()
    raw.proposals = 7
    result = build_insights(raw, TODAY)

    assert result["matches_proposed"]["suppressed"]
    assert result["alerts_by_type"]["match_proposed"]["suppressed"]


def test_a_median_over_fewer_than_eleven_acknowledgements_is_hidden():
    assert insights.median_cell([1.0] * 10) == {"value": None, "suppressed": True}
    assert insights.median_cell([1.0, 2.0, 3.0] * 4) == {"value": 2.0, "suppressed": False}


def test_still_working_counts_the_active_those_who_moved_on_and_those_who_left_after_the_milestone():
    assert insights.still_working(_placement(200), 91)
    assert insights.still_working(_placement(200, "ended", 30, "moved_to_paid_work"), 91)
    assert insights.still_working(_placement(200, "ended", 100, "ended_by_candidate"), 91)
    assert not insights.still_working(_placement(200, "ended", 90, "ended_by_candidate"), 91)


def test_the_insights_carry_no_ids():
    raw = _big_raw()
    text = json.dumps(build_insights(raw, TODAY), default=str)

    for forbidden in ("candidate_id", "jobcoach_id", "placement_id", "vacancy_id", "display_name"):
        assert forbidden not in text


def _cells(node):
    if isinstance(node, dict):
        if set(node) == {"value", "suppressed"}:
            yield node
            return
        for value in node.values():
            yield from _cells(value)
    elif isinstance(node, list):
        for value in node:
            yield from _cells(value)
