"""Who joined which campaign: the join day, the team, the campaign pseudonym ``pid``."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.clock import utcnow
from backend.extensions import db
from backend.models.campaign import Campaign, Team
from backend.models.types import BigId, UTCDateTime


class Participation(db.Model):
    __tablename__ = "participations"
    __table_args__ = (
        UniqueConstraint("campaign_id", "user_id"),
        UniqueConstraint("campaign_id", "pid"),
        # The total board: top N and "how many are ahead of me" walk this index.
        Index("ix_participations_board", "campaign_id", "reduction_mg", "reached_seq", "pid"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False
    )
    # NULL once the person erased their data: the pseudonym and its entries stay.
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # A random per-campaign pseudonym: the only participant id in the ledger and reports.
    pid: Mapped[str] = mapped_column(String(32), nullable=False)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    joined_on: Mapped[date] = mapped_column(Date, nullable=False)
    joined_dt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    disqualified_dt: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disqualified_reason: Mapped[str | None] = mapped_column(String(500))
    # Projection of the ledger: the campaign total, entries and the seq that last raised it.
    reduction_mg: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    records: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    reached_seq: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)

    campaign: Mapped[Campaign] = relationship()
    team: Mapped[Team | None] = relationship()
