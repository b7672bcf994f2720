"""Organisers: participants, disqualification, and revisions of a running campaign."""

from __future__ import annotations

from flask import g, request
from flask_smorest import Blueprint
from sqlalchemy import or_, select

from backend.api.admin import DOCUMENT_RESPONSE, STAFF_ERRORS, managed_campaign
from backend.api.docs import BEARER, documents_errors
from backend.api.pagination import after_cursor, page
from backend.auth import staff_required
from backend.clock import utcnow
from backend.extensions import db
from backend.models import Hold, Participation, Team, User
from backend.schemas.holds import HoldListArgs, HoldListSchema, HoldSchema
from backend.schemas.review import (
    DisqualifyArgs,
    DisqualifySchema,
    ParticipantListArgs,
    ParticipantListSchema,
)
from backend.services.campaigns import add_campaign_revision, campaign_document
from backend.services.disqualification import disqualify, find_by_pid
from backend.services.holds import reject_hold, release_hold
from campaigns.decimals import mg_to_g, milli_to_number

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
@bp.arguments(ParticipantListArgs(), location="query")
@bp.response(200, ParticipantListSchema)
@bp.doc(security=BEARER)
@documents_errors(bp, *STAFF_ERRORS, 422)
def list_participants(args, slug):
    """Participants by pseudonym, with totals and flags (oldest first)."""
    campaign = managed_campaign(slug)
    has_holds = select(Hold.id).where(Hold.participation_id == Participation.id,
                                      Hold.status == "held").exists()
    query = (select(Participation, User, Team, has_holds)
             .outerjoin(User, User.id == Participation.user_id)
             .outerjoin(Team, Team.id == Participation.team_id)
             .where(Participation.campaign_id == campaign.id)
             .order_by(Participation.id).limit(args["limit"] + 1))
    if args["q"]:
        query = query.where(or_(Participation.pid.startswith(args["q"], autoescape=True),
                                User.nickname.contains(args["q"], autoescape=True)))
    if args["flagged"] is not None:
        flagged = or_(Participation.disqualified_dt.is_not(None), has_holds)
        query = query.where(flagged if args["flagged"] else ~flagged)
    query = after_cursor(query, Participation.id, args["cursor"], descending=False)
    rows, next_cursor = page(list(db.session.execute(query)), args["limit"],
                             lambda row: [row[0].id])
    return {"items": [{
        "pid": p.pid, "name": user.public_name if user and user.openid else None,
        "team": team.key if team else None, "joined_on": p.joined_on,
        "reduction_g": mg_to_g(p.reduction_mg), "records": p.records,
        "flags": [flag for flag, on in (("disqualified", p.disqualified_dt is not None),
                                        ("held_intake", held)) if on],
        "disqualified_at": p.disqualified_dt, "disqualified_reason": p.disqualified_reason,
    } for p, user, team, held in rows], "next_cursor": next_cursor}


@bp.route("/campaigns/<slug>/participants/<pid>/disqualify", methods=["POST"])
@staff_required
@bp.arguments(DisqualifyArgs())
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


def _hold_item(hold: Hold, pid: str) -> dict:
    return {"id": hold.id, "pid": pid, "source": hold.source, "action": hold.action,
            "local_date": hold.local_date, "quantity": milli_to_number(hold.quantity_milli),
            "signals": hold.signals, "status": hold.status, "created_dt": hold.created_dt,
            "decided_dt": hold.decided_dt, "decided_by": hold.decided_by,
            "entry_seq": hold.entry_seq}


@bp.route("/campaigns/<slug>/holds", methods=["GET"])
@staff_required
@bp.arguments(HoldListArgs(), location="query")
@bp.response(200, HoldListSchema)
@bp.doc(security=BEARER)
@documents_errors(bp, *STAFF_ERRORS, 422)
def list_holds(args, slug):
    """Held intakes (by default those awaiting a decision), oldest first."""
    campaign = managed_campaign(slug)
    query = (select(Hold, Participation.pid)
             .join(Participation, Participation.id == Hold.participation_id)
             .where(Hold.campaign_id == campaign.id, Hold.status == args["status"])
             .order_by(Hold.id).limit(args["limit"] + 1))
    query = after_cursor(query, Hold.id, args["cursor"], descending=False)
    rows, next_cursor = page(list(db.session.execute(query)), args["limit"],
                             lambda row: [row[0].id])
    return {"items": [_hold_item(hold, pid) for hold, pid in rows], "next_cursor": next_cursor}


def _decision(decide, slug: str, hold_id: int) -> dict:
    campaign = managed_campaign(slug)
    hold = decide(campaign, hold_id, g.staff, utcnow())
    body = _hold_item(hold, db.session.get(Participation, hold.participation_id).pid)
    db.session.commit()
    return body


@bp.route("/campaigns/<slug>/holds/<int:hold_id>/release", methods=["POST"])
@staff_required
@bp.response(200, HoldSchema)
@bp.doc(security=BEARER)
@documents_errors(bp, *STAFF_ERRORS, 409, 503)
def post_release(slug, hold_id):
    """Release a held intake: one ``release`` entry is appended now, with its own date."""
    return _decision(release_hold, slug, hold_id)


@bp.route("/campaigns/<slug>/holds/<int:hold_id>/reject", methods=["POST"])
@staff_required
@bp.response(200, HoldSchema)
@bp.doc(security=BEARER)
@documents_errors(bp, *STAFF_ERRORS, 409)
def post_reject(slug, hold_id):
    """Reject a held intake: nothing is appended."""
    return _decision(reject_hold, slug, hold_id)
