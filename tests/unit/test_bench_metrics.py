"""The measures the ranking benchmarks report: recall@k, MRR, latency percentiles, and the data parser."""

from __future__ import annotations

import pytest

from bench.matching_quality import parse_unit_group, recall_at_k, reciprocal_rank, summarise
from bench.matching_speed import latency_summary, percentile

# --------------------------------------------------------------------------------------------------------
# recall@k


def test_recall_counts_the_relevant_items_within_the_cutoff():
    ranked = ["a", "b", "c", "d"]
    assert recall_at_k(ranked, {"c"}, k=3) == 1.0
    assert recall_at_k(ranked, {"d"}, k=3) == 0.0
    assert recall_at_k(ranked, {"a", "d"}, k=3) == 0.5


def test_recall_of_an_item_never_ranked_is_zero():
    assert recall_at_k(["a", "b"], {"z"}, k=10) == 0.0
    assert recall_at_k([], {"a"}, k=10) == 0.0


def test_recall_with_fewer_results_than_k_looks_at_all_of_them():
    assert recall_at_k(["a", "b"], {"b"}, k=10) == 1.0


def test_recall_without_relevant_items_is_zero_not_an_error():
    assert recall_at_k(["a"], set(), k=10) == 0.0


def test_recall_ignores_duplicates_in_the_relevant_set():
    assert recall_at_k(["a", "b"], ["a", "a"], k=1) == 1.0


# --------------------------------------------------------------------------------------------------------
# reciprocal rank


@pytest.mark.parametrize(("position", "expected"), [(1, 1.0), (2, 0.5), (4, 0.25), (10, 0.1)])
def test_reciprocal_rank_is_one_over_the_position_counted_from_one(position, expected):
    ranked = [f"x{i}" for i in range(1, 11)]
    assert reciprocal_rank(ranked, {f"x{position}"}) == pytest.approx(expected)


def test_reciprocal_rank_takes_the_first_relevant_item():
    assert reciprocal_rank(["a", "b", "c"], {"c", "b"}) == 0.5


def test_reciprocal_rank_has_no_cutoff():
    ranked = [f"x{i}" for i in range(1, 101)]
    assert reciprocal_rank(ranked, {"x50"}) == pytest.approx(1 / 50)


def test_reciprocal_rank_of_an_item_never_ranked_is_zero():
    assert reciprocal_rank(["a", "b"], {"z"}) == 0.0
    assert reciprocal_rank([], {"a"}) == 0.0


# --------------------------------------------------------------------------------------------------------
# summarise


def test_summarise_averages_over_queries():
    rankings = [
        (["a", "b"], {"a"}),  # recall 1, rr 1
        (["b", "a"], {"a"}),  # recall 1, rr 0.5
        (["b", "c"], {"a"}),  # recall 0, rr 0
        ([f"v{i}" for i in range(20)], {"v10"}),  # beyond @10: recall 0, rr 1/11
    ]
    summary = summarise(rankings, k=10)
    assert summary["queries"] == 4
    assert summary["recall@10"] == pytest.approx(0.5)
    assert summary["mrr"] == pytest.approx(round((1 + 0.5 + 0 + 1 / 11) / 4, 4))


def test_summarise_names_the_cutoff_and_survives_no_queries():
    assert summarise([(["a"], {"a"})], k=5)["recall@5"] == 1.0
    assert summarise([], k=10) == {"queries": 0, "recall@10": 0.0, "mrr": 0.0, "precision@3": 0.0}


# --------------------------------------------------------------------------------------------------------
# latency percentiles


def test_percentile_interpolates_between_ranks():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == pytest.approx(50.5)
    assert percentile(values, 0.95) == pytest.approx(95.05)
    assert percentile([3.0], 0.95) == 3.0


def test_latency_summary_reports_milliseconds():
    summary = latency_summary([0.001, 0.002, 0.003, 0.004, 0.010])
    assert summary["count"] == 5
    assert summary["p50_ms"] == pytest.approx(3.0)
    assert summary["max_ms"] == pytest.approx(10.0)
    assert summary["p50_ms"] <= summary["p95_ms"] <= summary["max_ms"]


# --------------------------------------------------------------------------------------------------------
# the unit-group parser, on text written for this test in the layout of the published records


RECORD = (
    "Bicycle menders  Bicycle menders repair and adjust bicycles for their owners.\n"
    "Tasks include -\n"
    "(a)  replacing tyres, inner tubes and chains;\n"
    "(b)  adjusting brakes and gears; and\n"
    " (c)  advising customers on maintenance.\n"
    "(d ) keeping records of repairs.\n"
    "Examples of the occupations classified here:\n"
    "- Bicycle mender \n"
    "-  Cycle repairer\n"
    "Some related occupations classified elsewhere:\n"
    "- Motor vehicle mechanic - 7231\n"
    "Notes\n"
    "Workers who only sell bicycles are classified elsewhere.\n"
)


def test_parser_separates_title_definition_tasks_and_examples():
    group = parse_unit_group("7234", RECORD)
    assert group.code == "7234"
    assert group.title == "Bicycle menders"
    assert group.definition == "Bicycle menders repair and adjust bicycles for their owners."
    assert group.tasks == (
        "replacing tyres, inner tubes and chains",
        "adjusting brakes and gears",
        "advising customers on maintenance",
        "keeping records of repairs",
    )
    assert group.examples == ("Bicycle mender", "Cycle repairer")


def test_parser_accepts_the_variant_headers_of_the_published_records():
    record = (
        "Cooks  Cooks prepare meals.\n"
        "In such cases tasks would include -\n"
        "(a)  cooking meals;\n"
        "Example of the occupations included here\n"
        "- Cook\n"
    )
    group = parse_unit_group("5120", record)
    assert group.tasks == ("cooking meals",)
    assert group.examples == ("Cook",)


def test_parser_leaves_cross_references_and_notes_out():
    group = parse_unit_group("7234", RECORD)
    assert not any("mechanic" in text.lower() for text in (*group.tasks, *group.examples))
    assert "sell" not in group.definition
