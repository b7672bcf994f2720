"""WeRun step lists (wx.getWeRunData): timestamps are Beijing midnights, so a day is the
Asia/Shanghai date of its timestamp (wechat.md §2)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from campaigns.calendar import local_date

BEIJING = "Asia/Shanghai"
MAX_STEPS = 10_000_000  # far above any human day; a bigger number is not WeRun data


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def step_days(payload: object, today: date, max_days: int = 31) -> dict[date, int]:
    """{Beijing date: steps} from a decrypted payload's stepInfoList.

    A date listed twice keeps its highest count; dates after ``today`` (Beijing) are dropped.
    Raises ValueError when the payload is not a list of at most ``max_days`` entries of
    whole, non-negative ``timestamp`` and ``step``.
    """
    entries = payload.get("stepInfoList") if isinstance(payload, dict) else None
    if not isinstance(entries, list) or len(entries) > max_days:
        raise ValueError(f"stepInfoList is not a list of at most {max_days} days")
    days: dict[date, int] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            raise ValueError("a step entry is not an object")
        stamp, steps = entry.get("timestamp"), entry.get("step")
        if not (_whole(stamp) and _whole(steps)) or stamp < 0 or not 0 <= steps <= MAX_STEPS:
            raise ValueError("a step entry has no whole timestamp and step")
        try:
            day = local_date(datetime.fromtimestamp(stamp, UTC), BEIJING)
        except (OverflowError, OSError, ValueError):
            raise ValueError("timestamp out of range") from None
        if day <= today:
            days[day] = max(steps, days.get(day, 0))
    return days
