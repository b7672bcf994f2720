"""Check-ins: caps and minimums on day totals, credit groups, one unit in one campaign."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select

from backend.errors import ApiError, validation_error
from backend.extensions import db
from backend.models import Campaign, Checkin, DayActionTotal, ParticipantDay, Participation, User
from backend.services.campaigns import campaign_doc
from backend.services.ledger import append_entry, lock_ledgers, lock_person_days
from backend.services.membership import ensure_intake_open, require_participation
from campaigns.calendar import entry_date_ok
from campaigns.crediting import checkin_allowance, checkin_delta
from campaigns.decimals import DecimalInvalid, parse_milli
from campaigns.document import ActionRule, action_rule
from campaigns.methodology import kind_rule, load_methodology
from campaigns.rules import counted, credit_mg, entry_reduction_mg

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


def _day_credits(participation: Participation, day: date) -> dict[tuple[str, str], DayActionTotal]:
    rows = db.session.scalars(
        select(DayActionTotal).where(DayActionTotal.participation_id == participation.id,
                                     DayActionTotal.local_date == day)
        .execution_options(populate_existing=True)
    )
    return {(row.action, row.source): row for row in rows}


def _elsewhere(user: User, campaign: Campaign, action: str, day: date) -> list[tuple[int, int]]:
    """(campaign id, counted) of the person's other campaigns for this action and day."""
    return [tuple(row) for row in db.session.execute(
        select(DayActionTotal.campaign_id, func.sum(DayActionTotal.counted_milli))
        .where(DayActionTotal.user_id == user.id, DayActionTotal.local_date == day,
               DayActionTotal.action == action, DayActionTotal.campaign_id != campaign.id)
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

    credits = _day_credits(participation, day)
    row = credits.get((action, SELF_REPORT))
    if row is None:
        row = DayActionTotal(participation_id=participation.id, local_date=day, action=action,
                             source=SELF_REPORT, user_id=user.id, campaign_id=campaign.id,
                             total_milli=0, counted_milli=0, credit_mg=0)
        db.session.add(row)
        credits[(action, SELF_REPORT)] = row
    elsewhere = _elsewhere(user, campaign, action, day)
    counted_elsewhere = sum(amount for _, amount in elsewhere)
    delta = checkin_delta(row.total_milli, quantity_milli, counted_before_milli=row.counted_milli,
                          counted_elsewhere_milli=counted_elsewhere, cap_milli=rule.cap_milli,
                          min_milli=rule.min_milli, factor_milli=rule.factor_milli)
    before = {key: r.credit_mg for key, r in credits.items()}
    row.total_milli += quantity_milli
    row.counted_milli += delta.counted_milli
    row.credit_mg = credit_mg(row.counted_milli, rule.factor_milli)
    after = {key: r.credit_mg for key, r in credits.items()}
    reduction = entry_reduction_mg(before, after, methodology.credit_groups,
                                   car_free_day_max=doc.car_free_day_max)
    claimed_by = _claimed_by(row, rule, quantity_milli, delta.counted_milli, elsewhere)

    checkin = Checkin(
        campaign_id=campaign.id, participation_id=participation.id, action=action,
        once_daily_action=action if once_daily else None, local_date=day,
        quantity_milli=quantity_milli, counted_milli=delta.counted_milli, reduction_mg=reduction,
        claimed_by=claimed_by[0] if claimed_by else None, created_dt=now,
    )
    db.session.add(checkin)
    db.session.flush()
    ledger = lock_ledgers([campaign.id])[campaign.id]
    entry = append_entry(
        ledger, campaign, participation, action=action, local_date=day,
        quantity_milli=quantity_milli, counted_milli=delta.counted_milli,
        factor_milli=rule.factor_milli, reduction_mg=reduction, source=SELF_REPORT,
        source_ref=str(checkin.id), methodology_version=rule.methodology_version, now=now,
    )
    checkin.entry_seq = entry.seq
    day_total = db.session.get(ParticipantDay, (participation.id, day)).reduction_mg
    return CheckinResult(checkin, participation, rule, delta.counted_milli < quantity_milli,
                         claimed_by[1] if claimed_by else None, day_total)


def _claimed_by(row: DayActionTotal, rule: ActionRule, quantity_milli: int, granted: int,
                elsewhere: list[tuple[int, int]]) -> tuple[int, str] | None:
    """The other campaign that already counted the units this check-in could not count."""
    if granted >= quantity_milli or not any(amount > 0 for _, amount in elsewhere):
        return None
    before_total = row.total_milli - quantity_milli
    natural = (counted(row.total_milli, rule.cap_milli, rule.min_milli)
               - counted(before_total, rule.cap_milli, rule.min_milli))
    counted_before = row.counted_milli - granted
    own_allowance = checkin_allowance(rule.cap_milli, counted_before, 0)
    without_others = natural if own_allowance is None else min(natural, own_allowance)
    if granted >= without_others:
        return None
    campaign_id = next(cid for cid, amount in elsewhere if amount > 0)
    return campaign_id, db.session.get(Campaign, campaign_id).slug
