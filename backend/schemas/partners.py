"""Partner webhook and account-link schemas."""

from __future__ import annotations

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from backend.schemas.common import Instant, StrictSchema, Trimmed

ITEM_ID = validate.Length(min=1, max=128)
MODES = ("bus", "metro", "bike")


class _PersonItem(StrictSchema):
    unionid = fields.String(validate=validate.Length(min=1, max=128))
    member_ref = fields.String(validate=validate.Length(min=1, max=128))

    @validates_schema
    def one_person(self, data, **kwargs):
        if ("unionid" in data) == ("member_ref" in data):
            raise ValidationError("Give exactly one of unionid and member_ref.")


class TripItemArgs(_PersonItem):
    trip_id = fields.String(required=True, validate=ITEM_ID)
    mode = fields.String(required=True, validate=validate.Length(min=1, max=32),
                         metadata={"description": "bus, metro or bike"})
    distance_m = fields.Integer(strict=True, validate=validate.Range(0, 1_000_000))
    started_at = fields.AwareDateTime(default_timezone=None)
    ended_at = fields.AwareDateTime(required=True)

    @post_load
    def named(self, data, **kwargs):
        data["id"] = data["trip_id"]
        return data


class RecordItemArgs(_PersonItem):
    record_id = fields.String(required=True, validate=ITEM_ID)
    action = fields.String(required=True, validate=validate.Length(min=1, max=64))
    quantity = fields.Raw(required=True, metadata={"type": "number"})
    occurred_at = fields.AwareDateTime(required=True)

    @post_load
    def named(self, data, **kwargs):
        data["id"] = data["record_id"]
        return data


class TripBatchArgs(StrictSchema):
    trips = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1, max=1000),
                        metadata={"description": "TripItem objects (checked one by one)"})


class RecordBatchArgs(StrictSchema):
    records = fields.List(fields.Dict(), required=True,
                          validate=validate.Length(min=1, max=1000),
                          metadata={"description": "RecordItem objects (checked one by one)"})


class RejectedSchema(StrictSchema):
    id = fields.String(required=True, allow_none=True)
    code = fields.String(required=True)


class BatchResultSchema(StrictSchema):
    accepted = fields.Integer(required=True)
    held = fields.Integer(required=True)
    duplicates = fields.Integer(required=True)
    unmatched = fields.Integer(required=True)
    rejected = fields.List(fields.Nested(RejectedSchema), required=True)


class LinkCodeArgs(StrictSchema):
    member_ref = fields.String(required=True, validate=validate.Length(min=1, max=128))
    link_code = fields.String(required=True, validate=validate.Length(min=4, max=64))


class LinkCodeSchema(StrictSchema):
    member_ref = fields.String(required=True)
    expires_at = Instant(required=True)


class PartnerLinkArgs(StrictSchema):
    partner = Trimmed(required=True, validate=validate.Length(min=1, max=64))
    link_code = Trimmed(required=True, validate=validate.Length(min=1, max=64))


class PartnerLinkSchema(StrictSchema):
    partner = fields.String(required=True)
    linked_at = Instant(required=True)
