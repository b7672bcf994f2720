"""Security (issue 9, point 5): what an attacker would try, and what a user would notice if it
worked.

Participants reaching each other's data through every participant route; staff and wrong-type
tokens there; forged, re-signed and revoked tokens; a replayed partner request after its nonce
is forgotten; bodies that are too big (also streamed), too deep or of another media type on
every route that takes a body; script and SQL text kept as text end to end.

Covered elsewhere and not repeated here: the admin routes' table of callers
(tests/backend/test_admin_authorization.py), reporter key, organiser and dashboard token scope
per reporter route (test_reports_api.py), expired, tampered, HS512 and ``none`` tokens
(test_tokens.py), the 300 s window and nonce reuse (test_partners.py), the dashboard page's
text-only inserts (test_dashboard_page.py) and the secret scan of every response and log line
(tests/conftest.py).
"""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from backend.auth import issue_token
from backend.extensions import db
from backend.models import StaffAccount, User
from tests.backend.board_helpers import (
    ADMIN_API,
    API,
    campaign_document,
    checkin,
    create_live_campaign,
    day,
    install_clock,
    join,
    make_person,
    pids_of,
    unique,
)
from tests.backend.intake_fixtures import hmac_signature, link_member, make_partner
from tests.support.secrets import REGISTRY

MIB = 1024 * 1024
REPORTS = "/api/v1/reports/campaigns"
# Participant-facing routes that need no token (the leaderboards take one for `me`).
PUBLIC = {
    ("GET", "/api/v1/campaigns"), ("GET", "/api/v1/campaigns/<slug>"),
    ("GET", "/api/v1/campaigns/<slug>/progress"), ("GET", "/api/v1/campaigns/<slug>/dashboard"),
}
OPTIONAL_TOKEN = {("GET", "/api/v1/campaigns/<slug>/leaderboards/<board>")}
NOT_PARTICIPANT = ("/api/v1/admin/", "/api/v1/reports/", "/api/v1/partners/",
                   "/api/v1/staff/", "/api/v1/auth/")
SCRIPT_NICKNAME = "<script>alert('x')</script>"
SQL_NICKNAME = "'; DROP TABLE users;--"
SCRIPT_TEAM = '<img src=x onerror="alert(1)">队'
SQL_TEAM = "Robert'); DROP TABLE teams;--"


def error(response) -> tuple[int, str | None]:
    body = response.get_json(silent=True) or {}
    return response.status_code, (body.get("error") or {}).get("code")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def routes(app, keep) -> list[tuple[str, str]]:
    """(method, rule) of the app's URL map that ``keep(method, rule)`` selects."""
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if keep(method, rule.rule):
                found.append((method, rule.rule))
    return sorted(found, key=lambda r: (r[1], r[0]))


def participant_routes(app) -> list[tuple[str, str]]:
    return routes(app, lambda method, rule: rule.startswith("/api/v1/")
                  and not rule.startswith(NOT_PARTICIPANT) and (method, rule) not in PUBLIC)


def fill(rule: str, values: dict[str, object]) -> str:
    """The rule with its variables replaced (a variable this table does not know fails)."""

    def value(match):
        name = match.group(1)
        assert name in values, f"no value for <{name}> in {rule}: add one to the world"
        return str(values[name])

    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", value, rule)


@pytest.fixture
def clock(monkeypatch):
    return install_clock(monkeypatch)


@pytest.fixture
def world(app, client, login, admin, clock):
    """A running campaign with a public dashboard fed by partner ``metro``; Alice has data of
    her own (a nickname still under review, check-ins, a partner link); Bob joined and has none.
    """
    slug = unique("sec")
    doc = campaign_document(slug, starts_on=day(-3), ends_on=day(20))
    doc["dashboard"] = {"public": True}
    create_live_campaign(app, doc)
    alice = make_person(login, client, "alice")
    bob = make_person(login, client, "bob")
    for person, team in ((alice, "red"), (bob, "blue")):
        join(client, person, slug, team)
    secret_nickname = "艾丽丝[review]" + uuid.uuid4().hex[:6]
    response = client.patch("/api/v1/me", headers=alice.headers,
                            json={"nickname": secret_nickname})
    assert response.json["nickname_status"] == "review"
    for action in ("car_free_day", "metro_ride"):
        assert checkin(client, alice, slug, action).status_code == 201
    partner = make_partner(app, client, clock, "metro", [slug])
    member_ref = "card-" + uuid.uuid4().hex[:10]
    code = uuid.uuid4().hex[:8]
    assert link_member(client, partner, alice, member_ref, code).status_code == 201
    alice.pid = pids_of(app, slug)[alice.user_id]
    return {
        "slug": slug, "alice": alice, "bob": bob, "admin": admin, "partner": partner,
        "used_code": code,
        # what only Alice (and her organisers) may ever see
        "alice_private": {"nickname": secret_nickname, "pid": alice.pid,
                          "member_ref": member_ref},
    }


