"""Public campaign endpoints: the list, one campaign's rules, its progress."""

from __future__ import annotations

from flask_smorest import Blueprint
from sqlalchemy import select

from backend.api.docs import documents_errors
from backend.api.pagination import PageArgs, after_cursor, page
from backend.clock import utcnow
from backend.extensions import db
from backend.models import Campaign, CampaignLedger
from backend.schemas.campaigns import CampaignDetailSchema, CampaignListSchema, ProgressSchema
from backend.services.public import (
    campaign_detail,
    campaign_figures,
    campaign_status,
    published_campaign,
)

bp = Blueprint("campaigns", __name__, url_prefix="/api/v1/campaigns", description="Campaigns")


@bp.route("", methods=["GET"])
@bp.arguments(PageArgs(), location="query")
@bp.response(200, CampaignListSchema)
@documents_errors(bp, 422)
def list_campaigns(args):
    """Published campaigns, newest first."""
    query = (select(Campaign, CampaignLedger)
             .join(CampaignLedger, CampaignLedger.campaign_id == Campaign.id)
             .where(Campaign.status == "published")
             .order_by(Campaign.id.desc()).limit(args["limit"] + 1))
    query = after_cursor(query, Campaign.id, args["cursor"])
    rows, next_cursor = page(list(db.session.execute(query)), args["limit"],
                             lambda row: [row[0].id])
    now = utcnow()
    items = []
    for campaign, ledger in rows:
        figures = campaign_figures(campaign, ledger)
        items.append({
            "slug": campaign.slug, "name": campaign.name, "starts_on": campaign.starts_on,
            "ends_on": campaign.ends_on, "status": campaign_status(campaign, now),
            "target_g": figures["target_g"], "reduction_g": figures["reduction_g"],
            "progress": figures["progress"],
        })
    return {"items": items, "next_cursor": next_cursor}


@bp.route("/<slug>", methods=["GET"])
@bp.response(200, CampaignDetailSchema)
@documents_errors(bp, 404)
def get_campaign(slug):
    """A published campaign with the factors, caps and sources in force today."""
    return campaign_detail(published_campaign(slug))


@bp.route("/<slug>/progress", methods=["GET"])
@bp.response(200, ProgressSchema)
@documents_errors(bp, 404)
def get_progress(slug):
    """Progress toward the offset target (no credential needed)."""
    figures = campaign_figures(published_campaign(slug))
    return {**figures, "updated_at": utcnow()}
