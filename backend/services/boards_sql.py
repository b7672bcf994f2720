"""Leaderboards answered from the SQL projections (DESIGN.md "Leaderboards").

Order on every board: metric desc, then the seq that last raised it asc (who got there
first), then pid (teams: key). Public boards list visible participants with a metric above 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, func, or_, select

from backend.extensions import db
from backend.models import (
    Campaign,
    ParticipantDay,
    ParticipantWeek,
    Participation,
    Team,
    TeamPeriod,
    User,
)
from backend.models.projections import TOTAL_PERIOD_START


@dataclass(frozen=True)
class Standing:
    """One row of a board: who (pid or team key), the metric, and the tie-break seq."""

    member: str
    metric_mg: int
    seq: int
    name: str = ""
    avatar_url: str | None = None
    total_mg: int | None = None  # teams: the total behind an average
    active_members: int | None = None

    @property
    def order(self) -> tuple:
        return (-self.metric_mg, self.seq, self.member)


def _period_source(period: str, start: date):
    """The projection (model, metric column, seq column, extra filter) of a period."""
    if period == "total":
        return Participation, Participation.reduction_mg, Participation.reached_seq, True
    if period == "day":
        return (ParticipantDay, ParticipantDay.reduction_mg, ParticipantDay.reached_seq,
                ParticipantDay.local_date == start)
    return (ParticipantWeek, ParticipantWeek.reduction_mg, ParticipantWeek.reached_seq,
            ParticipantWeek.week_start == start)


def visible_clause():
    """Who public boards show: not disqualified, on the leaderboard, not erased."""
    return and_(Participation.disqualified_dt.is_(None), User.on_leaderboard.is_(True),
                User.openid.is_not(None))


def _individual_query(campaign: Campaign, period: str, start: date):
    model, metric, seq, extra = _period_source(period, start)
    query = select(Participation.pid, metric, seq, User.nickname, User.nickname_status,
                   User.avatar_url)
    if model is not Participation:
        query = query.select_from(model).join(
            Participation, Participation.id == model.participation_id)
    query = query.join(User, User.id == Participation.user_id)
    return query.where(Participation.campaign_id == campaign.id, extra), metric, seq


def _name(nickname: str | None, status: str) -> str:
    return nickname if nickname and status == "pass" else User.PUBLIC_NICKNAME_FALLBACK


def individual_top(campaign: Campaign, period: str, start: date, limit: int) -> list[Standing]:
    """The top ``limit`` visible participants with a metric above 0."""
    query, metric, seq = _individual_query(campaign, period, start)
    rows = db.session.execute(
        query.where(visible_clause(), metric > 0)
        .order_by(metric.desc(), seq.asc(), Participation.pid.asc()).limit(limit))
    return [Standing(pid, mg, s, _name(nick, status), avatar)
            for pid, mg, s, nick, status, avatar in rows]


def individual_me(campaign: Campaign, period: str, start: date,
                  participation: Participation) -> tuple[int, int]:
    """(rank, metric) of a participant: 1 + the visible participants ahead of them, whether
    or not they are visible themselves."""
    model = _period_source(period, start)[0]
    if model is Participation:
        mine_mg, mine_seq = participation.reduction_mg, participation.reached_seq
    else:
        key = (participation.id, start)
        row = db.session.get(model, key)
        mine_mg, mine_seq = (row.reduction_mg, row.reached_seq) if row else (0, 0)
    query, metric, seq = _individual_query(campaign, period, start)
    ahead = or_(metric > mine_mg, and_(metric == mine_mg, or_(
        seq < mine_seq, and_(seq == mine_seq, Participation.pid < participation.pid))))
    count = db.session.scalar(
        select(func.count()).select_from(
            query.where(visible_clause(), metric > 0, ahead).subquery()))
    return count + 1, mine_mg


def team_standings(campaign: Campaign, period: str, start: date, ranking: str,
                   min_active: int) -> list[Standing]:
    """Every ranked team, in board order: total or floor(mg / active members); teams below
    min_active_members are not ranked."""
    period_start = TOTAL_PERIOD_START if period == "total" else start
    rows = db.session.execute(
        select(Team.key, Team.name, TeamPeriod.reduction_mg, TeamPeriod.reached_seq,
               TeamPeriod.active_members)
        .join(TeamPeriod, TeamPeriod.team_id == Team.id)
        .where(Team.campaign_id == campaign.id, TeamPeriod.period == period,
               TeamPeriod.period_start == period_start))
    standings = []
    for key, name, mg, seq, active in rows:
        if active < max(min_active, 1) or mg <= 0:
            continue
        metric = mg // active if ranking == "average" else mg
        standings.append(Standing(key, metric, seq, name, None, mg, active))
    return sorted(standings, key=lambda s: s.order)
