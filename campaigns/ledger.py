"""The ledger hash chain (API.md "Ledger chain"): what a verifier outside Tanpu recomputes.

A line holds exactly LINE_FIELDS. hash = sha256_hex(prev_hash + canonical_json(line without
prev_hash and hash)) over UTF-8; the first prev_hash is GENESIS; seq runs 1..N with no gaps.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import NamedTuple

from campaigns.decimals import format_milli
from campaigns.methodology import LEDGER_SOURCES

GENESIS = "0" * 64

ENTRY_FIELDS = (
    "seq", "campaign", "participant", "action", "local_date", "quantity", "counted_quantity",
    "factor_g_per_unit", "reduction_mg", "source", "source_ref", "methodology_version",
    "created_dt",
)
LINE_FIELDS = (*ENTRY_FIELDS, "prev_hash", "hash")
DECIMAL_FIELDS = ("quantity", "counted_quantity", "factor_g_per_unit")

_HASH_RE = re.compile(r"[0-9a-f]{64}")
_CREATED_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DECIMAL_RE = re.compile(r"(0|[1-9][0-9]{0,11})(\.[0-9]{0,2}[1-9])?")


def canonical_json(obj: object) -> str:
    """Sorted keys, separators "," and ":", non-ASCII kept as is (the chain's serialisation)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(prev_hash: str, fields: Mapping[str, object]) -> str:
    """sha256 hex of prev_hash + canonical JSON of the entry fields (UTF-8).

    `fields` is the line's object; its `prev_hash` and `hash` keys, if present, are left out.
    """
    body = {k: v for k, v in fields.items() if k not in ("prev_hash", "hash")}
    return hashlib.sha256((prev_hash + canonical_json(body)).encode("utf-8")).hexdigest()


def format_created_dt(instant: datetime) -> str:
    """An aware instant as `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC; a naive one raises ValueError."""
    if instant.utcoffset() is None:
        raise ValueError("created_dt must be an aware datetime")
    return instant.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_created_dt(text: str) -> datetime:
    """Inverse of format_created_dt; raises ValueError for any other form."""
    if not isinstance(text, str) or not _CREATED_RE.fullmatch(text):
        raise ValueError(f"not a created_dt: {text!r}")
    # Slices of the checked form (strptime costs more than the rest of a line's check).
    return datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]),
                    int(text[14:16]), int(text[17:19]), int(text[20:26]), tzinfo=UTC)


def entry_fields(*, seq: int, campaign: str, participant: str, action: str, local_date: date,
                 quantity_milli: int, counted_milli: int, factor_milli: int, reduction_mg: int,
                 source: str, source_ref: str | None, methodology_version: str,
                 created_dt: datetime) -> dict[str, object]:
    """An entry's hashed fields as they appear in its chain line (no prev_hash, no hash)."""
    return {
        "seq": seq,
        "campaign": campaign,
        "participant": participant,
        "action": action,
        "local_date": local_date.isoformat(),
        "quantity": format_milli(quantity_milli),
        "counted_quantity": format_milli(counted_milli),
        "factor_g_per_unit": format_milli(factor_milli),
        "reduction_mg": reduction_mg,
        "source": source,
        "source_ref": source_ref,
        "methodology_version": methodology_version,
        "created_dt": format_created_dt(created_dt),
    }


def make_line(prev_hash: str, **entry) -> dict[str, object]:
    """A complete chain line (LINE_FIELDS order) for an entry (entry_fields' arguments),
    hashed onto prev_hash."""
    fields = entry_fields(**entry)
    problem = line_problem({**fields, "prev_hash": prev_hash, "hash": GENESIS})
    if problem:
        raise ValueError(problem)
    fields["prev_hash"] = prev_hash
    fields["hash"] = entry_hash(prev_hash, fields)
    return fields


