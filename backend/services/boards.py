"""Leaderboards: answered from Redis when its board is current, else from SQL (and the
missing seqs are replayed into Redis after the response). Both give the same answer."""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import redis
from flask import current_app, g
from sqlalchemy import bindparam, select
from sqlalchemy.exc import SQLAlchemyError

from backend.extensions import db, redis_holder
from backend.models import (
    Campaign,
    CampaignLedger,
    LedgerEntry,
    ParticipantDay,
    ParticipantWeek,
    Participation,
    Team,
    TeamPeriod,
    User,
)
from backend.models.projections import TOTAL_PERIOD_START
from backend.services import boards_sql
from backend.services.appends import MemberScores
from backend.services.boards_redis import RedisBoards, board_key
from backend.services.campaigns import campaign_doc
from backend.services.freeze import (
    ensure_snapshot,
    freeze_instant,
    frozen_rank,
    frozen_teams,
    frozen_top,
)
from backend.services.projections import team_metric
from backend.services.statements import run_together
from campaigns.calendar import week_start
from campaigns.decimals import mg_to_g

log = logging.getLogger(__name__)

SETTLE = timedelta(seconds=2)
REPLAY_BATCH = 5000
LOCK_SECONDS = 10
NAME_SECONDS = 10
NAME_CACHE_SIZE = 100_000


@dataclass(frozen=True)
class BoardView:
    entries: list[dict]
    me: dict | None
    source: str


def redis_boards() -> RedisBoards | None:
    client = redis_holder.client(current_app)
    if client is None:
        return None
    boards = current_app.extensions.get("tanpu_redis_boards")
    if boards is None or boards.client is not client:
        boards = RedisBoards(client)
        current_app.extensions["tanpu_redis_boards"] = boards
    return boards


def _start_label(period: str, start: date | None) -> str:
    return "all" if period == "total" else start.isoformat()


def settled_seq(campaign: Campaign, now: datetime) -> int:
    """The highest seq whose entry is more than 2 s old (later ones may still be applying).
    Walks the (campaign, seq) index back from the head: only the last seconds' entries are
    passed over."""
    return db.session.scalar(
        select(LedgerEntry.seq).where(LedgerEntry.campaign_id == campaign.id,
                                      LedgerEntry.created_dt < now - SETTLE)
        .order_by(LedgerEntry.seq.desc()).limit(1)) or 0


def redis_current(boards: RedisBoards, campaign: Campaign, now: datetime,
                  watermark: int | None = None, head_seq: int | None = None) -> bool:
    """Whether the campaign's Redis boards hold every settled seq. Without a watermark (never
    built, or flushed) only a campaign with no entries at all has right (empty) boards. A
    watermark at the head needs no more reading; one below it is compared with the settled
    seq (entries of the last 2 s may still be applying)."""
    if watermark is None:
        watermark = boards.watermark(campaign.id)
    if head_seq is None:
        head_seq = db.session.get(CampaignLedger, campaign.id).head_seq
    if watermark < 0:
        return head_seq == 0
    return watermark >= head_seq or watermark >= settled_seq(campaign, now)


def queue_scores(boards: RedisBoards, pipe, scores: MemberScores) -> None:
    """Queue the absolute scores of one participant (and their team) on the boards of the
    total, the day and its week."""
    starts = {"total": None, "day": scores.day, "week": week_start(scores.day)}
    for period, (mg, seq) in scores.individual.items():
        key = board_key(scores.campaign_id, "individuals", period,
                        _start_label(period, starts[period]))
        boards.set_score(pipe, key, scores.pid, mg, seq, scores.version)
    for period, (metric, seq) in scores.team.items():
        key = board_key(scores.campaign_id, "teams", period, _start_label(period, starts[period]))
        boards.set_score(pipe, key, scores.team_key, metric, seq, scores.version)


def refresh_member(boards: RedisBoards, pipe, campaign: Campaign, participation: Participation,
                   day: date, version: int) -> None:
    """Queue one participant's scores for ``day`` read from the SQL projections; ``version``
    is a head seq read before them (their state is at least that recent)."""
    visible = participation.on_board
    week = week_start(day)
    day_row = db.session.get(ParticipantDay, (participation.id, day))
    week_row = db.session.get(ParticipantWeek, (participation.id, week))
    individual = {}
    for period, row in (("total", participation), ("day", day_row), ("week", week_row)):
        mg, seq = (row.reduction_mg, row.reached_seq) if row is not None else (0, 0)
        individual[period] = (mg if visible and mg > 0 else 0, seq)
    team_key, team = None, {}
    if participation.team_id is not None:
        teams = campaign_doc(campaign).teams
        team_key = db.session.get(Team, participation.team_id).key
        for period, start in (("total", TOTAL_PERIOD_START), ("day", day), ("week", week)):
            row = db.session.get(TeamPeriod, (participation.team_id, period, start))
            team[period] = (team_metric(row, teams.ranking, teams.min_active_members),
                            row.reached_seq if row else 0)
    queue_scores(boards, pipe, MemberScores(campaign.id, day, participation.pid, individual,
                                            team_key, team, version))


