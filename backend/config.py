"""Configuration read from the environment (names in API.md "Configuration"), checked at start."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ENVIRONMENTS = ("development", "testing", "production")
DEFAULT_AVATAR_HOSTS = "thirdwx.qlogo.cn,wx.qlogo.cn"
# The sandbox answers as this mini-program; its WeRun data carries this appid in the watermark.
SANDBOX_APPID = "wxsandbox00000000"


class ConfigError(RuntimeError):
    """The environment does not describe a server that may start."""


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _development_secret(instance_path: Path) -> str:
    """A secret generated once and kept, so restarts and several workers accept old tokens."""
    path = instance_path / "secret_key"
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def load_config(instance_path: str, environ: dict[str, str] | None = None) -> dict:
    """Return the Flask config mapping built from ``environ`` (default: ``os.environ``).

    Raises ConfigError when production would start without SECRET_KEY or with the sandbox on.
    """
    env = os.environ if environ is None else environ
    tanpu_env = env.get("TANPU_ENV", "development").strip() or "development"
    if tanpu_env not in ENVIRONMENTS:
        raise ConfigError(f"TANPU_ENV must be one of {', '.join(ENVIRONMENTS)}")
    instance = Path(instance_path)

    secret_key = env.get("SECRET_KEY", "").strip()
    if not secret_key:
        if tanpu_env == "production":
            raise ConfigError("SECRET_KEY is required in production")
        secret_key = (
            _development_secret(instance) if tanpu_env == "development"
            else secrets.token_urlsafe(48)
        )

    wechat_secret = env.get("WECHAT_SECRET", "").strip()
    sandbox_default = tanpu_env == "development" and not wechat_secret
    sandbox = _flag(env.get("WECHAT_SANDBOX"), sandbox_default)
    if sandbox and tanpu_env == "production":
        raise ConfigError("WECHAT_SANDBOX must be off in production")
    appid = env.get("WECHAT_APPID", "").strip() or (SANDBOX_APPID if sandbox else "")

    database_url = env.get("DATABASE_URL", "").strip() or f"sqlite:///{instance / 'tanpu.db'}"
    return {
        "TANPU_ENV": tanpu_env,
        "TESTING": tanpu_env == "testing",
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": env.get("REDIS_URL", "").strip() or None,
        "WECHAT_APPID": appid,
        "WECHAT_SECRET": wechat_secret,
        "WECHAT_API_BASE": (env.get("WECHAT_API_BASE", "").strip()
                            or "https://api.weixin.qq.com").rstrip("/"),
        "WECHAT_SANDBOX": sandbox,
        "RATE_LIMITS_ENABLED": _flag(env.get("RATE_LIMITS_ENABLED"), True),
        # Per client address (behind TRUSTED_PROXIES): a venue's Wi-Fi puts many people behind
        # one address, and a login lasts a week, so the login limit is loose.
        "RATE_LIMIT_LOGIN": "120 per minute",
        # Per participant: people check in a few times a day; scripts are slowed down.
        "RATE_LIMIT_INTAKE": "30 per minute",
        "TRUSTED_PROXIES": int(env.get("TRUSTED_PROXIES", "0").strip() or 0),
        "AVATAR_HOSTS": tuple(
            host.strip().lower()
            for host in (env.get("AVATAR_HOSTS") or DEFAULT_AVATAR_HOSTS).split(",")
            if host.strip()
        ),
    }
