"""Placement risk: features from check-ins, the default model and its reasons, training, hysteresis, and
the check-in cadence the overdue scheduler and the missed-check-in feature share."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

import pytest

from services.matching.placements import risk
from services.matching.placements.cadence import Cadence
from services.matching.placements.risk import Checkin, RiskModel, RiskState, next_state

START = date(2026, 1, 5)
CADENCE = Cadence(early_days=14, later_days=28, early_period_days=91)


def day(n: int) -> date:
    return START + timedelta(days=n)


def good(n: int, hours: float = 16) -> Checkin:
    return Checkin(day(n), 4, hours, 0, ("positive_feedback",))


def bad(n: int) -> Checkin:
    return Checkin(day(n), 1, 6, 2, ("conflict_with_supervisor", "missed_shift"))


def middling(n: int) -> Checkin:
    return Checkin(day(n), 3, 14, 0, ())


def feats(checkins, *, agreed: float = 16, as_of: date | None = None, cadence: Cadence = CADENCE) -> dict:
    as_of = as_of or max(c.date for c in checkins)
    return risk.features(start_date=START, agreed_hours=agreed, checkins=checkins, as_of=as_of, cadence=cadence)


def score(checkins, **kwargs) -> risk.Assessment:
    return risk.DEFAULT_MODEL.assess(feats(checkins, **kwargs), risk.recent_signals(checkins))


# --------------------------------------------------------------------------------------------------------
# Features


def test_a_placement_without_check_ins_has_only_its_age_and_missed_check_ins():
    values = risk.features(start_date=START, agreed_hours=16, checkins=[], as_of=day(30), cadence=CADENCE)

    assert set(values) == set(risk.FEATURE_NAMES)
    assert values["early_phase"] == pytest.approx(1 - (30 / 7) / 26, abs=1e-6)
    assert values["missed_checkins"] == pytest.approx(2 / 3)
    assert all(values[name] == 0 for name in risk.FEATURE_NAMES if name not in ("early_phase", "missed_checkins"))


@pytest.mark.parametrize(("wellbeing", "expected"), [(1, 1.0), (2, 0.5), (3, 0.0), (4, -0.5), (5, -1.0)])
def test_low_wellbeing_is_read_from_the_latest_check_in(wellbeing, expected):
    values = feats([Checkin(day(3), 5, 16, 0), Checkin(day(10), wellbeing, 16, 0)])

    assert values["low_wellbeing"] == expected


def test_a_falling_wellbeing_trend_is_a_feature_and_a_rising_one_is_not():
    falling = feats([Checkin(day(d), w, 16, 0) for d, w in [(7, 5), (14, 4), (21, 3), (28, 2)]])
    rising = feats([Checkin(day(d), w, 16, 0) for d, w in [(7, 2), (14, 3), (21, 4), (28, 5)]])
    steep = feats([Checkin(day(7), 5, 16, 0), Checkin(day(14), 1, 16, 0)])

    assert falling["wellbeing_decline"] == pytest.approx(0.5)
    assert rising["wellbeing_decline"] == 0
    assert steep["wellbeing_decline"] == 1.0


def test_only_the_recent_check_ins_make_the_trend():
    old_fall = [Checkin(day(d), w, 16, 0) for d, w in [(1, 5), (8, 1)]]
    steady = [Checkin(day(d), 3, 16, 0) for d in (15, 22, 29, 36)]

    assert feats(old_fall + steady)["wellbeing_decline"] == 0


@pytest.mark.parametrize(
    ("hours", "agreed", "expected"),
    [([16, 16], 16, 0.0), ([8, 8], 16, 0.5), ([0, 0], 16, 1.0), ([20, 24], 16, 0.0), ([16, 0], 16, 0.5)],
)
def test_hours_shortfall_compares_the_latest_two_check_ins_with_the_agreed_hours(hours, agreed, expected):
    checkins = [Checkin(day(7), 3, hours[0], 0), Checkin(day(14), 3, hours[1], 0)]

    assert feats(checkins, agreed=agreed)["hours_shortfall"] == pytest.approx(expected)


def test_absence_is_a_share_of_a_five_day_week_and_never_above_one():
    assert feats([Checkin(day(7), 3, 16, 1), Checkin(day(14), 3, 16, 3)])["absence"] == pytest.approx(0.4)
    assert feats([Checkin(day(7), 3, 16, 7)])["absence"] == 1.0


def test_signals_are_grouped_into_work_life_and_positive_and_counted_once():
    checkins = [
        Checkin(day(7), 3, 16, 0, ("debt_stress", "missed_shift")),
        Checkin(day(14), 3, 16, 0, ("missed_shift", "housing_stress", "positive_feedback")),
    ]
    values = feats(checkins)

    assert values["work_signals"] == pytest.approx(1 / 3)
    assert values["life_signals"] == pytest.approx(2 / 3)
    assert values["positive_feedback"] == 1.0


def test_signals_older_than_the_latest_two_check_ins_no_longer_count():
    checkins = [Checkin(day(7), 3, 16, 0, ("debt_stress",)), middling(14), middling(21)]

    assert feats(checkins)["life_signals"] == 0


def test_the_early_phase_fades_over_half_a_year():
    assert feats([middling(0)])["early_phase"] == 1.0
    assert feats([middling(91)])["early_phase"] == pytest.approx(0.5)
    assert feats([middling(200)])["early_phase"] == 0.0


def test_check_ins_after_the_day_asked_about_are_ignored():
    values = feats([middling(7), bad(14)], as_of=day(7))

    assert values["low_wellbeing"] == 0
    assert values["work_signals"] == 0


# --------------------------------------------------------------------------------------------------------
# The default model and its reasons


def test_the_default_model_is_the_documented_one():
    assert risk.DEFAULT_MODEL.version == "default-1"
    assert set(risk.DEFAULT_WEIGHTS) == set(risk.FEATURE_NAMES)
    for name, weight in risk.DEFAULT_WEIGHTS.items():
        assert f"{name}" in risk.__doc__ and f"{weight}" in risk.__doc__
    assert risk.DEFAULT_MODEL.score(dict.fromkeys(risk.FEATURE_NAMES, 0.0)) == pytest.approx(0.069, abs=0.001)


def test_good_check_ins_score_low_and_bad_ones_high():
    assert score([good(7)]).score < 0.1
    assert score([good(7), bad(14)]).score > 0.9


def test_the_documented_examples_hold_at_the_default_thresholds():
    first_bad = Checkin(day(3), 2, 8, 0, ("conflict_with_supervisor", "missed_shift"))
    one_bad_week = [good(7), good(14), Checkin(day(35), 2, 16, 0, ("missed_shift",))]

    assert score([first_bad]).score > 0.6
    assert score(one_bad_week).score < 0.6


def test_the_score_is_the_logistic_of_the_intercept_plus_the_contributions():
    values = feats([good(7), bad(14)])
    model = risk.DEFAULT_MODEL
    z = model.intercept + sum(model.weights[name] * values[name] for name in risk.FEATURE_NAMES)

    assert model.score(values) == pytest.approx(1 / (1 + math.exp(-z)))
    assert sum(model.contributions(values).values()) == pytest.approx(z - model.intercept)


def test_reasons_are_the_largest_positive_contributions_largest_first_with_labels_and_signals():
    assessment = score([good(7), bad(14)])

    assert 1 <= len(assessment.reasons) <= risk.MAX_REASONS
    contributions = [reason.contribution for reason in assessment.reasons]
    assert contributions == sorted(contributions, reverse=True)
    assert all(c >= risk.MIN_REASON_CONTRIBUTION for c in contributions)
    by_feature = {reason.feature: reason for reason in assessment.reasons}
    assert by_feature["work_signals"].signals == ("conflict_with_supervisor", "missed_shift")
    assert by_feature["work_signals"].label == risk.FEATURES["work_signals"]
    assert all(reason.feature != "positive_feedback" for reason in assessment.reasons)


def test_a_placement_with_nothing_wrong_has_no_reasons():
    assessment = score([good(200)], cadence=Cadence(early_days=365, later_days=365))

    assert assessment.reasons == []
    assert assessment.model_version == "default-1"


def test_a_model_survives_a_round_trip_through_json():
    model = RiskModel("regio-3", -1.25, {"absence": 2.0}, {"trained_on": 40})

    assert RiskModel.from_dict(model.to_dict()) == model
    assert risk.model_or_default(None) is risk.DEFAULT_MODEL
    assert risk.model_or_default(model.to_dict()).version == "regio-3"


# --------------------------------------------------------------------------------------------------------
# Outcomes and training


@pytest.mark.parametrize(
    ("outcome", "days", "label"),
    [
        ("ended_by_candidate", 30, True),
        ("ended_by_employer", 182, True),
        ("ended_by_employer", 183, False),
        ("retained", 30, False),
        ("moved_to_paid_work", 60, False),
    ],
)
def test_breaking_down_means_ended_by_either_side_within_six_months(outcome, days, label):
    assert risk.broke_down(outcome, START, day(days)) is label


def _synthetic_rows(n: int, seed: int = 7) -> list[tuple[dict, bool]]:
    """Placements whose breakdown follows the default model, so a trained model should rank like it."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        values = {name: rng.random() for name in risk.FEATURE_NAMES}
        values["positive_feedback"] = float(rng.random() < 0.3)
        rows.append((values, rng.random() < risk.DEFAULT_MODEL.score(values)))
    return rows


