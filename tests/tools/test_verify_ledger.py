"""tools/verify_ledger.py: the verifiers' standalone chain check agrees with campaigns.ledger."""

import ast
import importlib.util
import io
import json
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.decimals import MAX_MILLI
from campaigns.ledger import (
    GENESIS,
    LINE_FIELDS,
    ChainVerifier,
    entry_hash,
    line_problem,
    make_line,
    verify_chain,
)
from campaigns.methodology import LEDGER_SOURCES

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "verify_ledger.py"
T0 = datetime(2022, 2, 3, 16, 30, tzinfo=UTC)


def load_tool():
    spec = importlib.util.spec_from_file_location("verify_ledger_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


tool = load_tool()


def chain(n: int = 5, campaign: str = "winter-2022") -> list[dict]:
    """n real lines; the third is a reversal, so the total is not simply n times one amount."""
    lines, prev = [], GENESIS
    for seq in range(1, n + 1):
        reversal = seq == 3
        line = make_line(prev, seq=seq, campaign=campaign, participant=f"小明{seq % 2}",
                         action="walk_steps", local_date=date(2022, 2, 4),
                         quantity_milli=8_200_000 + seq, counted_milli=8_200_000,
                         factor_milli=20, reduction_mg=-164_000 if reversal else 164_000 + seq,
                         source="reversal" if reversal else "werun",
                         source_ref="2" if reversal else None,
                         methodology_version="cn-consumer-v1",
                         created_dt=T0 + timedelta(seconds=seq))
        lines.append(line)
        prev = line["hash"]
    return lines


def jsonl(lines: list, ensure_ascii: bool = False) -> bytes:
    """Lines as a download: dicts as JSON, str items verbatim (for garbage lines)."""
    text = [item if isinstance(item, str) else json.dumps(item, ensure_ascii=ensure_ascii)
            for item in lines]
    return "".join(f"{item}\n" for item in text).encode("utf-8")


def run(tmp_path: Path, data: bytes, *args: str, script: Path = SCRIPT):
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(data)
    # -I: no PYTHONPATH, no script directory on sys.path, so project imports would fail.
    return subprocess.run([sys.executable, "-I", str(script), str(path), *args],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)


def ok_output(lines: list[dict]) -> str:
    total = ChainVerifier()
    for line in lines:
        total.feed(line)
    head = lines[-1]["hash"] if lines else GENESIS
    campaign = lines[0]["campaign"] if lines else "(none)"
    return (f"ok: {len(lines)} entries, campaign {campaign}, head seq {len(lines)}, "
            f"head hash {head}\ntotal reduction: {tool.grams(total.total_mg)} g "
            f"({total.total_mg} mg)\n")


# --- as a verifier runs it -------------------------------------------------------------------

def test_good_chain_runs_outside_the_project(tmp_path):
    lines = chain()
    alone = tmp_path / "verify_ledger.py"
    shutil.copy(SCRIPT, alone)
    result = run(tmp_path, jsonl(lines), "--expect-head", lines[-1]["hash"].upper(),
                 "--expect-seq", "5", script=alone)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == ok_output(lines)
    assert "total reduction: 492.012 g (492012 mg)" in result.stdout  # 4 x 164 g + 12 mg - 164 g


def test_escaped_non_ascii_and_stdin(tmp_path):
    lines = chain()
    result = subprocess.run([sys.executable, "-I", str(SCRIPT), "-"], input=jsonl(lines, True),
                            capture_output=True, timeout=60)
    assert result.returncode == 0
    assert result.stdout.decode() == ok_output(lines)


def test_empty_file(tmp_path):
    result = run(tmp_path, b"", "--expect-seq", "0", "--expect-head", GENESIS)
    assert result.returncode == 0
    assert result.stdout == ok_output([])
    assert "total reduction: 0.000 g (0 mg)" in result.stdout


def rehash(lines: list[dict], index: int) -> None:
    lines[index]["hash"] = entry_hash(lines[index]["prev_hash"], lines[index])


def swap(lines, i, j):
    lines[i], lines[j] = lines[j], lines[i]


MUTATIONS = {
    "value changed": (lambda ls: ls[2].update(reduction_mg=1), 3, "hash does not match"),
    "value changed, line rehashed": (
        lambda ls: (ls[2].update(reduction_mg=1), rehash(ls, 2)), 4, "previous line's hash"),
    "key added": (lambda ls: ls[1].update(note="x"), 2, "unexpected key(s): 'note'"),
    "key removed": (lambda ls: ls[4].pop("source_ref"), 5, "missing key(s): source_ref"),
    "reordered lines": (lambda ls: swap(ls, 1, 2), 2, "seq 3 where 2 was expected"),
    "dropped line": (lambda ls: ls.pop(2), 3, "seq 4 where 3 was expected (entries missing)"),
    "duplicated line": (lambda ls: ls.insert(3, ls[2]), 4, "(repeated or out of order)"),
    "changed hash": (lambda ls: ls[3].update(hash="f" * 64), 4, "hash does not match"),
    "changed first prev_hash": (lambda ls: ls[0].update(prev_hash="1" * 64), 1, "64 zeros"),
    "non-JSON line": (lambda ls: ls.__setitem__(2, "{seq: 3}"), 3, "not JSON"),
    "not an object": (lambda ls: ls.__setitem__(0, "[1]"), 1, "not a JSON object"),
    "empty line": (lambda ls: ls.insert(2, ""), 3, "empty line"),
    "long decimal": (lambda ls: ls[1].update(quantity="8200.0020"), 2, "quantity is not"),
    "no such day": (lambda ls: ls[1].update(created_dt="2022-02-30T00:00:00.000000Z"), 2,
                    "created_dt is not"),
    "negative amount": (lambda ls: ls[3].update(reduction_mg=-1), 4, "source is not reversal"),
    "seq as true": (lambda ls: ls[0].update(seq=True), 1, "seq is not a positive integer"),
    "upper-case hash": (lambda ls: ls[4].update(hash=ls[4]["hash"].upper()), 5, "lowercase hex"),
}


@pytest.mark.parametrize("name", MUTATIONS)
def test_one_change_names_the_first_bad_seq(tmp_path, name):
    mutate, bad_seq, reason = MUTATIONS[name]
    lines = chain()
    mutate(lines)
    result = run(tmp_path, jsonl(lines))
    assert result.returncode == 1
    assert result.stdout.startswith(f"bad: first bad seq {bad_seq} (line {bad_seq}): ")
    assert reason in result.stdout


def test_campaigns_cannot_be_mixed(tmp_path):
    # The one rule verify_chain leaves to its callers: a file is one campaign's chain.
    lines = chain(3) + [dict(line, campaign="other") for line in chain(5)[3:]]
    lines[3]["prev_hash"] = lines[2]["hash"]
    rehash(lines, 3)
    lines[4]["prev_hash"] = lines[3]["hash"]
    rehash(lines, 4)
    assert verify_chain(lines).ok
    result = run(tmp_path, jsonl(lines))
    assert (result.returncode, result.stdout) == (
        1, "bad: first bad seq 4 (line 4): campaign 'other' differs from 'winter-2022' "
           "of the lines before\n")


def test_expected_head_catches_a_cut_tail_and_a_rewritten_last_line(tmp_path):
    lines = chain()
    head = lines[-1]["hash"]
    result = run(tmp_path, jsonl(lines[:4]), "--expect-head", head)
    assert result.returncode == 1
    assert result.stdout == (f"bad: the chain is intact but its head hash is {lines[3]['hash']}"
                             f", not the expected {head}\n")
    lines[4]["reduction_mg"] = 1
    rehash(lines, 4)
    assert run(tmp_path, jsonl(lines)).returncode == 0
    assert run(tmp_path, jsonl(lines), "--expect-head", head).returncode == 1
    result = run(tmp_path, jsonl(lines), "--expect-seq", "6")
    assert result.returncode == 1
    assert "head seq is 5, not the expected 6" in result.stdout


@pytest.mark.parametrize("args", [
    [], ["--expect-head", "abc"], ["--expect-seq", "-1"], ["--expect-seq", "x"],
])
def test_usage_errors(tmp_path, args):
    result = run(tmp_path, jsonl(chain(1)), *args) if args else subprocess.run(
        [sys.executable, "-I", str(SCRIPT)], capture_output=True, timeout=60)
    assert result.returncode == 2


def test_unreadable_file(tmp_path):
    result = subprocess.run([sys.executable, "-I", str(SCRIPT), str(tmp_path / "missing")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot read")
    assert run(tmp_path, b"", "--help").returncode == 0


def test_standard_library_only():
    tree = ast.parse(SCRIPT.read_text(encoding="utf-8"))
    roots = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
             for alias in node.names}
    roots |= {node.module.split(".")[0] for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.module}
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}


# --- text the JSON objects cannot show (in process) ------------------------------------------

def verdict_of(data: bytes):
    verdict = tool.verify(io.BytesIO(data))
    return verdict.bad_seq, verdict.reason


def test_text_level_problems():
    good = jsonl(chain(2))
    first, second = good.splitlines(keepends=True)
    assert verdict_of(first + b"\xff" + second) == (2, "not valid UTF-8 (at byte 1 of the line)")
    assert verdict_of(b"\xef\xbb\xbf" + good)[0] == 1  # a byte order mark is not JSON
    assert verdict_of(first.replace(b'{"seq": 1,', b'{"seq": 1, "seq": 1,')) == (
        1, "key 'seq' appears twice")
    assert verdict_of(first.replace(b'"reduction_mg": 164001', b'"reduction_mg": NaN')) == (
        1, "not JSON (NaN is not a JSON number)")
    assert verdict_of(first + b"[" * 100_000 + b"\n")[0] == 2
    assert verdict_of(first + b"9" * 5000 + b"\n")[0] == 2
    assert verdict_of(first + b" " * (tool.MAX_LINE_BYTES + 1))[1].startswith("line longer")
    assert verdict_of(good + b"\n") == (3, "empty line")
    assert verdict_of(good.replace(b"\n", b"\r\n")) == (None, None)
    assert verdict_of(good.rstrip(b"\n")) == (None, None)  # no newline after the last line


def test_lone_surrogate_is_bad_not_a_crash():
    line = chain(1)[0]
    data = jsonl([line]).replace("小明1".encode(), b"\\ud800")
    assert verdict_of(data) == (1, "a string holds a lone surrogate, which cannot be hashed")


# --- agreement with campaigns.ledger (hypothesis, in process) --------------------------------

@st.composite
def chains(draw) -> list[dict]:
    lines, prev = [], GENESIS
    campaign = draw(st.sampled_from(["winter-2022", "低碳-2023"]))
    for seq in range(1, draw(st.integers(0, 6)) + 1):
        source = draw(st.sampled_from(LEDGER_SOURCES))
        low = -(10**12) if source == "reversal" else 0
        line = make_line(
            prev, seq=seq, campaign=campaign, participant=draw(st.text(min_size=1, max_size=6)),
            action=draw(st.sampled_from(["walk_steps", "clean_plate"])),
            local_date=draw(st.dates(date(2000, 1, 1), date(2099, 12, 31))),
            quantity_milli=draw(st.integers(0, MAX_MILLI)),
            counted_milli=draw(st.integers(0, 10**7)), factor_milli=draw(st.integers(0, 10**5)),
            reduction_mg=draw(st.integers(low, 10**12)), source=source,
            source_ref=draw(st.none() | st.text(max_size=6)),
            methodology_version="cn-consumer-v1",
            created_dt=draw(st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31),
                                         timezones=st.just(UTC))))
        lines.append(line)
        prev = line["hash"]
    return lines


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=5)


