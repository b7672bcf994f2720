"""Leaderboard latency at campaign scale (issue 6).

Seeds one campaign with N participants x K entries on PostgreSQL (its own database) and Redis
(its own database number), then measures inside the WSGI app (Flask test client, no network)
the individuals board (top 50 + `me` of a random participant) for period=total and
period=week, answered from Redis and from SQL, beside a naive "SUM ... GROUP BY over the ledger,
then sort" on the same data. Prints median and p99 per case and the ratios, all from one run.

    .venv/bin/python bench/leaderboard.py --participants 1000000 --entries 10

Never point it at real data: it drops and recreates the database it is given.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
from sqlalchemy import select, text

from backend import create_app
from backend.auth import issue_token
from backend.clock import utcnow
from backend.extensions import db
from backend.models import Campaign, Participation
from backend.services.boards_rebuild import rebuild_boards
from backend.services.campaigns import create_campaign, publish_campaign
from backend.services.seed import seed_campaign
from bench.common import measure, percentile, recreate_database
from campaigns.calendar import local_today, week_start
from campaigns.presets import load_preset, shift_document

NAIVE_TOTAL = """
WITH totals AS (
    SELECT participation_id, SUM(reduction_mg) AS mg,
           MAX(CASE WHEN reduction_mg > 0 THEN seq ELSE 0 END) AS seq
    FROM ledger_entries WHERE campaign_id = :c {where} GROUP BY participation_id
), ranked AS (
    SELECT p.pid, t.mg, RANK() OVER (ORDER BY t.mg DESC, t.seq, p.pid) AS rank
    FROM totals t JOIN participations p ON p.id = t.participation_id
    JOIN users u ON u.id = p.user_id
    WHERE t.mg > 0 AND p.disqualified_dt IS NULL AND u.on_leaderboard
)
SELECT * FROM ranked WHERE rank <= 50 OR pid = :pid ORDER BY rank
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=10)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench_tanpu"))
    parser.add_argument("--redis-url", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--cases", default="redis,sql,naive",
                        help="which of redis, sql, naive to measure (default all)")
    parser.add_argument("--rebuild-boards", action="store_true",
                        help="with --reuse: rebuild the Redis boards first")
    args = parser.parse_args()

    environ = {"TANPU_ENV": "testing", "DATABASE_URL": args.database_url,
               "SECRET_KEY": "bench-" + "k" * 40, "WECHAT_SANDBOX": "1",
               "RATE_LIMITS_ENABLED": "0"}
    with_redis = create_app({"PROPAGATE_EXCEPTIONS": True},
                            environ={**environ, "REDIS_URL": args.redis_url})
    sql_only = create_app(environ=environ)
    if args.reuse:
        with with_redis.app_context():
            from flask_migrate import upgrade

            upgrade()  # a database seeded by an earlier version gets today's schema
            if args.rebuild_boards:
                campaign = db.session.scalars(select(Campaign)).first()
                started = time.perf_counter()
                rebuild_boards(campaign)
                print(f"Redis boards rebuilt in {time.perf_counter() - started:.0f} s")
    else:
        recreate_database(args.database_url, ("bench", "test"))
        redis.Redis.from_url(args.redis_url).flushdb()
        with with_redis.app_context():
            from flask_migrate import upgrade

            upgrade()
            now = utcnow()
            preset = load_preset("winter-2022")
            doc = shift_document(preset, local_today(now, preset.timezone))
            campaign = create_campaign(doc, "bench")
            publish_campaign(campaign, "bench")
            db.session.commit()
            started = time.perf_counter()
            seed_campaign(campaign, args.participants, args.entries, 7, now,
                          progress=lambda n: print(".", end="", flush=True))
            print(f"\nseeded {args.participants} participants x {args.entries} entries in "
                  f"{time.perf_counter() - started:.0f} s")
            started = time.perf_counter()
            rebuild_boards(campaign)
            print(f"Redis boards rebuilt in {time.perf_counter() - started:.0f} s")

    with with_redis.app_context():
        campaign_id = db.session.scalar(text("SELECT id FROM campaigns LIMIT 1"))
        slug = db.session.scalar(text("SELECT slug FROM campaigns LIMIT 1"))
        count = db.session.scalar(text("SELECT count(*) FROM participations"))
        rng = random.Random(11)
        sample_ids = [rng.randint(1, count) for _ in range(50)]
        people = db.session.query(Participation.id, Participation.user_id, Participation.pid) \
            .filter(Participation.id.in_(sample_ids)).all()
        with with_redis.test_request_context():
            tokens = [issue_token("participant", user_id, 1).token for _, user_id, _ in people]
        participation_of = [pid for _, _, pid in people]
        week = week_start(local_today(utcnow(), "Asia/Shanghai"))

    cases = set(args.cases.split(","))
    results = []
    for label, app in (("redis", with_redis), ("sql", sql_only)):
        if label not in cases:
            continue
        client = app.test_client()
        for period in ("total", "week"):
            picks = iter(random.Random(5).choices(range(len(tokens)), k=args.runs + 1))

            def call(app=app, client=client, period=period, picks=picks, label=label):
                token = tokens[next(picks)]
                response = client.get(
                    f"/api/v1/campaigns/{slug}/leaderboards/individuals?period={period}&limit=50",
                    headers={"Authorization": f"Bearer {token}"})
                assert response.status_code == 200, response.get_data(as_text=True)[:200]
                assert response.headers["X-Tanpu-Board-Source"] == label
                assert response.json["me"] is not None

            results.append((f"{label} board, period={period}", measure(call, args.runs)))

    with sql_only.app_context():
        for period, where in (("total", ""), ("week", "AND local_date >= :week")):
            if "naive" not in cases:
                break
            picks = iter(random.Random(6).choices(participation_of, k=args.runs // 10 + 1))

            def naive(where=where, picks=picks):
                db.session.execute(text(NAIVE_TOTAL.replace("{where}", where)),
                                   {"c": campaign_id, "pid": next(picks), "week": week}).all()
                db.session.rollback()

            results.append((f"naive GROUP BY, period={period}", measure(naive, args.runs // 10)))

    print(f"\n{count} participants, {args.entries} entries each; latency in ms "
          f"({args.runs} requests per board case)")
    print(f"{'case':34} {'median':>9} {'p99':>9}")
    medians = {}
    for label, samples in results:
        medians[label] = statistics.median(samples)
        print(f"{label:34} {medians[label]:9.2f} {percentile(samples, 0.99):9.2f}")
    for period in ("total", "week"):
        if not {"naive", "redis", "sql"} <= cases:
            break
        naive_ms = medians[f"naive GROUP BY, period={period}"]
        print(f"period={period}: naive / redis median = "
              f"{naive_ms / medians[f'redis board, period={period}']:.1f}x, "
              f"naive / sql median = {naive_ms / medians[f'sql board, period={period}']:.1f}x")


if __name__ == "__main__":
    main()
