"""Campaigns and their teams.

A campaign row holds the columns queries filter on and ``settings``: the canonical dump of the
validated document (campaigns.document), minus its team list, which lives in ``teams`` rows
because members point at them.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.clock import utcnow
from backend.extensions import db
from backend.models.types import BigId, UTCDateTime

CAMPAIGN_STATUSES = ("draft", "published")


class Campaign(db.Model):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'published')", name="status_known"),
        CheckConstraint("ends_on >= starts_on", name="dates_ordered"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(16), default="draft", nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
    starts_on: Mapped[date] = mapped_column(Date, nullable=False)
    ends_on: Mapped[date] = mapped_column(Date, nullable=False)
    target_mg: Mapped[int] = mapped_column(BigInteger, nullable=False)
    settings: Mapped[dict] = mapped_column(JSON, nullable=False)
    # Raised (in SQL, so concurrent writers get distinct values) whenever the settings or the
    # team rows change: the key of the parsed-document cache.
    doc_version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    published_dt: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_dt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_dt: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )

    teams: Mapped[list[Team]] = relationship(
        back_populates="campaign", order_by="Team.id", cascade="all, delete-orphan"
    )


class Team(db.Model):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("campaign_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False, index=True
    )
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)

    campaign: Mapped[Campaign] = relationship(back_populates="teams")