def apply_entries(batches: list[tuple[list[MemberScores], list[tuple[int, int]]]]) -> None:
    """After commit: put the scores an append returned on the Redis boards (no re-read) and
    mark its seqs applied. Redis failing here only leaves the boards behind (reads fall back
    to SQL and replay): the write itself is committed and must be answered as such."""
    boards = redis_boards()
    if boards is None or not batches:
        return
    try:
        by_campaign: dict[int, list[int]] = {}
        pipe = boards.client.pipeline(transaction=False)
        for scores, seqs in batches:
            for member in scores:
                queue_scores(boards, pipe, member)
            for campaign_id, seq in seqs:
                by_campaign.setdefault(campaign_id, []).append(seq)
        for campaign_id, seqs in by_campaign.items():  # after the scores: one round trip
            boards.advance(campaign_id, seqs, pipe)
        pipe.execute()
    except redis.RedisError as error:
        log.warning("leaderboards: board update after commit failed (%s)",
                    type(error).__name__)


def replay_missing(campaign_id: int, upto_seq: int) -> None:
    """Apply the seqs between the watermark and ``upto_seq`` (a batch at a time), under a
    short Redis lock so that only one worker replays a campaign at once."""
    boards = redis_boards()
    if boards is None:
        return
    lock = boards.client.lock(f"tanpu:boards:{campaign_id}:replay", timeout=LOCK_SECONDS,
                              blocking=False)
    try:
        if not lock.acquire():
            return
        try:
            start = max(boards.watermark(campaign_id), 0)
            rows = db.session.execute(
                select(LedgerEntry.participation_id, LedgerEntry.local_date, LedgerEntry.seq)
                .where(LedgerEntry.campaign_id == campaign_id, LedgerEntry.seq > start,
                       LedgerEntry.seq <= upto_seq)
                .order_by(LedgerEntry.seq).limit(REPLAY_BATCH)).all()
            # Scores read afresh (not from rows this request loaded earlier) are at least as
            # recent as upto_seq, a head already committed: their version.
            db.session.expire_all()
            campaign = db.session.get(Campaign, campaign_id)
            pipe = boards.client.pipeline(transaction=False)
            for participation_id, day, _seq in rows:
                refresh_member(boards, pipe, campaign,
                               db.session.get(Participation, participation_id), day, upto_seq)
            pipe.execute()
            if rows:
                boards.advance(campaign_id, [row.seq for row in rows])
        finally:
            lock.release()
    except (redis.RedisError, SQLAlchemyError) as error:
        db.session.rollback()
        log.warning("leaderboards: replay failed (%s)", type(error).__name__)


def _public_names(campaign: Campaign, pids: list[str]) -> dict[str, tuple[str, str | None]]:
    """pid → (public name, avatar), kept per process for NAME_SECONDS: the top of a board
    rarely changes, and a name change reaches the boards within seconds (at once in the
    process that served it: forget_public_names)."""
    cache = current_app.extensions.setdefault("tanpu_board_names", {})
    now = time.monotonic()
    names, missing = {}, []
    for pid in pids:
        hit = cache.get((campaign.id, pid))
        if hit is not None and hit[0] > now:
            names[pid] = hit[1]
        else:
            missing.append(pid)
    if missing:
        if len(cache) > NAME_CACHE_SIZE:
            cache.clear()
        for pid, nick, status, avatar in db.session.execute(
                select(Participation.pid, User.nickname, User.nickname_status, User.avatar_url)
                .join(User, User.id == Participation.user_id)
                .where(Participation.campaign_id == campaign.id, Participation.pid.in_(missing))):
            name = nick if nick and status == "pass" else User.PUBLIC_NICKNAME_FALLBACK
            names[pid] = (name, avatar)
            cache[(campaign.id, pid)] = (now + NAME_SECONDS, names[pid])
    return names


def forget_public_names(members: list[tuple[int, str]]) -> None:
    """After a profile change: this process shows the new name (or none) of these (campaign
    id, pid) at once."""
    cache = current_app.extensions.get("tanpu_board_names")
    if cache:
        for member in members:
            cache.pop(member, None)


def members_of(user: User) -> list[tuple[int, str]]:
    return [tuple(row) for row in db.session.execute(
        select(Participation.campaign_id, Participation.pid)
        .where(Participation.user_id == user.id))]


