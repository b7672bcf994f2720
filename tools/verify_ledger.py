"""Check a Tanpu ledger download (`ledger.jsonl`) with nothing but Python 3.11 or newer.

Tanpu publishes every campaign's ledger as a hash chain (API.md "Ledger chain"): each line is
one JSON object, and its `hash` covers its content and the previous line's hash, so a changed,
removed, inserted or reordered entry breaks the chain at that entry. This script recomputes the
chain on your machine; it needs no Tanpu code and no third-party package, so you can read all
of it before trusting it.

Usage:
    python verify_ledger.py ledger.jsonl
    python verify_ledger.py - < ledger.jsonl
    python verify_ledger.py ledger.jsonl --expect-seq N --expect-head HASH

Download the file from `GET /api/v1/reports/campaigns/SLUG/ledger.jsonl` and pass the values of
its `X-Tanpu-Head-Seq` and `X-Tanpu-Head-Hash` headers (or a head hash published elsewhere) as
--expect-seq and --expect-head: an intact chain only proves that the lines agree with each
other, while the expected head ties them to what Tanpu announced, so that a cut-off tail or a
file rewritten from some entry on is caught too.

Each line is checked in order, reading one line at a time (constant memory): valid UTF-8 JSON,
an object with exactly the API.md keys, each value's type and form, `seq` running 1, 2, 3, ...,
one campaign for the whole file, `prev_hash` equal to the previous line's `hash` (64 zeros for
the first), and `hash` = sha256 hex of `prev_hash` + the canonical JSON of the other keys.

Output and exit status:
    0  ok: N entries, campaign SLUG, head seq N, head hash HEX
       total reduction: G.ggg g (MG mg)      <- compare with the reported total
    1  bad: first bad seq N (line L): REASON  (or a head that differs from --expect-*)
    2  usage error, or the file cannot be read
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from datetime import date, datetime
from typing import BinaryIO

GENESIS = "0" * 64
FIELDS = frozenset({
    "seq", "campaign", "participant", "action", "local_date", "quantity", "counted_quantity",
    "factor_g_per_unit", "reduction_mg", "source", "source_ref", "methodology_version",
    "created_dt", "prev_hash", "hash",
})
DECIMAL_FIELDS = ("quantity", "counted_quantity", "factor_g_per_unit")
TEXT_FIELDS = ("campaign", "participant", "action", "methodology_version")
SOURCES = ("checkin", "werun", "partner", "release", "reversal")

# Real lines are well under 2 KB (every text column is short); the cap keeps memory bounded
# whatever the file holds.
MAX_LINE_BYTES = 1 << 20

# Shortest exact form: no sign, no leading zero, at most 3 decimals and no trailing zero after
# the point, and at most 12 integer digits (Tanpu bounds decimals to 10**15 - 1 thousandths).
_DECIMAL_RE = re.compile(r"(0|[1-9][0-9]{0,11})(\.[0-9]{0,2}[1-9])?")
_HASH_RE = re.compile(r"[0-9a-f]{64}")
# ASCII digits only, and real calendar dates: what Tanpu's own checker accepts.
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_CREATED_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def _is_date(value: object) -> bool:
    if not isinstance(value, str) or not _DATE_RE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


class BadLine(Exception):
    """A line that breaks the chain; the message says why."""


@dataclass
class Verdict:
    """The chain read so far; bad_seq is None when every line was good."""

    entries: int = 0
    campaign: str | None = None
    head_seq: int = 0
    head_hash: str = GENESIS
    total_mg: int = 0
    bad_seq: int | None = None
    bad_line: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.bad_seq is None


def verify(stream: BinaryIO) -> Verdict:
    """Read a ledger from a binary stream and stop at the first bad line.

    Raises OSError only when the stream itself cannot be read.
    """
    verdict = Verdict()
    for number, raw in enumerate(iter(lambda: stream.readline(MAX_LINE_BYTES + 1), b""), 1):
        try:
            line = parse_line(raw)
            check_line(line, verdict)
        except BadLine as bad:
            # Every earlier line was good, so seq has matched the line number so far: the bad
            # seq is the one this line should have had, whatever it holds.
            verdict.bad_seq, verdict.bad_line = verdict.head_seq + 1, number
            verdict.reason = str(bad)
            return verdict
        verdict.entries += 1
        verdict.campaign = line["campaign"]
        verdict.head_seq, verdict.head_hash = line["seq"], line["hash"]
        verdict.total_mg += line["reduction_mg"]
    return verdict


def parse_line(raw: bytes) -> dict:
    """The JSON object of one line (its newline included); raises BadLine."""
    if len(raw) > MAX_LINE_BYTES:
        raise BadLine(f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadLine(f"not valid UTF-8 (at byte {exc.start + 1} of the line)") from None
    if not text.strip():
        raise BadLine("empty line")
    try:
        # Duplicate keys are refused because Python would silently keep the last one, so the
        # hash would not cover what another JSON reader sees; NaN and Infinity are not JSON.
        line = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise BadLine(f"not JSON ({exc.msg} at column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of 5000 digits
        raise BadLine(f"unreadable JSON ({exc})") from None
    if not isinstance(line, dict):
        raise BadLine("not a JSON object")
    return line


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    line: dict = {}
    for key, value in pairs:
        if key in line:
            raise BadLine(f"key {_show(key)} appears twice")
        line[key] = value
    return line


def _no_constant(name: str) -> object:
    raise BadLine(f"not JSON ({name} is not a JSON number)")


def check_line(line: dict, chain: Verdict) -> None:
    """Raise BadLine unless `line` is well formed and continues `chain`."""
    problem = line_problem(line)
    if problem:
        raise BadLine(problem)
    expected = chain.head_seq + 1
    if line["seq"] != expected:
        why = "entries missing" if line["seq"] > expected else "repeated or out of order"
        raise BadLine(f"seq {_show(line['seq'])} where {expected} was expected ({why})")
    if chain.campaign is not None and line["campaign"] != chain.campaign:
        raise BadLine(f"campaign {_show(line['campaign'])} differs from {_show(chain.campaign)}"
                      " of the lines before")
    if line["prev_hash"] != chain.head_hash:
        raise BadLine("prev_hash is not 64 zeros" if expected == 1
                      else "prev_hash is not the previous line's hash")
    if entry_hash(line) != line["hash"]:
        raise BadLine("hash does not match the line's content")


def line_problem(line: dict) -> str | None:
    """What is wrong with one line's keys and values, or None (the chain is not looked at).

    The same rules, in the same order, as Tanpu's campaigns/ledger.py line_problem.
    """
    if set(line) != FIELDS:
        missing, extra = sorted(FIELDS - set(line)), sorted(set(line) - FIELDS)
        if missing:
            return f"missing key(s): {', '.join(missing)}"
        return f"unexpected key(s): {', '.join(_show(key) for key in extra)}"
    seq, mg = line["seq"], line["reduction_mg"]
    if not _is_int(seq) or seq < 1:
        return "seq is not a positive integer"
    if not _is_int(mg):
        return "reduction_mg is not an integer"
    if line["source"] not in SOURCES:
        return f"source is not one of {', '.join(SOURCES)}"
    if mg < 0 and line["source"] != "reversal":
        return "reduction_mg is negative but source is not reversal"
    for key in TEXT_FIELDS:
        if not isinstance(line[key], str) or not line[key]:
            return f"{key} is not a non-empty string"
    if line["source_ref"] is not None and not isinstance(line["source_ref"], str):
        return "source_ref is neither a string nor null"
    if not _is_date(line["local_date"]):
        return "local_date is not a YYYY-MM-DD date"
    for key in DECIMAL_FIELDS:
        if not isinstance(line[key], str) or not _DECIMAL_RE.fullmatch(line[key]):
            return f"{key} is not a decimal string in shortest exact form"
    if not _is_created_dt(line["created_dt"]):
        return "created_dt is not YYYY-MM-DDTHH:MM:SS.ffffffZ"
    for key in ("prev_hash", "hash"):
        if not isinstance(line[key], str) or not _HASH_RE.fullmatch(line[key]):
            return f"{key} is not 64 lowercase hex digits"
    return None


def entry_hash(line: dict) -> str:
    """sha256 hex of prev_hash + the canonical JSON of the line without prev_hash and hash."""
    body = {key: value for key, value in line.items() if key not in ("prev_hash", "hash")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        return hashlib.sha256((line["prev_hash"] + canonical).encode("utf-8")).hexdigest()
    except UnicodeEncodeError:
        # A "\ud800"-style escape decodes to a lone surrogate, which has no UTF-8 form.
        raise BadLine("a string holds a lone surrogate, which cannot be hashed") from None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not 1


def _is_created_dt(value: object) -> bool:
    if not isinstance(value, str) or not _CREATED_RE.fullmatch(value):
        return False
    try:  # the pattern alone would let 2022-02-30 or 25:00 through
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return False
    return True


def _show(value: object) -> str:
    """A value for a message: ASCII only, and short, since the file may hold anything."""
    text = ascii(value)
    return text if len(text) <= 70 else text[:67] + "..."


def grams(mg: int) -> str:
    """Milligrams as grams with 3 decimals, by integer arithmetic (no float rounding)."""
    whole, frac = divmod(abs(mg), 1000)
    return f"{'-' if mg < 0 else ''}{whole}.{frac:03d}"


def _expected_head(text: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise argparse.ArgumentTypeError("must be 64 hex digits")
    return text.lower()


def _expected_seq(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise argparse.ArgumentTypeError("must be a whole number")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Verify a Tanpu ledger.jsonl hash chain (see the module docstring).")
    parser.add_argument("file", help="the ledger.jsonl file, or - for standard input")
    parser.add_argument("--expect-head", type=_expected_head, metavar="HASH",
                        help="fail unless the recomputed head hash equals HASH")
    parser.add_argument("--expect-seq", type=_expected_seq, metavar="N",
                        help="fail unless the last seq is N")
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):  # a campaign slug must not crash an ASCII console
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        if args.file == "-":
            verdict = verify(sys.stdin.buffer)
        else:
            with open(args.file, "rb") as stream:
                verdict = verify(stream)
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if not verdict.ok:
        print(f"bad: first bad seq {verdict.bad_seq} (line {verdict.bad_line}): {verdict.reason}")
        return 1
    if args.expect_seq is not None and verdict.head_seq != args.expect_seq:
        print(f"bad: the chain is intact but its head seq is {verdict.head_seq}, "
              f"not the expected {args.expect_seq}")
        return 1
    if args.expect_head is not None and verdict.head_hash != args.expect_head:
        print(f"bad: the chain is intact but its head hash is {verdict.head_hash}, "
              f"not the expected {args.expect_head}")
        return 1
    print(f"ok: {verdict.entries} entries, campaign {verdict.campaign or '(none)'}, "
          f"head seq {verdict.head_seq}, head hash {verdict.head_hash}")
    print(f"total reduction: {grams(verdict.total_mg)} g ({verdict.total_mg} mg)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
