"""Teams: listed with member counts, imported from JSON or CSV (all rows or none), deleted."""

from __future__ import annotations

import csv
import io

from marshmallow import ValidationError
from sqlalchemy import func, select

from backend.errors import ApiError, validation_error
from backend.extensions import db
from backend.models import Campaign, Participation, Team
from backend.schemas.admin import TeamRowArgs
from backend.services.audit import record_audit
from backend.services.campaigns import ensure_team_removable, parse_document, touch_document

MAX_TEAMS_PER_IMPORT = 10_000


def list_teams(campaign: Campaign) -> list[dict]:
    """The campaign's teams in creation order, each with its member count (one query)."""
    counts = dict(db.session.execute(
        select(Participation.team_id, func.count()).where(
            Participation.campaign_id == campaign.id, Participation.team_id.is_not(None)
        ).group_by(Participation.team_id)
    ).all())
    return [{"key": t.key, "name": t.name, "members": counts.get(t.id, 0)}
            for t in campaign.teams]


def _csv_rows(raw: bytes) -> list[dict]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise validation_error({"_schema": ["The CSV is not UTF-8."]}) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = [row for row in reader if any(cell.strip() for cell in row)]
    if rows and [cell.strip().lower() for cell in rows[0]] == ["key", "name"]:
        rows = rows[1:]
    parsed = []
    for row in rows:
        record: dict = {"key": row[0] if row else ""}
        if len(row) > 1:
            record["name"] = row[1]
        if len(row) > 2:
            record["_extra"] = row[2:]
        parsed.append(record)
    return parsed


def rows_from_request(request) -> list:
    """The rows of a teams upload: a JSON list, a text/csv body or a multipart ``file``."""
    if request.mimetype == "text/csv":
        return _csv_rows(request.get_data())
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise validation_error({"file": ["Missing data for required field."]})
        return _csv_rows(upload.read())
    body = request.get_json()
    if not isinstance(body, list):
        raise validation_error({"_schema": ["Expected a list of {key, name}."]})
    return body


def validate_rows(rows: list) -> list[dict]:
    """Every row checked, every error reported (``2.name``); raises 422 if any is bad."""
    if not rows:
        raise validation_error({"_schema": ["No teams given."]})
    if len(rows) > MAX_TEAMS_PER_IMPORT:
        raise validation_error({"_schema": [f"At most {MAX_TEAMS_PER_IMPORT} teams at once."]})
    errors: dict[str, list[str]] = {}
    clean, seen = [], {}
    schema = TeamRowArgs()
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            errors[f"{index}"] = ["Expected an object with key and name."]
            continue
        if "_extra" in row:
            errors[f"{index}"] = ["Expected two columns: key,name."]
            continue
        try:
            team = schema.load(row)
        except ValidationError as invalid:
            for field, messages in invalid.normalized_messages().items():
                errors[f"{index}.{field}"] = list(messages)
            continue
        if team["key"] in seen:
            errors[f"{index}.key"] = [f"Duplicate of row {seen[team['key']]}."]
            continue
        seen[team["key"]] = index
        clean.append(team)
    if errors:
        raise validation_error(errors)
    return clean


def upsert_teams(campaign: Campaign, rows: list, actor) -> None:
    """Create or rename teams by key, all or nothing. Flushes."""
    teams = validate_rows(rows)
    before = [{"key": t.key, "name": t.name} for t in campaign.teams]
    by_key = {team.key: team for team in campaign.teams}
    for row in teams:
        if row["key"] in by_key:
            by_key[row["key"]].name = row["name"]
        else:
            campaign.teams.append(Team(key=row["key"], name=row["name"]))
    after = [{"key": t.key, "name": t.name} for t in campaign.teams]
    # The whole document must stay valid (e.g. the document schema's limits on teams).
    parse_document({**campaign.settings, "teams": {**campaign.settings["teams"], "list": after}})
    touch_document(campaign)
    db.session.flush()
    record_audit(actor, "teams.import", campaign, f"{len(teams)} rows", before, after)


def delete_team(campaign: Campaign, key: str, actor) -> None:
    """Delete a team; 404 if unknown, 409 team.conflict if it has members. Flushes."""
    team = next((t for t in campaign.teams if t.key == key), None)
    if team is None:
        raise ApiError(404, "not_found")
    ensure_team_removable(team)
    campaign.teams.remove(team)
    touch_document(campaign)
    db.session.flush()
    record_audit(actor, "team.delete", campaign, key, {"key": key, "name": team.name}, None)
