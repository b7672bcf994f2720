"""The ledger as an outsider sees it: every row hashes as API.md "Ledger chain" says, any change
to a stored row (or a deleted tail) makes `flask ledger verify` exit 1 naming the first bad seq,
`flask ledger rebuild` restores corrupted projections, and /me adds up the ledger."""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from backend.extensions import db
from backend.models import (
    Campaign,
    CampaignDay,
    CampaignLedger,
    LedgerEntry,
    ParticipantDay,
    Participation,
)
from tests.backend.intake_helpers import (
    campaign_document,
    checkin,
    cli_text,
    create_live_campaign,
    day,
    grams,
    install_clock,
    iso,
    join,
    ledger_cli,
    ledger_rows,
    me,
)

SLUG = "chain-test"
OTHER = "chain-other"
ACTIONS = [{"key": "clean_plate"}, {"key": "metro_ride"}, {"key": "car_free_day"},
           {"key": "cycle_km", "min_quantity": "2"}, {"key": "clothes_recycle"}]
GENESIS = "0" * 64


@pytest.fixture
def clock(monkeypatch):
    return install_clock(monkeypatch)


@pytest.fixture
def chain(app, client, login, clock):
    """Two campaigns; in SLUG two participants with 8 entries over two days (some at 0 mg),
    in OTHER one entry. Returns (ann, bob)."""
    for slug in (SLUG, OTHER):
        create_live_campaign(app, campaign_document(slug, starts_on=day(-5), ends_on=day(10),
                                                    actions=ACTIONS))
    ann, bob = login("ann"), login("bob")
    for person in (ann, bob):
        assert join(client, person, SLUG).status_code == 201
    assert join(client, ann, OTHER).status_code == 201
    sends = [
        (ann, "clean_plate", 1, None, "a1"),
        (ann, "metro_ride", 2, None, "a2"),
        (bob, "cycle_km", 1.5, None, "b1"),  # below the 2 km minimum: 0 mg
        (ann, "car_free_day", None, None, None),
        (bob, "clean_plate", 3, None, "b2"),  # capped at 2
    ]
    for person, action, quantity, on, key in sends:
        assert checkin(client, person, SLUG, action, quantity, on, key).status_code == 201
    clock.set_day(1)
    for person, action, quantity, on, key in [
        (bob, "cycle_km", 0.75, iso(0), "b3"),  # late entry: 2.25 km on day 0 now counts
        (ann, "clothes_recycle", 2.5, None, "a3"),
        (bob, "metro_ride", None, None, "b4"),
    ]:
        assert checkin(client, person, SLUG, action, quantity, on, key).status_code == 201
    assert checkin(client, ann, OTHER, "clean_plate", None, None, "o1").status_code == 201
    return ann, bob


def verify(runner, slug=SLUG):
    result = ledger_cli(runner, "verify", slug)
    return result.exit_code, cli_text(result)


def first_named_seq(text: str) -> int | None:
    found = re.search(r"\bseq\D{0,4}(\d+)", text)
    return int(found.group(1)) if found else None


def tamper(app, at: int, **values) -> None:
    """Change the stored row at seq ``at`` behind the server's back."""
    with app.app_context():
        campaign_id = db.session.scalars(select(Campaign.id).where(Campaign.slug == SLUG)).one()
        result = db.session.execute(update(LedgerEntry).where(
            LedgerEntry.campaign_id == campaign_id, LedgerEntry.seq == at).values(**values))
        assert result.rowcount == 1
        db.session.commit()


def entry(app, seq: int) -> LedgerEntry:
    with app.app_context():
        row = db.session.scalars(select(LedgerEntry).join(Campaign).where(
            Campaign.slug == SLUG, LedgerEntry.seq == seq)).one()
        db.session.expunge(row)
        return row


# -- the chain as API.md defines it -----------------------------------------------------------

def _decimal_string(thousandths: int) -> str:
    whole, frac = divmod(thousandths, 1000)
    return f"{whole}.{frac:03d}".rstrip("0") if frac else str(whole)


