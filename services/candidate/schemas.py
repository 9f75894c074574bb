"""What the candidate API accepts and answers."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from services.candidate import domain
from shared.events import CandidateFieldsSchema, CandidateLocationSchema, ConsentSchema, SupportNeedSchema
from shared.registry import SUBJECT_ID
from shared.web.resources import PageQuerySchema, PageSchema, StrictBodySchema

# A pseudonym chosen with the candidate, never their legal name; kept short to discourage full names.
display_name_field = fields.String(required=True, validate=validate.Length(min=1, max=60))


# Both bases declare a Meta; the strict one comes first in the MRO and is the one marshmallow reads.
class CandidateCreateSchema(StrictBodySchema, CandidateFieldsSchema):  # type: ignore[misc]
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


# A jobcoach's id as the registry holds subjects: a handover can name no other.
subject_id = validate.Regexp(SUBJECT_ID, error="Must be letters, digits, dots, dashes or underscores (at most 100).")
RECORDED_BY = 'the jobcoach\'s id, or "operator"'


class CaseloadQuerySchema(PageQuerySchema):
    jobcoach_id = fields.String(
        validate=subject_id,
        metadata={"description": "operators: one jobcoach's candidates; a jobcoach may name only themselves"},
    )
    updated_since = fields.AwareDateTime(
        metadata={"description": "only candidates changed at or after this moment (with its UTC offset)"}
    )


class CandidatePageSchema(PageSchema):
    items = fields.List(fields.Nested(CandidateSchema))


class HandoverSchema(StrictBodySchema):
    jobcoach_id = fields.String(
        required=True, validate=subject_id, metadata={"description": "the jobcoach who takes the candidate on"}
    )


class ConsentEntrySchema(ma.Schema):
    """One consent given or changed, or one introduction the candidate answered."""

    type = fields.String(
        validate=validate.OneOf(domain.CONSENT_KINDS),
        metadata={"description": "consent (given at registration or changed), or an introduction accepted or declined"},
    )
    reason = fields.String(
        allow_none=True,
        validate=validate.OneOf((domain.REGISTERED, domain.CHANGED)),
        metadata={"description": "for consent: given at registration, or changed later"},
    )
    consent = fields.Nested(ConsentSchema, allow_none=True, metadata={"description": "the consent from then on"})
    previous = fields.Nested(ConsentSchema, allow_none=True, metadata={"description": "the consent before"})
    introduction_id = fields.String(allow_none=True)
    vacancy_id = fields.String(allow_none=True)
    employer_id = fields.String(allow_none=True)
    vacancy_title = fields.String(allow_none=True)
    recorded_at = fields.AwareDateTime()
    recorded_by = fields.String(metadata={"description": RECORDED_BY})


class ConsentPageSchema(PageSchema):
    items = fields.List(fields.Nested(ConsentEntrySchema), metadata={"description": "newest first"})


class LadderEntrySchema(ma.Schema):
    """One step on the Participatieladder: at registration, changed by hand, or raised by a placement's end."""

    step = fields.Integer()
    previous_step = fields.Integer(allow_none=True)
    reason = fields.String(validate=validate.OneOf((domain.REGISTERED, domain.CHANGED, domain.PLACEMENT_ENDED)))
    placement_id = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    end_date = fields.String(allow_none=True, metadata={"format": "date", "description": "the placement's end"})
    recorded_at = fields.AwareDateTime()
    recorded_by = fields.String(metadata={"description": RECORDED_BY})


class LadderPageSchema(PageSchema):
    items = fields.List(fields.Nested(LadderEntrySchema), metadata={"description": "newest first"})
