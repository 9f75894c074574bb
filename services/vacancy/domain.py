"""The vacancy service's rules, free of I/O."""

from __future__ import annotations

import marshmallow as ma

from shared.events import EventType, VacancyFieldsSchema
from shared.registry import Principal

FIELD_NAMES = tuple(VacancyFieldsSchema().fields)


class VacancyRuleBroken(ValueError):
    def __init__(self, errors: dict) -> None:
        super().__init__(str(errors))
        self.errors = errors


def may_see(principal: Principal, vacancy: dict) -> bool:
    """An operator sees the region's vacancies; an employer only their own."""
    return principal.role == "operator" or vacancy["employer_id"] == principal.subject


def apply_patch(current: dict, patch: dict) -> tuple[dict, str]:
    """The vacancy's fields and status after a PATCH, re-validated as a whole (hours_min against
    hours_max, for example, may each be valid alone and wrong together)."""
    if current["status"] == "closed":
        raise VacancyRuleBroken({"status": ["a closed vacancy cannot be changed"]})
    status = patch.pop("status", current["status"])
    merged = {name: current[name] for name in FIELD_NAMES} | patch
    try:
        fields = VacancyFieldsSchema().load(merged)
    except ma.ValidationError as exc:
        raise VacancyRuleBroken(exc.normalized_messages()) from exc
    return fields, status


def event_type_for(old_status: str, new_status: str) -> EventType:
    if new_status != "open" and old_status == "open":
        return EventType.VACANCY_CLOSED
    return EventType.VACANCY_UPDATED
