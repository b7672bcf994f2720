"""Frozen boards: after a campaign's ``leaderboard.freeze_at`` the public boards show the
standings as of that instant (entries with created_dt <= freeze_at), computed once from the
ledger; ``me`` stays live and is ranked against them."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import and_, case, delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from backend.extensions import db
from backend.models import (
    Campaign,
    FreezeSnapshot,
    FrozenBoard,
    LedgerEntry,
    Participation,
    Team,
)
from backend.models.projections import TOTAL_PERIOD_START
from backend.services.boards_sql import Standing
from backend.services.campaigns import campaign_doc
from campaigns.calendar import week_start

# Entries of the last instants before the freeze may still be committing: wait this long.
SETTLE = timedelta(seconds=5)


def freeze_instant(campaign: Campaign, now: datetime) -> datetime | None:
    """The freeze instant once the boards are frozen (and settled), else None."""
    freeze = campaign_doc(campaign).freeze_at
    return freeze if freeze is not None and now >= freeze + SETTLE else None


def _aggregate(campaign: Campaign, freeze: datetime) -> dict:
    """{(kind, period, start, member): [mg, seq, active]} as of the freeze."""
    positive_seq = func.max(case((LedgerEntry.reduction_mg > 0, LedgerEntry.seq), else_=0))
    rows = db.session.execute(
        select(Participation.pid, Participation.team_id, LedgerEntry.local_date,
               func.sum(LedgerEntry.reduction_mg), positive_seq)
        .join(Participation, Participation.id == LedgerEntry.participation_id)
        .where(LedgerEntry.campaign_id == campaign.id, LedgerEntry.created_dt <= freeze)
        .group_by(Participation.pid, Participation.team_id, LedgerEntry.local_date))
    teams = {team.id: team.key for team in db.session.scalars(
        select(Team).where(Team.campaign_id == campaign.id))}
    people: dict = defaultdict(lambda: [0, 0])
    for pid, team_id, day, mg, seq in rows:
        for period, start in (("total", TOTAL_PERIOD_START), ("day", day),
                              ("week", week_start(day))):
            cell = people[(period, start, pid, team_id)]
            cell[0] += int(mg)
            cell[1] = max(cell[1], int(seq or 0))
    boards: dict = {}
    for (period, start, pid, team_id), (mg, seq) in people.items():
        boards[("individuals", period, start, pid)] = [mg, seq, 0]
        if team_id is not None:
            cell = boards.setdefault(("teams", period, start, teams[team_id]), [0, 0, 0])
            cell[0] += mg
            cell[1] = max(cell[1], seq)
            cell[2] += 1 if mg > 0 else 0
    return boards


def ensure_snapshot(campaign: Campaign, freeze: datetime) -> None:
    """Compute the frozen boards once per freeze instant, in their own transaction."""
    snapshot = db.session.get(FreezeSnapshot, campaign.id)
    if snapshot is not None and snapshot.freeze_dt == freeze:
        return
    db.session.commit()
    db.session.execute(delete(FrozenBoard).where(FrozenBoard.campaign_id == campaign.id))
    db.session.execute(delete(FreezeSnapshot).where(FreezeSnapshot.campaign_id == campaign.id))
    db.session.add_all(FrozenBoard(campaign_id=campaign.id, kind=kind, period=period,
                                   period_start=start, member=member, reduction_mg=mg,
                                   reached_seq=seq, active_members=active)
                       for (kind, period, start, member), (mg, seq, active)
                       in _aggregate(campaign, freeze).items())
    db.session.add(FreezeSnapshot(campaign_id=campaign.id, freeze_dt=freeze))
    try:
        db.session.commit()
    except IntegrityError:  # another worker computed it meanwhile
        db.session.rollback()


def _frozen_individuals(campaign: Campaign, period: str, start):
    return (select(FrozenBoard.member, FrozenBoard.reduction_mg, FrozenBoard.reached_seq)
            .join(Participation, and_(Participation.campaign_id == campaign.id,
                                      Participation.pid == FrozenBoard.member))
            .where(FrozenBoard.campaign_id == campaign.id, FrozenBoard.kind == "individuals",
                   FrozenBoard.period == period, FrozenBoard.period_start == start,
                   FrozenBoard.reduction_mg > 0, Participation.on_board))


def frozen_top(campaign: Campaign, period: str, start, limit: int) -> list[tuple[str, int, int]]:
    query = _frozen_individuals(campaign, period, start).order_by(
        FrozenBoard.reduction_mg.desc(), FrozenBoard.reached_seq, FrozenBoard.member)
    return [tuple(row) for row in db.session.execute(query.limit(limit))]


def frozen_rank(campaign: Campaign, period: str, start, pid: str, mg: int, seq: int) -> int:
    """1 + the frozen public entries ahead of a live (mg, seq, pid)."""
    ahead = or_(FrozenBoard.reduction_mg > mg, and_(FrozenBoard.reduction_mg == mg, or_(
        FrozenBoard.reached_seq < seq,
        and_(FrozenBoard.reached_seq == seq, FrozenBoard.member < pid))))
    query = _frozen_individuals(campaign, period, start).where(ahead)
    return db.session.scalar(select(func.count()).select_from(query.subquery())) + 1


def frozen_teams(campaign: Campaign, period: str, start) -> list[Standing]:
    teams = campaign_doc(campaign).teams
    names = dict(db.session.execute(select(Team.key, Team.name).where(
        Team.campaign_id == campaign.id)).all())
    standings = []
    for member, mg, seq, active in db.session.execute(
            select(FrozenBoard.member, FrozenBoard.reduction_mg, FrozenBoard.reached_seq,
                   FrozenBoard.active_members)
            .where(FrozenBoard.campaign_id == campaign.id, FrozenBoard.kind == "teams",
                   FrozenBoard.period == period, FrozenBoard.period_start == start)):
        if active < max(teams.min_active_members, 1) or mg <= 0:
            continue
        metric = mg // active if teams.ranking == "average" else mg
        standings.append(Standing(member, metric, seq, names.get(member, member), None, mg,
                                  active))
    return sorted(standings, key=lambda s: s.order)
