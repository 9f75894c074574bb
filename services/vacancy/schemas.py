"""What the vacancy API accepts and answers."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from shared.events import VacancyFieldsSchema, VacancyLocationSchema
from shared.vocabulary import VACANCY_STATUSES
from shared.web.resources import PageQuerySchema, PageSchema


class VacancyCreateSchema(VacancyFieldsSchema):
    class Meta:
        unknown = ma.RAISE


class VacancyPatchSchema(VacancyFieldsSchema):
    """Any subset of the fields; ``status`` may move between open and filled (DELETE closes for good)."""

    class Meta:
        unknown = ma.RAISE

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
