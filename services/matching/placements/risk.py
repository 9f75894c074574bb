"""Placement risk: will this placement break down? An explainable logistic model over recent check-ins.

Pure logic: no database, no web framework. The score is ``sigmoid(intercept + sum(weight * feature))``,
so every score splits exactly into one contribution per feature, and the largest positive
contributions are the reasons shown with it.

Features
--------
Computed from a placement's check-ins up to a day (:func:`features`). "Recent" means the last
:data:`RECENT_CHECKINS` check-ins; "latest two" smooths a single odd week without hiding a real change.

===================  ============  ==========================================================================
feature              range         meaning
===================  ============  ==========================================================================
low_wellbeing        -1 .. 1       ``(3 - wellbeing) / 2`` at the latest check-in: 1 at 1 (very bad), 0 at
                                   3, -1 at 5 (very good)
wellbeing_decline    0 .. 1        fall in wellbeing per check-in (least-squares slope over the recent
                                   check-ins), divided by 2: a fall of two points per check-in or more is 1
hours_shortfall      0 .. 1        ``1 - hours worked / agreed hours``, mean of the latest two check-ins
absence              0 .. 1        absence days per week as a share of a five-day week, latest two
work_signals         0 .. 1        distinct work signals (conflict with supervisor, missed shift, support
                                   not provided) in the latest two check-ins, out of three
life_signals         0 .. 1        distinct signals from home (debt, housing, health, travel) in the latest
                                   two check-ins, at most three counted, out of three
positive_feedback    0 or 1        positive feedback in the latest two check-ins
early_phase          0 .. 1        ``1 - weeks since start / 26``: most placements that fail, fail early
missed_checkins      0 .. 1        check-ins missed under the tenant's cadence (see :mod:`cadence`), out of 3
===================  ============  ==========================================================================

A check-in's ``hours_worked`` and ``absence_days`` describe a typical week since the previous check-in.

The default model (``default-1``)
---------------------------------
No region has outcomes yet when it starts, so the default weights are set by hand from the assumptions
below, which jobcoaching practice and the literature on sustainable placement of people with a distance
to the labour market agree on. They are meant to rank placements sensibly, not as calibrated
probabilities; a region replaces them with its own model once it has enough ended placements.

===================  ========  =============================================================================
term                 weight    assumption
===================  ========  =============================================================================
intercept            -2.6      a placement with nothing notable has about a 7 % chance of breaking down
low_wellbeing        1.5       wellbeing 1 raises the odds 4.5 times against wellbeing 3; 5 lowers them
wellbeing_decline    1.5       a falling trend matters as much as a low level: jobcoaches act on the trend
hours_shortfall      1.6       working half the agreed hours is an early sign of withdrawal (odds x 2.2)
absence              1.4       a day of absence a week raises the odds by a third, five days 4 times
work_signals         1.8       trouble at work is the most direct cause of a placement ending early
life_signals         1.2       debts, housing, health and travel break placements from outside work
positive_feedback    -0.7      praise from the workplace halves the odds
early_phase          0.6       the first months carry the most risk; the effect is gone after half a year
missed_checkins      1.2       a placement nobody looks at drifts: three missed check-ins triple the odds
===================  ========  =============================================================================

With the default tenant settings (alert above 0.6, release below 0.45), one check-in with low wellbeing,
half the hours and two work signals alerts; a single bad week with otherwise good signs does not.

Trained models
--------------
:func:`train` fits scikit-learn's ``LogisticRegression`` on a tenant's ended placements: the features as
of each placement's last check-in against whether it broke down (ended by the candidate or the employer
within six months of its start). It refuses with fewer than :data:`MIN_OUTCOMES` outcomes or fewer than
:data:`MIN_PER_CLASS` of either kind. Models are stored as coefficients in JSON, never pickled, and
numbered per tenant: ``<tenant>-<n>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from services.matching.placements.cadence import Cadence
from shared.errors import Refused

RECENT_CHECKINS = 4
MIN_OUTCOMES = 30
MIN_PER_CLASS = 5
BREAKDOWN_WINDOW_DAYS = 182
BREAKDOWN_OUTCOMES = ("ended_by_candidate", "ended_by_employer")
OUTCOMES = ("retained", "moved_to_paid_work", "step_up", *BREAKDOWN_OUTCOMES)

WORK_SIGNALS = ("conflict_with_supervisor", "missed_shift", "support_not_provided")
LIFE_SIGNALS = ("debt_stress", "housing_stress", "health_setback", "travel_problems")
POSITIVE_SIGNALS = ("positive_feedback",)
SIGNALS: dict[str, str] = {
    "conflict_with_supervisor": "Conflict met leidinggevende",
    "missed_shift": "Dienst gemist",
    "support_not_provided": "Afgesproken ondersteuning niet geboden",
    "debt_stress": "Zorgen over schulden",
    "housing_stress": "Zorgen over wonen",
    "health_setback": "Terugval in gezondheid",
    "travel_problems": "Problemen met reizen",
    "positive_feedback": "Positieve feedback van de werkplek",
}

FEATURES: dict[str, str] = {
    "low_wellbeing": "Welbevinden laag",
    "wellbeing_decline": "Welbevinden daalt",
    "hours_shortfall": "Minder uren gewerkt dan afgesproken",
    "absence": "Verzuim",
    "work_signals": "Signalen op het werk",
    "life_signals": "Signalen uit de thuissituatie",
    "positive_feedback": "Positieve feedback",
    "early_phase": "Eerste maanden van de plaatsing",
    "missed_checkins": "Gemiste check-ins",
}
FEATURE_NAMES: tuple[str, ...] = tuple(FEATURES)

DEFAULT_VERSION = "default-1"
DEFAULT_INTERCEPT = -2.6
DEFAULT_WEIGHTS: dict[str, float] = {
    "low_wellbeing": 1.5,
    "wellbeing_decline": 1.5,
    "hours_shortfall": 1.6,
    "absence": 1.4,
    "work_signals": 1.8,
    "life_signals": 1.2,
    "positive_feedback": -0.7,
    "early_phase": 0.6,
    "missed_checkins": 1.2,
}

# A contribution smaller than this does not move the score enough to be worth a jobcoach's attention.
MIN_REASON_CONTRIBUTION = 0.05
MAX_REASONS = 3


class TrainingRefused(Refused):
    """Not enough outcomes (or not enough of both kinds) to train a model worth using."""


@dataclass(frozen=True)
class Checkin:
    date: date
    wellbeing: int
    hours_worked: float
    absence_days: int
    signals: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Checkin:
        return cls(row["date"], row["wellbeing"], row["hours_worked"], row["absence_days"], tuple(row["signals"]))


def _clip(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return min(high, max(low, value))


def _slope(values: Sequence[float]) -> float:
    """Least-squares slope of values taken at equal steps; 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    xs = np.arange(len(values), dtype=float)
    return float(np.polyfit(xs, np.asarray(values, dtype=float), 1)[0])


