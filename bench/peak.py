"""Evening peak on the real server (issue 8): per-endpoint peaks, the mix at 70 % of its own
saturated rate, the stack's own limits, and a check that nothing was lost or doubled.

1. Seeds one campaign (the 低碳冬奥 preset, today its eighth day) on its own PostgreSQL database
   and Redis database number with ``flask campaigns seed`` (timed; N participants x K entries).
2. Serves the stack's own limits (bench/stack_app.py: a bare JSON endpoint, and one Core INSERT
   + COMMIT with the app's engine options) under gunicorn, then the app itself (``wsgi:app``)
   under the same gunicorn settings, with rate limits off and the WeChat sandbox on.
3. Logs in U sandbox participants (``sandbox:peak-<i>``), has them join, and encrypts their
   WeRun step lists with their session keys as wx.getWeRunData would.
4. For each endpoint alone (and each stack endpoint), raises the concurrency of a closed-loop
   asyncio HTTP/1.1 client (keep-alive connections; see LoadClient for why not httpx) until
   the completed requests/s stop rising (0 errors): the peak.
   Then the evening mix (60 % check-ins with Idempotency-Keys, 20 % GET /me, 15 %
   leaderboards, 5 % WeRun syncs) the same way, and then open-loop (Poisson arrivals) at 70 %
   of the mix's saturated rate: p50/p95/p99 per endpoint and errors.
5. Stops the server, runs ``flask ledger verify``, and checks that the campaign total equals
   the total before the load plus every reduction the server reported in a 2xx reply (exact
   decimals; idempotent replays are not counted again).

    .venv/bin/python bench/peak.py            # or: make bench
    .venv/bin/python bench/peak.py --reuse --profile /tmp/peak-profile   # py-spy on the workers

Never point it at real data: it drops and recreates the database it is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bench.common import percentile, recreate_database  # noqa: E402

API = "/api/v1"
BIN = Path(sys.executable).parent
# Check-in actions of the preset that a participant may self-report and that are not once-daily
# (a repeated once-daily check-in is 409 checkin.already_done): counts and one distance.
COUNT_ACTIONS = ("bus_ride", "metro_ride", "clean_plate", "reusable_cup", "e_invoice",
                 "e_ticket", "online_meeting")
DISTANCE_ACTIONS = ("cycle_km",)
MIX = (("checkin", 60), ("me", 20), ("board", 15), ("werun", 5))
BOARDS = (("individuals", "total"), ("individuals", "week"), ("teams", "total"),
          ("teams", "week"))
LEVELS = (1, 2, 4, 8, 16, 32, 64, 128)
RETRY_SHARE = 0.02  # check-ins sent again with the same key and body: must replay, not count
WERUN_PAYLOADS = 6  # rising step counts per participant; later syncs resend the last one
GOALS = {"checkin_vs_insert": 0.50, "read_vs_json": 0.40, "p99_ms": 100.0}
# Settings the server must not inherit from the calling shell.
INHERITED_NAMES = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "GUNICORN_CMD_ARGS"}
INHERITED_PREFIXES = ("WECHAT_", "TANPU_", "FLASK_", "RATE_LIMIT")


# -- database, environment, processes -----------------------------------------------------------

def app_environ(args) -> dict[str, str]:
    """What the app, the CLI and the servers see: this bench's database and Redis only."""
    return {"TANPU_ENV": "development", "DATABASE_URL": args.database_url,
            "REDIS_URL": args.redis_url, "SECRET_KEY": "bench-peak-" + "k" * 40,
            "WECHAT_SANDBOX": "1", "RATE_LIMITS_ENABLED": "0", "FLASK_SKIP_DOTENV": "1"}


def process_environ(args) -> dict[str, str]:
    environ = {name: value for name, value in os.environ.items()
               if name not in INHERITED_NAMES and not name.startswith(INHERITED_PREFIXES)}
    environ.update(app_environ(args))
    environ["PYTHONUNBUFFERED"] = "1"
    return environ


def flask_cli(args, *command: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``flask --app wsgi COMMAND`` on the bench database; its stderr (progress bars)
    goes straight to ours."""
    return subprocess.run([str(BIN / "flask"), "--app", "wsgi", *command], cwd=ROOT,
                          env=process_environ(args), check=check, stdout=subprocess.PIPE,
                          text=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen
    log_path: Path

    def worker_pids(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()]


@contextmanager
def gunicorn(args, target: str, health_path: str, log_path: Path):
    """gunicorn serving ``target`` with the bench's settings; stopped (SIGTERM, then SIGKILL
    to its own process group) at the end."""
    port = free_port()
    command = [str(BIN / "gunicorn"), target, "--bind", f"127.0.0.1:{port}",
               "--workers", str(args.workers), "--threads", str(args.threads),
               "--worker-class", args.worker_class, "--backlog", "2048",
               "--graceful-timeout", "20", "--timeout", "60", "--error-logfile", "-"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=process_environ(args),
                                   stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                sys.exit(f"gunicorn {target} exited; see {log_path}")
            try:
                with urllib.request.urlopen(base_url + health_path, timeout=1) as reply:  # noqa: S310
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                sys.exit(f"gunicorn {target} did not start; see {log_path}")
            time.sleep(0.2)
        yield Server(base_url, process, log_path)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


# -- machine readings ---------------------------------------------------------------------------

def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def machine_description() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} x {model}"


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# -- the load client --------------------------------------------------------------------------

class Reply:
    """What the load needs of an HTTP response."""

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes):
        self.status_code = status_code
        self.headers = headers  # names in lower case
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        if not 200 <= self.status_code < 300:
            raise RuntimeError(f"HTTP {self.status_code}: {self.text[:200]}")


class LoadClient:
    """A minimal asyncio HTTP/1.1 client: at most ``connections`` keep-alive connections to
    one server, Content-Length and chunked bodies, a 30 s deadline per request.

    Not httpx: on this 2-core machine the generator shares the CPU with the server, and
    httpx's AsyncClient used a whole core at about 750 requests/s against the bare JSON
    endpoint and fell to under 200 requests/s at 32 connections, so it measured itself. This
    client costs a few tens of microseconds a request (its CPU is printed with every figure).
    """

    TIMEOUT_S = 30.0
    KEEP_ALIVE_S = 1.5

    def __init__(self, base_url: str, connections: int):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.host_header = f"Host: {parts.netloc}\r\n"
        self.gate = asyncio.Semaphore(connections)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self.open: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> LoadClient:
        return self

    async def __aexit__(self, *exc) -> None:
        for writer in list(self.open):
            writer.close()
        self.open.clear()
        self.idle.clear()

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return await self.request("GET", path, headers or {}, None)

    async def post(self, path: str, json: object = None,
                   headers: dict[str, str] | None = None) -> Reply:
        body = b"" if json is None else _dumps(json).encode()
        return await self.request("POST", path, headers or {}, body)

    async def request(self, method: str, path: str, headers: dict[str, str],
                      body: bytes | None) -> Reply:
        async with self.gate:
            return await asyncio.wait_for(self._send(method, path, headers, body),
                                          self.TIMEOUT_S)

    async def _send(self, method, path, headers, body) -> Reply:
        lines = [f"{method} {path} HTTP/1.1\r\n", self.host_header]
        lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        if body is not None:
            lines.append(f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n")
        head = ("".join(lines) + "\r\n").encode()
        payload = head + body if body else head
        for attempt in (1, 2):
            connection = self._idle_connection() if attempt == 1 else None
            reused = connection is not None
            reader, writer = connection or await self._connect()
            try:
                writer.write(payload)
                reply, keep = await self._read(reader)
            except (OSError, asyncio.IncompleteReadError) as error:
                self._close(writer)
                # A kept-alive connection the server closed while idle (nothing was read):
                # the request never reached the application, so sending it again (on a new
                # connection) is safe.
                if reused and getattr(error, "partial", b"") == b"":
                    continue
                raise
            if keep:
                self.idle.append((reader, writer, time.monotonic()))
            else:
                self._close(writer)
            return reply
        raise OSError("unreachable")

    def _idle_connection(self):
        """The most recently used idle connection, dropping those idle for longer than the
        server keeps them (gunicorn's --keep-alive, 2 s by default)."""
        while self.idle:
            reader, writer, since = self.idle.pop()
            if time.monotonic() - since < self.KEEP_ALIVE_S:
                return reader, writer
            self._close(writer)
        return None

    async def _connect(self):
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.open.add(writer)
        return reader, writer

    def _close(self, writer: asyncio.StreamWriter) -> None:
        self.open.discard(writer)
        writer.close()

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[Reply, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        keep = headers.get("connection", "").lower() != "close"
        if "content-length" in headers:
            content = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunks.append(await reader.readexactly(size + 2))
                if size == 0:
                    break
            content = b"".join(chunk[:-2] for chunk in chunks)
        else:
            content, keep = await reader.read(), False
        return Reply(status, headers, content), keep


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- participants and their requests -------------------------------------------------------------

@dataclass
class Person:
    user_id: int
    name: str
    headers: dict[str, str]
    payloads: list[dict] = field(default_factory=list)
    next_payload: int = 0


def to_mg(value) -> int:
    """A reply's grams (JSON number, at most 3 decimals, parsed exactly) in milligrams."""
    mg = Decimal(str(value)) * 1000
    if mg != mg.to_integral_value():
        raise ValueError(f"{value} g is not a whole number of milligrams")
    return int(mg)


@dataclass
class Tally:
    """What the server said it counted, from its 2xx replies."""

    accepted_mg: int = 0
    checkins: int = 0
    held: int = 0
    replays: int = 0
    replay_mismatches: int = 0
    werun_syncs: int = 0
    werun_added_mg: int = 0
    statuses: Counter = field(default_factory=Counter)
    error_bodies: dict = field(default_factory=dict)


class Traffic:
    """Builds and sends each kind of request for random participants; keeps the tally."""

    def __init__(self, slug: str, people: list[Person], teams: list[str], seed: int):
        self.slug = slug
        self.people = people
        self.teams = teams
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.recent: deque = deque(maxlen=512)
        self.senders = {"checkin": self.checkin, "me": self.me, "board": self.board,
                        "werun": self.werun}

    def _failed(self, kind: str, response: Reply) -> bool:
        self.tally.statuses[(kind, response.status_code)] += 1
        if not 200 <= response.status_code < 300:
            self.tally.error_bodies.setdefault((kind, response.status_code),
                                               response.text[:300])
            return True
        return False

    async def checkin(self, client: LoadClient) -> int:
        rng = self.rng
        if self.recent and rng.random() < RETRY_SHARE:
            person, key, body, first = rng.choice(self.recent)
        else:
            person, key, first = rng.choice(self.people), uuid.uuid4().hex, None
            action = rng.choice(COUNT_ACTIONS + DISTANCE_ACTIONS)
            if action in DISTANCE_ACTIONS:
                body = {"action": action, "quantity": rng.randint(500, 8000) / 1000}
            else:
                body = {"action": action, "quantity": rng.choice((1, 1, 1, 2))}
        response = await client.post(f"{API}/campaigns/{self.slug}/checkins", json=body,
                                     headers={**person.headers, "Idempotency-Key": key})
        if self._failed("checkin", response):
            return response.status_code
        if first is not None:
            self.tally.replays += 1
            if response.headers.get("idempotent-replayed") != "true" or response.text != first:
                self.tally.replay_mismatches += 1
                return 599
            return response.status_code
        reply = json.loads(response.content, parse_float=Decimal)
        if reply.get("held"):
            self.tally.held += 1
        else:
            self.tally.checkins += 1
        self.tally.accepted_mg += to_mg(reply["reduction_g"])
        self.recent.append((person, key, body, response.text))
        return response.status_code

    async def werun(self, client: LoadClient) -> int:
        person = self.rng.choice(self.people)
        payload = person.payloads[min(person.next_payload, len(person.payloads) - 1)]
        person.next_payload += 1
        response = await client.post(f"{API}/campaigns/{self.slug}/werun", json=payload,
                                     headers=person.headers)
        if self._failed("werun", response):
            return response.status_code
        reply = json.loads(response.content, parse_float=Decimal)
        added = to_mg(reply["added_reduction_g"])
        self.tally.werun_syncs += 1
        self.tally.werun_added_mg += added
        self.tally.accepted_mg += added
        return response.status_code

    async def me(self, client: LoadClient) -> int:
        person = self.rng.choice(self.people)
        response = await client.get(f"{API}/campaigns/{self.slug}/me", headers=person.headers)
        self._failed("me", response)
        return response.status_code

    async def board(self, client: LoadClient) -> int:
        person = self.rng.choice(self.people)
        board, period = self.rng.choice(BOARDS)
        response = await client.get(
            f"{API}/campaigns/{self.slug}/leaderboards/{board}?period={period}",
            headers=person.headers)
        self._failed("board", response)
        return response.status_code

    def picker(self, kinds: tuple[tuple[str, int], ...]):
        names = [name for name, _ in kinds]
        weights = [weight for _, weight in kinds]

        def pick():
            name = self.rng.choices(names, weights)[0] if len(names) > 1 else names[0]
            return name, self.senders[name]

        return pick


class StackTraffic:
    async def json(self, client: LoadClient) -> int:
        return (await client.get("/json")).status_code

    async def insert(self, client: LoadClient) -> int:
        return (await client.post("/insert")).status_code

    def picker(self, name: str):
        send = getattr(self, name)
        return lambda: (name, send)


# -- load: closed loop (peaks) and open loop (the 70 % mix) ---------------------------------------

@dataclass
class Run:
    label: str
    concurrency: int | None
    seconds: float
    samples: list[tuple[str, float, int]]  # (kind, latency ms, status) completed in the window
    errors: Counter  # (kind, status) of every non-2xx or failed request, warm-up included
    client_cpu: float  # share of one core used by this process in the window
    machine_busy: float  # share of all cores busy in the window
    offered_rate: float | None = None

    @property
    def rate(self) -> float:
        return len(self.samples) / self.seconds

    def latencies(self, kind: str | None = None) -> list[float]:
        return [ms for k, ms, _ in self.samples if kind is None or k == kind]


CLIENT_FAILURES: Counter = Counter()  # requests that got no HTTP reply, by exception type


async def _timed(send, client) -> tuple[int, float]:
    try:
        status = await send(client)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
            ValueError) as error:
        CLIENT_FAILURES[type(error).__name__] += 1
        status = 0
    return status, time.perf_counter()


def _client(base_url: str, connections: int) -> LoadClient:
    return LoadClient(base_url, connections)


async def closed_loop(base_url: str, pick, concurrency: int, warmup: float,
                      seconds: float, label: str) -> Run:
    samples, errors = [], Counter()
    readings = {}
    async with _client(base_url, concurrency) as client:
        began = time.perf_counter()
        start, end = began + warmup, began + warmup + seconds

        async def worker():
            while time.perf_counter() < end:
                kind, send = pick()
                sent = time.perf_counter()
                status, done = await _timed(send, client)
                if not 200 <= status < 300:
                    errors[(kind, status)] += 1
                if start <= done <= end:
                    samples.append((kind, (done - sent) * 1000, status))

        async def clock():
            await asyncio.sleep(warmup)
            readings["start"] = (time.process_time(), cpu_ticks())
            await asyncio.sleep(seconds)
            readings["end"] = (time.process_time(), cpu_ticks())

        await asyncio.gather(clock(), *(worker() for _ in range(concurrency)))
    (cpu0, (busy0, total0)), (cpu1, (busy1, total1)) = readings["start"], readings["end"]
    return Run(label, concurrency, seconds, samples, errors, (cpu1 - cpu0) / seconds,
               (busy1 - busy0) / max(total1 - total0, 1))


async def open_loop(base_url: str, pick, rate: float, warmup: float, seconds: float,
                    label: str, seed: int, connections: int = 256) -> Run:
    """Poisson arrivals at ``rate``; a request's latency runs from its scheduled instant (a
    late client or a full connection pool counts against the server, never hides it)."""
    rng = random.Random(seed)
    samples, errors = [], Counter()
    pending = set()
    async with _client(base_url, connections) as client:
        began = time.perf_counter()
        start, end = began + warmup, began + warmup + seconds
        cpu0, ticks0 = None, None

        async def one(kind, send, scheduled):
            status, done = await _timed(send, client)
            if not 200 <= status < 300:
                errors[(kind, status)] += 1
            if scheduled >= start:
                samples.append((kind, (done - scheduled) * 1000, status))

        scheduled = began
        while scheduled < end:
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if cpu0 is None and scheduled >= start:
                cpu0, ticks0 = time.process_time(), cpu_ticks()
            kind, send = pick()
            task = asyncio.create_task(one(kind, send, scheduled))
            pending.add(task)
            task.add_done_callback(pending.discard)
            scheduled += rng.expovariate(rate)
        cpu1, ticks1 = time.process_time(), cpu_ticks()
        await asyncio.gather(*pending)
    run = Run(label, None, seconds, samples, errors, (cpu1 - cpu0) / seconds,
              (ticks1[0] - ticks0[0]) / max(ticks1[1] - ticks0[1], 1))
    run.offered_rate = rate
    return run


def find_peak(base_url: str, pick, label: str, args, levels=LEVELS) -> tuple[Run, list[Run]]:
    """Raise the concurrency until the rate stops rising (three levels in a row under +3 % of
    the best: on a shared machine one level can dip) or a level has errors; the peak is the
    best level without errors."""
    runs, best, flat = [], None, 0
    for concurrency in levels:
        run = asyncio.run(closed_loop(base_url, pick, concurrency, args.warmup,
                                      args.step_seconds, label))
        runs.append(run)
        print(f"  {label:28} c={concurrency:<4} {run.rate:8.1f} req/s  "
              f"p50 {percentile(run.latencies(), .5):7.1f} ms  "
              f"p99 {percentile(run.latencies(), .99):7.1f} ms  errors {sum(run.errors.values())}"
              f"  client CPU {run.client_cpu:4.0%}  machine busy {run.machine_busy:4.0%}",
              flush=True)
        if run.errors:
            break
        if best is None or run.rate > best.rate * 1.03:
            best, flat = run, 0
        else:
            if run.rate > best.rate:
                best = run
            flat += 1
            if flat >= 3:
                break
    if best is None:
        best = runs[0]
    return best, runs


# -- setup of the campaign and of the load's participants -----------------------------------------

def create_and_seed(args, app, profile_dir: Path | None = None) -> float:
    """A fresh database with the shifted preset published, then ``flask campaigns seed``;
    returns the seconds the seed command took."""
    from flask_migrate import upgrade

    from backend.clock import utcnow
    from backend.extensions import db
    from backend.services.campaigns import create_campaign, publish_campaign
    from campaigns.calendar import local_today
    from campaigns.presets import load_preset, shift_document

    recreate_database(args.database_url)
    redis.Redis.from_url(args.redis_url).flushdb()
    with app.app_context():
        upgrade()
        preset = load_preset("winter-2022")
        campaign = create_campaign(shift_document(preset, local_today(utcnow(),
                                                                     preset.timezone)), "bench")
        publish_campaign(campaign, "bench")
        db.session.commit()
        slug = campaign.slug
    print(f"seeding {args.participants:,} participants x {args.entries} entries with "
          f"`flask campaigns seed {slug}` ...", flush=True)
    started = time.perf_counter()
    seed = subprocess.Popen(
        [str(BIN / "flask"), "--app", "wsgi", "campaigns", "seed", slug, "--participants",
         str(args.participants), "--entries-per-participant", str(args.entries), "--seed", "7"],
        cwd=ROOT, env=process_environ(args), stdout=subprocess.PIPE, text=True)
    spy = None
    if profile_dir is not None and (BIN / "py-spy").exists():
        profile_dir.mkdir(parents=True, exist_ok=True)
        spy = subprocess.Popen(
            [str(BIN / "py-spy"), "record", "--pid", str(seed.pid), "--rate", "47", "--idle",
             "--format", "raw", "--output", str(profile_dir / "seed.wall.txt"), "--nonblocking"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    output, _ = seed.communicate()
    seconds = time.perf_counter() - started
    if seed.returncode != 0:
        sys.exit(f"flask campaigns seed failed ({seed.returncode})")
    print(output.strip())
    if spy is not None:
        spy.wait(60)
        summarise_profile([profile_dir / "seed.wall.txt"], within="seed_command",
                          what="samples of the seed command (wall time)")
    return seconds


def campaign_state(app) -> dict:
    from sqlalchemy import text

    from backend.extensions import db

    with app.app_context():
        row = db.session.execute(text(
            "SELECT c.id, c.slug, l.head_seq, l.total_mg, "
            "(SELECT coalesce(sum(reduction_mg), 0) FROM ledger_entries e "
            " WHERE e.campaign_id = c.id), "
            "(SELECT count(*) FROM participations p WHERE p.campaign_id = c.id) "
            "FROM campaigns c JOIN campaign_ledgers l ON l.campaign_id = c.id "
            "ORDER BY c.id LIMIT 1")).one()
        teams = list(db.session.scalars(text(
            "SELECT key FROM teams WHERE campaign_id = :c ORDER BY key"), {"c": row[0]}))
        db.session.rollback()
    return {"id": row[0], "slug": row[1], "head_seq": row[2], "total_mg": int(row[3]),
            "ledger_sum_mg": int(row[4]), "participants": row[5], "teams": teams}


def new_checkin_entries(app, campaign_id: int, after_seq: int) -> Counter:
    from sqlalchemy import text

    from backend.extensions import db

    with app.app_context():
        rows = db.session.execute(text(
            "SELECT source, count(*) FROM ledger_entries WHERE campaign_id = :c AND seq > :s "
            "GROUP BY source"), {"c": campaign_id, "s": after_seq}).all()
        db.session.rollback()
    return Counter({source: count for source, count in rows})


async def log_in_people(base_url: str, slug: str, count: int, teams: list[str]) -> list[Person]:
    """Sandbox logins ``sandbox:peak-<i>`` and joins (person i in team i mod the number of
    teams, so that a rerun joins the same team), 16 at a time."""
    people: list[Person] = []
    async with _client(base_url, 16) as client:
        gate = asyncio.Semaphore(16)

        async def one(i: int):
            async with gate:
                name = f"peak-{i}"
                response = await client.post(f"{API}/auth/wechat-login",
                                             json={"code": f"sandbox:{name}"})
                response.raise_for_status()
                reply = response.json()
                person = Person(reply["user"]["id"], name,
                                {"Authorization": f"Bearer {reply['token']}"})
                response = await client.post(f"{API}/campaigns/{slug}/join",
                                             json={"team": teams[i % len(teams)]} if teams else {},
                                             headers=person.headers)
                if response.status_code == 409:  # --reuse: joined before, in another team
                    response = await client.post(f"{API}/campaigns/{slug}/join", json={},
                                                 headers=person.headers)
                if response.status_code not in (200, 201):
                    raise RuntimeError(f"join: {response.status_code} {response.text[:200]}")
                people.append(person)

        await asyncio.gather(*(one(i) for i in range(count)))
    people.sort(key=lambda p: p.user_id)
    return people


def step_count(rng: random.Random, low: int, high: int) -> int:
    """A plausible count: not a repeated digit of 5 or more digits (a plausibility signal)."""
    while True:
        steps = rng.randint(low, high)
        if len(str(steps)) < 5 or len(set(str(steps))) > 1:
            return steps


def prepare_werun(app, people: list[Person], seed: int) -> None:
    """Each person's WeRun step lists (31 Beijing days, today's count rising), encrypted with
    their newest session_key exactly as the sandbox's werun-data endpoint does."""
    from backend.extensions import db
    from backend.models import User
    from backend.services.logins import session_key_of
    from backend.wechat_crypto import encrypt_open_data
    from campaigns.werun import BEIJING

    rng = random.Random(seed)
    zone = ZoneInfo(BEIJING) if isinstance(BEIJING, str) else BEIJING
    today = datetime.now(zone).date()
    days = [today - timedelta(days=i) for i in range(30, -1, -1)]

    def midnight(day: date) -> int:
        return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())

    with app.app_context():
        appid = app.config["WECHAT_APPID"]
        for person in people:
            session_key = session_key_of(db.session.get(User, person.user_id))
            past = [step_count(rng, 2_000, 18_000) for _ in days[:-1]]
            steps_today = 0
            for _ in range(WERUN_PAYLOADS):
                steps_today += step_count(rng, 900, 2_400)
                steps = [*past, steps_today]
                payload = {"stepInfoList": [{"timestamp": midnight(day), "step": n}
                                            for day, n in zip(days, steps, strict=True)]}
                encrypted, iv = encrypt_open_data(session_key, payload, appid)
                person.payloads.append({"encrypted_data": encrypted, "iv": iv})
        db.session.rollback()


# -- round trips per request (in-process, one request of each kind) --------------------------------

def count_round_trips(app, slug: str, person: Person, tally: Tally) -> list[tuple]:
    """Send one request of each kind through the WSGI app in-process (same database, Redis
    and settings) and count what reaches PostgreSQL: pool checkouts (each a pre-ping round
    trip), round trips (a statement, or a pipeline of several), statements, commits, and the
    round trips while the chain head is locked (from the ``FOR UPDATE`` on campaign_ledgers
    to the commit, which is one of them: its own, or that of the pipeline the COMMIT went
    with). A COMMIT sent with a pipeline is not a round trip of its own. Reductions go into
    ``tally``."""
    from sqlalchemy import event

    from backend.extensions import db
    from backend.services import statements as pipelines

    with app.app_context():
        engine = db.engine
    log: list[str] = []

    def on_statement(conn, cursor, statement, parameters, context, executemany):
        log.append(statement)

    def on_commit(conn):
        # After a pipeline that carried the COMMIT, the session's commit sends nothing.
        log.append("COMMITTED" if log and log[-1].startswith("PIPELINE+COMMIT") else "COMMIT")

    def on_checkout(dbapi_connection, record, proxy):
        log.append("CHECKOUT")

    def on_pipeline(sql, commit):
        log.append(f"PIPELINE{'+COMMIT' if commit else ''} {len(sql)}: " + " | ".join(sql))

    event.listen(engine, "before_cursor_execute", on_statement)
    event.listen(engine, "commit", on_commit)
    event.listen(engine.pool, "checkout", on_checkout)
    pipelines.pipeline_listeners.append(on_pipeline)
    client = app.test_client()
    base = f"{API}/campaigns/{slug}"
    payload = person.payloads[min(person.next_payload, len(person.payloads) - 1)]
    cases = (
        ("POST checkins", "POST", f"{base}/checkins", {"action": "e_ticket", "quantity": 1}),
        ("GET me", "GET", f"{base}/me", None),
        ("GET leaderboard individuals", "GET", f"{base}/leaderboards/individuals", None),
        ("GET leaderboard teams week", "GET", f"{base}/leaderboards/teams?period=week", None),
        ("POST werun", "POST", f"{base}/werun", payload),
    )
    rows = []
    try:
        for label, method, url, body in cases:
            log.clear()
            headers = {**person.headers, "Idempotency-Key": uuid.uuid4().hex}
            response = client.open(url, method=method, json=body, headers=headers)
            if not 200 <= response.status_code < 300:
                raise RuntimeError(f"{label}: {response.status_code} {response.get_data()[:200]}")
            reply = json.loads(response.get_data(), parse_float=Decimal)
            if label == "POST checkins":
                tally.checkins += 1
                tally.accepted_mg += to_mg(reply["reduction_g"])
            elif label == "POST werun":
                person.next_payload += 1
                tally.werun_syncs += 1
                tally.werun_added_mg += to_mg(reply["added_reduction_g"])
                tally.accepted_mg += to_mg(reply["added_reduction_g"])
            trips = [entry for entry in log if entry not in ("COMMIT", "COMMITTED", "CHECKOUT")]
            statements = sum(int(entry.split()[1].rstrip(":"))
                             if entry.startswith("PIPELINE") else 1 for entry in trips)
            lock = next((i for i, entry in enumerate(log) if "campaign_ledgers" in entry
                         and "FOR UPDATE" in entry), None)
            under_lock = None
            if lock is not None:
                end = next((i + 1 for i in range(lock, len(log)) if log[i] == "COMMIT"
                            or log[i].startswith("PIPELINE+COMMIT")), len(log))
                under_lock = sum(1 for entry in log[lock:end]
                                 if entry not in ("CHECKOUT", "COMMITTED"))
            rows.append((label, log.count("CHECKOUT"), len(trips), statements,
                         log.count("COMMIT") + log.count("COMMITTED"), under_lock))
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
        event.remove(engine, "commit", on_commit)
        event.remove(engine.pool, "checkout", on_checkout)
        pipelines.pipeline_listeners.remove(on_pipeline)
    return rows


# -- profiling (py-spy on every worker while a load runs) -----------------------------------------

def profile_phase(server: Server, name: str, seconds: int, out_dir: Path, load) -> list[Path]:
    """py-spy record on each worker while ``load()`` runs: collapsed stacks of wall time
    (idle threads included: ``NAME-PID.wall.txt``) and of CPU time (``NAME-PID.cpu.txt``)."""
    py_spy = BIN / "py-spy"
    if not py_spy.exists():
        sys.exit("--profile needs py-spy in the virtualenv: .venv/bin/pip install py-spy")
    out_dir.mkdir(parents=True, exist_ok=True)
    recorders, outputs = [], []
    for pid in server.worker_pids():
        outputs.append(out_dir / f"{name}-{pid}.wall.txt")
        for path, extra in ((outputs[-1], ["--idle"]), (out_dir / f"{name}-{pid}.cpu.txt", [])):
            recorders.append(subprocess.Popen(
                [str(py_spy), "record", "--pid", str(pid), "--duration", str(seconds),
                 "--rate", "97", "--format", "raw", "--output", str(path), "--nonblocking",
                 *extra],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1)
    run = load()
    for recorder in recorders:
        recorder.wait(seconds + 30)
    print(f"  profiled {name}: {run.rate:.1f} req/s under py-spy; collapsed stacks in {out_dir}")
    return outputs


def _tanpu(frame: str) -> bool:
    return " (backend/" in frame or " (campaigns/" in frame


def _waiting_on(frames: list[str]) -> str:
    """What a sample's innermost frames are doing: in the PostgreSQL driver (sending,
    waiting for the reply), in the Redis client, or other Python work (named by its
    innermost frame)."""
    driver = next((f for f in reversed(frames) if "psycopg/" in f or "redis/" in f), None)
    if driver is not None and frames.index(driver) >= len(frames) - 8:
        return "PostgreSQL driver (psycopg)" if "psycopg/" in driver else "Redis client"
    return "Python: " + frames[-1].split(" (")[0]


def summarise_profile(paths: list[Path], top: int = 16, within: str = "full_dispatch_request",
                      what: str = "request-thread samples (wall time, idle included)") -> None:
    """Where the samples that pass through ``within`` (default: request threads inside
    Flask's dispatch) go: by Tanpu function (inclusive), and by innermost Tanpu line x what
    it is doing there."""
    inclusive, spots, kinds, total = Counter(), Counter(), Counter(), 0
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if within not in stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = stack.split(";")
            for function in {f.split(" (")[0] + " " + f.split(" (")[1].split(":")[0]
                             for f in frames if _tanpu(f)}:
                inclusive[function] += n
            innermost = next((f for f in reversed(frames) if _tanpu(f)), "outside Tanpu")
            waiting = _waiting_on(frames)
            kinds[waiting if not waiting.startswith("Python") else "Python (CPU)"] += n
            spots[(innermost.replace("backend/", "").rstrip(")").split(".<locals>")[0],
                   waiting)] += n
    if not total:
        print("  (no request samples)")
        return
    print(f"  {total} {what}: "
          + ", ".join(f"{kind} {n / total:.0%}" for kind, n in kinds.most_common()))
    print("  inclusive share by Tanpu function:")
    for function, n in inclusive.most_common(top):
        print(f"    {n / total:6.1%}  {function}")
    print("  innermost Tanpu line, and what it waits on:")
    for (where, waiting), n in spots.most_common(top):
        print(f"    {n / total:6.1%}  {where:56} {waiting}")


def summarise_both(paths: list[Path]) -> None:
    summarise_profile(paths)
    summarise_profile([p.with_name(p.name.replace(".wall.", ".cpu.")) for p in paths],
                      top=10, what="request-thread samples on CPU (no idle)")


# -- report ---------------------------------------------------------------------------------------

def row(label: str, run: Run) -> str:
    lat = run.latencies()
    return (f"{label:30} {run.rate:9.1f} {run.concurrency or '-':>5} "
            f"{percentile(lat, .5):8.1f} {percentile(lat, .95):8.1f} {percentile(lat, .99):8.1f} "
            f"{sum(run.errors.values()):7d} {run.client_cpu:7.0%} {run.machine_busy:7.0%}")


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=10, help="seeded entries per participant")
    parser.add_argument("--users", type=int, default=3_000,
                        help="sandbox participants that send the load")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds before each window")
    parser.add_argument("--step-seconds", type=float, default=6.0,
                        help="measured seconds per concurrency level")
    parser.add_argument("--mix-seconds", type=float, default=60.0,
                        help="measured seconds of the mix at 70 %%")
    parser.add_argument("--mix-share", type=float, default=0.70)
    parser.add_argument("--only", default="",
                        help="comma-separated subset of json,insert,me,board,checkin,werun,mix")
    parser.add_argument("--profile", type=Path, default=None,
                        help="after the measurements, py-spy the workers under the check-in "
                             "peak and the 70 %% mix; files go to this folder")
    parser.add_argument("--profile-seconds", type=int, default=20)
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/bench_peak"))
    parser.add_argument("--redis-url", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/8"))
    parser.add_argument("--reuse", action="store_true", help="keep an already seeded database")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures as JSON")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(","))) or {
        "json", "insert", "me", "board", "checkin", "werun", "mix"}

    from backend import create_app

    began = time.perf_counter()
    print(f"peak.py at {git_commit()} on {machine_description()}; load average at start: "
          f"{load_average()}")
    print(f"gunicorn: {args.workers} workers x {args.threads} threads ({args.worker_class}); "
          f"database {urlsplit(args.database_url).path.lstrip('/')}, redis "
          f"{urlsplit(args.redis_url).path or '/0'}", flush=True)
    app = create_app(environ=app_environ(args))
    seed_seconds = None
    if not args.reuse:
        seed_seconds = create_and_seed(args, app, args.profile)
        print(f"seed: {seed_seconds:.0f} s (goal <= 120 s: {verdict(seed_seconds <= 120)})")
    else:
        from flask_migrate import upgrade

        with app.app_context():
            upgrade()
    before = campaign_state(app)
    slug = before["slug"]
    print(f"campaign {slug}: {before['participants']:,} participants, head seq "
          f"{before['head_seq']:,}, total {before['total_mg']:,} mg", flush=True)

    log_dir = Path(tempfile.mkdtemp(prefix="tanpu-peak-"))
    peaks: dict[str, tuple[Run, list[Run]]] = {}

    # The stack's own limits, same gunicorn settings, same machine, same database.
    if only & {"json", "insert"}:
        from sqlalchemy import create_engine

        from bench.stack_app import metadata

        engine = create_engine(args.database_url)
        metadata.create_all(engine)
        engine.dispose()
        with gunicorn(args, "bench.stack_app:create_app()", "/json",
                      log_dir / "stack.log") as stack:
            traffic = StackTraffic()
            print("stack: bare JSON endpoint", flush=True)
            if "json" in only:
                peaks["json"] = find_peak(stack.base_url, traffic.picker("json"),
                                          "(a) bare JSON", args)
            if "insert" in only:
                print("stack: INSERT + COMMIT endpoint", flush=True)
                peaks["insert"] = find_peak(stack.base_url, traffic.picker("insert"),
                                            "(b) INSERT + COMMIT", args)

    mix_run = None
    tally = None
    with gunicorn(args, "wsgi:app", "/healthz", log_dir / "app.log") as server:
        started = time.perf_counter()
        people = asyncio.run(log_in_people(server.base_url, slug, args.users, before["teams"]))
        prepare_werun(app, people, seed=4)
        print(f"{len(people):,} sandbox participants logged in and joined, WeRun data "
              f"encrypted, in {time.perf_counter() - started:.0f} s", flush=True)
        traffic = Traffic(slug, people, before["teams"], seed=5)
        tally = traffic.tally
        for name, label in (("me", "GET /campaigns/{slug}/me"),
                            ("board", "GET leaderboards"),
                            ("checkin", "POST checkins"),
                            ("werun", "POST werun")):
            if name in only:
                print(f"app: {label} alone", flush=True)
                peaks[name] = find_peak(server.base_url, traffic.picker(((name, 1),)), label,
                                        args)
        if "mix" in only:
            print("app: the evening mix, closed loop", flush=True)
            peaks["mix"] = find_peak(server.base_url, traffic.picker(MIX), "mix", args)
            rate = peaks["mix"][0].rate * args.mix_share
            print(f"app: the mix at {args.mix_share:.0%} of its saturated rate: "
                  f"{rate:.1f} req/s, Poisson arrivals, {args.mix_seconds:.0f} s", flush=True)
            mix_run = asyncio.run(open_loop(server.base_url, traffic.picker(MIX), rate,
                                            args.warmup * 2, args.mix_seconds, "mix at 70%",
                                            seed=6))
        if args.profile is not None:
            print("profiling (py-spy, figures of these phases are not reported)", flush=True)
            checkin_conc = peaks["checkin"][0].concurrency if "checkin" in peaks else 8
            paths = profile_phase(
                server, "checkin", args.profile_seconds, args.profile,
                lambda: asyncio.run(closed_loop(server.base_url,
                                                traffic.picker((("checkin", 1),)),
                                                checkin_conc, 0.5, args.profile_seconds - 2,
                                                "profile checkin")))
            summarise_both(paths)
            for name in ("me", "board", "werun"):
                conc = peaks[name][0].concurrency if name in peaks else 8
                paths = profile_phase(
                    server, name, args.profile_seconds // 2, args.profile,
                    lambda name=name, conc=conc: asyncio.run(closed_loop(
                        server.base_url, traffic.picker(((name, 1),)), conc, 0.5,
                        args.profile_seconds // 2 - 2, f"profile {name}")))
                summarise_both(paths)
            if mix_run is not None:
                paths = profile_phase(
                    server, "mix", args.profile_seconds, args.profile,
                    lambda: asyncio.run(open_loop(server.base_url, traffic.picker(MIX),
                                                  mix_run.offered_rate, 0.5,
                                                  args.profile_seconds - 2, "profile mix",
                                                  seed=7)))
                summarise_both(paths)

    trips = count_round_trips(app, slug, people[0], tally) if tally is not None else []

    # After the load: the chain verifies and nothing was lost or doubled.
    verify = flask_cli(args, "ledger", "verify", slug, check=False)
    after = campaign_state(app)
    new_entries = new_checkin_entries(app, after["id"], before["head_seq"])
    expected = before["total_mg"] + tally.accepted_mg
    print(f"\n{'=' * 100}")
    print(f"peak.py at {git_commit()}; {machine_description()}; gunicorn {args.workers} workers "
          f"x {args.threads} threads ({args.worker_class}); {args.users:,} load participants; "
          f"load average at the end: {load_average()}")
    if seed_seconds is not None:
        print(f"seed ({args.participants:,} participants x {args.entries} entries, "
              f"`flask campaigns seed`): {seed_seconds:.0f} s  goal <= 120 s: "
              f"{verdict(seed_seconds <= 120)}")
    print(f"\n{'peaks (one endpoint alone)':30} {'req/s':>9} {'conc':>5} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'p99 ms':>8} {'errors':>7} {'client':>7} {'machine':>7}")
    labels = {"json": "(a) stack: bare JSON", "insert": "(b) stack: INSERT + COMMIT",
              "me": "GET /campaigns/{slug}/me", "board": "GET leaderboards (4 kinds)",
              "checkin": "POST checkins", "werun": "POST werun (31 days)",
              "mix": "mix, saturated"}
    for name, label in labels.items():
        if name in peaks:
            print(row(label, peaks[name][0]))
    # A peak is the best level without errors; a level past it that failed is named here.
    all_errors = sum(sum(best.errors.values()) for best, _ in peaks.values())
    for name, (_, runs) in peaks.items():
        for run in runs:
            if run.errors:
                print(f"  {labels[name]}: errors at c={run.concurrency} (past the peak): "
                      f"{dict(run.errors)}")
    if mix_run is not None:
        print(f"\nmix at {args.mix_share:.0%}: offered {mix_run.offered_rate:.1f} req/s, "
              f"completed {mix_run.rate:.1f} req/s over {mix_run.seconds:.0f} s; client CPU "
              f"{mix_run.client_cpu:.0%} of a core, machine busy {mix_run.machine_busy:.0%}")
        print(f"{'endpoint':30} {'requests':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
              f"{'errors':>7}  p99 <= {GOALS['p99_ms']:.0f} ms")
        for kind, _ in MIX:
            lat = mix_run.latencies(kind)
            errors = sum(n for (k, _), n in mix_run.errors.items() if k == kind)
            p99 = percentile(lat, .99)
            print(f"{labels[kind]:30} {len(lat):9d} "
                  f"{percentile(lat, .5):8.1f} {percentile(lat, .95):8.1f} {p99:8.1f} "
                  f"{errors:7d}  {verdict(p99 <= GOALS['p99_ms'])}")
    print("\nratios against the goals")
    if "checkin" in peaks and "insert" in peaks:
        ratio = peaks["checkin"][0].rate / peaks["insert"][0].rate
        print(f"  check-in peak / (b) INSERT+COMMIT peak = {ratio:6.1%}  goal >= "
              f"{GOALS['checkin_vs_insert']:.0%}: {verdict(ratio >= GOALS['checkin_vs_insert'])}")
    for name in ("me", "board"):
        if name in peaks and "json" in peaks:
            ratio = peaks[name][0].rate / peaks["json"][0].rate
            print(f"  {labels[name]} peak / (a) bare JSON peak = {ratio:6.1%}  goal >= "
                  f"{GOALS['read_vs_json']:.0%}: {verdict(ratio >= GOALS['read_vs_json'])}")
    if mix_run is not None:
        worst = max(percentile(mix_run.latencies(k), .99) for k, _ in MIX)
        errors = sum(mix_run.errors.values())
        print(f"  worst p99 at 70 % = {worst:.1f} ms  goal <= {GOALS['p99_ms']:.0f} ms: "
              f"{verdict(worst <= GOALS['p99_ms'])}")
        print(f"  errors at 70 % = {errors}, at the peaks = {all_errors}  goal 0: "
              f"{verdict(errors == 0 and all_errors == 0)}")
    if trips:
        print("\nPostgreSQL work of one request (in-process, after the load); each checkout is a "
              "pre-ping round trip, psycopg sends BEGIN before a transaction's first "
              "statement, and a pipeline of several statements is one round trip (round "
              "trips: without a COMMIT of its own; a COMMIT sent with a pipeline is in it)")
        print(f"  {'request':30} {'checkouts':>9} {'round trips':>11} {'statements':>10} "
              f"{'commits':>7} {'round trips under the head lock (with COMMIT)':>46}")
        for label, checkouts, round_trips, statements, commits, under_lock in trips:
            print(f"  {label:30} {checkouts:9d} {round_trips:11d} {statements:10d} "
                  f"{commits:7d} {'-' if under_lock is None else under_lock:>46}")
    print("\nnothing lost, nothing doubled")
    print(f"  flask ledger verify {slug}: exit {verify.returncode} "
          f"({verify.stdout.strip().splitlines()[-1] if verify.stdout.strip() else ''})")
    print(f"  replies: {tally.checkins:,} check-ins counted, {tally.held} held, "
          f"{tally.replays} idempotent replays ({tally.replay_mismatches} differing), "
          f"{tally.werun_syncs:,} WeRun syncs adding {tally.werun_added_mg:,} mg")
    print(f"  new check-in entries in the ledger: {new_entries.get('checkin', 0):,} "
          f"(expected {tally.checkins:,}); new WeRun entries: {new_entries.get('werun', 0):,}")
    print(f"  total before {before['total_mg']:,} mg + reported {tally.accepted_mg:,} mg = "
          f"{expected:,} mg; projection {after['total_mg']:,} mg; ledger sum "
          f"{after['ledger_sum_mg']:,} mg")
    intact = (verify.returncode == 0 and after["total_mg"] == expected
              and after["ledger_sum_mg"] == expected and tally.replay_mismatches == 0
              and new_entries.get("checkin", 0) == tally.checkins)
    print(f"  {'OK' if intact else 'MISMATCH'}")
    if CLIENT_FAILURES:
        print(f"\nrequests without a reply (status 0), by exception: {dict(CLIENT_FAILURES)}")
    if tally.error_bodies:
        print("\nerror replies (first of each kind):")
        for (kind, status), body in sorted(tally.error_bodies.items()):
            print(f"  {kind} {status}: {body}")
    print(f"\nserver logs in {log_dir}; whole run {time.perf_counter() - began:.0f} s")

    if args.out is not None:
        def summary(run: Run) -> dict:
            lat = run.latencies()
            return {"rate": run.rate, "concurrency": run.concurrency,
                    "p50": percentile(lat, .5), "p95": percentile(lat, .95),
                    "p99": percentile(lat, .99), "errors": sum(run.errors.values()),
                    "client_cpu": run.client_cpu, "machine_busy": run.machine_busy}

        document = {
            "commit": git_commit(), "seed_seconds": seed_seconds,
            "peaks": {name: {**summary(best), "levels": [summary(r) for r in runs]}
                      for name, (best, runs) in peaks.items()},
            "mix": None if mix_run is None else {
                "offered": mix_run.offered_rate, "rate": mix_run.rate,
                "by_kind": {k: {"n": len(mix_run.latencies(k)),
                                "p50": percentile(mix_run.latencies(k), .5),
                                "p95": percentile(mix_run.latencies(k), .95),
                                "p99": percentile(mix_run.latencies(k), .99)} for k, _ in MIX},
                "errors": {f"{k} {s}": n for (k, s), n in mix_run.errors.items()}},
            "intact": intact,
        }
        args.out.write_text(json.dumps(document, indent=2))
    if not intact:
        sys.exit(1)


if __name__ == "__main__":
    main()
