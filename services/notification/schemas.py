"""What the notification API accepts and answers."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from services.notification.domain import webhook_url_problem
from shared.metrics import ALERT_TYPES
from shared.web.resources import PageQuerySchema, PageSchema, StrictSchema


class AlertSchema(ma.Schema):
    id = fields.String()
    type = fields.String(validate=validate.OneOf(ALERT_TYPES))
    created_at = fields.AwareDateTime()
    acknowledged_at = fields.AwareDateTime(allow_none=True)
    candidate_id = fields.String()
    vacancy_id = fields.String(allow_none=True)
    placement_id = fields.String(allow_none=True)
    message = fields.String()
    details = fields.Dict()


class AlertQuerySchema(PageQuerySchema):
    unread = fields.Boolean()
    type = fields.String(validate=validate.OneOf(ALERT_TYPES))


class AlertPageSchema(PageSchema):
    items = fields.List(fields.Nested(AlertSchema))


class ChannelsInputSchema(StrictSchema):
    webhook_url = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    webhook_secret = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=16, max=200))
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=254))

    @ma.validates("webhook_url")
    def _webhook_url(self, value, **_kwargs):
        if value is not None:
            problem = webhook_url_problem(value)
            if problem:
                raise ma.ValidationError(problem)

    @ma.validates_schema
    def _secret_with_url(self, data, **_kwargs):
        if data.get("webhook_url") and not data.get("webhook_secret"):
            raise ma.ValidationError("a webhook needs a secret of at least 16 characters", "webhook_secret")


class ChannelsSchema(ma.Schema):
    """The channels as answered: the secret is write-only."""

    webhook_url = fields.String(allow_none=True)
    webhook_secret_set = fields.Boolean()
    email = fields.String(allow_none=True)
    updated_at = fields.AwareDateTime()
