"""Organisers: participants, disqualification, and revisions of a running campaign."""

from __future__ import annotations

from flask import g, request
from flask_smorest import Blueprint
from sqlalchemy import or_, select

from backend.api.admin import DOCUMENT_RESPONSE, STAFF_ERRORS, managed_campaign
from backend.api.docs import BEARER, documents_errors
from backend.api.pagination import decode_id_cursor, page
from backend.auth import staff_required
from backend.clock import utcnow
from backend.extensions import db
from backend.models import Participation, Team, User
from backend.schemas.review import (
    DisqualifyArgs,
    DisqualifySchema,
    ParticipantListArgs,
    ParticipantListSchema,
)
from backend.services.campaigns import add_campaign_revision, campaign_document
from backend.services.disqualification import disqualify, find_by_pid
from campaigns.decimals import mg_to_g

bp = Blueprint("admin_review", __name__, url_prefix="/api/v1/admin",
               description="Organisers: review and revisions")
REVISION_BODY = {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["effective_from", "actions"],
    "properties": {
        "effective_from": {"type": "string", "format": "date",
                           "description": "campaign-local day after today"},
        "actions": {"type": "array", "items": {"type": "object", "description":
                                               "an action override (key, factor_g, "
                                               "daily_cap, min_quantity, sources, name)"}},
    }}}}}


@bp.route("/campaigns/<slug>/participants", methods=["GET"])
@staff_required
@bp.arguments(ParticipantListArgs, location="query")
@bp.response(200, ParticipantListSchema)
@bp.doc(security=BEARER)
@documents_errors(bp, *STAFF_ERRORS, 422)
def list_participants(args, slug):
    """Participants by pseudonym, with totals and flags (oldest first)."""
    campaign = managed_campaign(slug)
    query = (select(Participation, User, Team)
             .outerjoin(User, User.id == Participation.user_id)
             .outerjoin(Team, Team.id == Participation.team_id)
             .where(Participation.campaign_id == campaign.id)
             .order_by(Participation.id).limit(args["limit"] + 1))
    if args["q"]:
        query = query.where(or_(Participation.pid.startswith(args["q"], autoescape=True),
                                User.nickname.contains(args["q"], autoescape=True)))
    if args["flagged"] is not None:
        flagged = Participation.disqualified_dt.is_not(None)
        query = query.where(flagged if args["flagged"] else ~flagged)
    after_id = decode_id_cursor(args["cursor"])
    if after_id is not None:
        query = query.where(Participation.id > after_id)
    rows, next_cursor = page(list(db.session.execute(query)), args["limit"],
                             lambda row: [row[0].id])
    return {"items": [{
        "pid": p.pid, "name": user.public_name if user and user.openid else None,
        "team": team.key if team else None, "joined_on": p.joined_on,
        "reduction_g": mg_to_g(p.reduction_mg), "records": p.records,
        "flags": ["disqualified"] if p.disqualified_dt else [],
        "disqualified_at": p.disqualified_dt, "disqualified_reason": p.disqualified_reason,
    } for p, user, team in rows], "next_cursor": next_cursor}


@bp.route("/campaigns/<slug>/participants/<pid>/disqualify", methods=["POST"])
@staff_required
@bp.arguments(DisqualifyArgs)
@bp.response(200, DisqualifySchema)
@bp.doc(security=BEARER)
@documents_errors(bp, 400, *STAFF_ERRORS, 415, 422, 503)
def post_disqualify(args, slug, pid):
    """Disqualify a participant: one reversal entry per entry (never a deletion); later
    intake from them is refused. Disqualifying again appends nothing."""
    campaign = managed_campaign(slug)
    reversals = disqualify(campaign, pid, args["reason"], g.staff, utcnow())
    participation = find_by_pid(campaign, pid)
    body = {"pid": pid, "disqualified_at": participation.disqualified_dt, "reversals": reversals}
    db.session.commit()
    return body


@bp.route("/campaigns/<slug>/revisions", methods=["POST"])
@staff_required
@bp.doc(security=BEARER, requestBody=REVISION_BODY,
        responses={"201": {"description": "the stored document", **DOCUMENT_RESPONSE}})
@documents_errors(bp, 400, *STAFF_ERRORS, 415, 422)
def post_revision(slug):
    """Change factors, caps, minimums or sources from a future campaign-local date on.
    Entries dated before it keep theirs; later ones carry ``<methodology>+r<N>``."""
    campaign = managed_campaign(slug)
    add_campaign_revision(campaign, request.get_json(), g.staff, utcnow())
    body = campaign_document(campaign)
    db.session.commit()
    return body, 201
