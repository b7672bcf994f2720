"""Organisers and admins: campaigns, teams, reporter keys, dashboard tokens, audit log."""

from __future__ import annotations

from flask import g, request
from flask_smorest import Blueprint
from sqlalchemy import select

from backend.api.docs import BEARER, documents_errors
from backend.api.media import accepts
from backend.api.pagination import PageArgs, after_cursor, page
from backend.auth import admin_required, staff_required
from backend.errors import ApiError
from backend.extensions import db
from backend.models import AuditEntry, Campaign
from backend.schemas.admin import (
    AdminCampaignListSchema,
    AuditListSchema,
    CredentialArgs,
    CredentialListSchema,
    NewCredentialSchema,
    TeamListSchema,
)
from backend.services import teams as team_service
from backend.services.campaigns import (
    campaign_document,
    create_campaign,
    find_campaign,
    parse_document,
    publish_campaign,
    replace_campaign,
)
from backend.services.credentials import issue_credential, list_credentials, revoke_credential

bp = Blueprint("admin", __name__, url_prefix="/api/v1/admin", description="Organisers and admins")

CAMPAIGN_DOCUMENT = {"$ref": "#/components/schemas/CampaignDocument"}
DOCUMENT_BODY = {"required": True, "content": {"application/json": {"schema": CAMPAIGN_DOCUMENT}}}
STORED_DOCUMENT = {"$ref": "#/components/schemas/StoredCampaignDocument"}
DOCUMENT_RESPONSE = {"content": {"application/json": {"schema": STORED_DOCUMENT}}}
TEAMS_BODY = {"required": True, "content": {
    "application/json": {"schema": {"type": "array", "items": {
        "type": "object", "required": ["key", "name"],
        "properties": {"key": {"type": "string"}, "name": {"type": "string"}}}}},
    "text/csv": {"schema": {"type": "string", "description": "UTF-8 (BOM allowed), key,name"}},
    "multipart/form-data": {"schema": {"type": "object", "properties": {
        "file": {"type": "string", "format": "binary"}}}},
}}
STAFF_ERRORS = (401, 403, 404)


def managed_campaign(slug: str) -> Campaign:
    """The campaign if the logged-in staff manages it; 404 otherwise (its existence must not
    leak to organisers of other campaigns)."""
    campaign = find_campaign(slug)
    if campaign is None or not g.staff.manages(campaign):
        raise ApiError(404, "not_found")
    return campaign


def _json_body():
    return request.get_json()  # malformed JSON: 400 request.malformed; other types: 415


@bp.route("/campaigns", methods=["GET"])
@staff_required
@bp.arguments(PageArgs(), location="query")
@bp.response(200, AdminCampaignListSchema)
@bp.doc(security=BEARER)
@documents_errors(bp, 401, 403, 422)
def list_campaigns(args):
    """The campaigns I manage (admins: all), newest first."""
    query = select(Campaign).order_by(Campaign.id.desc()).limit(args["limit"] + 1)
    if not g.staff.is_admin:
        query = query.where(Campaign.id.in_([c.id for c in g.staff.campaigns]))
    query = after_cursor(query, Campaign.id, args["cursor"])
    rows, next_cursor = page(list(db.session.scalars(query)), args["limit"], lambda c: [c.id])
    return {"items": rows, "next_cursor": next_cursor}


@bp.route("/campaigns", methods=["POST"])
@admin_required
@bp.doc(security=BEARER, requestBody=DOCUMENT_BODY,
        responses={"201": {"description": "the stored document", **DOCUMENT_RESPONSE}})
@documents_errors(bp, 400, 401, 403, 415, 422)
def post_campaign():
    """Create a campaign from a campaign document (admins only). It starts as a draft."""
    campaign = create_campaign(parse_document(_json_body()), g.staff)
    body = campaign_document(campaign)
    db.session.commit()
    return body, 201


@bp.route("/campaigns/<slug>", methods=["GET"])
@staff_required
@bp.doc(security=BEARER, responses={"200": {"description": "the document", **DOCUMENT_RESPONSE}})
@documents_errors(bp, *STAFF_ERRORS)
def get_campaign(slug):
    """The campaign's document."""
    return campaign_document(managed_campaign(slug))


@bp.route("/campaigns/<slug>", methods=["PUT"])
@staff_required
@bp.doc(security=BEARER, requestBody=DOCUMENT_BODY,
        responses={"200": {"description": "the stored document", **DOCUMENT_RESPONSE}})
@documents_errors(bp, 400, *STAFF_ERRORS, 409, 415, 422)
def put_campaign(slug):
    """Replace the campaign's document. Changes that would rewrite counted history are 409."""
    campaign = managed_campaign(slug)
    replace_campaign(campaign, parse_document(_json_body()), g.staff)
    body = campaign_document(campaign)
    db.session.commit()
    return body


