"""A participant's own figures in a campaign (GET /campaigns/{slug}/me)."""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import bindparam, func, select

from backend.models import (
    ParticipantAction,
    ParticipantDay,
)
from backend.services.boards import total_rank
from backend.services.campaigns import campaign_doc
from backend.services.challenges import challenge_view, view_queries
from backend.services.holds import held_query
from backend.services.public import CampaignRef, ParticipationRef
from backend.services.statements import run_together
from campaigns.decimals import mg_to_g, milli_to_number
from campaigns.rules import points


@functools.cache
def _actions_statement():
    return (select(ParticipantAction.action, ParticipantAction.reduction_mg,
                   ParticipantAction.records)
            .where(ParticipantAction.participation_id == bindparam("participation_id"))
            .order_by(ParticipantAction.action))


@functools.cache
def _days_active_statement():
    return select(func.count()).select_from(ParticipantDay).where(
        ParticipantDay.participation_id == bindparam("participation_id"),
        ParticipantDay.reduction_mg > 0)


def my_campaign(participation: ParticipationRef, campaign: CampaignRef, now: datetime,
                head_seq: int) -> dict:
    """Totals, points, days active and per-action figures, from projections: every read
    below goes out in one round trip. ``head_seq``: the chain head, read with the campaign."""
    doc = campaign_doc(campaign)
    challenge_reads = view_queries(participation)
    rows = run_together([
        *challenge_reads,
        (_actions_statement(), {"participation_id": participation.id}),
        (_days_active_statement(), {"participation_id": participation.id}),
        held_query(participation),
    ])
    challenges, badges = challenge_view(participation, campaign, now,
                                        rows[:len(challenge_reads)])
    actions, ((days_active,),), holds = rows[len(challenge_reads):]
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
        "team": participation.team_key,
        "joined_on": participation.joined_on,
    }
