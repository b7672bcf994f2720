"""Challenges: progress from projections, completion recorded once (with its instant)."""

from __future__ import annotations

import functools
from datetime import datetime

from sqlalchemy import bindparam, func, select

from backend.extensions import db
from backend.models import (
    Campaign,
    ChallengeCompletion,
    DayActionTotal,
    LedgerEntry,
    Participation,
)
from backend.services.campaigns import campaign_doc
from backend.services.statements import upsert_insert
from campaigns.calendar import local_today
from campaigns.challenges import Facts, progress, target
from campaigns.decimals import mg_to_g


@functools.cache
def _facts_statements() -> tuple:
    by_participation = bindparam("participation_id")
    return (
        select(DayActionTotal.action, DayActionTotal.local_date,
               func.sum(DayActionTotal.counted_milli))
        .where(DayActionTotal.participation_id == by_participation)
        .group_by(DayActionTotal.action, DayActionTotal.local_date),
        select(LedgerEntry.action, func.count())
        .where(LedgerEntry.participation_id == by_participation,
               LedgerEntry.source != "reversal", LedgerEntry.counted_milli > 0)
        .group_by(LedgerEntry.action),
        select(ChallengeCompletion.challenge_key)
        .where(ChallengeCompletion.participation_id == by_participation),
        select(ChallengeCompletion.challenge_key, ChallengeCompletion.completed_dt)
        .where(ChallengeCompletion.participation_id == by_participation),
    )


def _facts_queries(participation_id: int) -> list[tuple]:
    """Two grouped queries over the participant's own rows: counted per (action, day), and
    records that counted something per action (as calls of :func:`run_together`, built
    once)."""
    return [(statement, {"participation_id": participation_id})
            for statement in _facts_statements()[:2]]


def _facts(participation: Participation, day_rows, record_rows) -> Facts:
    return Facts({(action, day): int(milli) for action, day, milli in day_rows},
                 {action: count for action, count in record_rows},
                 participation.reduction_mg)


def completion_reads(participation: Participation, campaign: Campaign) -> list:
    """The reads :func:`record_completions` needs after an append: none when the campaign
    has no challenges or the participant is disqualified."""
    if not campaign_doc(campaign).challenges or participation.disqualified_dt is not None:
        return []
    return [(_facts_statements()[2], {"participation_id": participation.id}),
            *_facts_queries(participation.id)]


def record_completions(participation: Participation, campaign: Campaign, now: datetime,
                       rows: list) -> None:
    """Record every challenge the participant has now completed, once, from the ``rows`` of
    :func:`completion_reads` (read after the append, under the chain-head lock)."""
    doc = campaign_doc(campaign)
    done, day_rows, record_rows = rows
    done = {key for (key,) in done}
    pending = [c for c in doc.challenges if c.key not in done]
    if not pending:
        return
    facts, today = _facts(participation, day_rows, record_rows), local_today(now, doc.timezone)
    completed = [{"participation_id": participation.id, "challenge_key": challenge.key,
                  "campaign_id": campaign.id, "completed_dt": now}
                 for challenge in pending if progress(challenge, facts, today) >= target(challenge)]
    if completed:  # a concurrent request may have recorded one: recorded once
        table = ChallengeCompletion.__table__
        db.session.execute(upsert_insert(table).values(completed).on_conflict_do_nothing())


def view_queries(participation_id: int | None) -> list[tuple]:
    """The reads of :func:`challenge_view`: completions, then the facts."""
    return [(_facts_statements()[3], {"participation_id": participation_id}),
            *_facts_queries(participation_id)]


def challenge_view(participation: Participation, campaign: Campaign, now: datetime, rows):
    """(challenges, badges) of GET /campaigns/{slug}/me from ``rows``, the results of
    :func:`view_queries` (run by the caller with its other reads, in one round trip)."""
    doc = campaign_doc(campaign)
    completion_rows, day_rows, record_rows = rows
    completions = dict(completion_rows)
    facts = _facts(participation, day_rows, record_rows)
    today = local_today(now, doc.timezone)
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
