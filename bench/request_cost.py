"""What one request costs the app itself: wall and CPU milliseconds of this Python process
per request, in-process through the Flask test client, one request at a time (issue 8).

It runs against the database and Redis that ``bench/peak.py`` seeded (``bench_peak``, Redis
db 8): run ``make bench`` (or ``bench/peak.py``) once first. The CPU figure is the app's
Python work (the WSGI stack, SQLAlchemy, the drivers); beside it, the CPU that this
machine's PostgreSQL and Redis processes used meanwhile (their background writers
included, and anything else they served then: run it on a quiet machine).

    .venv/bin/python bench/request_cost.py                    # checkin, me, board, teams
    .venv/bin/python bench/request_cost.py checkin --profile  # and the top of a cProfile
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peak import COUNT_ACTIONS, app_environ  # noqa: E402

API = "/api/v1"
KINDS = ("checkin", "me", "board", "teams", "werun")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="*", help=f"some of {', '.join(KINDS)} (default: all)")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--slug", default="winter-2022")
    parser.add_argument("--database-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/bench_peak")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8")
    args = parser.parse_args()
    if unknown := set(args.kinds) - set(KINDS):
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")

    from backend import create_app

    app = create_app(environ=app_environ(args))
    client = app.test_client()
    reader = client.post(f"{API}/auth/wechat-login", json={"code": "sandbox:peak-8"})
    if reader.status_code != 200:
        sys.exit(f"login failed ({reader.status_code}): run bench/peak.py first")
    # The reads as a load participant of bench/peak.py (its history is a typical one); the
    # writes as a new participant of each run, whose history grows only by this run (the
    # challenge reads of a check-in and /me go over a participant's whole history).
    reader_headers = {"Authorization": f"Bearer {reader.json['token']}"}
    login = client.post(f"{API}/auth/wechat-login",
                        json={"code": f"sandbox:request-cost-{uuid.uuid4().hex[:12]}"})
    headers = {"Authorization": f"Bearer {login.json['token']}"}
    teams = client.get(f"{API}/campaigns/{args.slug}").json["teams"]
    joined = client.post(f"{API}/campaigns/{args.slug}/join", headers=headers,
                         json={"team": teams[0]["key"]} if teams else {})
    if joined.status_code not in (200, 201):
        sys.exit(f"join failed ({joined.status_code}): {joined.get_data()[:200]}")
    base = f"{API}/campaigns/{args.slug}"
    gets = {"me": f"{base}/me", "board": f"{base}/leaderboards/individuals",
            "teams": f"{base}/leaderboards/teams?period=week"}

    werun = werun_payloads(app, login.json["user"]["id"], 30 + 2 * args.requests)

    for kind in args.kinds or KINDS:
        def send(i: int, kind=kind):
            if kind == "werun":
                response = client.post(f"{base}/werun", headers=headers, json=werun.pop(0))
            elif kind == "checkin":
                response = client.post(
                    f"{base}/checkins", headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                    json={"action": COUNT_ACTIONS[i % len(COUNT_ACTIONS)], "quantity": 1})
            else:
                response = client.get(gets[kind], headers=reader_headers)
            if response.status_code >= 300:
                sys.exit(f"{kind}: {response.status_code} {response.get_data()[:200]}")

        for i in range(30):  # warm: compiled statements, caches, the pool
            send(i)
        wall, cpu, servers = time.perf_counter(), time.process_time(), server_cpu_seconds()
        for i in range(args.requests):
            send(i)
        wall = (time.perf_counter() - wall) * 1000 / args.requests
        cpu = (time.process_time() - cpu) * 1000 / args.requests
        servers = (server_cpu_seconds() - servers) * 1000 / args.requests
        print(f"{kind:8} {wall:6.2f} ms wall  {cpu:6.2f} ms CPU per request, "
              f"{servers:5.2f} ms of PostgreSQL and Redis ({args.requests} requests, one at a "
              f"time)")
        if args.profile:
            profile = cProfile.Profile(time.process_time)  # CPU, not waits
            profile.enable()
            for i in range(args.requests):
                send(i)
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(r"backend/", 25)
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)


def server_cpu_seconds() -> float:
    """CPU seconds used so far by this machine's PostgreSQL and Redis processes (their share
    of a request, which the app's CPU figure leaves out; /proc, Linux only, clock ticks)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)
            if not fields[0].endswith(("(postgres", "(redis-server")):
                continue
            values = fields[1].split()
            total += int(values[11]) + int(values[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            continue  # a process that ended meanwhile
    return total / os.sysconf("SC_CLK_TCK")


def werun_payloads(app, user_id: int, count: int) -> list[dict]:
    """31-day WeRun lists whose today's count rises by 500 steps a sync (each credits the
    increase), encrypted with the user's session key as the sandbox does."""
    from datetime import datetime, timedelta

    from backend.extensions import db
    from backend.models import User
    from backend.services.logins import session_key_of
    from backend.wechat_crypto import encrypt_open_data
    from campaigns.calendar import zone
    from campaigns.werun import BEIJING

    tz = zone(BEIJING)
    today = datetime.now(tz).date()
    days = [today - timedelta(days=i) for i in range(30, -1, -1)]
    midnights = [int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()) for d in days]
    with app.app_context():
        key = session_key_of(db.session.get(User, user_id))
        start = int(time.time()) % 10_000  # a new run still rises above the last one's counts
        payloads = []
        for i in range(count):
            steps = [8_000] * 30 + [start * 10 + 500 * (i + 1)]
            data = {"stepInfoList": [{"timestamp": t, "step": n}
                                     for t, n in zip(midnights, steps, strict=True)]}
            encrypted, iv = encrypt_open_data(key, data, app.config["WECHAT_APPID"])
            payloads.append({"encrypted_data": encrypted, "iv": iv})
        db.session.rollback()
    return payloads


if __name__ == "__main__":
    main()
