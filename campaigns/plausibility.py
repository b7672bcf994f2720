"""Plausibility signals (methodology data) evaluated on one intake: hold it or count it.

An intake that meets any signal is held for organiser review instead of counted (DESIGN.md
"Plausibility holds"). The signal kinds are a table; a kind without a check raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from campaigns.methodology import Methodology, PlausibilitySignal, UnknownKind


@dataclass(frozen=True)
class Intake:
    """What the checks see of one intake, after it is added to the day.

    day_total_milli: the participant's day total for the action including this intake (for
      WeRun, the day's step count in thousandths).
    cap_milli: the campaign's effective daily cap for the action (None: no cap).
    previous_days_over_cap: how many days in a row, just before this day, the day total was
      above the cap.
    distance_m, duration_s: of a partner trip, when given.
    """

    day_total_milli: int
    cap_milli: int | None = None
    previous_days_over_cap: int = 0
    distance_m: int | None = None
    duration_s: int | None = None


def _day_total_over(params: Mapping[str, int], intake: Intake) -> bool:
    return intake.day_total_milli > params["threshold_milli"]


def _repeated_digit(params: Mapping[str, int], intake: Intake) -> bool:
    if intake.day_total_milli % 1000:
        return False
    digits = str(intake.day_total_milli // 1000)
    return len(digits) >= params["min_digits"] and len(set(digits)) == 1


def _speed_over(params: Mapping[str, int], intake: Intake) -> bool:
    if intake.distance_m is None or intake.duration_s is None or intake.distance_m <= 0:
        return False
    if intake.duration_s <= 0:
        return True
    # distance_m / duration_s * 3.6 km/h > max_km_per_h, in integers: max_km_per_h_milli is the
    # limit in metres per hour.
    return intake.distance_m * 3600 > params["max_km_per_h_milli"] * intake.duration_s


def _over_cap_days_in_row(params: Mapping[str, int], intake: Intake) -> bool:
    if intake.cap_milli is None or intake.day_total_milli <= intake.cap_milli:
        return False
    return intake.previous_days_over_cap + 1 >= params["days"]


SIGNAL_CHECKS: Mapping[str, Callable[[Mapping[str, int], Intake], bool]] = MappingProxyType({
    "day_total_over": _day_total_over,
    "repeated_digit": _repeated_digit,
    "speed_over": _speed_over,
    "over_cap_days_in_row": _over_cap_days_in_row,
})


def _check(signal: PlausibilitySignal) -> Callable[[Mapping[str, int], Intake], bool]:
    try:
        return SIGNAL_CHECKS[signal.kind]
    except KeyError:
        raise UnknownKind(f"no check for signal kind {signal.kind!r}") from None


def intake_signals(methodology: Methodology, action: str, intake: Intake) -> tuple[str, ...]:
    """Keys of the methodology's signals that the intake meets (empty: count it).

    Raises UnknownAction for an action the methodology lacks.
    """
    spec = methodology.action(action)
    return tuple(
        signal.key
        for signal in methodology.plausibility
        if signal.applies_to(spec.key, spec.kind) and _check(signal)(signal.params, intake)
    )
