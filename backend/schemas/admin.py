"""Staff and admin schemas."""

from __future__ import annotations

from marshmallow import fields, validate

from backend.schemas.common import Instant, StrictSchema, Trimmed, no_control_characters

KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
TEAM_NAME_MAX = 64


class StaffLoginArgs(StrictSchema):
    email = Trimmed(required=True, validate=validate.Length(min=3, max=254))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024))


class StaffLoginSchema(StrictSchema):
    token = fields.String(required=True)
    expires_in = fields.Integer(required=True)
    role = fields.String(required=True, validate=validate.OneOf(["admin", "organiser"]))


class CampaignListItemSchema(StrictSchema):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(["draft", "published"]))
    starts_on = fields.Date(required=True)
    ends_on = fields.Date(required=True)


class AdminCampaignListSchema(StrictSchema):
    items = fields.List(fields.Nested(CampaignListItemSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class TeamRowArgs(StrictSchema):
    key = Trimmed(required=True, validate=validate.Regexp(
        KEY_PATTERN, error="Must be 1-64 letters, digits, '-' or '_'."))
    # The campaign document's limit (campaigns.document_schema.TeamSchema): a longer name
    # would pass here and then fail the document check under a path that names no row.
    name = Trimmed(required=True, validate=[validate.Length(min=1, max=TEAM_NAME_MAX),
                                            no_control_characters])


class TeamItemSchema(StrictSchema):
    key = fields.String(required=True)
    name = fields.String(required=True)
    members = fields.Integer(required=True)


class TeamListSchema(StrictSchema):
    items = fields.List(fields.Nested(TeamItemSchema), required=True)


class CredentialArgs(StrictSchema):
    label = Trimmed(required=True, validate=[validate.Length(min=1, max=100),
                                             no_control_characters])


class CredentialSchema(StrictSchema):
    id = fields.Integer(required=True)
    label = fields.String(required=True)
    created_at = Instant(required=True, attribute="created_dt")
    revoked_at = Instant(required=True, allow_none=True, attribute="revoked_dt")


class NewCredentialSchema(StrictSchema):
    id = fields.Integer(required=True)
    label = fields.String(required=True)
    key = fields.String(required=True, metadata={"description": "shown only this once"})
    created_at = Instant(required=True)


class CredentialListSchema(StrictSchema):
    items = fields.List(fields.Nested(CredentialSchema), required=True)


class AuditItemSchema(StrictSchema):
    id = fields.Integer(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    target = fields.String(required=True, allow_none=True)
    before = fields.Raw(required=True, allow_none=True)
    after = fields.Raw(required=True, allow_none=True)
    at = Instant(required=True, attribute="created_dt")


class AuditListSchema(StrictSchema):
    items = fields.List(fields.Nested(AuditItemSchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)
