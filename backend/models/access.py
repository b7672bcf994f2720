"""Read credentials scoped to one campaign: reporter API keys and dashboard tokens.

Both are random, shown once, stored as SHA-256 (enough for random secrets), revocable.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import utcnow
from backend.extensions import db
from backend.models.types import BigId, UTCDateTime

CREDENTIAL_KINDS = ("api_key", "dashboard_token")


class CampaignCredential(db.Model):
    __tablename__ = "campaign_credentials"
    __table_args__ = (
        CheckConstraint("kind IN ('api_key', 'dashboard_token')", name="kind_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    label: Mapped[str] = mapped_column(String(100), nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("staff_accounts.id", ondelete="SET NULL")
    )
    created_dt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    revoked_dt: Mapped[datetime | None] = mapped_column(UTCDateTime)
