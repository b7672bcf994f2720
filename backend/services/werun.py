"""WeRun sync: decrypted step lists, the highest count per Beijing day, increments credited
to one campaign, implausible days held for review."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select

from backend.errors import ApiError, validation_error
from backend.extensions import db
from backend.models import Campaign, DayActionTotal, Hold, Participation, User, WerunDay
from backend.services.candidates import candidates, joined
from backend.services.crediting import (
    CampaignRules,
    DayRows,
    EntryDraft,
    append_drafts,
    credit_units,
    hold_intake,
    signals_for,
)
from backend.services.ledger import lock_person_days
from backend.services.logins import exchange_login_code, record_wechat_session, session_key_of
from backend.services.membership import check_joined, ensure_intake_open
from backend.wechat_crypto import (
    DecryptFailed,
    MalformedOpenData,
    OpenDataError,
    WatermarkMismatch,
    decrypt_open_data,
)
from campaigns.calendar import is_intake_open, local_today
from campaigns.crediting import ACTION_NOT_COUNTED, choose_campaign
from campaigns.document import ActionRule, effective_actions
from campaigns.werun import BEIJING, step_days

SOURCE = "werun"
MAX_DAYS = 31


def parse_step_list(payload: dict, now: datetime) -> dict[date, int]:
    """{Beijing date: steps} of a decrypted wx.getWeRunData payload (the highest count when a
    date repeats; future dates dropped); 400 werun.decrypt_failed when it is not a step list."""
    try:
        return step_days(payload, local_today(now, BEIJING), MAX_DAYS)
    except ValueError:
        raise ApiError(400, "werun.decrypt_failed") from None


def steps_rule(rules: CampaignRules, day: date) -> ActionRule | None:
    """The campaign's steps action fed by WeRun on that day, if it counts one."""
    for rule in effective_actions(rules.doc, rules.methodology, day):
        if rule.kind == "steps" and SOURCE in rule.sources:
            return rule
    return None


@dataclass
class DayOutcome:
    date: date
    steps: int
    status: str
    campaign_id: int | None = None
    draft: EntryDraft | None = None


class _SyncRows:
    """What a sync reads of the person, one query per kind for all its days: WeRun days,
    open or rejected WeRun holds, and day totals per participation (7 days back for the
    plausibility signals)."""

    def __init__(self, user: User, memberships, days: list[date]):
        first, last = min(days), max(days)
        self.werun = {row.local_date: row for row in db.session.scalars(
            select(WerunDay).where(WerunDay.user_id == user.id, WerunDay.local_date.in_(days)))}
        participation_ids = [p.id for p, _ in memberships.values()]
        self.holds: dict[tuple[int, date], Hold] = {}
        for hold in db.session.scalars(select(Hold).where(
                Hold.participation_id.in_(participation_ids), Hold.local_date.in_(days),
                Hold.source == SOURCE, Hold.status.in_(("held", "rejected")))
                .order_by(Hold.id)):
            self.holds.setdefault((hold.participation_id, hold.local_date), hold)
        self._first, self._last = first - timedelta(days=7), last
        self._day_rows: dict[int, DayRows] = {}

    def day_rows(self, participation: Participation) -> DayRows:
        if participation.id not in self._day_rows:
            self._day_rows[participation.id] = DayRows.load(participation, self._first,
                                                           self._last)
        return self._day_rows[participation.id]

    def write_calls(self) -> list[tuple]:
        """The upserts of the day totals the sync changed."""
        return [call for rows in self._day_rows.values() for call in rows.write_calls()]


def _credit_day(day: date, steps: int, record: WerunDay, membership, now: datetime,
                rows: _SyncRows) -> DayOutcome:
    participation, rules = membership
    rule = steps_rule(rules, day)
    hold = rows.holds.get((participation.id, day))
    record.campaign_id = rules.campaign.id
    if hold is not None and hold.status == "rejected":
        # An organiser refused this day: later syncs change nothing for it.
        return DayOutcome(day, steps, "unchanged", rules.campaign.id)
    if hold is not None:  # later syncs of a held day update the hold
        hold.quantity_milli = steps * 1000
        hold.updated_dt = now
        return DayOutcome(day, steps, "held", rules.campaign.id)
    day_rows = rows.day_rows(participation)
    signals = signals_for(rules, participation, rule, day, SOURCE, steps * 1000,
                          day_rows=day_rows)
    if signals:
        hold_intake(participation, rule, day, SOURCE, day.isoformat(), steps * 1000, signals,
                    now)
        return DayOutcome(day, steps, "held", rules.campaign.id)
    increase = (steps - record.counted_steps) * 1000
    counted, reduction = credit_units(rules, participation, rule, day, SOURCE, increase,
                                      day_rows=day_rows)
    record.counted_steps = steps
    draft = EntryDraft(rules.campaign, participation, rule, day, increase, counted, reduction,
                       SOURCE, day.isoformat())
    return DayOutcome(day, steps, "counted", rules.campaign.id, draft)


