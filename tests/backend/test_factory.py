"""The factory and the configuration checks done at start."""

import pytest

from backend import create_app
from backend.config import ConfigError, load_config


def test_production_refuses_to_start_without_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_config(str(tmp_path), {"TANPU_ENV": "production"})


def test_production_refuses_to_start_with_the_sandbox(tmp_path):
    env = {"TANPU_ENV": "production", "SECRET_KEY": "x" * 40, "WECHAT_SANDBOX": "1"}
    with pytest.raises(ConfigError, match="SANDBOX"):
        load_config(str(tmp_path), env)


def test_unknown_environment_is_refused(tmp_path):
    with pytest.raises(ConfigError):
        load_config(str(tmp_path), {"TANPU_ENV": "staging"})


def test_development_secret_is_generated_once_and_kept(tmp_path):
    first = load_config(str(tmp_path), {})["SECRET_KEY"]
    second = load_config(str(tmp_path), {})["SECRET_KEY"]
    assert first == second and len(first) >= 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_sandbox_is_on_in_development_without_wechat_secret(tmp_path):
    assert load_config(str(tmp_path), {})["WECHAT_SANDBOX"] is True
    with_secret = load_config(str(tmp_path), {"WECHAT_SECRET": "s", "WECHAT_APPID": "wx1"})
    assert with_secret["WECHAT_SANDBOX"] is False


def test_defaults_follow_the_contract(tmp_path):
    config = load_config(str(tmp_path), {})
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'tanpu.db'}"
    assert config["REDIS_URL"] is None
    assert config["WECHAT_API_BASE"] == "https://api.weixin.qq.com"
    assert config["AVATAR_HOSTS"] == ("thirdwx.qlogo.cn", "wx.qlogo.cn")
    assert config["RATE_LIMITS_ENABLED"] is True and config["TRUSTED_PROXIES"] == 0


def test_factory_reads_the_environment_it_is_given(database_url):
    app = create_app(environ={"TANPU_ENV": "testing", "DATABASE_URL": database_url,
                              "SECRET_KEY": "k" * 40})
    assert app.config["TESTING"] is True
    assert app.config["SQLALCHEMY_DATABASE_URI"] == database_url
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024


def test_sandbox_routes_exist_only_in_the_sandbox(make_app):
    sandbox = make_app()
    real = make_app(WECHAT_SANDBOX="0", WECHAT_APPID="wx1", WECHAT_SECRET="s")
    rules = lambda app: {rule.rule for rule in app.url_map.iter_rules()}  # noqa: E731
    assert "/api/v1/sandbox/werun-data" in rules(sandbox)
    assert "/api/v1/sandbox/werun-data" not in rules(real)
    assert "/api/v1/sandbox/werun-data" not in real.test_client().get("/openapi.json").text
