"""The Tokens API: static tokens created, listed, changed, refreshed and deleted, with scope checks."""

from __future__ import annotations

import pytest
from api_helpers import ok


@pytest.fixture
def as_value(bearer):
    return bearer


@pytest.fixture
def pipe(client, make_events):
    make_events(rows=10)
    ok(
        client.post(
            "/v0/pipes", data={"name": "top", "sql": "SELECT event, count() c FROM events GROUP BY event"}
        )
    )
    ok(client.post("/v0/pipes/top/nodes/top_0/endpoint"))
    return "top"


def create(client, name, *scopes, **params):
    return client.post(
        "/v0/tokens", params=[("name", name), *[("scope", s) for s in scopes], *params.items()]
    )


def test_create_list_get_as_the_tb_cli_does(client, as_value, pipe):
    res = create(client, "reader", "DATASOURCES:READ:events", "PIPE:READ:top", origin="C", description="d")
    token = ok(res)
    assert token["name"] == "reader" and token["description"] == "d" and token["token"].startswith("p.")
    assert token["scopes"] == [
        {"type": "DATASOURCES:READ", "resource": "events"},
        {"type": "PIPES:READ", "resource": "top"},
    ]
    listed = ok(client.get("/v0/tokens"))["tokens"]
    assert {"Workspace admin token", "reader"} <= {t["name"] for t in listed}
    assert all("token" in t for t in listed)  # `tb token ls` shows only entries with a value
    by_id = ok(client.get(f"/v0/tokens/{token['id']}"))
    assert by_id == ok(client.get("/v0/tokens/reader"))
    reader = as_value(token["token"])
    assert ok(reader.get("/v0/sql", params={"q": "SELECT count() c FROM events"}))["data"] == [{"c": 10}]
    assert reader.get("/v0/pipes/top.json").status_code == 200
    assert reader.post("/v0/pipes", data={"name": "x", "sql": "SELECT 1"}).status_code == 403


def test_values_are_never_stored_in_plain_text(client, platform, workspace):
    value = ok(create(client, "secret_keeper", "PIPES:CREATE"))["token"]
    stored = next(r for r in platform.catalog.tokens(workspace.id) if r.name == "secret_keeper")
    assert value not in (stored.value_hash, stored.value_encrypted)
    raw = (platform.config.data_path / "catalog.db").read_bytes()
    assert value.encode() not in raw


def test_refresh_stops_the_old_value_at_once(client, as_value):
    old = ok(create(client, "rotating", "PIPES:CREATE"))
    new = ok(client.post("/v0/tokens/rotating/refresh"))
    assert new["id"] == old["id"] and new["token"] != old["token"] and new["scopes"] == old["scopes"]
    res = as_value(old["token"]).get("/v0/pipes")
    assert res.status_code == 403 and "refreshed or deleted" in res.json()["error"]
    assert as_value(new["token"]).get("/v0/pipes").status_code == 200


def test_delete_stops_the_value_and_the_admin_token_stays(client, as_value):
    value = ok(create(client, "temporary", "PIPES:CREATE"))["token"]
    assert as_value(value).get("/v0/pipes").status_code == 200
    assert client.delete("/v0/tokens/temporary").status_code == 204
    assert as_value(value).get("/v0/pipes").status_code == 403
    assert client.get("/v0/tokens/temporary").status_code == 404
    res = client.delete("/v0/tokens/Workspace admin token")
    assert res.status_code == 409 and "refresh" in res.json()["error"]


def test_update_renames_and_replaces_scopes(client, pipe):
    ok(create(client, "t1", "DATASOURCES:READ:events"))
    res = client.put(
        "/v0/tokens/t1", params=[("name", "t2"), ("scope", "PIPES:READ:top"), ("scope", "TOKENS")]
    )
    token = ok(res)
    assert token["name"] == "t2" and token["scopes"] == [
        {"type": "PIPES:READ", "resource": "top"},
        {"type": "TOKENS"},
    ]
    # the tb CLI sends long scope lists as an untyped urlencoded body
    res = client.put("/v0/tokens/t2", content=b"scope=DATASOURCES:READ:events&scope=PIPES:READ:top")
    assert ok(res)["scopes"] == [
        {"type": "DATASOURCES:READ", "resource": "events"},
        {"type": "PIPES:READ", "resource": "top"},
    ]


