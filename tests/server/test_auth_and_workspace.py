"""Tokens on every route: header or query string, 401 without, 403 when wrong or short of scope."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

ROUTES = [
    ("GET", "/v0/workspace"),
    ("GET", "/v0/user/workspaces/"),
    ("GET", "/v0/datasources"),
    ("POST", "/v0/datasources?name=x&schema=a%20UInt8"),
    ("GET", "/v0/datasources/x"),
    ("GET", "/v0/sql?q=SELECT%201"),
    ("POST", "/v0/sql_tables?q=SELECT%201"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_token_is_401_and_bad_token_is_403(app, method, path):
    anonymous = TestClient(app)
    res = anonymous.request(method, path)
    assert res.status_code == 401 and "token" in res.json()["error"]
    res = anonymous.request(method, path, headers={"Authorization": "Bearer p.nope"})
    assert res.status_code == 403 and "Invalid token" in res.json()["error"]


def test_token_in_query_string_and_leading_ampersand(app, workspace_token):
    anonymous = TestClient(app)
    res = anonymous.get(f"/v0/workspace?&token={workspace_token}&cli_version=6.5.5")
    assert res.status_code == 200
    assert res.json()["scope"] == "admin"


def test_workspace_info_shapes(client, workspace):
    ws = client.get("/v0/workspace").json()
    assert ws["id"] == workspace.id and ws["name"] == workspace.name and ws["scope"] == "admin"
    user = client.get("/v0/user/workspaces/?with_environments=true").json()
    assert "id" in user
    assert [(w["id"], w["role"]) for w in user["workspaces"]] == [(workspace.id, "admin")]
    assert {"plan", "name", "is_branch"} <= set(user["workspaces"][0])


def test_scopes_are_enforced(app, platform, workspace, client):
    from tody.services.tokens import Scope

    assert client.post("/v0/datasources", data={"name": "events", "schema": "a UInt8"}).status_code == 200
    assert client.post("/v0/datasources", data={"name": "secret", "schema": "a UInt8"}).status_code == 200
    _, read_token = platform.tokens.create(workspace, "reader", [Scope.parse("DATASOURCES:READ:events")])
    reader = TestClient(app, headers={"Authorization": f"Bearer {read_token}"})
    assert reader.get("/v0/sql?q=SELECT count() c FROM events").json()["data"] == [{"c": 0}]
    denied = reader.get("/v0/sql?q=SELECT count() FROM secret")
    assert denied.status_code == 403 and "DATASOURCES:READ:secret" in denied.json()["error"]
    assert [d["name"] for d in reader.get("/v0/datasources").json()["datasources"]] == ["events"]
    assert reader.get("/v0/datasources/secret").status_code == 403
    res = reader.post("/v0/datasources", data={"name": "new", "schema": "a UInt8"})
    assert res.status_code == 403 and "DATASOURCES:CREATE" in res.json()["error"]
    assert reader.delete("/v0/datasources/events").status_code == 403
    assert reader.post("/v0/datasources/events/truncate").status_code == 403
    assert reader.put("/v0/datasources/events", data={"name": "x"}).status_code == 403


def test_filtered_read_scope_applies_row_filter(app, platform, workspace, client, engine):
    res = client.post(
        "/v0/datasources", data={"name": "events", "schema": "a UInt8", "engine_sorting_key": "a"}
    )
    engine.execute(
        f"INSERT INTO {workspace.database}.{res.json()['datasource']['id']} SELECT number FROM numbers(10)"
    )
    from tody.services.tokens import Scope

    _, token = platform.tokens.create(workspace, "filtered", [Scope.parse("DATASOURCES:READ:events:a >= 7")])
    reader = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    assert reader.get("/v0/sql?q=SELECT count() c FROM events").json()["data"] == [{"c": 3}]
    q = "SELECT count() c FROM (SELECT * FROM events) WHERE a IN (SELECT a FROM events)"
    assert reader.get("/v0/sql", params={"q": q}).json()["data"] == [{"c": 3}]


def test_token_values_are_not_stored_in_plain_text(platform, workspace_token):
    import sqlite3

    path = platform.config.data_path / "catalog.db"
    dump = "\n".join(sqlite3.connect(path).iterdump())
    assert workspace_token not in dump
    key = (platform.config.data_path / "server.key").stat().st_mode & 0o777
    assert key == 0o600
