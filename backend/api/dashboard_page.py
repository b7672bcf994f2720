"""The big-screen dashboard page (数据大屏): ``GET /dashboard/<slug>``.

The page is a shell: it reads nothing from the database, so it tells nothing about a campaign
that is not public. Its script (static/dashboard/dashboard.js) reads an optional dashboard
token from ``location.hash`` and polls ``GET /api/v1/campaigns/<slug>/dashboard`` every 5 s.
Everything it loads comes from this server (Content-Security-Policy: 'self' only).
"""

from __future__ import annotations

import re

from flask import Blueprint, make_response, render_template

from backend.errors import ApiError

bp = Blueprint("dashboard_page", __name__)

SLUG_PATTERN = re.compile(r"[a-z0-9-]{3,64}")
REFRESH_SECONDS = 5
# Only this server: no CDN, remote font, remote image (avatars are shown as initials) or
# remote API; no inline script or style, no plugins, not framed elsewhere.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'none'",
    "frame-ancestors 'self'",
])


@bp.route("/dashboard/<slug>", methods=["GET"])
def dashboard_page(slug: str):
    """The dashboard page for ``slug`` (any well-formed slug: whether the campaign exists or
    may be shown is the JSON endpoint's answer, 404 there). A malformed slug is 404."""
    if not SLUG_PATTERN.fullmatch(slug):
        raise ApiError(404, "not_found")
    response = make_response(render_template(
        "dashboard.html", slug=slug, api_url=f"/api/v1/campaigns/{slug}/dashboard",
        refresh_ms=REFRESH_SECONDS * 1000,
    ))
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    # The token lives in the fragment, which browsers never send; no referrer leaves anyway.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-cache"
    return response