def test_every_row_hashes_as_api_md_says(app, runner, chain):
    """Recompute the chain from the stored rows with nothing but API.md's recipe."""
    with app.app_context():
        entries = list(db.session.scalars(select(LedgerEntry).join(Campaign).where(
            Campaign.slug == SLUG).order_by(LedgerEntry.seq)))
        prev = GENESIS
        for entry_ in entries:
            line = {
                "seq": entry_.seq, "campaign": SLUG, "participant": entry_.pid,
                "action": entry_.action, "local_date": entry_.local_date.isoformat(),
                "quantity": _decimal_string(entry_.quantity_milli),
                "counted_quantity": _decimal_string(entry_.counted_milli),
                "factor_g_per_unit": _decimal_string(entry_.factor_milli),
                "reduction_mg": entry_.reduction_mg, "source": entry_.source,
                "source_ref": entry_.source_ref,
                "methodology_version": entry_.methodology_version,
                "created_dt": entry_.created_dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
            canonical = json.dumps(line, sort_keys=True, separators=(",", ":"),
                                   ensure_ascii=False)
            assert entry_.prev_hash == prev
            assert entry_.hash == hashlib.sha256((prev + canonical).encode()).hexdigest()
            prev = entry_.hash
        assert [e.seq for e in entries] == list(range(1, 9))
        head = db.session.scalars(select(CampaignLedger).join(Campaign).where(
            Campaign.slug == SLUG)).one()
        assert (head.head_seq, head.head_hash) == (8, prev)
    code, text = verify(runner)
    assert code == 0, text
    assert prev in text  # the head hash is printed


# -- tampering ---------------------------------------------------------------------------------

TAMPERINGS = {
    "reduction_mg": lambda e, other_pid: {"reduction_mg": e.reduction_mg + 1000},
    "reduction_mg_zeroed": lambda e, other_pid: {"reduction_mg": 0 if e.reduction_mg else 1},
    "local_date": lambda e, other_pid: {"local_date": e.local_date - timedelta(days=1)},
    "participant": lambda e, other_pid: {"pid": other_pid},
    "hash": lambda e, other_pid: {"hash": "f" * 64},
    "prev_hash": lambda e, other_pid: {"prev_hash": "e" * 64},
    "quantity": lambda e, other_pid: {"quantity_milli": e.quantity_milli + 1},
    "counted_quantity": lambda e, other_pid: {"counted_milli": e.counted_milli + 1},
    "factor": lambda e, other_pid: {"factor_milli": e.factor_milli + 1},
    "action": lambda e, other_pid: {"action": "e_invoice"},
    "source": lambda e, other_pid: {"source": "partner"},
    "source_ref": lambda e, other_pid: {"source_ref": "999"},
    "methodology_version": lambda e, other_pid: {"methodology_version": "cn-consumer-v1+r1"},
    "created_dt": lambda e, other_pid: {"created_dt": e.created_dt + timedelta(seconds=1)},
}


def _other_pid(app, pid: str) -> str:
    with app.app_context():
        return db.session.scalars(select(Participation.pid).join(Campaign).where(
            Campaign.slug == SLUG, Participation.pid != pid)).first()


@pytest.mark.parametrize("seq", [1, 4, 8])
@pytest.mark.parametrize("field", sorted(TAMPERINGS))
def test_a_changed_row_fails_verify_at_its_seq(app, runner, chain, field, seq):
    assert verify(runner)[0] == 0
    row = entry(app, seq)
    tamper(app, seq, **TAMPERINGS[field](row, _other_pid(app, row.pid)))
    code, text = verify(runner)
    assert code == 1, text
    assert first_named_seq(text) == seq, text
    # the other campaign's chain is untouched
    assert verify(runner, OTHER)[0] == 0


@pytest.mark.parametrize("seq", [1, 5])
def test_a_renumbered_row_fails_verify_at_the_gap(app, runner, chain, seq):
    tamper(app, seq, seq=100)
    code, text = verify(runner)
    assert code == 1
    assert first_named_seq(text) == seq, text


def _delete(app, seq: int) -> None:
    with app.app_context():
        campaign_id = db.session.scalars(select(Campaign.id).where(Campaign.slug == SLUG)).one()
        db.session.execute(delete(LedgerEntry).where(LedgerEntry.campaign_id == campaign_id,
                                                     LedgerEntry.seq == seq))
        db.session.commit()


def test_deleting_the_last_row_fails_verify(app, runner, chain):
    _delete(app, 8)
    code, text = verify(runner)
    assert code == 1, text
    assert first_named_seq(text) == 8, text


def test_deleting_the_last_row_at_0_mg_fails_verify_too(app, runner, chain, client, clock):
    _, bob = chain
    # a ninth entry that counts nothing (bob's plates of day 0 are at the cap): the sum alone
    # cannot reveal its deletion
    assert checkin(client, bob, SLUG, "clean_plate", 1, iso(0), "over-cap").status_code == 201
    assert ledger_rows(app, SLUG)[-1].reduction_mg == 0
    assert verify(runner)[0] == 0
    _delete(app, 9)
    code, text = verify(runner)
    assert code == 1, text
    assert first_named_seq(text) == 9, text


def test_deleting_a_middle_row_fails_verify_there(app, runner, chain):
    _delete(app, 3)
    code, text = verify(runner)
    assert code == 1
    assert first_named_seq(text) == 3, text


def test_verify_of_an_unknown_campaign_fails(runner, chain):
    result = ledger_cli(runner, "verify", "no-such-campaign")
    assert result.exit_code == 1


def test_moving_an_entry_to_another_participant_fails_verify(app, runner, chain):
    ann, bob = chain
    with app.app_context():
        ids = dict(db.session.execute(select(Participation.user_id, Participation.id).join(
            Campaign).where(Campaign.slug == SLUG)).all())
    row = entry(app, 2)  # ann's metro rides
    assert row.participation_id == ids[ann.user_id]
    tamper(app, 2, participation_id=ids[bob.user_id])
    code, text = verify(runner)
    assert code == 1, text
    assert first_named_seq(text) == 2, text


# -- projections -------------------------------------------------------------------------------

def ledger_figures(app, pid: str) -> dict:
    """/me figures computed from the participant's ledger rows alone."""
    rows = [row for row in ledger_rows(app, SLUG) if row.pid == pid]
    by_action: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_day: dict = defaultdict(int)
    for row in rows:
        by_action[row.action][0] += row.reduction_mg
        by_action[row.action][1] += row.source != "reversal"
        by_day[row.local_date] += row.reduction_mg
    total = sum(row.reduction_mg for row in rows)
    return {
        "reduction_g": grams(total), "points": total // 1000,
        "days_active": sum(1 for mg in by_day.values() if mg > 0),
        "by_action": {a: {"reduction_g": grams(mg), "records": n}
                      for a, (mg, n) in by_action.items()},
    }


def _pid(app, user_id: int) -> str:
    with app.app_context():
        return db.session.scalars(select(Participation.pid).join(Campaign).where(
            Campaign.slug == SLUG, Participation.user_id == user_id)).one()


def _figures(body: dict) -> dict:
    return {key: body[key] for key in ("reduction_g", "points", "days_active", "by_action")}


def test_me_adds_up_the_ledger(app, client, chain):
    ann, bob = chain
    for person in chain:
        assert _figures(me(client, person, SLUG)) == ledger_figures(app, _pid(app, person.user_id))
    # the figures of the hand-made day: ann 144 + max(3700, 104) on day 0, 2.5 kg x 1280 on day 1
    assert me(client, ann, SLUG)["reduction_g"] == 144 + 3700 + 3200
    # bob: 2 plates (288), 2.25 km x 47 on day 0 (105.75), one metro ride on day 1 (52)
    bob_me = me(client, bob, SLUG)
    assert bob_me["reduction_g"] == grams(288_000 + 105_750 + 52_000)
    assert bob_me["days_active"] == 2
    assert bob_me["by_action"]["cycle_km"]["records"] == 2


def test_rebuild_restores_corrupted_projections(app, client, runner, chain):
    before = {person.user_id: _figures(me(client, person, SLUG)) for person in chain}
    with app.app_context():
        campaign_id = db.session.scalars(select(Campaign.id).where(Campaign.slug == SLUG)).one()
        db.session.execute(update(Participation).where(Participation.campaign_id == campaign_id)
                           .values(reduction_mg=123_456_789, records=77))
        db.session.execute(update(ParticipantDay).where(ParticipantDay.campaign_id == campaign_id)
                           .values(reduction_mg=0))
        db.session.execute(update(CampaignDay).where(CampaignDay.campaign_id == campaign_id)
                           .values(reduction_mg=5, records=0))
        db.session.execute(update(CampaignLedger).where(CampaignLedger.campaign_id == campaign_id)
                           .values(total_mg=1))
        db.session.commit()
    for person in chain:
        assert _figures(me(client, person, SLUG)) != before[person.user_id]
    assert verify(runner)[0] == 1  # the projections no longer match the ledger

    result = ledger_cli(runner, "rebuild", SLUG)
    assert result.exit_code == 0, cli_text(result)
    for person in chain:
        assert _figures(me(client, person, SLUG)) == before[person.user_id]
    code, text = verify(runner)
    assert code == 0, text
    rows = ledger_rows(app, SLUG)
    with app.app_context():
        ledger = db.session.get(CampaignLedger, campaign_id)
        assert (ledger.total_mg, ledger.records, ledger.head_seq) == (
            sum(row.reduction_mg for row in rows), 8, 8)
        days = dict(db.session.execute(select(CampaignDay.local_date, CampaignDay.reduction_mg)
                                       .where(CampaignDay.campaign_id == campaign_id)).all())
    by_day: dict = defaultdict(int)
    for row in rows:
        by_day[row.local_date] += row.reduction_mg
    assert {d: mg for d, mg in days.items() if mg} == dict(by_day)


def test_rebuild_of_a_sound_ledger_changes_nothing(client, runner, chain):
    before = {person.user_id: me(client, person, SLUG) for person in chain}
    assert ledger_cli(runner, "rebuild", SLUG).exit_code == 0
    assert {person.user_id: me(client, person, SLUG) for person in chain} == before
    assert verify(runner)[0] == 0
