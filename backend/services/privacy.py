"""A participant's own data: everything held about them (GET /me/export), and erasure
(DELETE /me). Erasure unlinks the campaign pseudonyms from the person; their ledger entries stay
under those pseudonyms, so totals and the chain do not change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update

from backend.extensions import db
from backend.models import (
    Campaign,
    ChallengeCompletion,
    Checkin,
    DayActionTotal,
    Hold,
    IdempotencyRecord,
    Participation,
    Partner,
    PartnerLink,
    Team,
    User,
    WerunDay,
)
from backend.services.projections import sync_on_board
from campaigns.decimals import mg_to_g, milli_to_number


def export_user(user: User) -> dict:
    """Everything held about a participant. The WeChat identity is only said to be held."""
    campaigns = []
    for participation, slug, team in db.session.execute(
            select(Participation, Campaign.slug, Team.key)
            .join(Campaign, Campaign.id == Participation.campaign_id)
            .outerjoin(Team, Team.id == Participation.team_id)
            .where(Participation.user_id == user.id).order_by(Participation.id)):
        checkins = db.session.scalars(select(Checkin).where(
            Checkin.participation_id == participation.id).order_by(Checkin.id))
        badges = db.session.scalars(select(ChallengeCompletion).where(
            ChallengeCompletion.participation_id == participation.id))
        holds = db.session.scalars(select(Hold).where(
            Hold.participation_id == participation.id).order_by(Hold.id))
        campaigns.append({
            "campaign": slug, "pseudonym": participation.pid, "team": team,
            "joined_on": participation.joined_on, "joined_at": participation.joined_dt,
            "disqualified_at": participation.disqualified_dt,
            "reduction_g": mg_to_g(participation.reduction_mg),
            "records": participation.records,
            "checkins": [{"action": c.action, "date": c.local_date,
                          "quantity": milli_to_number(c.quantity_milli),
                          "reduction_g": mg_to_g(c.reduction_mg), "created_at": c.created_dt}
                         for c in checkins],
            "challenges_completed": [{"key": b.challenge_key, "completed_at": b.completed_dt}
                                     for b in badges],
            "holds": [{"action": h.action, "date": h.local_date, "status": h.status}
                      for h in holds],
        })
    werun = db.session.scalars(select(WerunDay).where(WerunDay.user_id == user.id)
                               .order_by(WerunDay.local_date))
    links = db.session.execute(select(Partner.name, PartnerLink.member_ref, PartnerLink.created_dt)
                               .join(Partner, Partner.id == PartnerLink.partner_id)
                               .where(PartnerLink.user_id == user.id))
    return {
        "profile": {"id": user.id, "nickname": user.nickname,
                    "nickname_status": user.nickname_status, "avatar_url": user.avatar_url,
                    "on_leaderboard": user.on_leaderboard, "created_at": user.created_dt,
                    "login_count": user.login_count},
        "wechat": {"openid_held": user.openid is not None,
                   "unionid_held": user.unionid is not None},
        "campaigns": campaigns,
        "werun_days": [{"date": w.local_date, "steps": w.steps,
                        "counted_steps": w.counted_steps} for w in werun],
        "partner_links": [{"partner": name, "member_ref": ref, "linked_at": at}
                          for name, ref, at in links],
    }


def erase_user(user: User, now: datetime) -> list[tuple[int, int, str]]:
    """Erase a participant's personal data and WeChat link, revoke their tokens and take them
    off every board; returns their former (participation id, campaign id, pid) so that boards
    and caches can be put right after commit. Flushes."""
    mine = select(Participation.id).where(Participation.user_id == user.id)
    former = [tuple(row) for row in db.session.execute(
        select(Participation.id, Participation.campaign_id, Participation.pid)
        .where(Participation.user_id == user.id))]
    user.openid = user.unionid = None
    user.session_key_enc = user.session_key_dt = None
    user.nickname, user.nickname_status, user.avatar_url = None, "none", None
    user.on_leaderboard = False
    user.login_count = 0
    user.token_version += 1  # every token issued so far stops working
    user.updated_dt = now
    sync_on_board(mine)  # off the public boards (also their day and week rows)
    db.session.execute(update(DayActionTotal).where(DayActionTotal.user_id == user.id)
                       .values(user_id=None))
    db.session.execute(update(Participation).where(Participation.user_id == user.id)
                       .values(user_id=None), execution_options={"synchronize_session": False})
    db.session.execute(delete(PartnerLink).where(PartnerLink.user_id == user.id))
    db.session.execute(delete(WerunDay).where(WerunDay.user_id == user.id))
    db.session.execute(delete(IdempotencyRecord).where(
        IdempotencyRecord.principal == f"user:{user.id}"))
    db.session.flush()
    db.session.expire_all()
    return former
