"""Participants: WeChat identity (secret to us), public profile, session_key, token version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import utcnow
from backend.extensions import db
from backend.models.types import BigId, UTCDateTime

NICKNAME_STATUSES = ("none", "pending", "pass", "review", "risky")


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "nickname_status IN ('none', 'pending', 'pass', 'review', 'risky')",
            name="nickname_status_known",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Unique WeChat identities; NULL once a user erased their data.
    openid: Mapped[str | None] = mapped_column(String(128), unique=True)
    unionid: Mapped[str | None] = mapped_column(String(128), unique=True)
    # The newest session_key, encrypted at rest (backend.secretbox); never leaves the server.
    session_key_enc: Mapped[str | None] = mapped_column(Text)
    session_key_dt: Mapped[datetime | None] = mapped_column(UTCDateTime)
    login_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    nickname: Mapped[str | None] = mapped_column(String(32))
    nickname_status: Mapped[str] = mapped_column(String(16), default="none", nullable=False)
    avatar_url: Mapped[str | None] = mapped_column(String(512))
    on_leaderboard: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    # Raising it revokes every token issued before.
    token_version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    created_dt: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_dt: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )

    PUBLIC_NICKNAME_FALLBACK = "低碳达人"

    @property
    def public_name(self) -> str:
        """The name public boards show: the nickname only once WeChat's check passed it."""
        if self.nickname and self.nickname_status == "pass":
            return self.nickname
        return self.PUBLIC_NICKNAME_FALLBACK
