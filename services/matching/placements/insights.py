"""Bundled, anonymous figures for client councils and region boards, with small cells suppressed.

No figure names or counts fewer than :data:`MIN_CELL_SIZE` people: such a cell is published as null and
marked ``suppressed``. That alone is not enough, because published figures add up: if a total and all
but one of its parts are shown, the hidden part is the difference. So every published relation "total =
sum of parts" (and "this cell equals that one") is declared as an :class:`Equation`, and
:func:`suppress` keeps hiding more cells (complementary suppression) until no hidden cell can be worked
out from the shown ones through any combination of the equations.

A median is not additive: it is published only when taken over at least :data:`MIN_CELL_SIZE` values.

Limits, stated so that nobody relies on more: the audit is exact for the equations; beyond them it uses
only that counts are not negative (a shown total whose hidden parts add up to less than ``k`` hides one
more). Counts of vacancies are not about people and are not suppressed.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.matching.placements import store
from services.matching.ranking import store as ranking_store
from shared.vocabulary import LADDER_STEPS, SUPPORT_CODES

MIN_CELL_SIZE = 11
ALERT_TYPES = ("match_proposed", "placement_at_risk", "checkin_overdue")
# Retention is judged at three and six months after the start.
RETENTION_MILESTONES = {"after_3_months": 91, "after_6_months": 182}
STILL_WORKING_OUTCOMES = ("retained", "moved_to_paid_work", "step_up")
AGE_BANDS = ("under_3_months", "3_to_6_months", "over_6_months")
# The cohorts old enough to be judged at each milestone.
AGE_BANDS_PAST = {"after_3_months": AGE_BANDS[1:], "after_6_months": AGE_BANDS[2:]}


@dataclass(frozen=True)
class Equation:
    """A published relation: the value of ``total`` is the sum of the values of ``parts``."""

    total: str
    parts: tuple[str, ...]


def suppress(counts: Mapping[str, int], equations: Sequence[Equation] = (), k: int = MIN_CELL_SIZE) -> set[str]:
    """The keys of the cells to hide.

    Primary suppression hides every count under ``k`` (zero included: "nobody in this group" is a fact
    about the people outside it). Complementary suppression then hides more until nothing hidden can be
    worked out from what is shown:

    1. an equation with exactly one hidden term gives that term away as the difference of the others;
    2. an equation with a shown total tells the sum of its hidden parts; under ``k`` (zero, say) that
       sum narrows each of them down too far;
    3. equations that share cells can be combined: a hidden cell whose value follows from the shown
       cells through any combination of equations (a linear-algebra audit) is given away as well.

    Each time, one more cell is hidden, in an equation that exposes: the smallest shown part (it costs
    the least information), or the total when no part is shown. This repeats until none of the three
    applies.
    """
    for equation in equations:
        missing = {equation.total, *equation.parts} - set(counts)
        if missing:
            raise ValueError(f"equation names cells without a count: {sorted(missing)}")
    hidden = {key for key, value in counts.items() if value < k}
    while True:
        exposed = _exposed_equation(counts, equations, hidden, k) or _exposed_by_combination(equations, hidden)
        if exposed is None:
            return hidden
        hidden.add(_complement(exposed, counts, hidden))


def _exposed_equation(
    counts: Mapping[str, int], equations: Sequence[Equation], hidden: set[str], k: int
) -> Equation | None:
    for equation in equations:
        terms = (equation.total, *equation.parts)
        hidden_terms = [term for term in terms if term in hidden]
        if not hidden_terms:
            continue
        if len(hidden_terms) == 1:
            return equation
        if equation.total not in hidden and sum(counts[p] for p in equation.parts if p in hidden) < k:
            return equation
    return None


def _exposed_by_combination(equations: Sequence[Equation], hidden: set[str]) -> Equation | None:
    """An equation with a shown term that involves a hidden cell the equations together pin down."""
    hidden_keys = sorted(hidden)
    if not equations or not hidden_keys:
        return None
    index = {key: position for position, key in enumerate(hidden_keys)}
    matrix = np.zeros((len(equations), len(hidden_keys)))
    for row, equation in enumerate(equations):
        if equation.total in index:
            matrix[row, index[equation.total]] += 1
        for part in equation.parts:
            if part in index:
                matrix[row, index[part]] -= 1
    # The hidden cells may move together along the null space of the equations; a cell with no share in
    # any direction of it cannot move at all, so the shown cells pin it down.
    _, singular, vt = np.linalg.svd(matrix)
    rank = int((singular > 1e-9).sum())
    free = vt[rank:]
    for key in hidden_keys:
        if free.shape[0] and np.abs(free[:, index[key]]).max() > 1e-9:
            continue
        for equation in equations:
            terms = (equation.total, *equation.parts)
            if key in terms and any(term not in hidden for term in terms):
                return equation
    return None


def _complement(equation: Equation, counts: Mapping[str, int], hidden: set[str]) -> str:
    visible_parts = sorted((p for p in equation.parts if p not in hidden), key=lambda p: (counts[p], p))
    return visible_parts[0] if visible_parts else equation.total


@dataclass
class CellTable:
    """Counts and their equations, gathered before anything is published."""

    counts: dict[str, int] = field(default_factory=dict)
    equations: list[Equation] = field(default_factory=list)

    def add(self, key: str, value: int) -> str:
        if key in self.counts:
            raise ValueError(f"cell {key!r} added twice")
        self.counts[key] = int(value)
        return key

    def relate(self, total: str, *parts: str) -> None:
        self.equations.append(Equation(total, tuple(parts)))

    def publish(self, k: int = MIN_CELL_SIZE) -> dict[str, dict[str, Any]]:
        hidden = suppress(self.counts, self.equations, k)
        return {key: cell(value, key in hidden) for key, value in self.counts.items()}


def cell(value: float | int | None, suppressed: bool) -> dict[str, Any]:
    return {"value": None if suppressed else value, "suppressed": suppressed}


def median_cell(values: Sequence[float], k: int = MIN_CELL_SIZE) -> dict[str, Any]:
    if len(values) < k:
        return cell(None, True)
    return cell(round(float(statistics.median(values)), 1), False)


# --------------------------------------------------------------------------------------------------------
# The figures, from plain facts


@dataclass(frozen=True)
class PlacementFacts:
    start_date: date
    status: str
    end_date: date | None
    outcome: str | None


@dataclass
class RawFigures:
    """Everything the insights are computed from: no ids, no profiles, only what is counted."""

    ladder_steps: list[int] = field(default_factory=list)
    # One list of (code, level) pairs per candidate.
    support_needs: list[list[tuple[str, str]]] = field(default_factory=list)
    supports_offered: list[list[str]] = field(default_factory=list)
    proposals: int = 0
    placements: list[PlacementFacts] = field(default_factory=list)
    alerts: dict[str, int] = field(default_factory=dict)
    acknowledgements: dict[str, list[float]] = field(default_factory=dict)


def still_working(placement: PlacementFacts, days: int) -> bool:
    if placement.status == "active" or placement.outcome in STILL_WORKING_OUTCOMES:
        return True
    return placement.end_date is not None and (placement.end_date - placement.start_date).days >= days


def _age_band(placement: PlacementFacts, today: date) -> str:
    days = (today - placement.start_date).days
    if days >= RETENTION_MILESTONES["after_6_months"]:
        return AGE_BANDS[2]
    return AGE_BANDS[1] if days >= RETENTION_MILESTONES["after_3_months"] else AGE_BANDS[0]


def build_insights(raw: RawFigures, today: date, k: int = MIN_CELL_SIZE) -> dict[str, Any]:
    table = CellTable()

    steps = Counter(raw.ladder_steps)
    step_keys = [table.add(f"ladder.{step}", steps.get(step, 0)) for step in LADDER_STEPS]
    table.relate(table.add("candidates.total", len(raw.ladder_steps)), *step_keys)

    for code in SUPPORT_CODES:
        levels = Counter(level for needs in raw.support_needs for need, level in needs if need == code)
        essential = table.add(f"need.{code}.essential", levels.get("essential", 0))
        preferred = table.add(f"need.{code}.preferred", levels.get("preferred", 0))
        table.relate(table.add(f"need.{code}", sum(levels.values())), essential, preferred)

    proposed = table.add("matches_proposed", raw.proposals)
    for alert_type in ALERT_TYPES:
        table.add(
            f"alerts.{alert_type}", raw.proposals if alert_type == "match_proposed" else raw.alerts.get(alert_type, 0)
        )
    # The same number twice: hiding one must hide the other.
    table.relate("alerts.match_proposed", proposed)

    # Placements fall into three cohorts by age; each milestone's eligible cohort is a sum of them.
    started = [p for p in raw.placements if p.start_date <= today]
    ages = Counter(_age_band(p, today) for p in started)
    bands = [table.add(f"placements.started_{band}", ages.get(band, 0)) for band in AGE_BANDS]
    table.relate(table.add("placements.started", len(started)), *bands)
    for name, days in RETENTION_MILESTONES.items():
        eligible = [p for p in started if p.start_date + timedelta(days=days) <= today]
        working = sum(1 for p in eligible if still_working(p, days))
        eligible_key = table.add(f"{name}.eligible", len(eligible))
        table.relate(eligible_key, *[f"placements.started_{band}" for band in AGE_BANDS_PAST[name]])
        table.relate(
            eligible_key,
            table.add(f"{name}.still_working", working),
            table.add(f"{name}.stopped", len(eligible) - working),
        )

    cells = table.publish(k)
    offered = Counter(code for supports in raw.supports_offered for code in set(supports))
    support_gap = []
    for code, label in SUPPORT_CODES.items():
        needing = cells[f"need.{code}"]
        # The gap is needing minus offering: shown beside a visible offering it would reveal a hidden need.
        gap = cell(None, True) if needing["suppressed"] else cell(needing["value"] - offered.get(code, 0), False)
        support_gap.append(
            {
                "code": code,
                "label": label,
                "candidates_needing": needing,
                "essential": cells[f"need.{code}.essential"],
                "preferred": cells[f"need.{code}.preferred"],
                "vacancies_offering": offered.get(code, 0),
                "gap": gap,
            }
        )
    all_seconds = [s for alert_type in ALERT_TYPES for s in raw.acknowledgements.get(alert_type, [])]
    return {
        "min_cell_size": k,
        "candidates": {
            "total": cells["candidates.total"],
            "by_ladder_step": [
                {"step": step, "label": label, "count": cells[f"ladder.{step}"]} for step, label in LADDER_STEPS.items()
            ],
        },
        "support_gap": support_gap,
        "matches_proposed": cells["matches_proposed"],
        "placements": {
            "started": cells["placements.started"],
            "started_by_age": {band: cells[f"placements.started_{band}"] for band in AGE_BANDS},
            **{
                name: {part: cells[f"{name}.{part}"] for part in ("eligible", "still_working", "stopped")}
                for name in RETENTION_MILESTONES
            },
        },
        "alerts_by_type": {alert_type: cells[f"alerts.{alert_type}"] for alert_type in ALERT_TYPES},
        "median_seconds_to_acknowledge": {
            **{t: median_cell(raw.acknowledgements.get(t, []), k) for t in ALERT_TYPES},
            "all": median_cell(all_seconds, k),
        },
    }


# --------------------------------------------------------------------------------------------------------
# Gathering the facts


def _needs(profile: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [(need["code"], need["level"]) for need in profile.get("support_needs", [])]


def _count_by(session: Session, table: sa.Table, tenant: str) -> dict[str, int]:
    rows = session.execute(
        sa.select(table.c.alert_type, sa.func.count()).where(table.c.tenant == tenant).group_by(table.c.alert_type)
    )
    return {alert_type: count for alert_type, count in rows}


def gather(session: Session, tenant: str) -> RawFigures:
    raw = RawFigures()
    for profile in ranking_store.candidate_profiles(session, tenant):
        raw.ladder_steps.append(int(profile["ladder_step"]))
        raw.support_needs.append(_needs(profile))
    raw.supports_offered = [
        list(profile.get("supports_offered", [])) for _, profile in ranking_store.open_vacancies(session, tenant)
    ]
    raw.proposals = ranking_store.proposal_count(session, tenant)
    placements = store.placements
    raw.placements = [
        PlacementFacts(row.start_date, row.status, row.end_date, row.outcome)
        for row in session.execute(
            sa.select(placements.c.start_date, placements.c.status, placements.c.end_date, placements.c.outcome).where(
                placements.c.tenant == tenant
            )
        )
    ]
    raw.alerts = _count_by(session, store.alert_log, tenant)
    acks = store.alert_acknowledgements
    for alert_type, seconds in session.execute(
        sa.select(acks.c.alert_type, acks.c.seconds).where(acks.c.tenant == tenant)
    ):
        raw.acknowledgements.setdefault(alert_type, []).append(seconds)
    return raw


def insights_for(session: Session, tenant: str, now: datetime, today: date) -> dict[str, Any]:
    return {"tenant": tenant, "generated_at": now, **build_insights(gather(session, tenant), today)}
