"""What one request costs the app itself: wall and CPU milliseconds of this Python process
per request, in-process through the Flask test client, one request at a time (issue 8).

It runs against the database and Redis that ``bench/peak.py`` seeded (``bench_peak``, Redis
db 8): run ``make bench`` (or ``bench/peak.py``) once first. The CPU figure is the app's
Python work (the WSGI stack, SQLAlchemy, the drivers); PostgreSQL's and Redis's own work is
not in it, their waits are in the wall figure.

    .venv/bin/python bench/request_cost.py                    # checkin, me, board, teams
    .venv/bin/python bench/request_cost.py checkin --profile  # and the top of a cProfile
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.peak import COUNT_ACTIONS, app_environ  # noqa: E402

API = "/api/v1"
KINDS = ("checkin", "me", "board", "teams")


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
    login = client.post(f"{API}/auth/wechat-login", json={"code": "sandbox:peak-7"})
    if login.status_code != 200:
        sys.exit(f"login failed ({login.status_code}): run bench/peak.py first")
    headers = {"Authorization": f"Bearer {login.json['token']}"}
    base = f"{API}/campaigns/{args.slug}"
    gets = {"me": f"{base}/me", "board": f"{base}/leaderboards/individuals",
            "teams": f"{base}/leaderboards/teams?period=week"}

    for kind in args.kinds or KINDS:
        def send(i: int, kind=kind):
            if kind == "checkin":
                response = client.post(
                    f"{base}/checkins", headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                    json={"action": COUNT_ACTIONS[i % len(COUNT_ACTIONS)], "quantity": 1})
            else:
                response = client.get(gets[kind], headers=headers)
            if response.status_code >= 300:
                sys.exit(f"{kind}: {response.status_code} {response.get_data()[:200]}")

        for i in range(30):  # warm: compiled statements, caches, the pool
            send(i)
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(args.requests):
            send(i)
        wall = (time.perf_counter() - wall) * 1000 / args.requests
        cpu = (time.process_time() - cpu) * 1000 / args.requests
        print(f"{kind:8} {wall:6.2f} ms wall  {cpu:6.2f} ms CPU per request "
              f"({args.requests} requests, one at a time)")
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            for i in range(args.requests):
                send(i)
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(r"backend/", 25)
            pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
