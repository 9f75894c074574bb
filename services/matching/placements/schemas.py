"""What the placement and insight routes accept and answer."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from services.matching.placements.risk import OUTCOMES, SIGNALS
from shared.vocabulary import MAX_HOURS_PER_WEEK, SUPPORT_CODES
from shared.web.resources import FreeText, PageQuerySchema, PageSchema, StrictBodySchema

_id = fields.String(required=True, validate=validate.Length(min=1, max=36))


def _unique(value: list) -> None:
    if len(value) != len(set(value)):
        raise ma.ValidationError("each code may appear once")


class PlacementCreateSchema(StrictBodySchema):
    candidate_id = _id
    vacancy_id = _id
    start_date = fields.Date(required=True)
    agreed_hours = fields.Integer(strict=True, required=True, validate=validate.Range(1, MAX_HOURS_PER_WEEK))
    supports_agreed = fields.List(
        fields.String(validate=validate.OneOf(SUPPORT_CODES)),
        load_default=list,
        validate=[validate.Length(max=len(SUPPORT_CODES)), _unique],
    )
    learning_goals = fields.List(
        FreeText(validate=validate.Length(min=1, max=100)),
        load_default=list,
        validate=[validate.Length(max=20), _unique],
        metadata={"description": "Short phrases, at most 20, each at most 100 characters"},
    )
    planned_end_date = fields.Date(load_default=None, allow_none=True)
    supervisor_arranged = fields.Boolean(load_default=None, allow_none=True)
    buddy_arranged = fields.Boolean(load_default=None, allow_none=True)


class CheckinCreateSchema(StrictBodySchema):
    date = fields.Date(required=True)
    wellbeing = fields.Integer(
        strict=True, required=True, validate=validate.Range(1, 5), metadata={"description": "1 very bad to 5 very good"}
    )
    hours_worked = fields.Float(
        required=True,
        validate=validate.Range(0, MAX_HOURS_PER_WEEK),
        metadata={"description": "Hours worked in a typical week since the previous check-in"},
    )
    absence_days = fields.Integer(
        strict=True,
        required=True,
        validate=validate.Range(0, 7),
        metadata={"description": "Days absent in a typical week since the previous check-in"},
    )
    signals = fields.List(
        fields.String(validate=validate.OneOf(SIGNALS)),
        load_default=list,
        validate=[validate.Length(max=len(SIGNALS)), _unique],
        metadata={"description": f"Codes: {', '.join(SIGNALS)}"},
    )
    goal_progress = fields.Dict(
        keys=fields.String(validate=validate.Length(min=1, max=100)),
        values=fields.Integer(strict=True, validate=validate.Range(0, 3)),
        load_default=None,
        allow_none=True,
        metadata={"description": "{learning goal: 0 not yet .. 3 mastered}; goals among the placement's own"},
    )


class PlacementEndSchema(StrictBodySchema):
    date = fields.Date(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    reason = FreeText(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=500),
        metadata={"description": "A short note for the jobcoach's records; never sent on in an event"},
    )


class PlacementListQuerySchema(PageQuerySchema):
    status = fields.String(load_default=None, validate=validate.OneOf(("active", "ended")))


class ReasonSchema(ma.Schema):
    feature = fields.String()
    label = fields.String()
    value = fields.Float()
    contribution = fields.Float()
    signals = fields.List(fields.String())


class RiskSchema(ma.Schema):
    score = fields.Float(allow_none=True, metadata={"description": "0 to 1; none before the first check-in"})
    at_risk = fields.Boolean()
    episode = fields.Integer(metadata={"description": "How many at-risk episodes the placement has had"})
    reasons = fields.List(fields.Nested(ReasonSchema))
    model_version = fields.String(allow_none=True)
    scored_at = fields.DateTime(allow_none=True)


class CheckinSchema(ma.Schema):
    id = fields.String()
    date = fields.Date()
    wellbeing = fields.Integer()
    hours_worked = fields.Float()
    absence_days = fields.Integer()
    signals = fields.List(fields.String())
    goal_progress = fields.Dict(keys=fields.String(), values=fields.Integer(), allow_none=True)


class PlacementSchema(ma.Schema):
    id = fields.String()
    candidate_id = fields.String()
    vacancy_id = fields.String()
    jobcoach_id = fields.String()
    start_date = fields.Date()
    agreed_hours = fields.Integer()
    supports_agreed = fields.List(fields.String())
    status = fields.String()
    end_date = fields.Date(allow_none=True)
    outcome = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    checkin_count = fields.Integer()
    last_checkin = fields.Date(allow_none=True)
    next_checkin_due = fields.Date(allow_none=True)
    risk = fields.Nested(RiskSchema)
    learning_goals = fields.List(fields.String())
    planned_end_date = fields.Date(allow_none=True)
    supervisor_arranged = fields.Boolean(allow_none=True)
    buddy_arranged = fields.Boolean(allow_none=True)
    created_at = fields.DateTime()


class PlacementDetailSchema(PlacementSchema):
    recent_checkins = fields.List(fields.Nested(CheckinSchema), metadata={"description": "The last ten, newest first"})


class CheckinResultSchema(CheckinSchema):
    placement = fields.Nested(PlacementSchema)


class PlacementPageSchema(PageSchema):
    items = fields.List(fields.Nested(PlacementSchema))


class CellSchema(ma.Schema):
    value = fields.Raw(allow_none=True, metadata={"description": "A count or a number of seconds; null if suppressed"})
    suppressed = fields.Boolean()


class InsightsSchema(ma.Schema):
    """Bundled, anonymous figures: every cell under the threshold is null and marked suppressed."""

    tenant = fields.String()
    generated_at = fields.DateTime()
    min_cell_size = fields.Integer()
    candidates = fields.Dict()
    support_gap = fields.List(fields.Dict())
    matches_proposed = fields.Nested(CellSchema)
    placements = fields.Dict()
    alerts_by_type = fields.Dict()
    median_seconds_to_acknowledge = fields.Dict()
