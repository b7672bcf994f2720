"""The big-screen dashboard page (GET /dashboard/<slug>): an HTML shell with a 'self'-only
Content-Security-Policy, its own assets and a vendored Chart.js, nothing from another host."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backend.api.dashboard_page import CONTENT_SECURITY_POLICY

STATIC = Path(__file__).resolve().parents[2] / "backend" / "static" / "dashboard"
TEMPLATE = Path(__file__).resolve().parents[2] / "backend" / "templates" / "dashboard.html"
OWN_ASSETS = ["dashboard.js", "dashboard.css", "favicon.svg"]
# URLs that name no host to fetch from: XML namespaces.
NAMESPACES = {"http://www.w3.org/2000/svg"}
URL = re.compile(r"""(?:https?:)?//[A-Za-z0-9.-]+(?::\d+)?[^\s"'<>)]*""")


def test_page_is_html_with_a_self_only_policy(client):
    response = client.get("/dashboard/winter-2022")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.mimetype_params.get("charset") == "utf-8"
    policy = response.headers["Content-Security-Policy"]
    assert policy == CONTENT_SECURITY_POLICY
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    for name in ("script-src", "style-src", "img-src", "font-src", "connect-src"):
        assert directives[name] == "'self'", name
    assert directives["object-src"] == "'none'"
    assert "unsafe" not in policy and "*" not in policy and "http" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_page_names_its_slug_and_api_and_loads_only_local_assets(client):
    html = client.get("/dashboard/winter-2022").get_data(as_text=True)
    assert 'data-slug="winter-2022"' in html
    assert 'data-api="/api/v1/campaigns/winter-2022/dashboard"' in html
    sources = re.findall(r"""(?:src|href)="([^"]+)\"""", html)
    assert sorted(sources) == sorted(f"/static/dashboard/{name}" for name in
                                     ["chart.umd.min.js", "dashboard.js", "dashboard.css",
                                      "favicon.svg"])
    assert "<script>" not in html and "<style" not in html and " style=" not in html
    assert "活动不存在或需要访问令牌" in html


def test_page_reads_no_database_and_tells_nothing_about_the_campaign(client):
    # any well-formed slug gets the same shell: existence is the JSON endpoint's answer
    known = client.get("/dashboard/winter-2022").get_data(as_text=True)
    unknown = client.get("/dashboard/no-such-campaign").get_data(as_text=True)
    assert known.replace("winter-2022", "X") == unknown.replace("no-such-campaign", "X")


@pytest.mark.parametrize("slug", ["ab", "Winter", "a" * 65, "x_y", "%3Cscript%3E"])
def test_malformed_slug_is_404(client, slug):
    response = client.get(f"/dashboard/{slug}")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


@pytest.mark.parametrize("name, mimetype", [
    ("dashboard.js", "text/javascript"),
    ("dashboard.css", "text/css"),
    ("chart.umd.min.js", "text/javascript"),
    ("favicon.svg", "image/svg+xml"),
])
def test_assets_are_served(client, name, mimetype):
    response = client.get(f"/static/dashboard/{name}")
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.get_data() == (STATIC / name).read_bytes()
    response.close()


def test_vendored_chart_js_has_its_licence_and_version():
    head = (STATIC / "chart.umd.min.js").read_text(encoding="utf-8")[:200]
    version = re.search(r"Chart\.js v(\d+\.\d+\.\d+)", head).group(1)
    assert version.startswith("4.")
    assert f"Chart.js {version}" in (STATIC / "README.md").read_text(encoding="utf-8")
    assert "MIT License" in (STATIC / "chart.js.LICENSE.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", [TEMPLATE, *(STATIC / name for name in OWN_ASSETS)],
                         ids=lambda p: p.name)
def test_own_files_name_no_other_host(path):
    text = path.read_text(encoding="utf-8")
    urls = [url for url in URL.findall(text) if url not in NAMESPACES]
    assert urls == [], f"{path.name} names other hosts: {urls}"
    assert "@import" not in text and "url(" not in text


def test_script_inserts_text_never_html():
    script = (STATIC / "dashboard.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function"):
        assert sink not in script, sink
    assert "textContent" in script and "createTextNode" in script
    # the token comes from the fragment only
    assert "location.hash" in script
    assert "location.search" not in script and "location.pathname" not in script
