"""The one module that talks to WeChat's server API (or plays it, in the sandbox).

Every call has a connect timeout of 2 s and one overall deadline of 5 s; errcodes map to the
contract's errors (API.md). Nothing here logs or raises a URL, a code, the AppSecret, an openid
or a session_key: the query string of code2Session carries the secret and the code.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from backend.errors import ApiError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 2.0
DEADLINE_S = 5.0
RETRY_AFTER_RATE_LIMITED = 60
RETRY_AFTER_UNAVAILABLE = 5
CODE_INVALID_ERRCODES = {40029, 40163}
TOKEN_EXPIRED_ERRCODES = {40001, 40014, 42001}
TEXT_VERDICTS = ("pass", "review", "risky")

SANDBOX_NAME = re.compile(r"sandbox:([A-Za-z0-9_-]{1,32})")
SANDBOX_ERROR = re.compile(r"sandbox:error:(-?[0-9]{1,9})")


@dataclass(frozen=True)
class WeChatSession:
    """What code2Session returns. The secrets are kept out of repr so they never reach a log."""

    openid: str = field(repr=False)
    session_key: str = field(repr=False)
    unionid: str | None = field(default=None, repr=False)


def wechat_unavailable() -> ApiError:
    return ApiError(503, "wechat.unavailable",
                    headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE)})


def login_error_for(errcode: int) -> ApiError:
    """The contract's error for a code2Session errcode."""
    if errcode in CODE_INVALID_ERRCODES:
        return ApiError(401, "auth.code_invalid")
    if errcode == 45011:
        return ApiError(429, "auth.wechat_rate_limited",
                        headers={"Retry-After": str(RETRY_AFTER_RATE_LIMITED)})
    if errcode == 40226:
        return ApiError(403, "auth.user_blocked")
    log.warning("wechat answered errcode %s", errcode)
    return wechat_unavailable()


def _session_from(data: dict) -> WeChatSession:
    errcode = data.get("errcode") or 0
    if not isinstance(errcode, int):
        try:
            errcode = int(errcode)
        except (TypeError, ValueError):
            raise wechat_unavailable() from None
    if errcode != 0:
        raise login_error_for(errcode)
    openid, session_key = data.get("openid"), data.get("session_key")
    if not (isinstance(openid, str) and openid and isinstance(session_key, str) and session_key):
        log.warning("wechat login reply without openid or session_key")
        raise wechat_unavailable()
    unionid = data.get("unionid")
    return WeChatSession(openid, session_key, unionid if isinstance(unionid, str) else None)


def _surely_not_sent(error: requests.RequestException) -> bool:
    """True when the request cannot have reached WeChat (refused, DNS, connect timeout)."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    if isinstance(error, requests.ConnectionError):
        reason = getattr(error.args[0], "reason", None) if error.args else None
        return isinstance(reason, NewConnectionError)
    return False


class _TrackedCall:
    """The socket of one WeChat request, so that the caller can cut it at the deadline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._aborted = False

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self._aborted:
                self._shutdown()

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)


_current = threading.local()


class _TrackedHTTPConnection(urllib3.connection.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        call = getattr(_current, "call", None)
        if call is not None:
            call.attach(self.sock)


class _TrackedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        call = getattr(_current, "call", None)
        if call is not None:
            call.attach(self.sock)


class _TrackedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


class _TrackedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _TrackedHTTPPool, "https": _TrackedHTTPSPool,
        }


