"""What the introduction routes accept and answer."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from shared.web.resources import PageSchema, StrictBodySchema


class InterestSchema(StrictBodySchema):
    profile_ref = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9a-f]{16}$", error="must be a profile_ref from the vacancy's matches"),
    )


class ContactSchema(ma.Schema):
    work_email = fields.String(allow_none=True, metadata={"description": "The jobcoach's work e-mail, if on file"})
    how = fields.String(metadata={"description": "'e-mail the jobcoach', or 'via the region's service desk'"})


class EmployerIntroductionSchema(ma.Schema):
    id = fields.String()
    status = fields.String(metadata={"description": "pending, accepted, or 'not now' (no reason is given)"})
    vacancy_id = fields.String()
    vacancy_title = fields.String(allow_none=True)
    profile_ref = fields.String()
    created_at = fields.DateTime()
    answered_at = fields.DateTime(allow_none=True)
    contact = fields.Nested(ContactSchema, allow_none=True, metadata={"description": "Only once accepted"})


class JobcoachIntroductionSchema(ma.Schema):
    id = fields.String()
    status = fields.String(metadata={"description": "pending, accepted, declined or cancelled"})
    vacancy_id = fields.String()
    vacancy_title = fields.String(allow_none=True)
    candidate_id = fields.String()
    profile_ref = fields.String()
    created_at = fields.DateTime()
    answered_at = fields.DateTime(allow_none=True)
    answered_by = fields.String(allow_none=True)


class IntroductionSchema(EmployerIntroductionSchema, JobcoachIntroductionSchema):
    """Either side's view: a jobcoach's carries the candidate and who answered, an employer's never does."""

    status = fields.String(
        metadata={
            "description": "jobcoach: pending, accepted, declined, cancelled; employer: pending, accepted, not now"
        }
    )


class IntroductionPageSchema(PageSchema):
    items = fields.List(fields.Nested(IntroductionSchema))


class EmployerIntroductionPageSchema(PageSchema):
    items = fields.List(fields.Nested(EmployerIntroductionSchema))
