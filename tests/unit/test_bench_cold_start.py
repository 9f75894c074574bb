"""The figures the cold-start benchmark reports from one restart's answers."""

from __future__ import annotations

from bench.cold_start import Answer, median_of, ratio, summarise


def test_the_first_request_is_the_slowest_first_of_the_clients_not_the_slowest_overall():
    answers = [
        Answer(client=0, sent_s=10.0, seconds=4.0, status=200),
        Answer(client=1, sent_s=10.0, seconds=6.0, status=200),
        Answer(client=0, sent_s=14.0, seconds=9.0, status=200),
        Answer(client=1, sent_s=16.0, seconds=0.5, status=200),
    ]
    figures = summarise(answers)
    assert figures["first_request_ms"] == 6000.0
    assert figures["max_ms"] == 9000.0
    assert figures["count"] == 4
    assert figures["slowest_nth_of_its_client"] == 2


def test_refusals_are_counted_with_their_retry_after_and_the_first_answer_is_the_first_200():
    answers = [
        Answer(client=0, sent_s=5.0, seconds=2.0, status=503, retry_after="2"),
        Answer(client=1, sent_s=5.0, seconds=2.0, status=503, retry_after="2"),
        Answer(client=0, sent_s=7.0, seconds=3.0, status=200),
        Answer(client=1, sent_s=7.0, seconds=1.0, status=503),
        Answer(client=1, sent_s=8.0, seconds=0.1, status=500),
    ]
    figures = summarise(answers)
    assert figures["status_200"] == 1
    assert figures["status_503"] == 3
    assert figures["status_503_with_retry_after"] == 2
    assert figures["retry_after_s"] == ["2"]
    assert figures["other_status"] == [500]
    assert figures["first_200_s"] == 10.0


def test_a_restart_that_never_answered_200_has_no_first_answer():
    assert summarise([Answer(client=0, sent_s=1.0, seconds=2.0, status=503)])["first_200_s"] is None


def test_medians_skip_runs_without_the_figure_and_ratios_need_both_sides():
    runs = [{"ready_s": 3.0}, {"ready_s": 5.0}, {"ready_s": None}, {}]
    assert median_of(runs, "ready_s") == 4.0
    assert median_of(runs, "missing") is None
    assert ratio(30.0, 2.0) == 15.0
    assert ratio(None, 2.0) is None
    assert ratio(30.0, 0.0) is None
