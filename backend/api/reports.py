"""Reporter endpoints (an API key scoped to campaigns, or a staff token) and the big screen's
data (public, or a dashboard token)."""

from __future__ import annotations

from flask import Response, g, request, stream_with_context
from flask_smorest import Blueprint

from backend.api.docs import BEARER, documents_errors
from backend.auth import bearer_token, current_principal
from backend.clock import utcnow
from backend.errors import ApiError
from backend.extensions import db
from backend.models import Campaign
from backend.schemas.reports import (
    BreakdownArgs,
    BreakdownSchema,
    DashboardSchema,
    LedgerExportArgs,
    SummarySchema,
    TimeseriesArgs,
    TimeseriesSchema,
    VerificationSchema,
)
from backend.services import reports
from backend.services.campaigns import campaign_doc, find_campaign
from backend.services.credentials import campaign_for_secret
from backend.services.public import published_campaign
from backend.services.verification import latest_verification

bp = Blueprint("reports", __name__, url_prefix="/api/v1/reports/campaigns",
               description="Reporters: totals, series, breakdowns, exports, the verifiable ledger")
dashboard_bp = Blueprint("dashboard", __name__, url_prefix="/api/v1/campaigns",
                         description="The big screen (数据大屏)")

REPORTER = [{"apiKey": []}, *BEARER]
ERRORS = (401, 403, 404)
HEAD_HEADERS = {
    "X-Tanpu-Head-Seq": {"description": "seq of the last line", "schema": {"type": "integer"}},
    "X-Tanpu-Head-Hash": {"description": "hash of the last line (64 zeros when empty)",
                          "schema": {"type": "string"}},
}


def reported_campaign(slug: str) -> Campaign:
    """The campaign if the request's API key or staff token may read it; a key or staff
    account of other campaigns gets 404 (their existence must not leak)."""
    key = request.headers.get("X-Api-Key")
    if key is not None:
        campaign = campaign_for_secret(key.strip(), "api_key")
        if campaign is None:
            raise ApiError(401, "auth.token_invalid")
        if campaign.slug != slug:
            raise ApiError(404, "not_found")
        return campaign
    g.staff = current_principal("staff")
    campaign = find_campaign(slug)
    if campaign is None or not g.staff.manages(campaign):
        raise ApiError(404, "not_found")
    return campaign


def _release() -> None:
    """End the read transaction between the batches of a streamed export (SQLite keeps a
    transaction's lock until it ends)."""
    db.session.rollback()


@bp.route("/<slug>/summary", methods=["GET"])
@bp.response(200, SummarySchema)
@bp.doc(security=REPORTER)
@documents_errors(bp, *ERRORS)
def get_summary(slug):
    """Totals: reduction, target and progress, participants, today's active participants,
    records, per action, and the reduction as trees."""
    return reports.summary(reported_campaign(slug), utcnow())


@bp.route("/<slug>/timeseries", methods=["GET"])
@bp.arguments(TimeseriesArgs(), location="query")
@bp.response(200, TimeseriesSchema)
@bp.doc(security=REPORTER)
@documents_errors(bp, *ERRORS, 422)
def get_timeseries(args, slug):
    """One row per campaign-local day from the start to today, with the running total."""
    return {"rows": reports.timeseries(reported_campaign(slug), utcnow())}


@bp.route("/<slug>/breakdown", methods=["GET"])
@bp.arguments(BreakdownArgs(), location="query")
@bp.response(200, BreakdownSchema)
@bp.doc(security=REPORTER)
@documents_errors(bp, *ERRORS, 422)
def get_breakdown(args, slug):
    """Reduction, records and active participants per action or per team (``by``)."""
    return {"rows": reports.breakdown(reported_campaign(slug), args["by"], utcnow())}


@bp.route("/<slug>/export.csv", methods=["GET"])
@bp.response(200, {"type": "string"}, content_type="text/csv")
@bp.doc(security=REPORTER)
@documents_errors(bp, *ERRORS)
def get_export(slug):
    """Daily aggregates per action and team, streamed as CSV (UTF-8 with BOM). Text cells
    starting with = + - @ are prefixed with ' so that spreadsheets do not run them."""
    campaign = reported_campaign(slug)
    chunks = reports.export_csv(campaign, utcnow(), _release)
    return Response(stream_with_context(chunks), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{slug}.csv"'})


@bp.route("/<slug>/ledger.jsonl", methods=["GET"])
@bp.arguments(LedgerExportArgs(), location="query")
@bp.response(200, {"type": "string"}, content_type="application/x-ndjson",
             headers=HEAD_HEADERS)
@bp.doc(security=REPORTER)
@documents_errors(bp, *ERRORS, 422)
def get_ledger(args, slug):
    """The chain, one entry a line in seq order, up to the head when the export starts (or
    ``upto_seq``): one consistent snapshot. tools/verify_ledger.py recomputes it."""
    campaign = reported_campaign(slug)
    head_seq, head_hash = reports.ledger_head(campaign, args["upto_seq"])
    _release()
    lines = reports.ledger_jsonl(campaign.id, campaign.slug, head_seq, _release)
    return Response(stream_with_context(lines), mimetype="application/x-ndjson", headers={
        "X-Tanpu-Head-Seq": str(head_seq), "X-Tanpu-Head-Hash": head_hash,
        "Content-Disposition": f'attachment; filename="{slug}-ledger.jsonl"'})


@bp.route("/<slug>/ledger/verify", methods=["GET"])
@bp.response(200, VerificationSchema)
@bp.doc(security=REPORTER)
@documents_errors(bp, *ERRORS)
def get_verification(slug):
    """The latest verification of the chain. At most once a minute a request re-hashes the
    entries after the last verified seq (re-checking the stored hash there); a full re-hash
    runs when the last one is an hour old. Every run checks the head and the total against
    the campaign's running totals."""
    return latest_verification(reported_campaign(slug), utcnow())


@dashboard_bp.route("/<slug>/dashboard", methods=["GET"])
@dashboard_bp.response(200, DashboardSchema)
@dashboard_bp.doc(security=[{}, *BEARER])
@documents_errors(dashboard_bp, 404)
def get_dashboard(slug):
    """The big screen's figures in one response. No credential when the campaign's dashboard
    is public; otherwise a dashboard token as the bearer token (missing or wrong: 404)."""
    campaign = published_campaign(slug)
    if not campaign_doc(campaign).dashboard_public:
        try:
            token = bearer_token()
        except ApiError:
            token = None
        if token is None or campaign_for_secret(token, "dashboard_token") != campaign:
            raise ApiError(404, "not_found")
    return reports.dashboard_data(campaign, utcnow())
