"""Consumption of an organization (`GET /v0/organizations/{id}/consumption`) and the `organization.*`
service data sources, which only an organization admin's personal token may read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from api_helpers import ok, poll

NDJSON = b'{"id": 1, "name": "a"}\n{"id": 2, "name": "b"}\n{"id": "not a number", "name": "c"}\n'
CSV = b"3,c\n4,d\n5,e\n"
ORG_ONLY = (
    "organization.* service data sources are for organization admins (or an ORG_DATASOURCES:READ token)"
)


@pytest.fixture
def org_admin(platform, bearer):
    """The first user (made at first start): admin of the default organization."""
    return bearer(platform.users.token_value(platform.catalog.users()[0]))


@pytest.fixture
def org(platform):
    return platform.catalog.organizations()[0]


@pytest.fixture
def alice(org_admin, bearer):
    """A user who is not an organization admin."""
    email = f"u{uuid.uuid4().hex[:8]}@example.com"
    body = ok(org_admin.post("/v0/users", json={"email": email, "password": "correct horse"}))
    return bearer(body["token"])


@pytest.fixture
def used_workspace(alice, bearer):
    """A workspace alice made in the organization, with data ingested (2 files and events, one event
    quarantined) and an endpoint called 3 times. Returns (workspace, alice's personal token client)."""
    ws = ok(alice.post("/v0/workspaces", params={"name": "ws_" + uuid.uuid4().hex[:10]}))
    own = bearer(ws["token"])
    ok(own.post("/v0/datasources", data={"name": "events", "schema": "`id` UInt64, `name` String"}))
    ok(own.post("/v0/events", params={"name": "events", "wait": "true"}, content=NDJSON))
    ok(own.post("/v0/datasources", params={"name": "events", "mode": "append", "format": "csv"}, content=CSV))
    ok(
        own.post(
            "/v0/pipes",
            params={"name": "total"},
            json={"nodes": [{"name": "n", "sql": "SELECT count() AS c FROM events"}]},
        )
    )
    ok(own.post("/v0/pipes/total/nodes/n/endpoint"))
    for _ in range(3):
        assert ok(own.get("/v0/pipes/total.json"))["data"] == [{"c": 5}]
    return ws, own


def _today(consumption: dict, workspace_id: str) -> dict:
    ws = next(w for w in consumption["workspaces"] if w["id"] == workspace_id)
    return ws["daily"][-1]


def test_consumption_counts_storage_ingestion_and_requests(org_admin, org, used_workspace):
    ws, _ = used_workspace
    url = f"/v0/organizations/{org.id}/consumption"
    body = poll(
        lambda: ok(org_admin.get(url)),
        lambda b: _today(b, ws["id"])["requests"] == 3 and _today(b, ws["id"])["ingested_rows"] == 5,
    )
    assert body["organization"] == {"id": org.id, "name": org.name}
    assert body["days"] == 7
    mine = next(w for w in body["workspaces"] if w["id"] == ws["id"])
    assert mine["name"] == ws["name"]
    today = datetime.now(UTC).date().isoformat()
    assert [d["date"] for d in mine["daily"]][-1] == today and len(mine["daily"]) == 7
    assert mine["daily"][-1] == {
        "date": today,
        "ingested_rows": 5,
        "ingested_bytes": len(NDJSON) + len(CSV),
        "quarantined_rows": 1,
        "requests": 3,
        "query_api_requests": 0,
        "read_bytes": mine["daily"][-1]["read_bytes"],
    }
    assert mine["daily"][-1]["read_bytes"] > 0
    assert all(d["requests"] == d["ingested_rows"] == 0 for d in mine["daily"][:-1])
    (events,) = mine["storage"]["datasources"]
    assert events["name"] == "events" and events["rows"] == 5 and events["bytes"] > 0
    assert events["quarantine_rows"] == 1
    assert mine["storage"]["rows"] == 5 and mine["storage"]["bytes"] == events["bytes"]
    assert mine["totals"]["requests"] == 3 and mine["totals"]["ingested_rows"] == 5
    # the organization's totals cover this workspace and the others
    totals = body["totals"]
    assert totals["storage"]["rows"] >= 5 and totals["requests"] >= 3 and totals["ingested_rows"] >= 5
    assert totals["daily"][-1]["requests"] == sum(w["daily"][-1]["requests"] for w in body["workspaces"])
    assert len(ok(org_admin.get(url, params={"days": "90"}))["workspaces"][0]["daily"]) == 90


def test_consumption_is_for_organization_admins(org_admin, org, alice, client):
    url = f"/v0/organizations/{org.id}/consumption"
    for days in ("0", "91", "abc", "1.5"):
        res = org_admin.get(url, params={"days": days})
        assert (
            res.status_code == 400
            and "'days' must be a whole number of days from 1 to 90" in res.json()["error"]
        )
    assert ok(org_admin.get(url, params={"days": "1"}))["days"] == 1
    res = alice.get(url)
    assert res.status_code == 404 and "not found" in res.json()["error"]
    assert alice.get(url, params={"days": "abc"}).status_code == 404  # nothing said about what is not yours
    assert org_admin.get(f"/v0/organizations/{uuid.uuid4()}/consumption").status_code == 404
    res = client.get(url)  # a workspace admin token
    assert res.status_code == 403 and "user token" in res.json()["error"]


def _rows(client, q):
    res = client.get("/v0/sql", params={"q": q + " FORMAT JSON"})
    assert res.status_code == 200, res.text
    return res.json()["data"]


def test_organization_sources_show_every_workspace_of_the_org_to_its_admins(
    platform, org_admin, org, used_workspace, bearer
):
    ws, _ = used_workspace
    # another organization's workspace, with a request of its own in the stats
    other_org = platform.workspaces.create_organization("other_" + uuid.uuid4().hex[:6])
    other_ws, other_token = platform.workspaces.create(other_org.id, "ws_" + uuid.uuid4().hex[:10])
    ok(bearer(other_token).get("/v0/sql", params={"q": "SELECT 1"}))
    personal = bearer(ok(org_admin.get(f"/v0/workspaces/{ws['id']}", params={"with_token": "true"}))["token"])

    res = personal.get("/v0/sql", params={"q": "SELECT * FROM organization.workspaces ORDER BY created_at"})
    assert res.status_code == 200, res.text
    meta = [c["name"] for c in res.json()["meta"]]
    assert meta == ["workspace_id", "name", "organization_id", "created_at"]
    listed = res.json()["data"]
    expected = [w for w in platform.catalog.workspaces() if w.organization_id == org.id]
    assert [r["workspace_id"] for r in listed] == [w.id for w in expected]
    assert {r["organization_id"] for r in listed} == {org.id}
    assert other_ws.id not in res.text
    assert not any(w.database in res.text for w in platform.catalog.workspaces())  # no physical names

    storage = poll(
        lambda: _rows(
            personal, f"SELECT * FROM organization.datasources_storage WHERE workspace_id = '{ws['id']}'"
        ),
        lambda rows: len(rows) == 1 and rows[0]["rows"] == 5,
    )
    (events,) = storage
    assert events["workspace_name"] == ws["name"] and events["datasource_name"] == "events"
    assert int(events["bytes"]) > 0 and events["rows_quarantine"] == 1

    stats = poll(
        lambda: _rows(
            personal,
            "SELECT workspace_id, workspace_name, pipe_name, count() AS n FROM organization.pipe_stats_rt "
            "GROUP BY workspace_id, workspace_name, pipe_name",
        ),
        lambda rows: any(r["workspace_id"] == ws["id"] and r["n"] == 3 for r in rows),
    )
    assert {r["workspace_id"] for r in stats} <= {w.id for w in expected}
    assert [
        (r["workspace_name"], r["pipe_name"], r["n"]) for r in stats if r["workspace_id"] == ws["id"]
    ] == [(ws["name"], "total", 3)]
    # pipe_stats is fed by a view of pipe_stats_rt: its part may land just after the source's
    daily_sql = f"SELECT sum(view_count) AS n FROM organization.pipe_stats WHERE workspace_id = '{ws['id']}'"
    assert poll(lambda: _rows(personal, daily_sql), lambda rows: rows == [{"n": 3}]) == [{"n": 3}]
    ops_sql = (
        "SELECT event_type, sum(written_rows) AS rows, sum(read_bytes) AS bytes FROM organization.datasources_ops_log "
        f"WHERE workspace_id = '{ws['id']}' AND event_type LIKE 'append%' GROUP BY event_type ORDER BY event_type"
    )
    ops = poll(lambda: _rows(personal, ops_sql), lambda rows: len(rows) == 2)
    assert ops == [
        {"event_type": "append", "rows": 3, "bytes": len(CSV)},
        {"event_type": "append-hfi", "rows": 2, "bytes": len(NDJSON)},
    ]
    # the other organization's request is in the stats, but not for this organization's admin
    found = poll(
        lambda: platform.engine.execute(
            f"SELECT count() FROM tody_service.pipe_stats_rt WHERE workspace_id = '{other_ws.id}'"
        ).data.strip(),
        lambda n: n != b"0",
    )
    assert found == b"1"
    assert _rows(
        personal, f"SELECT count() AS n FROM organization.pipe_stats_rt WHERE workspace_id = '{other_ws.id}'"
    ) == [{"n": 0}]


def test_organization_sources_are_refused_to_everybody_else(
    platform, org_admin, used_workspace, bearer, client
):
    ws, alice_personal = used_workspace  # alice: admin of her workspace, not of the organization
    admin_token = next(
        platform.tokens.value(t)
        for t in platform.catalog.tokens(ws["id"])
        if t.user_id is None and t.name == "Workspace admin token"
    )
    for caller in (alice_personal, bearer(admin_token), client):
        for name in (
            "workspaces",
            "datasources_storage",
            "pipe_stats_rt",
            "pipe_stats",
            "datasources_ops_log",
        ):
            res = caller.get("/v0/sql", params={"q": f"SELECT count() FROM organization.{name}"})
            assert res.status_code == 403 and res.json()["error"] == ORG_ONLY, res.text
    # unknown organization.* names are just unknown
    personal = bearer(ok(org_admin.get(f"/v0/workspaces/{ws['id']}", params={"with_token": "true"}))["token"])
    res = personal.get("/v0/sql", params={"q": "SELECT * FROM organization.nothing"})
    assert res.status_code == 400 and "not found" in res.json()["error"]


def test_a_pipe_over_organization_sources_answers_only_org_admins(org_admin, used_workspace, bearer):
    ws, alice_personal = used_workspace
    personal = bearer(ok(org_admin.get(f"/v0/workspaces/{ws['id']}", params={"with_token": "true"}))["token"])
    nodes = {"nodes": [{"name": "n", "sql": "SELECT count() AS workspaces FROM organization.workspaces"}]}
    ok(personal.post("/v0/pipes", params={"name": "org_workspaces"}, json=nodes))
    ok(personal.post("/v0/pipes/org_workspaces/nodes/n/endpoint"))
    assert ok(personal.get("/v0/pipes/org_workspaces.json"))["data"][0]["workspaces"] >= 1
    res = alice_personal.get("/v0/pipes/org_workspaces.json")
    assert res.status_code == 403 and res.json()["error"] == ORG_ONLY
    token = ok(personal.post("/v0/tokens", params={"name": "reader", "scope": "PIPES:READ:org_workspaces"}))[
        "token"
    ]
    res = bearer(token).get("/v0/pipes/org_workspaces.json")
    assert res.status_code == 403 and res.json()["error"] == ORG_ONLY


def test_views_and_copies_do_not_read_organization_sources(org_admin, used_workspace, bearer):
    """They run for the workspace, not for the admin who made them."""
    ws, _ = used_workspace
    personal = bearer(ok(org_admin.get(f"/v0/workspaces/{ws['id']}", params={"with_token": "true"}))["token"])
    nodes = {"nodes": [{"name": "n", "sql": "SELECT count() AS workspaces FROM organization.workspaces"}]}
    ok(personal.post("/v0/pipes", params={"name": "org_view"}, json=nodes))
    res = personal.post(
        "/v0/pipes/org_view/nodes/n/materialization", params={"datasource": "mv", "engine": "MergeTree"}
    )
    assert res.status_code == 403 and res.json()["error"] == ORG_ONLY
    ok(personal.post("/v0/datasources", data={"name": "copied", "schema": "`workspaces` UInt64"}))
    ok(personal.post("/v0/pipes", params={"name": "org_copy"}, json=nodes))
    ok(personal.post("/v0/pipes/org_copy/nodes/n/copy", params={"target_datasource": "copied"}))
    res = personal.post("/v0/pipes/org_copy/copy")
    assert res.status_code == 403 and res.json()["error"] == ORG_ONLY


def test_org_datasources_read_tokens_are_granted_by_org_admins_only(org_admin, used_workspace, bearer):
    ws, alice_personal = used_workspace  # alice: admin of her workspace, not of the organization
    scope = {"name": "org_reader", "scope": "ORG_DATASOURCES:READ"}
    res = alice_personal.post("/v0/tokens", params=scope)
    assert res.status_code == 403 and "organization admin" in res.json()["error"]
    personal = bearer(ok(org_admin.get(f"/v0/workspaces/{ws['id']}", params={"with_token": "true"}))["token"])
    reader = bearer(ok(personal.post("/v0/tokens", params=scope))["token"])
    rows = ok(reader.get("/v0/sql", params={"q": "SELECT count() AS c FROM organization.workspaces"}))["data"]
    assert rows[0]["c"] >= 1
    assert (
        reader.get("/v0/sql", params={"q": "SELECT count() FROM events"}).status_code == 403
    )  # nothing else
