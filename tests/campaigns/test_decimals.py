import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.decimals import (
    MAX_MILLI,
    DecimalInvalid,
    format_milli,
    mg_to_g,
    milli_to_decimal,
    milli_to_number,
    parse_milli,
)


@pytest.mark.parametrize(("value", "milli"), [
    (0, 0), (1, 1000), ("8.2", 8200), (8.2, 8200), ("0.02", 20), (0.02, 20), (26.9, 26900),
    ("10000", 10_000_000), (1e3, 1_000_000), ("1.500", 1500), (Decimal("0.001"), 1),
])
def test_parse_milli(value, milli):
    assert parse_milli(value) == milli


def test_float_arithmetic_noise_is_not_a_decimal():
    # A float is read through its repr: 0.1 + 0.2 is 0.30000000000000004, not 0.3.
    with pytest.raises(DecimalInvalid):
        parse_milli(0.1 + 0.2)


@pytest.mark.parametrize("value", [
    "1.0001", 0.0001, "1e3", " 1", "1.", ".5", "+1", "", "abc", float("nan"), float("inf"),
    "NaN", True, None, [1], {"a": 1}, -1, "-0.5", 10**13,
])
def test_parse_milli_rejects(value):
    with pytest.raises(DecimalInvalid):
        parse_milli(value)


def test_negative_only_when_allowed():
    assert parse_milli("-1.5", allow_negative=True) == -1500
    assert parse_milli(-2, allow_negative=True) == -2000


@pytest.mark.parametrize(("milli", "text"), [
    (8200, "8.2"), (10_000_000, "10000"), (20, "0.02"), (0, "0"), (1, "0.001"), (-1500, "-1.5"),
    (1000, "1"), (1010, "1.01"), (123_456_789, "123456.789"),
])
def test_format_milli(milli, text):
    assert format_milli(milli) == text
    assert milli_to_decimal(milli) == Decimal(text)


def test_format_rejects_non_int():
    with pytest.raises(TypeError):
        format_milli(1.5)


@pytest.mark.parametrize(("mg", "dumped"), [
    (1500, "1.5"), (1_500_000, "1500"), (1, "0.001"), (0, "0"), (MAX_MILLI, "999999999999.999"),
    (-2500, "-2.5"),
])
def test_mg_to_g_serialises_exactly(mg, dumped):
    assert json.dumps(mg_to_g(mg)) == dumped


@given(st.integers(min_value=-MAX_MILLI, max_value=MAX_MILLI))
def test_round_trips(milli):
    text = format_milli(milli)
    assert "e" not in text and "E" not in text
    assert not (text.endswith(".") or ("." in text and text.endswith("0")))
    assert parse_milli(text, allow_negative=True) == milli
    assert Decimal(text) == Decimal(milli) / 1000
    as_json = json.dumps(milli_to_number(milli))
    assert as_json == text
    assert parse_milli(json.loads(as_json), allow_negative=True) == milli
