"""Check-ins: caps and minimums on day totals, credit groups, one unit in one campaign."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select

from backend.errors import ApiError, validation_error
from backend.extensions import db
from backend.models import Campaign, Checkin, DayActionTotal, ParticipantDay, Participation, User
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
from backend.services.ledger import lock_person_days
from backend.services.membership import ensure_intake_open, require_participation
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


def _elsewhere(user: User, campaign: Campaign, action: str, day: date) -> list[tuple[int, int]]:
    """(campaign id, counted) of the person's other campaigns for this action and day; units
    a disqualification reversed count nowhere, so they do not block another campaign."""
    # PostgreSQL sums bigints as numeric: back to int, amounts stay exact integers.
    return [(campaign_id, int(amount)) for campaign_id, amount in db.session.execute(
        select(DayActionTotal.campaign_id, func.sum(DayActionTotal.counted_milli))
        .join(Participation, Participation.id == DayActionTotal.participation_id)
        .where(DayActionTotal.user_id == user.id, DayActionTotal.local_date == day,
               DayActionTotal.action == action, DayActionTotal.campaign_id != campaign.id,
               Participation.disqualified_dt.is_(None))
        .group_by(DayActionTotal.campaign_id).order_by(DayActionTotal.campaign_id)
    )]


def record_checkin(user: User, campaign: Campaign, action: str, quantity, day: date | None,
                   has_idempotency_key: bool, now: datetime) -> CheckinResult:
    """Record a check-in and append its ledger entry (also at 0 mg). Flushes.

    Errors: 409 campaign.not_joined / campaign.not_active / checkin.already_done; 403
    campaign.join_denied (disqualified); 422 checkin.date_out_of_range,
    checkin.source_not_allowed, validation.failed (action, quantity, Idempotency-Key).
    """
    participation = require_participation(campaign, user)
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

    lock_person_days([(user.id, day)])
    if once_daily and db.session.scalar(select(Checkin.id).where(
            Checkin.participation_id == participation.id, Checkin.local_date == day,
            Checkin.once_daily_action == action)) is not None:
        raise ApiError(409, "checkin.already_done")

    rules = CampaignRules(campaign, doc, methodology)
    day_rows = DayRows(participation, day - timedelta(days=7), day)
    total_before = day_rows.total(day, action, SELF_REPORT)
    counted_before = day_rows.counted(day, action, SELF_REPORT)
    checkin = Checkin(
        campaign_id=campaign.id, participation_id=participation.id, action=action,
        once_daily_action=action if once_daily else None, local_date=day,
        quantity_milli=quantity_milli, counted_milli=0, reduction_mg=0, created_dt=now,
    )
    signals = signals_for(rules, participation, rule, day, SELF_REPORT,
                          total_before + quantity_milli, day_rows=day_rows)
    if signals:
        db.session.add(checkin)
        db.session.flush()
        hold_intake(participation, rule, day, SELF_REPORT, str(checkin.id), quantity_milli,
                    signals, now)
        return _result(checkin, participation, rule, None, held=True)
    elsewhere = _elsewhere(user, campaign, action, day)
    granted, reduction = credit_units(rules, participation, rule, day, SELF_REPORT,
                                      quantity_milli, sum(amount for _, amount in elsewhere),
                                      day_rows=day_rows)
    claimed_by = _claimed_by(total_before, counted_before, rule, quantity_milli, granted,
                             elsewhere)
    checkin.counted_milli = granted
    checkin.reduction_mg = reduction
    checkin.claimed_by = claimed_by[0] if claimed_by else None
    db.session.add(checkin)
    db.session.flush()
    draft = EntryDraft(campaign, participation, rule, day, quantity_milli, granted, reduction,
                       SELF_REPORT, str(checkin.id))
    append_drafts([draft], now)
    checkin.entry_seq = draft.seq
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
