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


def test_response_schemas_mark_contract_fields_required(client):
    schemas = client.get("/openapi.json").json["components"]["schemas"]
    assert set(schemas["Login"]["required"]) == {"token", "expires_in", "user"}
    assert set(schemas["Me"]["required"]) >= {"id", "nickname", "avatar_url", "on_leaderboard",
                                              "campaigns"}


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
