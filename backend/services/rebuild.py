"""Recomputing every projection of a campaign from its ledger, set-based (`flask ledger
rebuild`, and after `flask campaigns seed`). The result equals what the entry-by-entry path
(backend.services.projections) maintains: sums, the seq of the last raising entry, and the
members or participants active (above 0 mg) in each period."""

from __future__ import annotations

from sqlalchemy import text

from backend.extensions import db
from backend.models import Campaign
from backend.models.projections import TOTAL_PERIOD_START
from backend.services.ledger import lock_ledgers

RAISED_SEQ = "MAX(CASE WHEN e.reduction_mg > 0 THEN e.seq ELSE 0 END)"


def _week_start(column: str) -> str:
    """The Monday of a date column, in the dialect's own date arithmetic."""
    if db.engine.dialect.name == "postgresql":
        return f"({column} - (EXTRACT(ISODOW FROM {column})::int - 1))"
    weekday = f"((CAST(strftime('%w', {column}) AS INTEGER) + 6) % 7)"
    return f"date({column}, '-' || {weekday} || ' days')"


STATEMENTS = (
    "DELETE FROM team_periods WHERE team_id IN (SELECT id FROM teams WHERE campaign_id = :c)",
    "DELETE FROM participant_days WHERE campaign_id = :c",
    "DELETE FROM participant_weeks WHERE campaign_id = :c",
    "DELETE FROM campaign_days WHERE campaign_id = :c",
    "DELETE FROM campaign_weeks WHERE campaign_id = :c",
    "DELETE FROM participant_actions WHERE campaign_id = :c",
    "DELETE FROM campaign_actions WHERE campaign_id = :c",
    "DELETE FROM campaign_action_days WHERE campaign_id = :c",
    """UPDATE participations SET reduction_mg = 0, records = 0, reached_seq = 0
       WHERE campaign_id = :c""",
    """UPDATE participations SET reduction_mg = agg.mg, records = agg.records,
           reached_seq = agg.seq
       FROM (SELECT e.participation_id AS pid, SUM(e.reduction_mg) AS mg,
                    SUM(CASE WHEN e.source = 'reversal' THEN 0 ELSE 1 END) AS records,
                    {raised} AS seq
             FROM ledger_entries e WHERE e.campaign_id = :c GROUP BY e.participation_id) agg
       WHERE participations.id = agg.pid""",
    """UPDATE participations SET on_board = (disqualified_dt IS NULL AND EXISTS (
           SELECT 1 FROM users u WHERE u.id = participations.user_id
           AND u.on_leaderboard AND u.openid IS NOT NULL))
       WHERE campaign_id = :c""",
    """INSERT INTO participant_days (participation_id, local_date, campaign_id, reduction_mg,
                                      reached_seq, pid, on_board)
        SELECT e.participation_id, e.local_date, :c, SUM(e.reduction_mg), {raised}, p.pid,
               p.on_board
        FROM ledger_entries e JOIN participations p ON p.id = e.participation_id
        WHERE e.campaign_id = :c
        GROUP BY e.participation_id, e.local_date, p.pid, p.on_board""",
    """INSERT INTO participant_weeks (participation_id, week_start, campaign_id, reduction_mg,
                                      reached_seq, pid, on_board)
       SELECT d.participation_id, {week}, :c, SUM(d.reduction_mg), MAX(d.reached_seq), d.pid,
              d.on_board
       FROM participant_days d WHERE d.campaign_id = :c
       GROUP BY d.participation_id, {week}, d.pid, d.on_board""",
    """INSERT INTO team_periods (team_id, period, period_start, reduction_mg, reached_seq,
                                 active_members)
       SELECT p.team_id, 'total', :total_start, SUM(p.reduction_mg), MAX(p.reached_seq),
              SUM(CASE WHEN p.reduction_mg > 0 THEN 1 ELSE 0 END)
       FROM participations p
       WHERE p.campaign_id = :c AND p.team_id IS NOT NULL
         AND EXISTS (SELECT 1 FROM ledger_entries e WHERE e.participation_id = p.id)
       GROUP BY p.team_id""",
    """INSERT INTO team_periods (team_id, period, period_start, reduction_mg, reached_seq,
                                 active_members)
       SELECT p.team_id, 'day', d.local_date, SUM(d.reduction_mg), MAX(d.reached_seq),
              SUM(CASE WHEN d.reduction_mg > 0 THEN 1 ELSE 0 END)
       FROM participant_days d JOIN participations p ON p.id = d.participation_id
       WHERE d.campaign_id = :c AND p.team_id IS NOT NULL
       GROUP BY p.team_id, d.local_date""",
    """INSERT INTO team_periods (team_id, period, period_start, reduction_mg, reached_seq,
                                 active_members)
       SELECT p.team_id, 'week', w.week_start, SUM(w.reduction_mg), MAX(w.reached_seq),
              SUM(CASE WHEN w.reduction_mg > 0 THEN 1 ELSE 0 END)
       FROM participant_weeks w JOIN participations p ON p.id = w.participation_id
       WHERE w.campaign_id = :c AND p.team_id IS NOT NULL
       GROUP BY p.team_id, w.week_start""",
    """INSERT INTO campaign_weeks (campaign_id, week_start, active_participants)
       SELECT :c, w.week_start, SUM(CASE WHEN w.reduction_mg > 0 THEN 1 ELSE 0 END)
       FROM participant_weeks w WHERE w.campaign_id = :c GROUP BY w.week_start""",
    """INSERT INTO participant_actions (participation_id, action, campaign_id, reduction_mg,
                                        records)
       SELECT e.participation_id, e.action, :c, SUM(e.reduction_mg),
              SUM(CASE WHEN e.source = 'reversal' THEN 0 ELSE 1 END)
       FROM ledger_entries e WHERE e.campaign_id = :c
       GROUP BY e.participation_id, e.action""",
    """INSERT INTO campaign_actions (campaign_id, action, reduction_mg, records, participants)
       SELECT :c, a.action, SUM(a.reduction_mg), SUM(a.records),
              SUM(CASE WHEN a.reduction_mg > 0 THEN 1 ELSE 0 END)
       FROM participant_actions a WHERE a.campaign_id = :c GROUP BY a.action""",
    """INSERT INTO campaign_action_days (campaign_id, local_date, action, team_id, reduction_mg,
                                         records)
       SELECT :c, e.local_date, e.action, COALESCE(p.team_id, 0), SUM(e.reduction_mg),
              SUM(CASE WHEN e.source = 'reversal' THEN 0 ELSE 1 END)
       FROM ledger_entries e JOIN participations p ON p.id = e.participation_id
       WHERE e.campaign_id = :c
       GROUP BY e.local_date, e.action, COALESCE(p.team_id, 0)""",
    """UPDATE team_periods SET records = agg.records
       FROM (SELECT d.team_id, SUM(d.records) AS records FROM campaign_action_days d
             WHERE d.campaign_id = :c GROUP BY d.team_id) agg
       WHERE team_periods.team_id = agg.team_id AND team_periods.period = 'total'""",
    """UPDATE team_periods SET records = agg.records
       FROM (SELECT d.team_id, d.local_date AS day, SUM(d.records) AS records
             FROM campaign_action_days d WHERE d.campaign_id = :c
             GROUP BY d.team_id, d.local_date) agg
       WHERE team_periods.team_id = agg.team_id AND team_periods.period = 'day'
         AND team_periods.period_start = agg.day""",
    """UPDATE team_periods SET records = agg.records
       FROM (SELECT d.team_id, {week} AS week, SUM(d.records) AS records
             FROM campaign_action_days d WHERE d.campaign_id = :c
             GROUP BY d.team_id, {week}) agg
       WHERE team_periods.team_id = agg.team_id AND team_periods.period = 'week'
         AND team_periods.period_start = agg.week""",
    """INSERT INTO campaign_days (campaign_id, local_date, reduction_mg, records,
                                  active_participants, new_participants)
       SELECT :c, day, SUM(mg), SUM(records), SUM(active), SUM(joined) FROM (
           SELECT e.local_date AS day, e.reduction_mg AS mg,
                  CASE WHEN e.source = 'reversal' THEN 0 ELSE 1 END AS records,
                  0 AS active, 0 AS joined
           FROM ledger_entries e WHERE e.campaign_id = :c
           UNION ALL
           SELECT d.local_date, 0, 0, CASE WHEN d.reduction_mg > 0 THEN 1 ELSE 0 END, 0
           FROM participant_days d WHERE d.campaign_id = :c
           UNION ALL
           SELECT p.joined_on, 0, 0, 0, 1 FROM participations p WHERE p.campaign_id = :c
       ) rows GROUP BY day""",
    """UPDATE campaign_ledgers SET
           total_mg = (SELECT COALESCE(SUM(reduction_mg), 0) FROM ledger_entries
                       WHERE campaign_id = :c),
           records = (SELECT COUNT(*) FROM ledger_entries
                      WHERE campaign_id = :c AND source <> 'reversal'),
           participants = (SELECT COUNT(*) FROM participations
                           WHERE campaign_id = :c AND disqualified_dt IS NULL),
           active_participants = (SELECT COUNT(*) FROM participations
                                  WHERE campaign_id = :c AND reduction_mg > 0)
       WHERE campaign_id = :c""",
)


def rebuild_projections(campaign: Campaign) -> int:
    """Recompute the campaign's projections from its ledger under the chain-head lock (no
    entry is appended meanwhile); returns the number of entries. Flushes."""
    ledger = lock_ledgers([campaign.id])[campaign.id]
    db.session.flush()
    params = {"c": campaign.id, "total_start": TOTAL_PERIOD_START}
    week = _week_start("d.local_date")
    for statement in STATEMENTS:
        sql = statement.replace("{week}", week).replace("{raised}", RAISED_SEQ)
        db.session.execute(text(sql), params)
    db.session.expire_all()
    return ledger.head_seq
