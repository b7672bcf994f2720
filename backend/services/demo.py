"""The demo: the 低碳冬奥 preset shifted so that today is its eighth day, with sample people
and a week of activity recorded through the real intake services (so the ledger, projections
and boards are exactly what real use would give)."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta

from backend.extensions import db
from backend.models import User
from backend.services.campaigns import (
    create_campaign,
    find_campaign,
    parse_document,
    publish_campaign,
)
from backend.services.checkins import record_checkin
from backend.services.membership import join_campaign, require_participation
from campaigns.calendar import local_today, zone
from campaigns.document import dump_campaign
from campaigns.presets import DEMO_PRESET, load_preset, shift_document

DEMO_ACTOR = "demo"
SAMPLE_PEOPLE = 24
NICKNAMES = ("雪花", "冰墩墩迷", "绿色出行者", "光盘侠", "骑行少年", "地铁通勤", "低碳小王",
             "环保达人", "晨跑者", "公交迷", "Lily", "Chen", "小雨", "阿杰", "Momo", "老李")
# (action, quantity, probability on a given day)
HABITS = (("clean_plate", 1, 0.7), ("clean_plate", 1, 0.4), ("metro_ride", 2, 0.5),
          ("bus_ride", 1, 0.3), ("cycle_km", 3.5, 0.3), ("reusable_cup", 1, 0.4),
          ("car_free_day", 1, 0.25), ("e_invoice", 2, 0.3), ("online_meeting", 1, 0.15))


def _person(wechat, index: int) -> User:
    """A sample person; in the sandbox, the same one ``sandbox:demo-NN`` logs in as."""
    name = f"demo-{index:02d}"
    identity = getattr(wechat, "identity", None)
    openid, unionid = identity(name) if identity else (f"demo:{name}", None)
    user = User(openid=openid, unionid=unionid, nickname=NICKNAMES[index % len(NICKNAMES)],
                nickname_status="pass", login_count=0)
    db.session.add(user)
    db.session.flush()
    return user


def load_demo(wechat, now: datetime) -> str | None:
    """Create the demo campaign with sample activity; None when it is already loaded."""
    preset = load_preset(DEMO_PRESET)
    if find_campaign(preset.slug) is not None:
        return None
    doc = shift_document(preset, local_today(now, preset.timezone))
    campaign = create_campaign(parse_document(dump_campaign(doc)), DEMO_ACTOR)
    publish_campaign(campaign, DEMO_ACTOR)
    rng = random.Random(2022)  # noqa: S311 (sample data, not security)
    teams = [team.key for team in doc.teams.teams]
    people = [_person(wechat, index) for index in range(1, SAMPLE_PEOPLE + 1)]
    days = (local_today(now, doc.timezone) - doc.starts_on).days + 1
    for offset in range(days):
        day = doc.starts_on + timedelta(days=offset)
        noon = min(datetime.combine(day, time(12, 0), zone(doc.timezone)), now)
        for index, user in enumerate(people):
            if index % days == offset:
                join_campaign(user, campaign, None, teams[index % len(teams)]
                              if index % 4 else None, noon)
            if index % days <= offset:
                _one_day(user, campaign, day, noon, rng)
    return campaign.slug


def _one_day(user: User, campaign, day, now: datetime, rng: random.Random) -> None:
    for action, quantity, chance in HABITS:
        if rng.random() < chance:
            record_checkin(user.id, campaign, require_participation(campaign, user), action,
                           quantity, day, True, now)
