"""Placements: the commands the API hands on, and the event handlers the worker adds for them.

Every command changes the placement and adds its events to the outbox in the caller's transaction, so
that an event exists if and only if the change does. A command that finds a rule broken raises before
it writes anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from services.matching import placements_store as pstore
from services.matching import risk, store
from services.matching.cadence import Cadence
from services.matching.settings import MatchingSettings
from shared.db import utcnow
from shared.events import Event, InvalidEvent, new_event

SOURCE = "matching"
# Dates a jobcoach writes are Dutch calendar days: "today" is today in the Netherlands.
LOCAL_ZONE = ZoneInfo("Europe/Amsterdam")
# How far from today a start date may lie: far enough for planning and late registration, near enough
# to catch a mistyped year.
START_DATE_WINDOW_DAYS = 366

Clock = Callable[[], datetime]


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


def start_placement(session: Session, tenant: str, jobcoach_id: str, fields: dict, today: date) -> dict:
    candidate = store.get_candidate(session, tenant, fields["candidate_id"])
    if candidate is None or candidate["jobcoach_id"] != jobcoach_id:
        raise NotFound("candidate")
    vacancy = store.get_vacancy(session, tenant, fields["vacancy_id"])
    if vacancy is None:
        raise NotFound("vacancy")
    if abs((fields["start_date"] - today).days) > START_DATE_WINDOW_DAYS:
        raise Invalid({"start_date": [f"must lie within {START_DATE_WINDOW_DAYS} days of today"]})
    if vacancy["status"] != "open":
        raise Conflict(f"The vacancy is {vacancy['status']}: a placement needs an open vacancy.")
    if pstore.active_placement_exists(session, tenant, fields["candidate_id"], fields["vacancy_id"]):
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
    pstore.insert_placement(session, tenant, values)
    data = {key: value for key, value in values.items() if key != "id"}
    _emit(session, "nl.werkbrug.placement.started", tenant, placement_id, data)
    return pstore.get_placement(session, tenant, placement_id)


def check_in(
    session: Session,
    tenant: str,
    principal,
    placement_id: str,
    fields: dict,
    today: date,
    settings: MatchingSettings,
) -> tuple[dict, dict]:
    """Record a check-in, rescore the placement, alert when the score rose above the threshold.

    Returns the check-in and the placement as they are afterwards.
    """
    placement = _visible(session, tenant, principal, placement_id, for_update=True)
    if placement["status"] != "active":
        raise Conflict("The placement has ended: it takes no more check-ins.")
    day = fields["date"]
    if day > today:
        raise Invalid({"date": ["must not lie in the future"]})
    if day < placement["start_date"]:
        raise Invalid({"date": [f"must not lie before the placement's start date ({placement['start_date']})"]})
    if pstore.checkin_on(session, tenant, placement_id, day):
        raise Conflict(f"The placement already has a check-in on {day}.")

    checkin = {
        "id": str(uuid.uuid4()),
        "placement_id": placement_id,
        "date": day,
        "wellbeing": fields["wellbeing"],
        "hours_worked": float(fields["hours_worked"]),
        "absence_days": fields["absence_days"],
        "signals": sorted(set(fields["signals"])),
    }
    pstore.insert_checkin(session, tenant, checkin)
    history = [risk.Checkin.from_row(row) for row in pstore.checkins_of(session, tenant, placement_id)]
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
    pstore.update_placement(session, tenant, placement_id, changes)
    placement = {**placement, **changes}
    _emit(
        session,
        "nl.werkbrug.placement.checked_in",
        tenant,
        placement_id,
        {
            "candidate_id": placement["candidate_id"],
            "vacancy_id": placement["vacancy_id"],
            "jobcoach_id": placement["jobcoach_id"],
            **{key: checkin[key] for key in ("date", "wellbeing", "hours_worked", "absence_days", "signals")},
            "risk_score": assessment.score,
            "model_version": assessment.model_version,
        },
    )
    if alert:
        _emit(
            session,
            "nl.werkbrug.placement.at_risk",
            tenant,
            placement_id,
            {
                "candidate_id": placement["candidate_id"],
                "vacancy_id": placement["vacancy_id"],
                "jobcoach_id": placement["jobcoach_id"],
                "score": assessment.score,
                "reasons": changes["risk_reasons"],
                "episode": state.episode,
                "model_version": assessment.model_version,
                "threshold": settings.risk_threshold,
            },
        )
        pstore.log_alert(session, tenant, "placement_at_risk")
    return checkin, placement


def assess(
    session: Session,
    tenant: str,
    placement: Mapping[str, Any],
    history: list[risk.Checkin],
    as_of: date,
    cadence: Cadence,
) -> risk.Assessment:
    model = risk.model_or_default(pstore.risk_models.active(session, tenant))
    values = risk.features(
        start_date=placement["start_date"],
        agreed_hours=placement["agreed_hours"],
        checkins=history,
        as_of=as_of,
        cadence=cadence,
    )
    return model.assess(values, risk.recent_signals([c for c in history if c.date <= as_of]))


def end_placement(session: Session, tenant: str, principal, placement_id: str, fields: dict, today: date) -> dict:
    placement = _visible(session, tenant, principal, placement_id, for_update=True)
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
    pstore.update_placement(session, tenant, placement_id, changes)
    if placement["risk_features"] is not None:
        # What the model saw at the last check-in, against how the placement turned out.
        label = risk.broke_down(fields["outcome"], placement["start_date"], day)
        pstore.add_training_row(session, tenant, placement["risk_features"], label)
    _emit(
        session,
        "nl.werkbrug.placement.ended",
        tenant,
        placement_id,
        {
            "candidate_id": placement["candidate_id"],
            "vacancy_id": placement["vacancy_id"],
            "jobcoach_id": placement["jobcoach_id"],
            "end_date": day,
            "outcome": fields["outcome"],
        },
    )
    return {**placement, **changes}


def report_overdue(session: Session, tenant: str, placement_id: str, today: date, cadence: Cadence) -> bool:
    """Emit ``checkin_overdue`` for the placement's current gap unless it was reported; True if emitted."""
    placement = pstore.get_placement(session, tenant, placement_id, for_update=True)
    if placement is None or placement["status"] != "active":
        return False
    gap = cadence.overdue_gap(placement["start_date"], placement["last_checkin"], today)
    if gap is None:
        return False
    gap_start, due_since = gap
    episode = pstore.mark_overdue(session, tenant, placement_id, gap_start)
    if episode is None:
        return False
    _emit(
        session,
        "nl.werkbrug.placement.checkin_overdue",
        tenant,
        placement_id,
        {
            "candidate_id": placement["candidate_id"],
            "vacancy_id": placement["vacancy_id"],
            "jobcoach_id": placement["jobcoach_id"],
            "last_checkin": placement["last_checkin"],
            "due_since": due_since,
            "episode": episode,
            "cadence_days": cadence.interval(placement["start_date"], gap_start),
        },
    )
    pstore.log_alert(session, tenant, "checkin_overdue")
    return True


