"""The quality benchmarks' own logic: the served variant's draws, what it counts as a lift by the soft fit,
and the Dutch set as shipped."""

from __future__ import annotations

import random

import pytest

from bench.matching_quality import UnitGroup, shares_no_word
from bench.matching_quality_dutch import DATA_FILE, check_set, profiles, read_set
from bench.matching_quality_served import (
    TOWNS,
    build_served_evaluation,
    lifted_over,
    varied_candidate,
    varied_vacancy,
)
from services.matching.ranking.profiles import Match, VacancyProfile
from services.matching.ranking.rules import hard_constraint_failures, haversine_km

GROUP = UnitGroup(
    code="9112",
    title="Cleaners and helpers in offices, hotels and other establishments",
    definition="Cleaners and helpers perform various tasks in order to keep clean and tidy the interiors.",
    tasks=("sweeping floors", "making beds", "cleaning kitchens", "washing windows"),
    examples=("Hotel cleaner", "Chambermaid"),
)

# --------------------------------------------------------------------------------------------------------
# The served variant


def test_every_drawn_candidate_may_see_its_own_vacancy_and_is_not_tied_to_its_soft_attributes():
    rng = random.Random(7)
    vacancies = [varied_vacancy(rng, GROUP, GROUP.tasks[::2]) for _ in range(300)]
    candidates = [varied_candidate(rng, f"c{i}", vacancy, talents=("cleaning",)) for i, vacancy in enumerate(vacancies)]
    assert all(not hard_constraint_failures(c, v) for c, v in zip(candidates, vacancies, strict=True))
    # Varied, not favoured: the kinds, the hour shapes, the preferred supports and the radii all differ.
    assert len({vacancy.kind for vacancy in vacancies}) == 4
    assert {vacancy.hours_min == vacancy.hours_max for vacancy in vacancies} == {True, False}
    assert {len(c.preferred_needs) for c in candidates} >= {0, 1, 2, 3}
    assert None in {c.max_travel_km for c in candidates} and len({c.max_travel_km for c in candidates}) > 2
    assert {c.ladder_step for c in candidates} == {2, 3, 4, 5, 6}
    # Preferred supports are drawn from all codes, so the relevant vacancy often lacks some of them.
    assert any(c.preferred_needs - v.supports_offered for c, v in zip(candidates, vacancies, strict=True))


def test_homes_fall_inside_the_radius_and_vacancies_inside_the_region():
    rng = random.Random(11)
    for number in range(200):
        vacancy = varied_vacancy(rng, GROUP, GROUP.tasks)
        candidate = varied_candidate(rng, f"c{number}", vacancy, preferences=("Hotel cleaner",))
        assert vacancy.lat is not None and vacancy.lon is not None
        assert candidate.lat is not None and candidate.lon is not None
        km = haversine_km(candidate.lat, candidate.lon, vacancy.lat, vacancy.lon)
        assert km <= (candidate.max_travel_km or 40.0)
        nearest = min(haversine_km(vacancy.lat, vacancy.lon, lat, lon) for lat, lon in TOWNS.values())
        assert nearest < 12


def test_the_served_evaluation_has_one_relevant_vacancy_per_query_in_its_own_tenant():
    evaluation = build_served_evaluation([GROUP], seed=3)
    own = [v for v in evaluation.vacancies if v.id == "C9112"]
    assert len(own) == 1
    assert {query.kind for query in evaluation.queries} == {"tasks", "title"}
    for query in evaluation.queries:
        assert query.relevant == frozenset({"C9112"})
        assert not hard_constraint_failures(query.candidate, own[0])
    assert all(not probe.consent_matching for probe in evaluation.probes)


def _match(vacancy_id: str, talent: float) -> Match:
    return Match("c", vacancy_id, talent, {"components": {"talent": talent}})


def test_a_lift_is_a_less_relevant_vacancy_above_the_relevant_one():
    served = [_match("A", 0.5), _match("R", 0.6), _match("B", 0.4)]
    assert lifted_over(served, [], "R") == ["A"]


def test_a_more_relevant_vacancy_above_is_no_lift():
    served = [_match("A", 0.7), _match("R", 0.6)]
    assert lifted_over(served, [], "R") == []


def test_a_relevant_vacancy_pushed_out_of_the_top_reads_its_relevance_from_the_relevance_ranking():
    served = [_match("A", 0.3), _match("B", 0.8)]
    by_relevance = [_match("B", 0.8), _match("R", 0.6), _match("A", 0.3)]
    assert lifted_over(served, by_relevance, "R") == ["A"]


def test_nothing_is_counted_when_neither_list_holds_the_relevant_vacancy():
    assert lifted_over([_match("A", 0.1)], [_match("A", 0.1)], "R") == []


# --------------------------------------------------------------------------------------------------------
# Titles without a shared word


def test_a_title_shares_no_word_only_when_no_word_of_it_is_in_the_vacancy():
    vacancy = VacancyProfile(id="v", tenant="t", employer_id=None, title="Kitchen helper", tasks=("washing dishes",))
    assert shares_no_word("Dishwasher", vacancy)
    assert not shares_no_word("Kitchen porter", vacancy)


# --------------------------------------------------------------------------------------------------------
# The Dutch set as shipped


@pytest.fixture(scope="module")
def dutch():
    return read_set()


def test_the_dutch_set_names_its_sources_in_its_header():
    header = DATA_FILE.read_text(encoding="utf-8").split("fields = [", 1)[0]
    assert header.count("https://") + header.count("http://") >= 24


def test_the_dutch_set_has_twelve_fields_each_with_vacancies_and_both_kinds_of_candidate(dutch):
    assert len(dutch["fields"]) == 12
    vacancies, candidates = profiles(dutch)
    for field in dutch["fields"]:
        assert sum(row["field"] == field for row in dutch["vacancy"]) >= 3
        assert {style for _, f, style in candidates if f == field} == {"tasks", "title"}
    assert len({v.id for v in vacancies}) == len(vacancies)
    assert len({c.id for c, _, _ in candidates}) == len(candidates)


def test_no_candidate_names_a_vacancy_title_of_their_own_field(dutch):
    assert check_set(dutch) == []


def test_a_candidate_naming_a_vacancy_title_is_reported():
    data = {
        "fields": ["groen"],
        "vacancy": [{"id": "v", "field": "groen", "title": "Hovenier"}],
        "candidate": [{"id": "c", "field": "groen", "style": "title", "talents": ["ik was hovenier"]}],
    }
    assert check_set(data) == ["c names the vacancy title 'hovenier'"]


def test_an_unknown_field_is_refused():
    data = {"fields": ["groen"], "vacancy": [{"id": "v", "field": "bos", "title": "x"}], "candidate": []}
    with pytest.raises(ValueError, match="unknown field"):
        profiles(data)
