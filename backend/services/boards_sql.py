"""Leaderboards answered from the SQL projections (DESIGN.md "Leaderboards").

Order on every board: metric desc, then the seq that last raised it asc (who got there
first), then pid (teams: key). Public boards list visible participants with a metric above 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, literal, literal_column, select, tuple_

from backend.extensions import db
from backend.models import (
    Campaign,
    ParticipantDay,
    ParticipantWeek,
    Participation,
    Team,
    TeamPeriod,
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


def _board_rows(campaign: Campaign, period: str, start: date):
    """The projection an individual board ranks, and the filter of its shown rows: visible
    (on_board) with a metric above 0, spelled with literals so that the board's partial index
    applies also to prepared (generic) plans."""
    if period == "total":
        model, extra = Participation, ()
    elif period == "day":
        model, extra = ParticipantDay, (ParticipantDay.local_date == start,)
    else:
        model, extra = ParticipantWeek, (ParticipantWeek.week_start == start,)
    shown = (model.campaign_id == campaign.id, *extra, model.on_board,
             model.reduction_mg > literal_column("0"))
    return model, shown


def _board_order(model):
    """Board order as one ascending tuple: metric desc, seq asc, pid asc (the index's)."""
    return (-model.reduction_mg, model.reached_seq, model.pid)


def individual_top(campaign: Campaign, period: str, start: date, limit: int) -> list[Standing]:
    """The top ``limit`` visible participants with a metric above 0 (first rows of the board's
    index)."""
    model, shown = _board_rows(campaign, period, start)
    rows = db.session.execute(
        select(model.pid, model.reduction_mg, model.reached_seq).where(*shown)
        .order_by(*_board_order(model)).limit(limit))
    return [Standing(pid, mg, seq) for pid, mg, seq in rows]


def my_standing(period: str, start: date, participation: Participation) -> tuple[int, int]:
    """(metric mg, seq) of a participant on an individual board."""
    if period == "total":
        return participation.reduction_mg, participation.reached_seq
    model = ParticipantDay if period == "day" else ParticipantWeek
    row = db.session.get(model, (participation.id, start))
    return (row.reduction_mg, row.reached_seq) if row else (0, 0)


def individual_me(campaign: Campaign, period: str, start: date,
                  participation: Participation) -> tuple[int, int]:
    """(rank, metric) of a participant: 1 + the visible participants ahead of them, whether
    or not they are visible themselves (one range of the board's index)."""
    mine_mg, mine_seq = my_standing(period, start, participation)
    model, shown = _board_rows(campaign, period, start)
    ahead = tuple_(*_board_order(model)) < tuple_(
        literal(-mine_mg), literal(mine_seq), literal(participation.pid))
    count = db.session.scalar(select(func.count()).select_from(model).where(*shown, ahead))
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
