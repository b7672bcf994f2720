"""Projections of the ledger: kept with each append (``backend.services.appends``),
recomputed by `flask ledger rebuild`; here the board visibility they copy and helpers."""

from __future__ import annotations

from datetime import date

from sqlalchemy import and_, exists, select, update

from backend.extensions import db
from backend.models import (
    CampaignDay,
    ParticipantDay,
    ParticipantWeek,
    Participation,
    User,
)


def _row(model, defaults: dict, **key):
    """The projection row with this primary key, created (zeroed) when missing."""
    row = db.session.get(model, tuple(key.values()) if len(key) > 1 else next(iter(key.values())))
    if row is None:
        row = model(**key, **defaults)
        db.session.add(row)
    return row


def team_metric(row, ranking: str, min_active: int) -> int:
    """A team's board metric (total or average per active member) from a row with
    ``reduction_mg`` and ``active_members``; 0 (off the board) below the minimum active."""
    if row is None or row.active_members < max(min_active, 1) or row.reduction_mg <= 0:
        return 0
    return row.reduction_mg // row.active_members if ranking == "average" else row.reduction_mg


def sync_on_board(participation_ids) -> None:
    """Recompute who the public boards show (not disqualified, on_leaderboard, not erased) for
    these participations (a select of ids) and copy it to their day and week rows."""
    db.session.flush()
    shown = exists().where(User.id == Participation.user_id, User.on_leaderboard.is_(True),
                           User.openid.is_not(None))
    db.session.execute(
        update(Participation).where(Participation.id.in_(participation_ids))
        .values(on_board=and_(Participation.disqualified_dt.is_(None), shown)),
        execution_options={"synchronize_session": False})
    for model in (ParticipantDay, ParticipantWeek):
        db.session.execute(
            update(model).where(model.participation_id.in_(participation_ids))
            .values(on_board=select(Participation.on_board)
                    .where(Participation.id == model.participation_id).scalar_subquery()),
            execution_options={"synchronize_session": False})
    db.session.expire_all()


def campaign_day_row(campaign_id: int, day: date) -> CampaignDay:
    return _row(CampaignDay, {"reduction_mg": 0, "records": 0, "active_participants": 0,
                              "new_participants": 0}, campaign_id=campaign_id, local_date=day)
