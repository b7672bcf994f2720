"""WeRun sync (issue 5): end to end through a fake WeChat server over HTTP that hands out the
session_key at login; the test encrypts 31-day step lists with it as wx.getWeRunData would.
Plus, in the sandbox: which campaign a day belongs to, and days outside the campaign."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import date

import pytest
from sqlalchemy import select

from backend.extensions import db
from backend.models import User
from backend.wechat_crypto import encrypt_open_data
from tests.backend.conftest import example_document
from tests.backend.intake_fixtures import (
    encrypt_steps,
    entry_count,
    sandbox_appid,
    session_key_of_user,
    werun,
    werun_days_stored,
)
from tests.backend.intake_helpers import (
    campaign_document,
    create_live_campaign,
    day,
    error_code,
    exact,
    grams,
    install_clock,
    join,
    ledger_cli,
    ledger_rows,
    me,
    pid_of,
)
from tests.support.fake_wechat import APPID
from tests.support.secrets import REGISTRY

SLUG = "werun-e2e"
# The API.md example's walk_steps: cap 10000, minimum 1000, 0.02 g (20 mg) a step.
CAP, MINIMUM, MG_PER_STEP = 10_000, 1_000, 20
STEPS = [4321, 999, 1000, 1001, 9999, 10000, 10001, 15000, 23456, 7000, 8765]
STARTS, JOINED = -20, -10  # the campaign starts on day -20; I join on day -10; today is day 0


def counted(steps: int) -> int:
    return 0 if steps < MINIMUM else min(steps, CAP)


def month_of_steps(today_steps: int) -> dict[date, int]:
    """31 Beijing days, day -30 .. day 0 (today, still growing)."""
    days = {day(offset): STEPS[(offset + 30) % len(STEPS)] for offset in range(-30, 0)}
    days[day(0)] = today_steps
    return days


@pytest.fixture
def clock(monkeypatch):
    return install_clock(monkeypatch)


@pytest.fixture
def fake(fake_wechat):
    """The fake WeChat server, where ``ok-<name>--<n>`` is another fresh code of <name> (a new
    wx.login of the same person) and ``fake.plan[name]`` is the next session_key it hands out
    to <name> (so that data can be encrypted with it before the server exchanges the code)."""
    original = fake_wechat.login_reply
    fake_wechat.plan = {}

    def login_reply(name: str) -> dict:
        person = name.split("--")[0]
        reply = original(person)
        planned = fake_wechat.plan.pop(person, None)
        if planned is not None:
            reply["session_key"] = planned
            with fake_wechat.lock:
                fake_wechat.session_keys[reply["openid"]] = planned
        return reply

    fake_wechat.login_reply = login_reply
    return fake_wechat


@dataclass
class WxPerson:
    user_id: int
    token: str
    openid: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def wx_login(client, fake, code: str) -> WxPerson:
    response = client.post("/api/v1/auth/wechat-login", json={"code": code})
    assert response.status_code == 200, response.json
    REGISTRY.add(response.json["token"], f"token of {code}")
    openid = fake.identity(code[3:].split("--")[0])[0]
    return WxPerson(response.json["user"]["id"], response.json["token"], openid)


@pytest.fixture
def wx(wechat_app, fake, clock):
    """The app on the fake WeChat server, with the API.md example campaign running from day -20
    to day 10, and alice logged in (``ok-alice``) and joined on day -10."""
    doc = example_document()
    doc.update(slug=SLUG, starts_on=day(STARTS).isoformat(), ends_on=day(10).isoformat())
    create_live_campaign(wechat_app, doc)
    client = wechat_app.test_client()
    clock.set_day(JOINED)
    alice = wx_login(client, fake, "ok-alice")
    assert join(client, alice, SLUG).json["joined_on"] == day(JOINED).isoformat()
    clock.set_day(0)
    return wechat_app, client, alice


def key_of(fake, person: WxPerson) -> str:
    return fake.session_keys[person.openid]


def test_a_month_encrypted_with_the_login_session_key_counts_exactly_the_expected_days(
        wx, fake, runner):
    app, client, alice = wx
    days = month_of_steps(4000)
    response = werun(client, alice, SLUG, encrypt_steps(key_of(fake, alice), days, APPID))
    assert response.status_code == 200, response.json
    body = exact(response)

    expected_days, added = [], 0
    for d, steps in sorted(days.items()):
        if d < day(JOINED):  # before the campaign's start (day -20) or before my join
            expected_days.append({"date": d.isoformat(), "steps": steps, "counted_steps": 0,
                                  "reduction_g": 0, "status": "outside"})
            continue
        mg = counted(steps) * MG_PER_STEP
        added += mg
        expected_days.append({"date": d.isoformat(), "steps": steps,
                              "counted_steps": counted(steps), "reduction_g": grams(mg),
                              "status": "counted"})
    assert body == {"days": expected_days, "added_reduction_g": grams(added),
                    "total_reduction_g": grams(added)}
    assert added == sum(counted(days[day(o)]) for o in range(JOINED, 1)) * MG_PER_STEP

    # one entry per counted day (also at 0 mg below the minimum), the exact increments
    rows = ledger_rows(app, SLUG)
    assert [(r.local_date, r.quantity_milli, r.counted_milli, r.factor_milli, r.reduction_mg,
             r.source) for r in rows] == [
        (day(o), days[day(o)] * 1000, counted(days[day(o)]) * 1000, MG_PER_STEP,
         counted(days[day(o)]) * MG_PER_STEP, "werun") for o in range(JOINED, 1)]
    mine = me(client, alice, SLUG)
    assert mine["reduction_g"] == grams(added)
    assert mine["by_action"] == {"walk_steps": {"reduction_g": grams(added), "records": 11}}
    assert mine["days_active"] == sum(1 for o in range(JOINED, 1) if counted(days[day(o)]))
    assert mine["held"] == []
    # every day's highest count is kept, counted or not
    assert werun_days_stored(app, alice.user_id) == days
    assert ledger_cli(runner, "verify", SLUG).exit_code == 0


def test_a_later_sync_appends_only_the_increase_of_today(wx, fake, runner):
    app, client, alice = wx
    key = key_of(fake, alice)
    assert werun(client, alice, SLUG, encrypt_steps(key, month_of_steps(4000), APPID)
                 ).status_code == 200
    before = exact(client.get(f"/api/v1/campaigns/{SLUG}/me", headers=alice.headers))
    entries = entry_count(app, SLUG)

    higher = werun(client, alice, SLUG, encrypt_steps(key, month_of_steps(6500), APPID))
    assert higher.status_code == 200, higher.json
    body = exact(higher)
    statuses = {d["date"]: d["status"] for d in body["days"]}
    assert statuses[day(0).isoformat()] == "counted"
    assert {s for d, s in statuses.items() if d < day(JOINED).isoformat()} == {"outside"}
    assert {s for d, s in statuses.items()
            if day(JOINED).isoformat() <= d < day(0).isoformat()} == {"unchanged"}
    assert body["days"][-1] == {"date": day(0).isoformat(), "steps": 6500,
                                "counted_steps": 6500, "reduction_g": grams(6500 * 20),
                                "status": "counted"}
    assert body["added_reduction_g"] == grams(2500 * 20)
    assert body["total_reduction_g"] == before["reduction_g"] + grams(2500 * 20)
    assert entry_count(app, SLUG) == entries + 1
    last = ledger_rows(app, SLUG)[-1]
    assert (last.local_date, last.quantity_milli, last.counted_milli, last.reduction_mg) == (
        day(0), 2_500_000, 2_500_000, 50_000)

    for steps in (6000, 6500):  # a lower, then an equal count: nothing changes
        same = werun(client, alice, SLUG, encrypt_steps(key, month_of_steps(steps), APPID))
        assert same.status_code == 200, same.json
        body = exact(same)
        assert body["days"][-1] == {"date": day(0).isoformat(), "steps": 6500,
                                    "counted_steps": 6500, "reduction_g": grams(6500 * 20),
                                    "status": "unchanged"}
        assert body["added_reduction_g"] == 0
        assert entry_count(app, SLUG) == entries + 1

    # past the cap: the whole increase is recorded, only what is under the cap counts
    capped = exact(werun(client, alice, SLUG, encrypt_steps(key, month_of_steps(12000), APPID)))
    assert capped["days"][-1]["counted_steps"] == CAP
    assert capped["added_reduction_g"] == grams(3500 * 20)
    last = ledger_rows(app, SLUG)[-1]
    assert (last.quantity_milli, last.counted_milli, last.reduction_mg) == (
        5_500_000, 3_500_000, 70_000)
    mine = me(client, alice, SLUG)
    assert mine["reduction_g"] == before["reduction_g"] + grams((2500 + 3500) * 20)
    assert mine["by_action"]["walk_steps"]["records"] == 13
    assert werun_days_stored(app, alice.user_id)[day(0)] == 12000
    assert ledger_cli(runner, "verify", SLUG).exit_code == 0


def test_after_a_relogin_data_encrypted_with_the_old_key_fails(wx, fake):
    app, client, alice = wx
    old_key = key_of(fake, alice)
    again = wx_login(client, fake, "ok-alice--2")
    assert again.user_id == alice.user_id
    new_key = key_of(fake, alice)
    assert new_key != old_key

    stale = werun(client, again, SLUG, encrypt_steps(old_key, month_of_steps(4000), APPID))
    assert error_code(stale) == (400, "werun.decrypt_failed")
    assert entry_count(app, SLUG) == 0 and werun_days_stored(app, alice.user_id) == {}

    fresh = werun(client, again, SLUG, encrypt_steps(new_key, month_of_steps(4000), APPID))
    assert fresh.status_code == 200, fresh.json
    # the old participant token still works: the key belongs to the person, not the token
    assert werun(client, alice, SLUG, encrypt_steps(new_key, month_of_steps(4000), APPID)
                 ).status_code == 200


def test_a_code_of_another_wechat_user_is_forbidden_and_stores_nothing(wx, fake):
    app, client, alice = wx
    key = key_of(fake, alice)
    body = {**encrypt_steps(key, month_of_steps(4000), APPID), "code": "ok-bob"}
    response = werun(client, alice, SLUG, body)
    assert error_code(response) == (403, "auth.forbidden")
    assert fake.requests["ok-bob"] == 1
    assert entry_count(app, SLUG) == 0 and werun_days_stored(app, alice.user_id) == {}
    bob_openid = fake.identity("bob")[0]
    with app.app_context():
        assert db.session.scalars(select(User).where(User.openid == bob_openid)).all() == []
    # alice's key was not replaced by bob's: her data still decrypts
    assert key_of(fake, alice) == key
    without_code = {k: v for k, v in body.items() if k != "code"}
    assert werun(client, alice, SLUG, without_code).status_code == 200


def test_a_fresh_code_of_the_same_user_is_exchanged_before_decrypting(wx, fake):
    _, client, alice = wx
    old_key = key_of(fake, alice)
    planned = base64.b64encode(os.urandom(16)).decode()
    REGISTRY.add(planned, "planned session_key of alice")
    fake.plan["alice"] = planned
    body = {**encrypt_steps(planned, month_of_steps(4000), APPID), "code": "ok-alice--3"}
    response = werun(client, alice, SLUG, body)
    assert response.status_code == 200, response.json
    assert exact(response)["added_reduction_g"] > 0
    assert fake.requests["ok-alice--3"] == 1
    # the server now holds the new key: the old one fails, and a used code is refused
    stale = werun(client, alice, SLUG, encrypt_steps(old_key, month_of_steps(5000), APPID))
    assert error_code(stale) == (400, "werun.decrypt_failed")
    reused = werun(client, alice, SLUG, body)
    assert error_code(reused) == (401, "auth.code_invalid")
    assert fake.requests["ok-alice--3"] == 1


def test_a_watermark_of_another_appid_is_refused(wx, fake):
    app, client, alice = wx
    body = encrypt_steps(key_of(fake, alice), month_of_steps(4000), "wx00000000000000ff")
    assert error_code(werun(client, alice, SLUG, body)) == (400, "werun.watermark_mismatch")
    assert entry_count(app, SLUG) == 0 and werun_days_stored(app, alice.user_id) == {}


def test_malformed_input_is_a_validation_error(wx, fake):
    app, client, alice = wx
    good = encrypt_steps(key_of(fake, alice), month_of_steps(4000), APPID)
    cases = {
        "encrypted_data": {**good, "encrypted_data": "not base64 at all!"},
        "iv": {**good, "iv": base64.b64encode(os.urandom(12)).decode()},  # not 16 bytes
    }
    for field_name, body in cases.items():
        response = werun(client, alice, SLUG, body)
        assert error_code(response) == (422, "validation.failed"), body
        assert field_name in response.json["error"]["fields"]
    bad_iv = werun(client, alice, SLUG, {**good, "iv": "%%%%"})
    assert error_code(bad_iv) == (422, "validation.failed")
    assert "iv" in bad_iv.json["error"]["fields"]
    missing = werun(client, alice, SLUG, {"encrypted_data": good["encrypted_data"]})
    assert error_code(missing) == (422, "validation.failed")
    assert "iv" in missing.json["error"]["fields"]
    # well-formed base64 that is not data encrypted with my key cannot be decrypted
    garbage = {**good, "encrypted_data": base64.b64encode(os.urandom(64)).decode()}
    assert error_code(werun(client, alice, SLUG, garbage)) == (400, "werun.decrypt_failed")
    # decrypted, but not a step list
    encrypted, iv = encrypt_open_data(key_of(fake, alice), {"stepInfoList": "many"}, APPID)
    assert error_code(werun(client, alice, SLUG, {"encrypted_data": encrypted, "iv": iv})
                      )[0] in (400, 422)
    assert entry_count(app, SLUG) == 0 and werun_days_stored(app, alice.user_id) == {}


# -- the sandbox: campaigns and statuses --------------------------------------------------------

def _steps_campaign(app, slug: str, starts: int, ends: int, late: int = 1, **override) -> None:
    create_live_campaign(app, campaign_document(
        slug, starts_on=day(starts), ends_on=day(ends), late_entry_days=late,
        actions=[{"key": "walk_steps", **override}, {"key": "clean_plate"}]))


def _sync(app, client, person, slug: str, days: dict[date, int]):
    body = encrypt_steps(session_key_of_user(app, person.user_id), days, sandbox_appid(app))
    return werun(client, person, slug, body)


def test_days_after_the_campaign_ended_are_outside(app, client, login, clock):
    _steps_campaign(app, "ended-yesterday", -10, -1)
    alice = login("alice")
    clock.set_day(-5)
    join(client, alice, "ended-yesterday")
    clock.set_day(0)  # intake still open (late_entry_days 1), but day 0 is not a campaign day
    response = _sync(app, client, alice, "ended-yesterday",
                     {day(-6): 5000, day(-5): 5000, day(-1): 5000, day(0): 5000})
    assert response.status_code == 200, response.json
    assert [d["status"] for d in response.json["days"]] == [
        "outside", "counted", "counted", "outside"]
    assert exact(response)["added_reduction_g"] == grams(2 * 5000 * 20)


def test_a_sync_to_a_campaign_i_did_not_join_is_refused(app, client, login, clock):
    _steps_campaign(app, "not-mine", -10, 10)
    alice = login("alice")
    response = _sync(app, client, alice, "not-mine", {day(0): 5000})
    assert error_code(response) == (409, "campaign.not_joined")
    assert werun_days_stored(app, alice.user_id) == {}


def test_the_earlier_joined_campaign_wins_a_day_and_the_other_reports_claimed(
        app, client, login, clock):
    _steps_campaign(app, "steps-first", -10, 10, daily_cap=8000)
    _steps_campaign(app, "steps-second", -10, 10)
    alice = login("alice")
    clock.set_day(-2)
    join(client, alice, "steps-second")  # joined first, though created second
    join(client, alice, "steps-first")
    clock.set_day(0)
    via_first = _sync(app, client, alice, "steps-first", {day(-3): 9000, day(-1): 9000,
                                                          day(0): 9000, day(1): 9000})
    assert via_first.status_code == 200, via_first.json
    # day -3 is before the join; day 1 is in the future: not WeRun data, not listed
    assert [(d["date"], d["status"], d["counted_steps"]) for d in via_first.json["days"]] == [
        (day(-3).isoformat(), "outside", 0), (day(-1).isoformat(), "claimed", 0),
        (day(0).isoformat(), "claimed", 0)]
    assert exact(via_first)["added_reduction_g"] == 0
    via_second = _sync(app, client, alice, "steps-second", {day(-1): 9000, day(0): 9500})
    assert [(d["status"], d["counted_steps"]) for d in via_second.json["days"]] == [
        ("unchanged", 9000), ("counted", 9500)]
    assert me(client, alice, "steps-first")["reduction_g"] == 0
    assert me(client, alice, "steps-second")["reduction_g"] == grams((9000 + 9500) * 20)
    assert entry_count(app, "steps-first") == 0
    assert [r.quantity_milli for r in ledger_rows(app, "steps-second")] == [
        9_000_000, 9_000_000, 500_000]


def test_a_day_is_credited_to_the_campaign_that_counts_steps(app, client, login, clock):
    create_live_campaign(app, campaign_document(
        "no-steps", starts_on=day(-10), ends_on=day(10), actions=[{"key": "clean_plate"}]))
    _steps_campaign(app, "with-steps", -10, 10)
    alice = login("alice")
    join(client, alice, "no-steps")  # joined first, but it does not count steps
    join(client, alice, "with-steps")
    via_other = _sync(app, client, alice, "no-steps", {day(0): 5000})
    assert [d["status"] for d in via_other.json["days"]] == ["claimed"]
    assert me(client, alice, "with-steps")["reduction_g"] == 100


def test_a_disqualified_campaign_gets_no_later_increase_of_its_day(
        app, client, login, clock, admin):
    """DESIGN.md: a WeRun day is credited among the campaigns where the participant is not
    disqualified; disqualification appends reversals and later intake from them is refused."""
    _steps_campaign(app, "steps-a", -10, 10)
    _steps_campaign(app, "steps-b", -10, 10)
    alice = login("alice")
    join(client, alice, "steps-a")
    join(client, alice, "steps-b")
    assert _sync(app, client, alice, "steps-a", {day(0): 5000}).status_code == 200
    pid = pid_of(app, "steps-a", alice.user_id)
    disqualified = client.post(f"/api/v1/admin/campaigns/steps-a/participants/{pid}/disqualify",
                               headers=admin.headers, json={"reason": "test"})
    assert disqualified.status_code == 200, disqualified.json
    entries = entry_count(app, "steps-a")
    response = _sync(app, client, alice, "steps-b", {day(0): 7000})
    assert response.status_code == 200, response.json
    assert entry_count(app, "steps-a") == entries  # nothing more for the disqualified one
    assert ledger_cli(app.test_cli_runner(), "verify", "steps-a").exit_code == 0


def test_a_campaign_whose_intake_closed_gets_no_later_increase_of_its_day(
        app, client, login, clock):
    """DESIGN.md: a WeRun day is credited among the campaigns where intake is open now."""
    _steps_campaign(app, "steps-closing", -10, -2, late=1)  # intake open through day -1
    _steps_campaign(app, "steps-open", -10, 10)
    alice = login("alice")
    clock.set_day(-3)
    join(client, alice, "steps-closing")
    join(client, alice, "steps-open")
    assert [d["status"] for d in _sync(app, client, alice, "steps-closing",
                                       {day(-3): 5000}).json["days"]] == ["counted"]
    clock.set_day(0)  # steps-closing takes no intake any more
    response = _sync(app, client, alice, "steps-open", {day(-3): 7000})
    assert response.status_code == 200, response.json
    assert entry_count(app, "steps-closing") == 1