@bp.route("/campaigns/<slug>/publish", methods=["POST"])
@staff_required
@bp.doc(security=BEARER, responses={"200": {"description": "the document", **DOCUMENT_RESPONSE}})
@documents_errors(bp, *STAFF_ERRORS)
def post_publish(slug):
    """Publish the campaign: participants can see and join it (idempotent)."""
    campaign = publish_campaign(managed_campaign(slug), g.staff)
    body = campaign_document(campaign)
    db.session.commit()
    return body


@bp.route("/campaigns/<slug>/teams", methods=["GET"])
@staff_required
@bp.response(200, TeamListSchema)
@bp.doc(security=BEARER)
@documents_errors(bp, *STAFF_ERRORS)
def get_teams(slug):
    """The campaign's teams with their member counts."""
    return {"items": team_service.list_teams(managed_campaign(slug))}


@bp.route("/campaigns/<slug>/teams", methods=["POST"])
@staff_required
@bp.response(200, TeamListSchema)
@bp.doc(security=BEARER, requestBody=TEAMS_BODY)
@documents_errors(bp, 400, *STAFF_ERRORS, 413, 415, 422)
@accepts("text/csv", "multipart/form-data")
def post_teams(slug):
    """Upsert teams by key from a JSON list, a CSV body or a multipart ``file`` (key,name).

    Every row is checked first: any bad row is a 422 naming it (``3.name``, 0-based over the
    data rows) and nothing is imported.
    """
    campaign = managed_campaign(slug)
    rows = team_service.rows_from_request(request)
    team_service.upsert_teams(campaign, rows, g.staff)
    body = {"items": team_service.list_teams(campaign)}
    db.session.commit()
    return body


@bp.route("/campaigns/<slug>/teams/<key>", methods=["DELETE"])
@staff_required
@bp.response(204)
@bp.doc(security=BEARER)
@documents_errors(bp, *STAFF_ERRORS, 409)
def delete_team(slug, key):
    """Delete a team without members (409 team.conflict otherwise)."""
    team_service.delete_team(managed_campaign(slug), key, g.staff)
    db.session.commit()


def _credential_routes(path: str, kind: str, noun: str) -> None:
    """GET (list), POST (issue) and DELETE (revoke) for one kind of campaign credential."""

    @bp.route(f"/campaigns/<slug>/{path}", methods=["GET"], endpoint=f"list_{kind}")
    @staff_required
    @bp.response(200, CredentialListSchema)
    @bp.doc(security=BEARER, summary=f"List the campaign's {noun}s (never their secrets)")
    @documents_errors(bp, *STAFF_ERRORS)
    def list_view(slug):
        return {"items": list_credentials(managed_campaign(slug), kind)}

    @bp.route(f"/campaigns/<slug>/{path}", methods=["POST"], endpoint=f"create_{kind}")
    @staff_required
    @bp.arguments(CredentialArgs())
    @bp.response(201, NewCredentialSchema)
    @bp.doc(security=BEARER, summary=f"Issue a {noun}; its secret is shown only in this reply")
    @documents_errors(bp, 400, *STAFF_ERRORS, 415, 422)
    def create_view(args, slug):
        credential, secret = issue_credential(managed_campaign(slug), kind, args["label"],
                                              g.staff)
        body = {"id": credential.id, "label": credential.label, "key": secret,
                "created_at": credential.created_dt}
        db.session.commit()
        return body, 201

    @bp.route(f"/campaigns/<slug>/{path}/<int:credential_id>", methods=["DELETE"],
              endpoint=f"revoke_{kind}")
    @staff_required
    @bp.response(204)
    @bp.doc(security=BEARER, summary=f"Revoke a {noun}")
    @documents_errors(bp, *STAFF_ERRORS)
    def revoke_view(slug, credential_id):
        revoke_credential(managed_campaign(slug), kind, credential_id, g.staff)
        db.session.commit()


_credential_routes("api-keys", "api_key", "reporter API key")
_credential_routes("dashboard-tokens", "dashboard_token", "dashboard token")


@bp.route("/campaigns/<slug>/audit", methods=["GET"])
@staff_required
@bp.arguments(PageArgs(), location="query")
@bp.response(200, AuditListSchema)
@bp.doc(security=BEARER)
@documents_errors(bp, *STAFF_ERRORS, 422)
def get_audit(args, slug):
    """Who changed what in this campaign, before and after, when (newest first)."""
    campaign = managed_campaign(slug)
    query = (select(AuditEntry).where(AuditEntry.campaign_id == campaign.id)
             .order_by(AuditEntry.id.desc()).limit(args["limit"] + 1))
    query = after_cursor(query, AuditEntry.id, args["cursor"])
    rows, next_cursor = page(list(db.session.scalars(query)), args["limit"], lambda e: [e.id])
    return {"items": rows, "next_cursor": next_cursor}
