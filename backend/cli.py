"""flask commands (``flask --app wsgi ...``); each calls services and commits once."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from backend.clock import utcnow
from backend.errors import ApiError
from backend.extensions import db, redis_holder
from backend.reports_render import ReportError, write_report
from backend.services.boards_rebuild import rebuild_boards
from backend.services.campaigns import (
    campaign_doc,
    create_campaign,
    find_campaign,
    replace_campaign,
)
from backend.services.demo import load_demo
from backend.services.partners import create_partner
from backend.services.rebuild import rebuild_projections
from backend.services.seed import seed_campaign
from backend.services.staff import create_staff, find_staff
from backend.services.verification import verify_ledger
from backend.wechat import current_wechat
from campaigns.document import (
    DocumentInvalid,
    dump_campaign_json,
    dump_campaign_yaml,
    load_campaign_yaml,
)

CLI_ACTOR = "cli"
DEMO_ADMIN_EMAIL = "admin@demo.tanpu"

campaigns_cli = AppGroup("campaigns", help="Import and export campaign documents.")
ledger_cli = AppGroup("ledger", help="Verify and rebuild a campaign's ledger projections.")
partners_cli = AppGroup("partners", help="Partners that push trips and records.")
boards_cli = AppGroup("leaderboards", help="Leaderboards in Redis.")
staff_cli = AppGroup("staff", help="Staff accounts.")
reports_cli = AppGroup("reports", help="Campaign reports (HTML or PDF).")


def fail(error: ApiError | DocumentInvalid) -> None:
    """Print a readable error (its code and each field) and exit 1; nothing was written."""
    db.session.rollback()
    code = getattr(error, "code", "validation.failed")
    click.echo(f"error: {code}", err=True)
    for field, messages in sorted((getattr(error, "fields", None) or {}).items()):
        click.echo(f"  {field}: {'; '.join(messages)}", err=True)
    sys.exit(1)


@campaigns_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Update an existing campaign (PUT rules).")
def import_campaign(file: Path, replace: bool) -> None:
    """Create (or with --replace update) a campaign from a YAML or JSON document."""
    try:
        doc = load_campaign_yaml(file.read_text(encoding="utf-8"))
        existing = find_campaign(doc.slug)
        if existing is not None and not replace:
            raise ApiError(422, "validation.failed",
                           fields={"slug": ["A campaign with this slug exists (use --replace)."]})
        if existing is None:
            create_campaign(doc, CLI_ACTOR)
        else:
            replace_campaign(existing, doc, CLI_ACTOR)
        db.session.commit()
    except (ApiError, DocumentInvalid) as error:
        fail(error)
    click.echo(f"{'updated' if existing else 'created'} campaign {doc.slug}")


@campaigns_cli.command("export")
@click.argument("slug")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml",
              show_default=True)
def export_campaign(slug: str, fmt: str) -> None:
    """Print a campaign's canonical document."""
    campaign = find_campaign(slug)
    if campaign is None:
        click.echo(f"error: no campaign {slug!r}", err=True)
        sys.exit(1)
    doc = campaign_doc(campaign)
    click.echo(dump_campaign_yaml(doc) if fmt == "yaml" else dump_campaign_json(doc), nl=False)


@campaigns_cli.command("seed")
@click.argument("slug")
@click.option("--participants", type=click.IntRange(1, 10_000_000), required=True)
@click.option("--entries-per-participant", "entries_each", type=click.IntRange(0, 1000),
              default=10, show_default=True)
@click.option("--seed", "seed", type=int, default=1, show_default=True)
def seed_command(slug: str, participants: int, entries_each: int, seed: int) -> None:
    """Bulk synthetic participants and entries through the real ledger and projections
    (for benchmarks)."""
    campaign = _campaign_or_exit(slug)
    with click.progressbar(length=participants, label="seeding participants",
                           file=sys.stderr) as bar:
        entries = seed_campaign(campaign, participants, entries_each, seed, utcnow(),
                                progress=bar.update)
    members = rebuild_boards(campaign)
    click.echo(f"seeded {participants} participants and {entries} entries into {slug}; "
               f"{members} leaderboard members written to Redis")


