"""What the placements API asks for (start, check in, end, read, list, the region's insights) and what the
admin command line asks for (train and roll back a risk model).

Every command runs in one transaction of its own: it changes the placement and adds its events to the
outbox together, so that an event exists if and only if the change does. A command that finds a rule
broken raises before it writes anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.matching.caseload import store as caseload_store
from services.matching.outbox import emit
from services.matching.placements import insights, ladder, risk, store
from services.matching.placements.cadence import Cadence
from services.matching.ranking import store as ranking_store
from services.matching.settings import MatchingSettings
from shared.clock import Clock
from shared.db import Database, StaleVersion, utcnow
from shared.events import EventType

# Dates a jobcoach writes are Dutch calendar days: "today" is today in the Netherlands.
LOCAL_ZONE = ZoneInfo("Europe/Amsterdam")
# How far from today a start date may lie: far enough for planning and late registration, near enough
# to catch a mistyped year.
START_DATE_WINDOW_DAYS = 366
# The optional path up the ladder a placement may carry.
PATH_FIELDS = ("learning_goals", "planned_end_date", "supervisor_arranged", "buddy_arranged")


class PlacementRuleBroken(Exception):
    """Base of the refusals a command raises; nothing has been written when one is raised."""


class NotFound(PlacementRuleBroken):
    def __init__(self, what: str) -> None:
        super().__init__(f"No such {what}.")
        self.what = what


class Conflict(PlacementRuleBroken):
    pass


class Invalid(PlacementRuleBroken):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("invalid fields")
        self.errors = errors


def local_today(clock: Clock) -> date:
    return clock().astimezone(LOCAL_ZONE).date()


def may_see(principal, placement: Mapping[str, Any]) -> bool:
    """A jobcoach sees the placements of their own candidates; an operator every one of the region."""
    return principal.role == "operator" or placement["jobcoach_id"] == principal.subject


# --------------------------------------------------------------------------------------------------------
# Commands


def start_placement(db: Database, tenant: str, jobcoach_id: str, fields: dict, today: date) -> dict:
    try:
        with db.session() as session:
            candidate = ranking_store.get_candidate(session, tenant, fields["candidate_id"])
            if candidate is None or candidate["jobcoach_id"] != jobcoach_id:
                raise NotFound("candidate")
            vacancy = ranking_store.get_vacancy(session, tenant, fields["vacancy_id"])
            if vacancy is None:
                raise NotFound("vacancy")
            if abs((fields["start_date"] - today).days) > START_DATE_WINDOW_DAYS:
                raise Invalid({"start_date": [f"must lie within {START_DATE_WINDOW_DAYS} days of today"]})
            if fields.get("planned_end_date") and fields["planned_end_date"] < fields["start_date"]:
                raise Invalid({"planned_end_date": ["must not lie before the start date"]})
            if vacancy["status"] != "open":
                raise Conflict(f"The vacancy is {vacancy['status']}: a placement needs an open vacancy.")
            if store.active_placement_exists(session, tenant, fields["candidate_id"], fields["vacancy_id"]):
                raise Conflict("The candidate already has an active placement at this vacancy.")
            placement_id = str(uuid.uuid4())
            values = {
                "id": placement_id,
                "candidate_id": fields["candidate_id"],
                "vacancy_id": fields["vacancy_id"],
                "jobcoach_id": jobcoach_id,
                "start_date": fields["start_date"],
                "agreed_hours": fields["agreed_hours"],
                "supports_agreed": sorted(set(fields["supports_agreed"])),
            }
            path = {key: fields.get(key) for key in PATH_FIELDS}
            path["learning_goals"] = list(fields.get("learning_goals") or [])
            store.insert_placement(session, tenant, {**values, **path})
            # The path up the ladder stays in this service: the event carries the placement's facts only, and
            # not the supports agreed, which tell of the candidate's needs and placement-events cannot forget.
            data = {key: value for key, value in values.items() if key not in ("id", "supports_agreed")}
            emit(session, EventType.PLACEMENT_STARTED, tenant=tenant, subject=placement_id, data=data)
            started = store.get_placement(session, tenant, placement_id)
            assert started is not None, "inserted in this transaction"
            return started
    except IntegrityError:
        # Two requests at the same instant: the unique index settles it after the check above passed both.
        raise Conflict("The candidate already has an active placement at this vacancy.") from None


def check_in(
    db: Database,
    tenant: str,
    principal,
    placement_id: str,
    fields: dict,
    today: date,
    settings: MatchingSettings,
    expected_version: int | None = None,
) -> tuple[dict, dict]:
    """Record a check-in, rescore the placement, alert when the score rose above the threshold.

    Returns the check-in and the placement as they are afterwards. With ``expected_version`` (from
    If-Match), only while the placement is still at that version.
    """
    with db.session() as session:
        placement = _visible(session, tenant, principal, placement_id, for_update=True)
        _require_version(placement, expected_version)
        if placement["status"] != "active":
            raise Conflict("The placement has ended: it takes no more check-ins.")
        day = fields["date"]
        if day > today:
            raise Invalid({"date": ["must not lie in the future"]})
        if day < placement["start_date"]:
            raise Invalid({"date": [f"must not lie before the placement's start date ({placement['start_date']})"]})
        progress = fields.get("goal_progress")
        if progress:
            unknown = sorted(set(progress) - set(placement["learning_goals"] or []))
            if unknown:
                raise Invalid({"goal_progress": [f"not among the placement's learning goals: {', '.join(unknown)}"]})
        if store.checkin_on(session, tenant, placement_id, day):
            raise Conflict(f"The placement already has a check-in on {day}.")

        checkin = {
            "id": str(uuid.uuid4()),
            "placement_id": placement_id,
            "date": day,
            "wellbeing": fields["wellbeing"],
            "hours_worked": float(fields["hours_worked"]),
            "absence_days": fields["absence_days"],
            "signals": sorted(set(fields["signals"])),
            "goal_progress": progress,
        }
        store.insert_checkin(session, tenant, checkin)
        caseload_store.record_contact(session, tenant, placement["candidate_id"], day)
        history = [risk.Checkin.from_row(row) for row in store.checkins_of(session, tenant, placement_id)]
        as_of = max(c.date for c in history)
        assessment = assess(session, tenant, placement, history, as_of, Cadence.from_settings(settings))
        state, alert = risk.next_state(
            risk.RiskState(placement["at_risk"], placement["risk_episode"]),
            assessment.score,
            settings.risk_threshold,
            settings.risk_release,
        )
        changes = {
            "checkin_count": placement["checkin_count"] + 1,
            "last_checkin": max(day, placement["last_checkin"] or day),
            "risk_score": assessment.score,
            "risk_reasons": [reason.to_dict() for reason in assessment.reasons],
            "risk_features": assessment.features,
            "risk_model_version": assessment.model_version,
            "risk_scored_at": utcnow(),
            "at_risk": state.at_risk,
            "risk_episode": state.episode,
        }
        store.update_placement(session, tenant, placement_id, changes)
        placement = {**placement, **changes, "version": placement["version"] + 1}
        emit(
            session,
            EventType.PLACEMENT_CHECKED_IN,
            tenant=tenant,
            subject=placement_id,
            data={
                "candidate_id": placement["candidate_id"],
                "vacancy_id": placement["vacancy_id"],
                "jobcoach_id": placement["jobcoach_id"],
                # What the check-in said stays here, where erasure reaches it: placement-events cannot forget.
                "date": checkin["date"],
                "risk_score": assessment.score,
                "model_version": assessment.model_version,
            },
        )
        if alert:
            emit(
                session,
                EventType.PLACEMENT_AT_RISK,
                tenant=tenant,
                subject=placement_id,
                data={
                    "candidate_id": placement["candidate_id"],
                    "vacancy_id": placement["vacancy_id"],
                    "jobcoach_id": placement["jobcoach_id"],
                    "score": assessment.score,
                    "episode": state.episode,
                    "model_version": assessment.model_version,
                    "threshold": settings.risk_threshold,
                },
            )
            store.log_alert(session, tenant, "placement_at_risk")
        return checkin, placement


def assess(
    session: Session,
    tenant: str,
    placement: Mapping[str, Any],
    history: list[risk.Checkin],
    as_of: date,
    cadence: Cadence,
) -> risk.Assessment:
    model = risk.model_or_default(store.risk_models.active(session, tenant))
    values = risk.features(
        start_date=placement["start_date"],
        agreed_hours=placement["agreed_hours"],
        checkins=history,
        as_of=as_of,
        cadence=cadence,
    )
    return model.assess(values, risk.recent_signals([c for c in history if c.date <= as_of]))


def end_placement(
    db: Database,
    tenant: str,
    principal,
    placement_id: str,
    fields: dict,
    today: date,
    expected_version: int | None = None,
) -> dict:
    with db.session() as session:
        placement = _visible(session, tenant, principal, placement_id, for_update=True)
        _require_version(placement, expected_version)
        if placement["status"] != "active":
            raise Conflict("The placement has ended already.")
        day = fields["date"]
        if day > today:
            raise Invalid({"date": ["must not lie in the future"]})
        if day < placement["start_date"]:
            raise Invalid({"date": [f"must not lie before the placement's start date ({placement['start_date']})"]})
        if placement["last_checkin"] and day < placement["last_checkin"]:
            raise Invalid({"date": [f"must not lie before the last check-in ({placement['last_checkin']})"]})
        changes = {"status": "ended", "end_date": day, "outcome": fields["outcome"], "end_reason": fields.get("reason")}
        store.update_placement(session, tenant, placement_id, changes)
        if placement["risk_features"] is not None:
            # What the model saw at the last check-in, against how the placement turned out.
            label = risk.broke_down(fields["outcome"], placement["start_date"], day)
            store.add_training_row(session, tenant, placement["risk_features"], label)
        emit(
            session,
            EventType.PLACEMENT_ENDED,
            tenant=tenant,
            subject=placement_id,
            data={
                "candidate_id": placement["candidate_id"],
                "vacancy_id": placement["vacancy_id"],
                "jobcoach_id": placement["jobcoach_id"],
                "end_date": day,
                "outcome": fields["outcome"],
                "ladder_step_after": _ladder_step_after(session, tenant, placement, fields["outcome"]),
            },
        )
        return {**placement, **changes, "version": placement["version"] + 1}


def _ladder_step_after(session: Session, tenant: str, placement: Mapping[str, Any], outcome: str) -> int | None:
    """The candidate's rung after this ending, from matching's read models; None when it does not move."""
    candidate = ranking_store.get_candidate(session, tenant, placement["candidate_id"])
    if candidate is None:
        return None
    vacancy = ranking_store.get_vacancy(session, tenant, placement["vacancy_id"]) or {}
    return ladder.step_after(outcome, candidate["ladder_step"], vacancy.get("kind"))


def _require_version(placement: dict, expected_version: int | None) -> None:
    # Read under the row lock, so no other change can come between this check and the update.
    if expected_version is not None and placement["version"] != expected_version:
        raise StaleVersion("placement")


def current_placement(db: Database, tenant: str, principal, placement_id: str) -> dict:
    """The stored placement the caller may see, for checking If-Match before a change."""
    with db.session() as session:
        return _visible(session, tenant, principal, placement_id)


def _visible(session: Session, tenant: str, principal, placement_id: str, *, for_update: bool = False) -> dict:
    placement = store.get_placement(session, tenant, placement_id, for_update=for_update)
    if placement is None or not may_see(principal, placement):
        raise NotFound("placement")
    return placement


# --------------------------------------------------------------------------------------------------------
# Reading


def list_placements(
    db: Database, tenant: str, principal, *, status: str | None, offset: int, limit: int
) -> tuple[list[dict], int]:
    """A jobcoach's own placements, or for an operator the region's, newest first; and how many in all."""
    with db.session() as session:
        return store.list_placements(
            session,
            tenant,
            jobcoach_id=principal.subject if principal.role == "jobcoach" else None,
            status=status,
            offset=offset,
            limit=limit,
        )


def region_insights(db: Database, tenant: str, now: datetime) -> dict[str, Any]:
    """The region's anonymous bundled figures as of ``now``."""
    with db.session() as session:
        return insights.insights_for(session, tenant, now, local_today(lambda: now))


def get_placement(db: Database, tenant: str, principal, placement_id: str) -> tuple[dict, list[dict]]:
    with db.session() as session:
        placement = _visible(session, tenant, principal, placement_id)
        return placement, store.checkins_of(session, tenant, placement_id, limit=10)


# --------------------------------------------------------------------------------------------------------
# Risk models, for the command line


def train_model(session: Session, tenant: str) -> risk.RiskModel:
    """Train and activate the tenant's next model; raises :class:`risk.TrainingRefused`."""
    number = store.risk_models.next_number(session, tenant)
    model = risk.train(tenant, number, store.training_rows(session, tenant))
    store.risk_models.add(session, tenant, number, model.version, model.to_dict())
    return model


def rollback_model(session: Session, tenant: str) -> tuple[str, str]:
    """Retire the model in use; (the retired version, the version in use now)."""
    retired = store.risk_models.retire_active(session, tenant)
    if retired is None:
        raise risk.TrainingRefused(f"{tenant} uses the default model ({risk.DEFAULT_VERSION}): nothing to roll back.")
    return retired, risk.model_or_default(store.risk_models.active(session, tenant)).version
