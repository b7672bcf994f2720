"""Counting rules (DESIGN.md "Counting rules"), in exact integer arithmetic.

Quantities are thousandths of a unit (`_milli`), factors thousandths of a gram per unit
(`factor_milli`), amounts integer milligrams (`_mg`). Every function is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from campaigns.methodology import CreditGroups

# Day credits keyed by (action key, source). The source is the intake source class a unit came
# from: "checkin" (self-reported), "partner" or "werun"; a released hold counts under the source
# it was held from.
CreditKey = tuple[str, str]


def counted(total_milli: int, cap_milli: int | None, min_milli: int) -> int:
    """The counted part of a day total: 0 below the minimum, else the total capped at the cap.

    A cap of None means no cap. Raises ValueError for a negative total, cap or minimum.
    """
    if total_milli < 0 or min_milli < 0 or (cap_milli is not None and cap_milli < 0):
        raise ValueError("totals, caps and minimums are never negative")
    if total_milli < min_milli:
        return 0
    return total_milli if cap_milli is None else min(total_milli, cap_milli)


def credit_mg(counted_milli: int, factor_milli: int) -> int:
    """A day's credit in milligrams: floor(counted × factor_g × 1000), exactly.

    counted_milli is in thousandths of a unit and factor_milli in thousandths of a gram, so their
    product is in millionths of a gram; dividing by 1000 (flooring) gives milligrams.
    """
    if counted_milli < 0 or factor_milli < 0:
        raise ValueError("counted quantities and factors are never negative")
    return counted_milli * factor_milli // 1000


@dataclass(frozen=True)
class Delta:
    """What one submission adds: counted thousandths and milligrams (both >= 0)."""

    counted_milli: int
    mg: int


def submission_delta(total_before_milli: int, total_after_milli: int, *, cap_milli: int | None,
                     min_milli: int, factor_milli: int) -> Delta:
    """The counted and credited increase when a day total moves from before to after.

    Each entry's milligrams are the day credit after it minus the credit before it, so a day's
    entries add up to credit_mg(counted(final total)) whatever their order or sizes. Raises
    ValueError when after < before (day totals only grow; WeRun keeps the highest count).
    """
    if total_after_milli < total_before_milli:
        raise ValueError("a day total never decreases")
    counted_before = counted(total_before_milli, cap_milli, min_milli)
    counted_after = counted(total_after_milli, cap_milli, min_milli)
    return Delta(
        counted_milli=counted_after - counted_before,
        mg=credit_mg(counted_after, factor_milli) - credit_mg(counted_before, factor_milli),
    )


def mode_credits(credits: Mapping[CreditKey, int], groups: CreditGroups) -> dict[str, int]:
    """Each mode's day credit: the largest, over sources, of the source's summed member credits.

    So a trip self-reported and also pushed by a partner counts once (the larger), while rides
    and kilometres from one source add up (they are different trips).
    """
    result: dict[str, int] = {}
    for mode, actions in groups.modes:
        by_source: dict[str, int] = {}
        for (action, source), mg in credits.items():
            if action in actions:
                by_source[source] = by_source.get(source, 0) + mg
        result[mode] = max(by_source.values(), default=0)
    return result


def day_credit_mg(credits: Mapping[CreditKey, int], groups: CreditGroups, *,
                  car_free_day_max: bool) -> int:
    """A participant's total day credit in one campaign with credit groups applied.

    credits: day credit (mg, >= 0) per (action, source). Actions outside every group add up.
    Modes are credited as mode_credits(). With car_free_day_max the transport credit is
    max(alternative credit, sum of the transport modes); without it, the plain sum.
    """
    if any(mg < 0 for mg in credits.values()):
        raise ValueError("day credits are never negative")
    grouped = {a for _, actions in groups.modes for a in actions}
    if groups.alternative is not None:
        grouped.add(groups.alternative)
    ungrouped = sum(mg for (action, _), mg in credits.items() if action not in grouped)
    modes = mode_credits(credits, groups)
    transport = sum(modes[m] for m in groups.transport_modes)
    other_modes = sum(mg for m, mg in modes.items() if m not in groups.transport_modes)
    alternative = sum(mg for (action, _), mg in credits.items() if action == groups.alternative)
    if car_free_day_max:
        transport = max(transport, alternative)
    else:
        transport += alternative
    return ungrouped + other_modes + transport


def entry_reduction_mg(before: Mapping[CreditKey, int], after: Mapping[CreditKey, int],
                       groups: CreditGroups, *, car_free_day_max: bool) -> int:
    """An entry's reduction_mg: the grouped day credit after the submission minus before.

    before/after are the per-(action, source) day credits of one participant, campaign and day
    around one submission (a missing key is 0). Every credit may only stay or grow, which keeps
    the result >= 0 (sums and maxima are monotone); a decrease raises ValueError. Entries of a
    day add up to day_credit_mg of the final credits.
    """
    for key in before.keys() | after.keys():
        if after.get(key, 0) < before.get(key, 0):
            raise ValueError(f"day credit of {key} decreased")
    return (day_credit_mg(after, groups, car_free_day_max=car_free_day_max)
            - day_credit_mg(before, groups, car_free_day_max=car_free_day_max))


def points(total_mg: int, points_per_g_milli: int) -> int:
    """Points on a campaign total: floor(total_mg × points_per_g / 1000), exactly.

    points_per_g_milli is points per gram in thousandths (1 point per gram = 1000).
    """
    return total_mg * points_per_g_milli // 1_000_000


def progress(total_mg: int, target_mg: int) -> float:
    """Share of the target reached (0..1, may exceed 1); 0 when the target is 0. Display only."""
    return total_mg / target_mg if target_mg > 0 else 0.0


def trees(total_mg: int, tree_mg: int) -> float:
    """Display trees for an amount, rounded down to 0.1 tree. Display only."""
    return (total_mg * 10 // tree_mg) / 10 if tree_mg > 0 else 0.0
