"""Campaign-local days.

Instants are aware datetimes (stored in UTC); days are campaign-local `date`s computed here once
and stored as `local_date`. Time and zone are always arguments: nothing here reads a clock.
"""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

DEFAULT_TIMEZONE = "Asia/Shanghai"
# WeRun timestamps are Beijing midnights, so a campaign that counts steps must use this zone.
WERUN_TIMEZONE = "Asia/Shanghai"


class UnknownTimezone(ValueError):
    """Not an IANA time zone name known to this system's tz database."""


@functools.cache
def _known_zones() -> frozenset[str]:
    # available_timezones() scans the tz database on disk; once per process is enough. Checking
    # membership (rather than trying ZoneInfo(name)) refuses paths; "localtime" (the host's own
    # zone, where a system has one) and "posixrules" are not portable names.
    return frozenset(available_timezones() - {"localtime", "posixrules", "Factory"})


def validate_timezone(name: object) -> str:
    """Return `name` if it is a known IANA zone name ("Asia/Shanghai", "UTC"); else raise
    UnknownTimezone."""
    if not isinstance(name, str) or name not in _known_zones():
        raise UnknownTimezone(f"unknown time zone {name!r}")
    return name


@functools.cache
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo of a validated zone name; raises UnknownTimezone."""
    return ZoneInfo(validate_timezone(name))


def _require_aware(instant: datetime) -> None:
    if not isinstance(instant, datetime) or instant.utcoffset() is None:
        raise ValueError("an aware datetime is required (naive datetimes are ambiguous)")


def local_date(instant_utc: datetime, tz_name: str) -> date:
    """The campaign-local date of an aware instant in zone `tz_name`.

    Raises ValueError for a naive datetime, UnknownTimezone for an unknown zone.
    Example: 2022-02-03T16:30Z is 2022-02-04 in Asia/Shanghai.
    """
    _require_aware(instant_utc)
    return instant_utc.astimezone(zone(tz_name)).date()


def local_today(now: datetime, tz_name: str) -> date:
    """Campaign-local "today" at the aware instant `now` (same contract as local_date)."""
    return local_date(now, tz_name)


def week_start(day: date) -> date:
    """The Monday on or before `day` (weeks start on Monday, campaign-local)."""
    return day - timedelta(days=day.weekday())


def utc_instant_of_local_midnight(day: date, tz_name: str) -> datetime:
    """The first instant (UTC, aware) of local day `day` in `tz_name`.

    Where a DST gap swallows midnight, fold=0 resolves local 00:00 with the offset before the
    gap, which lands on the first instant that exists in that day.
    """
    local = datetime.combine(day, time(0), tzinfo=zone(tz_name))
    return local.astimezone(UTC)


def local_day_bounds(day: date, tz_name: str) -> tuple[datetime, datetime]:
    """[start, end) of local day `day` as UTC instants (not always 24 h apart under DST)."""
    return (utc_instant_of_local_midnight(day, tz_name),
            utc_instant_of_local_midnight(day + timedelta(days=1), tz_name))


def date_range(first: date, last: date) -> list[date]:
    """Every date from first to last inclusive (empty when last < first)."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def is_intake_open(today: date, starts_on: date, ends_on: date, late_entry_days: int) -> bool:
    """Intake is open from starts_on to the end of ends_on + late_entry_days (local days)."""
    return starts_on <= today <= ends_on + timedelta(days=late_entry_days)


def entry_date_ok(day: date, *, today: date, joined_on: date, starts_on: date, ends_on: date,
                  late_entry_days: int) -> bool:
    """Whether a check-in or partner item may be dated `day`.

    True when day is not after today, not before the join day, within starts_on..ends_on and no
    more than late_entry_days before today (API.md `checkin.date_out_of_range`). Whether intake
    is open at all (`campaign.not_active`) is a separate, earlier check: is_intake_open.
    """
    return (
        day <= today
        and day >= joined_on
        and starts_on <= day <= ends_on
        and (today - day).days <= late_entry_days
    )
