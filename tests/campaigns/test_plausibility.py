import pytest

from campaigns.methodology import UnknownAction, load_methodology
from campaigns.plausibility import Intake, intake_signals

M = load_methodology("cn-consumer-v1")


@pytest.mark.parametrize(("action", "intake", "signals"), [
    ("walk_steps", Intake(day_total_milli=12_345_000), ()),
    ("walk_steps", Intake(day_total_milli=50_000_000), ()),
    ("walk_steps", Intake(day_total_milli=50_001_000), ("steps_over_limit",)),
    ("walk_steps", Intake(day_total_milli=66_666_000), ("steps_over_limit",
                                                       "steps_repeated_digit")),
    ("walk_steps", Intake(day_total_milli=22_222_000), ("steps_repeated_digit",)),
    ("walk_steps", Intake(day_total_milli=2_222_000), ()),  # 4 digits are common
    ("walk_steps", Intake(day_total_milli=22_232_000), ()),
    # 25 km/h: 10 km in 24 min is exactly 25 km/h (fine), in 23 min too fast
    ("cycle_km", Intake(day_total_milli=10_000, distance_m=10_000, duration_s=24 * 60), ()),
    ("cycle_km", Intake(day_total_milli=10_000, distance_m=10_000, duration_s=23 * 60),
     ("cycling_too_fast",)),
    ("cycle_km", Intake(day_total_milli=10_000, distance_m=10_000, duration_s=0),
     ("cycling_too_fast",)),
    ("cycle_km", Intake(day_total_milli=10_000, distance_m=10_000), ()),  # no duration given
    ("bus_km", Intake(day_total_milli=10_000, distance_m=10_000, duration_s=60), ()),
    # over the cap of a count action on the third day in a row
    ("clean_plate", Intake(day_total_milli=3000, cap_milli=2000, previous_days_over_cap=2),
     ("count_over_cap_streak",)),
    ("clean_plate", Intake(day_total_milli=3000, cap_milli=2000, previous_days_over_cap=1), ()),
    ("clean_plate", Intake(day_total_milli=2000, cap_milli=2000, previous_days_over_cap=5), ()),
    ("clothes_recycle", Intake(day_total_milli=30_000, cap_milli=20_000,
                               previous_days_over_cap=5), ()),  # weight, not count
])
def test_signals(action, intake, signals):
    assert intake_signals(M, action, intake) == signals


def test_unknown_action():
    with pytest.raises(UnknownAction):
        intake_signals(M, "teleport", Intake(day_total_milli=1))
