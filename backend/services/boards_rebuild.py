"""Rebuilding a campaign's Redis boards from the SQL projections (`flask leaderboards
rebuild`, and `flask ledger rebuild`): each board is written under a temporary key and
renamed over the live one, then the watermark is set and later seqs are replayed."""

from __future__ import annotations

import secrets

from sqlalchemy import literal, select

from backend.extensions import db
from backend.models import (
    Campaign,
    CampaignLedger,
    ParticipantDay,
    ParticipantWeek,
    Participation,
    Team,
    TeamPeriod,
)
from backend.services.boards import redis_boards, replay_missing
from backend.services.boards_redis import PREFIX, board_key, encode_member, watermark_key
from backend.services.campaigns import campaign_doc
from backend.services.projections import team_metric

BATCH = 10_000
ABANDONED_SECONDS = 3600


def _individual_rows(campaign: Campaign):
    """(period, start label, pid, mg, seq) of every visible participant with a metric > 0."""
    for period, model, column in (("total", Participation, None),
                                  ("day", ParticipantDay, ParticipantDay.local_date),
                                  ("week", ParticipantWeek, ParticipantWeek.week_start)):
        start = column if column is not None else literal("all")
        for label, pid, mg, seq in db.session.execute(
                select(start, model.pid, model.reduction_mg, model.reached_seq)
                .where(model.campaign_id == campaign.id, model.on_board,
                       model.reduction_mg > 0)
                .execution_options(yield_per=BATCH)):
            yield period, label if column is None else label.isoformat(), pid, mg, seq


def _team_rows(campaign: Campaign):
    teams = campaign_doc(campaign).teams
    for key, period, start, row in db.session.execute(
            select(Team.key, TeamPeriod.period, TeamPeriod.period_start, TeamPeriod)
            .join(TeamPeriod, TeamPeriod.team_id == Team.id)
            .where(Team.campaign_id == campaign.id)):
        metric = team_metric(row, teams.ranking, teams.min_active_members)
        if metric > 0:
            label = "all" if period == "total" else start.isoformat()
            yield period, label, key, metric, row.reached_seq


def rebuild_boards(campaign: Campaign) -> int:
    """Rebuild every board of the campaign; returns the number of board members written
    (0 without Redis)."""
    boards = redis_boards()
    if boards is None:
        return 0
    client = boards.client
    upto = db.session.get(CampaignLedger, campaign.id).head_seq
    suffix = f":rebuild:{secrets.token_hex(4)}"
    written, built = 0, set()
    pipe = client.pipeline(transaction=False)
    for kind, rows in (("individuals", _individual_rows(campaign)),
                       ("teams", _team_rows(campaign))):
        for period, label, member_id, metric, seq in rows:
            key = board_key(campaign.id, kind, period, label)
            member = encode_member(member_id, seq)
            pipe.zadd(key + suffix, {member: metric})
            pipe.hset(key + ":m" + suffix, member_id, member)
            if key not in built:  # a rebuild that dies half-way leaves nothing for long
                pipe.expire(key + suffix, ABANDONED_SECONDS)
                pipe.expire(key + ":m" + suffix, ABANDONED_SECONDS)
            built.add(key)
            written += 1
            if written % BATCH == 0:
                pipe.execute()
    pipe.execute()
    keep = built | {k + ":m" for k in built}
    for key in client.scan_iter(f"{PREFIX}:{campaign.id}:*", count=1000):
        name = key.decode()
        if name.startswith(watermark_key(campaign.id)) or ":rebuild:" in name or name in keep:
            continue
        client.unlink(key)
    # One transaction swaps every board. The live keys are unlinked first (freed in Redis'
    # background thread): a RENAME over a large key would free it inline and stall Redis.
    pipe = client.pipeline(transaction=True)
    for key in built:
        pipe.unlink(key, key + ":m", key + ":v")
        pipe.rename(key + suffix, key)
        pipe.rename(key + ":m" + suffix, key + ":m")
        pipe.persist(key)
        pipe.persist(key + ":m")
    pipe.set(watermark_key(campaign.id), upto)
    pipe.delete(watermark_key(campaign.id) + ":applied")
    pipe.execute()
    replay_missing(campaign.id, db.session.get(CampaignLedger, campaign.id).head_seq)
    return written
