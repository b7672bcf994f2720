"""A fake WeChat server over real HTTP, run by the tests on 127.0.0.1.

The behaviour of a login depends on the js_code:
- ``ok-<name>``: success for <name> (a stable openid and unionid; a new session_key each login);
- ``err-<errcode>``: that errcode; ``html``: an HTTP 502 HTML page; ``html200``: HTML with 200;
- ``hang``: never answers (until the server stops); ``drip``: a valid reply, one byte a second;
- ``partial``: errcode 0 without session_key.
Every request is counted per js_code; every secret it hands out joins the test secret registry.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.support.secrets import REGISTRY

APPID = "wxfake0000000001"
APP_SECRET = "fake-app-secret-" + base64.b32encode(os.urandom(10)).decode()
ACCESS_TOKEN = "fake-access-token-" + base64.b32encode(os.urandom(10)).decode()


class FakeWeChat:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.session_keys: dict[str, str] = {}  # openid -> newest session_key
        self.text_verdicts: dict[str, str] = {}  # content -> suggest
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        REGISTRY.add(APP_SECRET, "AppSecret")
        REGISTRY.add(ACCESS_TOKEN, "access_token")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeWeChat:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def identity(name: str) -> tuple[str, str]:
        openid, unionid = f"oFAKE-{name}-openid-secret", f"uFAKE-{name}-unionid-secret"
        REGISTRY.add(openid, f"openid of {name}")
        REGISTRY.add(unionid, f"unionid of {name}")
        return openid, unionid

    def login_reply(self, name: str) -> dict:
        openid, unionid = self.identity(name)
        session_key = base64.b64encode(os.urandom(16)).decode()
        REGISTRY.add(session_key, f"session_key of {name}")
        with self.lock:
            self.session_keys[openid] = session_key
        return {"openid": openid, "session_key": session_key, "unionid": unionid}

    def _handler_class(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, data: dict, status: int = 200) -> None:
                self._send(status, json.dumps(data).encode(), "application/json")

            def do_GET(self):
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                if url.path != "/sns/jscode2session":
                    return self._json({"errcode": 40066, "errmsg": "invalid url"}, 404)
                code = query.get("js_code", [""])[0]
                with fake.lock:
                    fake.requests[code] += 1
                if query.get("secret", [""])[0] != APP_SECRET or query.get("appid") != [APPID]:
                    return self._json({"errcode": 40013, "errmsg": "invalid appid"})
                self._login(code)

            def _login(self, code: str) -> None:
                if code.startswith("ok-"):
                    return self._json(fake.login_reply(code[3:]))
                if code.startswith("err-"):
                    errcode = int(code[4:])
                    return self._json({"errcode": errcode, "errmsg": f"error rid: {errcode}"})
                if code == "partial":
                    return self._json({"errcode": 0, "openid": "oPartial-openid-x"})
                if code == "html":
                    return self._send(502, b"<html><body>Bad Gateway</body></html>",
                                      "text/html")
                if code == "html200":
                    return self._send(200, b"<html>maintenance</html>", "text/html")
                if code == "hang":
                    fake.stop_event.wait(30)
                    return None
                if code == "drip":
                    body = json.dumps(fake.login_reply("drip")).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    for byte in body:
                        if fake.stop_event.wait(1):
                            return None
                        try:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                        except OSError:
                            return None
                    return None
                return self._json({"errcode": 40029, "errmsg": "invalid code"})

            def do_POST(self):
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with fake.lock:
                    fake.requests[url.path] += 1
                if url.path == "/cgi-bin/stable_token":
                    if body.get("secret") != APP_SECRET:
                        return self._json({"errcode": 40001, "errmsg": "invalid credential"})
                    return self._json({"access_token": ACCESS_TOKEN, "expires_in": 7200})
                if url.path == "/wxa/msg_sec_check":
                    token = parse_qs(url.query).get("access_token", [""])[0]
                    if token != ACCESS_TOKEN:
                        return self._json({"errcode": 40001, "errmsg": "invalid credential"})
                    suggest = fake.text_verdicts.get(body.get("content"), "pass")
                    return self._json({"errcode": 0, "errmsg": "ok",
                                       "result": {"suggest": suggest, "label": 100}})
                return self._json({"errcode": 40066, "errmsg": "invalid url"}, 404)

        return Handler


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
