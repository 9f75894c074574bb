"""The reranker: switches on only with enough outcomes, stays interpretable and versioned, moves scores sanely."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta

import numpy as np
import pytest

from services.matching.ranking import rank, reranker, scoring
from services.matching.ranking.profiles import CandidateProfile, VacancyProfile
from services.matching.ranking.reranker import COMPONENTS, MIN_OUTCOMES, RerankerModel, TrainingRefused, lasted, train
from services.matching.ranking.scoring import Ranking

TENANT = "noord-limburg"


def synthetic_outcomes(n: int, seed: int = 1) -> list[tuple[dict[str, float], bool]]:
    """Placements that last when the hours fit, whatever the talent match: what a region might learn."""
    rng = random.Random(seed)
    outcomes = []
    for _ in range(n):
        components = {name: rng.random() for name in COMPONENTS}
        outcomes.append((components, rng.random() < 0.1 + 0.8 * components["hours"]))
    return outcomes


def test_refuses_to_switch_on_with_fewer_outcomes_than_the_minimum():
    with pytest.raises(TrainingRefused, match=f"switches on at {MIN_OUTCOMES}"):
        train(TENANT, 1, synthetic_outcomes(MIN_OUTCOMES - 1))
    with pytest.raises(TrainingRefused):
        train(TENANT, 1, [])


def test_refuses_outcomes_that_are_all_of_one_kind():
    every_one_lasted = [(components, True) for components, _ in synthetic_outcomes(80)]
    with pytest.raises(TrainingRefused, match="of each"):
        train(TENANT, 1, every_one_lasted)


def test_learns_which_component_predicts_a_lasting_placement():
    model = train(TENANT, 3, synthetic_outcomes(400))
    assert model.version == f"rerank-{TENANT}-3"
    assert model.trained_on == 400
    assert max(model.coefficients, key=model.coefficients.get) == "hours"
    assert model.coefficients["hours"] > 1.0
    assert abs(model.coefficients["talent"]) < model.coefficients["hours"] / 2
    assert 0.0 < model.base_rate < 1.0
    assert model.details["cross_validated_auc"] > 0.6


def test_a_pair_predicted_as_likely_to_last_as_average_keeps_its_score_and_scores_stay_in_range():
    model = train(TENANT, 1, synthetic_outcomes(200))
    components = {name: np.array([0.0, 1.0, 0.5]) for name in COMPONENTS}
    scores = np.array([0.0, 1.0, 0.5])
    adjusted, success = model.adjust(components, scores)
    assert np.all((adjusted >= 0) & (adjusted <= 1))
    assert adjusted[1] >= adjusted[0]
    assert np.all((success > 0) & (success < 1))

    # Find the components for which the prediction equals the base rate: the score stays where it was.
    intercept = model.intercept
    target = np.log(model.base_rate / (1 - model.base_rate))
    hours = (target - intercept) / model.coefficients["hours"]
    neutral = {name: np.array([0.0]) for name in COMPONENTS} | {"hours": np.array([hours])}
    kept, _ = model.adjust(neutral, np.array([0.42]))
    assert kept[0] == pytest.approx(0.42, abs=1e-6)


def test_is_stored_as_plain_numbers_and_read_back_exactly():
    model = train(TENANT, 2, synthetic_outcomes(120))
    stored = json.loads(json.dumps(model.to_dict()))
    assert stored["kind"] == "logistic-regression"
    assert stored["features"] == list(COMPONENTS)
    again = RerankerModel.from_dict(stored)
    assert again == model
    components = {name: np.linspace(0, 1, 7) for name in COMPONENTS}
    np.testing.assert_allclose(again.predict(components), model.predict(components))
    broken = stored | {"intercept": float("nan")}
    with pytest.raises(ValueError):
        RerankerModel.from_dict(broken)


def test_every_reranked_match_names_the_reranker_and_keeps_the_score_before_it():
    model = train(TENANT, 4, synthetic_outcomes(200))
    person = CandidateProfile(
        id="c-1", tenant=TENANT, jobcoach_id="jc-1", talents=("orderpicken",), ladder_step=3, consent_matching=True
    )
    jobs = [
        VacancyProfile(id=f"v-{i}", tenant=TENANT, employer_id="e", skills=("orderpicking",), hours_min=h, hours_max=32)
        for i, h in enumerate((0, 16, 28))
    ]
    plain = {m.vacancy_id: m for m in rank.rank_vacancies_for_candidate(person, jobs, top_k=None)}
    reranked = rank.rank_vacancies_for_candidate(person, jobs, top_k=None, ranking=Ranking(reranker=model))
    for match in reranked:
        assert match.explanation["ranking_version"] == f"{scoring.RANKING_VERSION}+rerank-{TENANT}-4"
        assert match.explanation["rerank"]["version"] == model.version
        assert match.explanation["rerank"]["score_before"] == plain[match.vacancy_id].score
        assert 0.0 <= match.score <= 1.0
    assert [m.score for m in reranked] == sorted((m.score for m in reranked), reverse=True)
    assert "rerank" not in plain["v-0"].explanation


def test_lasted_means_still_working_six_months_after_the_start():
    start = date(2026, 1, 5)
    today = date(2026, 12, 1)
    assert lasted("ended_by_candidate", start, start + timedelta(days=30), today) is False
    assert lasted("ended_by_employer", start, start + timedelta(days=200), today) is True
    assert lasted("retained", start, start + timedelta(days=60), today) is True
    assert lasted("moved_to_paid_work", start, start + timedelta(days=90), today) is True
    assert lasted(None, start, None, start + timedelta(days=100)) is None
    assert lasted(None, start, None, start + timedelta(days=reranker.LASTING_DAYS + 1)) is True