def _individual_entries(campaign: Campaign, standings) -> list[dict]:
    """Board entries for (pid, metric, seq) rows in order, with public names and avatars."""
    names = _public_names(campaign, [pid for pid, _, _ in standings])
    entries = []
    for rank, (pid, mg, _seq) in enumerate(standings, start=1):
        name, avatar = names.get(pid, (User.PUBLIC_NICKNAME_FALLBACK, None))
        entries.append({"rank": rank, "name": name, "avatar_url": avatar,
                        "reduction_g": mg_to_g(mg)})
    return entries


@functools.cache
def _team_rows_query():
    teams, periods = Team.__table__, TeamPeriod.__table__
    return (select(teams.c.key, periods.c.reduction_mg, periods.c.reached_seq,
                   periods.c.active_members)
            .join(periods, periods.c.team_id == teams.c.id)
            .where(teams.c.campaign_id == bindparam("campaign_id"),
                   periods.c.period == bindparam("period"),
                   periods.c.period_start == bindparam("period_start")))


def _team_rows(campaign: Campaign, period: str, start: date | None) -> dict[str, tuple]:
    """Team key → its row of the period (``reduction_mg``, ``reached_seq``,
    ``active_members``), as plain rows from a statement built once."""
    period_start = TOTAL_PERIOD_START if start is None else start
    (rows,) = run_together([(_team_rows_query(), {"campaign_id": campaign.id, "period": period,
                                                  "period_start": period_start})])
    return {row.key: row for row in rows}


def read_board(campaign: Campaign, board: str, period: str, start: date | None, limit: int,
               participation: Participation | None, now: datetime,
               head_seq: int | None = None) -> BoardView:
    """The board's top ``limit`` and my standing; from Redis when its watermark has reached
    every settled seq, else from SQL (and the missing seqs replay after the response). After
    the campaign's freeze the public entries are those of the freeze; ``me`` stays live.
    ``head_seq``: the chain head, when the caller read it already."""
    freeze = freeze_instant(campaign, now)
    if freeze is not None:
        ensure_snapshot(campaign, freeze)
        return _frozen(campaign, board, period, start, limit, participation)
    boards = redis_boards()
    if boards is not None:
        try:
            view = _from_redis(boards, campaign, board, period, start, limit, participation,
                               now, head_seq)
            if view is not None:
                return view
        except redis.RedisError as error:
            log.warning("leaderboards: redis read failed (%s)", type(error).__name__)
    return _from_sql(campaign, board, period, start, limit, participation)


def _from_sql(campaign, board, period, start, limit, participation) -> BoardView:
    day = start or TOTAL_PERIOD_START
    if board == "individuals":
        top = boards_sql.individual_top(campaign, period, day, limit)
        entries = _individual_entries(campaign, [(s.member, s.metric_mg, s.seq) for s in top])
        me = None
        if participation is not None:
            rank, mg = boards_sql.individual_me(campaign, period, day, participation)
            me = {"rank": rank, "reduction_g": mg_to_g(mg)}
        return BoardView(entries, me, "sql")
    teams = campaign_doc(campaign).teams
    standings = boards_sql.team_standings(campaign, period, day, teams.ranking,
                                          teams.min_active_members)
    return BoardView(_team_entries(standings[:limit]), _my_team(standings, participation), "sql")


def _team_entries(standings) -> list[dict]:
    return [{"rank": rank, "key": s.member, "name": s.name, "avatar_url": None,
             "reduction_g": mg_to_g(s.metric_mg), "total_g": mg_to_g(s.total_mg),
             "active_members": s.active_members}
            for rank, s in enumerate(standings, start=1)]


def _my_team(standings, participation: Participation | None) -> dict | None:
    if participation is None or participation.team_id is None:
        return None
    key = participation.team_key
    for rank, standing in enumerate(standings, start=1):
        if standing.member == key:
            return {"rank": rank, "reduction_g": mg_to_g(standing.metric_mg)}
    return None


def _from_redis(boards: RedisBoards, campaign, board, period, start, limit, participation,
                now, head_seq) -> BoardView | None:
    """The board from Redis, or None when Redis is behind. The watermark, the top and my
    member come in one round trip; my rank in a second."""
    key = board_key(campaign.id, board, period, _start_label(period, start))
    member_id = None
    if participation is not None:
        member_id = participation.pid if board == "individuals" else participation.team_key
    watermark, top, member = boards.snapshot(campaign.id, key, limit, member_id)
    if not redis_current(boards, campaign, now, watermark, head_seq):
        return None
    if board == "individuals":
        me = None
        if participation is not None:
            mg, seq = (member[1], member[2]) if member is not None \
                else boards_sql.my_standing(period, start, participation)
            me = {"rank": boards.rank(key, participation.pid, mg, seq, member),
                  "reduction_g": mg_to_g(mg)}
        return BoardView(_individual_entries(campaign, top), me, "redis")
    rows = _team_rows(campaign, period, start)
    teams = campaign_doc(campaign).teams  # cached with the document: no query for names
    names = {team.key: team.name for team in teams.teams}
    standings = [boards_sql.Standing(team_key, metric, seq, names.get(team_key, team_key), None,
                                     rows[team_key].reduction_mg, rows[team_key].active_members)
                 for team_key, metric, seq in top if team_key in rows]
    me = None
    if member_id is not None:
        row = rows.get(member_id)
        metric = team_metric(row, teams.ranking, teams.min_active_members)
        if metric > 0:
            me = {"rank": boards.rank(key, member_id, metric, row.reached_seq, member),
                  "reduction_g": mg_to_g(metric)}
    return BoardView(_team_entries(standings), me, "redis")