@staff_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "organiser"]), required=True)
@click.option("--campaign", "campaign_slugs", multiple=True, help="A campaign it manages.")
@click.option("--password", help="The password (else --password-stdin or a prompt).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_staff_command(email, role, campaign_slugs, password, password_stdin) -> None:
    """Create an admin or organiser account."""
    if password and password_stdin:
        click.echo("error: give --password or --password-stdin, not both", err=True)
        sys.exit(2)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        staff = create_staff(email, password, role, list(campaign_slugs))
        db.session.commit()
    except ApiError as error:
        fail(error)
    click.echo(f"created {staff.role} {staff.email}")


@click.command("demo")
@with_appcontext  # AppGroup commands get this by themselves; a plain click command does not
def demo_command() -> None:
    """Load the demo campaign (the 低碳冬奥 preset, today its eighth day, sample people and a
    week of check-ins); idempotent."""
    slug = load_demo(current_wechat(), utcnow())
    password = None
    if find_staff(DEMO_ADMIN_EMAIL) is None:
        password = secrets.token_urlsafe(12)
        create_staff(DEMO_ADMIN_EMAIL, password, "admin", [])
    db.session.commit()
    click.echo(f"loaded demo campaign {slug}" if slug else "demo campaign already loaded")
    if password:
        click.echo(f"demo admin: {DEMO_ADMIN_EMAIL} / {password}  (shown once)")


def _campaign_or_exit(slug: str):
    campaign = find_campaign(slug)
    if campaign is None:
        click.echo(f"error: no campaign {slug!r}", err=True)
        sys.exit(1)
    return campaign


@ledger_cli.command("verify")
@click.argument("slug")
def verify_command(slug: str) -> None:
    """Re-hash the chain and check it against the projections; exit 1 naming the first bad
    seq."""
    result = verify_ledger(_campaign_or_exit(slug), utcnow())
    if not result.ok:
        click.echo(f"ledger {slug}: BAD at seq {result.first_bad_seq} "
                   f"({result.entries} entries read)", err=True)
        sys.exit(1)
    click.echo(f"ledger {slug}: ok, {result.entries} entries, head seq {result.head_seq}, "
               f"head hash {result.head_hash}")


@ledger_cli.command("rebuild")
@click.argument("slug")
def rebuild_command(slug: str) -> None:
    """Recompute every projection of the campaign from its ledger."""
    campaign = _campaign_or_exit(slug)
    entries = rebuild_projections(campaign)
    db.session.commit()
    members = rebuild_boards(campaign)
    click.echo(f"ledger {slug}: projections rebuilt from {entries} entries; "
               f"{members} leaderboard members written to Redis")


@boards_cli.command("rebuild")
@click.argument("slug")
def rebuild_boards_command(slug: str) -> None:
    """Rebuild the campaign's Redis leaderboards from the SQL projections."""
    if redis_holder.client(current_app) is None:
        click.echo("REDIS_URL is unset: boards are answered from SQL, nothing to rebuild")
        return
    members = rebuild_boards(_campaign_or_exit(slug))
    click.echo(f"leaderboards {slug}: {members} members written")


@partners_cli.command("create")
@click.argument("name")
@click.option("--campaign", "campaign_slugs", multiple=True, required=True,
              help="A campaign the partner feeds (repeat for several).")
def create_partner_command(name: str, campaign_slugs: tuple[str, ...]) -> None:
    """Register a partner and print its signing secret (shown this once, stored encrypted)."""
    try:
        partner, secret = create_partner(name, list(campaign_slugs))
        db.session.commit()
    except ApiError as error:
        fail(error)
    click.echo(f"created partner {partner.name} for {', '.join(campaign_slugs)}")
    click.echo(f"secret (shown once): {secret}")


@reports_cli.command("render")
@click.argument("slug")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="FILE.html (self-contained) or FILE.pdf (printed by headless Chromium).")
def render_report_command(slug: str, out: Path) -> None:
    """Write the campaign's report: the dashboard's figures, ledger head and methodology."""
    try:
        write_report(_campaign_or_exit(slug), out, utcnow())
    except ReportError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    click.echo(f"report {slug}: {out}")


def register_cli(app: Flask) -> None:
    """Attach the command groups."""
    app.cli.add_command(partners_cli)
    app.cli.add_command(boards_cli)
    app.cli.add_command(ledger_cli)
    app.cli.add_command(campaigns_cli)
    app.cli.add_command(staff_cli)
    app.cli.add_command(reports_cli)
    app.cli.add_command(demo_command)
