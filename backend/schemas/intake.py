"""Join and check-in schemas."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate

from backend.schemas.common import ExactNumber, Instant, StrictSchema, Trimmed

GRAMS = {"description": "grams of CO2e, at most 3 decimals"}


class JoinArgs(StrictSchema):
    invite_code = Trimmed(load_default=None, validate=validate.Length(max=200))
    team = Trimmed(load_default=None, validate=validate.Length(min=1, max=64),
                   metadata={"description": "team key"})


class JoinSchema(StrictSchema):
    joined_on = fields.Date(required=True)
    team = fields.String(required=True, allow_none=True)


class Quantity(fields.Field):
    """A JSON number (or decimal string) with at most 3 decimals, checked by the service."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValidationError("Not a valid number.")
        return value


class CheckinArgs(StrictSchema):
    action = Trimmed(required=True, validate=validate.Length(min=1, max=64))
    quantity = Quantity(load_default=None, metadata={
        "type": "number", "description": "count (default 1), km or kg; at most 3 decimals"})
    date = fields.Date(load_default=None, metadata={"description": "campaign-local day; "
                                                                   "default today"})


class CheckinSchema(StrictSchema):
    id = fields.Integer(required=True)
    action = fields.String(required=True)
    date = fields.Date(required=True)
    quantity = ExactNumber(required=True)
    counted_quantity = ExactNumber(required=True)
    reduction_g = ExactNumber(required=True, metadata=GRAMS)
    capped = fields.Boolean(required=True)
    claimed_by = fields.String(required=True, allow_none=True)
    day_reduction_g = ExactNumber(required=True, metadata=GRAMS)
    total_reduction_g = ExactNumber(required=True, metadata=GRAMS)
    points = fields.Integer(required=True)
    held = fields.Boolean(required=True, metadata={
        "description": "true when a plausibility signal holds it for an organiser's review: "
                       "it counts nowhere until released"})


class CheckinListArgs(StrictSchema):
    date = fields.Date(load_default=None)
    action = Trimmed(load_default=None)
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    cursor = fields.String(load_default=None, validate=validate.Length(max=500))


class CheckinItemSchema(StrictSchema):
    id = fields.Integer(required=True)
    action = fields.String(required=True)
    date = fields.Date(required=True)
    quantity = ExactNumber(required=True)
    counted_quantity = ExactNumber(required=True)
    reduction_g = ExactNumber(required=True, metadata=GRAMS)
    claimed_by = fields.String(required=True, allow_none=True)
    created_at = Instant(required=True)


class CheckinListSchema(StrictSchema):
    items = fields.List(fields.Nested(CheckinItemSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class ActionTotalSchema(StrictSchema):
    reduction_g = ExactNumber(required=True, metadata=GRAMS)
    records = fields.Integer(required=True)


class ChallengeProgressSchema(StrictSchema):
    key = fields.String(required=True)
    name = fields.String(required=True)
    progress = ExactNumber(required=True, metadata={
        "description": "days (streak, count per day), records, or grams (total)"})
    target = ExactNumber(required=True)
    completed_at = Instant(required=True, allow_none=True)


class BadgeSchema(StrictSchema):
    key = fields.String(required=True)
    name = fields.String(required=True)
    awarded_at = Instant(required=True)


class HeldIntakeSchema(StrictSchema):
    id = fields.Integer(required=True)
    source = fields.String(required=True, validate=validate.OneOf(["checkin", "werun",
                                                                   "partner"]))
    action = fields.String(required=True)
    date = fields.Date(required=True)
    quantity = ExactNumber(required=True)
    signals = fields.List(fields.String(), required=True, metadata={
        "description": "the plausibility signals met (e.g. steps_over_limit)"})
    created_at = Instant(required=True)


class MyCampaignSchema(StrictSchema):
    reduction_g = ExactNumber(required=True, metadata=GRAMS)
    points = fields.Integer(required=True)
    rank = fields.Integer(required=True, allow_none=True)
    days_active = fields.Integer(required=True)
    by_action = fields.Dict(keys=fields.String(), values=fields.Nested(ActionTotalSchema),
                            required=True)
    challenges = fields.List(fields.Nested(ChallengeProgressSchema), required=True)
    badges = fields.List(fields.Nested(BadgeSchema), required=True)
    held = fields.List(fields.Nested("HeldIntakeSchema"), required=True, metadata={
        "description": "my intakes awaiting an organiser's review (they count nowhere yet)"})
    team = fields.String(required=True, allow_none=True)
    joined_on = fields.Date(required=True)


class WerunArgs(StrictSchema):
    encrypted_data = fields.String(required=True, validate=validate.Length(min=1, max=100_000),
                                   metadata={"description": "encryptedData of wx.getWeRunData"})
    iv = fields.String(required=True, validate=validate.Length(min=1, max=64))
    code = Trimmed(load_default=None, validate=validate.Length(min=1, max=128), metadata={
        "description": "a fresh wx.login code, exchanged first (its session_key decrypts)"})


class WerunDaySchema(StrictSchema):
    date = fields.Date(required=True)
    steps = fields.Integer(required=True)
    counted_steps = fields.Integer(required=True)
    reduction_g = ExactNumber(required=True, metadata=GRAMS)
    status = fields.String(required=True, validate=validate.OneOf(
        ["counted", "unchanged", "outside", "held", "claimed"]))


class WerunSchema(StrictSchema):
    days = fields.List(fields.Nested(WerunDaySchema), required=True)
    added_reduction_g = ExactNumber(required=True, metadata=GRAMS)
    total_reduction_g = ExactNumber(required=True, metadata=GRAMS)