def apply_appended_entries(response):
    """after_request: once a write committed, mirror the entries it appended on the boards."""
    appended = g.pop("tanpu_appended", None)
    if appended and response.status_code < 400:
        apply_entries(appended)
    return response


def total_rank(campaign: Campaign, participation: Participation, now: datetime,
               head_seq: int | None = None) -> int:
    """My rank on the campaign's total board (1 + the visible participants ahead; after the
    freeze, ahead on the frozen board)."""
    freeze = freeze_instant(campaign, now)
    if freeze is not None:
        ensure_snapshot(campaign, freeze)
        return frozen_rank(campaign, "total", TOTAL_PERIOD_START, participation.pid,
                           participation.reduction_mg, participation.reached_seq)
    boards = redis_boards()
    if boards is not None:
        try:
            key = board_key(campaign.id, "individuals", "total", "all")
            watermark, _, member = boards.snapshot(campaign.id, key, 0, participation.pid)
            if redis_current(boards, campaign, now, watermark, head_seq):
                return boards.rank(key, participation.pid, participation.reduction_mg,
                                   participation.reached_seq, member)
        except redis.RedisError as error:
            log.warning("leaderboards: redis read failed (%s)", type(error).__name__)
    return boards_sql.individual_me(campaign, "total", TOTAL_PERIOD_START, participation)[0]


def refresh_user(user: User) -> None:
    """After commit: a participant's visibility changed (on_leaderboard); put every board they
    are on right."""
    refresh_participations(db.session.scalars(
        select(Participation.id).where(Participation.user_id == user.id)).all())


def refresh_participations(participation_ids: list[int]) -> None:
    """After commit: put every board these participations are on right (visibility changed).
    Only their own members move, so the watermark is untouched."""
    boards = redis_boards()
    if boards is None or not participation_ids:
        return
    try:
        # The heads first: the rows read after them are at least that recent (their version).
        heads = dict(db.session.execute(
            select(CampaignLedger.campaign_id, CampaignLedger.head_seq).where(
                CampaignLedger.campaign_id.in_(select(Participation.campaign_id).where(
                    Participation.id.in_(participation_ids))))).all())
        db.session.expire_all()
        pipe = boards.client.pipeline(transaction=False)
        for participation in db.session.scalars(
                select(Participation).where(Participation.id.in_(participation_ids))):
            campaign = db.session.get(Campaign, participation.campaign_id)
            days = db.session.scalars(select(ParticipantDay.local_date).where(
                ParticipantDay.participation_id == participation.id)).all()
            for day in days or [campaign.starts_on]:
                refresh_member(boards, pipe, campaign, participation, day,
                               heads[participation.campaign_id])
        pipe.execute()
    except redis.RedisError as error:
        log.warning("leaderboards: redis update failed (%s)", type(error).__name__)


def _frozen(campaign, board, period, start, limit, participation) -> BoardView:
    day = start or TOTAL_PERIOD_START
    if board == "individuals":
        entries = _individual_entries(campaign, frozen_top(campaign, period, day, limit))
        me = None
        if participation is not None:
            mg, seq = boards_sql.my_standing(period, start, participation)
            me = {"rank": frozen_rank(campaign, period, day, participation.pid, mg, seq),
                  "reduction_g": mg_to_g(mg)}
        return BoardView(entries, me, "sql")
    standings = frozen_teams(campaign, period, day)
    me = None
    if participation is not None and participation.team_id is not None:
        team = db.session.get(Team, participation.team_id)
        teams = campaign_doc(campaign).teams
        row = _team_rows(campaign, period, start).get(team.key)
        metric = team_metric(row, teams.ranking, teams.min_active_members)
        if metric > 0:
            mine = (-metric, row.reached_seq, team.key)
            ahead = sum(1 for s in standings if s.member != team.key and s.order < mine)
            me = {"rank": ahead + 1, "reduction_g": mg_to_g(metric)}
    return BoardView(_team_entries(standings[:limit]), me, "sql")
