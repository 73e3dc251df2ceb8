"""Shared data sources: read-only in the destination as `<origin>.<name>`, row filters, unsharing."""

from __future__ import annotations

import pytest
from api_helpers import ok
from starlette.testclient import TestClient

from tody.services.tokens import Scope


@pytest.fixture
def two(app, platform, make_events, client, workspace):
    """`client` owns `events` (30 rows: click/view/buy); `dest` is another workspace of the org."""
    make_events(rows=30)
    org = platform.catalog.organizations()[0]
    dest, token = platform.workspaces.create(org.id, "dest_" + workspace.id[:8])
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield workspace, dest, c


def share(client, dest, **extra):
    return client.post(
        "/v0/datasources/events/share", params={"destination_workspace_name": dest.name, **extra}
    )


def test_the_destination_reads_the_shared_source_read_only(client, two):
    origin, dest, dest_client = two
    qualified = f"{origin.name}.events"
    assert dest_client.get("/v0/sql", params={"q": f"SELECT count() FROM {qualified}"}).status_code == 400
    shared = ok(share(client, dest))
    assert shared["shared_with"] == [{"id": dest.id, "name": dest.name}]
    data = ok(dest_client.get("/v0/sql", params={"q": f"SELECT count() AS c FROM {qualified}"}))["data"]
    assert data == [{"c": 30}]
    listed = {d["name"]: d for d in ok(dest_client.get("/v0/datasources"))["datasources"]}
    assert listed[qualified]["shared_from"]["name"] == origin.name
    assert listed[qualified]["statistics"]["row_count"] == 30
    # read-only: no append, truncate, drop or rename in the destination
    for res in (
        dest_client.post(f"/v0/datasources/{qualified}/truncate"),
        dest_client.delete(f"/v0/datasources/{qualified}"),
        dest_client.put(f"/v0/datasources/{qualified}", params={"name": "mine"}),
    ):
        assert res.status_code == 403 and "read-only" in res.json()["error"], res.text
    res = dest_client.post("/v0/events", params={"name": qualified}, content=b'{"id": 1}\n')
    assert res.status_code in (400, 403)
    assert ok(client.get("/v0/sql", params={"q": "SELECT count() AS c FROM events"}))["data"] == [{"c": 30}]
    # the origin's datafile says where it is shared
    assert f"SHARED_WITH >\n    {dest.name}" in client.get("/v0/datasources/events.datasource").text


def test_pipes_in_the_destination_and_unsharing(client, two):
    origin, dest, dest_client = two
    ok(share(client, dest))
    sql = f"SELECT event, count() AS c FROM {origin.name}.events GROUP BY event ORDER BY event"
    ok(dest_client.post("/v0/pipes", data={"name": "by_event", "sql": sql}))
    ok(dest_client.post("/v0/pipes/by_event/nodes/by_event_0/endpoint"))
    assert len(ok(dest_client.get("/v0/pipes/by_event.json"))["data"]) == 3
    res = client.request(
        "DELETE", "/v0/datasources/events/share", params={"destination_workspace_name": dest.name}
    )
    assert res.status_code == 409 and res.json()["dependent_pipes"] == ["by_event"]
    res = client.delete("/v0/datasources/events")  # nor can the origin drop it meanwhile
    assert res.status_code == 409 and f"{dest.name}.by_event" in res.json()["error"]
    params = {"destination_workspace_name": dest.name, "force": "true"}
    ok(client.request("DELETE", "/v0/datasources/events/share", params=params))
    assert dest_client.get("/v0/pipes/by_event.json").status_code == 400


def test_row_filters_of_destination_tokens_apply(app, client, two, platform):
    origin, dest, _ = two
    ok(share(client, dest))
    qualified = f"{origin.name}.events"
    _, value = platform.tokens.create(
        dest, "buyers", [Scope.parse(f"DATASOURCES:READ:{qualified}:event = 'buy'")]
    )
    with TestClient(app, headers={"Authorization": f"Bearer {value}"}) as c:
        data = ok(c.get("/v0/sql", params={"q": f"SELECT count() AS c, uniq(event) AS u FROM {qualified}"}))
        assert data["data"] == [{"c": 10, "u": 1}]
        res = c.get("/v0/sql", params={"q": "SELECT count() FROM events"})
        assert res.status_code in (400, 403)


def test_a_materialized_view_in_the_destination_reads_the_shared_source(client, two):
    origin, dest, dest_client = two
    ok(share(client, dest))
    target = {
        "name": "counts",
        "schema": "`event` String, `c` UInt64",
        "engine": "SummingMergeTree",
        "engine_sorting_key": "event",
    }
    ok(dest_client.post("/v0/datasources", data=target))
    pipe = {
        "name": "feed",
        "nodes": [
            {
                "name": "m",
                "type": "materialized",
                "datasource": "counts",
                "sql": f"SELECT event, count() AS c FROM {origin.name}.events GROUP BY event",
            }
        ],
    }
    ok(dest_client.post("/v0/pipes", json=pipe))
    ok(
        client.post(
            "/v0/events",
            params={"name": "events", "wait": "true"},
            content=b'{"id": 100, "event": "x", "value": 1}\n',
        )
    )
    data = ok(dest_client.get("/v0/sql", params={"q": "SELECT sum(c) AS c FROM counts WHERE event = 'x'"}))[
        "data"
    ]
    assert data == [{"c": 1}]


def test_sharing_needs_an_admin_and_a_workspace_in_the_org(app, client, two, platform, other_client):
    origin, dest, dest_client = two
    res = client.post("/v0/datasources/events/share", params={"destination_workspace_name": "nope"})
    assert res.status_code == 404
    res = client.post("/v0/datasources/events/share", params={"destination_workspace_name": origin.name})
    assert res.status_code == 400
    _, value = platform.tokens.create(origin, "creator", [Scope.parse("DATASOURCES:CREATE")])
    with TestClient(app, headers={"Authorization": f"Bearer {value}"}) as c:
        assert share(c, dest).status_code == 403
    # the destination cannot share what it was given
    assert dest_client.post(
        f"/v0/datasources/{origin.name}.events/share", params={"destination_workspace_name": origin.name}
    ).status_code in (403, 404)


def test_shared_with_in_a_datafile(client, two):
    origin, dest, dest_client = two
    text = f"SCHEMA >\n    `id` UInt64\n\nSHARED_WITH >\n    {dest.name}\n"
    ok(client.post("/v0/datasources", params={"name": "from_file", "format": "datasource"}, content=text))
    res = dest_client.get("/v0/sql", params={"q": f"SELECT count() AS c FROM {origin.name}.from_file"})
    assert ok(res)["data"] == [{"c": 0}]
    bad = "SCHEMA >\n    `id` UInt64\n\nSHARED_WITH >\n    no_such_workspace\n"
    res = client.post("/v0/datasources", params={"name": "bad_share", "format": "datasource"}, content=bad)
    assert res.status_code == 404
    assert client.get("/v0/datasources/bad_share").status_code == 404  # nothing half-made
