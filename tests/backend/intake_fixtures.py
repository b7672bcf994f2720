"""Helpers for the WeRun, partner and hold tests (issue 5): partners registered through the
service and signed requests computed here from API.md, WeRun step lists encrypted as WeChat
would, link codes, holds and the ledger rows of a campaign.

Not a conftest: test modules import what they use (the fake clock comes from intake_helpers).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import func, select

from backend.extensions import db
from backend.models import Campaign, Hold, LedgerEntry, User, WerunDay
from backend.schemas.intake import WerunSchema
from backend.services.logins import session_key_of
from backend.services.partners import create_partner
from backend.wechat import current_wechat
from backend.wechat_crypto import encrypt_open_data
from tests.backend.intake_helpers import API, SHANGHAI
from tests.support.secrets import REGISTRY

PARTNER_API = "/api/v1/partners"


# -- partners ----------------------------------------------------------------------------------

def hmac_signature(secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    """API.md: lowercase hex HMAC-SHA256, key the secret's UTF-8 bytes, message
    ``timestamp + "\\n" + nonce + "\\n" + raw body``."""
    message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


@dataclass
class PartnerClient:
    """Signs and sends a partner's requests; ``now`` gives the instant the server sees."""

    client: object
    name: str
    secret: str
    now: object  # () -> datetime (the fake clock)

    def timestamp(self, offset_s: int = 0) -> str:
        return str(int(self.now().timestamp()) + offset_s)

    def post(self, kind: str, payload, *, offset_s: int = 0, nonce: str | None = None,
             key: str | None = None, signature: str | None = None, body: bytes | None = None,
             timestamp: str | None = None, name: str | None = None, secret: str | None = None):
        """POST ``payload`` (JSON) to /partners/{name}/{kind}, signed unless told otherwise."""
        raw = body if body is not None else json.dumps(payload, ensure_ascii=False).encode()
        stamp = timestamp if timestamp is not None else self.timestamp(offset_s)
        nonce = nonce if nonce is not None else uuid.uuid4().hex
        headers = {
            "Content-Type": "application/json",
            "X-Tanpu-Timestamp": stamp,
            "X-Tanpu-Nonce": nonce,
            "X-Tanpu-Signature": signature if signature is not None
            else hmac_signature(secret or self.secret, stamp, nonce, raw),
        }
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.client.post(f"{PARTNER_API}/{name or self.name}/{kind}", data=raw,
                                headers=headers)

    def trips(self, *trips, **options):
        return self.post("trips", {"trips": list(trips)}, **options)

    def records(self, *records, **options):
        return self.post("records", {"records": list(records)}, **options)

    def link_code(self, member_ref: str, code: str, **options):
        return self.post("link-codes", {"member_ref": member_ref, "link_code": code}, **options)


def make_partner(app, client, clock, name: str, slugs: list[str]) -> PartnerClient:
    """Register a partner through the service; its secret joins the secret scan."""
    with app.app_context():
        _, secret = create_partner(name, slugs)
        db.session.commit()
    REGISTRY.add(secret, f"secret of partner {name}")
    return PartnerClient(client, name, secret, clock)


def link_member(client, partner: PartnerClient, person, member_ref: str, code: str):
    """The partner registers a link code for its member, who enters it in the mini-program."""
    registered = partner.link_code(member_ref, code)
    assert registered.status_code == 201, registered.json
    return client.post("/api/v1/me/partner-links", headers=person.headers,
                       json={"partner": partner.name, "link_code": code})


def utc_iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_instant(day: date, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=SHANGHAI)


def unionid_of(app, name: str) -> str:
    """The unionid the sandbox gives ``name`` (the login fixture registers it as a secret)."""
    with app.app_context():
        return current_wechat().identity(name)[1]


# -- WeRun -------------------------------------------------------------------------------------

def beijing_midnight(day: date) -> int:
    """WeRun timestamps are midnights in Beijing time (wechat.md §2)."""
    return int(datetime.combine(day, time(0), tzinfo=SHANGHAI).timestamp())


def step_payload(days: dict[date, int]) -> dict:
    return {"stepInfoList": [{"timestamp": beijing_midnight(d), "step": steps}
                             for d, steps in sorted(days.items())]}


def encrypt_steps(session_key: str, days: dict[date, int], appid: str) -> dict:
    """The body of POST .../werun for these days, encrypted with ``session_key`` as WeChat's
    wx.getWeRunData would (AES-128-CBC, PKCS#7, watermark appid)."""
    encrypted, iv = encrypt_open_data(session_key, step_payload(days), appid)
    return {"encrypted_data": encrypted, "iv": iv}


def session_key_of_user(app, user_id: int) -> str:
    with app.app_context():
        return session_key_of(db.session.get(User, user_id))


def sandbox_appid(app) -> str:
    with app.app_context():
        return current_wechat().appid


def werun(client, person, slug: str, body: dict):
    response = client.post(f"{API}/{slug}/werun", headers=person.headers, json=body)
    if response.status_code == 200:  # written directly: still what its schema documents
        assert WerunSchema().validate(response.json) == {}, response.json
    return response


def werun_days_stored(app, user_id: int) -> dict[date, int]:
    with app.app_context():
        return {row.local_date: row.steps for row in db.session.scalars(
            select(WerunDay).where(WerunDay.user_id == user_id))}


# -- ledger and holds --------------------------------------------------------------------------

def entry_count(app, slug: str | None = None) -> int:
    with app.app_context():
        query = select(func.count()).select_from(LedgerEntry)
        if slug is not None:
            query = query.join(Campaign, Campaign.id == LedgerEntry.campaign_id).where(
                Campaign.slug == slug)
        return db.session.scalar(query)


def holds_in(app, slug: str) -> list[tuple[int, str, str, date, int, str]]:
    """(id, source, action, local_date, quantity_milli, status) of a campaign's holds."""
    with app.app_context():
        return [(h.id, h.source, h.action, h.local_date, h.quantity_milli, h.status)
                for h in db.session.scalars(
                    select(Hold).join(Campaign, Campaign.id == Hold.campaign_id)
                    .where(Campaign.slug == slug).order_by(Hold.id))]
