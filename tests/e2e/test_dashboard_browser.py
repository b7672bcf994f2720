"""The big-screen dashboard in a real browser (issue 7, points 4 and 5): Debian's Chromium driven
by Playwright opens /dashboard/<slug>#token=... on the real server (gunicorn) at 1920x1080.

What is checked:
- every figure the page shows equals the API's, formatted from the API's grams exactly as
  dashboard.js does (tests/e2e/dashboard_helpers.py: kg and t with 3 decimals, rounded half away
  from zero from the exact milligrams; percent rounded down to 0.01 from the milligrams; trees
  with 1 decimal; integers grouped by ','); the summary figures are compared with the reporter
  summary (GET /api/v1/reports/campaigns/<slug>/summary, staff token) when that endpoint exists,
  and with the dashboard JSON's own summary in any case;
- a nickname holding ``<script>alert(1)</script>`` (it passed the sandbox content check) is
  shown as text: no script element added, no dialog;
- after a check-in through the API, the page shows the new figures within 15 s without a
  reload: a marker set on ``window`` after the load is still there, one navigation only;
- nothing is requested from any host but the server under test; no CSP violation;
- without a token, or with a wrong one, the page says 活动不存在或需要访问令牌; a token put in
  the fragment afterwards brings the figures without a reload.
The screenshot is saved to tests/artifacts/dashboard.png.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest

from tests.backend.board_helpers import campaign_document, unique
from tests.backend.conftest import shanghai_today
from tests.conftest import _flush_test_redis
from tests.e2e.dashboard_helpers import (
    ADMIN_API,
    ARTIFACTS,
    CAMPAIGN_API,
    REPORTS_API,
    bearer,
    browser_context_fixture,  # noqa: F401 (the browser_context fixture)
    check_in,
    chromium_path_fixture,  # noqa: F401 (the chromium_path fixture)
    fmt_count,
    fmt_kg,
    fmt_percent,
    fmt_tonnes,
    fmt_trees,
    join,
    sandbox_person,
    staff_login,
)
from tests.support.secrets import REGISTRY

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

UPDATE_WITHIN_S = 15.0
NOT_FOUND_TEXT = "活动不存在或需要访问令牌"
SCRIPT_NICKNAME = "<script>alert(1)</script>"
SUMMARY_FIGURES = ("reduction_g", "target_g", "participants", "active_today", "records", "trees")
ACTIONS = [{"key": key} for key in (
    "car_free_day", "clean_plate", "reusable_bag", "metro_ride", "online_meeting", "cycle_km",
    "clothes_recycle", "e_invoice")]
# Everything the page shows, read in one go (the figures, the rows of the tables and the
# action list, the charts' data, the update markers).
READ_PAGE = """() => {
  const text = id => document.querySelector(`[data-testid="${id}"]`).textContent;
  const rows = id => [...document.querySelectorAll(`[data-testid="${id}"]`)].map(row =>
    Object.fromEntries([...row.querySelectorAll('[data-testid]')].map(
      cell => [cell.dataset.testid, cell.textContent])));
  const chart = id => {
    const c = window.Chart && window.Chart.getChart(id);
    return c ? {labels: c.data.labels, values: c.data.datasets[0].data} : null;
  };
  return {
    figures: Object.fromEntries(["campaign-name", "campaign-period", "reduction-kg",
      "reduction-t", "target-kg", "progress-pct", "trees", "participants", "active-today",
      "records"].map(id => [id, text(id)])),
    teams: rows("top-team-row"),
    individuals: rows("top-individual-row"),
    actions: rows("action-row"),
    cumulative: chart("chart-cumulative"),
    by_action: chart("chart-actions"),
    updated_at: document.body.dataset.updatedAt,
    status_updated_at: document.querySelector('[data-testid="status"]').dataset.updatedAt,
    state: document.body.dataset.state,
  };
}"""
WATCH_CSP = """window.__cspViolations = [];
document.addEventListener("securitypolicyviolation",
  e => window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI));"""


@pytest.fixture(autouse=True)
def _flush_boards():
    """The server mirrors boards into the test Redis database: leave it empty afterwards."""
    yield
    _flush_test_redis()


# --- expectations from the API --------------------------------------------------------------

def exact_json(response) -> dict:
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal)


def expected_view(data: dict) -> dict:
    """What the page must show for a dashboard response (the formats of dashboard_helpers)."""
    summary, campaign = data["summary"], data["campaign"]
    actions = sorted(data["by_action"], key=lambda row: -Decimal(str(row["reduction_g"])))
    return {
        "figures": {
            "campaign-name": campaign["name"],
            "campaign-period": f"{campaign['starts_on']} 至 {campaign['ends_on']}",
            "reduction-kg": fmt_kg(summary["reduction_g"]),
            "reduction-t": fmt_tonnes(summary["reduction_g"]),
            "target-kg": fmt_kg(summary["target_g"]),
            "progress-pct": fmt_percent(summary["reduction_g"], summary["target_g"]),
            "trees": fmt_trees(summary["trees"]),
            "participants": fmt_count(summary["participants"]),
            "active-today": fmt_count(summary["active_today"]),
            "records": fmt_count(summary["records"]),
        },
        "teams": [{"row-rank": str(row["rank"]), "row-name": row["name"],
                   "row-active-members": fmt_count(row["active_members"]),
                   "row-reduction-kg": fmt_kg(row["reduction_g"]),
                   "row-total-kg": fmt_kg(row["total_g"])} for row in data["top_teams"][:10]],
        "individuals": [{"row-rank": str(row["rank"]), "row-name": row["name"],
                         "row-reduction-kg": fmt_kg(row["reduction_g"])}
                        for row in data["top_individuals"][:10]],
        "actions": [{"action-name": row["name"], "action-kg": fmt_kg(row["reduction_g"])}
                    for row in actions],
        "cumulative": {"labels": [row["date"][5:] for row in data["timeseries"]],
                       "values": [float(Decimal(str(row["cumulative_g"])) / 1000)
                                  for row in data["timeseries"]]},
        "by_action": {"labels": [row["name"] for row in actions],
                      "values": [float(Decimal(str(row["reduction_g"])) / 1000)
                                 for row in actions]},
    }


def shown(page_view: dict) -> dict:
    """The part of a page reading that expected_view() predicts."""
    return {key: page_view[key] for key in ("figures", "teams", "individuals", "actions",
                                            "cumulative", "by_action")}


def charts_match(page_view: dict, expected: dict) -> bool:
    for name in ("cumulative", "by_action"):
        chart, want = page_view[name], expected[name]
        if chart is None or chart["labels"] != want["labels"] or \
                len(chart["values"]) != len(want["values"]) or \
                any(abs(a - b) > 1e-9 for a, b in zip(chart["values"], want["values"],
                                                      strict=True)):
            return False
    return True


def view_matches(page_view: dict, expected: dict) -> bool:
    plain = {k: v for k, v in shown(page_view).items() if k not in ("cumulative", "by_action")}
    want = {k: v for k, v in expected.items() if k not in ("cumulative", "by_action")}
    return plain == want and charts_match(page_view, expected)


def wait_for_view(page, expected: dict, timeout_s: float, after: str | None = None) -> dict:
    """Read the page until it shows ``expected`` (and an as_of other than ``after``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        view = page.evaluate(READ_PAGE)
        if view["state"] == "ok" and view["updated_at"] and view["updated_at"] != after \
                and view_matches(view, expected):
            return view
        if time.monotonic() > deadline:
            assert shown(view) == expected, f"the page did not show the API's figures " \
                                            f"within {timeout_s:.0f} s"
            pytest.fail(f"the page's state is {view['state']!r}, as_of {view['updated_at']!r}")
        page.wait_for_timeout(250)


# --- the browser side -----------------------------------------------------------------------

class Watch:
    """A page's requests (every one must stay on the server), dialogs, page errors, console
    errors; requests to any other host are aborted and recorded."""

    def __init__(self, page, base_url: str) -> None:
        self.allowed = urlsplit(base_url).netloc
        self.requests: list[str] = []
        self.outside: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.console_errors: list[str] = []
        self.navigations = 0
        page.route("**/*", self._route)
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda m: self.console_errors.append(m.text)
                if m.type == "error" else None)
        page.on("framenavigated",
                lambda frame: setattr(self, "navigations", self.navigations + 1)
                if frame == page.main_frame else None)

    def _route(self, route) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("http", "https") and parts.netloc == self.allowed:
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def assert_stayed_local(self) -> None:
        assert self.outside == [], f"requests left the server: {self.outside}"
        hosts = {urlsplit(url).netloc for url in self.requests}
        assert hosts == {self.allowed}, hosts
        assert all(urlsplit(url).hostname == "127.0.0.1" for url in self.requests)