def features(
    *, start_date: date, agreed_hours: float, checkins: Sequence[Checkin], as_of: date, cadence: Cadence
) -> dict[str, float]:
    """The model's inputs for a placement as of a day, from its check-ins on or before that day."""
    history = sorted((c for c in checkins if c.date <= as_of), key=lambda c: c.date)
    recent = history[-RECENT_CHECKINS:]
    latest_two = history[-2:]
    weeks = max(0, (as_of - start_date).days) / 7
    missed = cadence.missed_checkins(start_date, (c.date for c in history), as_of)
    values = {
        "low_wellbeing": 0.0,
        "wellbeing_decline": 0.0,
        "hours_shortfall": 0.0,
        "absence": 0.0,
        "work_signals": 0.0,
        "life_signals": 0.0,
        "positive_feedback": 0.0,
        "early_phase": _clip(1 - weeks / 26),
        "missed_checkins": _clip(missed / 3),
    }
    if not history:
        return values
    signals = {signal for c in latest_two for signal in c.signals}
    hours = sum(c.hours_worked for c in latest_two) / len(latest_two)
    absence = sum(c.absence_days for c in latest_two) / len(latest_two)
    values.update(
        low_wellbeing=(3 - history[-1].wellbeing) / 2,
        wellbeing_decline=_clip(-_slope([c.wellbeing for c in recent]) / 2),
        hours_shortfall=_clip(1 - hours / agreed_hours) if agreed_hours > 0 else 0.0,
        absence=_clip(absence / 5),
        work_signals=_clip(len(signals & set(WORK_SIGNALS)) / 3),
        life_signals=_clip(len(signals & set(LIFE_SIGNALS)) / 3),
        positive_feedback=1.0 if signals & set(POSITIVE_SIGNALS) else 0.0,
    )
    return {name: round(value, 6) for name, value in values.items()}


@dataclass(frozen=True)
class Reason:
    feature: str
    label: str
    value: float
    contribution: float
    signals: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        reason: dict[str, Any] = {
            "feature": self.feature,
            "label": self.label,
            "value": self.value,
            "contribution": self.contribution,
        }
        if self.signals:
            reason["signals"] = list(self.signals)
        return reason


@dataclass(frozen=True)
class Assessment:
    score: float
    reasons: list[Reason]
    model_version: str
    features: dict[str, float]


