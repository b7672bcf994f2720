"""Partners (transit operators, recyclers, invoice platforms), their nonces, link codes, the
accounts people linked, and the items they sent (each (partner, id) counted once ever)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.clock import utcnow
from backend.extensions import db
from backend.models.campaign import Campaign
from backend.models.types import BigId, UTCDateTime

partner_campaigns = Table(
    "partner_campaigns",
    db.metadata,
    Column("partner_id", ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True),
    Column("campaign_id", ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
)


class Partner(db.Model):
    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    # The HMAC secret, encrypted (backend.secretbox): checking a signature needs it in clear.
    secret_enc: Mapped[str] = mapped_column(Text, nullable=False)
    created_dt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    campaigns: Mapped[list[Campaign]] = relationship(secondary=partner_campaigns,
                                                     order_by="Campaign.id")


class PartnerNonce(db.Model):
    """A nonce is accepted once per partner (kept 10 minutes); committed before the body is
    processed, so a replay stops at the unique key."""

    __tablename__ = "partner_nonces"

    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"),
                                            primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_dt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False,
                                                 index=True)


class LinkCode(db.Model):
    """A single-use code (10 minutes) a partner shows its logged-in member to link accounts."""

    __tablename__ = "partner_link_codes"
    __table_args__ = (UniqueConstraint("partner_id", "code_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"),
                                            nullable=False)
    code_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    member_ref: Mapped[str] = mapped_column(String(128), nullable=False)
    expires_dt: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used_dt: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PartnerLink(db.Model):
    """A (partner, member_ref) belongs to at most one user."""

    __tablename__ = "partner_links"
    __table_args__ = (UniqueConstraint("partner_id", "member_ref"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"),
                                            nullable=False)
    member_ref: Mapped[str] = mapped_column(String(128), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                                index=True)
    created_dt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class PartnerItem(db.Model):
    """A trip or record that was accepted or held: counted once ever per (partner, item id)."""

    __tablename__ = "partner_items"
    __table_args__ = (
        UniqueConstraint("partner_id", "item_id"),
        CheckConstraint("kind IN ('trip', 'record')", name="kind_known"),
        CheckConstraint("status IN ('accepted', 'held')", name="status_known"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), nullable=False)
    item_id: Mapped[str] = mapped_column(String(128), nullable=False)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), nullable=False)
    participation_id: Mapped[int] = mapped_column(ForeignKey("participations.id"),
                                                  nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    local_date: Mapped[date] = mapped_column(Date, nullable=False)
    quantity_milli: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(8), nullable=False)
    entry_seq: Mapped[int | None] = mapped_column(BigInteger)
    created_dt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
