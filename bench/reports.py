"""Reporter endpoint latency at campaign scale (issue 7).

Seeds one campaign with N participants x K entries on PostgreSQL (its own database) and Redis
(its own database number), then measures inside the WSGI app (Flask test client with a reporter
API key, no network) the median and p95 latency of summary, timeseries, breakdown by action and
by team, and the big screen's dashboard JSON; and, for the two streamed exports (export.csv and
ledger.jsonl), the time to the first byte, the time to the first data row, and the rows per
second of a whole download. Goals (issue 7): each JSON report under 50 ms median, the first
byte of both exports under 200 ms.

    .venv/bin/python bench/reports.py --participants 100000 --entries 10

Never point it at real data: it drops and recreates the database it is given.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
from sqlalchemy import text

from backend import create_app
from backend.clock import utcnow
from backend.extensions import db
from backend.models import Campaign
from backend.services.boards_rebuild import rebuild_boards
from backend.services.campaigns import create_campaign, publish_campaign
from backend.services.credentials import issue_credential
from backend.services.seed import seed_campaign
from bench.common import measure, percentile, recreate_database
from campaigns.calendar import local_today
from campaigns.presets import load_preset, shift_document

REPORTS = "/api/v1/reports/campaigns"
JSON_CASES = ("summary", "timeseries", "breakdown?by=action", "breakdown?by=team")
EXPORTS = ("export.csv", "ledger.jsonl")
JSON_GOAL_MS = 50
FIRST_BYTE_GOAL_MS = 200


def seed(app, participants: int, entries: int) -> None:
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        now = utcnow()
        preset = load_preset("winter-2022")  # six teams, a public dashboard
        campaign = create_campaign(shift_document(preset, local_today(now, preset.timezone)),
                                   "bench")
        publish_campaign(campaign, "bench")
        db.session.commit()
        started = time.perf_counter()
        seed_campaign(campaign, participants, entries, 7, now,
                      progress=lambda n: print(".", end="", flush=True))
        print(f"\nseeded {participants} participants x {entries} entries in "
              f"{time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        rebuild_boards(campaign)
        print(f"Redis boards rebuilt in {time.perf_counter() - started:.0f} s")


def stream(client, url: str, headers: dict, whole: bool) -> tuple[float, float, float, int]:
    """(ms to the first byte, ms to the first data row, ms for everything, rows) of one
    streamed download; stops after the first data row unless ``whole``."""
    started = time.perf_counter()
    response = client.get(url, headers=headers, buffered=False)
    assert response.status_code == 200, response.status_code
    chunks = iter(response.response)
    first = next(chunks)
    first_byte = (time.perf_counter() - started) * 1000
    header_lines = 1 if url.endswith(".csv") else 0
    rows = first.count(b"\n") - header_lines
    while rows <= 0:  # the CSV's first chunk is its header alone
        chunk = next(chunks, None)
        if chunk is None:
            break
        rows += chunk.count(b"\n")
    first_row = (time.perf_counter() - started) * 1000
    if whole:
        for chunk in chunks:
            rows += chunk.count(b"\n")
    response.close()
    return first_byte, first_row, (time.perf_counter() - started) * 1000, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--entries", type=int, default=10)
    parser.add_argument("--runs", type=int, default=200, help="requests per JSON report")
    parser.add_argument("--first-byte-runs", type=int, default=30,
                        help="downloads per export stopped after the first data row")
    parser.add_argument("--download-runs", type=int, default=3,
                        help="whole downloads per export")
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench_reports"))
    parser.add_argument("--redis-url", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    args = parser.parse_args()

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    app = create_app({"PROPAGATE_EXCEPTIONS": True}, environ={
        "TANPU_ENV": "testing", "DATABASE_URL": args.database_url,
        "SECRET_KEY": "bench-" + "k" * 40, "WECHAT_SANDBOX": "1", "RATE_LIMITS_ENABLED": "0",
        "REDIS_URL": args.redis_url})
    if not args.reuse:
        recreate_database(args.database_url)
        redis.Redis.from_url(args.redis_url).flushdb()
        seed(app, args.participants, args.entries)

    with app.app_context():
        campaign = db.session.scalars(db.select(Campaign).limit(1)).one()
        slug = campaign.slug
        _, key = issue_credential(campaign, "api_key", "bench", "bench")
        db.session.commit()
        participants = db.session.scalar(text("SELECT count(*) FROM participations"))
        entries = db.session.scalar(text("SELECT count(*) FROM ledger_entries"))
    headers = {"X-Api-Key": key}
    client = app.test_client()

    results = []
    for case in JSON_CASES:
        def call(case=case):
            response = client.get(f"{REPORTS}/{slug}/{case}", headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)[:200]

        results.append((case, measure(call, args.runs)))

    def dashboard():
        response = client.get(f"/api/v1/campaigns/{slug}/dashboard")
        assert response.status_code == 200, response.get_data(as_text=True)[:200]

    results.append(("dashboard (public)", measure(dashboard, args.runs)))

    exports = []
    for name in EXPORTS:
        url = f"{REPORTS}/{slug}/{name}"
        stream(client, url, headers, whole=False)  # warm up
        firsts = [stream(client, url, headers, whole=False)
                  for _ in range(args.first_byte_runs)]
        wholes = [stream(client, url, headers, whole=True) for _ in range(args.download_runs)]
        exports.append((name, [f[0] for f in firsts], [f[1] for f in firsts], wholes))

    print(f"\n{participants} participants, {entries} entries; load average at the end: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'report':24} {'median ms':>10} {'p95 ms':>10}  goal")
    for label, samples in results:
        median = statistics.median(samples)
        verdict = "" if label.startswith("dashboard") else (
            f"< {JSON_GOAL_MS} ms: {'met' if median < JSON_GOAL_MS else 'MISSED'}")
        print(f"{label:24} {median:10.2f} {percentile(samples, 0.95):10.2f}  {verdict}")
    print(f"\n{'export':14} {'first byte ms':>14} {'p95':>8} {'first row ms':>13} "
          f"{'rows':>9} {'whole s':>8} {'rows/s':>9}  goal")
    for name, first_bytes, first_rows, wholes in exports:
        median = statistics.median(first_bytes)
        seconds = statistics.median(w[2] for w in wholes) / 1000
        rows = wholes[0][3]
        print(f"{name:14} {median:14.2f} {percentile(first_bytes, 0.95):8.2f} "
              f"{statistics.median(first_rows):13.2f} {rows:9d} {seconds:8.2f} "
              f"{rows / seconds:9.0f}  first byte < {FIRST_BYTE_GOAL_MS} ms: "
              f"{'met' if median < FIRST_BYTE_GOAL_MS else 'MISSED'}")


if __name__ == "__main__":
    main()
