"""Learning from outcomes: a per-tenant reranker on the components of the explanation.

When placements end, whether the person was still working six months after the start is what every
ranking should have aimed for. A tenant's reranker is a scikit-learn ``LogisticRegression`` of that
outcome on the five components every match is explained by (talent, supports, hours, ladder, distance):
five coefficients and an intercept, readable by anyone ("in this region the hours fit predicts a lasting
placement more than the talent match"). It is stored as those numbers in JSON, numbered per tenant, never
pickled.

How it changes a score: the soft score moves by :data:`STRENGTH` times the difference between the pair's
predicted chance of a lasting placement and the tenant's average chance in its training data. A pair
predicted as likely to last as the average placement keeps its score, one predicted to last better moves
up, one predicted to last worse moves down; the score stays in [0, 1] and on the scale the tenant's
``match_threshold`` was set for. Hard constraints are applied before and are never touched.

It switches on only when it was trained, which needs :data:`MIN_OUTCOMES` outcomes with at least
:data:`MIN_PER_CLASS` of either kind; until then ranking runs without it. Every match names it in its
``ranking_version`` (``tfidf-2+rerank-<tenant>-<n>``); ``werkbrug matching rollback-reranker`` retires
the newest one, after which the one before it (or none) is used again.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

import numpy as np
from sqlalchemy.orm import Session

from services.matching.placements import store as placements_store
from services.matching.ranking import profiles, rank, rules, store
from services.matching.ranking.live_index import TenantIndex
from services.matching.ranking.scoring import Ranking
from shared.errors import Refused

COMPONENTS: Final = tuple(rules.DEFAULT_WEIGHTS)
MIN_OUTCOMES: Final = 50
MIN_PER_CLASS: Final = 5
STRENGTH: Final = 0.5
# "Still working after six months", as the placement's risk model counts a breakdown.
LASTING_DAYS: Final = 182
# Strong enough to keep five coefficients sensible on fifty outcomes, weak enough not to flatten them.
REGULARISATION_C: Final = 1.0

Outcome = tuple[Mapping[str, float], bool]

# A placement the jobcoach found without a proposal is scored as their own list would have scored it.
FOR_JOBCOACH: Final = Ranking(require_share_consent=False)


class TrainingRefused(Refused):
    """Not enough (or too one-sided) outcomes to train on; the message says what is missing."""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


@dataclass(frozen=True)
class RerankerModel:
    tenant: str
    number: int
    coefficients: dict[str, float]
    intercept: float
    # The share of lasting placements among the training outcomes: the prediction that leaves a score as is.
    base_rate: float
    trained_on: int
    strength: float = STRENGTH
    details: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def version(self) -> str:
        return f"rerank-{self.tenant}-{self.number}"

    def predict(self, components: Mapping[str, Any]) -> np.ndarray:
        """The predicted chance of a lasting placement, per pair (arrays) or for one pair (floats)."""
        logit = self.intercept + sum(
            self.coefficients[name] * np.asarray(components[name], dtype=np.float64) for name in COMPONENTS
        )
        return _sigmoid(np.asarray(logit, dtype=np.float64))

    def adjust(self, components: Mapping[str, np.ndarray], scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        success = self.predict(components)
        adjusted = np.clip(np.asarray(scores, dtype=np.float64) + self.strength * (success - self.base_rate), 0, 1)
        return adjusted, success

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "logistic-regression",
            "tenant": self.tenant,
            "number": self.number,
            "version": self.version,
            "features": list(COMPONENTS),
            "coefficients": dict(self.coefficients),
            "intercept": self.intercept,
            "base_rate": self.base_rate,
            "trained_on": self.trained_on,
            "strength": self.strength,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any]) -> RerankerModel:
        coefficients = {name: float(stored["coefficients"][name]) for name in COMPONENTS}
        numbers = [*coefficients.values(), stored["intercept"], stored["base_rate"], stored.get("strength", STRENGTH)]
        if not all(math.isfinite(float(n)) for n in numbers):
            raise ValueError("stored reranker has a number that is not finite")
        return cls(
            tenant=str(stored["tenant"]),
            number=int(stored["number"]),
            coefficients=coefficients,
            intercept=float(stored["intercept"]),
            base_rate=float(stored["base_rate"]),
            trained_on=int(stored["trained_on"]),
            strength=float(stored.get("strength", STRENGTH)),
            details=dict(stored.get("details") or {}),
        )


def train(tenant: str, number: int, outcomes: Sequence[Outcome], *, min_outcomes: int = MIN_OUTCOMES) -> RerankerModel:
    """Fit a tenant's reranker on (components, lasted) pairs; raises :class:`TrainingRefused`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    lasting = sum(1 for _, success in outcomes if success)
    failed = len(outcomes) - lasting
    if len(outcomes) < min_outcomes:
        raise TrainingRefused(
            f"{tenant} has {len(outcomes)} placement outcomes; the reranker switches on at {min_outcomes}"
        )
    if min(lasting, failed) < MIN_PER_CLASS:
        raise TrainingRefused(
            f"{tenant} has {lasting} lasting and {failed} ended placements; at least {MIN_PER_CLASS} of each are "
            "needed to learn anything"
        )
    features = np.array(
        [[float(components[name]) for name in COMPONENTS] for components, _ in outcomes], dtype=np.float64
    )
    if not np.isfinite(features).all():
        raise TrainingRefused("an outcome has a component that is not a finite number")
    labels = np.array([bool(success) for _, success in outcomes])
    model = LogisticRegression(C=REGULARISATION_C, max_iter=1000)
    model.fit(features, labels)
    details: dict[str, Any] = {"lasting": lasting, "ended": failed}
    folds = min(5, MIN_PER_CLASS, lasting, failed)
    if folds >= 2:
        # An honest view of how much the reranker knows, for whoever decides to keep it or roll it back.
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
        held_out = cross_val_predict(
            LogisticRegression(C=REGULARISATION_C, max_iter=1000), features, labels, cv=splitter, method="predict_proba"
        )[:, 1]
        details["cross_validated_auc"] = round(float(roc_auc_score(labels, held_out)), 4)
    return RerankerModel(
        tenant=tenant,
        number=number,
        coefficients={name: round(float(value), 6) for name, value in zip(COMPONENTS, model.coef_[0], strict=True)},
        intercept=round(float(model.intercept_[0]), 6),
        base_rate=round(lasting / len(outcomes), 6),
        trained_on=len(outcomes),
        details=details,
    )


