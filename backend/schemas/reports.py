"""Reporter and big-screen schemas."""

from __future__ import annotations

from marshmallow import fields, validate

from backend.schemas.boards import BoardEntrySchema
from backend.schemas.common import ExactNumber, Instant, StrictSchema

GRAMS = {"description": "grams of CO2e, at most 3 decimals, exact"}


class ActionFigureSchema(StrictSchema):
    action = fields.String(required=True)
    name = fields.String(required=True, metadata={"description": "display name in force today"})
    reduction_g = ExactNumber(required=True, metadata=GRAMS)
    records = fields.Integer(required=True)


class SummarySchema(StrictSchema):
    reduction_g = ExactNumber(required=True, metadata=GRAMS)
    target_g = ExactNumber(required=True, metadata=GRAMS)
    progress = fields.Float(required=True, metadata={"description": "0..1, may exceed 1"})
    participants = fields.Integer(required=True, metadata={
        "description": "joined and not disqualified"})
    active_today = fields.Integer(required=True, metadata={
        "description": "participants with an entry above 0 mg today (campaign-local)"})
    records = fields.Integer(required=True, metadata={"description": "non-reversal entries"})
    by_action = fields.List(fields.Nested(ActionFigureSchema), required=True)
    trees = fields.Float(required=True, metadata={
        "description": "the reduction as trees (the methodology's kg per tree), 0.1 steps"})
    as_of = Instant(required=True)


class TimeseriesArgs(StrictSchema):
    granularity = fields.String(load_default="day", validate=validate.OneOf(["day"]))


class DayRowSchema(StrictSchema):
    date = fields.Date(required=True)
    reduction_g = ExactNumber(required=True, metadata=GRAMS)
    cumulative_g = ExactNumber(required=True, metadata=GRAMS)
    active_participants = fields.Integer(required=True)
    new_participants = fields.Integer(required=True)


class TimeseriesSchema(StrictSchema):
    rows = fields.List(fields.Nested(DayRowSchema), required=True)


class BreakdownArgs(StrictSchema):
    by = fields.String(required=True, validate=validate.OneOf(["action", "team"]))


class BreakdownRowSchema(StrictSchema):
    action = fields.String(metadata={"description": "by=action"})
    team = fields.String(allow_none=True, metadata={
        "description": "by=team: the team key; null for participants without a team"})
    name = fields.String(required=True)
    reduction_g = ExactNumber(required=True, metadata=GRAMS)
    records = fields.Integer(required=True)
    participants = fields.Integer(required=True, metadata={
        "description": "participants above 0 mg in it"})


class BreakdownSchema(StrictSchema):
    rows = fields.List(fields.Nested(BreakdownRowSchema), required=True)


class LedgerExportArgs(StrictSchema):
    upto_seq = fields.Integer(load_default=None, validate=validate.Range(min=0), metadata={
        "description": "last seq to include; default the head when the export starts"})


class VerificationSchema(StrictSchema):
    entries = fields.Integer(required=True)
    head_seq = fields.Integer(required=True, metadata={"description": "the last verified seq"})
    head_hash = fields.String(required=True)
    ok = fields.Boolean(required=True)
    first_bad_seq = fields.Integer(required=True, allow_none=True)
    verified_at = Instant(required=True, allow_none=True)
    full_verified_at = Instant(required=True, allow_none=True)


class DashboardCampaignSchema(StrictSchema):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)
    timezone = fields.String(required=True)


class DashboardSchema(StrictSchema):
    campaign = fields.Nested(DashboardCampaignSchema, required=True)
    summary = fields.Nested(SummarySchema, required=True)
    timeseries = fields.List(fields.Nested(DayRowSchema), required=True)
    by_action = fields.List(fields.Nested(BreakdownRowSchema), required=True)
    top_teams = fields.List(fields.Nested(BoardEntrySchema), required=True)
    top_individuals = fields.List(fields.Nested(BoardEntrySchema), required=True)
    as_of = Instant(required=True)
