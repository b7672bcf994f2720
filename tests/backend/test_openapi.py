"""The served OpenAPI document and docs page."""

import re

from openapi_spec_validator import validate

PUBLIC_ROUTES = {"/healthz", "/readyz"}


def test_openapi_is_valid_openapi_3(client):
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    validate(spec)


def test_every_route_of_the_app_is_documented(app, client):
    spec = client.get("/openapi.json").json
    documented = {
        re.sub(r"\{(\w+)\}", r"<\1>", path) for path in spec["paths"]
    }
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.rule in PUBLIC_ROUTES:
            plain = re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule)
            assert plain in documented, f"{rule.rule} is not in the OpenAPI document"


# API.md: the big screen answers a missing or wrong dashboard token with 404, never 401.
CREDENTIAL_ERRORS_AS_404 = {"/api/v1/campaigns/{slug}/dashboard"}


def test_every_api_operation_documents_its_errors(client):
    spec = client.get("/openapi.json").json
    error_ref = "#/components/schemas/Error"
    for path, operations in spec["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            if method == "parameters":
                continue
            statuses = {s for s in operation["responses"] if s.startswith(("4", "5"))}
            assert statuses, f"{method.upper()} {path} documents no error response"
            if path in CREDENTIAL_ERRORS_AS_404:
                assert "401" not in statuses and "404" in statuses, path
            elif operation.get("security"):
                assert "401" in statuses, f"{method.upper()} {path} lacks 401"
    error = spec["components"]["responses"]["UNAUTHORIZED"]["content"]["application/json"]
    assert error["schema"]["$ref"] == error_ref
    assert spec["components"]["schemas"]["Error"]["required"] == ["error"]


# Every response field API.md lists, by the component that carries it (API.md's wording in the
# comments where a component name differs from the endpoint).
CONTRACT_FIELDS = {
    "Login": {"token", "expires_in", "user"},
    "LoginUser": {"id", "nickname", "avatar_url", "is_new"},
    "Me": {"id", "nickname", "avatar_url", "on_leaderboard", "campaigns"},
    "ExportWeChat": {"openid_held", "unionid_held"},
    "CampaignList": {"items", "next_cursor"},
    "CampaignSummary": {"slug", "name", "starts_on", "ends_on", "status", "target_g",
                        "reduction_g", "progress"},
    "CampaignDetail": {"slug", "name", "description", "timezone", "starts_on", "ends_on",
                       "status", "target_g", "reduction_g", "participants", "progress",
                       "actions", "challenges", "teams"},
    "ActionInfo": {"key", "name", "kind", "unit", "factor_g_per_unit", "daily_cap",
                   "min_quantity", "sources"},
    "ChallengeInfo": {"key", "name", "kind", "target"},
    "TeamInfo": {"key", "name"},
    "Join": {"joined_on", "team"},
    "Checkin": {"id", "action", "date", "quantity", "counted_quantity", "reduction_g", "capped",
                "claimed_by", "day_reduction_g", "total_reduction_g", "points"},
    "CheckinList": {"items", "next_cursor"},
    "Werun": {"days", "added_reduction_g", "total_reduction_g"},
    "WerunDay": {"date", "steps", "counted_steps", "reduction_g", "status"},
    "MyCampaign": {"reduction_g", "points", "rank", "days_active", "by_action", "challenges",
                   "badges", "held"},
    "ActionTotal": {"reduction_g", "records"},
    "ChallengeProgress": {"key", "name", "progress", "target", "completed_at"},
    "Badge": {"key", "name", "awarded_at"},
    "Leaderboard": {"period", "date", "as_of", "entries", "me"},
    "BoardEntry": {"rank", "name", "avatar_url", "reduction_g"},
    "BoardMe": {"rank", "reduction_g"},
    "Progress": {"reduction_g", "target_g", "progress", "participants", "trees", "updated_at"},
    "Dashboard": {"summary", "timeseries", "by_action", "top_teams", "top_individuals",
                  "as_of"},
    "BatchResult": {"accepted", "held", "duplicates", "unmatched", "rejected"},
    "Rejected": {"id", "code"},
    "StaffLogin": {"token", "expires_in", "role"},
    "NewCredential": {"id", "label", "key", "created_at"},
    "AuditList": {"items", "next_cursor"},
    "Summary": {"reduction_g", "target_g", "progress", "participants", "active_today",
                "records", "by_action", "trees", "as_of"},
    "ActionFigure": {"action", "reduction_g", "records"},  # summary.by_action
    "Timeseries": {"rows"},
    "DayRow": {"date", "reduction_g", "cumulative_g", "active_participants",
               "new_participants"},
    "Breakdown": {"rows"},
    "BreakdownRow": {"reduction_g", "records", "participants"},  # and action or team
    "Verification": {"entries", "head_seq", "head_hash", "ok", "first_bad_seq", "verified_at",
                     "full_verified_at"},
    "Ready": {"status", "database", "redis"},
    "ErrorBody": {"code", "message"},
}


def test_response_schemas_mark_contract_fields_required(client):
    schemas = client.get("/openapi.json").json["components"]["schemas"]
    missing = {name: sorted(fields - set(schemas[name].get("required", [])))
               for name, fields in CONTRACT_FIELDS.items()}
    assert not {name: fields for name, fields in missing.items() if fields}


def test_a_stored_campaign_document_has_every_field(client):
    """Responses carrying a campaign document promise all of its fields (defaults filled), not
    only those a request must send."""
    spec = client.get("/openapi.json").json
    stored = spec["components"]["schemas"]["StoredCampaignDocument"]["allOf"][1]
    assert set(stored["required"]) == set(
        spec["components"]["schemas"]["CampaignDocument"]["properties"])
    document = spec["paths"]["/api/v1/admin/campaigns/{slug}"]["get"]["responses"]["200"]
    assert document["content"]["application/json"]["schema"]["$ref"].endswith(
        "/StoredCampaignDocument")


def test_every_api_operation_lists_its_statuses_without_a_catch_all(client):
    """No "default" response; the envelope's errors where they can happen: a database that is
    down (503) anywhere, 415 on any POST, PUT or PATCH, and 400, 413 and 422 wherever a body
    is read."""
    spec = client.get("/openapi.json").json
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            statuses = set(operation["responses"])
            label = f"{method.upper()} {path}"
            assert "default" not in statuses, label
            if not path.startswith("/api/"):
                continue
            assert "503" in statuses, label
            if method in ("post", "put", "patch"):
                assert "415" in statuses, label
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= statuses, label
    unavailable = spec["components"]["responses"]["SERVICE_UNAVAILABLE"]
    assert unavailable["headers"]["Retry-After"]["required"] is True


def test_path_variables_document_their_format(client):
    spec = client.get("/openapi.json").json
    for path, operations in spec["paths"].items():
        parameters = list(operations.get("parameters", []))
        for method, operation in operations.items():
            if method != "parameters":
                parameters += operation.get("parameters", [])
        for parameter in parameters:
            if parameter["in"] == "path":
                schema = parameter["schema"]
                assert {"pattern", "enum", "type"} & set(schema), (path, parameter)
                assert schema.get("type") == "integer" or "pattern" in schema \
                    or "enum" in schema, f"{path}: <{parameter['name']}> has no format"


def test_docs_page_loads_only_local_assets(client):
    page = client.get("/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert not re.search(r"(src|href)=\"https?://", html), "the docs page loads a remote asset"
    for asset in re.findall(r"(?:src|href)=\"(/docs/assets/[^\"]+)\"", html):
        response = client.get(asset)
        response.direct_passthrough = False
        assert response.status_code == 200 and len(response.data) > 1000, asset
        response.close()