def test_training_refuses_too_few_outcomes_with_a_clear_message():
    with pytest.raises(risk.TrainingRefused, match="at least 30"):
        risk.train("regio", 1, _synthetic_rows(29))


def test_training_refuses_outcomes_of_one_kind_only():
    rows = [(values, False) for values, _ in _synthetic_rows(40)]

    with pytest.raises(risk.TrainingRefused, match="of each"):
        risk.train("regio", 1, rows)


def test_a_trained_model_is_versioned_per_tenant_and_scores_like_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    rows = _synthetic_rows(300)
    model = risk.train("achterhoek", 3, rows)

    assert model.version == "achterhoek-3"
    assert model.details["trained_on"] == 300
    assert 0.5 < model.details["cross_validated_auc"] <= 1
    x = [[values[name] for name in risk.FEATURE_NAMES] for values, _ in rows]
    reference = LogisticRegression(C=1.0, max_iter=1000).fit(x, [label for _, label in rows])
    for values, _ in rows[:20]:
        expected = reference.predict_proba([[values[name] for name in risk.FEATURE_NAMES]])[0, 1]
        assert model.score(values) == pytest.approx(expected, abs=1e-4)
    assert model.weights["work_signals"] > 0
    assert model.weights["positive_feedback"] < model.weights["work_signals"]


