"""Challenges: progress from projections, completion recorded once (with its instant)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from backend.extensions import db
from backend.models import (
    Campaign,
    ChallengeCompletion,
    DayActionTotal,
    LedgerEntry,
    Participation,
)
from backend.services.campaigns import campaign_doc
from campaigns.calendar import local_today
from campaigns.challenges import Facts, progress, target
from campaigns.decimals import mg_to_g


def facts_of(participation: Participation) -> Facts:
    """Two grouped queries over the participant's own rows."""
    day_counted = {(action, day): int(milli) for action, day, milli in db.session.execute(
        select(DayActionTotal.action, DayActionTotal.local_date,
               func.sum(DayActionTotal.counted_milli))
        .where(DayActionTotal.participation_id == participation.id)
        .group_by(DayActionTotal.action, DayActionTotal.local_date))}
    records = dict(db.session.execute(
        select(LedgerEntry.action, func.count())
        .where(LedgerEntry.participation_id == participation.id,
               LedgerEntry.source != "reversal", LedgerEntry.counted_milli > 0)
        .group_by(LedgerEntry.action)).all())
    return Facts(day_counted, records, participation.reduction_mg)


def record_completions(participation: Participation, campaign: Campaign, now: datetime) -> None:
    """Record every challenge the participant has now completed, once. Flushes."""
    doc = campaign_doc(campaign)
    if not doc.challenges or participation.disqualified_dt is not None:
        return
    done = set(db.session.scalars(select(ChallengeCompletion.challenge_key).where(
        ChallengeCompletion.participation_id == participation.id)))
    pending = [c for c in doc.challenges if c.key not in done]
    if not pending:
        return
    facts, today = facts_of(participation), local_today(now, doc.timezone)
    for challenge in pending:
        if progress(challenge, facts, today) < target(challenge):
            continue
        try:
            with db.session.begin_nested():
                db.session.add(ChallengeCompletion(
                    participation_id=participation.id, challenge_key=challenge.key,
                    campaign_id=campaign.id, completed_dt=now))
        except IntegrityError:  # completed by a concurrent request: recorded once
            pass


def challenge_view(participation: Participation, campaign: Campaign, now: datetime):
    """(challenges, badges) of GET /campaigns/{slug}/me."""
    doc = campaign_doc(campaign)
    completions = {c.challenge_key: c.completed_dt for c in db.session.scalars(
        select(ChallengeCompletion).where(
            ChallengeCompletion.participation_id == participation.id))}
    facts, today = facts_of(participation), local_today(now, doc.timezone)
    challenges, badges = [], []
    for challenge in doc.challenges:
        goal = target(challenge)
        value = progress(challenge, facts, today)
        completed_dt = completions.get(challenge.key)
        if completed_dt is not None:
            value = max(value, goal)  # a completed challenge stays complete
        unit = mg_to_g if challenge.kind == "total" else int
        challenges.append({"key": challenge.key, "name": challenge.name,
                           "progress": unit(min(value, goal) if completed_dt else value),
                           "target": unit(goal), "completed_at": completed_dt})
        if completed_dt is not None:
            badges.append({"key": challenge.key, "name": challenge.name,
                           "awarded_at": completed_dt})
    badges.sort(key=lambda badge: badge["awarded_at"])
    return challenges, badges
