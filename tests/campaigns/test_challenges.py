"""Challenge progress: streaks, counts per record and per day, totals."""

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from campaigns.challenges import Facts, completed, current_streak, progress
from campaigns.document_model import Challenge

D = date(2022, 2, 10)
WALK = Challenge(key="walk-7", name="w", kind="streak", action="walk_steps", target=7,
                 min_milli=10_000_000)
PLATES = Challenge(key="plates", name="p", kind="count", action="clean_plate", target=10,
                   per="record")
GREEN_DAYS = Challenge(key="green", name="g", kind="count", action="car_free_day", target=5,
                       per="day")
KG = Challenge(key="kg", name="k", kind="total", target_mg=1_000_000)


def facts(day_counted=None, records=None, total_mg=0):
    return Facts(day_counted or {}, records or {}, total_mg)


def test_streak_counts_consecutive_days_meeting_the_minimum():
    days = {("walk_steps", D - timedelta(days=i)): 10_000_000 for i in range(3)}
    days[("walk_steps", D - timedelta(days=3))] = 9_999_000  # below the minimum breaks it
    days[("walk_steps", D - timedelta(days=4))] = 12_000_000
    assert progress(WALK, facts(days), D) == 3


def test_a_streak_survives_until_today_ends_but_not_a_missed_day():
    days = [D - timedelta(days=1), D - timedelta(days=2)]
    assert current_streak(days, D) == 2
    assert current_streak(days, D + timedelta(days=1)) == 0


def test_counts_per_record_and_per_day_and_total():
    counted = {("car_free_day", D): 1000, ("car_free_day", D - timedelta(days=2)): 1000,
               ("car_free_day", D - timedelta(days=3)): 0}
    assert progress(GREEN_DAYS, facts(counted), D) == 2
    assert progress(PLATES, facts(records={"clean_plate": 10}), D) == 10
    assert completed(PLATES, facts(records={"clean_plate": 10}), D)
    assert not completed(KG, facts(total_mg=999_999), D)
    assert completed(KG, facts(total_mg=1_000_000), D)


@given(st.sets(st.integers(0, 40)), st.integers(0, 45))
def test_streak_is_never_longer_than_the_days_and_is_a_real_run(offsets, today_offset):
    today = D + timedelta(days=today_offset)
    days = [D + timedelta(days=o) for o in offsets]
    run = current_streak(days, today)
    assert 0 <= run <= len(days)
    if run:
        latest = max(days)
        assert all(latest - timedelta(days=i) in set(days) for i in range(run))
        assert latest - timedelta(days=run) not in set(days)
