"""Every error carries the contract's body: a stable code and a message in the asked language."""

import pytest

from backend.errors import flatten_messages


def assert_error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    assert set(response.json) == {"error"}
    assert response.json["error"]["code"] == code
    assert response.json["error"]["message"]
    return response.json["error"]


def test_not_found_in_chinese_by_default(client):
    error = assert_error(client.get("/api/v1/no-such-thing"), 404, "not_found")
    assert error["message"] == "资源不存在"


def test_english_on_request(client):
    error = assert_error(client.get("/api/v1/x", headers={"Accept-Language": "en-US,en;q=0.9"}),
                         404, "not_found")
    assert error["message"] == "Not found"


def test_malformed_json_is_400(client):
    response = client.post("/api/v1/auth/wechat-login", data='{"code": ',
                           content_type="application/json")
    assert_error(response, 400, "request.malformed")


def test_wrong_content_type_is_415(client):
    response = client.post("/api/v1/auth/wechat-login", data="code=x",
                           content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "request.unsupported_media_type")


def test_method_not_allowed_is_405(client):
    error = assert_error(client.delete("/api/v1/auth/wechat-login"), 405,
                         "request.method_not_allowed")
    assert "fields" not in error


def test_body_over_one_mebibyte_is_413(client):
    body = '{"code": "' + "x" * (1024 * 1024) + '"}'
    response = client.post("/api/v1/auth/wechat-login", data=body, content_type="application/json")
    assert_error(response, 413, "request.too_large")


def test_validation_names_each_field_without_location(client):
    response = client.post("/api/v1/auth/wechat-login", json={"code": "", "extra": 1})
    error = assert_error(response, 422, "validation.failed")
    assert set(error["fields"]) == {"code", "extra"}
    assert all(isinstance(m, list) and m for m in error["fields"].values())


def test_validation_of_a_missing_body(client):
    error = assert_error(client.post("/api/v1/auth/wechat-login"), 422, "validation.failed")
    assert "code" in error["fields"]


def test_unexpected_exception_is_a_500_without_trace(make_app, caplog):
    app = make_app({"PROPAGATE_EXCEPTIONS": False})

    @app.route("/api/v1/test-boom")
    def boom():
        raise RuntimeError("-".join(["runtime", "secret", "detail"]))

    response = app.test_client().get("/api/v1/test-boom")
    error = assert_error(response, 500, "server.error")
    assert "runtime-secret-detail" not in response.get_data(as_text=True)
    assert error["message"] == "服务器内部错误，请稍后再试"
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "RuntimeError" in logged and "runtime-secret-detail" not in logged


@pytest.mark.parametrize(
    ("messages", "flat"),
    [
        ({"actions": {2: {"key": ["Unknown action."]}}}, {"actions.2.key": ["Unknown action."]}),
        ({"nickname": ["Too long."]}, {"nickname": ["Too long."]}),
        (["Invalid input."], {"_schema": ["Invalid input."]}),
        ({"_schema": ["Bad."], "a": {"b": {"c": ["x", "y"]}}},
         {"_schema": ["Bad."], "a.b.c": ["x", "y"]}),
    ],
)
def test_flatten_messages_gives_dotted_paths(messages, flat):
    assert flatten_messages(messages) == flat
