"""Helpers for the staff, admin, public-campaign and CLI tests: staff accounts logged in through
the API, campaign documents built from the API.md example, campaigns created and published."""

from __future__ import annotations

import copy
import json
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import func, select

from backend.extensions import db
from backend.models import Campaign, Participation, Team, User
from backend.services.staff import create_staff
from tests.support.secrets import REGISTRY

DATA = Path(__file__).resolve().parent.parent / "data"
EXAMPLE_YAML = DATA / "api-example-campaign.yaml"
ADMIN_API = "/api/v1/admin"


def as_json(data):
    """``data`` as it travels in a JSON body: YAML dates and instants become ISO strings."""
    return json.loads(json.dumps(data, default=lambda value: value.isoformat()))


def example_document() -> dict:
    """The API.md example campaign document, as JSON (a fresh copy each call)."""
    return as_json(yaml.safe_load(EXAMPLE_YAML.read_text(encoding="utf-8")))


def shanghai_today() -> date:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


def days_from_today(days: int) -> str:
    return (shanghai_today() + timedelta(days=days)).isoformat()


def campaign_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Campaign))


def error_of(response) -> tuple[int, str]:
    return response.status_code, response.json["error"]["code"]


@dataclass
class Staff:
    id: int
    email: str
    password: str
    role: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def add_staff(app):
    """``add_staff(email, role, campaigns)``: an account made by the service (not logged in);
    returns ``(id, password)``. The password joins the secret scan."""

    def add(email: str, role: str = "organiser", campaigns=()) -> tuple[int, str]:
        password = "pw-" + secrets.token_urlsafe(16)
        REGISTRY.add(password, f"password of {email}")
        with app.app_context():
            staff = create_staff(email, password, role, list(campaigns))
            db.session.commit()
            return staff.id, password

    return add


@pytest.fixture
def staff_token(add_staff, client):
    """``staff_token(email, role="organiser", campaigns=())``: an account created through the
    service and logged in through POST /api/v1/staff/login; password and token join the scan."""

    def make(email: str, role: str = "organiser", campaigns=()) -> Staff:
        staff_id, password = add_staff(email, role, campaigns)
        response = client.post("/api/v1/staff/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.json
        token = response.json["token"]
        REGISTRY.add(token, f"staff token of {email}")
        return Staff(staff_id, email, password, role, token)

    return make


@pytest.fixture
def admin(staff_token) -> Staff:
    return staff_token("admin@tanpu.test", "admin")


@pytest.fixture
def create_campaign_doc():
    """``create_campaign_doc(slug, **overrides)``: the API.md example under another slug, with
    top-level fields replaced (a valid document unless the overrides break it)."""

    def build(slug: str = "winter-2022", **overrides) -> dict:
        doc = example_document()
        doc["slug"] = slug
        doc.update(copy.deepcopy(overrides))
        return doc

    return build


@pytest.fixture
def make_campaign(client, admin, create_campaign_doc):
    """``make_campaign(slug, publish=False, **overrides)``: created (and published) by the
    admin through the API; returns the stored document."""

    def make(slug: str, publish: bool = False, **overrides) -> dict:
        response = client.post(f"{ADMIN_API}/campaigns", headers=admin.headers,
                               json=create_campaign_doc(slug, **overrides))
        assert response.status_code == 201, response.json
        if publish:
            published = client.post(f"{ADMIN_API}/campaigns/{slug}/publish",
                                    headers=admin.headers)
            assert published.status_code == 200, published.json
        return response.json

    return make


@pytest.fixture
def add_member(app):
    """``add_member(slug, team_key)``: a participation row in that team, inserted directly."""

    def add(slug: str, team_key: str | None) -> None:
        with app.app_context():
            campaign = db.session.scalars(select(Campaign).where(Campaign.slug == slug)).one()
            team = None
            if team_key is not None:
                team = db.session.scalars(select(Team).where(
                    Team.campaign_id == campaign.id, Team.key == team_key)).one()
            user = User()
            db.session.add(user)
            db.session.flush()
            db.session.add(Participation(
                campaign_id=campaign.id, user_id=user.id, pid=secrets.token_hex(8),
                team_id=team.id if team else None, joined_on=campaign.starts_on,
            ))
            db.session.commit()

    return add
