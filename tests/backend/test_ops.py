"""Liveness and readiness."""

import socket


def test_healthz(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_reports_each_service(app, client):
    response = client.get("/readyz")
    assert response.status_code == 200
    expected_redis = "ok" if app.config["REDIS_URL"] else "unset"
    assert response.json == {"status": "ok", "database": "ok", "redis": expected_redis}


def test_readyz_with_redis_down_is_still_ready(make_app):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{port}/0")
    response = app.test_client().get("/readyz")
    assert response.status_code == 200 and response.json["redis"] == "down"


def test_readyz_is_503_when_the_database_is_unreachable(make_app, tmp_path):
    app = make_app(DATABASE_URL=f"sqlite:///{tmp_path}/missing-dir/none.db")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and response.json["database"] == "down"