def open_page(context, server, path: str):
    page = context.new_page()
    page.add_init_script(WATCH_CSP)
    watch = Watch(page, server.base_url)
    page.goto(server.url(path), wait_until="load")
    return page, watch


def assert_no_secret_on_page(page) -> None:
    leaks = REGISTRY.leaks_in(page.content())
    assert not leaks, f"secret(s) in the page: {leaks}"


# --- the campaign ---------------------------------------------------------------------------

def create_published_campaign(server, admin: dict[str, str], slug: str, starts_days_ago: int):
    today = shanghai_today()
    doc = campaign_document(slug, starts_on=today - timedelta(days=starts_days_ago),
                            ends_on=today + timedelta(days=10), actions=ACTIONS)
    doc["name"] = "低碳冬奥 · 数据大屏测试"
    assert doc["dashboard"] == {"public": False}
    created = server.post(f"{ADMIN_API}", headers=admin, json=doc)
    assert created.status_code == 201, created.text
    published = server.post(f"{ADMIN_API}/{slug}/publish", headers=admin)
    assert published.status_code == 200, published.text


def issue_dashboard_token(server, admin: dict[str, str], slug: str) -> str:
    response = server.post(f"{ADMIN_API}/{slug}/dashboard-tokens", headers=admin,
                           json={"label": "大屏"})
    assert response.status_code == 201, response.text
    token = response.json()["key"]
    assert token.startswith("tpd_")
    REGISTRY.add(token, "dashboard token")
    return token