def _visible(session: Session, tenant: str, principal, placement_id: str, *, for_update: bool = False) -> dict:
    placement = pstore.get_placement(session, tenant, placement_id, for_update=for_update)
    if placement is None or not may_see(principal, placement):
        raise NotFound("placement")
    return placement


def _emit(session: Session, type_name: str, tenant: str, placement_id: str, data: dict) -> None:
    store.outbox.add(session, new_event(type_name, tenant=tenant, subject=placement_id, data=data, source=SOURCE))


# --------------------------------------------------------------------------------------------------------
# Reading


def placement_view(placement: Mapping[str, Any], cadence: Cadence) -> dict:
    """A placement as the API shows it, with its current risk and when the next check-in is due."""
    active = placement["status"] == "active"
    return {
        "id": placement["id"],
        "candidate_id": placement["candidate_id"],
        "vacancy_id": placement["vacancy_id"],
        "jobcoach_id": placement["jobcoach_id"],
        "start_date": placement["start_date"],
        "agreed_hours": placement["agreed_hours"],
        "supports_agreed": placement["supports_agreed"],
        "status": placement["status"],
        "end_date": placement["end_date"],
        "outcome": placement["outcome"],
        "reason": placement["end_reason"],
        "checkin_count": placement["checkin_count"],
        "last_checkin": placement["last_checkin"],
        "next_checkin_due": cadence.due_date(placement["start_date"], placement["last_checkin"]) if active else None,
        "risk": {
            "score": placement["risk_score"],
            "at_risk": placement["at_risk"],
            "episode": placement["risk_episode"],
            "reasons": placement["risk_reasons"] or [],
            "model_version": placement["risk_model_version"],
            "scored_at": placement["risk_scored_at"],
        },
        "created_at": placement["created_at"],
    }


