"""A participant's own figures in a campaign (GET /campaigns/{slug}/me)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, func, select

from backend.extensions import db
from backend.models import Campaign, LedgerEntry, ParticipantDay, Participation
from backend.services.boards import total_rank
from backend.services.campaigns import campaign_doc
from backend.services.challenges import challenge_view
from backend.services.holds import held_of
from campaigns.decimals import mg_to_g, milli_to_number
from campaigns.rules import points


def my_campaign(participation: Participation, campaign: Campaign, now: datetime) -> dict:
    """Totals, points, days active and per-action figures, from projections and one grouped
    query over the participant's own entries."""
    doc = campaign_doc(campaign)
    challenges, badges = challenge_view(participation, campaign, now)
    by_action = {
        action: {"reduction_g": mg_to_g(int(mg)), "records": int(records)}
        for action, mg, records in db.session.execute(
            select(LedgerEntry.action, func.sum(LedgerEntry.reduction_mg),
                   func.sum(case((LedgerEntry.source == "reversal", 0), else_=1)))
            .where(LedgerEntry.participation_id == participation.id)
            .group_by(LedgerEntry.action).order_by(LedgerEntry.action)
        )
    }
    days_active = db.session.scalar(
        select(func.count()).select_from(ParticipantDay).where(
            ParticipantDay.participation_id == participation.id, ParticipantDay.reduction_mg > 0)
    )
    return {
        "reduction_g": mg_to_g(participation.reduction_mg),
        "points": points(participation.reduction_mg, doc.points_per_g_milli),
        "rank": total_rank(campaign, participation, now),
        "days_active": days_active,
        "by_action": by_action,
        "challenges": challenges,
        "badges": badges,
        "held": [{
            "id": hold.id, "source": hold.source, "action": hold.action,
            "date": hold.local_date, "quantity": milli_to_number(hold.quantity_milli),
            "signals": hold.signals, "created_at": hold.created_dt,
        } for hold in held_of(participation)],
        "team": participation.team.key if participation.team else None,
        "joined_on": participation.joined_on,
    }