def dashboard_route_exists(app) -> bool:
    return any(rule.rule == f"{CAMPAIGN_API}/<slug>/dashboard" for rule in app.url_map.iter_rules())


def reporter_summary(server, app, admin: dict[str, str], slug: str) -> dict | None:
    if not any(rule.rule == f"{REPORTS_API}/<slug>/summary" for rule in app.url_map.iter_rules()):
        return None
    return exact_json(server.get(f"{REPORTS_API}/{slug}/summary", headers=admin))


def seed_history(app, slug: str) -> None:
    """A few synthetic participants with entries on the campaign's past days (the time series
    then has several days): `flask campaigns seed`."""
    result = app.test_cli_runner().invoke(args=[
        "campaigns", "seed", slug, "--participants", "5", "--entries-per-participant", "4",
        "--seed", "7"])
    assert result.exit_code == 0, (result.output, result.exception)


# --- tests ----------------------------------------------------------------------------------

def test_dashboard_shows_the_api_figures_and_updates_in_place(sandbox_server, secret_key,
                                                             e2e_app, browser_context):
    if not dashboard_route_exists(e2e_app):
        pytest.skip(f"{CAMPAIGN_API}/<slug>/dashboard is not there yet")
    slug = unique("big-screen")
    admin = staff_login(sandbox_server, e2e_app, f"{slug}@tanpu.test")
    create_published_campaign(sandbox_server, admin, slug, starts_days_ago=6)
    token = issue_dashboard_token(sandbox_server, admin, slug)
    seed_history(e2e_app, slug)

    xss = sandbox_person(sandbox_server, secret_key, unique("xss"), SCRIPT_NICKNAME)
    ming = sandbox_person(sandbox_server, secret_key, unique("ming"), "小明")
    hong = sandbox_person(sandbox_server, secret_key, unique("hong"), "王小红")
    join(sandbox_server, xss, slug, "red")
    join(sandbox_server, ming, slug, "red")
    join(sandbox_server, hong, slug, "blue")
    check_in(sandbox_server, xss, slug, "car_free_day")
    check_in(sandbox_server, xss, slug, "cycle_km", quantity=3.217)
    check_in(sandbox_server, ming, slug, "clean_plate")
    check_in(sandbox_server, ming, slug, "clothes_recycle", quantity=0.375)
    check_in(sandbox_server, hong, slug, "reusable_bag", quantity=2)
    check_in(sandbox_server, hong, slug, "metro_ride")

    api_url = f"{CAMPAIGN_API}/{slug}/dashboard"
    assert sandbox_server.get(api_url).status_code == 404  # not public: a token is needed
    before = exact_json(sandbox_server.get(api_url, headers=bearer(token)))
    assert len(before["timeseries"]) > 1, "the seeded history gives several days"
    assert SCRIPT_NICKNAME in [row["name"] for row in before["top_individuals"]]
    summary = reporter_summary(sandbox_server, e2e_app, admin, slug)
    if summary is not None:
        for figure in SUMMARY_FIGURES:
            assert summary[figure] == before["summary"][figure], figure

    page, watch = open_page(browser_context, sandbox_server, f"/dashboard/{slug}#token={token}")
    first = wait_for_view(page, expected_view(before), UPDATE_WITHIN_S)
    # the nickname is text: shown as typed, no element made of it, no alert
    names = [row["row-name"] for row in first["individuals"]]
    assert SCRIPT_NICKNAME in names
    assert page.evaluate("document.querySelectorAll('script').length") == 2
    assert page.evaluate("document.querySelectorAll('tbody script, tbody *:not(tr):not(td)"
                         ":not(span):not(div)').length") == 0
    assert watch.dialogs == []
    # no avatar is loaded from anywhere: initials stand in
    assert page.evaluate("document.querySelectorAll('img').length") == 0

    page.evaluate("window.__e2eMarker = 'set after load'")
    loaded_at = page.evaluate("window.tanpuDashboard.loadedAt")
    refreshes = page.evaluate("window.tanpuDashboard.refreshes")
    navigations = watch.navigations

    added = check_in(sandbox_server, ming, slug, "online_meeting", quantity=2)
    assert Decimal(str(added["reduction_g"])) > 0
    after = exact_json(sandbox_server.get(api_url, headers=bearer(token)))
    assert fmt_kg(after["summary"]["reduction_g"]) != fmt_kg(before["summary"]["reduction_g"])
    assert after["summary"]["records"] == before["summary"]["records"] + 1
    summary = reporter_summary(sandbox_server, e2e_app, admin, slug)
    if summary is not None:
        for figure in SUMMARY_FIGURES:
            assert summary[figure] == after["summary"][figure], figure

    second = wait_for_view(page, expected_view(after), UPDATE_WITHIN_S, after=first["updated_at"])
    assert second["status_updated_at"] == second["updated_at"] != first["updated_at"]
    assert page.evaluate("window.__e2eMarker") == "set after load", "the page was reloaded"
    assert page.evaluate("window.tanpuDashboard.loadedAt") == loaded_at
    assert page.evaluate("window.tanpuDashboard.refreshes") > refreshes
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert watch.navigations == navigations

    watch.assert_stayed_local()
    assert watch.errors == [] and watch.console_errors == [], (watch.errors,
                                                               watch.console_errors)
    assert page.evaluate("window.__cspViolations") == []
    api_calls = [url for url in watch.requests if urlsplit(url).path == api_url]
    assert len(api_calls) >= 2 and all(urlsplit(url).query == "" for url in api_calls)
    assert all(token not in url for url in watch.requests), "the token left the fragment"
    assert_no_secret_on_page(page)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(1000)  # the charts' update animation
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"))
    page.close()


