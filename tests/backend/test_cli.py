"""The flask commands: campaigns import/export, staff create, demo."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
import yaml

from backend.extensions import db
from backend.models import StaffAccount
from campaigns.document import dump_campaign
from campaigns.presets import PRESET_DIR, available_presets, load_preset
from tests.backend.conftest import (
    ADMIN_API,
    EXAMPLE_YAML,
    campaign_count,
    error_of,
    shanghai_today,
)
from tests.backend.test_admin_campaigns import INVALID
from tests.support.secrets import REGISTRY

LOGIN = "/api/v1/staff/login"


def cli(runner, *args, **kwargs):
    return runner.invoke(args=[str(a) for a in args], **kwargs)


def import_file(runner, path, *flags):
    return cli(runner, "campaigns", "import", path, *flags)


def export(runner, slug, fmt="yaml") -> str:
    result = cli(runner, "campaigns", "export", slug, "--format", fmt)
    assert result.exit_code == 0, result.output
    return result.stdout


def empty_database(app) -> None:
    """Delete every row of every table (children first): the database is empty again."""
    with app.app_context():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete())
        db.session.commit()


def staff_count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(StaffAccount))


def can_log_in(client, email, password) -> bool:
    response = client.post(LOGIN, json={"email": email, "password": password})
    if response.status_code == 200:
        REGISTRY.add(response.json["token"], f"token of {email}")
    return response.status_code == 200


# ---- campaigns import / export --------------------------------------------------------------


def test_the_api_md_example_imports_from_the_cli(app, client, runner, admin):
    result = import_file(runner, EXAMPLE_YAML)
    assert result.exit_code == 0, result.output
    assert "winter-2022" in result.stdout
    stored = client.get(f"{ADMIN_API}/campaigns/winter-2022", headers=admin.headers).json
    assert stored == dump_campaign(load_preset_file(EXAMPLE_YAML))
    audit = client.get(f"{ADMIN_API}/campaigns/winter-2022/audit", headers=admin.headers).json
    assert [(i["action"], i["actor"]) for i in audit["items"]] == [("campaign.create", "cli")]


def load_preset_file(path):
    from campaigns.document import load_campaign_yaml

    return load_campaign_yaml(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("doc", "field"), [(d, f) for _, d, f in INVALID],
                         ids=[name for name, _, _ in INVALID])
def test_an_invalid_file_fails_naming_the_field_and_writes_nothing(app, runner, tmp_path, doc,
                                                                   field):
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    result = import_file(runner, path)
    assert result.exit_code != 0
    assert "validation.failed" in result.stderr
    assert re.search(rf"^\s*{re.escape(field)}: \S", result.stderr, re.MULTILINE), result.stderr
    assert "Traceback" not in result.output
    assert campaign_count(app) == 0


def test_a_file_that_is_not_yaml_fails_readably(app, runner, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("slug: [unclosed\n  name: x", encoding="utf-8")
    result = import_file(runner, path)
    assert result.exit_code != 0
    assert "validation.failed" in result.stderr and "Traceback" not in result.output
    assert campaign_count(app) == 0


def test_an_existing_slug_needs_replace(app, client, runner, admin, tmp_path):
    assert import_file(runner, EXAMPLE_YAML).exit_code == 0
    changed = yaml.safe_load(EXAMPLE_YAML.read_text(encoding="utf-8"))
    changed["name"] = "低碳冬奥（第二版）"
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(changed, allow_unicode=True), encoding="utf-8")

    refused = import_file(runner, path)
    assert refused.exit_code != 0
    assert re.search(r"^\s*slug: \S", refused.stderr, re.MULTILINE), refused.stderr
    assert campaign_count(app) == 1
    assert client.get(f"{ADMIN_API}/campaigns/winter-2022",
                      headers=admin.headers).json["name"] == "低碳冬奥"

    replaced = import_file(runner, path, "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert campaign_count(app) == 1
    assert client.get(f"{ADMIN_API}/campaigns/winter-2022",
                      headers=admin.headers).json["name"] == "低碳冬奥（第二版）"


def test_replace_with_an_invalid_file_changes_nothing(app, runner, tmp_path):
    assert import_file(runner, EXAMPLE_YAML).exit_code == 0
    before = export(runner, "winter-2022")
    _, doc, field = INVALID[0]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    result = import_file(runner, path, "--replace")
    assert result.exit_code != 0 and field in result.stderr
    assert export(runner, "winter-2022") == before


def test_replace_creates_when_the_slug_is_new(app, runner):
    result = import_file(runner, EXAMPLE_YAML, "--replace")
    assert result.exit_code == 0, result.output
    assert campaign_count(app) == 1


def test_export_of_an_unknown_campaign_fails(runner):
    result = cli(runner, "campaigns", "export", "nothing-here")
    assert result.exit_code != 0 and "nothing-here" in result.stderr


@pytest.mark.parametrize("source", [EXAMPLE_YAML, *(PRESET_DIR / f"{name}.yaml"
                                                    for name in available_presets())],
                         ids=lambda p: p.stem)
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_export_import_export_is_byte_identical(app, runner, tmp_path, source, fmt):
    assert import_file(runner, source).exit_code == 0
    slug = load_preset_file(source).slug
    first = export(runner, slug, fmt)
    empty_database(app)
    assert campaign_count(app) == 0  # an empty database
    path = tmp_path / f"exported.{fmt}"
    path.write_bytes(first.encode("utf-8"))
    result = import_file(runner, path)
    assert result.exit_code == 0, result.output
    assert export(runner, slug, fmt).encode("utf-8") == first.encode("utf-8")


@pytest.mark.parametrize("name", available_presets())
def test_each_preset_exports_the_same_document(runner, name):
    result = import_file(runner, PRESET_DIR / f"{name}.yaml")
    assert result.exit_code == 0, result.output
    preset = load_preset(name)
    assert yaml.safe_load(export(runner, preset.slug, "yaml")) == dump_campaign(preset)
    assert json.loads(export(runner, preset.slug, "json")) == dump_campaign(preset)
    assert load_preset_file_text(export(runner, preset.slug)) == preset


def load_preset_file_text(text):
    from campaigns.document import load_campaign_yaml

    return load_campaign_yaml(text)


def test_export_keeps_chinese_readable(runner):
    import_file(runner, EXAMPLE_YAML)
    text = export(runner, "winter-2022")
    assert "name: 低碳冬奥" in text and "\\u" not in text
    assert "低碳冬奥" in export(runner, "winter-2022", "json")


# ---- staff create ---------------------------------------------------------------------------


def test_staff_create_with_password(app, client, runner):
    password = "a-long-enough-password-1"
    REGISTRY.add(password, "cli password")
    result = cli(runner, "staff", "create", "Cli@Tanpu.test", "--role", "admin",
                 "--password", password)
    assert result.exit_code == 0, result.output
    assert password not in result.output
    assert can_log_in(client, "cli@tanpu.test", password)


def test_staff_create_from_stdin(app, client, runner):
    password = "stdin-password-long-2"
    REGISTRY.add(password, "cli password")
    result = cli(runner, "staff", "create", "stdin@tanpu.test", "--role", "admin",
                 "--password-stdin", input=password + "\n")
    assert result.exit_code == 0, result.output
    assert password not in result.output
    assert can_log_in(client, "stdin@tanpu.test", password)
    assert not can_log_in(client, "stdin@tanpu.test", password + "\n")


def test_staff_create_prompts_with_confirmation(app, client, runner):
    password = "prompted-password-3"
    REGISTRY.add(password, "cli password")
    result = cli(runner, "staff", "create", "prompt@tanpu.test", "--role", "admin",
                   input=f"{password}\nsomething-else\n{password}\n{password}\n")
    # The confirmation did not match the first time: asked again, then accepted.
    assert result.exit_code == 0, result.output
    assert result.output.count("Repeat for confirmation") == 2
    assert password not in result.output  # the prompt hides what is typed
    assert can_log_in(client, "prompt@tanpu.test", password)


def test_staff_create_organiser_of_campaigns(app, client, runner, admin):
    import_file(runner, EXAMPLE_YAML)
    password = "organiser-password-4"
    REGISTRY.add(password, "cli password")
    result = cli(runner, "staff", "create", "org-cli@tanpu.test", "--role", "organiser",
                 "--campaign", "winter-2022", "--password", password)
    assert result.exit_code == 0, result.output
    response = client.post(LOGIN, json={"email": "org-cli@tanpu.test", "password": password})
    assert response.json["role"] == "organiser"
    token = response.json["token"]
    REGISTRY.add(token, "organiser token")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{ADMIN_API}/campaigns/winter-2022", headers=headers).status_code == 200


@pytest.mark.parametrize(("args", "field"), [
    (["short@tanpu.test", "--role", "admin", "--password", "short"], "password"),
    (["not-an-email", "--role", "admin", "--password", "long-enough-pw"], "email"),
    (["x@tanpu.test", "--role", "organiser", "--campaign", "no-such", "--password",
      "long-enough-pw"], "campaigns.0"),
])
def test_staff_create_refuses_bad_input(app, runner, args, field):
    result = cli(runner, "staff", "create", *args)
    assert result.exit_code != 0
    assert re.search(rf"^\s*{re.escape(field)}: \S", result.stderr, re.MULTILINE), result.stderr
    assert staff_count(app) == 0


def test_staff_create_refuses_a_role_it_does_not_know(app, runner):
    result = cli(runner, "staff", "create", "x@tanpu.test", "--role", "owner", "--password",
                 "long-enough-pw")
    assert result.exit_code != 0 and "role" in result.output
    assert staff_count(app) == 0


def test_staff_create_refuses_a_taken_email(app, runner):
    args = ("staff", "create", "twice@tanpu.test", "--role", "admin", "--password",
            "long-enough-pw")
    assert cli(runner, *args).exit_code == 0
    again = cli(runner, *args[:2], "TWICE@tanpu.test", *args[3:])
    assert again.exit_code != 0 and "email" in again.stderr
    assert staff_count(app) == 1


def test_staff_create_refuses_two_password_sources(app, runner):
    result = cli(runner, "staff", "create", "both@tanpu.test", "--role", "admin", "--password",
                 "long-enough-pw", "--password-stdin", input="other-long-pw\n")
    assert result.exit_code != 0
    assert staff_count(app) == 0


# ---- demo -----------------------------------------------------------------------------------


def test_demo_loads_the_winter_preset_with_today_its_eighth_day(app, client, runner):
    result = cli(runner, "demo")
    assert result.exit_code == 0, result.output
    preset = load_preset("winter-2022")
    detail = client.get("/api/v1/campaigns/winter-2022")
    assert detail.status_code == 200  # published
    body = detail.json
    today = shanghai_today()
    assert body["starts_on"] == (today - timedelta(days=7)).isoformat()
    assert body["ends_on"] == (today - timedelta(days=7) + (preset.ends_on - preset.starts_on)
                               ).isoformat()
    assert body["status"] == "active"
    assert [a["key"] for a in body["actions"]] == [a.key for a in preset.actions]
    assert body["name"] == preset.name

    # The demo admin it prints can log in.
    match = re.search(r"demo admin: (\S+) / (\S+)", result.output)
    assert match, result.output
    REGISTRY.add(match.group(2), "demo admin password")
    assert can_log_in(client, match.group(1), match.group(2))


def test_demo_is_idempotent(app, client, runner):
    def state():
        progress = client.get("/api/v1/campaigns/winter-2022/progress").json
        progress.pop("updated_at")
        return (export(runner, "winter-2022"), campaign_count(app), staff_count(app), progress)

    assert cli(runner, "demo").exit_code == 0
    before = state()
    again = cli(runner, "demo")
    assert again.exit_code == 0, again.output
    assert "demo admin" not in again.output  # no new password
    assert state() == before


def test_demo_campaign_document_is_the_shifted_preset(runner):
    from campaigns.presets import shift_document

    cli(runner, "demo")
    expected = dump_campaign(shift_document(load_preset("winter-2022"), shanghai_today()))
    assert yaml.safe_load(export(runner, "winter-2022")) == expected


def test_the_imported_example_is_hidden_until_published(client, runner, admin):
    import_file(runner, EXAMPLE_YAML)
    assert error_of(client.get("/api/v1/campaigns/winter-2022")) == (404, "not_found")
    client.post(f"{ADMIN_API}/campaigns/winter-2022/publish", headers=admin.headers)
    assert client.get("/api/v1/campaigns/winter-2022").status_code == 200