NEAR_VALUES = {  # per key: values that are right or nearly right, so the subtle rules are hit
    "seq": [0, -1, 1, 2, 7, True, 2.0, "2"],
    "campaign": ["other", "", "winter-2022", 1],
    "participant": ["", "p"], "action": ["", "x"], "methodology_version": ["", "v2"],
    "local_date": ["2022-02-04", "2022-2-4", "2022-13-45", "２０２２-02-04", "2022-02-04 "],
    "quantity": ["0", "8.2", "8.20", "08.2", "-1", "-0", "1e3", "8.", ".5", "0.0001",
                 "1000000000000", "999999999999.999", 8.2],
    "reduction_mg": [0, -1, 1, 10**20, 1.0, "1"],
    "source": [*LEDGER_SOURCES, "gift", None],
    "source_ref": [None, "", "x", 1],
    "created_dt": ["2022-02-03T16:30:00.000000Z", "2022-02-30T00:00:00.000000Z",
                   "2022-02-03T24:00:00.000000Z", "2022-02-03T16:30:00Z",
                   "2022-02-03 16:30:00.000000Z", "2022-02-03T16:30:00.000000+00:00"],
    "prev_hash": [GENESIS, "f" * 64, "F" * 64, "0" * 63, "g" * 64],
}
NEAR_VALUES |= {"counted_quantity": NEAR_VALUES["quantity"],
                "factor_g_per_unit": NEAR_VALUES["quantity"], "hash": NEAR_VALUES["prev_hash"]}


