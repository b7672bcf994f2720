"""Recomputing every projection of a campaign from its ledger (`flask ledger rebuild`)."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update

from backend.extensions import db
from backend.models import (
    Campaign,
    CampaignDay,
    CampaignLedger,
    ParticipantDay,
    ParticipantWeek,
    Participation,
    Team,
    TeamPeriod,
)
from backend.services.ledger import entries_in_order, lock_ledgers
from backend.services.projections import apply_entry, campaign_day_row


def rebuild_projections(campaign: Campaign) -> int:
    """Zero the projections and replay every entry in chain order; returns the entry count.
    Runs under the chain-head lock, so no entry is appended meanwhile. Flushes."""
    ledger = lock_ledgers([campaign.id])[campaign.id]
    team_ids = select(Team.id).where(Team.campaign_id == campaign.id)
    db.session.execute(delete(TeamPeriod).where(TeamPeriod.team_id.in_(team_ids)))
    db.session.execute(delete(ParticipantDay).where(ParticipantDay.campaign_id == campaign.id))
    db.session.execute(delete(ParticipantWeek).where(ParticipantWeek.campaign_id == campaign.id))
    db.session.execute(delete(CampaignDay).where(CampaignDay.campaign_id == campaign.id))
    db.session.execute(update(Participation).where(Participation.campaign_id == campaign.id)
                       .values(reduction_mg=0, records=0, reached_seq=0))
    db.session.expire_all()
    ledger = db.session.get(CampaignLedger, campaign.id)
    ledger.total_mg = 0
    ledger.records = 0
    participations = {p.id: p for p in db.session.scalars(
        select(Participation).where(Participation.campaign_id == campaign.id))}
    ledger.participants = sum(1 for p in participations.values() if p.disqualified_dt is None)
    for joined_on, count in db.session.execute(
            select(Participation.joined_on, func.count()).where(
                Participation.campaign_id == campaign.id).group_by(Participation.joined_on)):
        campaign_day_row(campaign.id, joined_on).new_participants = count
    entries = 0
    for entry in entries_in_order(campaign):
        apply_entry(entry, participations[entry.participation_id], ledger)
        entries += 1
        if entries % 5000 == 0:
            db.session.flush()
    db.session.flush()
    return entries
