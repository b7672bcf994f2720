"""What reporters and the big screen read: totals, the day series, breakdowns, the CSV export and
the chain itself. Every figure comes from the projections (kept with each entry), never from a
sum over the ledger, and equals the ledger to the milligram."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from sqlalchemy import select

from backend.extensions import db
from backend.models import Campaign, CampaignDay, CampaignLedger, LedgerEntry, Team, TeamPeriod
from backend.models.projections import TOTAL_PERIOD_START
from backend.models.reporting import CampaignAction, CampaignActionDay
from backend.services.boards import read_board
from backend.services.campaigns import campaign_doc
from backend.services.public import campaign_figures
from backend.services.verification import entry_rows, line_of
from campaigns.calendar import local_today
from campaigns.decimals import mg_to_g
from campaigns.document import effective_actions
from campaigns.methodology import load_methodology

EXPORT_BATCH = 5000
LINES_PER_CHUNK = 500  # small chunks: the first bytes leave before the first batch is formatted
CSV_HEADER = ("date", "action", "action_name", "team", "team_name", "records", "reduction_g")
FORMULA_STARTS = ("=", "+", "-", "@")
DASHBOARD_TOP = 10


def action_names(campaign: Campaign, today: date) -> dict[str, str]:
    """Action key → display name, as in force today (every action of the document)."""
    doc = campaign_doc(campaign)
    day = min(max(today, doc.starts_on), doc.ends_on)
    return {rule.key: rule.name for rule in effective_actions(doc, load_methodology(
        doc.methodology), day)}


def action_figures(campaign: Campaign, now: datetime) -> list[dict]:
    """Per action of the campaign (and any other with entries): name in force today,
    reduction, records and participants above 0 mg, largest reduction first."""
    names = action_names(campaign, local_today(now, campaign_doc(campaign).timezone))
    stored = {row.action: row for row in db.session.scalars(
        select(CampaignAction).where(CampaignAction.campaign_id == campaign.id))}
    rows = []
    for action in dict.fromkeys([*names, *stored]):
        row = stored.get(action)
        rows.append((-(row.reduction_mg if row else 0), action, {
            "action": action, "name": names.get(action, action),
            "reduction_g": mg_to_g(row.reduction_mg if row else 0),
            "records": row.records if row else 0,
            "participants": row.participants if row else 0}))
    return [figures for _, _, figures in sorted(rows, key=lambda r: r[:2])]


def summary(campaign: Campaign, now: datetime, by_action: list[dict] | None = None) -> dict:
    """The reporter summary; ``by_action``: action_figures() when the caller has them."""
    if by_action is None:
        by_action = action_figures(campaign, now)
    ledger = db.session.get(CampaignLedger, campaign.id)
    today = local_today(now, campaign_doc(campaign).timezone)
    day = db.session.get(CampaignDay, (campaign.id, today))
    figures = campaign_figures(campaign, ledger)
    return {
        **{key: figures[key] for key in ("reduction_g", "target_g", "progress", "participants",
                                         "trees")},
        "active_today": day.active_participants if day else 0,
        "records": ledger.records,
        "by_action": [{key: row[key] for key in ("action", "name", "reduction_g", "records")}
                      for row in by_action],
        "as_of": now,
    }


def timeseries(campaign: Campaign, now: datetime) -> list[dict]:
    """One row per campaign-local day from starts_on to today (or ends_on), plus any other day
    with activity (joins before the start); cumulative in exact mg."""
    doc = campaign_doc(campaign)
    stored = {row.local_date: row for row in db.session.scalars(
        select(CampaignDay).where(CampaignDay.campaign_id == campaign.id))}
    last = min(local_today(now, doc.timezone), doc.ends_on)
    span = {doc.starts_on + timedelta(days=i) for i in range((last - doc.starts_on).days + 1)}
    rows, cumulative = [], 0
    for day in sorted(span | set(stored)):
        row = stored.get(day)
        mg = row.reduction_mg if row else 0
        cumulative += mg
        rows.append({"date": day, "reduction_g": mg_to_g(mg), "cumulative_g": mg_to_g(cumulative),
                     "active_participants": row.active_participants if row else 0,
                     "new_participants": row.new_participants if row else 0})
    return rows


def breakdown(campaign: Campaign, by: str, now: datetime) -> list[dict]:
    """Per action, or per team (plus a ``team: null`` row for participants without a team when
    they have any activity); ``participants`` are those above 0 mg in it."""
    if by == "action":
        return action_figures(campaign, now)
    totals = {team.id: (team, None) for team in db.session.scalars(
        select(Team).where(Team.campaign_id == campaign.id))}
    for row in db.session.scalars(select(TeamPeriod).where(
            TeamPeriod.team_id.in_(list(totals)), TeamPeriod.period == "total",
            TeamPeriod.period_start == TOTAL_PERIOD_START)):
        totals[row.team_id] = (totals[row.team_id][0], row)
    ledger = db.session.get(CampaignLedger, campaign.id)
    rows, rest_mg, rest_records, rest_active = [], ledger.total_mg, ledger.records, \
        ledger.active_participants
    for team, row in totals.values():
        mg, records, active = (row.reduction_mg, row.records, row.active_members) if row \
            else (0, 0, 0)
        rest_mg, rest_records, rest_active = rest_mg - mg, rest_records - records, \
            rest_active - active
        rows.append({"team": team.key, "name": team.name, "mg": mg, "records": records,
                     "participants": active})
    rows.sort(key=lambda r: (-r["mg"], r["team"]))
    if rest_records or rest_mg:
        rows.append({"team": None, "name": "未分组", "mg": rest_mg, "records": rest_records,
                     "participants": rest_active})
    return [{**{k: v for k, v in r.items() if k != "mg"}, "reduction_g": mg_to_g(r["mg"])}
            for r in rows]


def _safe_cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def export_csv(campaign: Campaign, now: datetime, release) -> Iterator[str]:
    """The daily aggregates per action and team as CSV chunks (UTF-8 with BOM), read in keyset
    batches; ``release`` ends each batch's read transaction. Names are read before streaming
    starts."""
    names = action_names(campaign, local_today(now, campaign_doc(campaign).timezone))
    teams = {team.id: (team.key, team.name) for team in db.session.scalars(
        select(Team).where(Team.campaign_id == campaign.id))}
    return _csv_chunks(campaign.id, names, teams, release)


def _csv_chunks(campaign_id: int, names: dict, teams: dict, release) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    yield "\ufeff" + buffer.getvalue()
    after = None
    key = (CampaignActionDay.local_date, CampaignActionDay.action, CampaignActionDay.team_id)
    while True:
        query = select(CampaignActionDay.local_date, CampaignActionDay.action,
                       CampaignActionDay.team_id, CampaignActionDay.records,
                       CampaignActionDay.reduction_mg).where(
            CampaignActionDay.campaign_id == campaign_id)
        if after is not None:
            query = query.where(_after(key, after))
        rows = db.session.execute(query.order_by(*key).limit(EXPORT_BATCH)).all()
        release()
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            team_key, team_name = teams.get(row.team_id, ("", ""))
            writer.writerow([_safe_cell(v) for v in (
                row.local_date.isoformat(), row.action, names.get(row.action, row.action),
                team_key, team_name, row.records, mg_to_g(row.reduction_mg))])
        yield buffer.getvalue()
        after = (rows[-1].local_date, rows[-1].action, rows[-1].team_id)


def _after(columns, values):
    """(a, b, c) > (x, y, z) spelled out (portable keyset pagination)."""
    (a, b, c), (x, y, z) = columns, values
    return (a > x) | ((a == x) & ((b > y) | ((b == y) & (c > z))))


def ledger_head(campaign: Campaign, upto_seq: int | None) -> tuple[int, str]:
    """The (seq, hash) an export ends at: the head, or the entry at upto_seq when lower."""
    ledger = db.session.get(CampaignLedger, campaign.id, populate_existing=True)
    if upto_seq is None or upto_seq >= ledger.head_seq:
        return ledger.head_seq, ledger.head_hash
    if upto_seq <= 0:
        return 0, "0" * 64
    return upto_seq, db.session.scalar(select(LedgerEntry.hash).where(
        LedgerEntry.campaign_id == campaign.id, LedgerEntry.seq == upto_seq))


def ledger_jsonl(campaign_id: int, slug: str, upto_seq: int, release) -> Iterator[str]:
    """The chain up to upto_seq, one canonical line per entry: entries are never updated, so
    reading up to a head committed before the first batch is one consistent snapshot."""
    lines = []
    for row in entry_rows(campaign_id, 0, upto_seq, release=release):
        lines.append(json.dumps(line_of(row, slug), ensure_ascii=False,
                                separators=(",", ":")))
        if len(lines) == LINES_PER_CHUNK:
            yield "\n".join(lines) + "\n"
            lines = []
    if lines:
        yield "\n".join(lines) + "\n"


def dashboard_data(campaign: Campaign, now: datetime) -> dict:
    """Everything the big screen shows, in one response."""
    doc = campaign_doc(campaign)
    individuals = read_board(campaign, "individuals", "total", None, DASHBOARD_TOP, None, now)
    teams = read_board(campaign, "teams", "total", None, DASHBOARD_TOP, None, now)
    by_action = action_figures(campaign, now)
    return {
        "campaign": {"slug": campaign.slug, "name": doc.name, "starts_on": doc.starts_on,
                     "ends_on": doc.ends_on, "timezone": doc.timezone},
        "summary": summary(campaign, now, by_action),
        "timeseries": timeseries(campaign, now),
        "by_action": by_action,
        "top_teams": teams.entries,
        "top_individuals": individuals.entries,
        "as_of": now,
    }
