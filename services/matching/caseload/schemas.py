"""What the caseload route accepts and answers."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from services.matching.caseload.status import STATUSES
from shared.web.resources import PageQuerySchema, PageSchema


class CaseloadQuerySchema(PageQuerySchema):
    jobcoach_id = fields.String(
        load_default=None, validate=validate.Length(min=1, max=100), metadata={"description": "Operators only"}
    )


class CaseloadEntrySchema(ma.Schema):
    candidate_id = fields.String()
    jobcoach_id = fields.String()
    status = fields.String(metadata={"description": f"One of {', '.join(STATUSES)}"})
    last_contact = fields.Date(metadata={"description": "Registration, profile change, check-in or acknowledged alert"})
    days_since_contact = fields.Integer()
    open_alerts = fields.Integer()


class LoadSchema(ma.Schema):
    jobcoach_id = fields.String()
    candidates = fields.Integer()
    at_risk = fields.Integer()
    checkin_overdue = fields.Integer()


class CaseloadPageSchema(PageSchema):
    items = fields.List(fields.Nested(CaseloadEntrySchema))
    contact_days = fields.Integer(
        metadata={"description": "The region's setting: this many days or more without contact is out of sight"}
    )
    jobcoaches = fields.List(
        fields.Nested(LoadSchema), metadata={"description": "Operators only: each jobcoach's load"}
    )
