"""Teams: JSON, CSV (with or without BOM) and multipart uploads, upsert by key, all rows or none,
member counts, deletion."""

from __future__ import annotations

import io

import pytest

from tests.backend.conftest import ADMIN_API, error_of

TEAMS = f"{ADMIN_API}/campaigns/uni/teams"


@pytest.fixture
def teams(client, admin, make_campaign):
    """The campaign ``uni`` (one team, bjtu) and a function listing its teams."""
    make_campaign("uni")

    def listed() -> list[tuple[str, str, int]]:
        response = client.get(TEAMS, headers=admin.headers)
        assert response.status_code == 200
        return [(t["key"], t["name"], t["members"]) for t in response.json["items"]]

    return listed


def test_a_json_list_adds_teams(client, admin, teams):
    response = client.post(TEAMS, headers=admin.headers, json=[
        {"key": "pku", "name": "北京大学"}, {"key": "thu", "name": " 清华大学 "}])
    assert response.status_code == 200
    expected = [("bjtu", "北京交通大学", 0), ("pku", "北京大学", 0), ("thu", "清华大学", 0)]
    assert [(t["key"], t["name"], t["members"]) for t in response.json["items"]] == expected
    assert teams() == expected


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["no-bom", "bom"])
def test_a_csv_body_adds_teams(client, admin, teams, bom):
    body = bom + "key,name\r\npku,北京大学\r\nruc,\"中国人民大学, 海淀\"\r\n".encode()
    response = client.post(TEAMS, headers=admin.headers, data=body,
                           content_type="text/csv; charset=utf-8")
    assert response.status_code == 200, response.json
    assert teams() == [("bjtu", "北京交通大学", 0), ("pku", "北京大学", 0),
                       ("ruc", "中国人民大学, 海淀", 0)]


def test_a_csv_without_a_header_row_is_all_data(client, admin, teams):
    response = client.post(TEAMS, headers=admin.headers, data="pku,北京大学\n".encode(),
                           content_type="text/csv")
    assert response.status_code == 200
    assert teams() == [("bjtu", "北京交通大学", 0), ("pku", "北京大学", 0)]


def test_a_multipart_file_adds_teams(client, admin, teams):
    upload = io.BytesIO("\ufeffkey,name\nbnu,北京师范大学\n".encode())
    response = client.post(TEAMS, headers=admin.headers, data={"file": (upload, "teams.csv")},
                           content_type="multipart/form-data")
    assert response.status_code == 200, response.json
    assert teams() == [("bjtu", "北京交通大学", 0), ("bnu", "北京师范大学", 0)]


def test_a_multipart_upload_without_file_is_422(client, admin, teams):
    response = client.post(TEAMS, headers=admin.headers, data={"other": "x"},
                           content_type="multipart/form-data")
    assert error_of(response) == (422, "validation.failed")
    assert "file" in response.json["error"]["fields"]


def test_upsert_by_key_renames(client, admin, teams):
    response = client.post(TEAMS, headers=admin.headers, json=[
        {"key": "bjtu", "name": "北交大"}, {"key": "pku", "name": "北京大学"}])
    assert response.status_code == 200
    assert teams() == [("bjtu", "北交大", 0), ("pku", "北京大学", 0)]
    document = client.get(f"{ADMIN_API}/campaigns/uni", headers=admin.headers).json
    assert document["teams"]["list"] == [{"key": "bjtu", "name": "北交大"},
                                         {"key": "pku", "name": "北京大学"}]
    public = client.post(f"{ADMIN_API}/campaigns/uni/publish", headers=admin.headers)
    assert public.status_code == 200
    assert client.get("/api/v1/campaigns/uni").json["teams"] == [
        {"key": "bjtu", "name": "北交大"}, {"key": "pku", "name": "北京大学"}]


