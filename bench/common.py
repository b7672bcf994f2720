"""What the benchmarks share: their own database, and latency samples."""

from __future__ import annotations

import sys
import time
from urllib.parse import urlsplit

import psycopg


def recreate_database(url: str, prefixes: tuple[str, ...] = ("bench",)) -> None:
    """Drop and create the benchmark's own database; refuse any name that could be someone's
    data (it must start with one of ``prefixes``)."""
    parts = urlsplit(url.replace("+psycopg", ""))
    name = parts.path.lstrip("/")
    if not name.startswith(prefixes):
        sys.exit(f"the benchmark database name must start with {' or '.join(prefixes)!r}")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def percentile(samples: list[float], share: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(fn, runs: int) -> list[float]:
    """Milliseconds of ``runs`` calls of ``fn``, after one warm-up call."""
    fn()  # warm up caches and connections
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples
