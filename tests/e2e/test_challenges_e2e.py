"""Challenges end to end (issue 6): 20 concurrent check-ins through the real server (gunicorn,
2 workers x 4 threads), each of which alone completes the same challenge, record exactly one
completion and award one badge; the leaderboards of the same server agree afterwards."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from backend.config import SANDBOX_APPID
from backend.extensions import db
from backend.models import Campaign, ChallengeCompletion, LedgerEntry, Participation
from backend.wechat import SandboxWeChat
from tests.backend.board_helpers import API, campaign_document, create_live_campaign, unique
from tests.backend.conftest import shanghai_today
from tests.conftest import _flush_test_redis
from tests.support.secrets import REGISTRY

pytestmark = pytest.mark.e2e

CONCURRENT = 20
ACTIONS = ["e_invoice", "reusable_bag", "reusable_cup", "clean_plate", "online_meeting",
           "e_ticket", "metro_ride"]


@pytest.fixture(autouse=True)
def _flush_boards():
    """The server mirrors boards into the test Redis database: leave it empty (table ids
    restart on PostgreSQL, so a stale board could be taken for a later campaign's)."""
    yield
    _flush_test_redis()


def sandbox_login(server, secret_key: str, name: str) -> dict[str, str]:
    sandbox = SandboxWeChat(secret_key, SANDBOX_APPID, lambda _openid: 0)
    openid, unionid = sandbox.identity(name)
    REGISTRY.add(openid, f"sandbox openid of {name}")
    REGISTRY.add(unionid, f"sandbox unionid of {name}")
    REGISTRY.add(sandbox.session_key(openid, 1), f"sandbox session_key of {name}")
    response = server.login(f"sandbox:{name}")
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    REGISTRY.add(token, f"token of {name}")
    return {"Authorization": f"Bearer {token}"}


def assert_clean(response) -> None:
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    leaks = REGISTRY.leaks_in(response.text + "\n" + headers)
    assert not leaks, f"secret(s) in a response: {leaks}"


def test_twenty_concurrent_completing_checkins_one_completion_one_badge(sandbox_server,
                                                                       secret_key, e2e_app):
    slug = unique("race-e2e")
    today = shanghai_today()
    create_live_campaign(e2e_app, campaign_document(
        slug, starts_on=today - timedelta(days=1), ends_on=today + timedelta(days=5),
        challenges=[{"key": "first-gram", "name": "第一克", "kind": "total", "target_g": 1},
                    {"key": "invoices-100", "name": "电子发票100张", "kind": "count",
                     "per": "record", "action": "e_invoice", "target": 100}]))
    name = unique("racer")
    headers = sandbox_login(sandbox_server, secret_key, name)
    joined = sandbox_server.post(f"{API}/{slug}/join", headers=headers, json={"team": "red"})
    assert joined.status_code == 201, joined.text
    barrier = threading.Barrier(CONCURRENT)

    def one(index: int):
        barrier.wait(timeout=30)
        response = sandbox_server.post(
            f"{API}/{slug}/checkins", json={"action": ACTIONS[index % len(ACTIONS)]},
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex})
        assert_clean(response)
        return response.status_code, response.text

    with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
        results = list(pool.map(one, range(CONCURRENT)))
    assert [status for status, _ in results] == [201] * CONCURRENT, results

    me = sandbox_server.get(f"{API}/{slug}/me", headers=headers)
    assert_clean(me)
    assert me.status_code == 200, me.text
    body = me.json()
    assert [(b["key"], b["name"]) for b in body["badges"]] == [("first-gram", "第一克")]
    challenges = {c["key"]: c for c in body["challenges"]}
    assert challenges["first-gram"]["completed_at"] == body["badges"][0]["awarded_at"]
    assert challenges["first-gram"]["progress"] == challenges["first-gram"]["target"] == 1
    assert challenges["invoices-100"]["completed_at"] is None
    assert challenges["invoices-100"]["progress"] == 3  # requests 0, 7 and 14 were e_invoice
    with e2e_app.app_context():
        participation = db.session.scalars(select(Participation).join(
            Campaign, Campaign.id == Participation.campaign_id)
            .where(Campaign.slug == slug)).one()
        rows = db.session.scalars(select(ChallengeCompletion).where(
            ChallengeCompletion.participation_id == participation.id)).all()
        assert [row.challenge_key for row in rows] == ["first-gram"]
        assert db.session.scalar(select(func.count()).select_from(LedgerEntry).where(
            LedgerEntry.participation_id == participation.id)) == CONCURRENT
        first_positive = db.session.scalars(
            select(LedgerEntry.created_dt).where(
                LedgerEntry.participation_id == participation.id, LedgerEntry.reduction_mg > 0)
            .order_by(LedgerEntry.seq).limit(1)).one()
        # completed by the first entry that counted, at that request's instant
        assert rows[0].completed_dt == first_positive
        total_mg = participation.reduction_mg
        db.session.remove()

    # the same server's boards show the participant's total and their team
    board = sandbox_server.get(f"{API}/{slug}/leaderboards/individuals?period=total",
                               headers=headers)
    assert_clean(board)
    assert board.status_code == 200 and board.headers["X-Tanpu-Board-Source"] in ("redis", "sql")
    entries = board.json(parse_float=Decimal)["entries"]
    assert len(entries) == 1 and entries[0]["rank"] == 1
    assert entries[0]["reduction_g"] == Decimal(total_mg).scaleb(-3)
    assert board.json()["me"]["rank"] == 1
    teams = sandbox_server.get(f"{API}/{slug}/leaderboards/teams?period=total")
    assert [entry["key"] for entry in teams.json()["entries"]] == ["red"]