# --------------------------------------------------------------------------------------------------------
# Hysteresis


def _run(scores, threshold=0.6, release=0.45):
    state, alerts = RiskState(), []
    for value in scores:
        state, alert = next_state(state, value, threshold, release)
        alerts.append(alert)
    return state, alerts


def test_rising_above_the_threshold_alerts_once_per_episode():
    state, alerts = _run([0.2, 0.7, 0.8, 0.9])

    assert alerts == [False, True, False, False]
    assert state == RiskState(True, 1)


def test_a_score_wobbling_around_the_threshold_does_not_alert_again():
    _, alerts = _run([0.7, 0.55, 0.65, 0.5, 0.61])

    assert alerts.count(True) == 1


def test_a_new_episode_needs_the_score_to_fall_below_the_release_first():
    state, alerts = _run([0.7, 0.4, 0.7, 0.3, 0.2, 0.9])

    assert alerts == [True, False, True, False, False, True]
    assert state == RiskState(True, 3)


def test_exactly_at_the_threshold_is_not_above_it():
    assert _run([0.6])[1] == [False]
    assert _run([0.7, 0.45, 0.7])[1] == [True, False, False]


# --------------------------------------------------------------------------------------------------------
# Cadence


def test_the_interval_is_short_in_the_first_months_and_long_after():
    assert CADENCE.interval(START, day(0)) == 14
    assert CADENCE.interval(START, day(90)) == 14
    assert CADENCE.interval(START, day(91)) == 28


def test_the_next_check_in_is_due_one_interval_after_the_last_or_the_start():
    assert CADENCE.due_date(START, None) == day(14)
    assert CADENCE.due_date(START, day(20)) == day(34)
    assert CADENCE.due_date(START, day(100)) == day(128)


def test_a_gap_is_overdue_once_a_whole_interval_has_passed_and_is_named_by_its_start():
    assert CADENCE.overdue_gap(START, None, day(13)) is None
    assert CADENCE.overdue_gap(START, None, day(14)) == (day(0), day(14))
    assert CADENCE.overdue_gap(START, None, day(40)) == (day(0), day(14))
    assert CADENCE.overdue_gap(START, day(80), day(93)) is None
    assert CADENCE.overdue_gap(START, day(80), day(94)) == (day(80), day(94))
    assert CADENCE.overdue_gap(START, day(95), day(122)) is None
    assert CADENCE.overdue_gap(START, day(95), day(123)) == (day(95), day(123))


def test_a_tenants_own_cadence_applies():
    weekly = Cadence(early_days=7, later_days=14, early_period_days=30)

    assert weekly.overdue_gap(START, None, day(7)) == (day(0), day(7))
    assert weekly.due_date(START, day(31)) == day(45)


@pytest.mark.parametrize(
    ("checkin_days", "as_of", "missed"),
    [
        ([], 13, 0),
        ([], 14, 1),
        ([], 45, 3),
        ([10, 24, 38], 38, 0),
        ([27], 27, 0),
        ([28], 28, 1),
        ([10, 50], 50, 1),
        ([100, 160], 160, 7),
        ([13, 26, 39, 52, 65, 78, 91, 151], 151, 1),
        ([10], 30, 1),
    ],
)
def test_missed_check_ins_count_whole_intervals_without_one(checkin_days, as_of, missed):
    assert CADENCE.missed_checkins(START, [day(d) for d in checkin_days], day(as_of)) == missed
