"""Bulk synthetic participants and entries for benchmarks (`flask campaigns seed`): real users,
participations and hash-chained ledger entries, then the projections and boards rebuilt from
the ledger. COPY on PostgreSQL, batched inserts elsewhere."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlalchemy import insert, select, text

from backend.extensions import db
from backend.models import Campaign, LedgerEntry, Participation, User
from backend.services.campaigns import campaign_doc
from backend.services.ledger import lock_ledgers
from backend.services.rebuild import rebuild_projections
from campaigns.calendar import local_today
from campaigns.document import effective_actions
from campaigns.ledger import entry_fields, entry_hash
from campaigns.methodology import load_methodology
from campaigns.rules import counted, credit_mg

CHUNK = 5_000
ANALYZED_TABLES = ("users", "participations", "ledger_entries", "participant_days",
                   "participant_weeks", "team_periods", "campaign_days", "participant_actions",
                   "campaign_actions", "campaign_action_days")
ENTRY_COLUMNS = ("campaign_id", "seq", "participation_id", "pid", "action", "local_date",
                 "quantity_milli", "counted_milli", "factor_milli", "reduction_mg", "source",
                 "source_ref", "methodology_version", "created_dt", "prev_hash", "hash")


def _quantity(rule, rng: random.Random) -> int:
    if rule.kind == "steps":
        return rng.randint(1_000, 15_000) * 1000
    if rule.kind == "once_daily":
        return 1000
    if rule.kind == "count":
        return rng.randint(1, 3) * 1000
    return rng.randint(500, 20_000)  # 0.5 to 20 km or kg


def _insert_entries(rows: list[dict]) -> None:
    connection = db.session.connection()
    if connection.dialect.name == "postgresql":
        raw = connection.connection.dbapi_connection
        with raw.cursor() as cursor, cursor.copy(
                f"COPY ledger_entries ({', '.join(ENTRY_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[c] for c in ENTRY_COLUMNS])
    else:
        connection.execute(insert(LedgerEntry.__table__), rows)


def seed_campaign(campaign: Campaign, participants: int, entries_each: int, seed: int,
                  now: datetime, progress: Callable[[int], None] = lambda n: None) -> int:
    """Add participants with entries each (chained onto the campaign's ledger); commits per
    chunk of participants and returns the number of entries appended."""
    rng = random.Random(seed)  # noqa: S311 (synthetic data)
    doc = campaign_doc(campaign)
    methodology = load_methodology(doc.methodology)
    last_day = min(doc.ends_on, local_today(now, doc.timezone))
    days = [doc.starts_on + timedelta(days=i) for i in range((last_day - doc.starts_on).days + 1)]
    rules = {day: [r for r in effective_actions(doc, methodology, day)] for day in days}
    team_ids = [team.id for team in campaign.teams]
    appended = 0
    for first in range(0, participants, CHUNK):
        count = min(CHUNK, participants - first)
        openids = [f"seed:{campaign.id}:{seed}:{first + i}" for i in range(count)]
        db.session.execute(insert(User.__table__), [
            {"openid": openid, "nickname": f"用户{first + i}", "nickname_status": "pass",
             "on_leaderboard": True, "login_count": 0, "token_version": 1,
             "created_dt": now, "updated_dt": now} for i, openid in enumerate(openids)])
        user_ids = dict(db.session.execute(
            select(User.openid, User.id).where(User.openid.in_(openids))).all())
        pids = [f"{rng.getrandbits(64):016x}" for _ in range(count)]
        db.session.execute(insert(Participation.__table__), [
            {"campaign_id": campaign.id, "user_id": user_ids[openid], "pid": pid,
             "team_id": rng.choice(team_ids) if team_ids else None,
             "joined_on": doc.starts_on, "joined_dt": now, "reduction_mg": 0, "records": 0,
             "reached_seq": 0} for openid, pid in zip(openids, pids, strict=True)])
        ids = dict(db.session.execute(select(Participation.pid, Participation.id).where(
            Participation.campaign_id == campaign.id, Participation.pid.in_(pids))).all())
        ledger = lock_ledgers([campaign.id])[campaign.id]
        seq, head = ledger.head_seq, ledger.head_hash
        rows = []
        for pid in pids:
            for _ in range(entries_each):
                day: date = rng.choice(days)
                rule = rng.choice(rules[day])
                quantity = _quantity(rule, rng)
                counted_milli = counted(quantity, rule.cap_milli, rule.min_milli)
                mg = credit_mg(counted_milli, rule.factor_milli)
                seq += 1
                digest = entry_hash(head, entry_fields(
                    seq=seq, campaign=campaign.slug, participant=pid, action=rule.key,
                    local_date=day, quantity_milli=quantity, counted_milli=counted_milli,
                    factor_milli=rule.factor_milli, reduction_mg=mg, source="checkin",
                    source_ref=None, methodology_version=rule.methodology_version,
                    created_dt=now))
                rows.append({
                    "campaign_id": campaign.id, "seq": seq, "participation_id": ids[pid],
                    "pid": pid, "action": rule.key, "local_date": day,
                    "quantity_milli": quantity, "counted_milli": counted_milli,
                    "factor_milli": rule.factor_milli, "reduction_mg": mg, "source": "checkin",
                    "source_ref": None, "methodology_version": rule.methodology_version,
                    "created_dt": now, "prev_hash": head, "hash": digest,
                })
                head = digest
        _insert_entries(rows)
        ledger.head_seq, ledger.head_hash = seq, head
        db.session.commit()
        appended += len(rows)
        progress(count)
    rebuild_projections(campaign)
    db.session.commit()
    if db.session.connection().dialect.name == "postgresql":
        # Fresh statistics, or the planner keeps its estimate of an empty table.
        for table in ANALYZED_TABLES:
            db.session.execute(text(f"ANALYZE {table}"))
        db.session.commit()
    return appended