# --------------------------------------------------------------------------------------------------------
# Training data and the stored models


def lasted(outcome: str | None, start: date, end: date | None, today: date) -> bool | None:
    """Whether the person was still working six months after the start; None while that is not known.

    A placement that ended early counts as lasting only if it ended because the person was kept on or
    moved to paid work; one still running is lasting once it passed six months.
    """
    if end is None:
        return True if (today - start).days > LASTING_DAYS else None
    if (end - start).days > LASTING_DAYS:
        return True
    return outcome in ("retained", "moved_to_paid_work")


def training_outcomes(session: Session, tenant: str, *, today: date | None = None) -> list[Outcome]:
    """(components, lasted) for each of the tenant's placements whose outcome is known.

    The components are those the pair's proposal was explained with when it was proposed; a placement
    that was never proposed (the jobcoach found it another way) is scored now from the read models, with
    the vacancy taken as open, so that a filled vacancy can still be learnt from. Placements of erased
    candidates are gone and are not learnt from.
    """
    today = today or date.today()
    rows = placements_store.outcomes(session, tenant)
    proposed = store.proposal_components(session, tenant)
    outcomes: list[Outcome] = []
    unscored: list[tuple[str, str, bool]] = []
    for row in rows:
        success = lasted(row.outcome, row.start_date, row.end_date, today)
        if success is None:
            continue
        components = proposed.get((row.vacancy_id, row.candidate_id))
        if components and all(name in components for name in COMPONENTS):
            outcomes.append(({name: float(components[name]) for name in COMPONENTS}, success))
        else:
            unscored.append((row.candidate_id, row.vacancy_id, success))
    if unscored:
        outcomes.extend(_score_now(session, tenant, unscored))
    return outcomes


def _score_now(session: Session, tenant: str, pairs: Sequence[tuple[str, str, bool]]) -> list[Outcome]:
    model = TenantIndex.from_rows(tenant, store.changes_since(session, tenant, None)).model
    outcomes: list[Outcome] = []
    for candidate_id, vacancy_id, success in pairs:
        candidate_payload = store.get_candidate(session, tenant, candidate_id)
        vacancy_payload = store.get_vacancy(session, tenant, vacancy_id)
        if candidate_payload is None or vacancy_payload is None:
            continue
        try:
            candidate = profiles.CandidateProfile.from_payload(candidate_payload, id=candidate_id, tenant=tenant)
            vacancy = profiles.VacancyProfile.from_payload(vacancy_payload, id=vacancy_id, tenant=tenant)
        except ValueError:
            continue
        vacancy = dataclasses.replace(vacancy, status="open", positions=max(vacancy.positions, 1))
        ranked = rank.rank_candidates_for_vacancy(vacancy, [candidate], top_k=1, ranking=FOR_JOBCOACH, model=model)
        if ranked:
            outcomes.append((dict(ranked[0].explanation["components"]), success))
    return outcomes


def train_for_tenant(session: Session, tenant: str, *, today: date | None = None) -> RerankerModel:
    """Train on the tenant's outcomes, store the model and put it in use; raises :class:`TrainingRefused`."""
    number = store.rerankers.next_number(session, tenant)
    model = train(tenant, number, training_outcomes(session, tenant, today=today))
    store.rerankers.add(session, tenant, number, model.version, model.to_dict())
    return model


def rollback(session: Session, tenant: str) -> tuple[str, str | None]:
    """Retire the newest reranker in use; returns (retired version, version now in use or None)."""
    retired = store.rerankers.retire_active(session, tenant)
    if retired is None:
        raise TrainingRefused(f"{tenant} has no reranker in use")
    current = store.rerankers.active(session, tenant)
    return retired, RerankerModel.from_dict(current).version if current else None