@pytest.mark.parametrize(("rows", "field"), [
    ([{"key": "a1", "name": "A"}, {"key": "b1", "name": "B"}, {"key": "c1", "name": ""}],
     "2.name"),
    ([{"key": "bad key!", "name": "A"}, {"key": "ok", "name": "B"}], "0.key"),
    ([{"key": "ok", "name": "B"}, {"name": "no key"}], "1.key"),
    ([{"key": "ok", "name": "B"}, {"key": "ok", "name": "again"}], "1.key"),
    ([{"key": "ok", "name": "B", "colour": "red"}], "0.colour"),
    ([{"key": "ok", "name": "B"}, "pku"], "1"),
    ([{"key": "ok", "name": "B"}, {"key": "long", "name": "名" * 65}], "1.name"),
], ids=["empty-name", "bad-key", "missing-key", "duplicate-key", "unknown-field", "not-object",
        "long-name"])
def test_a_bad_json_row_is_named_and_nothing_is_imported(client, admin, teams, rows, field):
    response = client.post(TEAMS, headers=admin.headers, json=rows)
    assert error_of(response) == (422, "validation.failed")
    assert field in response.json["error"]["fields"]
    assert teams() == [("bjtu", "北京交通大学", 0)]


@pytest.mark.parametrize(("body", "field"), [
    ("key,name\nok1,好\nbad key!,名\n", "1.key"),
    ("key,name\nok1,好\nok2,\n", "1.name"),
    ("ok1,好\nok2,名,多余\n", "1"),
    ("key,name\nok1,好\nok3\n", "1.name"),
], ids=["bad-key", "empty-name", "three-columns", "one-column"])
def test_a_bad_csv_row_is_named_and_nothing_is_imported(client, admin, teams, body, field):
    response = client.post(TEAMS, headers=admin.headers, data=body.encode(),
                           content_type="text/csv")
    assert error_of(response) == (422, "validation.failed")
    assert field in response.json["error"]["fields"]
    assert teams() == [("bjtu", "北京交通大学", 0)]


def test_uploads_that_are_not_teams(client, admin, teams):
    latin1 = client.post(TEAMS, headers=admin.headers, data="pku,Universität\n".encode("latin-1"),
                         content_type="text/csv")
    assert error_of(latin1) == (422, "validation.failed")
    empty = client.post(TEAMS, headers=admin.headers, json=[])
    assert error_of(empty) == (422, "validation.failed")
    an_object = client.post(TEAMS, headers=admin.headers, json={"key": "pku", "name": "北大"})
    assert error_of(an_object) == (422, "validation.failed")
    plain = client.post(TEAMS, headers=admin.headers, data="pku,北大", content_type="text/plain")
    assert error_of(plain) == (415, "request.unsupported_media_type")
    assert teams() == [("bjtu", "北京交通大学", 0)]


def test_member_counts_are_listed(client, admin, teams, add_member):
    client.post(TEAMS, headers=admin.headers, json=[{"key": "pku", "name": "北京大学"}])
    add_member("uni", "bjtu")
    add_member("uni", "bjtu")
    add_member("uni", "pku")
    add_member("uni", None)
    assert teams() == [("bjtu", "北京交通大学", 2), ("pku", "北京大学", 1)]


def test_delete_a_team(client, admin, teams):
    client.post(TEAMS, headers=admin.headers, json=[{"key": "pku", "name": "北京大学"}])
    response = client.delete(f"{TEAMS}/pku", headers=admin.headers)
    assert response.status_code == 204
    assert response.get_data() == b""
    assert teams() == [("bjtu", "北京交通大学", 0)]
    assert error_of(client.delete(f"{TEAMS}/pku", headers=admin.headers)) == (404, "not_found")
    assert error_of(client.delete(f"{TEAMS}/never", headers=admin.headers)) == (404, "not_found")


def test_a_team_with_members_cannot_be_deleted(client, admin, teams, add_member):
    add_member("uni", "bjtu")
    response = client.delete(f"{TEAMS}/bjtu", headers=admin.headers)
    assert error_of(response) == (409, "team.conflict")
    assert teams() == [("bjtu", "北京交通大学", 1)]


def test_teams_of_one_campaign_are_not_another_campaigns(client, admin, teams, make_campaign):
    make_campaign("other-uni")
    client.post(f"{ADMIN_API}/campaigns/other-uni/teams", headers=admin.headers,
                json=[{"key": "pku", "name": "北京大学"}])
    assert teams() == [("bjtu", "北京交通大学", 0)]
    assert error_of(client.delete(f"{TEAMS}/pku", headers=admin.headers)) == (404, "not_found")
