"""WeRun days (the highest count seen per person and Beijing date) and plausibility holds."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import utcnow
from backend.extensions import db
from backend.models.types import BigId, UTCDateTime


class WerunDay(db.Model):
    """A person's WeRun day: the highest step count seen, what was counted of it, and the one
    campaign it is credited to (whichever endpoint received it)."""

    __tablename__ = "werun_days"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    local_date: Mapped[date] = mapped_column(Date, primary_key=True)
    steps: Mapped[int] = mapped_column(BigInteger, nullable=False)
    counted_steps: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    updated_dt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


HOLD_STATES = ("held", "released", "rejected")


class Hold(db.Model):
    """An intake that met a plausibility signal: outside the ledger until an organiser decides.
    It leaves ``held`` exactly once (a conditional update on ``status``)."""

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("status IN ('held', 'released', 'rejected')", name="status_known"),
        CheckConstraint("source IN ('checkin', 'werun', 'partner')", name="source_known"),
        Index("ix_holds_campaign_id_status_id", "campaign_id", "status", "id"),
        Index("ix_holds_participation_id", "participation_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), nullable=False)
    participation_id: Mapped[int] = mapped_column(ForeignKey("participations.id"),
                                                  nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    source_ref: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    local_date: Mapped[date] = mapped_column(Date, nullable=False)
    # What would be added to the day total on release (for WeRun: the day's step count).
    quantity_milli: Mapped[int] = mapped_column(BigInteger, nullable=False)
    signals: Mapped[list] = mapped_column(JSON, nullable=False)
    status: Mapped[str] = mapped_column(String(16), default="held", nullable=False)
    decided_by: Mapped[str | None] = mapped_column(String(254))
    decided_dt: Mapped[datetime | None] = mapped_column(UTCDateTime)
    entry_seq: Mapped[int | None] = mapped_column(BigInteger)
    created_dt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_dt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class ChallengeCompletion(db.Model):
    """A challenge completed (and its badge awarded) once per participant, with its instant;
    the primary key makes a concurrent second completion impossible."""

    __tablename__ = "challenge_completions"

    participation_id: Mapped[int] = mapped_column(
        ForeignKey("participations.id", ondelete="CASCADE"), primary_key=True)
    challenge_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), nullable=False)
    completed_dt: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
