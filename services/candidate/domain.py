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
