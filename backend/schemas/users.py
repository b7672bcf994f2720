"""Login and profile schemas."""

from __future__ import annotations

from marshmallow import fields, validate

from backend.schemas.common import StrictSchema, Trimmed, no_control_characters


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
    on_leaderboard = fields.Boolean()
