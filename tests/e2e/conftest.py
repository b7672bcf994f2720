"""End-to-end fixtures: the real server (gunicorn, 2 workers x 4 threads, ``wsgi:app``) as a
subprocess on 127.0.0.1, talking to the fake WeChat server over HTTP or playing the sandbox.

One server per module (tests use distinct codes); the database rows are emptied after each test.
The server's whole output (stdout and stderr, with gunicorn's access log) goes to a file that is
scanned for registered secrets after every test and once more, whole, after the server stopped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from backend import create_app
from tests.conftest import _empty_tables, test_environ
from tests.support.fake_wechat import APP_SECRET, APPID, FakeWeChat, wait_for
from tests.support.secrets import REGISTRY

STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 15.0
# Outside settings the server must never inherit: it sees only what test_environ() builds.
INHERITED_NAMES = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "GUNICORN_CMD_ARGS"}
INHERITED_PREFIXES = ("WECHAT_", "TANPU_", "FLASK_")

# Every secret registered during an e2e test. The root conftest forgets a test's secrets when
# the test ends, but a module's server log is scanned whole only when the module ends.
_SEEN_SECRETS: dict[str, str] = {}
_RUNNING: list[LiveServer] = []


@dataclass
class LiveServer:
    """A running gunicorn: its base URL, its log file and, unless sandboxed, the fake WeChat."""

    base_url: str
    log_path: Path
    process: subprocess.Popen
    wechat: FakeWeChat | None = None
    name: str = "server"

    def url(self, path: str) -> str:
        return self.base_url + path

    def post(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", REQUEST_TIMEOUT_S)
        return requests.post(self.url(path), **kwargs)  # noqa: S113 (timeout set above)

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", REQUEST_TIMEOUT_S)
        return requests.get(self.url(path), **kwargs)  # noqa: S113 (timeout set above)

    def login(self, code: str) -> requests.Response:
        return self.post("/api/v1/auth/wechat-login", json={"code": code})

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_environ(app_environ: dict[str, str]) -> dict[str, str]:
    """A copy of os.environ without any outside app setting, plus the app's own environment."""
    environ = {
        name: value for name, value in os.environ.items()
        if name not in INHERITED_NAMES and not name.startswith(INHERITED_PREFIXES)
    }
    environ.update(app_environ)
    environ["FLASK_SKIP_DOTENV"] = "1"
    environ["PYTHONUNBUFFERED"] = "1"
    return environ


def _log_tail(path: Path, lines: int = 40) -> str:
    """The end of a log for a failure message, with registered secrets masked."""
    text = "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    for value in list(REGISTRY._values):
        text = text.replace(value, "<secret>")
    return text


def _wait_until_healthy(process: subprocess.Popen, base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{_log_tail(log_path)}")
        try:
            if requests.get(base_url + "/healthz", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    pytest.fail(f"the server did not answer /healthz in {STARTUP_TIMEOUT_S:.0f} s:\n"
                f"{_log_tail(log_path)}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (gunicorn's graceful stop), then SIGKILL to the group the server started."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT_S)


def _assert_no_secret_in_log(server: LiveServer) -> None:
    """Scan the whole log with every secret registered while the module ran."""
    snapshot = dict(REGISTRY._values)
    try:
        for value, label in _SEEN_SECRETS.items():
            REGISTRY.add(value, label)
        leaks = REGISTRY.leaks_in(server.log_text())
    finally:
        REGISTRY._values = snapshot
    assert not leaks, f"secret(s) in the {server.name} log ({server.log_path}): {leaks}"


@contextmanager
def running_server(tmp_path_factory, name: str, app_environ: dict[str, str], *,
                   workers: int = 2, threads: int = 4):
    """Start gunicorn (``workers`` x ``threads``, gthread) and give the LiveServer; at the end
    stop it and scan its whole log."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    repo_root = Path(__file__).resolve().parents[2]
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp(f"e2e-{name}") / "server.log"
    command = [
        str(gunicorn), "wsgi:app",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
        # A worker still reading an abandoned WeChat call (drip) cannot exit: kill it at 5 s.
        "--graceful-timeout", "5",
        "--access-logfile", "-", "--error-logfile", "-",
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=repo_root, env=_server_environ(app_environ),
            stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(base_url, log_path, process, name=name)
    try:
        _wait_until_healthy(process, base_url, log_path)
        assert wait_for(lambda: "Listening at" in server.log_text(), timeout=5), \
            "the server's output is not captured"
        _RUNNING.append(server)
        yield server
    finally:
        if server in _RUNNING:
            _RUNNING.remove(server)
        _stop(process)
    assert process.returncode is not None
    _assert_no_secret_in_log(server)


@pytest.fixture(scope="module")
def e2e_wechat():
    """A fake WeChat server shared by one module's tests (count requests per code)."""
    fake = FakeWeChat().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, database_url, secret_key, e2e_wechat):
    """The real server against the fake WeChat server (WECHAT_SANDBOX=0)."""
    app_environ = test_environ(
        database_url, SECRET_KEY=secret_key, WECHAT_SANDBOX="0", WECHAT_APPID=APPID,
        WECHAT_SECRET=APP_SECRET, WECHAT_API_BASE=e2e_wechat.base_url,
    )
    with running_server(tmp_path_factory, "wechat", app_environ) as server:
        server.wechat = e2e_wechat
        yield server


@pytest.fixture(scope="module")
def sandbox_server(tmp_path_factory, database_url, secret_key):
    """The real server playing WeChat itself (WECHAT_SANDBOX=1, no AppSecret)."""
    app_environ = test_environ(database_url, SECRET_KEY=secret_key, WECHAT_SANDBOX="1")
    with running_server(tmp_path_factory, "sandbox", app_environ) as server:
        yield server


@pytest.fixture(scope="module")
def e2e_app(database_url, secret_key):
    """An app on the test database, for cleaning it and for looking at what the server did."""
    return create_app(environ=test_environ(database_url, SECRET_KEY=secret_key))


@pytest.fixture(autouse=True)
def _e2e_cleanup(secret_scan, e2e_app):
    """After each test: the server logs hold no secret of the test; the tables are empty.

    Depends on ``secret_scan`` so that it ends first, while this test's secrets are registered.
    """
    yield
    _SEEN_SECRETS.update(REGISTRY._values)
    try:
        for server in _RUNNING:
            leaks = REGISTRY.leaks_in(server.log_text())
            assert not leaks, f"secret(s) in the {server.name} log: {leaks}"
    finally:
        _empty_tables(e2e_app)