def participant_call(client, world, method: str, rule: str, headers: dict):
    """A plausible request to a participant route, as whoever ``headers`` says."""
    path = fill(rule, {"slug": world["slug"], "board": "individuals"})
    bodies = {
        "/api/v1/me": {"nickname": "鲍勃"},
        "/api/v1/me/partner-links": {"partner": "metro", "link_code": world["used_code"]},
        "/api/v1/campaigns/<slug>/join": {"team": "blue"},
        "/api/v1/campaigns/<slug>/checkins": {"action": "car_free_day"},
        "/api/v1/campaigns/<slug>/werun": {"encrypted_data": "AAAA", "iv": "AAAA"},
        "/api/v1/sandbox/werun-data": {"days": [{"date": day(0).isoformat(), "steps": 1000}]},
    }
    kwargs = {"json": bodies.get(rule, {})} if method in ("POST", "PUT", "PATCH") else {}
    return client.open(path, method=method, headers=headers, **kwargs)


# -- participants and each other ---------------------------------------------------------------

def test_the_table_covers_the_participant_api(app):
    found = participant_routes(app)
    for route in (("GET", "/api/v1/me"), ("DELETE", "/api/v1/me"),
                  ("GET", "/api/v1/me/export"), ("POST", "/api/v1/me/partner-links"),
                  ("GET", "/api/v1/campaigns/<slug>/checkins"),
                  ("GET", "/api/v1/campaigns/<slug>/me")):
        assert route in found
    assert len(found) >= 12


def test_no_participant_route_shows_bob_anything_of_alices(app, client, world):
    """Bob calls every participant route (reads first, DELETE /me last): none of Alice's
    private data comes back, his lists are his own, and her used link code is no use to him."""
    private = world["alice_private"]
    bob, slug = world["bob"], world["slug"]
    calls = sorted(participant_routes(app),
                   key=lambda r: (r[0] != "GET", r == ("DELETE", "/api/v1/me")))
    for method, rule in calls:
        response = participant_call(client, world, method, rule, bob.headers)
        text = response.get_data(as_text=True)
        assert response.status_code < 500, (method, rule, text[:300])
        leaked = [name for name, value in private.items() if value in text]
        assert not leaked, f"{method} {rule} shows Bob Alice's {leaked}"
        if (method, rule) == ("POST", "/api/v1/me/partner-links"):
            assert error(response) == (422, "validation.failed")
        if (method, rule) == ("GET", "/api/v1/campaigns/<slug>/checkins"):
            assert response.json["items"] == [], "Bob's list holds someone else's check-ins"
        if (method, rule) == ("GET", "/api/v1/campaigns/<slug>/me"):
            assert response.json["reduction_g"] == 0 and response.json["by_action"] == {}
        if (method, rule) == ("GET", "/api/v1/me"):
            assert response.json["id"] == bob.user_id
    # Alice still sees her own, so the emptiness above is about whose data it is
    mine = client.get(f"{API}/{slug}/checkins", headers=world["alice"].headers)
    assert len(mine.json["items"]) == 2


def test_a_staff_token_opens_no_participant_route(app, client, world):
    """The other direction of the admin table: staff tokens are not participant tokens."""
    staff = world["admin"].headers
    for method, rule in participant_routes(app):
        response = participant_call(client, world, method, rule, staff)
        assert error(response) == (403, "auth.forbidden"), (method, rule)


def test_every_participant_route_needs_a_token(app, client, world):
    for method, rule in participant_routes(app):
        response = participant_call(client, world, method, rule, {})
        if (method, rule) in OPTIONAL_TOKEN:
            assert response.status_code == 200 and response.json["me"] is None, rule
        else:
            assert error(response) == (401, "auth.token_missing"), (method, rule)


