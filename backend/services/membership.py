"""Joining campaigns: invite codes, teams, the join day and the campaign pseudonym."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime

from sqlalchemy import select

from backend.errors import ApiError, validation_error
from backend.extensions import db
from backend.models import Campaign, Participation, User
from backend.services.campaigns import campaign_doc
from backend.services.ledger import lock_ledgers
from backend.services.projections import campaign_day_row
from campaigns.calendar import is_intake_open, local_today


def find_participation(campaign: Campaign, user: User) -> Participation | None:
    return db.session.scalars(
        select(Participation).where(Participation.campaign_id == campaign.id,
                                    Participation.user_id == user.id)
        .execution_options(populate_existing=True)
    ).one_or_none()


def require_participation(campaign: Campaign, user: User) -> Participation:
    """The user's participation; 409 campaign.not_joined, or 403 join_denied when disqualified."""
    return check_joined(find_participation(campaign, user))


def check_joined(participation: Participation | None) -> Participation:
    """The participation itself; 409 campaign.not_joined when None, 403 join_denied when
    disqualified."""
    if participation is None:
        raise ApiError(409, "campaign.not_joined")
    if participation.disqualified_dt is not None:
        raise ApiError(403, "campaign.join_denied")
    return participation


def ensure_intake_open(campaign: Campaign, now: datetime):
    """The campaign-local today; 409 campaign.not_active outside starts_on..ends_on+late."""
    doc = campaign_doc(campaign)
    today = local_today(now, doc.timezone)
    if not is_intake_open(today, doc.starts_on, doc.ends_on, doc.late_entry_days):
        raise ApiError(409, "campaign.not_active")
    return today


def _team_for(campaign: Campaign, team_key: str | None):
    mode = campaign_doc(campaign).teams.mode
    if mode == "none":
        if team_key is not None:
            raise validation_error({"team": ["This campaign has no teams."]})
        return None
    if team_key is None:
        if mode == "required":
            raise validation_error({"team": ["Choose a team to join this campaign."]})
        return None
    team = next((t for t in campaign.teams if t.key == team_key), None)
    if team is None:
        raise validation_error({"team": ["No such team in this campaign."]})
    return team


def join_campaign(user: User, campaign: Campaign, invite_code: str | None,
                  team_key: str | None, now: datetime) -> tuple[Participation, bool]:
    """Join (or confirm joining) a campaign; returns the participation and whether it is new.

    409 campaign.not_active when intake is closed; 403 campaign.join_denied for a wrong invite
    code or a disqualified participant; 409 team.conflict when joined with another team.
    """
    today = ensure_intake_open(campaign, now)
    # The head lock serialises joins with each other and with appends to this campaign, so the
    # participant counter and the day series never race.
    ledger = lock_ledgers([campaign.id])[campaign.id]
    existing = find_participation(campaign, user)
    if existing is not None:
        if existing.disqualified_dt is not None:
            raise ApiError(403, "campaign.join_denied")
        current = existing.team.key if existing.team else None
        if team_key is not None and team_key != current:
            raise ApiError(409, "team.conflict")
        return existing, False
    expected = campaign_doc(campaign).invite_code
    if expected is not None and not hmac.compare_digest(
            (invite_code or "").encode(), expected.encode()):
        raise ApiError(403, "campaign.join_denied")
    team = _team_for(campaign, team_key)
    participation = Participation(
        campaign_id=campaign.id, user_id=user.id, pid=secrets.token_hex(8),
        team_id=team.id if team else None, joined_on=today, joined_dt=now,
        reduction_mg=0, records=0, reached_seq=0,
        on_board=user.on_leaderboard and user.openid is not None,
    )
    db.session.add(participation)
    ledger.participants += 1
    campaign_day_row(campaign.id, today).new_participants += 1
    db.session.flush()
    return participation, True


def joined_slugs(user: User) -> list[str]:
    """Slugs of the campaigns the user joined, in joining order."""
    return list(db.session.scalars(
        select(Campaign.slug).join(Participation, Participation.campaign_id == Campaign.id)
        .where(Participation.user_id == user.id).order_by(Participation.id)
    ))
