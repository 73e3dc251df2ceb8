"""The Pipes API: create (JSON, .pipe, form), chain nodes, publish, edit, delete — real engine."""

from __future__ import annotations

import pytest

TOP_PIPE = {
    "name": "top_events",
    "description": "Top events",
    "nodes": [
        {
            "name": "filtered",
            "sql": "%\nSELECT event, value FROM events WHERE value >= {{Float64(min_value, 0)}}",
        },
        {
            "name": "endpoint",
            "sql": "%\nSELECT event, count() AS c FROM filtered GROUP BY event ORDER BY c DESC, event "
            "LIMIT {{Int32(limit, 10, description='max rows')}}",
            "type": "endpoint",
        },
    ],
}


@pytest.fixture
def events(make_events):
    return make_events()


def test_create_from_json_chain_and_call(client, events):
    res = client.post("/v0/pipes", json=TOP_PIPE)
    assert res.status_code == 200, res.text
    pipe = res.json()
    assert pipe["type"] == "endpoint" and pipe["name"] == "top_events"
    assert [n["name"] for n in pipe["nodes"]] == ["filtered", "endpoint"]
    assert pipe["endpoint"] == pipe["nodes"][1]["id"]
    assert pipe["nodes"][0]["dependencies"] == ["events"]
    assert pipe["nodes"][1]["dependencies"] == ["filtered"]
    assert pipe["nodes"][1]["params"][0]["name"] == "limit"

    data = client.get("/v0/pipes/top_events.json").json()
    assert data["data"] == [
        {"event": "buy", "c": 10},
        {"event": "click", "c": 10},
        {"event": "view", "c": 10},
    ]
    data = client.get("/v0/pipes/top_events.json?min_value=20&limit=1").json()
    assert data["data"] == [{"event": "buy", "c": 4}]
    assert client.get("/v0/pipes/top_events").json()["id"] == pipe["id"]
    assert [p["name"] for p in client.get("/v0/pipes?dependencies=true").json()["pipes"]] == ["top_events"]


def test_create_from_form_and_publish_by_node_id(client, events):
    res = client.post("/v0/pipes", data={"name": "counts", "sql": "SELECT count() AS c FROM events"})
    assert res.status_code == 200, res.text
    pipe = res.json()
    assert pipe["type"] == "default" and pipe["nodes"][0]["name"] == "counts_0"
    assert client.get("/v0/pipes/counts.json").status_code == 404
    node_id = pipe["nodes"][0]["id"]
    res = client.post(f"/v0/pipes/counts/nodes/{node_id}/endpoint")
    assert res.status_code == 200 and res.json()["endpoint"] == node_id
    assert client.get("/v0/pipes/counts.json").json()["data"] == [{"c": 30}]
    res = client.delete(f"/v0/pipes/counts/nodes/{node_id}/endpoint")
    assert res.status_code == 200 and res.json()["endpoint"] is None
    assert client.get("/v0/pipes/counts.json").status_code == 404


def test_create_from_pipe_file_and_download(client, events):
    text = (
        "DESCRIPTION >\n    Views only\n\n"
        "NODE only_views\nSQL >\n    SELECT id FROM events WHERE event = 'view'\n\nTYPE endpoint\n"
    )
    res = client.post("/v0/pipes?name=views", content=text, headers={"Content-Type": "text/plain"})
    assert res.status_code == 200, res.text
    assert client.get("/v0/pipes/views.json").json()["rows"] == 10
    got = client.get("/v0/pipes/views.pipe")
    assert got.headers["content-type"] == "text/plain"
    assert "NODE only_views" in got.text and "SELECT id FROM events" in got.text


def test_nodes_add_update_delete_and_rename(client, events):
    assert client.post("/v0/pipes", json=TOP_PIPE).status_code == 200
    res = client.post("/v0/pipes/top_events/nodes", data={"name": "extra", "sql": "SELECT * FROM endpoint"})
    assert res.status_code == 200, res.text
    res = client.put("/v0/pipes/top_events/nodes/extra", data={"sql": "SELECT event FROM filtered"})
    assert res.status_code == 200 and res.json()["sql"] == "SELECT event FROM filtered"
    assert client.delete("/v0/pipes/top_events/nodes/filtered").status_code == 409  # still read
    assert client.delete("/v0/pipes/top_events/nodes/extra").status_code == 204
    res = client.put("/v0/pipes/top_events", data={"name": "best_events"})
    assert res.status_code == 200 and res.json()["name"] == "best_events"
    assert client.get("/v0/pipes/best_events.json").status_code == 200
    assert client.delete("/v0/pipes/best_events").status_code == 204
    assert client.get("/v0/pipes/best_events").status_code == 404


