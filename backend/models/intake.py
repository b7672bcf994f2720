"""Intake: the person-day lock rows, check-ins, day aggregates per action and source, and
idempotency records. Natural-key uniqueness lives here, not in the ledger."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import utcnow
from backend.extensions import db
from backend.models.types import BigId, UTCDateTime


class PersonDay(db.Model):
    """One row per person and date, locked by every intake that touches that day, so that
    caps and cross-campaign counting see a stable day."""

    __tablename__ = "person_days"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    local_date: Mapped[date] = mapped_column(Date, primary_key=True)


class Checkin(db.Model):
    __tablename__ = "checkins"
    __table_args__ = (
        # A once-daily action is checked in once per participant and day (NULL for others).
        UniqueConstraint("participation_id", "local_date", "once_daily_action"),
        Index("ix_checkins_participation_id_id", "participation_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), nullable=False)
    participation_id: Mapped[int] = mapped_column(ForeignKey("participations.id"),
                                                  nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    once_daily_action: Mapped[str | None] = mapped_column(String(64))
    local_date: Mapped[date] = mapped_column(Date, nullable=False)
    quantity_milli: Mapped[int] = mapped_column(BigInteger, nullable=False)
    counted_milli: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reduction_mg: Mapped[int] = mapped_column(BigInteger, nullable=False)
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    entry_seq: Mapped[int | None] = mapped_column(BigInteger)
    created_dt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class DayActionTotal(db.Model):
    """A participant's day in one campaign, per action and source: what was submitted, what
    the campaign counted (after caps and other campaigns), and its credit before groups."""

    __tablename__ = "day_action_totals"
    __table_args__ = (
        Index("ix_day_action_totals_user_day", "user_id", "local_date", "action"),
    )

    participation_id: Mapped[int] = mapped_column(
        ForeignKey("participations.id"), primary_key=True)
    local_date: Mapped[date] = mapped_column(Date, primary_key=True)
    action: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), nullable=False)
    total_milli: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    counted_milli: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    credit_mg: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)


class IdempotencyRecord(db.Model):
    """A replayable reply: the same principal, method, path and key return it again."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("principal", "method", "path", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    principal: Mapped[str] = mapped_column(String(64), nullable=False)
    method: Mapped[str] = mapped_column(String(8), nullable=False)
    path: Mapped[str] = mapped_column(String(500), nullable=False)
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    created_dt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False,
                                                 index=True)
