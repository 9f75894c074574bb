"""What the notification API accepts and answers."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from services.notification.domain import ALERT_TYPES, OPERATOR_ALERT_TYPES, webhook_secret_problem, webhook_url_problem
from shared.web.resources import PageQuerySchema, PageSchema, StrictBodySchema


class DeliverySchema(ma.Schema):
    """How far an alert got on one channel. A ``digest`` delivery waits for the daily summary mail."""

    channel = fields.String(validate=validate.OneOf(("webhook", "email", "digest")))
    status = fields.String(
        metadata={
            "description": "pending (not yet sent, or being retried), delivered, failed (gave up after the last "
            "attempt; the alert went to the dead-letter topic) or cancelled (the channel was removed)"
        }
    )
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)


class AlertSchema(ma.Schema):
    id = fields.String()
    type = fields.String(validate=validate.OneOf(ALERT_TYPES))
    created_at = fields.AwareDateTime()
    acknowledged_at = fields.AwareDateTime(allow_none=True)
    escalated_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "when the unacknowledged alert went to the region's operators"}
    )
    candidate_id = fields.String(
        allow_none=True, metadata={"description": "null only for an operators' alert about a jobcoach's caseload"}
    )
    vacancy_id = fields.String(allow_none=True)
    placement_id = fields.String(allow_none=True)
    message = fields.String()
    details = fields.Dict(
        metadata={
            "description": "by type; employer_interest: introduction_id (answer it at matching's "
            "/introductions/{id}/accept or /decline) and vacancy_title; caseload_over_limit: jobcoach_id, "
            "caseload, caseload_limit; escalations: alert_id, jobcoach_id"
        }
    )
    deliveries = fields.List(fields.Nested(DeliverySchema))


class AlertQuerySchema(PageQuerySchema):
    unread = fields.Boolean()
    type = fields.String(validate=validate.OneOf(ALERT_TYPES))


class OperatorAlertQuerySchema(PageQuerySchema):
    unread = fields.Boolean()
    type = fields.String(validate=validate.OneOf(OPERATOR_ALERT_TYPES))


class AlertPageSchema(PageSchema):
    items = fields.List(fields.Nested(AlertSchema))


_WEBHOOK_KEY_HELP = (
    "the webhook's signing secret: preferably a Standard Webhooks secret, whsec_ followed by the base64 of 24 to "
    "64 random bytes; any other text of at least 16 characters is used as its UTF-8 bytes"
)


def _secret_field(**kwargs) -> fields.String:
    return fields.String(
        validate=validate.Length(min=16, max=200), metadata={"description": _WEBHOOK_KEY_HELP}, **kwargs
    )


def _check_secret(value: str | None) -> None:
    problem = webhook_secret_problem(value) if value is not None else None
    if problem:
        raise ma.ValidationError(problem)


class ChannelsInputSchema(StrictBodySchema):
    webhook_url = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    webhook_secret = _secret_field(load_default=None, allow_none=True)

    @ma.validates("webhook_secret")
    def _webhook_secret(self, value, **_kwargs):
        _check_secret(value)

    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=254))
    digest = fields.Boolean(
        load_default=False, metadata={"description": "e-mail only a daily digest instead of one mail per alert"}
    )

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

    @ma.validates_schema
    def _digest_with_email(self, data, **_kwargs):
        if data.get("digest") and not data.get("email"):
            raise ma.ValidationError("a digest is sent by e-mail: set email too", "digest")


class RotateSecretInputSchema(StrictBodySchema):
    webhook_secret = _secret_field(required=True)
    previous_valid_hours = fields.Integer(
        load_default=24,
        strict=True,
        validate=validate.Range(1, 168),
        metadata={"description": "how long deliveries are signed with the previous secret as well"},
    )

    @ma.validates("webhook_secret")
    def _webhook_secret(self, value, **_kwargs):
        _check_secret(value)


class ChannelsSchema(ma.Schema):
    """The channels as answered: the secrets are write-only."""

    webhook_url = fields.String(allow_none=True)
    webhook_secret_set = fields.Boolean()
    previous_secret_valid_until = fields.AwareDateTime(
        allow_none=True,
        metadata={"description": "during a rotation, until when deliveries are signed with the previous secret too"},
    )
    email = fields.String(allow_none=True)
    digest = fields.Boolean()
    updated_at = fields.AwareDateTime()
