import hashlib
import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.decimals import DecimalInvalid, format_milli, parse_milli
from campaigns.ledger import (
    GENESIS,
    LINE_FIELDS,
    ChainVerifier,
    _is_shortest_decimal,
    canonical_json,
    entry_hash,
    format_created_dt,
    line_problem,
    make_line,
    parse_created_dt,
    verify_chain,
)

T0 = datetime(2022, 2, 3, 16, 30, tzinfo=UTC)


def chain(n: int = 5) -> list[dict]:
    lines, prev = [], GENESIS
    for i in range(1, n + 1):
        line = make_line(prev, seq=i, campaign="winter-2022", participant=f"p{i % 2}",
                         action="walk_steps", local_date=date(2022, 2, 4),
                         quantity_milli=8_200_000 + i, counted_milli=8_200_000,
                         factor_milli=20, reduction_mg=164_000, source="werun",
                         source_ref=None, methodology_version="cn-consumer-v1",
                         created_dt=T0 + timedelta(seconds=i))
        lines.append(line)
        prev = line["hash"]
    return lines


def test_canonical_json():
    assert canonical_json({"b": 1, "a": "光盘", "c": None}) == '{"a":"光盘","b":1,"c":null}'


def test_entry_hash_matches_spec():
    line = chain(1)[0]
    body = {k: v for k, v in line.items() if k not in ("prev_hash", "hash")}
    text = GENESIS + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert line["hash"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert entry_hash(GENESIS, line) == entry_hash(GENESIS, body) == line["hash"]


def test_line_format():
    line = chain(1)[0]
    assert tuple(line) == LINE_FIELDS
    assert line["quantity"] == "8200.001"
    assert line["counted_quantity"] == "8200"
    assert line["factor_g_per_unit"] == "0.02"
    assert line["created_dt"] == "2022-02-03T16:30:01.000000Z"
    assert line["local_date"] == "2022-02-04"
    assert line_problem(line) is None


def test_created_dt():
    shanghai = timezone(timedelta(hours=8))
    instant = datetime(2022, 2, 4, 0, 30, 0, 123, tzinfo=shanghai)
    assert format_created_dt(instant) == "2022-02-03T16:30:00.000123Z"
    assert parse_created_dt("2022-02-03T16:30:00.000123Z") == instant
    with pytest.raises(ValueError):
        format_created_dt(datetime(2022, 2, 3))
    with pytest.raises(ValueError):
        parse_created_dt("2022-02-03T16:30:00Z")


def test_valid_chain():
    lines = chain()
    assert verify_chain(lines) == (True, None, 5, lines[-1]["hash"])
    assert verify_chain([]) == (True, None, 0, GENESIS)
    # incremental: from a trusted point
    assert verify_chain(lines[3:], after_seq=3, after_hash=lines[2]["hash"]) == (
        True, None, 5, lines[-1]["hash"])


def test_changed_amount_detected():
    lines = chain()
    lines[2]["reduction_mg"] += 1
    ok, bad, head_seq, head_hash = verify_chain(lines)
    assert (ok, bad, head_seq, head_hash) == (False, 3, 5, lines[-1]["hash"])


def test_changed_hash_detected():
    lines = chain()
    lines[2]["hash"] = "f" * 64
    assert verify_chain(lines)[:2] == (False, 3)


def test_rehashed_entry_breaks_the_next_link():
    lines = chain()
    lines[2]["reduction_mg"] = 999_999
    lines[2]["hash"] = entry_hash(lines[2]["prev_hash"], lines[2])
    assert verify_chain(lines)[:2] == (False, 4)


def test_removed_middle_entry_detected():
    lines = chain()
    del lines[2]
    assert verify_chain(lines)[:2] == (False, 3)


@pytest.mark.parametrize(("field", "value"), [
    ("quantity", "8200.0010"), ("quantity", 8200), ("factor_g_per_unit", "2e-2"),
    ("reduction_mg", -5), ("reduction_mg", 1.5), ("source", "gift"), ("created_dt", "yesterday"),
    ("local_date", "2022-2-4"), ("prev_hash", "0" * 63),
    # Only ASCII digits and real dates; a lone surrogate has no UTF-8 form to hash.
    ("local_date", "２０２２-02-04"), ("local_date", "2022-13-45"),
    ("created_dt", "２０２２-02-03T16:30:01.000000Z"), ("source_ref", "\ud800"),
    ("participant", "p\udfff"),
])
def test_malformed_line_detected(field, value):
    lines = chain()
    lines[1][field] = value
    assert verify_chain(lines)[:2] == (False, 2)


def test_extra_or_missing_field_detected():
    lines = chain()
    lines[0]["extra"] = 1
    assert verify_chain(lines)[:2] == (False, 1)
    lines = chain()
    del lines[4]["source_ref"]
    assert verify_chain(lines)[:2] == (False, 5)


def test_reversal_may_be_negative_and_verifier_sums():
    lines = chain(2)
    rev = make_line(lines[-1]["hash"], seq=3, campaign="winter-2022", participant="p1",
                    action="walk_steps", local_date=date(2022, 2, 4), quantity_milli=8_200_001,
                    counted_milli=8_200_000, factor_milli=20, reduction_mg=-164_000,
                    source="reversal", source_ref="1", methodology_version="cn-consumer-v1",
                    created_dt=T0 + timedelta(minutes=5))
    verifier = ChainVerifier()
    for line in [*lines, rev]:
        verifier.feed(line)
    assert verifier.verdict().ok
    assert (verifier.entries, verifier.total_mg) == (3, 164_000)
    with pytest.raises(ValueError):
        make_line(GENESIS, seq=1, campaign="c", participant="p", action="a",
                  local_date=date(2022, 2, 4), quantity_milli=1, counted_milli=1,
                  factor_milli=1, reduction_mg=-1, source="checkin", source_ref=None,
                  methodology_version="v", created_dt=T0)


@given(st.one_of(
    st.integers(min_value=0, max_value=10**15 - 1).map(format_milli),
    st.from_regex(r"-?[0-9]{0,14}(\.[0-9]{0,5})?", fullmatch=True),
    st.text(alphabet="0123456789.-+e ", max_size=18),
))
def test_shortest_decimal_check_agrees_with_the_decimal_round_trip(text):
    try:
        round_trip = format_milli(parse_milli(text)) == text
    except DecimalInvalid:
        round_trip = False
    assert _is_shortest_decimal(text) == round_trip


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31),
                    timezones=st.just(UTC)))
def test_created_dt_round_trip(instant):
    assert parse_created_dt(format_created_dt(instant)) == instant
