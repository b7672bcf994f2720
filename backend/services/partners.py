"""Partners: registration (secret shown once, stored encrypted), signed requests, link codes
and the accounts people link to their Tanpu identity."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from backend import secretbox
from backend.errors import ApiError, validation_error
from backend.extensions import db
from backend.models import LinkCode, Partner, PartnerLink, PartnerNonce, User
from backend.services.campaigns import campaigns_by_slug

SEAL_PURPOSE = "partner_hmac"
SIGNATURE_WINDOW_S = 300
NONCE_KEEP = timedelta(minutes=10)
LINK_CODE_LIFETIME = timedelta(minutes=10)
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{1,63}")
HEX64 = re.compile(r"[0-9a-f]{64}")


def _signature_invalid() -> ApiError:
    return ApiError(401, "partner.signature_invalid")


def create_partner(name: str, campaign_slugs: list[str]) -> tuple[Partner, str]:
    """A new partner registered for these campaigns, and its secret (shown only now)."""
    if not NAME_PATTERN.fullmatch(name or ""):
        raise validation_error({"name": ["2-64 of a-z, 0-9, '-' and '_', starting with a "
                                         "letter or digit."]})
    campaigns = campaigns_by_slug(campaign_slugs)
    if not campaigns:
        raise validation_error({"campaigns": ["A partner feeds at least one campaign."]})
    secret = secrets.token_urlsafe(32)
    partner = Partner(name=name, campaigns=campaigns, secret_enc=secretbox.seal(
        current_app.config["SECRET_KEY"], SEAL_PURPOSE, secret))
    db.session.add(partner)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise validation_error({"name": ["A partner with this name exists."]}) from None
    return partner, secret


def sign(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """The request signature: hex HMAC-SHA256 of ``timestamp\\nnonce\\nbody``."""
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def authenticate_partner(name: str, headers, body: bytes, now: datetime) -> Partner:
    """The partner whose signature the request carries; 401 partner.signature_invalid for any
    failure. The nonce is committed on its own before the body is processed, so a replayed
    request (also a concurrent one) stops here."""
    partner = db.session.scalars(select(Partner).where(Partner.name == name)).one_or_none()
    timestamp, nonce = headers.get("X-Tanpu-Timestamp", ""), headers.get("X-Tanpu-Nonce", "")
    signature = headers.get("X-Tanpu-Signature", "")
    if (partner is None or not timestamp.isdigit() or len(timestamp) > 12
            or not 1 <= len(nonce) <= 64 or not HEX64.fullmatch(signature)
            or abs(now.timestamp() - int(timestamp)) > SIGNATURE_WINDOW_S):
        raise _signature_invalid()
    try:
        secret = secretbox.unseal(current_app.config["SECRET_KEY"], SEAL_PURPOSE,
                                  partner.secret_enc)
    except secretbox.SecretUnreadable:
        raise _signature_invalid() from None
    if not hmac.compare_digest(sign(secret, timestamp, nonce, body), signature):
        raise _signature_invalid()
    db.session.execute(delete(PartnerNonce).where(PartnerNonce.created_dt < now - NONCE_KEEP))
    db.session.add(PartnerNonce(partner_id=partner.id, nonce=nonce, created_dt=now))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise _signature_invalid() from None
    return partner


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def register_link_code(partner: Partner, member_ref: str, link_code: str,
                       now: datetime) -> LinkCode:
    """A single-use link code for the partner's member, valid 10 minutes. Flushes."""
    code = LinkCode(partner_id=partner.id, code_hash=_code_hash(link_code), member_ref=member_ref,
                    expires_dt=now + LINK_CODE_LIFETIME)
    db.session.add(code)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise validation_error({"link_code": ["This code is already registered."]}) from None
    return code


def link_partner_account(user: User, partner_name: str, link_code: str,
                         now: datetime) -> tuple[PartnerLink, bool]:
    """Link the partner account behind ``link_code`` to ``user``; returns (link, created).

    An unknown, used or expired code is 422 at link_code; a partner account linked to
    another user is 409 partner.link_conflict (and the code stays unused).
    """
    partner = db.session.scalars(select(Partner).where(Partner.name == partner_name)).one_or_none()
    code = None if partner is None else db.session.scalars(select(LinkCode).where(
        LinkCode.partner_id == partner.id, LinkCode.code_hash == _code_hash(link_code))
    ).one_or_none()
    if code is None or code.used_dt is not None or code.expires_dt <= now:
        raise validation_error({"link_code": ["Unknown, used or expired code."]})
    link = db.session.scalars(select(PartnerLink).where(
        PartnerLink.partner_id == partner.id, PartnerLink.member_ref == code.member_ref)
    ).one_or_none()
    if link is not None and link.user_id != user.id:
        raise ApiError(409, "partner.link_conflict")
    # A conditional update: of two requests racing with one code, one wins.
    used = db.session.execute(update(LinkCode).where(
        LinkCode.id == code.id, LinkCode.used_dt.is_(None)).values(used_dt=now)).rowcount
    if not used:
        raise validation_error({"link_code": ["Unknown, used or expired code."]})
    if link is not None:
        return link, False
    link = PartnerLink(partner_id=partner.id, member_ref=code.member_ref, user_id=user.id,
                       created_dt=now)
    db.session.add(link)
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError:
        raise ApiError(409, "partner.link_conflict") from None
    return link, True


def find_person(partner: Partner, unionid: str | None, member_ref: str | None) -> int | None:
    """The user an item names, by unionid or by a member_ref they linked."""
    if unionid is not None:
        return db.session.scalar(select(User.id).where(User.unionid == unionid))
    return db.session.scalar(select(PartnerLink.user_id).where(
        PartnerLink.partner_id == partner.id, PartnerLink.member_ref == member_ref))
