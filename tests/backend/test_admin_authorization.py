"""Every route under /api/v1/admin/, read from the app's URL map, checked for every kind of
caller: a new route that forgets its check fails here.

Path variables are filled with real objects made fresh for each request (a DELETE by one caller
must not turn the next caller's request into a 404); a route with a variable this table does not
know fails with a message saying what to add.
"""

from __future__ import annotations

import itertools
import re

import pytest

from backend.clock import utcnow
from backend.extensions import db
from backend.models import Hold, Participation, User
from backend.services.credentials import issue_credential
from backend.services.teams import upsert_teams
from tests.backend.conftest import ADMIN_API, days_from_today
from tests.support.secrets import REGISTRY

CAMPAIGN = "auth-home"
OTHER_CAMPAIGN = "auth-away"
DENIED = (401, 403, 404)
_counter = itertools.count(1)


def admin_routes(app) -> list[tuple[str, str]]:
    """(method, rule) for every rule under /api/v1/admin/."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(ADMIN_API + "/"):
            routes += [(m, rule.rule) for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return sorted(routes, key=lambda r: (r[1], r[0]))


def is_campaign_route(rule: str) -> bool:
    return rule.startswith(f"{ADMIN_API}/campaigns/<slug>")


# Routes outside one campaign: what an organiser (of some campaign) gets there.
ORGANISER_OUTSIDE_CAMPAIGNS = {
    ("GET", f"{ADMIN_API}/campaigns"): "allowed",
    ("POST", f"{ADMIN_API}/campaigns"): 403,
}


@pytest.fixture
def world(app, client, staff_token, create_campaign_doc, login):
    """Two campaigns, an organiser of each, an admin and a participant."""
    admin = staff_token("auth-admin@tanpu.test", "admin")
    for slug in (CAMPAIGN, OTHER_CAMPAIGN):
        response = client.post(f"{ADMIN_API}/campaigns", headers=admin.headers,
                               json=_current_doc(create_campaign_doc, slug))
        assert response.status_code == 201, response.json
    return {
        "none": {},
        "participant": login("auth-participant").headers,
        "organiser": staff_token("home@tanpu.test", "organiser", [CAMPAIGN]).headers,
        "stranger": staff_token("away@tanpu.test", "organiser", [OTHER_CAMPAIGN]).headers,
        "admin": admin.headers,
    }


def _current_doc(create_campaign_doc, slug, **overrides):
    """A running campaign (so that revisions dated after today fit before ends_on)."""
    return create_campaign_doc(slug, starts_on=days_from_today(-3), ends_on=days_from_today(30),
                               **overrides)


def _fill(app, rule: str, slug: str, variable: str):
    """A real object for ``<variable>`` in ``rule`` (made in the campaign ``slug``)."""
    from backend.services.campaigns import find_campaign

    if variable == "slug":
        return slug
    with app.app_context():
        campaign = find_campaign(slug)
        if variable == "key" and "/teams/" in rule:
            key = f"t{next(_counter)}"
            upsert_teams(campaign, [{"key": key, "name": f"队伍{key}"}], "test")
            db.session.commit()
            return key
        if variable == "credential_id":
            kind = {"api-keys": "api_key", "dashboard-tokens": "dashboard_token"}[
                rule.split("/")[-2]]
            credential, secret = issue_credential(campaign, kind, "auth test", "test")
            REGISTRY.add(secret, f"{kind} made for the authorization table")
            db.session.commit()
            return credential.id
        if variable == "pid":
            user = User()
            db.session.add(user)
            db.session.flush()
            pid = f"p{next(_counter):06d}"
            db.session.add(Participation(campaign_id=campaign.id, user_id=user.id, pid=pid,
                                         joined_on=campaign.starts_on))
            db.session.commit()
            return pid
        if variable == "hold_id":
            user = User()
            db.session.add(user)
            db.session.flush()
            participation = Participation(campaign_id=campaign.id, user_id=user.id,
                                          pid=f"h{next(_counter):06d}",
                                          joined_on=campaign.starts_on)
            db.session.add(participation)
            db.session.flush()
            hold = Hold(campaign_id=campaign.id, participation_id=participation.id,
                        source="werun", source_ref=campaign.starts_on.isoformat(),
                        action="walk_steps", local_date=campaign.starts_on,
                        quantity_milli=60_000_000, signals=["steps_over_limit"], status="held",
                        created_dt=utcnow(), updated_dt=utcnow())
            db.session.add(hold)
            db.session.commit()
            return hold.id
    pytest.fail(f"no filler for <{variable}> in {rule}: teach _fill to make one")


def _body(method: str, rule: str, slug: str, create_campaign_doc):
    """A plausible request body: (json, data, content_type)."""
    if method not in ("POST", "PUT", "PATCH"):
        return {}
    tail = rule.rsplit("/", 1)[-1]
    if rule == f"{ADMIN_API}/campaigns":
        return {"json": create_campaign_doc(f"auth-new-{next(_counter)}")}
    if tail == "<slug>":
        return {"json": _current_doc(create_campaign_doc, slug, name="改个名字")}
    if tail == "teams":
        return {"json": [{"key": f"n{next(_counter)}", "name": "新队伍"}]}
    if tail in ("api-keys", "dashboard-tokens"):
        return {"json": {"label": "reporter"}}
    if tail == "publish":
        return {}
    if tail == "disqualify":
        return {"json": {"reason": "同一设备多个账号"}}
    if tail == "revisions":
        return {"json": {"effective_from": days_from_today(10 + next(_counter)),
                         "actions": [{"key": "clean_plate", "daily_cap": 3}]}}
    return {"json": {}}


def _call(app, client, method, rule, slug, headers, create_campaign_doc):
    path = rule
    for variable in re.findall(r"<(?:[^:<>]+:)?([^<>]+)>", rule):
        value = _fill(app, rule, slug, variable)
        path = re.sub(rf"<(?:[^:<>]+:)?{variable}>", str(value), path)
    response = client.open(path, method=method, headers=headers,
                           **_body(method, rule, slug, create_campaign_doc))
    body = response.get_json(silent=True)
    if response.status_code == 201 and isinstance(body, dict) and isinstance(body.get("key"), str):
        REGISTRY.add(body["key"], f"secret issued by {method} {rule}")
    return response


def test_the_table_covers_the_admin_api(app):
    routes = admin_routes(app)
    assert ("POST", f"{ADMIN_API}/campaigns") in routes
    assert ("DELETE", f"{ADMIN_API}/campaigns/<slug>/teams/<key>") in routes
    assert len(routes) >= 15


def test_every_admin_route_checks_who_calls(app, client, world, create_campaign_doc):
    failures = []

    def expect(who, method, rule, wanted, response):
        got = response.status_code
        body = response.get_json(silent=True)
        code = body.get("error", {}).get("code") if isinstance(body, dict) else None
        ok = (got not in DENIED and got < 500) if wanted == "allowed" else (got, code) == wanted
        if not ok:
            failures.append(f"{who:11} {method:6} {rule}: wanted {wanted}, got {got} {code}")

    for method, rule in admin_routes(app):
        def call(who, slug=CAMPAIGN, method=method, rule=rule):
            return _call(app, client, method, rule, slug, world[who], create_campaign_doc)

        expect("none", method, rule, (401, "auth.token_missing"), call("none"))
        expect("participant", method, rule, (403, "auth.forbidden"), call("participant"))
        if is_campaign_route(rule):
            expect("stranger", method, rule, (404, "not_found"), call("stranger"))
            expect("organiser", method, rule, "allowed", call("organiser"))
        else:
            wanted = ORGANISER_OUTSIDE_CAMPAIGNS.get((method, rule))
            if wanted is None:
                failures.append(f"{method} {rule}: say what organisers get in "
                                "ORGANISER_OUTSIDE_CAMPAIGNS")
            else:
                expect("organiser", method, rule,
                       wanted if wanted == "allowed" else (wanted, "auth.forbidden"),
                       call("organiser"))
        expect("admin", method, rule, "allowed", call("admin"))
        if is_campaign_route(rule):
            # An admin manages every campaign, not only those listed on the account.
            expect("admin", method, rule, "allowed", call("admin", slug=OTHER_CAMPAIGN))
    assert not failures, "\n".join(failures)


def test_an_unknown_campaign_is_404_for_the_admin_too(client, world):
    for path in ("/campaigns/no-such-campaign", "/campaigns/no-such-campaign/teams",
                 "/campaigns/no-such-campaign/audit"):
        response = client.get(ADMIN_API + path, headers=world["admin"])
        assert (response.status_code, response.json["error"]["code"]) == (404, "not_found")


def test_an_organiser_lists_only_the_campaigns_it_manages(client, world):
    mine = client.get(f"{ADMIN_API}/campaigns", headers=world["organiser"])
    everything = client.get(f"{ADMIN_API}/campaigns", headers=world["admin"])
    assert [c["slug"] for c in mine.json["items"]] == [CAMPAIGN]
    assert {c["slug"] for c in everything.json["items"]} == {CAMPAIGN, OTHER_CAMPAIGN}


def test_an_organiser_of_another_campaign_learns_nothing_from_the_404(client, world):
    """The answer for a campaign that exists but is not mine equals the one for no campaign."""
    real = client.get(f"{ADMIN_API}/campaigns/{CAMPAIGN}", headers=world["stranger"])
    missing = client.get(f"{ADMIN_API}/campaigns/no-such-campaign", headers=world["stranger"])
    assert real.status_code == missing.status_code == 404
    assert real.json == missing.json
