"""Counting rules: table-driven cases and invariants over any order of submissions."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.methodology import load_methodology
from campaigns.rules import (
    counted,
    credit_mg,
    day_credit_mg,
    entry_reduction_mg,
    mode_credits,
    points,
    progress,
    submission_delta,
    trees,
)

GROUPS = load_methodology("cn-consumer-v1").credit_groups


@pytest.mark.parametrize(("total", "cap", "minimum", "expected"), [
    (0, 10_000_000, 1_000_000, 0),
    (999_000, 10_000_000, 1_000_000, 0),          # below the minimum counts nothing
    (1_000_000, 10_000_000, 1_000_000, 1_000_000),  # at the minimum counts all of it
    (12_345_000, 10_000_000, 1_000_000, 10_000_000),  # capped
    (2500, 2000, 0, 2000),
    (2500, None, 0, 2500),                        # no cap
    (0, 0, 0, 0),
    (5000, 0, 0, 0),                              # a cap of 0 switches the action off
])
def test_counted(total, cap, minimum, expected):
    assert counted(total, cap, minimum) == expected


def test_counted_rejects_negatives():
    for args in ((-1, 1, 0), (1, -1, 0), (1, 1, -1)):
        with pytest.raises(ValueError):
            counted(*args)


@pytest.mark.parametrize(("counted_milli", "factor_milli", "mg"), [
    (10_000_000, 20, 200_000),    # 10000 steps x 0.02 g = 200 g
    (1_000, 80_000, 80_000),      # one bus ride, 80 g
    (3_333, 26_900, 89_657),      # 3.333 km x 26.9 g = 89.6577 g -> floor 89657 mg
    (1, 20, 0),                   # 0.001 step x 0.02 g = 0.02 mg -> 0
    (1_500, 46_800, 70_200),
    (0, 144_000, 0),
])
def test_credit_mg(counted_milli, factor_milli, mg):
    assert credit_mg(counted_milli, factor_milli) == mg


@pytest.mark.parametrize(("before", "after", "delta_counted", "delta_mg"), [
    (0, 500_000, 0, 0),                        # below min: recorded, counts 0
    (500_000, 1_200_000, 1_200_000, 24_000),   # crossing the min counts the whole day total
    (9_000_000, 12_000_000, 1_000_000, 20_000),  # crossing the cap counts up to it
    (10_000_000, 15_000_000, 0, 0),            # past the cap counts 0
    (3_000_000, 3_000_000, 0, 0),              # an equal count changes nothing
])
def test_submission_delta_steps(before, after, delta_counted, delta_mg):
    delta = submission_delta(before, after, cap_milli=10_000_000, min_milli=1_000_000,
                             factor_milli=20)
    assert (delta.counted_milli, delta.mg) == (delta_counted, delta_mg)


def test_submission_delta_never_decreases():
    with pytest.raises(ValueError):
        submission_delta(2000, 1000, cap_milli=None, min_milli=0, factor_milli=1)


def test_entries_split_mg_by_credit_difference():
    # 3 x 0.333 km of bus at 26.9 g/km credit floor(0.999 x 26.9 x 1000) = 26873 mg in total;
    # flooring each entry on its own (3 x 8957) would lose a milligram.
    totals = [0, 333, 666, 999]
    deltas = [submission_delta(a, b, cap_milli=None, min_milli=0, factor_milli=26_900).mg
              for a, b in itertools.pairwise(totals)]
    assert deltas == [8957, 8958, 8958]
    assert sum(deltas) == credit_mg(999, 26_900) == 26_873


submissions = st.lists(st.integers(min_value=0, max_value=30_000_000), max_size=20)
caps = st.one_of(st.none(), st.integers(min_value=0, max_value=20_000_000))


@given(submissions, caps, st.integers(min_value=0, max_value=2_000_000),
       st.integers(min_value=0, max_value=5_000_000), st.randoms(use_true_random=False))
def test_day_entries_add_up_whatever_the_order(quantities, cap, minimum, factor, rnd):
    if cap is not None:
        minimum = min(minimum, cap)

    def run(order):
        total, count_sum, mg_sum = 0, 0, 0
        for q in order:
            d = submission_delta(total, total + q, cap_milli=cap, min_milli=minimum,
                                 factor_milli=factor)
            assert d.counted_milli >= 0 and d.mg >= 0
            total += q
            count_sum += d.counted_milli
            mg_sum += d.mg
            assert cap is None or count_sum <= cap
        return total, count_sum, mg_sum

    total, count_sum, mg_sum = run(quantities)
    assert count_sum == counted(total, cap, minimum)
    assert mg_sum == credit_mg(count_sum, factor)
    shuffled = list(quantities)
    rnd.shuffle(shuffled)
    assert run(shuffled) == (total, count_sum, mg_sum)


# Credit groups ----------------------------------------------------------------------------

@pytest.mark.parametrize(("credits", "cfd_max", "expected"), [
    ({}, True, 0),
    ({("clean_plate", "checkin"): 144_000}, True, 144_000),
    # the same bus ride self-reported and pushed by a partner: the larger counts
    ({("bus_ride", "checkin"): 80_000, ("bus_ride", "partner"): 80_000}, True, 80_000),
    # partner knows the distance: by km from the partner vs. per ride self-reported
    ({("bus_ride", "checkin"): 80_000, ("bus_km", "partner"): 134_500}, True, 134_500),
    # one source's rides and km of a mode add up (different trips)
    ({("bus_ride", "partner"): 80_000, ("bus_km", "partner"): 26_900}, True, 106_900),
    # different modes add up
    ({("bus_ride", "checkin"): 80_000, ("metro_ride", "checkin"): 52_000}, True, 132_000),
    # a car-free day against the day's transit: the larger
    ({("car_free_day", "checkin"): 3_700_000, ("metro_km", "partner"): 936_000}, True,
     3_700_000),
    ({("car_free_day", "checkin"): 3_700_000, ("metro_km", "partner"): 936_000}, False,
     4_636_000),
    ({("car_free_day", "checkin"): 3_700_000, ("cycle_km", "checkin"): 705_000,
      ("clean_plate", "checkin"): 288_000}, True, 3_988_000),
])
def test_day_credit(credits, cfd_max, expected):
    assert day_credit_mg(credits, GROUPS, car_free_day_max=cfd_max) == expected


def test_entry_reduction_mg_is_group_difference():
    before = {("bus_ride", "checkin"): 80_000}
    after = {**before, ("bus_ride", "partner"): 80_000}
    assert entry_reduction_mg(before, after, GROUPS, car_free_day_max=True) == 0
    after2 = {**after, ("bus_km", "partner"): 26_900}
    assert entry_reduction_mg(after, after2, GROUPS, car_free_day_max=True) == 26_900
    with pytest.raises(ValueError):
        entry_reduction_mg(after, before, GROUPS, car_free_day_max=True)


GROUP_KEYS = [(a, s) for a in ("bus_ride", "bus_km", "metro_ride", "metro_km", "cycle_km",
                               "car_free_day", "clean_plate")
              for s in ("checkin", "partner")]
increments = st.lists(st.tuples(st.sampled_from(GROUP_KEYS),
                                st.integers(min_value=0, max_value=5_000_000)), max_size=25)


@given(increments, st.booleans())
def test_group_entries_never_negative_and_add_up(steps, cfd_max):
    credits: dict = {}
    total = 0
    for key, add in steps:
        after = {**credits, key: credits.get(key, 0) + add}
        mg = entry_reduction_mg(credits, after, GROUPS, car_free_day_max=cfd_max)
        assert mg >= 0
        total += mg
        credits = after
    assert total == day_credit_mg(credits, GROUPS, car_free_day_max=cfd_max)
    assert total <= sum(credits.values())
    for mode, mg in mode_credits(credits, GROUPS).items():
        members = GROUPS.mode_actions(mode)
        per_source = [sum(v for (a, s), v in credits.items() if a in members and s == source)
                      for source in ("checkin", "partner")]
        assert mg == max(per_source)  # never the sum of the sources


@pytest.mark.parametrize(("total_mg", "ppg_milli", "expected"), [
    (0, 1000, 0), (999, 1000, 0), (1000, 1000, 1), (200_000, 1000, 200), (1999, 1000, 1),
    (200_000, 500, 100), (200_000, 1500, 300), (1_234_567, 2000, 2469),
])
def test_points(total_mg, ppg_milli, expected):
    assert points(total_mg, ppg_milli) == expected


def test_progress_and_trees():
    assert progress(750_000, 1_500_000) == 0.5
    assert progress(10, 0) == 0.0
    assert trees(17_900_000, 17_900_000) == 1.0
    assert trees(26_850_000, 17_900_000) == 1.5
    assert trees(1, 17_900_000) == 0.0
