"""Participant profiles."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select

from backend.errors import ApiError, validation_error
from backend.extensions import db
from backend.models import Participation, User
from backend.services.projections import sync_on_board

log = logging.getLogger(__name__)


def load_user(user_id: int, version: int) -> User | None:
    """The user whose token carries ``version``; None if gone or revoked."""
    user = db.session.get(User, user_id)
    if user is None or user.openid is None or user.token_version != version:
        return None
    return user


def check_avatar_url(url: str) -> None:
    """Avatars come only from WeChat's image hosts (AVATAR_HOSTS), over https."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or host not in current_app.config["AVATAR_HOSTS"]:
        raise validation_error({"avatar_url": ["Must be an https URL on a WeChat image host."]})


def nickname_verdict(wechat, openid: str, nickname: str) -> str:
    """WeChat's verdict on a nickname, or ``pending`` when it cannot give one now."""
    try:
        return wechat.check_text(openid, nickname)
    except ApiError:
        log.warning("nickname check unavailable; nickname kept pending")
        return "pending"


def update_profile(user: User, changes: dict, wechat) -> User:
    """Apply a PATCH /me. The content check runs with no transaction open. Flushes."""
    if "avatar_url" in changes:
        check_avatar_url(changes["avatar_url"])
    verdict = None
    if "nickname" in changes and changes["nickname"] != user.nickname:
        openid = user.openid
        db.session.commit()  # no transaction open while WeChat is called
        verdict = nickname_verdict(wechat, openid, changes["nickname"])
    for name in ("nickname", "avatar_url", "on_leaderboard"):
        if name in changes:
            setattr(user, name, changes[name])
    if verdict is not None:
        user.nickname_status = verdict
    if "on_leaderboard" in changes:
        sync_on_board(select(Participation.id).where(Participation.user_id == user.id))
    db.session.flush()
    return user


