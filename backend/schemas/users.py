"""Login and profile schemas."""

from __future__ import annotations

from marshmallow import fields, validate

from backend.schemas.common import (
    ExactNumber,
    Instant,
    StrictBoolean,
    StrictSchema,
    Trimmed,
    no_control_characters,
)


class WeChatLoginArgs(StrictSchema):
    code = Trimmed(required=True, validate=validate.Length(min=1, max=128),
                   metadata={"description": "the code from wx.login (sandbox: sandbox:<name>)"})


class LoginUserSchema(StrictSchema):
    id = fields.Integer(required=True)
    nickname = fields.String(required=True, allow_none=True)
    avatar_url = fields.String(required=True, allow_none=True)
    is_new = fields.Boolean(required=True)


class LoginSchema(StrictSchema):
    token = fields.String(required=True)
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})
    user = fields.Nested(LoginUserSchema, required=True)


class MeSchema(StrictSchema):
    id = fields.Integer(required=True)
    nickname = fields.String(required=True, allow_none=True)
    nickname_status = fields.String(
        required=True,
        validate=validate.OneOf(["none", "pending", "pass", "review", "risky"]),
        metadata={"description": "WeChat content check of the nickname; public boards show "
                                 "the nickname only when `pass`, else 低碳达人"},
    )
    avatar_url = fields.String(required=True, allow_none=True)
    on_leaderboard = fields.Boolean(required=True)
    campaigns = fields.List(fields.String(), required=True,
                            metadata={"description": "slugs of the campaigns I joined"})


class MePatchArgs(StrictSchema):
    nickname = Trimmed(validate=[validate.Length(min=1, max=32), no_control_characters])
    avatar_url = Trimmed(validate=validate.Length(min=1, max=512),
                         metadata={"description": "https on a host of AVATAR_HOSTS"})
    on_leaderboard = StrictBoolean()


class ExportProfileSchema(StrictSchema):
    id = fields.Integer(required=True)
    nickname = fields.String(required=True, allow_none=True)
    nickname_status = fields.String(required=True)
    avatar_url = fields.String(required=True, allow_none=True)
    on_leaderboard = fields.Boolean(required=True)
    created_at = Instant(required=True)
    login_count = fields.Integer(required=True)


class ExportWeChatSchema(StrictSchema):
    openid_held = fields.Boolean(required=True)
    unionid_held = fields.Boolean(required=True)


class ExportCheckinSchema(StrictSchema):
    action = fields.String(required=True)
    date = fields.Date(required=True)
    quantity = ExactNumber(required=True)
    reduction_g = ExactNumber(required=True)
    created_at = Instant(required=True)


class ExportCompletionSchema(StrictSchema):
    key = fields.String(required=True)
    completed_at = Instant(required=True)


class ExportHoldSchema(StrictSchema):
    action = fields.String(required=True)
    date = fields.Date(required=True)
    status = fields.String(required=True)


class ExportCampaignSchema(StrictSchema):
    campaign = fields.String(required=True)
    pseudonym = fields.String(required=True, metadata={
        "description": "my pid in this campaign's ledger"})
    team = fields.String(required=True, allow_none=True)
    joined_on = fields.Date(required=True)
    joined_at = Instant(required=True)
    disqualified_at = Instant(required=True, allow_none=True)
    reduction_g = ExactNumber(required=True)
    records = fields.Integer(required=True)
    checkins = fields.List(fields.Nested(ExportCheckinSchema), required=True)
    challenges_completed = fields.List(fields.Nested(ExportCompletionSchema), required=True)
    holds = fields.List(fields.Nested(ExportHoldSchema), required=True)


class ExportWerunDaySchema(StrictSchema):
    date = fields.Date(required=True)
    steps = fields.Integer(required=True)
    counted_steps = fields.Integer(required=True)


class ExportPartnerLinkSchema(StrictSchema):
    partner = fields.String(required=True)
    member_ref = fields.String(required=True)
    linked_at = Instant(required=True)


class MeExportSchema(StrictSchema):
    profile = fields.Nested(ExportProfileSchema, required=True)
    wechat = fields.Nested(ExportWeChatSchema, required=True)
    campaigns = fields.List(fields.Nested(ExportCampaignSchema), required=True)
    werun_days = fields.List(fields.Nested(ExportWerunDaySchema), required=True)
    partner_links = fields.List(fields.Nested(ExportPartnerLinkSchema), required=True)
