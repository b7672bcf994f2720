"""A participant in a campaign: join, check in, list my check-ins, my figures."""

from __future__ import annotations

from flask import current_app, g
from flask_smorest import Blueprint
from sqlalchemy import select

from backend.api.context import (
    in_campaign,
    intake_in_campaign,
    participant_claims,
    read_context_of,
)
from backend.api.docs import BEARER, IDEMPOTENCY_KEY, documents_errors
from backend.api.pagination import after_cursor, page
from backend.api.reads import reads_only
from backend.api.replies import direct_json
from backend.api.writes import idempotent_write
from backend.auth import participant_required
from backend.clock import utcnow
from backend.extensions import db, limiter
from backend.models import Campaign, Checkin
from backend.schemas.intake import (
    CheckinArgs,
    CheckinListArgs,
    CheckinListSchema,
    CheckinSchema,
    JoinArgs,
    JoinSchema,
    MyCampaignSchema,
    WerunArgs,
    WerunSchema,
)
from backend.services.campaigns import campaign_doc
from backend.services.checkins import record_checkin
from backend.services.membership import check_joined, join_campaign
from backend.services.public import of_slug_and_user, published_campaign
from backend.services.standings import my_campaign, my_campaign_reads
from backend.services.werun import decrypt_werun, parse_step_list, refresh_session_key, sync_werun
from backend.wechat import current_wechat
from campaigns.decimals import mg_to_g, milli_to_number
from campaigns.rules import points

bp = Blueprint("participation", __name__, url_prefix="/api/v1/campaigns",
               description="Taking part in a campaign")
IDEMPOTENCY_HEADER = {**IDEMPOTENCY_KEY,
                      "description": "1-64 visible ASCII characters; required on check-ins of "
                                     "count, distance and weight actions"}


def _participant() -> str:
    return f"user:{g.user_id if 'user_id' in g else g.user.id}"


@bp.route("/<slug>/join", methods=["POST"])
@participant_required
@idempotent_write(_participant)
@bp.arguments(JoinArgs())
@bp.response(201, JoinSchema)
@bp.alt_response(200, schema=JoinSchema, description="already joined with the same team",
                 success=True)
@bp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@documents_errors(bp, 400, 401, 403, 404, 409, 415, 422)
def join(args, slug):
    """Join a campaign (with its invite code and a team, as the campaign requires)."""
    campaign = published_campaign(slug)
    participation, created = join_campaign(g.user, campaign, args["invite_code"], args["team"],
                                           utcnow())
    body = {"joined_on": participation.joined_on,
            "team": participation.team.key if participation.team else None}
    return body, 201 if created else 200


@bp.route("/<slug>/checkins", methods=["POST"])
@intake_in_campaign
@limiter.limit(lambda: current_app.config["RATE_LIMIT_INTAKE"], key_func=_participant)
@idempotent_write(_participant)
@bp.arguments(CheckinArgs())
@bp.response(201, CheckinSchema)
@bp.doc(security=BEARER, parameters=[IDEMPOTENCY_HEADER])
@documents_errors(bp, 400, 401, 403, 404, 409, 415, 422, 429, 503)
def post_checkin(args, slug):
    """Check in a low-carbon action for today or an earlier day within late_entry_days."""
    campaign = g.campaign
    result = record_checkin(g.user_id, campaign, check_joined(g.participation), args["action"],
                            args["quantity"], args["date"], g.idempotency_key is not None,
                            utcnow())
    checkin, participation = result.checkin, result.participation
    return direct_json({
        "id": checkin.id, "action": checkin.action, "date": checkin.local_date,
        "quantity": milli_to_number(checkin.quantity_milli),
        "counted_quantity": milli_to_number(checkin.counted_milli),
        "reduction_g": mg_to_g(checkin.reduction_mg), "capped": result.capped,
        "claimed_by": result.claimed_by, "day_reduction_g": mg_to_g(result.day_reduction_mg),
        "total_reduction_g": mg_to_g(participation.reduction_mg),
        "points": points(participation.reduction_mg, campaign_doc(campaign).points_per_g_milli),
        "held": result.held,
    }, 201)


