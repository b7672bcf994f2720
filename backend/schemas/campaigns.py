"""Public campaign schemas."""

from __future__ import annotations

from marshmallow import fields

from backend.schemas.common import ExactNumber, Instant, StrictSchema

GRAMS = {"description": "grams of CO2e, at most 3 decimals"}


class CampaignSummarySchema(StrictSchema):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)
    status = fields.String(required=True, metadata={
        "description": "upcoming, active (intake open) or ended"})
    target_g = ExactNumber(required=True, metadata=GRAMS)
    reduction_g = ExactNumber(required=True, metadata=GRAMS)
    progress = fields.Float(required=True, metadata={"description": "0..1, may exceed 1"})


class CampaignListSchema(StrictSchema):
    items = fields.List(fields.Nested(CampaignSummarySchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class ActionInfoSchema(StrictSchema):
    key = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    unit = fields.String(required=True)
    factor_g_per_unit = ExactNumber(required=True, metadata=GRAMS)
    daily_cap = ExactNumber(required=True, allow_none=True)
    min_quantity = ExactNumber(required=True)
    sources = fields.List(fields.String(), required=True)


class ChallengeInfoSchema(StrictSchema):
    key = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)
    target = ExactNumber(required=True, metadata={
        "description": "days (streak), records or days (count), grams (total)"})


class TeamInfoSchema(StrictSchema):
    key = fields.String(required=True)
    name = fields.String(required=True)


class CampaignDetailSchema(StrictSchema):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True)
    timezone = fields.String(required=True)
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)
    status = fields.String(required=True)
    target_g = ExactNumber(required=True, metadata=GRAMS)
    reduction_g = ExactNumber(required=True, metadata=GRAMS)
    participants = fields.Integer(required=True)
    progress = fields.Float(required=True)
    actions = fields.List(fields.Nested(ActionInfoSchema), required=True)
    challenges = fields.List(fields.Nested(ChallengeInfoSchema), required=True)
    teams = fields.List(fields.Nested(TeamInfoSchema), required=True)


class ProgressSchema(StrictSchema):
    reduction_g = ExactNumber(required=True, metadata=GRAMS)
    target_g = ExactNumber(required=True, metadata=GRAMS)
    progress = fields.Float(required=True)
    participants = fields.Integer(required=True)
    trees = fields.Float(required=True, metadata={"description": "17.9 kg CO2e per 梭梭 tree"})
    updated_at = Instant(required=True)
