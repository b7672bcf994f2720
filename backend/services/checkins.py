"""Check-ins: caps and minimums on day totals, credit groups, one unit in one campaign."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, func, insert, select, update

from backend.errors import ApiError, validation_error
from backend.extensions import db
from backend.models import Campaign, Checkin, DayActionTotal, ParticipantDay, Participation
from backend.services.campaigns import campaign_doc
from backend.services.crediting import (
    CampaignRules,
    DayRows,
    EntryDraft,
    append_drafts,
    credit_units,
    hold_intake,
    signals_for,
)
from backend.services.ledger import person_day_lock
from backend.services.membership import ensure_intake_open
from backend.services.statements import before_commit, next_id_call, run_together
from campaigns.calendar import entry_date_ok
from campaigns.crediting import checkin_allowance
from campaigns.decimals import DecimalInvalid, parse_milli
from campaigns.document import ActionRule, action_rule
from campaigns.methodology import kind_rule, load_methodology
from campaigns.rules import counted

SELF_REPORT = "checkin"
MAX_QUANTITY_MILLI = 1_000_000_000  # a million units: beyond any cap, still exact


@dataclass(frozen=True)
class CheckinResult:
    checkin: Checkin
    participation: Participation
    rule: ActionRule
    capped: bool
    claimed_by: str | None
    day_reduction_mg: int
    held: bool = False


def _quantity_milli(rule: ActionRule, quantity) -> int:
    """The submitted quantity in thousandths, by the action kind's rules; 422 at quantity."""
    kind = kind_rule(rule.kind)
    if quantity is None:
        if kind.default_quantity_milli is None:
            raise validation_error({"quantity": [f"Required for {rule.unit} actions."]})
        return kind.default_quantity_milli
    try:
        milli = parse_milli(quantity)
    except DecimalInvalid as invalid:
        raise validation_error({"quantity": [str(invalid)]}) from None
    if milli <= 0 or milli > MAX_QUANTITY_MILLI:
        raise validation_error({"quantity": ["Must be above 0 and at most 1000000."]})
    if kind.integral and milli % 1000:
        raise validation_error({"quantity": ["Must be a whole number."]})
    if kind.once_daily and milli != 1000:
        raise validation_error({"quantity": ["A once-daily action counts 1."]})
    return milli


@functools.cache
def _elsewhere_query():
    """(campaign id, counted) of the person's other campaigns for an action and day; units a
    disqualification reversed count nowhere, so they do not block another campaign."""
    totals, participations = DayActionTotal.__table__, Participation.__table__
    return (select(totals.c.campaign_id, func.sum(totals.c.counted_milli))
            .join(participations, participations.c.id == totals.c.participation_id)
            .where(totals.c.user_id == bindparam("user_id"),
                   totals.c.local_date == bindparam("day"),
                   totals.c.action == bindparam("action"),
                   totals.c.campaign_id != bindparam("campaign_id"),
                   participations.c.disqualified_dt.is_(None))
            .group_by(totals.c.campaign_id).order_by(totals.c.campaign_id))


@functools.cache
def _done_query():
    """The once-daily check-in of an action on a day, if there is one."""
    table = Checkin.__table__
    return select(table.c.id).where(table.c.participation_id == bindparam("participation_id"),
                                    table.c.local_date == bindparam("day"),
                                    table.c.once_daily_action == bindparam("action"))


@functools.cache
def _checkin_insert():
    return insert(Checkin.__table__)


@functools.cache
def _entry_seq_update():
    table = Checkin.__table__
    return update(table).where(table.c.id == bindparam("checkin_id")).values(
        entry_seq=bindparam("seq"))


