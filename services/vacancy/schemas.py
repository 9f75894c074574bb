"""What the vacancy API accepts and answers."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from shared.events import VacancyFieldsSchema, VacancyLocationSchema
from shared.vocabulary import VACANCY_STATUSES
from shared.web.resources import FreeText, PageQuerySchema, PageSchema, StrictBodySchema


# Both bases declare a Meta; the strict one comes first in the MRO and is the one marshmallow reads.
class VacancyCreateSchema(StrictBodySchema, VacancyFieldsSchema):  # type: ignore[misc]
    """The vacancy's facts as the events carry them, strictly: JSON types only, no control characters
    (the description, free text, may hold tabs and line breaks)."""

    description = FreeText(load_default="", validate=validate.Length(max=10_000))


class VacancyPatchSchema(VacancyCreateSchema):
    """Any subset of the fields; ``status`` may move between open and filled (DELETE closes for good)."""

    status = fields.String(validate=validate.OneOf(("open", "filled")))


class VacancySchema(ma.Schema):
    id = fields.String()
    employer_id = fields.String()
    status = fields.String(validate=validate.OneOf(VACANCY_STATUSES))
    title = fields.String()
    description = fields.String()
    tasks = fields.List(fields.String())
    skills = fields.List(fields.String())
    supports_offered = fields.List(fields.String())
    hours_min = fields.Integer()
    hours_max = fields.Integer()
    kind = fields.String()
    positions = fields.Integer()
    location = fields.Nested(VacancyLocationSchema)
    banenafspraak = fields.Boolean()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class VacancyListQuerySchema(PageQuerySchema):
    status = fields.String(validate=validate.OneOf(VACANCY_STATUSES))


class VacancyPageSchema(PageSchema):
    items = fields.List(fields.Nested(VacancySchema))