@bp.route("/<slug>/checkins", methods=["GET"])
@in_campaign
@bp.arguments(CheckinListArgs(), location="query")
@bp.response(200, CheckinListSchema)
@bp.doc(security=BEARER)
@documents_errors(bp, 401, 403, 404, 409, 422)
def list_checkins(args, slug):
    """My check-ins in this campaign, newest first, optionally of one date or action."""
    participation = check_joined(g.participation)
    query = (select(Checkin).where(Checkin.participation_id == participation.id)
             .order_by(Checkin.id.desc()).limit(args["limit"] + 1))
    if args["date"] is not None:
        query = query.where(Checkin.local_date == args["date"])
    if args["action"] is not None:
        query = query.where(Checkin.action == args["action"])
    query = after_cursor(query, Checkin.id, args["cursor"])
    rows, next_cursor = page(list(db.session.scalars(query)), args["limit"], lambda c: [c.id])
    slugs = {c.claimed_by for c in rows if c.claimed_by}
    slug_of = dict(db.session.execute(
        select(Campaign.id, Campaign.slug).where(Campaign.id.in_(slugs))).all()) if slugs else {}
    return {"items": [{
        "id": c.id, "action": c.action, "date": c.local_date,
        "quantity": milli_to_number(c.quantity_milli),
        "counted_quantity": milli_to_number(c.counted_milli),
        "reduction_g": mg_to_g(c.reduction_mg), "claimed_by": slug_of.get(c.claimed_by),
        "created_at": c.created_dt,
    } for c in rows], "next_cursor": next_cursor}


@bp.route("/<slug>/me", methods=["GET"])
@reads_only
@bp.response(200, MyCampaignSchema)
@bp.doc(security=BEARER)
@documents_errors(bp, 401, 403, 404, 409)
def get_my_campaign(slug):
    """My reduction, points, days active and per-action figures in this campaign."""
    claims = participant_claims(True)
    # The figures' reads find the participation themselves: one round trip with the context.
    rows = read_context_of(slug, claims, True, also=of_slug_and_user(
        my_campaign_reads(None), slug, claims["sub"]))
    return direct_json(my_campaign(check_joined(g.participation), g.campaign, utcnow(),
                                   g.head_seq, rows))


@bp.route("/<slug>/werun", methods=["POST"])
@in_campaign
@limiter.limit(lambda: current_app.config["RATE_LIMIT_INTAKE"], key_func=_participant)
@bp.arguments(WerunArgs())
@bp.response(200, WerunSchema)
@bp.doc(security=BEARER)
@documents_errors(bp, 400, 401, 403, 404, 409, 415, 422, 429, 503)
def post_werun(args, slug):
    """Sync WeRun steps (wx.getWeRunData). Each Beijing day keeps its highest count; a higher
    count credits the difference to the one campaign the day belongs to.

    With ``code`` (a fresh wx.login), the code is exchanged first under the login rules; a
    code of another WeChat user is 403 and nothing is stored.
    """
    campaign = g.campaign
    wechat = current_wechat()
    if args["code"] is not None:
        refresh_session_key(g.user, wechat, args["code"])
    payload = decrypt_werun(g.user, wechat.appid, args["iv"], args["encrypted_data"])
    now = utcnow()
    result = sync_werun(g.user, campaign, g.participation, parse_step_list(payload, now), now)
    body = {
        "days": [{"date": day["date"], "steps": day["steps"],
                  "counted_steps": day["counted_steps"],
                  "reduction_g": mg_to_g(day["reduction_mg"]), "status": day["status"]}
                 for day in result["days"]],
        "added_reduction_g": mg_to_g(result["added_mg"]),
        "total_reduction_g": mg_to_g(result["total_mg"]),
    }
    db.session.commit()
    return direct_json(body)