def record_checkin(user_id: int, campaign, participation: Participation, action: str,
                   quantity, day: date | None, has_idempotency_key: bool,
                   now: datetime) -> CheckinResult:
    """Record the check-in of the user ``user_id`` in ``campaign`` (a Campaign or a
    ``CampaignRef``) as ``participation`` (joined, not disqualified) and append its ledger
    entry (also at 0 mg).

    Errors: 409 campaign.not_active / checkin.already_done; 403 campaign.join_denied
    (disqualified meanwhile); 422 checkin.date_out_of_range, checkin.source_not_allowed,
    validation.failed (action, quantity, Idempotency-Key).
    """
    today = ensure_intake_open(campaign, now)
    doc = campaign_doc(campaign)
    day = day or today
    if not entry_date_ok(day, today=today, joined_on=participation.joined_on,
                         starts_on=doc.starts_on, ends_on=doc.ends_on,
                         late_entry_days=doc.late_entry_days):
        raise ApiError(422, "checkin.date_out_of_range")
    if action not in doc.action_keys:
        raise validation_error({"action": ["This campaign does not count that action."]})
    methodology = load_methodology(doc.methodology)
    rule = action_rule(doc, methodology, action, day)
    if SELF_REPORT not in rule.sources:
        raise ApiError(422, "checkin.source_not_allowed")
    quantity_milli = _quantity_milli(rule, quantity)
    once_daily = kind_rule(rule.kind).once_daily
    if not once_daily and not has_idempotency_key:
        raise validation_error({"Idempotency-Key": ["Required for this action: a retry "
                                                    "without it could count twice."]})

    # The person-day lock, then what crediting reads under it and the check-in's id, in one
    # round trip (the check-in's INSERT then goes out with the chain head's lock).
    _lock, day_rows, elsewhere, done, ((checkin_id,),) = run_together([
        person_day_lock(user_id, day),
        DayRows.query(participation, day - timedelta(days=7), day),
        (_elsewhere_query(), {"user_id": user_id, "day": day, "action": action,
                              "campaign_id": campaign.id}),
        (_done_query(), {"participation_id": participation.id, "day": day,
                         "action": action if once_daily else None}),
        next_id_call(Checkin.__table__),
    ])
    if done:
        raise ApiError(409, "checkin.already_done")
    # PostgreSQL sums bigints as numeric: back to int, amounts stay exact integers.
    elsewhere = [(campaign_id, int(amount)) for campaign_id, amount in elsewhere]
    day_rows = DayRows(day_rows)
    rules = CampaignRules(campaign, doc, methodology)
    total_before = day_rows.total(day, action, SELF_REPORT)
    counted_before = day_rows.counted(day, action, SELF_REPORT)
    values = {"id": checkin_id, "campaign_id": campaign.id,
              "participation_id": participation.id,
              "action": action, "once_daily_action": action if once_daily else None,
              "local_date": day, "quantity_milli": quantity_milli, "counted_milli": 0,
              "reduction_mg": 0, "claimed_by": None, "created_dt": now}
    signals = signals_for(rules, participation, rule, day, SELF_REPORT,
                          total_before + quantity_milli, day_rows=day_rows)
    if signals:
        checkin = Checkin(**values)
        run_together([(_checkin_insert(), values)])
        hold_intake(participation, rule, day, SELF_REPORT, str(checkin.id), quantity_milli,
                    signals, now)
        return _result(checkin, participation, rule, None, held=True)
    granted, reduction = credit_units(rules, participation, rule, day, SELF_REPORT,
                                      quantity_milli, sum(amount for _, amount in elsewhere),
                                      day_rows=day_rows)
    claimed_by = _claimed_by(total_before, counted_before, rule, quantity_milli, granted,
                             elsewhere)
    values.update(counted_milli=granted, reduction_mg=reduction,
                  claimed_by=claimed_by[0] if claimed_by else None)
    checkin = Checkin(**values)  # outside the session: inserted by its statement below
    draft = EntryDraft(campaign, participation, rule, day, quantity_milli, granted, reduction,
                       SELF_REPORT, str(checkin.id))
    append_drafts([draft], now,
                  writes_first=[*day_rows.write_calls(), (_checkin_insert(), values)])
    checkin.entry_seq = draft.seq
    before_commit((_entry_seq_update(), {"checkin_id": checkin.id, "seq": draft.seq}))
    return _result(checkin, participation, rule, claimed_by[1] if claimed_by else None,
                   day_reduction_mg=draft.day_total_mg)


def _result(checkin: Checkin, participation: Participation, rule: ActionRule,
            claimed_by: str | None, held: bool = False,
            day_reduction_mg: int | None = None) -> CheckinResult:
    if day_reduction_mg is None:
        day = db.session.get(ParticipantDay, (participation.id, checkin.local_date))
        day_reduction_mg = day.reduction_mg if day else 0
    return CheckinResult(checkin, participation, rule,
                         checkin.counted_milli < checkin.quantity_milli, claimed_by,
                         day_reduction_mg, held)


def _claimed_by(before_total: int, counted_before: int, rule: ActionRule, quantity_milli: int,
                granted: int, elsewhere: list[tuple[int, int]]) -> tuple[int, str] | None:
    """The other campaign that already counted the units this check-in could not count."""
    if granted >= quantity_milli or not any(amount > 0 for _, amount in elsewhere):
        return None
    natural = (counted(before_total + quantity_milli, rule.cap_milli, rule.min_milli)
               - counted(before_total, rule.cap_milli, rule.min_milli))
    own_allowance = checkin_allowance(rule.cap_milli, counted_before, 0)
    without_others = natural if own_allowance is None else min(natural, own_allowance)
    if granted >= without_others:
        return None
    campaign_id = next(cid for cid, amount in elsewhere if amount > 0)
    return campaign_id, db.session.get(Campaign, campaign_id).slug
