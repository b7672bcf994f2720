"""Helpers for the dashboard browser test: Debian's Chromium (installed when missing and root,
else the test is skipped), a Playwright browser on a fresh profile, staff and participants acting
on the real server, and the page's number formats computed from the API's grams.

Not a conftest: the test module imports what it uses (its fixtures included).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import requests

from backend.extensions import db
from backend.services.staff import create_staff
from tests.support.secrets import REGISTRY

CHROMIUM = Path("/usr/bin/chromium")
APT_PACKAGES = ["chromium", "fonts-noto-cjk"]
APT_TIMEOUT_S = 300
# The flags this machine's notes give: headless, no sandbox (root), and no background traffic
# (nothing but the server under test may be asked for anything).
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1920, "height": 1080}
REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "tests" / "artifacts"
STAFF_API = "/api/v1/staff"
ADMIN_API = "/api/v1/admin/campaigns"
CAMPAIGN_API = "/api/v1/campaigns"
REPORTS_API = "/api/v1/reports/campaigns"


# --- Chromium and Playwright --------------------------------------------------------------

def _try_apt_install() -> str | None:
    """Install Chromium and CJK fonts quietly as root; None when done, else why not."""
    if os.geteuid() != 0:
        return "/usr/bin/chromium is missing and the tests do not run as root (apt-get " \
               "install -y --no-install-recommends chromium fonts-noto-cjk)"
    if shutil.which("apt-get") is None:
        return "/usr/bin/chromium is missing and there is no apt-get"
    environ = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *APT_PACKAGES]
    try:
        done = subprocess.run(install, env=environ, capture_output=True, timeout=APT_TIMEOUT_S,
                              check=False)
        if done.returncode != 0:  # the package lists may be missing or stale
            subprocess.run(["apt-get", "update", "-q"], env=environ, capture_output=True,
                           timeout=APT_TIMEOUT_S, check=False)
            done = subprocess.run(install, env=environ, capture_output=True,
                                  timeout=APT_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return f"apt-get install of {APT_PACKAGES} took more than {APT_TIMEOUT_S} s"
    if done.returncode != 0 or not CHROMIUM.exists():
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        return f"apt-get install of {APT_PACKAGES} failed: {' / '.join(tail)}"
    return None


@pytest.fixture(scope="session", name="chromium_path")
def chromium_path_fixture() -> str:
    """/usr/bin/chromium, installed from Debian's packages when missing (as root); skips the
    test, saying why, when it cannot be had. Never downloads a browser of Playwright's own."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                        "(requirements-dev.txt)")
    if not CHROMIUM.exists():
        reason = _try_apt_install()
        if reason:
            print(f"dashboard browser test skipped: {reason}")
            pytest.skip(reason)
    return str(CHROMIUM)


@pytest.fixture(scope="module", name="browser_context")
def browser_context_fixture(chromium_path):
    """A Playwright context of Debian's Chromium on a fresh, empty profile at 1920x1080."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="tanpu-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=chromium_path, headless=True, args=CHROMIUM_FLAGS,
                viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai",
                service_workers="block",
            )
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


# --- people on the real server ------------------------------------------------------------

def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def staff_login(server, app, email: str, role: str = "admin") -> dict[str, str]:
    """An account made by the service, logged in through the real server; its password and
    token join the secret scan. Returns the Authorization header."""
    password = "pw-" + uuid.uuid4().hex
    REGISTRY.add(password, f"password of {email}")
    with app.app_context():
        create_staff(email, password, role, [])
        db.session.commit()
        db.session.remove()
    response = server.post(f"{STAFF_API}/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    REGISTRY.add(token, f"staff token of {email}")
    return bearer(token)


@dataclass
class Person:
    name: str
    nickname: str
    headers: dict[str, str]


def sandbox_person(server, secret_key: str, name: str, nickname: str) -> Person:
    """A sandbox login (its WeChat secrets join the scan) with a nickname that passed the
    sandbox content check."""
    from backend.config import SANDBOX_APPID
    from backend.wechat import SandboxWeChat

    sandbox = SandboxWeChat(secret_key, SANDBOX_APPID, lambda _openid: 0)
    openid, unionid = sandbox.identity(name)
    REGISTRY.add(openid, f"sandbox openid of {name}")
    REGISTRY.add(unionid, f"sandbox unionid of {name}")
    REGISTRY.add(sandbox.session_key(openid, 1), f"sandbox session_key of {name}")
    response = server.login(f"sandbox:{name}")
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    REGISTRY.add(token, f"token of {name}")
    headers = bearer(token)
    patched = requests.patch(server.url("/api/v1/me"), headers=headers,
                             json={"nickname": nickname}, timeout=15)
    assert patched.status_code == 200, patched.text
    assert patched.json()["nickname_status"] == "pass", patched.text
    return Person(name, nickname, headers)


def join(server, person: Person, slug: str, team: str | None) -> None:
    response = server.post(f"{CAMPAIGN_API}/{slug}/join", headers=person.headers,
                           json={"team": team} if team else {})
    assert response.status_code in (200, 201), response.text


def check_in(server, person: Person, slug: str, action: str, on=None, quantity=None) -> dict:
    body: dict = {"action": action}
    if on is not None:
        body["date"] = on.isoformat()
    if quantity is not None:
        body["quantity"] = quantity
    response = server.post(f"{CAMPAIGN_API}/{slug}/checkins", json=body,
                           headers={**person.headers, "Idempotency-Key": uuid.uuid4().hex})
    assert response.status_code == 201, response.text
    return response.json()


# --- the page's number formats (dashboard.js) ---------------------------------------------

def to_mg(grams) -> int:
    """Milligrams of a JSON number of grams (read as Decimal: at most 3 decimals, exact)."""
    value = Decimal(str(grams)) * 1000
    assert value == value.to_integral_value(), f"more than 3 decimals: {grams}"
    return int(value)


def _round_div(value: int, divisor: int) -> int:
    """value / divisor rounded half away from zero."""
    quotient = (Decimal(abs(value)) / divisor).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return -int(quotient) if value < 0 else int(quotient)


def _fixed3(thousandths: int) -> str:
    sign = "-" if thousandths < 0 else ""
    whole, frac = divmod(abs(thousandths), 1000)
    return f"{sign}{whole:,}.{frac:03d}"


def fmt_kg(grams) -> str:
    """kg with 3 decimals: grams rounded half away from zero, integer part grouped by ','."""
    return _fixed3(_round_div(to_mg(grams), 1000))


def fmt_tonnes(grams) -> str:
    """t with 3 decimals: whole kilograms rounded half away from zero."""
    return _fixed3(_round_div(to_mg(grams), 1_000_000))


def fmt_percent(reduction_g, target_g) -> str:
    """Hundredths of a percent, rounded down; "0.00" when the target is 0."""
    target_mg = to_mg(target_g)
    if target_mg <= 0:
        return "0.00"
    hundredths = max(0, to_mg(reduction_g) * 10000 // target_mg)
    return f"{hundredths // 100:,}.{hundredths % 100:02d}"


def fmt_trees(trees) -> str:
    tenths = int((Decimal(str(trees)) * 10).to_integral_value(rounding=ROUND_HALF_UP))
    return f"{tenths // 10:,}.{tenths % 10}"


def fmt_count(value) -> str:
    return f"{int(value):,}"
