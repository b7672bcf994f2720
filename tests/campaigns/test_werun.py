"""WeRun step lists: Beijing days, highest count kept, future days dropped, bad lists refused."""

from datetime import UTC, date, datetime

import pytest

from campaigns.werun import step_days


def midnight_beijing(day: date) -> int:
    # 00:00 in Beijing is 16:00 UTC the day before
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) - 8 * 3600


def test_real_capture_shape_gives_beijing_dates():
    payload = {"stepInfoList": [{"timestamp": 1505836800, "step": 3611},
                                {"timestamp": 1505923200, "step": 2657}]}
    assert step_days(payload, date(2017, 9, 21)) == {date(2017, 9, 20): 3611,
                                                     date(2017, 9, 21): 2657}


def test_a_timestamp_late_in_the_utc_day_is_the_next_beijing_day():
    stamp = int(datetime(2022, 2, 3, 16, 30, tzinfo=UTC).timestamp())
    assert step_days({"stepInfoList": [{"timestamp": stamp, "step": 5}]}, date(2022, 2, 4)) == {
        date(2022, 2, 4): 5}


def test_future_days_are_dropped_and_repeats_keep_the_highest():
    today = date(2022, 2, 4)
    payload = {"stepInfoList": [
        {"timestamp": midnight_beijing(today), "step": 100},
        {"timestamp": midnight_beijing(today) + 60, "step": 300},
        {"timestamp": midnight_beijing(date(2022, 2, 5)), "step": 9},
    ]}
    assert step_days(payload, today) == {today: 300}


@pytest.mark.parametrize("payload", [
    {}, {"stepInfoList": "x"}, {"stepInfoList": [1]},
    {"stepInfoList": [{"timestamp": "1", "step": 1}]},
    {"stepInfoList": [{"timestamp": 1, "step": -1}]},
    {"stepInfoList": [{"timestamp": 1, "step": True}]},
    {"stepInfoList": [{"timestamp": 10**20, "step": 1}]},
    {"stepInfoList": [{"timestamp": 1, "step": 1}] * 32},
])
def test_anything_else_is_refused(payload):
    with pytest.raises(ValueError):
        step_days(payload, date(2022, 2, 4))