def test_dashboard_without_a_valid_token_says_so_and_recovers_in_place(
        sandbox_server, e2e_app, browser_context):
    if not dashboard_route_exists(e2e_app):
        pytest.skip(f"{CAMPAIGN_API}/<slug>/dashboard is not there yet")
    slug = unique("big-screen-denied")
    admin = staff_login(sandbox_server, e2e_app, f"{slug}@tanpu.test")
    create_published_campaign(sandbox_server, admin, slug, starts_days_ago=1)
    token = issue_dashboard_token(sandbox_server, admin, slug)

    for path in (f"/dashboard/{slug}", f"/dashboard/{slug}#token=tpd_wrong",
                 "/dashboard/no-such-campaign#token=" + token):
        page, watch = open_page(browser_context, sandbox_server, path)
        page.wait_for_selector('[data-testid="error"]:not([hidden])', timeout=15_000)
        assert page.inner_text('[data-testid="error-text"]') == NOT_FOUND_TEXT
        assert page.evaluate("document.body.dataset.state") == "not-found"
        assert page.evaluate("document.body.dataset.updatedAt") == ""
        watch.assert_stayed_local()
        if path == f"/dashboard/{slug}":
            # the token arrives in the fragment: figures come without a reload
            page.evaluate("window.__e2eMarker = 1")
            page.evaluate(f"location.hash = 'token={token}'")
            page.wait_for_selector('[data-testid="error"][hidden]', state="attached",
                                   timeout=15_000)
            data = exact_json(sandbox_server.get(f"{CAMPAIGN_API}/{slug}/dashboard",
                                                 headers=bearer(token)))
            wait_for_view(page, expected_view(data), UPDATE_WITHIN_S)
            assert page.evaluate("window.__e2eMarker") == 1
            assert page.evaluate("window.__cspViolations") == []
        page.close()
