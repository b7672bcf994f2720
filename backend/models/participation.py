"""Who joined which campaign: the join day, the team, the campaign pseudonym ``pid``."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, String, UniqueConstraint
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
    # Shown on public boards: not disqualified, on_leaderboard, not erased. Kept here (and on
    # the day and week rows) so that a board is one partial index, without a join to users.
    on_board: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)

    campaign: Mapped[Campaign] = relationship()
    team: Mapped[Team | None] = relationship()


def board_index(name: str, model, *leading):
    """The index a public board walks: (campaign, period..., -metric, seq, pid) over the rows
    shown on it. Top N reads its first rows; "how many are ahead of me" counts one range."""
    return Index(name, model.campaign_id, *leading, -model.reduction_mg, model.reached_seq,
                 model.pid, postgresql_where=model.on_board & (model.reduction_mg > 0),
                 sqlite_where=model.on_board & (model.reduction_mg > 0),
                 # PostgreSQL reads counts from the index alone only when the plain column
                 # behind the expression is in it too.
                 postgresql_include=["reduction_mg"])


def hidden_index(name: str, model, *leading):
    """The rows above 0 mg that public boards do not show (few): a board's size is the count
    of active participants minus these."""
    return Index(name, model.campaign_id, *leading,
                 postgresql_where=~model.on_board & (model.reduction_mg > 0),
                 sqlite_where=~model.on_board & (model.reduction_mg > 0))


board_index("ix_participations_board", Participation)
hidden_index("ix_participations_hidden", Participation)
