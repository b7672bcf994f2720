"""Staff accounts (admins and organisers) and the campaigns organisers manage."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.clock import utcnow
from backend.extensions import db
from backend.models.campaign import Campaign
from backend.models.types import BigId, UTCDateTime

STAFF_ROLES = ("admin", "organiser")

staff_campaigns = Table(
    "staff_campaigns",
    db.metadata,
    Column("staff_id", ForeignKey("staff_accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("campaign_id", ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
)


class StaffAccount(db.Model):
    __tablename__ = "staff_accounts"
    __table_args__ = (CheckConstraint("role IN ('admin', 'organiser')", name="role_known"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True, nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    token_version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    created_dt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    campaigns: Mapped[list[Campaign]] = relationship(secondary=staff_campaigns)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def manages(self, campaign: Campaign) -> bool:
        return self.is_admin or any(c.id == campaign.id for c in self.campaigns)