def field_values(lines: list[dict], key: str):
    """Random JSON, or a value nearly right for the key (including other lines' values)."""
    near = NEAR_VALUES[key] + [line[key] for line in lines if key in line]
    return st.sampled_from(near) | JSON_VALUES


@st.composite
def mutated(draw, lines: list[dict]) -> list:
    """lines with one random change; a garbage line is a str (None for verify_chain)."""
    lines = [dict(line) for line in lines]
    # A changed line that is then re-hashed gets past its own hash check, so only the rules
    # (and the next line's prev_hash) can catch it: the case that tells checkers apart.
    kinds = ["none"] + (["set", "set_rehash", "set_rehash", "set_rehash", "delete", "add",
                         "drop", "duplicate", "garbage"] if lines else []) + (
        ["swap"] if len(lines) > 1 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return lines
    i = draw(st.integers(0, len(lines) - 1))
    if kind in ("set", "set_rehash"):
        key = draw(st.sampled_from(LINE_FIELDS))
        lines[i][key] = draw(field_values(lines, key))
        if kind == "set_rehash" and isinstance(lines[i]["prev_hash"], str):
            rehash(lines, i)
    elif kind == "delete":
        del lines[i][draw(st.sampled_from(LINE_FIELDS))]
    elif kind == "add":
        lines[i][draw(st.text(max_size=4))] = draw(JSON_VALUES)
    elif kind == "drop":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "garbage":
        lines[i] = draw(st.text(max_size=12).filter(lambda text: "\n" not in text))
    else:
        j = draw(st.integers(0, len(lines) - 1))
        swap(lines, i, j)
    return lines


def reference(lines: list) -> tuple:
    """verify_chain's verdict, plus the tool's one extra rule: a single campaign per file."""
    feed = [line if isinstance(line, dict) else None for line in lines]
    ok, bad, _, _ = verify_chain(feed)
    good = feed if ok else feed[:bad - 1]
    for line in good:
        if line["campaign"] != good[0]["campaign"]:
            return False, line["seq"]
    return ok, bad


@pytest.mark.timeout(60)
@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_agrees_with_verify_chain(data):
    lines = data.draw(mutated(data.draw(chains())))
    ascii_only = data.draw(st.booleans())
    try:
        text = jsonl(lines, ensure_ascii=ascii_only)
    except ValueError:  # e.g. an int too long for json.dumps: not a file anyone can download
        return
    verdict = tool.verify(io.BytesIO(text))
    assert (verdict.ok, verdict.bad_seq) == reference(lines)
    if verdict.ok:
        expected = ChainVerifier()
        for line in lines:
            expected.feed(line)
        assert (verdict.entries, verdict.head_seq, verdict.head_hash, verdict.total_mg) == (
            expected.entries, expected.head_seq, expected.head_hash, expected.total_mg)


@settings(max_examples=400, deadline=None)
@given(key=st.sampled_from(LINE_FIELDS), data=st.data())
def test_line_rules_agree_with_line_problem(key, data):
    line = chain(1)[0]
    forms = {
        "local_date": st.from_regex(r"\d{4}-\d{2}-\d{2}", fullmatch=True),
        "created_dt": st.from_regex(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z",
                                    fullmatch=True),
    }
    for decimal in ("quantity", "counted_quantity", "factor_g_per_unit"):
        forms[decimal] = st.from_regex(r"-?[0-9]{1,14}(\.[0-9]{0,4})?", fullmatch=True)
    line[key] = data.draw(forms.get(key, st.nothing()) | field_values([line], key))
    assert (tool.line_problem(line) is None) == (line_problem(line) is None)
