"""Reporter endpoints and the big screen's data (issue 7): scope of keys and staff, and figures
that agree with each other and with the ledger to the milligram."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import Campaign, LedgerEntry
from tests.backend.board_helpers import (
    ADMIN_API,
    campaign_document,
    checkin,
    create_live_campaign,
    day,
    disqualify,
    exact,
    grams,
    install_clock,
    join,
    make_person,
    pids_of,
    unique,
)

REPORTS = "/api/v1/reports/campaigns"


@pytest.fixture
def clock(monkeypatch):
    return install_clock(monkeypatch)


def new_key(client, admin, slug: str, kind: str = "api-keys") -> str:
    response = client.post(f"{ADMIN_API}/{slug}/{kind}", headers=admin.headers,
                           json={"label": "press"})
    assert response.status_code == 201, response.json
    return response.json["key"]


def ledger_sum(app, slug: str) -> tuple[int, int]:
    with app.app_context():
        campaign_id = db.session.scalars(select(Campaign.id).where(Campaign.slug == slug)).one()
        mg, records = db.session.execute(
            select(func.coalesce(func.sum(LedgerEntry.reduction_mg), 0),
                   func.count().filter(LedgerEntry.source != "reversal"))
            .where(LedgerEntry.campaign_id == campaign_id)).one()
        return int(mg), int(records)


@pytest.fixture
def active_campaign(app, client, login, admin, clock):
    """A campaign with two teams, people in each and one without, a week of check-ins and one
    disqualified participant."""
    slug = unique("report")
    create_live_campaign(app, campaign_document(slug, starts_on=day(-6), ends_on=day(20)))
    people = [make_person(login, client, f"p{i}") for i in range(6)]
    for index, person in enumerate(people):
        join(client, person, slug, ("red", "blue", None)[index % 3])
    for index, person in enumerate(people):
        for action in ("clean_plate", "metro_ride", "reusable_cup")[: 1 + index % 3]:
            assert checkin(client, person, slug, action, day(0)).status_code == 201
    disqualify(client, admin, slug, pids_of(app, slug)[people[1].user_id])
    return slug, people


def test_figures_agree_with_each_other_and_the_ledger(app, client, admin, active_campaign):
    slug, _ = active_campaign
    mg, records = ledger_sum(app, slug)
    headers = {"X-Api-Key": new_key(client, admin, slug)}
    summary = exact(client.get(f"{REPORTS}/{slug}/summary", headers=headers))
    assert summary["reduction_g"] == grams(mg) and summary["records"] == records
    assert sum(Decimal(str(a["reduction_g"])) for a in summary["by_action"]) == grams(mg)
    series = exact(client.get(f"{REPORTS}/{slug}/timeseries", headers=headers))["rows"]
    assert series[-1]["cumulative_g"] == grams(mg)
    assert sum(r["reduction_g"] for r in series) == grams(mg)
    for by in ("action", "team"):
        rows = exact(client.get(f"{REPORTS}/{slug}/breakdown?by={by}", headers=headers))["rows"]
        assert sum(r["reduction_g"] for r in rows) == grams(mg), by
        assert sum(r["records"] for r in rows) == records, by
    exported = client.get(f"{REPORTS}/{slug}/export.csv", headers=headers)
    text = exported.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert sum(Decimal(r["reduction_g"]) for r in rows) == grams(mg)
    assert sum(int(r["records"]) for r in rows) == records
    lines = client.get(f"{REPORTS}/{slug}/ledger.jsonl", headers=headers)
    parsed = [json.loads(line) for line in lines.get_data(as_text=True).splitlines()]
    assert sum(p["reduction_mg"] for p in parsed) == mg
    assert lines.headers["X-Tanpu-Head-Seq"] == str(parsed[-1]["seq"])
    assert lines.headers["X-Tanpu-Head-Hash"] == parsed[-1]["hash"]
    verified = client.get(f"{REPORTS}/{slug}/ledger/verify", headers=headers).json
    assert verified["ok"] and verified["head_hash"] == parsed[-1]["hash"]
    dashboard = client.get(f"/api/v1/campaigns/{slug}/dashboard",
                           headers={"Authorization": "Bearer "
                                    + new_key(client, admin, slug, "dashboard-tokens")})
    assert dashboard.status_code == 200, dashboard.json
    assert exact(dashboard)["summary"]["reduction_g"] == grams(mg)
