from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.crediting import (
    CreditCandidate,
    CreditChoice,
    checkin_allowance,
    checkin_delta,
    choose_campaign,
    trip_action,
)
from campaigns.rules import credit_mg


@pytest.mark.parametrize(("cap", "in_c", "elsewhere", "expected"), [
    (6000, 0, 0, 6000), (6000, 2000, 3000, 1000), (6000, 2000, 5000, 0), (None, 5000, 9000, None),
])
def test_checkin_allowance(cap, in_c, elsewhere, expected):
    assert checkin_allowance(cap, in_c, elsewhere) == expected


@pytest.mark.parametrize(("total", "qty", "in_c", "elsewhere", "counted", "mg"), [
    (0, 3000, 0, 0, 3000, 240_000),        # 3 bus rides, nothing elsewhere
    (0, 3000, 0, 5000, 1000, 80_000),      # 5 of the cap of 6 were counted in another campaign
    (3000, 3000, 1000, 5000, 0, 0),        # nothing left
    (4000, 4000, 4000, 0, 2000, 160_000),  # the cap of 6 in this campaign
    (0, 2000, 0, 6000, 0, 0),              # claimed elsewhere: recorded at 0
])
def test_checkin_delta(total, qty, in_c, elsewhere, counted, mg):
    d = checkin_delta(total, qty, counted_before_milli=in_c, counted_elsewhere_milli=elsewhere,
                      cap_milli=6000, min_milli=0, factor_milli=80_000)
    assert (d.counted_milli, d.mg) == (counted, mg)


@given(st.lists(st.integers(min_value=0, max_value=5000), max_size=10),
       st.integers(min_value=0, max_value=8000), st.integers(min_value=0, max_value=8000))
def test_checkins_never_exceed_cap_across_campaigns(quantities, cap, elsewhere):
    total = in_c = mg = 0
    for q in quantities:
        d = checkin_delta(total, q, counted_before_milli=in_c, counted_elsewhere_milli=elsewhere,
                          cap_milli=cap, min_milli=0, factor_milli=52_000)
        assert d.counted_milli >= 0 and d.mg >= 0
        total, in_c, mg = total + q, in_c + d.counted_milli, mg + d.mg
    assert in_c <= max(0, cap - elsewhere)
    assert mg == credit_mg(in_c, 52_000)


@pytest.mark.parametrize(("mode", "distance", "actions", "expected"), [
    ("bus", 5000, {"bus_km", "bus_ride"}, ("bus_km", 5000, None)),
    ("bus", None, {"bus_km", "bus_ride"}, ("bus_ride", 1000, None)),
    ("bus", 5000, {"bus_ride"}, ("bus_ride", 1000, None)),
    ("bus", 5000, {"metro_ride"}, (None, 0, "trip.mode_not_counted")),
    ("metro", 12_345, {"metro_km"}, ("metro_km", 12_345, None)),
    ("metro", None, {"metro_km"}, (None, 0, "trip.mode_not_counted")),
    ("bike", 3200, {"cycle_km"}, ("cycle_km", 3200, None)),
    ("bike", None, {"cycle_km"}, (None, 0, "trip.distance_required")),
    ("bike", 3200, {"bus_ride"}, (None, 0, "trip.mode_not_counted")),
    ("taxi", 3200, {"bus_ride"}, (None, 0, "trip.mode_not_counted")),
])
def test_trip_action(mode, distance, actions, expected):
    t = trip_action(mode, distance, actions)
    assert (t.action, t.quantity_milli, t.code) == expected


def cand(campaign_id, **kw):
    base = {"campaign_id": campaign_id, "joined_dt": datetime(2022, 1, 5, tzinfo=UTC),
            "joined_on": date(2022, 1, 5), "disqualified": False, "today": date(2022, 2, 4),
            "item_date": date(2022, 2, 4), "starts_on": date(2022, 1, 4),
            "ends_on": date(2022, 3, 13), "late_entry_days": 1}
    base.update(kw)
    return CreditCandidate(**base)


LATER = datetime(2022, 1, 20, tzinfo=UTC)


@pytest.mark.parametrize(("candidates", "source", "expected"), [
    ([], "partner", CreditChoice(None, None)),
    ([cand(2), cand(1)], "partner", CreditChoice(1, None)),              # tie: lowest id
    ([cand(1, joined_dt=LATER), cand(2)], "partner", CreditChoice(2, None)),  # joined earliest
    ([cand(1, disqualified=True), cand(2, joined_dt=LATER)], "partner", CreditChoice(2, None)),
    ([cand(1, disqualified=True)], "partner", CreditChoice(None, "campaign.join_denied")),
    ([cand(1, today=date(2022, 3, 20), item_date=date(2022, 3, 13))], "partner",
     CreditChoice(None, "partner.date_out_of_range")),                    # intake closed
    ([cand(1, item_date=date(2022, 2, 1))], "partner",
     CreditChoice(None, "partner.date_out_of_range")),                    # too late
    ([cand(1, item_date=date(2022, 2, 1))], "werun", CreditChoice(1, None)),  # WeRun: 30 days
    ([cand(1, item_date=date(2022, 1, 4))], "werun", CreditChoice(None,
                                                                   "partner.date_out_of_range")),
    ([cand(1, not_counted_code="trip.mode_not_counted")], "partner",
     CreditChoice(None, "trip.mode_not_counted")),
    ([cand(1, not_counted_code="trip.mode_not_counted"), cand(2, joined_dt=LATER)], "partner",
     CreditChoice(2, None)),
    # the first condition that leaves nobody names the code
    ([cand(1, disqualified=True), cand(2, item_date=date(2022, 1, 1))], "partner",
     CreditChoice(None, "partner.date_out_of_range")),
])
def test_choose_campaign(candidates, source, expected):
    assert choose_campaign(candidates, source=source) == expected


def test_choose_campaign_unknown_source():
    with pytest.raises(ValueError):
        choose_campaign([cand(1)], source="checkin")
