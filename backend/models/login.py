"""Login codes already tried: a code reaches WeChat at most once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import utcnow
from backend.extensions import db
from backend.models.types import UTCDateTime


class SeenLoginCode(db.Model):
    __tablename__ = "seen_login_codes"

    # sha256 of the code: the primary key stops a concurrent duplicate at the insert.
    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_dt: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, nullable=False, index=True
    )


class SandboxLogin(db.Model):
    """The sandbox's own memory (it plays WeChat): how many times each openid logged in."""

    __tablename__ = "sandbox_logins"

    openid: Mapped[str] = mapped_column(String(128), primary_key=True)
    logins: Mapped[int] = mapped_column(default=0, nullable=False)