def sync_werun(user: User, campaign: Campaign, participation: Participation | None,
               days: dict[date, int], now: datetime) -> dict:
    """Record a WeRun sync received through ``campaign``'s endpoint. Flushes.

    Each day keeps the highest count seen; a higher count credits the difference to the one
    campaign the day belongs to (the earliest joined that counts steps on that date).
    """
    endpoint = check_joined(participation)
    ensure_intake_open(campaign, now)
    lock_person_days((user.id, day) for day in days)
    memberships = {p.campaign_id: (p, r) for p, r in joined(user.id)}
    rows = _SyncRows(user, memberships, list(days)) if days else None
    outcomes = []
    for day in sorted(days):
        steps = days[day]
        record = rows.werun.get(day)
        if record is None:
            record = WerunDay(user_id=user.id, local_date=day, steps=0, counted_steps=0,
                              updated_dt=now)
            db.session.add(record)
        if steps <= record.steps:
            outcomes.append(DayOutcome(day, record.steps, "unchanged", record.campaign_id))
            continue
        record.steps = steps
        record.updated_dt = now
        target = record.campaign_id or _choose(memberships, day, now)
        if target is None or target not in memberships:
            outcomes.append(DayOutcome(day, steps, "outside"))
            continue
        if not _still_credits(memberships[target], now):
            # The day belongs to a campaign that no longer takes intake from this person
            # (closed, or they were disqualified there): the increase counts nowhere.
            outcomes.append(DayOutcome(day, steps, "unchanged", target))
            continue
        outcomes.append(_credit_day(day, steps, record, memberships[target], now, rows))
    append_drafts([o.draft for o in outcomes if o.draft is not None], now,
                  writes_first=rows.write_calls() if rows is not None else [])
    return _reply(endpoint, outcomes)


def _still_credits(membership, now: datetime) -> bool:
    participation, rules = membership
    doc = rules.doc
    return participation.disqualified_dt is None and is_intake_open(
        local_today(now, doc.timezone), doc.starts_on, doc.ends_on, doc.late_entry_days)


def _choose(memberships, day: date, now: datetime) -> int | None:
    choice = choose_campaign(candidates(
        list(memberships.values()), now, item_date=lambda rules: day,
        not_counted=lambda rules, d: None if steps_rule(rules, d) else ACTION_NOT_COUNTED,
    ), source=SOURCE)
    return choice.campaign_id


def _reply(endpoint: Participation, outcomes: list[DayOutcome]) -> dict:
    """The per-day statuses as seen from the endpoint's campaign."""
    totals = {(row.local_date): row for row in db.session.scalars(select(DayActionTotal).where(
        DayActionTotal.participation_id == endpoint.id, DayActionTotal.source == SOURCE,
        DayActionTotal.local_date.in_([o.date for o in outcomes])))}
    days, added = [], 0
    for outcome in outcomes:
        status = outcome.status
        if outcome.campaign_id is not None and outcome.campaign_id != endpoint.campaign_id:
            status = "claimed"
        elif outcome.campaign_id is None and status == "unchanged":
            status = "outside"
        row = totals.get(outcome.date) if outcome.campaign_id == endpoint.campaign_id else None
        if outcome.draft is not None and outcome.campaign_id == endpoint.campaign_id:
            added += outcome.draft.reduction_mg
        days.append({"date": outcome.date, "steps": outcome.steps,
                     "counted_steps": row.counted_milli // 1000 if row else 0,
                     "reduction_mg": row.credit_mg if row else 0, "status": status})
    return {"days": days, "added_mg": added, "total_mg": endpoint.reduction_mg}


def refresh_session_key(user: User, wechat, code: str) -> None:
    """Exchange a fresh wx.login code (no transaction open while WeChat is called) and keep
    its session_key, committed at once: WeChat has rotated the key either way. A code of
    another WeChat user is 403 auth.forbidden and stores nothing."""
    openid = user.openid
    session = exchange_login_code(wechat, code)
    if session.openid != openid:
        raise ApiError(403, "auth.forbidden")
    record_wechat_session(session)
    db.session.commit()


def decrypt_werun(user: User, appid: str, iv: str, encrypted_data: str) -> dict:
    """The decrypted payload, with the user's newest session_key."""
    session_key = session_key_of(user)
    if session_key is None:
        raise ApiError(400, "werun.decrypt_failed")
    try:
        return decrypt_open_data(session_key, iv, encrypted_data, appid)
    except OpenDataError as error:
        raise decrypt_error(error) from None


def decrypt_error(error) -> ApiError:
    """The contract's error for a decryption failure."""
    if isinstance(error, MalformedOpenData) and error.field != "session_key":
        return validation_error({error.field or "encrypted_data": [error.reason]})
    if isinstance(error, WatermarkMismatch):
        return ApiError(400, "werun.watermark_mismatch")
    assert isinstance(error, DecryptFailed | MalformedOpenData)
    return ApiError(400, "werun.decrypt_failed")
