"""Schemas for organisers reviewing participants and revising campaigns."""

from __future__ import annotations

from marshmallow import fields, validate

from backend.schemas.common import ExactNumber, Instant, StrictSchema, Trimmed

GRAMS = {"description": "grams of CO2e, at most 3 decimals"}


class ParticipantListArgs(StrictSchema):
    q = Trimmed(load_default=None, validate=validate.Length(min=1, max=64), metadata={
        "description": "a pid prefix or part of a nickname"})
    flagged = fields.Boolean(load_default=None, metadata={
        "description": "only participants with a flag (disqualified, held intake)"})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(load_default=None, validate=validate.Length(max=500))


class ParticipantItemSchema(StrictSchema):
    pid = fields.String(required=True)
    name = fields.String(required=True, allow_none=True, metadata={
        "description": "public name (nickname once it passed the content check, else 低碳达人); "
                       "null after the person erased their data"})
    team = fields.String(required=True, allow_none=True)
    joined_on = fields.Date(required=True)
    reduction_g = ExactNumber(required=True, metadata=GRAMS)
    records = fields.Integer(required=True)
    flags = fields.List(fields.String(), required=True)
    disqualified_at = Instant(required=True, allow_none=True)
    disqualified_reason = fields.String(required=True, allow_none=True)


class ParticipantListSchema(StrictSchema):
    items = fields.List(fields.Nested(ParticipantItemSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class DisqualifyArgs(StrictSchema):
    reason = Trimmed(required=True, validate=validate.Length(min=1, max=500))


class DisqualifySchema(StrictSchema):
    pid = fields.String(required=True)
    disqualified_at = Instant(required=True)
    reversals = fields.Integer(required=True, metadata={
        "description": "reversal entries appended by this request (0 when already disqualified)"})
