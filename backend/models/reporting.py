"""Projections for reporters (summary, breakdowns, the CSV export), kept like the others: updated
with each entry under the chain-head lock, recomputed by `flask ledger rebuild`."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db

# campaign_action_days.team_id for participants without a team (0 is never a row id).
NO_TEAM = 0


class ParticipantAction(db.Model):
    """A participant's net reduction and records per action: who is active in an action."""

    __tablename__ = "participant_actions"
    __table_args__ = (Index("ix_participant_actions_campaign_id", "campaign_id"),)

    participation_id: Mapped[int] = mapped_column(
        ForeignKey("participations.id"), primary_key=True)
    action: Mapped[str] = mapped_column(String(64), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), nullable=False)
    reduction_mg: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    records: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)


class CampaignAction(db.Model):
    """A campaign's totals per action; ``participants`` are those above 0 mg in it."""

    __tablename__ = "campaign_actions"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    action: Mapped[str] = mapped_column(String(64), primary_key=True)
    reduction_mg: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    records: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    participants: Mapped[int] = mapped_column(Integer, default=0, nullable=False)


class CampaignActionDay(db.Model):
    """Daily aggregates per action and team (the CSV export). ``team_id`` is the participant's
    team, or NO_TEAM."""

    __tablename__ = "campaign_action_days"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    local_date: Mapped[date] = mapped_column(Date, primary_key=True)
    action: Mapped[str] = mapped_column(String(64), primary_key=True)
    team_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    reduction_mg: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    records: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
