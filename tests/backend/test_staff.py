"""Staff login: tokens, one answer for every wrong credential, throttling per email and address,
and tokens that only open their own side of the API."""

from backend.extensions import db
from backend.services.staff import create_staff
from tests.backend.conftest import ADMIN_API, error_of
from tests.support.secrets import REGISTRY

LOGIN = "/api/v1/staff/login"


def test_login_returns_a_token_that_opens_the_admin_api(client, add_staff):
    _, password = add_staff("org@tanpu.test", "organiser")
    response = client.post(LOGIN, json={"email": "org@tanpu.test", "password": password})
    assert response.status_code == 200
    assert set(response.json) == {"token", "expires_in", "role"}
    assert response.json["role"] == "organiser"
    assert response.json["expires_in"] > 0
    token = response.json["token"]
    REGISTRY.add(token, "organiser token")
    listed = client.get(f"{ADMIN_API}/campaigns", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    assert listed.json == {"items": [], "next_cursor": None}


def test_admin_login_says_admin(client, add_staff):
    _, password = add_staff("boss@tanpu.test", "admin")
    response = client.post(LOGIN, json={"email": "boss@tanpu.test", "password": password})
    assert response.json["role"] == "admin"
    REGISTRY.add(response.json["token"], "admin token")


def test_email_is_matched_without_case_or_surrounding_spaces(client, add_staff):
    _, password = add_staff("mixed@tanpu.test")
    response = client.post(LOGIN, json={"email": "  Mixed@Tanpu.TEST ", "password": password})
    assert response.status_code == 200
    REGISTRY.add(response.json["token"], "token")


def test_wrong_password_and_unknown_email_get_the_same_answer(client, add_staff):
    _, password = add_staff("known@tanpu.test")
    wrong = client.post(LOGIN, json={"email": "known@tanpu.test", "password": password + "x"})
    unknown = client.post(LOGIN, json={"email": "nobody@tanpu.test", "password": password})
    assert error_of(wrong) == (401, "auth.credentials_invalid")
    assert unknown.status_code == wrong.status_code
    assert unknown.json == wrong.json
    english = client.post(LOGIN, json={"email": "nobody@tanpu.test", "password": "x"},
                          headers={"Accept-Language": "en"})
    assert english.json["error"]["message"] != wrong.json["error"]["message"]


def test_login_body_is_validated(client):
    for body, field in (({"email": "a@b.c"}, "password"), ({"password": "x" * 12}, "email"),
                        ({"email": "a@b.c", "password": "x", "extra": 1}, "extra")):
        response = client.post(LOGIN, json=body)
        assert error_of(response) == (422, "validation.failed")
        assert field in response.json["error"]["fields"]


def _limited_app(make_app):
    """An app with rate limits on (the limiter follows the app built last)."""
    app = make_app(RATE_LIMITS_ENABLED="1")
    return app, app.test_client()


def _account(app, email):
    password = "pw-throttle-" + email.split("@")[0] + "-long"
    REGISTRY.add(password, f"password of {email}")
    with app.app_context():
        create_staff(email, password, "organiser", [])
        db.session.commit()
    return password


def test_repeated_failures_are_throttled_per_email_and_address(make_app):
    app, client = _limited_app(make_app)
    password = _account(app, "target@tanpu.test")
    _account(app, "other@tanpu.test")
    wrong = {"email": "target@tanpu.test", "password": "not-the-password"}
    answers = [client.post(LOGIN, json=wrong) for _ in range(5)]
    assert [error_of(r) for r in answers] == [(401, "auth.credentials_invalid")] * 5
    throttled = client.post(LOGIN, json=wrong)
    assert error_of(throttled) == (429, "rate_limited")
    assert int(throttled.headers["Retry-After"]) > 0
    # While throttled, even the right password from that address waits.
    right = client.post(LOGIN, json={"email": "target@tanpu.test", "password": password})
    assert error_of(right) == (429, "rate_limited")

    # Another email from the same address is answered normally for its first failures.
    other = [client.post(LOGIN, json={"email": "other@tanpu.test", "password": "wrong-one"})
             for _ in range(3)]
    assert [error_of(r) for r in other] == [(401, "auth.credentials_invalid")] * 3

    # The same email from another address is not locked out: no lockout a stranger can cause.
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    response = elsewhere.post(LOGIN, json={"email": "target@tanpu.test", "password": password})
    assert response.status_code == 200
    REGISTRY.add(response.json["token"], "token")


def test_successful_logins_are_not_counted(make_app):
    app, client = _limited_app(make_app)
    password = _account(app, "often@tanpu.test")
    # (Tokens issued within one second are identical, so they join the scan only at the end.)
    tokens = []
    for _ in range(8):
        response = client.post(LOGIN, json={"email": "often@tanpu.test", "password": password})
        assert response.status_code == 200
        tokens.append(response.json["token"])
    for token in tokens:
        REGISTRY.add(token, "token")
    wrong = {"email": "often@tanpu.test", "password": "not-the-password"}
    answers = [client.post(LOGIN, json=wrong).status_code for _ in range(6)]
    assert answers == [401] * 5 + [429]


def test_a_staff_token_is_not_a_participant_token(client, admin):
    response = client.get("/api/v1/me", headers=admin.headers)
    assert error_of(response) == (403, "auth.forbidden")


def test_a_participant_token_does_not_open_the_admin_api(client, login):
    alice = login("alice")
    for method, path in (("get", f"{ADMIN_API}/campaigns"),
                         ("get", f"{ADMIN_API}/campaigns/winter-2022")):
        response = getattr(client, method)(path, headers=alice.headers)
        assert error_of(response) == (403, "auth.forbidden")


def test_a_tampered_staff_token_is_refused(client, admin):
    head, payload, signature = admin.token.split(".")
    forged = f"{head}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    response = client.get(f"{ADMIN_API}/campaigns", headers={"Authorization": f"Bearer {forged}"})
    assert error_of(response) == (401, "auth.token_invalid")