def test_an_erased_participants_token_opens_nothing(app, client, world):
    """After DELETE /me the same token is refused on every participant route, and Alice's
    private data is nowhere to be found through Bob either."""
    alice = world["alice"]
    assert client.delete("/api/v1/me", headers=alice.headers).status_code == 204
    for method, rule in participant_routes(app):
        response = participant_call(client, world, method, rule, alice.headers)
        if (method, rule) in OPTIONAL_TOKEN:
            assert error(response) == (401, "auth.token_invalid"), rule
        else:
            assert error(response) == (401, "auth.token_invalid"), (method, rule)


# -- staff and reporter scope -----------------------------------------------------------------

def test_credentials_of_another_campaign_learn_nothing_about_this_one(app, client, staff_token,
                                                                      world):
    """Every GET of the admin and reporter areas of this campaign, as the organiser of another
    campaign and with that campaign's reporter key: 404, as for a campaign that does not exist;
    a dashboard token is no reporter key; an organiser cannot create campaigns. (Every method
    and caller of the admin routes: test_admin_authorization.py; each reporter route's callers:
    test_reports_api.py.)"""
    slug, admin = world["slug"], world["admin"]
    other = unique("sec-other")
    create_live_campaign(app, campaign_document(other, starts_on=day(-3), ends_on=day(20)))
    stranger = staff_token("stranger@tanpu.test", "organiser", [other])
    key = client.post(f"{ADMIN_API}/{other}/api-keys", headers=admin.headers,
                      json={"label": "other"}).json["key"]
    screen = client.post(f"{ADMIN_API}/{slug}/dashboard-tokens", headers=admin.headers,
                         json={"label": "screen"}).json["key"]
    REGISTRY.add(key, "another campaign's key")
    REGISTRY.add(screen, "this campaign's dashboard token")
    values = {"slug": slug}
    gets = routes(app, lambda method, rule: method == "GET" and rule.count("<") == 1 and (
        rule.startswith(f"{ADMIN_API}/<slug>") or rule.startswith(f"{REPORTS}/<slug>")))
    assert len(gets) >= 12
    for _, rule in gets:
        url = fill(rule, values) + ("?by=action" if rule.endswith("/breakdown") else "")
        assert error(client.get(url, headers=stranger.headers)) == (404, "not_found"), rule
        if rule.startswith(REPORTS):
            assert error(client.get(url, headers={"X-Api-Key": key})) == (404, "not_found")
            assert error(client.get(url, headers={"X-Api-Key": screen}))[0] == 401, rule
            assert error(client.get(url, headers=bearer(screen)))[0] == 401, rule
    created = client.post(f"{ADMIN_API}", headers=stranger.headers,
                          json=campaign_document(unique("sec-new"), starts_on=day(0),
                                                 ends_on=day(9)))
    assert error(created) == (403, "auth.forbidden")


# -- forged and revoked tokens -----------------------------------------------------------------

def _claims(user_id: int, **changes) -> dict:
    claims = {"typ": "participant", "sub": str(user_id), "ver": 1,
              "exp": int((datetime.now(UTC) + timedelta(hours=1)).timestamp())}
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def _unsigned(header: dict, claims: dict) -> str:
    def part(data: dict) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return jwt.utils.base64url_encode(raw).decode()

    return f"{part(header)}.{part(claims)}."


def _resigned_with_header(secret: str, claims: dict, header: dict) -> str:
    """A token whose header names another algorithm but is signed with HMAC-SHA256 and the
    server's own key (the classic confusion: a verifier that trusts the header's alg)."""
    import hashlib
    import hmac

    def part(data: dict) -> str:
        return jwt.utils.base64url_encode(
            json.dumps(data, separators=(",", ":")).encode()).decode()

    signing_input = f"{part(header)}.{part(claims)}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{jwt.utils.base64url_encode(signature).decode()}"


