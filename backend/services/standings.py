"""A participant's own figures in a campaign (GET /campaigns/{slug}/me)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from backend.models import (
    Campaign,
    ParticipantAction,
    ParticipantDay,
    Participation,
    Team,
)
from backend.services.boards import total_rank
from backend.services.campaigns import campaign_doc
from backend.services.challenges import challenge_view, view_queries
from backend.services.holds import held_query
from backend.services.statements import run_together
from campaigns.decimals import mg_to_g, milli_to_number
from campaigns.rules import points


def my_campaign(participation: Participation, campaign: Campaign, now: datetime,
                head_seq: int) -> dict:
    """Totals, points, days active and per-action figures, from projections: every read
    below goes out in one round trip. ``head_seq``: the chain head, read with the campaign."""
    doc = campaign_doc(campaign)
    challenge_reads = view_queries(participation)
    rows = run_together([
        *challenge_reads,
        select(ParticipantAction.action, ParticipantAction.reduction_mg,
               ParticipantAction.records)
        .where(ParticipantAction.participation_id == participation.id)
        .order_by(ParticipantAction.action),
        select(func.count()).select_from(ParticipantDay).where(
            ParticipantDay.participation_id == participation.id,
            ParticipantDay.reduction_mg > 0),
        held_query(participation),
        select(Team.key).where(Team.id == participation.team_id),
    ])
    challenges, badges = challenge_view(participation, campaign, now,
                                        rows[:len(challenge_reads)])
    actions, ((days_active,),), holds, team = rows[len(challenge_reads):]
    return {
        "reduction_g": mg_to_g(participation.reduction_mg),
        "points": points(participation.reduction_mg, doc.points_per_g_milli),
        "rank": total_rank(campaign, participation, now, head_seq),
        "days_active": days_active,
        "by_action": {action: {"reduction_g": mg_to_g(mg), "records": records}
                      for action, mg, records in actions},
        "challenges": challenges,
        "badges": badges,
        "held": [{
            "id": hold.id, "source": hold.source, "action": hold.action,
            "date": hold.local_date, "quantity": milli_to_number(hold.quantity_milli),
            "signals": hold.signals, "created_at": hold.created_dt,
        } for hold in holds],
        "team": team[0].key if team else None,
        "joined_on": participation.joined_on,
    }
