"""Projections of the ledger, updated in the entry's transaction; `flask ledger rebuild`
recomputes them. Each total keeps ``reached_seq``: the seq of the entry that last raised it,
the leaderboards' tie-break (who got there first)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db
from backend.models.participation import board_index, hidden_index
from backend.models.types import UTCDateTime

# Team period rows: "total" has period_start 2000-01-01; "day" a date; "week" its Monday.
TOTAL_PERIOD_START = date(2000, 1, 1)


class ParticipantDay(db.Model):
    __tablename__ = "participant_days"

    participation_id: Mapped[int] = mapped_column(
        ForeignKey("participations.id"), primary_key=True)
    local_date: Mapped[date] = mapped_column(Date, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), nullable=False)
    reduction_mg: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    reached_seq: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    # Copies of the participation's (see Participation.on_board).
    pid: Mapped[str] = mapped_column(String(32), nullable=False)
    on_board: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)


class ParticipantWeek(db.Model):
    __tablename__ = "participant_weeks"

    participation_id: Mapped[int] = mapped_column(
        ForeignKey("participations.id"), primary_key=True)
    week_start: Mapped[date] = mapped_column(Date, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), nullable=False)
    reduction_mg: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    reached_seq: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    pid: Mapped[str] = mapped_column(String(32), nullable=False)
    on_board: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)


board_index("ix_participant_days_board", ParticipantDay, ParticipantDay.local_date)
board_index("ix_participant_weeks_board", ParticipantWeek, ParticipantWeek.week_start)
hidden_index("ix_participant_days_hidden", ParticipantDay, ParticipantDay.local_date)
hidden_index("ix_participant_weeks_hidden", ParticipantWeek, ParticipantWeek.week_start)


class TeamPeriod(db.Model):
    __tablename__ = "team_periods"

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    reduction_mg: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    reached_seq: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    # Members with an entry above 0 mg in the period (DESIGN.md "active").
    active_members: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    records: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)


class CampaignDay(db.Model):
    """The campaign's day series (reports, dashboard)."""

    __tablename__ = "campaign_days"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    local_date: Mapped[date] = mapped_column(Date, primary_key=True)
    reduction_mg: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    records: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    active_participants: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    new_participants: Mapped[int] = mapped_column(Integer, default=0, nullable=False)


class CampaignWeek(db.Model):
    """Participants above 0 mg in a campaign week (Monday start): with the day and total
    counts, the size of each board (minus the few hidden rows) without counting it."""

    __tablename__ = "campaign_weeks"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    week_start: Mapped[date] = mapped_column(Date, primary_key=True)
    active_participants: Mapped[int] = mapped_column(Integer, default=0, nullable=False)


class FrozenBoard(db.Model):
    """The public boards as of a campaign's freeze_at, computed once from the ledger (entries
    with created_dt <= freeze_at). Rows of kind ``individuals`` hold a pid, ``teams`` a key."""

    __tablename__ = "frozen_boards"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    member: Mapped[str] = mapped_column(String(64), primary_key=True)
    reduction_mg: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reached_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    active_members: Mapped[int] = mapped_column(Integer, default=0, nullable=False)


class FreezeSnapshot(db.Model):
    """Which freeze instant the frozen boards of a campaign were computed for."""

    __tablename__ = "freeze_snapshots"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    freeze_dt: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