FORGERIES = {
    "alg none": lambda key, uid: _unsigned({"alg": "none", "typ": "JWT"}, _claims(uid)),
    "alg None": lambda key, uid: _unsigned({"alg": "None", "typ": "JWT"}, _claims(uid)),
    "alg NONE": lambda key, uid: _unsigned({"alg": "NONE"}, _claims(uid)),
    "no alg": lambda key, uid: _unsigned({"typ": "JWT"}, _claims(uid)),
    "HS384": lambda key, uid: jwt.encode(_claims(uid), key, algorithm="HS384"),
    "RS256 header, HMAC signature": lambda key, uid: _resigned_with_header(
        key, _claims(uid), {"alg": "RS256", "typ": "JWT"}),
    "RS256 with the attacker's key": lambda key, uid: jwt.encode(
        _claims(uid), rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256"),
    "ES256 with the attacker's key": lambda key, uid: jwt.encode(
        _claims(uid), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256"),
    "jwk header with the attacker's key": lambda key, uid: jwt.encode(
        _claims(uid), "attacker-key-of-at-least-32-bytes!!", algorithm="HS256",
        headers={"jwk": {"kty": "oct", "k": "YXR0YWNrZXI"}, "kid": "../../secret"}),
    "no typ": lambda key, uid: jwt.encode(_claims(uid, typ=None), key, algorithm="HS256"),
    "typ admin": lambda key, uid: jwt.encode(_claims(uid, typ="admin"), key, algorithm="HS256"),
    "no ver": lambda key, uid: jwt.encode(_claims(uid, ver=None), key, algorithm="HS256"),
    "ver as text": lambda key, uid: jwt.encode(_claims(uid, ver="1"), key, algorithm="HS256"),
    "no exp": lambda key, uid: jwt.encode(_claims(uid, exp=None), key, algorithm="HS256"),
    "sub not a number": lambda key, uid: jwt.encode(_claims(uid, sub="1 OR 1=1"), key,
                                                    algorithm="HS256"),
    "sub of nobody": lambda key, uid: jwt.encode(_claims(uid, sub="987654321"), key,
                                                 algorithm="HS256"),
}


def test_forged_tokens_are_refused(client, login, secret_key):
    """Each forgery names a real participant; each is 401, never their profile. (The ones made
    with the server's key show that the claims are checked too, not only the signature.)"""
    alice = login("forger-target")
    accepted = {}
    for forgery, make in sorted(FORGERIES.items()):
        response = client.get("/api/v1/me", headers=bearer(make(secret_key, alice.user_id)))
        if error(response) != (401, "auth.token_invalid"):
            accepted[forgery] = (response.status_code, response.get_data(as_text=True)[:200])
    assert not accepted
    assert client.get("/api/v1/me", headers=alice.headers).status_code == 200


def test_a_revoked_staff_account_opens_neither_admin_nor_reporter_routes(app, client,
                                                                         staff_token, world):
    """Raising a staff account's token version (what revoking its sessions does) closes every
    route its old token opened."""
    slug = world["slug"]
    organiser = staff_token("revoked@tanpu.test", "organiser", [slug])
    urls = (f"{ADMIN_API}/{slug}", f"{ADMIN_API}/{slug}/participants",
            f"{REPORTS}/{slug}/summary", f"{REPORTS}/{slug}/ledger.jsonl")
    for url in urls:
        assert client.get(url, headers=organiser.headers).status_code == 200, url
    with app.app_context():
        db.session.get(StaffAccount, organiser.id).token_version += 1
        db.session.commit()
    for url in urls:
        assert error(client.get(url, headers=organiser.headers)) == (401, "auth.token_invalid")


def test_a_participant_token_cannot_be_replayed_as_staff_with_the_same_id(app, client, world):
    """Participant 5 and staff account 5 are different people: a participant token never opens
    staff routes whatever its subject, and the reverse."""
    admin_id = world["admin"].id
    with app.app_context():
        user = db.session.get(User, admin_id) or User()
        db.session.add(user)
        db.session.commit()
        token = issue_token("participant", user.id, user.token_version).token
        REGISTRY.add(token, "participant token sharing an id with staff")
    assert error(client.get(f"{ADMIN_API}/{world['slug']}", headers=bearer(token))) == (
        403, "auth.forbidden")


# -- partners ----------------------------------------------------------------------------------

def test_a_captured_partner_request_cannot_be_replayed(app, client, world, clock):
    """An attacker who captured a signed request replays it byte for byte: at once (the nonce
    is used up), and after the server forgot the nonce (10 minutes: the timestamp is stale by
    then). Requests from a clock ten minutes off either way are refused too. Nothing counts
    twice."""
    from tests.backend.intake_fixtures import unionid_of

    partner, slug = world["partner"], world["slug"]
    trip = {"trips": [{"trip_id": "replay-1", "unionid": unionid_of(app, world["bob"].name),
                       "mode": "metro", "ended_at": clock().strftime("%Y-%m-%dT%H:%M:%SZ")}]}
    raw = json.dumps(trip).encode()
    stamp, nonce = partner.timestamp(), "captured-nonce"
    headers = {"Content-Type": "application/json", "X-Tanpu-Timestamp": stamp,
               "X-Tanpu-Nonce": nonce,
               "X-Tanpu-Signature": hmac_signature(partner.secret, stamp, nonce, raw)}
    url = f"/api/v1/partners/{partner.name}/trips"
    first = client.post(url, data=raw, headers=headers)
    assert first.status_code == 200 and first.json["accepted"] == 1, first.json
    assert error(client.post(url, data=raw, headers=headers)) == (
        401, "partner.signature_invalid")
    clock.advance(11 * 60)
    assert error(client.post(url, data=raw, headers=headers)) == (
        401, "partner.signature_invalid")
    for skew in (-600, 600):
        late = partner.trips({**trip["trips"][0], "trip_id": f"skew{skew}"}, offset_s=skew)
        assert error(late) == (401, "partner.signature_invalid"), skew
    me = client.get(f"{API}/{slug}/me", headers=world["bob"].headers).json
    assert me["by_action"]["metro_ride"]["records"] == 1


def test_a_signature_made_with_another_partners_secret_is_refused(app, client, world, clock):
    other = make_partner(app, client, clock, "bus-co", [world["slug"]])
    response = world["partner"].post("link-codes", {"member_ref": "m-1", "link_code": "c0de"},
                                     secret=other.secret)
    assert error(response) == (401, "partner.signature_invalid")
    response = other.post("link-codes", {"member_ref": "m-1", "link_code": "c0de"},
                          name=world["partner"].name)
    assert error(response) == (401, "partner.signature_invalid")


# -- the request envelope, on every route that takes a body ------------------------------------

def body_operations(client) -> list[tuple[str, str]]:
    """(method, OpenAPI path) of every documented operation with a request body."""
    spec = client.get("/openapi.json").json
    return sorted((method.upper(), path) for path, operations in spec["paths"].items()
                  for method, operation in operations.items()
                  if isinstance(operation, dict) and "requestBody" in operation)


@pytest.fixture
def caller(app, client, world, clock):
    """``caller(method, path, data, content_type)``: the request as the route's own kind of
    caller (participant, organiser, partner with a valid signature, or nobody for logins)."""
    slug = world["slug"]
    values = {"slug": slug, "partner": world["partner"].name, "key": "red",
              "pid": world["alice"].pid, "hold_id": 1, "credential_id": 1,
              "board": "individuals"}

    def call(method: str, path: str, data: bytes, content_type: str = "application/json",
             streamed: bool = False):
        url = re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)
        headers = {"Content-Type": content_type, "Idempotency-Key": uuid.uuid4().hex}
        if path.startswith("/api/v1/admin/"):
            headers.update(world["admin"].headers)
        elif path.startswith("/api/v1/partners/"):
            stamp, nonce = world["partner"].timestamp(), uuid.uuid4().hex
            headers.update({"X-Tanpu-Timestamp": stamp, "X-Tanpu-Nonce": nonce,
                            "X-Tanpu-Signature": hmac_signature(world["partner"].secret,
                                                                stamp, nonce, data)})
        elif not path.startswith(("/api/v1/auth/", "/api/v1/staff/")):
            headers.update(world["bob"].headers)
        if streamed:
            headers["Transfer-Encoding"] = "chunked"
            return client.open(url, method=method, headers=headers,
                               input_stream=io.BytesIO(data),
                               environ_overrides={"wsgi.input_terminated": True})
        return client.open(url, method=method, headers=headers, data=data)

    return call


def test_the_envelope_table_covers_every_body(client, world):
    found = body_operations(client)
    assert ("POST", "/api/v1/auth/wechat-login") in found
    assert ("POST", "/api/v1/partners/{partner}/trips") in found
    assert ("PUT", "/api/v1/admin/campaigns/{slug}") in found
    assert len(found) >= 15


def test_a_body_over_one_mebibyte_is_413_also_when_streamed(client, caller):
    """1 MiB and one byte, with a Content-Length and chunked without one (which a server
    must not cut at the limit and hand on as a shorter body)."""
    padded = b'{"pad": "' + b" " * MIB + b'"}'
    # valid JSON within the first MiB, junk after it: a truncating server would accept it
    prefix = b'{"code": "sandbox:prefix"}' + b" " * MIB + b"junk"
    for method, path in body_operations(client):
        for streamed in (False, True):
            for body in (padded, prefix):
                response = caller(method, path, body, streamed=streamed)
                assert error(response) == (413, "request.too_large"), (
                    method, path, streamed, response.status_code)


def test_json_nested_ten_thousand_deep_is_refused_not_a_crash(client, caller):
    deep = {"array": b"[" * 10_000 + b"]" * 10_000,
            "object": b'{"a":' * 10_000 + b"1" + b"}" * 10_000}
    for method, path in body_operations(client):
        for shape, body in deep.items():
            response = caller(method, path, body)
            assert response.status_code in (400, 422), (method, path, shape, response.json)


def test_another_media_type_is_415_on_every_write(app, client):
    """Every POST, PUT and PATCH of the API, without credentials (the type is checked first)."""
    writes = routes(app, lambda method, rule: rule.startswith("/api/")
                    and method in ("POST", "PUT", "PATCH"))
    assert len(writes) >= 20
    values = {"slug": "any-campaign", "partner": "any-partner", "pid": "0" * 16,
              "hold_id": 1, "key": "k"}
    for content_type in ("text/plain", "application/xml", "application/x-www-form-urlencoded",
                         "text/html"):
        for method, rule in writes:
            response = client.open(fill(rule, values), method=method, data=b"a=1&b=<x/>",
                                   headers={"Content-Type": content_type})
            assert error(response) == (415, "request.unsupported_media_type"), (
                content_type, method, rule)


# -- hostile text is kept as text --------------------------------------------------------------

def test_script_and_sql_in_names_are_stored_and_shown_as_text(app, client, login, world):
    """Nicknames and team names that are HTML or SQL read back byte for byte from every place
    that shows them (profile, leaderboards, the big screen's JSON, organisers' lists); the
    page inserts them with textContent (test_dashboard_page.py)."""
    slug, admin = world["slug"], world["admin"]
    teams = client.post(f"{ADMIN_API}/{slug}/teams", headers=admin.headers,
                        json=[{"key": "red", "name": SCRIPT_TEAM},
                              {"key": "blue", "name": SQL_TEAM}])
    assert teams.status_code == 200, teams.json
    people = []
    for nickname, team in ((SCRIPT_NICKNAME, "red"), (SQL_NICKNAME, "blue")):
        person = make_person(login, client, "hostile")
        changed = client.patch("/api/v1/me", headers=person.headers, json={"nickname": nickname})
        assert changed.json["nickname"] == nickname
        assert changed.json["nickname_status"] == "pass"
        join(client, person, slug, team)
        assert checkin(client, person, slug, "car_free_day").status_code == 201
        people.append(person)
        assert client.get("/api/v1/me", headers=person.headers).json["nickname"] == nickname

    board = client.get(f"{API}/{slug}/leaderboards/individuals").json
    assert {SCRIPT_NICKNAME, SQL_NICKNAME} <= {e["name"] for e in board["entries"]}
    team_board = client.get(f"{API}/{slug}/leaderboards/teams").json
    assert {SCRIPT_TEAM, SQL_TEAM} <= {e["name"] for e in team_board["entries"]}
    detail = client.get(f"{API}/{slug}").json
    assert {t["name"] for t in detail["teams"]} == {SCRIPT_TEAM, SQL_TEAM}

    screen = client.get(f"{API}/{slug}/dashboard")
    assert screen.mimetype == "application/json"
    data = screen.json
    assert {SCRIPT_NICKNAME, SQL_NICKNAME} <= {e["name"] for e in data["top_individuals"]}
    assert {SCRIPT_TEAM, SQL_TEAM} <= {e["name"] for e in data["top_teams"]}
    # JSON escapes nothing into markup: the text is there as sent, not entity-encoded
    assert "&lt;" not in screen.get_data(as_text=True)

    listed = client.get(f"{ADMIN_API}/{slug}/participants", headers=admin.headers).json
    assert {SCRIPT_NICKNAME, SQL_NICKNAME} <= {p["name"] for p in listed["items"]}
    stored = client.get(f"{ADMIN_API}/{slug}/teams", headers=admin.headers).json
    assert {t["name"] for t in stored["items"]} == {SCRIPT_TEAM, SQL_TEAM}


def test_search_text_is_matched_literally(app, client, world):
    """An organiser's search is text, not a pattern or SQL: ``%``, ``_`` and a quote match
    only themselves."""
    slug, admin = world["slug"], world["admin"]
    everyone = client.get(f"{ADMIN_API}/{slug}/participants", headers=admin.headers).json
    assert len(everyone["items"]) == 2
    for query in ("%", "_", "' OR '1'='1", "%' OR 1=1 --", "\\"):
        response = client.get(f"{ADMIN_API}/{slug}/participants", headers=admin.headers,
                              query_string={"q": query})
        assert response.status_code == 200, (query, response.json)
        assert response.json["items"] == [], query
