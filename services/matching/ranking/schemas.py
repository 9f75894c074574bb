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
    explanation = fields.Dict(
        metadata={
            "description": "Talents matched, supports, hours, ladder, distance, the component scores, the weights "
            "and their version, and the ranking version (with the reranker when one is in use)"
        }
    )


class CandidateMatchesSchema(ma.Schema):
    candidate_id = fields.String()
    ranking_version = fields.String(metadata={"description": "Text model, plus the tenant's reranker if in use"})
    weights_version = fields.String(metadata={"description": "Short name of the tenant's score weights"})
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
    weights_version = fields.String()
    items = fields.List(fields.Nested(AnonymousProfileSchema))
    reason = fields.String(allow_none=True)


class ExposureGroupSchema(ma.Schema):
    ladder_step = fields.Integer()
    target_group = fields.Boolean(metadata={"description": "In the Banenafspraak target-group register"})
    candidates = fields.Integer(metadata={"description": "Candidates now consenting to matching"})
    shown = fields.Integer(metadata={"description": "Times shown to employers, in total"})
    proposed = fields.Integer(metadata={"description": "Times proposed to jobcoaches, in total"})
    shown_per_candidate = fields.Float(allow_none=True)
    proposed_per_candidate = fields.Float(allow_none=True)


class ExposureSchema(ma.Schema):
    tenant = fields.String()
    groups = fields.List(fields.Nested(ExposureGroupSchema))
    totals = fields.Dict()


class RankingLogQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class RankingLogEntrySchema(ma.Schema):
    served_at = fields.DateTime()
    direction = fields.String()
    subject_fingerprint = fields.String(metadata={"description": "SHA-256 of the subject's normalised inputs"})
    ranking_version = fields.String()
    model_version = fields.String()
    weights_version = fields.String()
    weights = fields.Dict()
    reranker_version = fields.String(allow_none=True)
    result_count = fields.Integer()
    results = fields.List(
        fields.Raw(), metadata={"description": "Vacancies as {vacancy_id, score}; candidates as scores only"}
    )


class RankingLogSchema(ma.Schema):
    tenant = fields.String()
    items = fields.List(fields.Nested(RankingLogEntrySchema))
