"""WeChat login: a code reaches WeChat at most once; users are found or created by openid."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from backend import secretbox
from backend.auth import IssuedToken, issue_token
from backend.clock import utcnow
from backend.errors import ApiError
from backend.extensions import db
from backend.models import SandboxLogin, SeenLoginCode, User
from backend.wechat import SandboxWeChat, WeChatSession

SEEN_CODE_KEEP = timedelta(minutes=10)
SESSION_KEY_PURPOSE = "session_key"


@dataclass(frozen=True)
class LoginResult:
    user: User
    is_new: bool
    token: IssuedToken


def remember_login_code(code: str) -> None:
    """Record the code in its own committed transaction; a code seen before is 401.

    The primary key on the hash stops a concurrent duplicate here, before WeChat is called.
    """
    now = utcnow()
    expired = SeenLoginCode.created_dt < now - SEEN_CODE_KEEP
    db.session.execute(delete(SeenLoginCode).where(expired))
    code_hash = hashlib.sha256(code.encode()).hexdigest()
    db.session.add(SeenLoginCode(code_hash=code_hash, created_dt=now))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ApiError(401, "auth.code_invalid") from None


def exchange_login_code(wechat, code: str) -> WeChatSession:
    """code2Session under the login rules; no transaction is open while WeChat is called."""
    db.session.commit()  # end any read transaction before the network call
    if not (isinstance(wechat, SandboxWeChat) and wechat.is_sandbox_code(code)):
        remember_login_code(code)
    return wechat.code2session(code)


def _find_user(openid: str) -> User | None:
    return db.session.scalars(select(User).where(User.openid == openid)).one_or_none()


def _unionid_free(unionid: str, user_id: int | None) -> bool:
    owner = db.session.scalars(select(User.id).where(User.unionid == unionid)).one_or_none()
    return owner is None or owner == user_id


def record_wechat_session(session: WeChatSession) -> tuple[User, bool]:
    """Find or create the user of ``session`` and keep its newest session_key. Flushes."""
    user = _find_user(session.openid)
    is_new = user is None
    if is_new:
        user = User(openid=session.openid)
        db.session.add(user)
        try:
            with db.session.begin_nested():
                db.session.flush()
        except IntegrityError:  # a concurrent first login of the same person won
            user, is_new = _find_user(session.openid), False
    if session.unionid and user.unionid is None and _unionid_free(session.unionid, user.id):
        user.unionid = session.unionid
    user.session_key_enc = secretbox.seal(
        current_app.config["SECRET_KEY"], SESSION_KEY_PURPOSE, session.session_key
    )
    user.session_key_dt = utcnow()
    user.login_count = (user.login_count or 0) + 1
    db.session.flush()
    return user, is_new


def login_with_wechat(wechat, code: str) -> LoginResult:
    """Exchange ``code`` and return the user with a participant token (caller commits)."""
    session = exchange_login_code(wechat, code)
    user, is_new = record_wechat_session(session)
    return LoginResult(user, is_new, issue_token("participant", user.id, user.token_version))


def session_key_of(user: User) -> str | None:
    """The user's newest session_key, or None (never logged in, or SECRET_KEY changed)."""
    if not user.session_key_enc:
        return None
    try:
        return secretbox.unseal(
            current_app.config["SECRET_KEY"], SESSION_KEY_PURPOSE, user.session_key_enc
        )
    except secretbox.SecretUnreadable:
        return None


def next_sandbox_login_number(openid: str) -> int:
    """The sandbox's login counter for ``openid``, raised and committed on its own."""
    for _attempt in range(3):
        raised = db.session.execute(
            update(SandboxLogin).where(SandboxLogin.openid == openid)
            .values(logins=SandboxLogin.logins + 1)
        ).rowcount
        if not raised:
            db.session.add(SandboxLogin(openid=openid, logins=1))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            continue
        return db.session.scalar(select(SandboxLogin.logins).where(SandboxLogin.openid == openid))
    raise ApiError(503, "service.unavailable", headers={"Retry-After": "1"})
