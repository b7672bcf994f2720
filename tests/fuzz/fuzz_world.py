"""The world the schemathesis run acts in: a running, published campaign with a participant
who has data, a second participant to disqualify, an organiser, an admin, reporter and
dashboard credentials, a partner and its request signer, and spare objects for the DELETE
routes (so that deleting them leaves the credentials the run uses alive)."""

from __future__ import annotations

import hashlib
import hmac
import io
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from backend.clock import utcnow
from backend.extensions import db
from backend.models import Hold, Participation
from tests.backend.conftest import example_document
from tests.support.secrets import REGISTRY

SLUG = "fuzz-live"
PARTNER = "fuzz-metro"
SHANGHAI = ZoneInfo("Asia/Shanghai")
SIGN_MARKER = "X-Fuzz-Sign"  # consumed by PartnerSigner, never seen by the app


@dataclass
class World:
    """A running, published campaign with people, credentials and objects to act on."""

    app: object
    client: object
    secret: str
    participant: dict[str, str]
    admin: dict[str, str]
    organiser: dict[str, str]
    reporter: dict[str, str]
    dashboard: dict[str, str]
    path_parameters: dict[str, object]

    def fresh_participant(self) -> dict[str, str]:
        """A new participant of its own (for DELETE /me, which ends the caller's account)."""
        response = self.client.post("/api/v1/auth/wechat-login",
                                    json={"code": f"sandbox:fz-{uuid.uuid4().hex[:20]}"})
        assert response.status_code == 200, response.json
        REGISTRY.add(response.json["token"], "token of a throwaway participant")
        return bearer(response.json["token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _ok(response, status: int = 200):
    assert response.status_code == status, (response.status_code, response.get_json())
    return response.get_json()


def _shanghai_day(offset: int) -> str:
    return (datetime.now(SHANGHAI).date() + timedelta(days=offset)).isoformat()


def _campaign_document() -> dict:
    doc = example_document()
    doc.update(slug=SLUG, starts_on=_shanghai_day(-3), ends_on=_shanghai_day(30))
    doc["teams"]["list"] = [{"key": "bjtu", "name": "北京交通大学"},
                            {"key": "spare", "name": "空队"}]
    doc["actions"] += [{"key": key} for key in (
        "car_free_day", "cycle_km", "clothes_recycle", "e_invoice")]
    return doc


def _staff(app, client, email: str, role: str, campaigns: list[str]) -> dict[str, str]:
    from backend.services.staff import create_staff

    password = "pw-" + uuid.uuid4().hex
    REGISTRY.add(password, f"password of {email}")
    with app.app_context():
        create_staff(email, password, role, campaigns)
        db.session.commit()
    token = _ok(client.post("/api/v1/staff/login",
                            json={"email": email, "password": password}))["token"]
    REGISTRY.add(token, f"staff token of {email}")
    return bearer(token)


def _login(client, name: str) -> tuple[dict[str, str], int]:
    body = _ok(client.post("/api/v1/auth/wechat-login", json={"code": f"sandbox:{name}"}))
    REGISTRY.add(body["token"], f"token of {name}")
    return bearer(body["token"]), body["user"]["id"]


def _credential(client, organiser, path: str) -> tuple[str, int]:
    body = _ok(client.post(f"/api/v1/admin/campaigns/{SLUG}/{path}", headers=organiser,
                           json={"label": f"fuzz {path}"}), 201)
    REGISTRY.add(body["key"], f"{path} secret")
    return body["key"], body["id"]


def _hold(app, user_id: int) -> int:
    with app.app_context():
        participation = db.session.scalars(select(Participation).where(
            Participation.user_id == user_id)).one()
        hold = Hold(campaign_id=participation.campaign_id, participation_id=participation.id,
                    source="werun", source_ref="fuzz", action="walk_steps",
                    local_date=datetime.now(SHANGHAI).date(), quantity_milli=60_000_000,
                    signals=["steps_over_limit"], status="held", created_dt=utcnow(),
                    updated_dt=utcnow())
        db.session.add(hold)
        db.session.commit()
        return hold.id


def build_world(app) -> World:
    from backend.services.partners import create_partner

    client = app.test_client()
    admin = _staff(app, client, "fuzz-admin@tanpu.test", "admin", [])
    _ok(client.post("/api/v1/admin/campaigns", headers=admin, json=_campaign_document()), 201)
    _ok(client.post(f"/api/v1/admin/campaigns/{SLUG}/publish", headers=admin))
    organiser = _staff(app, client, "fuzz-organiser@tanpu.test", "organiser", [SLUG])
    participant, _ = _login(client, "fuzz-alice")
    _ok(client.patch("/api/v1/me", headers=participant, json={"nickname": "小明"}))
    _ok(client.post(f"/api/v1/campaigns/{SLUG}/join", headers=participant,
                    json={"team": "bjtu"}), 201)
    _ok(client.post(f"/api/v1/campaigns/{SLUG}/checkins", headers=participant,
                    json={"action": "car_free_day"}), 201)
    _ok(client.post(f"/api/v1/campaigns/{SLUG}/checkins",
                    headers={**participant, "Idempotency-Key": "fuzz-1"},
                    json={"action": "metro_ride", "quantity": 2}), 201)
    bob, bob_id = _login(client, "fuzz-bob")
    _ok(client.post(f"/api/v1/campaigns/{SLUG}/join", headers=bob, json={}), 201)
    reporter_key, _ = _credential(client, organiser, "api-keys")
    dashboard_token, _ = _credential(client, organiser, "dashboard-tokens")
    _, spare_key_id = _credential(client, organiser, "api-keys")
    _, spare_token_id = _credential(client, organiser, "dashboard-tokens")
    with app.app_context():
        _, secret = create_partner(PARTNER, [SLUG])
        db.session.commit()
        bob_pid = db.session.scalars(select(Participation.pid).where(
            Participation.user_id == bob_id)).one()
    REGISTRY.add(secret, "partner secret")
    return World(
        app=app, client=client, secret=secret, participant=participant, admin=admin,
        organiser=organiser, reporter={"X-Api-Key": reporter_key},
        dashboard=bearer(dashboard_token),
        path_parameters={"slug": SLUG, "partner": PARTNER, "key": "spare", "pid": bob_pid,
                         "hold_id": _hold(app, bob_id), "api-keys": spare_key_id,
                         "dashboard-tokens": spare_token_id},
    )


class PartnerSigner:
    """WSGI hook: signs a request marked with X-Fuzz-Sign as the partner would (API.md: hex
    HMAC-SHA256 over timestamp, nonce and the raw body as sent, a fresh nonce each time)."""

    def __init__(self, wsgi_app, secret: str) -> None:
        self.wsgi_app = wsgi_app
        self.secret = secret

    def __call__(self, environ, start_response):
        if environ.pop("HTTP_" + SIGN_MARKER.upper().replace("-", "_"), None):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            timestamp = str(int(time.time()))
            nonce = uuid.uuid4().hex
            message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body
            environ["HTTP_X_TANPU_TIMESTAMP"] = timestamp
            environ["HTTP_X_TANPU_NONCE"] = nonce
            environ["HTTP_X_TANPU_SIGNATURE"] = hmac.new(
                self.secret.encode(), message, hashlib.sha256).hexdigest()
        return self.wsgi_app(environ, start_response)
