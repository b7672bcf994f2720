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


def my_campaign_reads(participation_id: int | None) -> list[tuple]:
    """The reads of :func:`my_campaign` (calls of :func:`run_together` whose one parameter is
    ``participation_id``)."""
    return [*view_queries(participation_id),
            (_actions_statement(), {"participation_id": participation_id}),
            (_days_active_statement(), {"participation_id": participation_id}),
            held_query(participation_id)]


def my_campaign(participation: ParticipationRef, campaign: CampaignRef, now: datetime,
                head_seq: int, rows: list) -> dict:
    """Totals, points, days active and per-action figures, from projections: ``rows`` are
    the results of :func:`my_campaign_reads` (run by the caller with the context's read, in
    one round trip). ``head_seq``: the chain head, read with the campaign."""
    doc = campaign_doc(campaign)
    challenges, badges = challenge_view(participation, campaign, now, rows[:3])
    actions, ((days_active,),), holds = rows[3:]
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
