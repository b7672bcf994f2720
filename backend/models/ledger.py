"""The append-only ledger (one hash chain per campaign) and its chain head.

Entries are never updated or deleted. A negative amount is allowed only for a reversal, and a
unique index on (campaign, source_ref) of reversals means no entry is reversed twice.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db
from backend.models.types import BigId, UTCDateTime

LEDGER_SOURCES = ("checkin", "werun", "partner", "release", "reversal")


class LedgerEntry(db.Model):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint("reduction_mg >= 0 OR source = 'reversal'", name="negative_only_reversal"),
        CheckConstraint(
            "source IN ('checkin', 'werun', 'partner', 'release', 'reversal')",
            name="source_known",
        ),
        CheckConstraint("quantity_milli >= 0 AND counted_milli >= 0 AND factor_milli >= 0",
                        name="quantities_not_negative"),
        Index("uq_ledger_entries_campaign_id_seq", "campaign_id", "seq", unique=True),
        Index("ix_ledger_entries_participation_id", "participation_id"),
        Index("ix_ledger_entries_campaign_id_created_dt", "campaign_id", "created_dt"),
        Index(
            "uq_ledger_entries_reversal_of", "campaign_id", "source_ref", unique=True,
            sqlite_where=text("source = 'reversal'"),
            postgresql_where=text("source = 'reversal'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), nullable=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    participation_id: Mapped[int] = mapped_column(ForeignKey("participations.id"), nullable=False)
    pid: Mapped[str] = mapped_column(String(32), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    local_date: Mapped[date] = mapped_column(Date, nullable=False)
    quantity_milli: Mapped[int] = mapped_column(BigInteger, nullable=False)
    counted_milli: Mapped[int] = mapped_column(BigInteger, nullable=False)
    factor_milli: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reduction_mg: Mapped[int] = mapped_column(BigInteger, nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    source_ref: Mapped[str | None] = mapped_column(String(200))
    methodology_version: Mapped[str] = mapped_column(String(80), nullable=False)
    created_dt: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    prev_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    hash: Mapped[str] = mapped_column(String(64), nullable=False)


class CampaignLedger(db.Model):
    """The chain head (locked to append) and the campaign's running totals."""

    __tablename__ = "campaign_ledgers"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    head_seq: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    head_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    total_mg: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    records: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    participants: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    # Participants above 0 mg (DESIGN.md "active"), of all teams and none.
    active_participants: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    # The last verification (GET .../ledger/verify, flask ledger verify).
    verified_seq: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    verified_hash: Mapped[str | None] = mapped_column(String(64))
    verified_dt: Mapped[datetime | None] = mapped_column(UTCDateTime)
    full_verified_dt: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The first bad seq the last verification found (None: the chain was whole).
    first_bad_seq: Mapped[int | None] = mapped_column(BigInteger)