@dataclass(frozen=True)
class RiskModel:
    version: str
    intercept: float
    weights: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)

    def contributions(self, values: Mapping[str, float]) -> dict[str, float]:
        return {name: self.weights.get(name, 0.0) * values.get(name, 0.0) for name in FEATURE_NAMES}

    def score(self, values: Mapping[str, float]) -> float:
        z = self.intercept + sum(self.contributions(values).values())
        return 1 / (1 + math.exp(-z))

    def assess(self, values: Mapping[str, float], signals: Sequence[str] = ()) -> Assessment:
        """Score and reasons: the features that pushed the score up most, largest first."""
        contributions = self.contributions(values)
        ranked = sorted(
            (name for name, c in contributions.items() if c >= MIN_REASON_CONTRIBUTION),
            key=lambda name: (-contributions[name], name),
        )[:MAX_REASONS]
        by_group = {"work_signals": WORK_SIGNALS, "life_signals": LIFE_SIGNALS}
        reasons = [
            Reason(
                feature=name,
                label=FEATURES[name],
                value=round(values[name], 3),
                contribution=round(contributions[name], 3),
                signals=tuple(s for s in by_group.get(name, ()) if s in signals),
            )
            for name in ranked
        ]
        return Assessment(round(self.score(values), 4), reasons, self.version, dict(values))

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "intercept": self.intercept, "weights": dict(self.weights), **self.details}

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> RiskModel:
        details = {k: v for k, v in stored.items() if k not in ("version", "intercept", "weights")}
        return cls(stored["version"], float(stored["intercept"]), dict(stored["weights"]), details)


DEFAULT_MODEL = RiskModel(DEFAULT_VERSION, DEFAULT_INTERCEPT, DEFAULT_WEIGHTS)


def model_or_default(stored: Mapping[str, Any] | None) -> RiskModel:
    return RiskModel.from_dict(stored) if stored else DEFAULT_MODEL


def recent_signals(checkins: Sequence[Checkin]) -> list[str]:
    """Signals of the latest two check-ins: the ones the signal features look at."""
    latest_two = sorted(checkins, key=lambda c: c.date)[-2:]
    return sorted({signal for c in latest_two for signal in c.signals})


# --------------------------------------------------------------------------------------------------------
# Outcomes and training


def broke_down(outcome: str, start_date: date, end_date: date) -> bool:
    """The label a model learns: ended by the candidate or the employer within six months of the start."""
    return outcome in BREAKDOWN_OUTCOMES and (end_date - start_date).days <= BREAKDOWN_WINDOW_DAYS


def train(tenant: str, number: int, rows: Sequence[tuple[Mapping[str, float], bool]]) -> RiskModel:
    """Fit a tenant's model on (features, broke down) rows; raises :class:`TrainingRefused`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import brier_score_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    positives = sum(1 for _, label in rows if label)
    negatives = len(rows) - positives
    if len(rows) < MIN_OUTCOMES:
        raise TrainingRefused(
            f"{tenant} has {len(rows)} ended placements with check-ins; at least {MIN_OUTCOMES} are needed "
            f"to train a model. The default model ({DEFAULT_VERSION}) stays in use."
        )
    if min(positives, negatives) < MIN_PER_CLASS:
        raise TrainingRefused(
            f"{tenant} has {positives} placements that broke down and {negatives} that did not; at least "
            f"{MIN_PER_CLASS} of each are needed to train a model. The current model stays in use."
        )
    x = np.array([[float(values.get(name, 0.0)) for name in FEATURE_NAMES] for values, _ in rows])
    y = np.array([1 if label else 0 for _, label in rows])
    estimator = LogisticRegression(C=1.0, max_iter=1000)
    folds = StratifiedKFold(n_splits=min(5, positives, negatives), shuffle=True, random_state=0)
    held_out = cross_val_predict(estimator, x, y, cv=folds, method="predict_proba")[:, 1]
    estimator.fit(x, y)
    weights = {name: round(float(w), 6) for name, w in zip(FEATURE_NAMES, estimator.coef_[0], strict=True)}
    details = {
        "trained_on": len(rows),
        "broke_down": positives,
        "cross_validated_auc": round(float(roc_auc_score(y, held_out)), 4),
        "cross_validated_brier": round(float(brier_score_loss(y, held_out)), 4),
    }
    return RiskModel(f"{tenant}-{number}", round(float(estimator.intercept_[0]), 6), weights, details)


# --------------------------------------------------------------------------------------------------------
# Hysteresis


@dataclass(frozen=True)
class RiskState:
    at_risk: bool = False
    episode: int = 0


def next_state(state: RiskState, score: float, threshold: float, release: float) -> tuple[RiskState, bool]:
    """The state after a new score, and whether an at-risk alert is due.

    An alert when the score rises above ``threshold``; the episode lasts until the score falls below
    ``release``, so a score wobbling around the threshold alerts once, not at every check-in.
    """
    if not state.at_risk and score > threshold:
        return RiskState(True, state.episode + 1), True
    if state.at_risk and score < release:
        return RiskState(False, state.episode), False
    return state, False