def get_placement(session: Session, tenant: str, principal, placement_id: str) -> tuple[dict, list[dict]]:
    placement = _visible(session, tenant, principal, placement_id)
    return placement, pstore.checkins_of(session, tenant, placement_id, limit=10)


# --------------------------------------------------------------------------------------------------------
# Event handlers the worker adds to the matching service's table

Handler = Callable[[Session, Event], None]
TombstoneHandler = Callable[[Session, str, str], None]


def on_alert_acknowledged(session: Session, event: Event) -> None:
    seconds = (event.data["acknowledged_at"] - event.data["created_at"]).total_seconds()
    if seconds < 0:
        raise InvalidEvent("an alert cannot be acknowledged before it was created")
    pstore.record_acknowledgement(session, event.tenant, event.data["alert_type"], seconds)


def _after(first: Handler | None, then: Handler) -> Handler:
    def handler(session: Session, event: Event) -> None:
        if first is not None:
            first(session, event)
        then(session, event)

    return handler


def _follow_jobcoach(session: Session, event: Event) -> None:
    # A candidate who changes jobcoach takes their placements along, so the new jobcoach gets the alerts.
    pstore.reassign_jobcoach(session, event.tenant, event.subject, event.data["jobcoach_id"])


def _erase(session: Session, event: Event) -> None:
    pstore.erase_candidate_placements(session, event.tenant, event.subject)


def with_placement_handlers(handlers: Mapping[str, Handler]) -> dict[str, Handler]:
    """The matching service's handlers, extended with what placements need from the same events."""
    extended = dict(handlers)
    for type_name in ("nl.werkbrug.candidate.registered", "nl.werkbrug.candidate.updated"):
        extended[type_name] = _after(handlers.get(type_name), _follow_jobcoach)
    extended["nl.werkbrug.candidate.erased"] = _after(handlers.get("nl.werkbrug.candidate.erased"), _erase)
    extended["nl.werkbrug.alert.acknowledged"] = on_alert_acknowledged
    return extended


def with_placement_tombstone_handlers(handlers: Mapping[str, TombstoneHandler]) -> dict[str, TombstoneHandler]:
    extended = dict(handlers)
    original = handlers.get("candidate-events")

    def on_candidate_tombstone(session: Session, tenant: str, candidate_id: str) -> None:
        if original is not None:
            original(session, tenant, candidate_id)
        pstore.erase_candidate_placements(session, tenant, candidate_id)

    extended["candidate-events"] = on_candidate_tombstone
    return extended


# --------------------------------------------------------------------------------------------------------
# Risk models, for the command line


def train_model(session: Session, tenant: str) -> risk.RiskModel:
    """Train and activate the tenant's next model; raises :class:`risk.TrainingRefused`."""
    number = pstore.risk_models.next_number(session, tenant)
    model = risk.train(tenant, number, pstore.training_rows(session, tenant))
    pstore.risk_models.add(session, tenant, number, model.version, model.to_dict())
    return model


def rollback_model(session: Session, tenant: str) -> tuple[str, str]:
    """Retire the model in use; (the retired version, the version in use now)."""
    retired = pstore.risk_models.retire_active(session, tenant)
    if retired is None:
        raise risk.TrainingRefused(f"{tenant} uses the default model ({risk.DEFAULT_VERSION}): nothing to roll back.")
    return retired, risk.model_or_default(pstore.risk_models.active(session, tenant)).version
