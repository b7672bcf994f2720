"""Leaderboard schemas."""

from __future__ import annotations

from marshmallow import fields, validate

from backend.schemas.common import ExactNumber, Instant, StrictSchema

GRAMS = {"description": "grams of CO2e, at most 3 decimals"}


class LeaderboardArgs(StrictSchema):
    period = fields.String(load_default="total",
                           validate=validate.OneOf(["total", "day", "week"]))
    date = fields.Date(load_default=None, metadata={
        "description": "campaign-local day (day), or any day of the week (week); default today"})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))


class BoardEntrySchema(StrictSchema):
    rank = fields.Integer(required=True)
    name = fields.String(required=True)
    avatar_url = fields.String(required=True, allow_none=True)
    reduction_g = ExactNumber(required=True, metadata={
        "description": "the ranking metric in grams (teams: total or average per active member)"})
    key = fields.String(metadata={"description": "teams only"})
    total_g = ExactNumber(metadata={"description": "teams only: the team's total"})
    active_members = fields.Integer(metadata={"description": "teams only"})


class BoardMeSchema(StrictSchema):
    rank = fields.Integer(required=True)
    reduction_g = ExactNumber(required=True, metadata=GRAMS)


class LeaderboardSchema(StrictSchema):
    period = fields.String(required=True)
    date = fields.Date(required=True, allow_none=True, metadata={
        "description": "the day, or the Monday of the week; null for total"})
    as_of = Instant(required=True)
    entries = fields.List(fields.Nested(BoardEntrySchema), required=True)
    me = fields.Nested(BoardMeSchema, required=True, allow_none=True)
