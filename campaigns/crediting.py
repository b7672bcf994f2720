"""One unit, one campaign (DESIGN.md): where a unit of activity is credited.

Check-ins are limited by what other campaigns already counted for the person, action and day;
a WeRun day or a partner item is credited to exactly one of the person's campaigns. Trips map
to actions by mode. Everything is a pure function of plain values.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import MappingProxyType

from campaigns.calendar import is_intake_open
from campaigns.rules import Delta, counted, credit_mg

# Partner rejection codes (API.md "Partner endpoints").
JOIN_DENIED = "campaign.join_denied"
DATE_OUT_OF_RANGE = "partner.date_out_of_range"
ACTION_NOT_COUNTED = "record.action_not_counted"
MODE_NOT_COUNTED = "trip.mode_not_counted"
DISTANCE_REQUIRED = "trip.distance_required"

# Trip mode -> (action counted by distance, action counted per ride). A distance wins when the
# partner gives one and the campaign counts the distance action (a trip is counted once).
TRIP_MODES = MappingProxyType({
    "bus": ("bus_km", "bus_ride"),
    "metro": ("metro_km", "metro_ride"),
    "bike": ("cycle_km", None),
})


def checkin_allowance(cap_milli: int | None, counted_in_campaign_milli: int,
                      counted_elsewhere_milli: int) -> int | None:
    """How much a check-in to campaign C may still count: cap_C - counted_in_C - elsewhere.

    Never below 0; None when C's cap is None (no limit).
    """
    if cap_milli is None:
        return None
    return max(0, cap_milli - counted_in_campaign_milli - counted_elsewhere_milli)


def checkin_delta(total_before_milli: int, quantity_milli: int, *, counted_before_milli: int,
                  counted_elsewhere_milli: int, cap_milli: int | None, min_milli: int,
                  factor_milli: int) -> Delta:
    """The counted quantity and milligrams of a check-in, one unit counted in one campaign.

    total_before_milli: the day total (everything submitted) in C before this check-in.
    counted_before_milli: what C counted that day so far (may be below counted(total) when
      earlier check-ins were limited by other campaigns).
    counted_elsewhere_milli: what the person's other campaigns counted for this action and day.
    The day's counting rule (cap, minimum) gives the natural increase; the allowance limits it.
    Milligrams are the credit of C's counted quantity after minus before, so C's entries add up
    to credit_mg(C's final counted quantity).
    """
    if quantity_milli < 0 or counted_before_milli < 0 or counted_elsewhere_milli < 0:
        raise ValueError("quantities are never negative")
    natural = (counted(total_before_milli + quantity_milli, cap_milli, min_milli)
               - counted(total_before_milli, cap_milli, min_milli))
    allowance = checkin_allowance(cap_milli, counted_before_milli, counted_elsewhere_milli)
    granted = natural if allowance is None else min(natural, allowance)
    return Delta(
        counted_milli=granted,
        mg=(credit_mg(counted_before_milli + granted, factor_milli)
            - credit_mg(counted_before_milli, factor_milli)),
    )


@dataclass(frozen=True)
class TripAction:
    """A trip mapped to an action: (action, quantity_milli) or a rejection code."""

    action: str | None
    quantity_milli: int
    code: str | None


def trip_action(mode: str, distance_m: int | None, counted_actions: Collection[str]) -> TripAction:
    """Map a partner trip to the action a campaign counts it as.

    bus/metro: the distance action when distance_m is given and counted, else the ride action
    (quantity 1). bike: cycle_km, distance required. A distance in metres is exactly the
    quantity in thousandths of a km. Codes: trip.mode_not_counted, trip.distance_required.
    """
    if mode not in TRIP_MODES:
        return TripAction(None, 0, MODE_NOT_COUNTED)
    by_distance, per_ride = TRIP_MODES[mode]
    if distance_m is not None and distance_m < 0:
        raise ValueError("distance_m is never negative")
    if distance_m is not None and by_distance in counted_actions:
        return TripAction(by_distance, distance_m, None)
    if per_ride is not None and per_ride in counted_actions:
        return TripAction(per_ride, 1000, None)
    if per_ride is None and by_distance in counted_actions:
        return TripAction(None, 0, DISTANCE_REQUIRED)
    return TripAction(None, 0, MODE_NOT_COUNTED)


@dataclass(frozen=True)
class CreditCandidate:
    """One of the person's joined campaigns that the source may feed, as seen by one item.

    today and item_date are campaign-local (the item's instant in that campaign's zone).
    not_counted_code: None when the campaign counts the item's action, else the code to report
    (trip_action's code for a trip, record.action_not_counted for a record or WeRun day).
    """

    campaign_id: int
    joined_dt: datetime
    joined_on: date
    disqualified: bool
    today: date
    item_date: date
    starts_on: date
    ends_on: date
    late_entry_days: int
    not_counted_code: str | None = None


@dataclass(frozen=True)
class CreditChoice:
    """The campaign credited (campaign_id) or, when none, the first failed condition's code.

    Both None when there were no candidates (WeRun: `outside`; partner: `unmatched`).
    """

    campaign_id: int | None
    code: str | None


def _date_ok(c: CreditCandidate, partner: bool) -> bool:
    in_range = c.starts_on <= c.item_date <= c.ends_on and c.item_date >= c.joined_on
    if not partner:
        return in_range
    return (in_range and c.item_date <= c.today
            and c.item_date >= c.today - timedelta(days=c.late_entry_days))


def choose_campaign(candidates: Iterable[CreditCandidate], *, source: str) -> CreditChoice:
    """Pick the one campaign that credits a WeRun day (source "werun") or partner item ("partner").

    Conditions, applied in order as filters: not disqualified (campaign.join_denied); intake open
    today (partner.date_out_of_range); the item's date within starts_on..ends_on and on or after
    the join day, and for a partner item not after today nor more than late_entry_days before
    it (partner.date_out_of_range); the campaign counts the item (its not_counted_code).
    Among the survivors the campaign joined earliest wins, then the lowest id. When a filter
    leaves none, its code is returned.
    """
    if source not in ("werun", "partner"):
        raise ValueError(f"unknown crediting source {source!r}")
    partner = source == "partner"
    # Sorted first so that ties and reported codes are deterministic: joined earliest, lowest id.
    remaining = sorted(candidates, key=lambda c: (c.joined_dt, c.campaign_id))
    if not remaining:
        return CreditChoice(None, None)
    filters = (
        (JOIN_DENIED, lambda c: not c.disqualified),
        (DATE_OUT_OF_RANGE,
         lambda c: is_intake_open(c.today, c.starts_on, c.ends_on, c.late_entry_days)),
        (DATE_OUT_OF_RANGE, lambda c: _date_ok(c, partner)),
    )
    for code, keep in filters:
        remaining = [c for c in remaining if keep(c)]
        if not remaining:
            return CreditChoice(None, code)
    counting = [c for c in remaining if c.not_counted_code is None]
    if not counting:
        return CreditChoice(None, remaining[0].not_counted_code)
    return CreditChoice(counting[0].campaign_id, None)
