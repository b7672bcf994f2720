"""Exact decimals as integer thousandths.

Quantities and factors are exact decimals with at most 3 decimal places, stored as integer
thousandths (`_milli`); amounts are integer milligrams (`_mg`), i.e. thousandths of a gram, so
the same formatting serves both. No float is ever summed: a float is accepted only as the
carrier of a JSON/YAML number and is read through its shortest repr ("8.2", not
8.199999999999999289...).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

MILLI = 1000

# Bounds every parsed value so that it fits a signed 64-bit column and, as grams, survives a
# round trip through a double (15 significant digits are exact).
MAX_MILLI = 10**15 - 1

_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class DecimalInvalid(ValueError):
    """A value that is not an exact decimal with at most 3 decimals (message is English)."""


def parse_milli(value: object, *, allow_negative: bool = False) -> int:
    """Parse an int, a plain decimal string or a float (a JSON number) into exact thousandths.

    Strings must be plain decimals ("8.2", "-1", "10000"): no exponent, no spaces, no sign
    other than a leading minus. A float is read through its shortest repr. Trailing zeros are
    fine ("1.500"); a value whose exact value needs a 4th decimal is not.

    Raises DecimalInvalid for booleans, other types, NaN, infinities, more than 3 decimals,
    negatives (unless allow_negative) and magnitudes above MAX_MILLI thousandths.
    """
    if isinstance(value, bool):
        raise DecimalInvalid("Not a valid number.")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        if not _PLAIN_DECIMAL.fullmatch(value):
            raise DecimalInvalid("Not a valid number.")
        number = Decimal(value)
    else:
        raise DecimalInvalid("Not a valid number.")
    if not number.is_finite():
        raise DecimalInvalid("Not a valid number.")
    try:
        scaled = number.scaleb(3)
        milli = int(scaled)
    except (InvalidOperation, OverflowError) as exc:
        raise DecimalInvalid("Not a valid number.") from exc
    if scaled != milli:
        raise DecimalInvalid("At most 3 decimal places are allowed.")
    if milli < 0 and not allow_negative:
        raise DecimalInvalid("Must not be negative.")
    if abs(milli) > MAX_MILLI:
        raise DecimalInvalid("Number is too large.")
    return milli


def format_milli(milli: int) -> str:
    """Format thousandths as the shortest exact decimal string.

    No exponent, no trailing zeros after the point, no trailing point: 8200 -> "8.2",
    10000000 -> "10000", 20 -> "0.02", 0 -> "0", -1500 -> "-1.5". This is the ledger's form
    (API.md "Ledger chain"); since milligrams are thousandths of a gram, format_milli(mg) is
    the amount in grams.
    """
    if isinstance(milli, bool) or not isinstance(milli, int):
        raise TypeError("format_milli takes an int")
    sign = "-" if milli < 0 else ""
    whole, frac = divmod(abs(milli), MILLI)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:03d}".rstrip("0")


def milli_to_decimal(milli: int) -> Decimal:
    """Thousandths as an exact Decimal with the shortest exponent (8200 -> Decimal("8.2"))."""
    return Decimal(format_milli(milli))


def milli_to_number(milli: int) -> int | float:
    """Thousandths as a JSON number: an int when whole, else the float whose repr is exact.

    For |milli| <= MAX_MILLI the value has at most 15 significant digits, so the float's
    shortest repr is exactly format_milli(milli) and json.dumps writes it exactly
    (8200 -> 8.2, 1500000 -> 1500, 1 -> 0.001).
    """
    if abs(milli) > MAX_MILLI:
        raise ValueError("value too large to be an exact JSON number")
    whole, frac = divmod(milli, MILLI)
    if frac == 0:
        return whole
    # Both operands are exact floats and IEEE division rounds correctly, so this is the float
    # nearest milli / 1000: the one float(format_milli(milli)) parses, without the string.
    return milli / MILLI


def mg_to_g(mg: int) -> int | float:
    """Integer milligrams as a `reduction_g` JSON number with at most 3 decimals (exact)."""
    return milli_to_number(mg)

