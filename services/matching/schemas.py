"""What the matching API accepts and answers."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from shared.web.resources import StrictSchema


class MatchQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=50))


class VacancyMatchSchema(ma.Schema):
    vacancy_id = fields.String()
    title = fields.String()
    score = fields.Float()
    explanation = fields.Dict()


class CandidateMatchesSchema(ma.Schema):
    candidate_id = fields.String()
    ranking_version = fields.String()
    items = fields.List(fields.Nested(VacancyMatchSchema))
    reason = fields.String(allow_none=True, metadata={"description": "Why the list is empty, when it is"})


class AnonymousProfileSchema(ma.Schema):
    """A candidate as an employer may see them: no id, no name, needs only as workplace accommodations."""

    profile_ref = fields.String(metadata={"description": "Stable per vacancy; the jobcoach can resolve it"})
    score = fields.Float()
    talents_matched = fields.List(fields.Dict())
    accommodations = fields.List(fields.Dict())
    hours = fields.Dict()
    ladder_step = fields.Integer()


class VacancyMatchesSchema(ma.Schema):
    vacancy_id = fields.String()
    ranking_version = fields.String()
    items = fields.List(fields.Nested(AnonymousProfileSchema))
    reason = fields.String(allow_none=True)
