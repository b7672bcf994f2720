from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.calendar import (
    UnknownTimezone,
    date_range,
    entry_date_ok,
    is_intake_open,
    local_date,
    local_day_bounds,
    local_today,
    utc_instant_of_local_midnight,
    validate_timezone,
    week_start,
)

SH = "Asia/Shanghai"


@pytest.mark.parametrize(("instant", "tz", "day"), [
    (datetime(2022, 2, 3, 16, 30, tzinfo=UTC), SH, date(2022, 2, 4)),
    (datetime(2022, 2, 3, 16, 30, tzinfo=UTC), "UTC", date(2022, 2, 3)),
    (datetime(2022, 2, 3, 15, 59, 59, 999999, tzinfo=UTC), SH, date(2022, 2, 3)),
    (datetime(2022, 2, 3, 16, 0, tzinfo=UTC), SH, date(2022, 2, 4)),
    (datetime(2022, 2, 4, 0, 30, tzinfo=timezone(timedelta(hours=8))), SH, date(2022, 2, 4)),
    (datetime(2022, 3, 27, 0, 30, tzinfo=UTC), "Europe/London", date(2022, 3, 27)),
    (datetime(2022, 2, 4, 3, 0, tzinfo=UTC), "America/New_York", date(2022, 2, 3)),
])
def test_local_date(instant, tz, day):
    assert local_date(instant, tz) == day
    assert local_today(instant, tz) == day


def test_shanghai_day_boundary_is_not_utc():
    instant = datetime(2022, 2, 3, 16, 30, tzinfo=UTC)
    assert local_date(instant, SH) != instant.date()
    assert utc_instant_of_local_midnight(date(2022, 2, 4), SH) == datetime(2022, 2, 3, 16,
                                                                            tzinfo=UTC)
    start, end = local_day_bounds(date(2022, 2, 4), SH)
    assert start <= instant < end


def test_naive_instant_refused():
    with pytest.raises(ValueError):
        local_date(datetime(2022, 2, 3, 16, 30), SH)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "localtime", "../etc/passwd",
                                  "asia/shanghai", None, 8])
def test_unknown_zones(name):
    with pytest.raises(UnknownTimezone):
        validate_timezone(name)


def test_known_zones():
    for name in (SH, "UTC", "Europe/London", "America/Santiago"):
        assert validate_timezone(name) == name


@pytest.mark.parametrize(("day", "monday"), [
    (date(2022, 2, 4), date(2022, 1, 31)),  # a Friday
    (date(2022, 1, 31), date(2022, 1, 31)),
    (date(2022, 2, 6), date(2022, 1, 31)),  # Sunday still belongs to Monday's week
    (date(2022, 1, 2), date(2021, 12, 27)),
])
def test_week_start(day, monday):
    assert week_start(day) == monday


def test_dst_day_is_23_hours():
    start, end = local_day_bounds(date(2022, 3, 27), "Europe/London")
    assert end - start == timedelta(hours=23)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
       st.sampled_from([SH, "UTC", "Europe/London", "America/Santiago", "America/Havana",
                        "Pacific/Apia", "Asia/Kolkata"]))
def test_midnight_is_first_instant_of_day(day, tz):
    start = utc_instant_of_local_midnight(day, tz)
    assert start.tzinfo == UTC
    assert local_date(start, tz) == day
    assert local_date(start - timedelta(microseconds=1), tz) < day


def test_date_range_and_windows():
    assert date_range(date(2022, 1, 30), date(2022, 2, 1)) == [
        date(2022, 1, 30), date(2022, 1, 31), date(2022, 2, 1)]
    assert date_range(date(2022, 2, 1), date(2022, 1, 30)) == []
    starts, ends = date(2022, 1, 4), date(2022, 3, 13)
    assert not is_intake_open(date(2022, 1, 3), starts, ends, 1)
    assert is_intake_open(date(2022, 3, 14), starts, ends, 1)
    assert not is_intake_open(date(2022, 3, 15), starts, ends, 1)
    kwargs = {"today": date(2022, 2, 4), "joined_on": date(2022, 2, 1), "starts_on": starts,
              "ends_on": ends, "late_entry_days": 1}
    assert entry_date_ok(date(2022, 2, 4), **kwargs)
    assert entry_date_ok(date(2022, 2, 3), **kwargs)
    assert not entry_date_ok(date(2022, 2, 2), **kwargs)  # more than 1 day back
    assert not entry_date_ok(date(2022, 2, 5), **kwargs)  # future
    assert not entry_date_ok(date(2022, 1, 31), **{**kwargs, "late_entry_days": 10})  # pre-join
    assert not entry_date_ok(date(2022, 3, 14), **{**kwargs, "today": date(2022, 3, 14)})