def test_pipes_read_other_pipes_endpoints_and_sql_sees_them(client, events):
    assert client.post("/v0/pipes", json=TOP_PIPE).status_code == 200
    res = client.post(
        "/v0/pipes",
        json={
            "name": "top_one",
            "nodes": [{"name": "pick", "sql": "SELECT event FROM top_events LIMIT 1", "type": "endpoint"}],
        },
    )
    assert res.status_code == 200, res.text
    assert client.get("/v0/pipes/top_one.json").json()["data"] == [{"event": "buy"}]
    res = client.get("/v0/sql", params={"q": "SELECT count() AS n FROM top_events"})
    assert res.json()["data"] == [{"n": 3}]
    res = client.get("/v0/sql", params={"q": "SELECT count() AS n FROM filtered", "pipeline": "top_events"})
    assert res.json()["data"] == [{"n": 30}]
    # a datasource used by a pipe cannot be dropped without force
    res = client.delete("/v0/datasources/events")
    assert res.status_code == 409 and res.json()["dependent_pipes"] == ["top_events"]
    assert client.delete("/v0/datasources/events?dry_run=true").json() == {"dependent_pipes": ["top_events"]}


@pytest.mark.parametrize(
    ("nodes", "fragment"),
    [
        ([{"name": "a", "sql": "SELECT * FROM nope"}], "[node a]"),
        ([{"name": "a", "sql": "SELECT * FROM b"}, {"name": "b", "sql": "SELECT 1"}], "b"),
        ([{"name": "a", "sql": "SELECT * FROM system.tables"}], "[node a]"),
        ([{"name": "a", "sql": "DROP TABLE events"}], "[node a]"),
        ([{"name": "1a", "sql": "SELECT 1"}], "not a valid node name"),
        ([{"name": "p", "sql": "SELECT 1"}], "same name"),
        ([{"name": "a", "sql": "%\nSELECT {{ x.__class__ }}"}], ""),
    ],
)
def test_bad_pipes_are_400_naming_the_node(client, events, nodes, fragment):
    res = client.post("/v0/pipes", json={"name": "p", "nodes": nodes})
    assert res.status_code == 400, res.text
    assert fragment in res.json()["error"]
    assert client.get("/v0/pipes").json() == {"pipes": []}


def test_cycle_between_pipes_is_refused(client, events):
    assert (
        client.post(
            "/v0/pipes",
            json={"name": "p1", "nodes": [{"name": "n1", "sql": "SELECT 1 AS x", "type": "endpoint"}]},
        ).status_code
        == 200
    )
    assert (
        client.post(
            "/v0/pipes",
            json={"name": "p2", "nodes": [{"name": "n2", "sql": "SELECT x FROM p1", "type": "endpoint"}]},
        ).status_code
        == 200
    )
    res = client.post(
        "/v0/pipes?force=true",
        json={"name": "p1", "nodes": [{"name": "n1", "sql": "SELECT x FROM p2", "type": "endpoint"}]},
    )
    assert res.status_code == 400 and "cycle" in res.json()["error"]


def test_duplicate_pipe_is_409_unless_forced(client, events):
    assert client.post("/v0/pipes", json=TOP_PIPE).status_code == 200
    assert client.post("/v0/pipes", json=TOP_PIPE).status_code == 409
    first = client.get("/v0/pipes/top_events").json()["id"]
    res = client.post("/v0/pipes?force=true", json=TOP_PIPE)
    assert res.status_code == 200 and res.json()["id"] == first


def test_indented_template_sql_from_clients_downloads_as_written(client, events):
    # the tb CLI sends a templated node's SQL straight from the datafile block: "%\n    SELECT …"
    body = {
        "name": "ind",
        "nodes": [
            {
                "name": "n",
                "type": "endpoint",
                "sql": "%\n    SELECT id\n    FROM events\n    LIMIT {{Int32(l, 1)}}",
            }
        ],
    }
    assert client.post("/v0/pipes", json=body).status_code == 200
    assert (
        client.get("/v0/pipes/ind").json()["nodes"][0]["sql"]
        == "%\nSELECT id\nFROM events\nLIMIT {{Int32(l, 1)}}"
    )
    text = client.get("/v0/pipes/ind.pipe").text
    assert "    %\n    SELECT id\n    FROM events\n" in text