def _send(call: _TrackedCall, method: str, url: str, **kwargs) -> requests.Response:
    """One request on a fresh connection whose socket ``call`` can shut down."""
    _current.call = call
    try:
        with requests.Session() as session:
            adapter = _TrackedAdapter(max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            response = session.request(method, url, **kwargs)
            _ = response.content  # the whole body, inside the deadline
            return response
    finally:
        _current.call = None


class WeChatClient:
    """code2Session and the content check over HTTP against ``WECHAT_API_BASE``."""

    def __init__(self, base_url: str, appid: str, secret: str, max_workers: int = 16) -> None:
        self.base_url = base_url.rstrip("/")
        self.appid = appid
        self._secret = secret
        self._max_workers = max_workers
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._access_token: tuple[str, float] | None = None

    def _pool(self) -> ThreadPoolExecutor:
        # Created on first use, so a forking server creates it in each worker.
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._max_workers, "wechat")
            return self._executor

    def _call(self, method: str, path: str, **kwargs) -> dict:
        """The JSON object WeChat answered, within the deadline; raises 503 wechat.unavailable.

        The request runs in a worker thread; at the deadline its socket is shut down, so a
        server that answers slowly (even a byte at a time) frees the thread at once.
        """
        deadline = time.monotonic() + DEADLINE_S
        for attempt in (1, 2):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            call = _TrackedCall()
            future = self._pool().submit(
                _send, call, method, self.base_url + path,
                timeout=(min(CONNECT_TIMEOUT_S, remaining), remaining), **kwargs,
            )
            try:
                response = future.result(timeout=remaining)
            except FutureTimeout:
                call.abort()
                log.warning("wechat %s: no answer within the deadline", path)
                raise wechat_unavailable() from None
            except requests.RequestException as error:
                if attempt == 1 and _surely_not_sent(error):
                    continue
                log.warning("wechat %s: %s", path, type(error).__name__)
                raise wechat_unavailable() from None
            if response.status_code >= 500:
                log.warning("wechat %s: HTTP %s", path, response.status_code)
                raise wechat_unavailable()
            try:
                data = response.json()
            except ValueError:
                data = None
            if not isinstance(data, dict):
                log.warning("wechat %s: reply is not a JSON object", path)
                raise wechat_unavailable()
            return data
        raise wechat_unavailable()

    def code2session(self, code: str) -> WeChatSession:
        """Exchange a wx.login code; raises the contract's ApiError for every failure."""
        data = self._call("GET", "/sns/jscode2session", params={
            "appid": self.appid, "secret": self._secret, "js_code": code,
            "grant_type": "authorization_code",
        })
        return _session_from(data)

    def _token(self, force: bool = False) -> str:
        """The stable access_token (same token for every worker in normal mode), cached."""
        cached = self._access_token
        if cached and not force and cached[1] > time.monotonic():
            return cached[0]
        data = self._call("POST", "/cgi-bin/stable_token", json={
            "grant_type": "client_credential", "appid": self.appid, "secret": self._secret,
            "force_refresh": False,
        })
        token, expires_in = data.get("access_token"), data.get("expires_in")
        if not isinstance(token, str) or not isinstance(expires_in, int):
            raise wechat_unavailable()
        self._access_token = (token, time.monotonic() + max(expires_in - 60, 30))
        return token

    def check_text(self, openid: str, content: str) -> str:
        """msgSecCheck v2 (scene 1, profile): ``pass``, ``review`` or ``risky``.

        Raises 503 wechat.unavailable when WeChat cannot give a verdict.
        """
        body = {"version": 2, "scene": 1, "openid": openid, "content": content}
        for force in (False, True):
            data = self._call("POST", "/wxa/msg_sec_check",
                              params={"access_token": self._token(force)}, json=body)
            errcode = data.get("errcode") or 0
            if errcode in TOKEN_EXPIRED_ERRCODES and not force:
                continue
            suggest = (data.get("result") or {}).get("suggest")
            if errcode == 0 and suggest in TEXT_VERDICTS:
                return suggest
            log.warning("wechat msg_sec_check: errcode %s", errcode)
            break
        raise wechat_unavailable()


class SandboxWeChat:
    """Plays WeChat locally for development and demos (WECHAT_SANDBOX=1).

    ``sandbox:<name>`` logs in a stable openid for that name with a session_key derived from
    SECRET_KEY, the openid and a login counter (each login rotates it, as WeChat does);
    ``sandbox:error:<errcode>`` answers that WeChat error; any other code is invalid.
    """

    def __init__(self, secret_key: str, appid: str, next_login_number) -> None:
        self._secret_key = secret_key.encode()
        self.appid = appid
        self._next_login_number = next_login_number

    @staticmethod
    def is_sandbox_code(code: str) -> bool:
        return bool(SANDBOX_NAME.fullmatch(code) or SANDBOX_ERROR.fullmatch(code))

    def _derive(self, label: str) -> bytes:
        return hmac.new(self._secret_key, label.encode(), hashlib.sha256).digest()

    def identity(self, name: str) -> tuple[str, str]:
        """The (openid, unionid) the sandbox gives ``name``."""
        openid = "o" + base64.urlsafe_b64encode(self._derive(f"openid:{name}")).decode()[:27]
        unionid = "u" + base64.urlsafe_b64encode(self._derive(f"unionid:{name}")).decode()[:27]
        return openid, unionid

    def session_key(self, openid: str, login_number: int) -> str:
        return base64.b64encode(self._derive(f"session:{openid}:{login_number}")[:16]).decode()

    def code2session(self, code: str) -> WeChatSession:
        error = SANDBOX_ERROR.fullmatch(code)
        if error:
            errcode = int(error.group(1))
            if errcode == 0:
                raise wechat_unavailable()
            raise login_error_for(errcode)
        match = SANDBOX_NAME.fullmatch(code)
        if not match:
            raise ApiError(401, "auth.code_invalid")
        openid, unionid = self.identity(match.group(1))
        number = self._next_login_number(openid)
        return WeChatSession(openid, self.session_key(openid, number), unionid)

    def check_text(self, openid: str, content: str) -> str:
        """Every text passes in the sandbox, except one that asks for another verdict."""
        for verdict in ("review", "risky"):
            if f"[{verdict}]" in content:
                return verdict
        return "pass"


def build_wechat(config: dict, next_login_number):
    """The sandbox or the real client, as the configuration says."""
    if config["WECHAT_SANDBOX"]:
        return SandboxWeChat(config["SECRET_KEY"], config["WECHAT_APPID"], next_login_number)
    return WeChatClient(config["WECHAT_API_BASE"], config["WECHAT_APPID"], config["WECHAT_SECRET"])


def current_wechat():
    """The WeChat of the current app (tests may swap ``app.extensions['tanpu_wechat']``)."""
    from flask import current_app

    return current_app.extensions["tanpu_wechat"]
