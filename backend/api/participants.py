"""Participant login and profile: /auth/wechat-login and /me."""

from __future__ import annotations

from flask import current_app, g, request
from flask_smorest import Blueprint

from backend.api.docs import BEARER, IDEMPOTENCY_KEY, documents_errors
from backend.api.writes import idempotent_write
from backend.auth import participant_required
from backend.clock import utcnow
from backend.extensions import db, limiter
from backend.schemas.partners import PartnerLinkArgs, PartnerLinkSchema
from backend.schemas.users import (
    LoginSchema,
    MeExportSchema,
    MePatchArgs,
    MeSchema,
    WeChatLoginArgs,
)
from backend.services.boards import (
    forget_public_names,
    members_of,
    refresh_participations,
    refresh_user,
)
from backend.services.logins import login_with_wechat
from backend.services.membership import joined_slugs
from backend.services.partners import link_partner_account
from backend.services.privacy import erase_user, export_user
from backend.services.users import update_profile
from backend.wechat import current_wechat

bp = Blueprint("participants", __name__, url_prefix="/api/v1", description="Participants")


@bp.route("/auth/wechat-login", methods=["POST"])
@limiter.limit(lambda: current_app.config["RATE_LIMIT_LOGIN"],
               key_func=lambda: f"wechat-login:{request.remote_addr}")
@bp.arguments(WeChatLoginArgs())
@bp.response(200, LoginSchema)
@documents_errors(bp, 400, 401, 403, 415, 429, 503)
def wechat_login(args):
    """Turn a wx.login code into a participant token.

    The code is sent to WeChat at most once; a code seen before is 401 without calling WeChat.
    """
    result = login_with_wechat(current_wechat(), args["code"])
    user = result.user
    body = {
        "token": result.token.token,
        "expires_in": result.token.expires_in,
        "user": {"id": user.id, "nickname": user.nickname, "avatar_url": user.avatar_url,
                 "is_new": result.is_new},
    }
    db.session.commit()
    return body


def _me(user) -> dict:
    return {
        "id": user.id,
        "nickname": user.nickname,
        "nickname_status": user.nickname_status,
        "avatar_url": user.avatar_url,
        "on_leaderboard": user.on_leaderboard,
        "campaigns": joined_slugs(user),
    }


@bp.route("/me", methods=["GET"])
@participant_required
@bp.response(200, MeSchema)
@bp.doc(security=BEARER)
@documents_errors(bp, 401, 403)
def get_me():
    """My profile and the campaigns I joined."""
    return _me(g.user)


@bp.route("/me", methods=["PATCH"])
@participant_required
@bp.arguments(MePatchArgs())
@bp.response(200, MeSchema)
@bp.doc(security=BEARER)
@documents_errors(bp, 400, 401, 403, 415)
def patch_me(changes):
    """Change my nickname, avatar or leaderboard visibility.

    A new nickname is shown publicly only after WeChat's content check passes it.
    """
    user = update_profile(g.user, changes, current_wechat())
    body = _me(user)
    db.session.commit()
    forget_public_names(members_of(user))
    if "on_leaderboard" in changes:
        refresh_user(user)
    return body


@bp.route("/me/export", methods=["GET"])
@participant_required
@bp.response(200, MeExportSchema)
@bp.doc(security=BEARER)
@documents_errors(bp, 401, 403)
def export_me():
    """Everything held about me: profile, campaigns (with my pseudonym in each), check-ins,
    completed challenges, held intakes, WeRun days and partner links. My WeChat identity is
    never shown, only whether it is held."""
    return export_user(g.user)


@bp.route("/me", methods=["DELETE"])
@participant_required
@bp.response(204)
@bp.doc(security=BEARER)
@documents_errors(bp, 401, 403)
def delete_me():
    """Erase my personal data and my WeChat link, and revoke my tokens. My ledger entries stay
    under their pseudonyms, which nothing links to me any more, so campaign totals and the
    chain do not change. Logging in again later starts a new account."""
    former = erase_user(g.user, utcnow())
    db.session.commit()
    forget_public_names([(campaign_id, pid) for _, campaign_id, pid in former])
    refresh_participations([participation_id for participation_id, _, _ in former])
    return ""


@bp.route("/me/partner-links", methods=["POST"])
@participant_required
@idempotent_write(lambda: f"user:{g.user.id}")
@bp.arguments(PartnerLinkArgs())
@bp.response(201, PartnerLinkSchema)
@bp.alt_response(200, schema=PartnerLinkSchema, description="already linked to me",
                 success=True)
@bp.doc(security=BEARER, parameters=[IDEMPOTENCY_KEY])
@documents_errors(bp, 400, 401, 403, 409, 415, 422)
def post_partner_link(args):
    """Link my account at a partner with the single-use code it showed me, so that its
    records reach me."""
    link, created = link_partner_account(g.user, args["partner"], args["link_code"], utcnow())
    return {"partner": args["partner"], "linked_at": link.created_dt}, 201 if created else 200