@pytest.mark.parametrize(
    "scopes, status, says",
    [
        (["DATASOURCES:READ:nope"], 400, "Data Source 'nope' does not exist"),
        (["PIPES:READ:nope"], 400, "Pipe 'nope' does not exist"),
        (["DATASOURCES:FLY:events"], 400, "Unknown scope"),
        (["DATASOURCES:APPEND"], 400, "needs a resource"),
        (["DATASOURCES:APPEND:events:id > 1"], 400, "cannot carry a filter"),
        (["DATASOURCES:READ:events:id >"], 400, "filter is not valid"),
        (["DATASOURCES:READ:events:nosuchcolumn = 1"], 400, "filter is not valid"),
        (["DATASOURCES:READ:events:id IN (SELECT id FROM events)"], 400, "filter is not valid"),
        (["DATASOURCES:READ:events:file('/etc/passwd') != ''"], 400, "filter is not valid"),
    ],
)
def test_bad_scopes_are_refused_with_the_reason(client, make_events, scopes, status, says):
    make_events(rows=3)
    before = ok(client.get("/v0/tokens"))
    res = create(client, "bad", *scopes)
    assert res.status_code == status and says in res.json()["error"], res.text
    assert ok(client.get("/v0/tokens")) == before


@pytest.mark.parametrize(
    "name, says",
    [
        ("", "required"),
        ("9lives", "Invalid Token name"),
        ("a b", "Invalid Token name"),
        ("system", "reserved"),
        ("x" * 200, "longer"),
    ],
)
def test_token_names_are_validated(client, name, says):
    res = create(client, name, "PIPES:CREATE")
    assert res.status_code == 400 and says in res.json()["error"]


def test_duplicate_name_is_a_conflict(client):
    ok(create(client, "twice", "PIPES:CREATE"))
    assert create(client, "twice", "PIPES:CREATE").status_code == 409


def test_a_tokens_token_cannot_climb_to_admin(client, as_value):
    manager = as_value(ok(create(client, "manager", "TOKENS"))["token"])
    assert ok(create(manager, "helper", "PIPES:CREATE"))["token"]
    res = create(manager, "boss", "ADMIN")
    assert res.status_code == 403 and "Only an admin token can grant" in res.json()["error"]
    listed = {t["name"]: t for t in ok(manager.get("/v0/tokens"))["tokens"]}
    assert "token" not in listed["Workspace admin token"] and "token" in listed["helper"]
    for res in (
        manager.post("/v0/tokens/Workspace admin token/refresh"),
        manager.put("/v0/tokens/Workspace admin token", params={"scope": "TOKENS"}),
        manager.delete("/v0/tokens/Workspace admin token"),
    ):
        assert res.status_code == 403, res.text
    assert "token" not in ok(manager.get("/v0/tokens/Workspace admin token"))


def test_tokens_api_needs_the_tokens_scope(client, as_value):
    reader = as_value(ok(create(client, "plain", "PIPES:CREATE"))["token"])
    for res in (
        reader.get("/v0/tokens"),
        create(reader, "x", "PIPES:CREATE"),
        reader.post("/v0/tokens/plain/refresh"),
    ):
        assert res.status_code == 403 and "TOKENS" in res.json()["error"]


def test_another_workspaces_token_is_not_found(client, other_client):
    ok(create(client, "mine", "PIPES:CREATE"))
    assert other_client.get("/v0/tokens/mine").status_code == 404
    assert other_client.delete("/v0/tokens/mine").status_code == 404
    assert "mine" not in {t["name"] for t in ok(other_client.get("/v0/tokens"))["tokens"]}


def test_scopes_follow_renames_and_do_not_pass_to_a_new_resource_with_the_old_name(
    client, as_value, make_events
):
    make_events(rows=4)
    value = ok(create(client, "follower", "DATASOURCES:READ:events"))["token"]
    reader = as_value(value)
    ok(client.put("/v0/datasources/events", params={"name": "events_v2"}))
    assert ok(client.get("/v0/tokens/follower"))["scopes"] == [
        {"type": "DATASOURCES:READ", "resource": "events_v2"}
    ]
    assert ok(reader.get("/v0/sql", params={"q": "SELECT count() c FROM events_v2"}))["data"] == [{"c": 4}]
    ok(client.post("/v0/datasources", data={"name": "events", "schema": "`id` UInt64"}))
    res = reader.get("/v0/sql", params={"q": "SELECT count() FROM events"})
    assert res.status_code == 403


def test_the_quarantine_can_be_granted(client, as_value, make_events):
    make_events(rows=2)
    value = ok(create(client, "q_reader", "DATASOURCES:READ:events_quarantine"))["token"]
    res = as_value(value).get("/v0/sql", params={"q": "SELECT count() c FROM events_quarantine"})
    assert ok(res)["data"] == [{"c": 0}]


def test_an_append_token_describes_but_does_not_read(client, as_value, make_events):
    make_events(rows=3)
    appender = as_value(ok(create(client, "appender", "DATASOURCES:APPEND:events"))["token"])
    assert ok(appender.get("/v0/datasources/events"))["statistics"]["row_count"] == 3
    assert [d["name"] for d in ok(appender.get("/v0/datasources"))["datasources"]] == ["events"]
    assert appender.get("/v0/sql", params={"q": "SELECT count() FROM events"}).status_code == 403
    assert appender.post("/v0/datasources/events/truncate").status_code == 403
