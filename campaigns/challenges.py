"""Challenge progress (DESIGN.md "Challenges"): pure functions of a participant's facts.

streak: days in a row meeting a per-day minimum of an action (the current run: it must reach
  today or yesterday); count per record: counted records of an action; count per day: days
  with a counted record of an action; total: grams reached in the campaign.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from campaigns.document_model import Challenge


@dataclass(frozen=True)
class Facts:
    """What progress is computed from, for one participant in one campaign.

    day_counted: {(action, date): counted quantity in thousandths, all sources}.
    records: {action: records that counted something}.
    total_mg: the campaign total.
    """

    day_counted: Mapping[tuple[str, date], int]
    records: Mapping[str, int]
    total_mg: int


def current_streak(days: Iterable[date], today: date) -> int:
    """Length of the run of consecutive days ending on the latest day, if that day is today or
    yesterday (a streak that missed a whole day is broken); else 0."""
    qualifying = set(days)
    if not qualifying:
        return 0
    latest = max(qualifying)
    if latest < today - timedelta(days=1):
        return 0
    run = 0
    while latest - timedelta(days=run) in qualifying:
        run += 1
    return run


def progress(challenge: Challenge, facts: Facts, today: date) -> int:
    """Progress toward the target: days (streak, count per day), records (count per record)
    or milligrams (total)."""
    if challenge.kind == "total":
        return facts.total_mg
    if challenge.kind == "streak":
        days = [day for (action, day), milli in facts.day_counted.items()
                if action == challenge.action and milli > 0
                and milli >= (challenge.min_milli or 0)]
        return current_streak(days, today)
    if challenge.kind == "count" and challenge.per == "day":
        return sum(1 for (action, _), milli in facts.day_counted.items()
                   if action == challenge.action and milli > 0)
    if challenge.kind == "count":
        return facts.records.get(challenge.action, 0)
    raise ValueError(f"unknown challenge kind {challenge.kind!r}")


def target(challenge: Challenge) -> int:
    """The target in progress units (milligrams for a total challenge)."""
    return challenge.target_mg if challenge.kind == "total" else challenge.target


def completed(challenge: Challenge, facts: Facts, today: date) -> bool:
    return progress(challenge, facts, today) >= target(challenge)
