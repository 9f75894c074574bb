"""The candidate service's rules, free of I/O."""

from __future__ import annotations

import marshmallow as ma

from shared.events import CandidateFieldsSchema
from shared.registry import Principal

PROFILE_FIELDS = tuple(CandidateFieldsSchema().fields)


class CandidateRuleBroken(ValueError):
    def __init__(self, errors: dict) -> None:
        super().__init__(str(errors))
        self.errors = errors


def may_see(principal: Principal, candidate: dict) -> bool:
    """A candidate's own jobcoach, or the region's operator; no other jobcoach."""
    return principal.role == "operator" or candidate["jobcoach_id"] == principal.subject


def split_profile(fields: dict) -> tuple[str, dict]:
    """The pseudonym, which stays in this service, and the profile, which events may carry."""
    profile = {name: fields[name] for name in PROFILE_FIELDS if name in fields}
    return fields["display_name"], profile


def apply_patch(current: dict, patch: dict) -> tuple[str, dict]:
    display_name = patch.pop("display_name", current["display_name"])
    merged = {name: current[name] for name in PROFILE_FIELDS} | patch
    try:
        profile = CandidateFieldsSchema().load(merged)
    except ma.ValidationError as exc:
        raise CandidateRuleBroken(exc.normalized_messages()) from exc
    return display_name, profile


# The kinds of history entries: what the consent and ladder views show, and handovers, kept for audit.
CONSENT = "consent"
INTRODUCTION_ACCEPTED = "introduction_accepted"
INTRODUCTION_DECLINED = "introduction_declined"
LADDER = "ladder"
HANDOVER = "handover"
CONSENT_KINDS = (CONSENT, INTRODUCTION_ACCEPTED, INTRODUCTION_DECLINED)
LADDER_KINDS = (LADDER,)

# Why a consent or ladder entry was made.
REGISTERED = "registered"
CHANGED = "changed"
PLACEMENT_ENDED = "placement_ended"

# Who an operator's change is recorded as: operator keys stand for the region's office, not a person.
OPERATOR = "operator"


def actor(principal: Principal) -> str:
    """Who a change is recorded as: the jobcoach's id, or "operator"."""
    return principal.subject if principal.role == "jobcoach" and principal.subject else OPERATOR


def consent_of(candidate: dict) -> dict:
    consent = candidate["consent"]
    return {"matching": consent["matching"], "share_with_employers": consent["share_with_employers"]}


def consent_entry(reason: str, before: dict | None, after: dict) -> dict | None:
    """The details of a consent entry, or None when the consent did not change."""
    after = consent_of(after)
    previous = consent_of(before) if before is not None else None
    if previous == after:
        return None
    return {"reason": reason, "consent": after, "previous": previous}


def ladder_entry(reason: str, before: dict | None, after: dict, **cause) -> dict | None:
    """The details of a ladder entry, or None when the step did not change."""
    previous = before["ladder_step"] if before is not None else None
    if previous == after["ladder_step"]:
        return None
    return {"reason": reason, "step": after["ladder_step"], "previous_step": previous, **cause}


def rise_to(current_step: int, step_after: int | None) -> int | None:
    """The step a placement's end raises the candidate to, or None: the ladder only goes up this way. A
    jobcoach may set a lower step by hand; an event never does."""
    if step_after is None or step_after <= current_step:
        return None
    return step_after


def handover_problem(candidate: dict, jobcoach_id: str) -> dict | None:
    """Field errors of a handover, or None when it may go ahead."""
    if jobcoach_id == candidate["jobcoach_id"]:
        return {"jobcoach_id": ["The candidate is already this jobcoach's."]}
    return None


def caseload_filter(principal: Principal, jobcoach_id: str | None) -> tuple[str | None, dict | None]:
    """Whose candidates a caseload request lists, or the field errors: a jobcoach lists their own (naming
    another jobcoach is refused, not quietly ignored); an operator the region's, or one jobcoach's."""
    if principal.role == "operator":
        return jobcoach_id, None
    if jobcoach_id is not None and jobcoach_id != principal.subject:
        return None, {"jobcoach_id": ["A jobcoach lists only their own candidates."]}
    return principal.subject, None


def consent_view(entry: dict) -> dict:
    """A consent-history entry as the API answers it: every member present, null where it does not apply."""
    details = entry["details"]
    return {
        "type": entry["kind"],
        "reason": details.get("reason"),
        "consent": details.get("consent"),
        "previous": details.get("previous"),
        "introduction_id": details.get("introduction_id"),
        "vacancy_id": details.get("vacancy_id"),
        "employer_id": details.get("employer_id"),
        "vacancy_title": details.get("vacancy_title"),
        "recorded_at": entry["recorded_at"],
        "recorded_by": entry["recorded_by"],
    }


def ladder_view(entry: dict) -> dict:
    details = entry["details"]
    return {
        "step": details["step"],
        "previous_step": details.get("previous_step"),
        "reason": details["reason"],
        "placement_id": details.get("placement_id"),
        "outcome": details.get("outcome"),
        "end_date": details.get("end_date"),
        "recorded_at": entry["recorded_at"],
        "recorded_by": entry["recorded_by"],
    }
