"""Holds as organisers review them."""

from __future__ import annotations

from marshmallow import fields, validate

from backend.schemas.common import ExactNumber, Instant, StrictSchema


class HoldListArgs(StrictSchema):
    status = fields.String(load_default="held",
                           validate=validate.OneOf(["held", "released", "rejected"]))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(load_default=None, validate=validate.Length(max=500))


class HoldSchema(StrictSchema):
    id = fields.Integer(required=True)
    pid = fields.String(required=True)
    source = fields.String(required=True)
    action = fields.String(required=True)
    date = fields.Date(required=True, attribute="local_date")
    quantity = ExactNumber(required=True)
    signals = fields.List(fields.String(), required=True)
    status = fields.String(required=True)
    created_at = Instant(required=True, attribute="created_dt")
    decided_at = Instant(required=True, allow_none=True, attribute="decided_dt")
    decided_by = fields.String(required=True, allow_none=True)
    entry_seq = fields.Integer(required=True, allow_none=True)


class HoldListSchema(StrictSchema):
    items = fields.List(fields.Nested(HoldSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)
