"""What the candidate API accepts and answers."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from shared.events import CandidateFieldsSchema, CandidateLocationSchema, ConsentSchema, SupportNeedSchema
from shared.web.resources import StrictBodySchema

# A pseudonym chosen with the candidate, never their legal name; kept short to discourage full names.
display_name_field = fields.String(required=True, validate=validate.Length(min=1, max=60))


class CandidateCreateSchema(StrictBodySchema, CandidateFieldsSchema):
    """The candidate's facts as the events carry them, strictly: no member a client was not given (a
    ``diagnosis`` in a support need is refused), JSON types only, no control characters."""

    display_name = display_name_field


class CandidatePatchSchema(CandidateCreateSchema):
    """Any subset of the fields, re-validated together with what is stored."""


class CandidateSchema(ma.Schema):
    id = fields.String()
    jobcoach_id = fields.String()
    display_name = fields.String()
    talents = fields.List(fields.String())
    preferences = fields.List(fields.String())
    support_needs = fields.List(fields.Nested(SupportNeedSchema))
    hours_min = fields.Integer()
    hours_max = fields.Integer()
    ladder_step = fields.Integer()
    location = fields.Nested(CandidateLocationSchema)
    consent = fields.Nested(ConsentSchema)
    target_group_register = fields.Boolean()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