def line_problem(line: object) -> str | None:
    """What is wrong with a line's shape, or None. Hashes and seq continuity are not checked.

    Checks: exactly LINE_FIELDS; seq a positive int; strings where strings belong; local_date
    YYYY-MM-DD; decimals in shortest exact form; reduction_mg an int, negative only for a
    reversal; a known source; created_dt in its one form; hashes 64 lowercase hex.
    """
    if not isinstance(line, Mapping) or set(line) != set(LINE_FIELDS):
        return "fields"
    seq, mg = line["seq"], line["reduction_mg"]
    if not _is_int(seq) or seq < 1 or not _is_int(mg):
        return "seq or reduction_mg"
    if line["source"] not in LEDGER_SOURCES or (mg < 0 and line["source"] != "reversal"):
        return "source"
    for key in ("campaign", "participant", "action", "methodology_version"):
        if not isinstance(line[key], str) or not line[key]:
            return key
    if line["source_ref"] is not None and not isinstance(line["source_ref"], str):
        return "source_ref"
    if not _is_date(line["local_date"]):
        return "local_date"
    for key in DECIMAL_FIELDS:
        if not _is_shortest_decimal(line[key]):
            return key
    try:
        parse_created_dt(line["created_dt"])
    except ValueError:
        return "created_dt"
    for key in ("prev_hash", "hash"):
        if not isinstance(line[key], str) or not _HASH_RE.fullmatch(line[key]):
            return key
    for key, value in line.items():
        if isinstance(value, str) and not _has_utf8_form(value):
            return key  # a lone surrogate (from a "\ud800" escape) cannot be hashed
    return None


def _is_date(value: object) -> bool:
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _has_utf8_form(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_shortest_decimal(value: object) -> bool:
    """format_milli's output form: no sign, no leading zero, at most 3 decimals without a
    trailing zero, at most 12 integer digits (decimals are bounded to 10**15 - 1 thousandths)."""
    return isinstance(value, str) and _DECIMAL_RE.fullmatch(value) is not None


class ChainVerdict(NamedTuple):
    ok: bool
    first_bad_seq: int | None
    head_seq: int
    head_hash: str


class ChainVerifier:
    """Incremental verification: feed lines in chain order, then read verdict().

    Starts after a trusted point (after_seq, after_hash), GENESIS by default, so a periodic run
    can re-hash only the entries after the last verified seq. Also counts entries and sums
    reduction_mg of the lines fed (for comparison with projections).
    """

    def __init__(self, after_seq: int = 0, after_hash: str = GENESIS) -> None:
        self.first_bad_seq: int | None = None
        self.head_seq = after_seq
        self.head_hash = after_hash
        self.entries = 0
        self.total_mg = 0

    def feed(self, line: Mapping[str, object]) -> None:
        """Check one line against the previous one. After the first bad line the rest is only
        tracked (head, count, sum), not judged."""
        expected_seq = self.head_seq + 1
        if self.first_bad_seq is None:
            if line_problem(line) is not None or line["seq"] != expected_seq:
                # A gap (a removed entry) is reported at the seq that is missing.
                self.first_bad_seq = expected_seq
            elif (line["prev_hash"] != self.head_hash
                  or entry_hash(self.head_hash, line) != line["hash"]):
                self.first_bad_seq = expected_seq
        seq, digest, mg = _get(line, "seq"), _get(line, "hash"), _get(line, "reduction_mg")
        self.head_seq = seq if _is_int(seq) else expected_seq
        self.head_hash = digest if isinstance(digest, str) else ""
        self.entries += 1
        self.total_mg += mg if _is_int(mg) else 0

    def verdict(self) -> ChainVerdict:
        return ChainVerdict(self.first_bad_seq is None, self.first_bad_seq, self.head_seq,
                            self.head_hash)


def _get(line: object, key: str) -> object:
    return line.get(key) if isinstance(line, Mapping) else None


def verify_chain(lines: Iterable[Mapping[str, object]], *, after_seq: int = 0,
                 after_hash: str = GENESIS) -> ChainVerdict:
    """Verify lines in chain order: shape, seq continuity, prev_hash linkage, every hash.

    Returns (ok, first_bad_seq, head_seq, head_hash): first_bad_seq is the first seq that is
    missing, malformed or does not hash (None when ok); head_seq/head_hash are those of the last
    line read (after_seq/after_hash for no lines: 0 and GENESIS by default).
    """
    verifier = ChainVerifier(after_seq, after_hash)
    for line in lines:
        verifier.feed(line)
    return verifier.verdict()
