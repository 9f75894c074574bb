"""The 35-region benchmark's sizes, request plan and summary of answers."""

from __future__ import annotations

from collections import Counter

from bench.regions import REGIONS, Answer, region_sizes, request_plan, summarise_answers


def test_every_region_has_a_size_in_the_stated_ranges_the_same_on_every_run():
    regions = region_sizes()
    assert [region.tenant for region in regions] == list(REGIONS)
    assert len(set(REGIONS)) == 35
    assert all(500 <= region.vacancies <= 5_000 and 200 <= region.candidates <= 2_000 for region in regions)
    assert region_sizes() == regions
    # Drawn, not all alike.
    assert len({region.vacancies for region in regions}) > 30


def test_a_scaled_run_keeps_the_proportions_and_at_least_one_of_each():
    full, tenth = region_sizes(), region_sizes(0.1)
    assert [region.vacancies for region in tenth] == [round(region.vacancies * 0.1) for region in full]
    assert min(region.candidates for region in region_sizes(0.0001)) == 1


def test_the_plan_asks_every_region_equally_for_its_own_candidates_in_mixed_order():
    regions = region_sizes(0.1)
    plan = request_plan(regions, 4)
    assert Counter(tenant for tenant, _ in plan) == {region.tenant: 4 for region in regions}
    sizes = {region.tenant: region.candidates for region in regions}
    assert all(int(candidate.removeprefix("c-")) < sizes[tenant] for tenant, candidate in plan)
    # Shuffled: the first 35 requests are not one region's.
    assert len({tenant for tenant, _ in plan[:35]}) > 10


def test_refusals_are_counted_apart_and_left_out_of_the_latency_of_answers():
    answers = [
        Answer("a", 0.010, 200, None),
        Answer("a", 0.030, 200, None),
        Answer("b", 2.0, 503, "2"),
        Answer("c", 2.0, 503, None),
        Answer("c", 0.5, 500, None),
    ]
    summary = summarise_answers(answers)
    assert summary["status_200"] == 2
    assert summary["status_503_with_retry_after"] == 1
    assert summary["status_503_without_retry_after"] == 1
    assert summary["other_status"] == [500]
    assert summary["regions_with_a_503"] == 2
    assert summary["latency_200"]["max_ms"] == 30.0
    assert summary["latency_all"]["max_ms"] == 2000.0
