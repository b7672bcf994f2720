"""`flask reports render SLUG --out FILE.html|FILE.pdf` (issue 7 point 6): a self-contained
report whose figures are dashboard_data's, formatted as the dashboard page formats them; the
ledger head and the methodology; a PDF printed by headless Chromium.

The expected strings are computed here independently (Decimal arithmetic on the grams): kg with
3 decimals rounded half up from the grams, t likewise from whole kilograms, percent rounded down
to 0.01, trees with 1 decimal, integers grouped by ','.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from backend.clock import utcnow
from backend.extensions import db
from backend.models import Campaign, CampaignLedger
from backend.reports_render import find_chromium, render_report_html
from backend.services.reports import dashboard_data
from tests.backend.board_helpers import (
    campaign_document,
    checkin,
    create_live_campaign,
    join,
    make_person,
)
from tests.backend.conftest import shanghai_today

SCRIPT_NICKNAME = "<script>alert(1)</script>"
ACTIONS = [{"key": key} for key in ("car_free_day", "clean_plate", "reusable_bag",
                                    "cycle_km", "clothes_recycle", "online_meeting")]


# --- independent formats ----------------------------------------------------------------------

def grams(value) -> Decimal:
    return Decimal(str(value))


def kg(value) -> str:
    return f"{(grams(value) / 1000).quantize(Decimal('0.001'), rounding=ROUND_HALF_UP):,}"


def tonnes(value) -> str:
    return f"{(grams(value) / 1_000_000).quantize(Decimal('0.001'), rounding=ROUND_HALF_UP):,}"


def percent(part, whole) -> str:
    if grams(whole) == 0:
        return "0.00"
    return f"{(grams(part) * 100 / grams(whole)).quantize(Decimal('0.01'), rounding=ROUND_DOWN):,}"


def count(value) -> str:
    return f"{value:,}"


# --- reading the report -----------------------------------------------------------------------

VOID = {"meta", "link", "br", "hr", "img", "input"}


class ReportReader(HTMLParser):
    """The text of every ``data-figure`` element and the cells of every ``data-row`` row."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.figures: dict[str, str] = {}
        self.rows: dict[str, list[dict[str, str]]] = {}
        self.tags: list[str] = []
        self._row_kind = ""
        self._open: list[tuple[str, str, str]] = []  # (tag, kind, name)
        self._text: dict[int, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag in VOID:
            return
        if "data-row" in attrs:
            self._row_kind = attrs["data-row"]
            self.rows.setdefault(self._row_kind, []).append({})
        for kind in ("data-figure", "data-cell"):
            if kind in attrs:
                self._open.append((tag, kind, attrs[kind]))
                self._text[len(self._open)] = []
                return
        self._open.append((tag, "", ""))

    def handle_endtag(self, tag):
        if not self._open or tag in VOID:
            return
        level = len(self._open)
        _tag, kind, name = self._open.pop()
        if kind:
            text = "".join(self._text.pop(level)).strip()
            if kind == "data-figure":
                self.figures[name] = text
            else:
                self.rows[self._row_kind][-1][name] = text

    def handle_data(self, data):
        for level in self._text:
            self._text[level].append(data)


def read_report(html: str) -> ReportReader:
    reader = ReportReader()
    reader.feed(html)
    reader.close()
    return reader


# --- a campaign with activity -----------------------------------------------------------------

@pytest.fixture
def busy_campaign(app, client, login):
    """A published campaign with three participants (one nicknamed <script>...) and
    check-ins in two teams; returns its slug."""
    today = shanghai_today()
    slug = "report-render"
    doc = campaign_document(slug, starts_on=today - timedelta(days=3),
                            ends_on=today + timedelta(days=5), actions=ACTIONS)
    doc["name"] = "低碳冬奥 · 报告"
    create_live_campaign(app, doc)
    xss = make_person(login, client, "xss")
    response = client.patch("/api/v1/me", headers=xss.headers,
                            json={"nickname": SCRIPT_NICKNAME})
    assert response.status_code == 200 and response.json["nickname_status"] == "pass"
    ming, hong = make_person(login, client, "ming"), make_person(login, client, "hong")
    join(client, xss, slug, "red")
    join(client, ming, slug, "red")
    join(client, hong, slug, "blue")
    for person, action, quantity in [(xss, "car_free_day", None), (xss, "cycle_km", 3.217),
                                     (ming, "clean_plate", None),
                                     (ming, "clothes_recycle", 0.375),
                                     (hong, "reusable_bag", 2), (hong, "online_meeting", None)]:
        assert checkin(client, person, slug, action, quantity=quantity).status_code == 201
    return slug


def render(app, slug: str):
    """(the report's HTML, dashboard_data, the ledger head) at one instant."""
    with app.test_request_context():
        campaign = db.session.scalars(select(Campaign).where(Campaign.slug == slug)).one()
        now = utcnow()
        html = render_report_html(campaign, now)
        data = dashboard_data(campaign, now)
        ledger = db.session.get(CampaignLedger, campaign.id)
        head = (ledger.head_seq, ledger.head_hash)
        db.session.remove()
    return html, data, head


# --- tests ------------------------------------------------------------------------------------

def test_report_figures_equal_the_dashboard_data(app, busy_campaign):
    html, data, (head_seq, head_hash) = render(app, busy_campaign)
    report = read_report(html)
    summary = data["summary"]
    assert grams(summary["reduction_g"]) > 0 and head_seq > 0
    assert report.figures == {
        "campaign-name": "低碳冬奥 · 报告",
        "campaign-period": f"{data['campaign']['starts_on']} 至 {data['campaign']['ends_on']}",
        "as-of-local": report.figures["as-of-local"],
        "as-of-utc": data["as_of"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reduction-kg": kg(summary["reduction_g"]),
        "reduction-t": tonnes(summary["reduction_g"]),
        "target-kg": kg(summary["target_g"]),
        "progress-pct": percent(summary["reduction_g"], summary["target_g"]),
        "trees": f"{grams(summary['trees']):,.1f}",
        "participants": count(summary["participants"]),
        "active-today": count(summary["active_today"]),
        "records": count(summary["records"]),
        "head-seq": str(head_seq),
        "head-hash": head_hash,
        "methodology": "cn-consumer-v1",
        "methodology-version": "cn-consumer-v1",
    }
    assert report.figures["participants"] == "3" and report.figures["records"] == "6"
    assert report.rows["day"] == [
        {"date": row["date"].isoformat(), "reduction-kg": kg(row["reduction_g"]),
         "cumulative-kg": kg(row["cumulative_g"]), "active": str(row["active_participants"]),
         "new": str(row["new_participants"])} for row in data["timeseries"]]
    assert report.rows["action"] == [
        {"name": row["name"], "reduction-kg": kg(row["reduction_g"]),
         "share": percent(row["reduction_g"], summary["reduction_g"]),
         "records": str(row["records"]), "participants": str(row["participants"])}
        for row in data["by_action"]]
    assert report.rows["team"] == [
        {"rank": str(row["rank"]), "name": row["name"],
         "active-members": str(row["active_members"]), "reduction-kg": kg(row["reduction_g"]),
         "total-kg": kg(row["total_g"])} for row in data["top_teams"]]
    assert report.rows["individual"] == [
        {"rank": str(row["rank"]), "name": row["name"], "reduction-kg": kg(row["reduction_g"])}
        for row in data["top_individuals"]]
    assert {row["name"] for row in report.rows["team"]} == {"红队", "蓝队"}


def test_report_is_self_contained_and_shows_names_as_text(app, busy_campaign):
    html, data, _head = render(app, busy_campaign)
    report = read_report(html)
    assert SCRIPT_NICKNAME in [row["name"] for row in report.rows["individual"]]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "script" not in report.tags and "img" not in report.tags
    assert "link" not in report.tags and "iframe" not in report.tags
    assert re.findall(r"(?:https?:)?//[A-Za-z0-9.-]+", html) == []
    assert "url(" not in html and "@import" not in html
    assert "default-src 'none'" in html
    # the charts are inline SVG: one point per day, one bar per action with a reduction
    assert report.tags.count("svg") == 3
    assert report.tags.count("circle") == len(data["timeseries"])
    assert report.tags.count("rect") == 2 + sum(
        1 for row in data["by_action"] if grams(row["reduction_g"]) > 0)


def test_cli_writes_the_html_report(app, runner, busy_campaign, tmp_path):
    out = tmp_path / "sub" / "report.html"
    result = runner.invoke(args=["reports", "render", busy_campaign, "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.output.strip() == f"report {busy_campaign}: {out}"
    figures = read_report(out.read_text(encoding="utf-8")).figures
    html, _data, _head = render(app, busy_campaign)
    expected = read_report(html).figures
    for name in ("reduction-kg", "target-kg", "progress-pct", "records", "head-hash"):
        assert figures[name] == expected[name], name


def test_cli_refuses_an_unknown_campaign_and_an_unknown_format(runner, busy_campaign,
                                                               tmp_path):
    unknown = runner.invoke(args=["reports", "render", "no-such", "--out",
                                  str(tmp_path / "r.html")])
    assert unknown.exit_code == 1 and "no campaign 'no-such'" in unknown.output
    wrong = runner.invoke(args=["reports", "render", busy_campaign, "--out",
                                str(tmp_path / "r.docx")])
    assert wrong.exit_code == 1 and ".html or .pdf" in wrong.output
    assert list(tmp_path.iterdir()) == []


def test_report_of_a_campaign_without_activity(app, runner, tmp_path):
    today = shanghai_today()
    create_live_campaign(app, campaign_document("report-empty", starts_on=today,
                                                ends_on=today + timedelta(days=3)))
    out = tmp_path / "empty.html"
    result = runner.invoke(args=["reports", "render", "report-empty", "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    report = read_report(out.read_text(encoding="utf-8"))
    assert report.figures["reduction-kg"] == "0.000"
    assert report.figures["progress-pct"] == "0.00"
    assert report.figures["head-seq"] == "0"
    assert "individual" not in report.rows and "暂无个人数据" in out.read_text(encoding="utf-8")


def test_cli_writes_a_pdf_through_chromium(runner, busy_campaign, tmp_path):
    if find_chromium() is None:
        reason = "no Chromium (Debian package chromium): the PDF cannot be printed"
        print(reason)
        pytest.skip(reason)
    out = tmp_path / "report.pdf"
    result = runner.invoke(args=["reports", "render", busy_campaign, "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 10_000
    assert b"%%EOF" in data[-1024:]
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]


def test_cli_pdf_without_chromium_fails_readably(runner, busy_campaign, tmp_path, monkeypatch):
    monkeypatch.setattr("backend.reports_render.find_chromium", lambda: None)
    out = tmp_path / "report.pdf"
    result = runner.invoke(args=["reports", "render", busy_campaign, "--out", str(out)])
    assert result.exit_code == 1 and "Chromium" in result.output
    assert not out.exists()


def test_formats_match_the_dashboard_script():
    """The formats documented in static/dashboard/dashboard.js, checked on edge values."""
    from backend.reports_render import fmt_kg, fmt_percent, fmt_tonnes, fmt_trees

    assert fmt_kg(0) == "0.000" and fmt_kg(0.5) == "0.001" and fmt_kg(0.499) == "0.000"
    assert fmt_kg(1234567.5) == "1,234.568" and fmt_kg(-2.5) == "-0.003"
    assert fmt_tonnes(1_234_567_499) == "1,234.567" and fmt_tonnes(1_234_500) == "1.235"
    assert fmt_tonnes(499.999) == "0.000"
    assert fmt_percent(1, 3) == "33.33" and fmt_percent(2, 3) == "66.66"
    assert fmt_percent(300, 100) == "300.00" and fmt_percent(5, 0) == "0.00"
    assert fmt_trees(12.3) == "12.3" and fmt_trees(0) == "0.0" and fmt_trees(1234.5) == "1,234.5"
    for value in ("0", "0.001", "7.5", "151.199", "123456.789"):
        assert fmt_kg(Decimal(value)) == kg(value)
        assert fmt_tonnes(Decimal(value) * 1000) == tonnes(Decimal(value) * 1000)
