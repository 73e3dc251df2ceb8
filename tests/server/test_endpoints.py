"""Calling endpoints: formats, parameters, q=, errors, permissions, OpenAPI and endpoint stats."""

from __future__ import annotations

import io
import time

import pyarrow.parquet as pq
import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient

PIPE = {
    "name": "by_event",
    "description": "Counts per event",
    "nodes": [
        {
            "name": "endpoint",
            "type": "endpoint",
            "sql": "%\nSELECT event, count() AS c, sum(value) AS total FROM events\n"
            "WHERE 1 = 1 {% if defined(event) %} AND event = {{String(event, description='event name')}} {% end %}\n"
            "{% if defined(ids) %} AND id IN {{Array(ids, 'UInt64')}} {% end %}\n"
            "GROUP BY event ORDER BY event LIMIT {{Int32(limit, 10, required=False)}}",
        }
    ],
}


@pytest.fixture
def endpoint(client, make_events):
    make_events()
    res = client.post("/v0/pipes", json=PIPE)
    assert res.status_code == 200, res.text
    return res.json()


def test_json_shape_and_params(client, endpoint):
    body = client.get("/v0/pipes/by_event.json").json()
    assert body["meta"][0] == {"name": "event", "type": "String"}
    assert body["rows"] == 3 and body["rows_before_limit_at_least"] == 3
    assert set(body["statistics"]) == {"elapsed", "rows_read", "bytes_read"}
    assert client.get("/v0/pipes/by_event.json?event=view").json()["data"] == [
        {"event": "view", "c": 10, "total": 145}
    ]
    assert client.get("/v0/pipes/by_event.json?ids=1&ids=2").json()["rows"] == 2
    assert client.get("/v0/pipes/by_event.json?ids=1,2,4").json()["rows"] == 2
    assert client.post("/v0/pipes/by_event.json", json={"event": "buy", "limit": 5}).json()["rows"] == 1
    # tb CLI noise is ignored
    assert client.get("/v0/pipes/by_event.json?cli_version=6.5.5&from=ui").status_code == 200


@pytest.mark.parametrize(
    ("ext", "content_type", "check"),
    [
        ("csv", "text/csv", lambda b: b == b'"buy",10,155\n"click",10,135\n"view",10,145\n'),
        ("csvwithnames", "text/csv", lambda b: b.startswith(b'"event","c","total"\n')),
        (
            "ndjson",
            "application/x-ndjson",
            lambda b: b.splitlines()[0] == b'{"event":"buy","c":10,"total":155}',
        ),
        (
            "parquet",
            "application/vnd.apache.parquet",
            lambda b: pq.read_table(io.BytesIO(b)).column("event").to_pylist() == ["buy", "click", "view"],
        ),
    ],
)
def test_formats(client, endpoint, ext, content_type, check):
    res = client.get(f"/v0/pipes/by_event.{ext}")
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith(content_type)
    assert check(res.content)


def test_prometheus_format(client, engine, workspace):
    res = client.post(
        "/v0/pipes",
        json={
            "name": "metrics",
            "nodes": [
                {
                    "name": "m",
                    "type": "endpoint",
                    "sql": "SELECT 'requests_total' AS name, 42 AS value, map('route', '/x') AS labels",
                }
            ],
        },
    )
    assert res.status_code == 200, res.text
    res = client.get("/v0/pipes/metrics.prometheus")
    assert res.status_code == 200
    assert 'requests_total{route="/x"} 42' in res.text


def test_q_runs_sql_over_the_result(client, endpoint):
    res = client.get("/v0/pipes/by_event.json", params={"q": "SELECT sum(c) AS n FROM _"})
    assert res.json()["data"] == [{"n": 30}]
    res = client.get("/v0/pipes/by_event.json", params={"q": "SELECT * FROM system.tables"})
    assert res.status_code == 400


@pytest.mark.parametrize(
    ("query", "status", "fragment"),
    [
        ("limit=abc", 400, "limit"),
        ("ids=1,x", 400, "ids"),
        ("event=' OR 1=1 --", 200, ""),
    ],
)
def test_bad_params(client, endpoint, query, status, fragment):
    res = client.get(f"/v0/pipes/by_event.json?{query}")
    assert res.status_code == status, res.text
    if status == 200:
        assert res.json()["rows"] == 0  # the injection was only ever a string value
    else:
        assert fragment in res.json()["error"]


def test_unknown_unpublished_and_forbidden(app, platform, client, workspace, endpoint):
    assert client.get("/v0/pipes/nope.json").status_code == 404
    assert client.get("/v0/pipes/by_event.xml").status_code == 404
    from tody.services.tokens import Scope

    _, token = platform.tokens.create(workspace, "reader", [Scope.parse("PIPES:READ:by_event")])
    reader = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    assert reader.get("/v0/pipes/by_event.json").status_code == 200  # no DATASOURCES:READ needed
    assert reader.get("/v0/sql?q=SELECT count() FROM events").status_code == 403
    _, other = platform.tokens.create(workspace, "other", [Scope.parse("PIPES:READ:something_else")])
    res = TestClient(app, headers={"Authorization": f"Bearer {other}"}).get("/v0/pipes/by_event.json")
    assert res.status_code == 403 and "PIPES:READ:by_event" in res.json()["error"]


def test_custom_error_status(client, endpoint):
    res = client.post(
        "/v0/pipes",
        json={
            "name": "guarded",
            "nodes": [
                {
                    "name": "g",
                    "type": "endpoint",
                    "sql": "%\n{% if not defined(key) %}{{ error('key is required here', 403) }}{% end %}SELECT 1 AS one",
                }
            ],
        },
    )
    assert res.status_code == 200, res.text
    res = client.get("/v0/pipes/guarded.json")
    assert res.status_code == 403 and res.json()["error"] == "key is required here"
    assert client.get("/v0/pipes/guarded.json?key=x").json()["data"] == [{"one": 1}]


def test_openapi_is_valid_and_describes_params(client, endpoint):
    doc = client.get("/v0/pipes/openapi.json").json()
    validate(doc)
    op = doc["paths"]["/v0/pipes/by_event.json"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["limit"]["schema"]["type"] == "integer" and params["limit"]["schema"]["default"] == 10
    assert params["event"]["description"] == "event name"
    assert params["ids"]["schema"] == {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 2**64 - 1},
    }
    row = op["responses"]["200"]["content"]["application/json"]["schema"]["properties"]["data"]["items"]
    assert row["properties"] == {
        "event": {"type": "string"},
        "c": {"type": "integer"},
        "total": {"type": "number"},
    }


def test_endpoint_calls_land_in_pipe_stats(client, endpoint):
    client.get("/v0/pipes/by_event.json?event=view")
    client.get("/v0/pipes/by_event.json?limit=bad")
    q = (
        "SELECT pipe_name, status_code, error, result_rows, parameters['event'] AS e, url "
        "FROM tinybird.pipe_stats_rt WHERE pipe_name = 'by_event' "
        "ORDER BY start_datetime, status_code FORMAT JSON"
    )
    deadline = time.monotonic() + 5
    rows = []
    while time.monotonic() < deadline:
        rows = client.get("/v0/sql", params={"q": q}).json()["data"]
        if len(rows) >= 2:
            break
        time.sleep(0.2)
    assert {(r["status_code"], r["error"]) for r in rows} == {(200, 0), (400, 1)}
    ok = next(r for r in rows if r["status_code"] == 200)
    assert ok["pipe_name"] == "by_event" and ok["result_rows"] == 1 and ok["e"] == "view"
    assert ok["url"] == "/v0/pipes/by_event.json?event=view"  # path and query, never the token
    daily = client.get(
        "/v0/sql", params={"q": "SELECT sum(view_count) AS v, sum(error_count) AS e FROM tinybird.pipe_stats"}
    ).json()["data"]
    assert daily == [{"v": 2, "e": 1}]


def test_stats_are_per_workspace(client, other_client, endpoint):
    client.get("/v0/pipes/by_event.json")
    time.sleep(1.2)
    res = other_client.get("/v0/sql", params={"q": "SELECT count() AS n FROM tinybird.pipe_stats_rt"})
    assert res.json()["data"] == [{"n": 0}]


def test_query_api_requests_are_logged_as_query_api(client, endpoint):
    assert client.get("/v0/sql", params={"q": "SELECT count() FROM events"}).status_code == 200
    assert client.get("/v0/sql", params={"q": "SELECT * FROM nope"}).status_code == 400
    q = "SELECT pipe_id, status_code FROM tinybird.pipe_stats_rt WHERE pipe_name = 'query_api' ORDER BY status_code"
    rows: list = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        rows = client.get("/v0/sql", params={"q": q}).json()["data"]
        if len(rows) >= 2:
            break
        time.sleep(0.2)
    assert rows == [
        {"pipe_id": "query_api", "status_code": 200},
        {"pipe_id": "query_api", "status_code": 400},
    ]


def test_endpoint_timeout_is_408(client):
    heavy = (
        "SELECT count() AS n FROM numbers(900000000) "
        "WHERE sipHash64(number, number) % 7 = 3 AND cityHash64(toString(number)) > 5"
    )
    res = client.post(
        "/v0/pipes", json={"name": "slow", "nodes": [{"name": "n", "type": "endpoint", "sql": heavy}]}
    )
    assert res.status_code == 200, res.text
    res = client.get("/v0/pipes/slow.json")
    assert res.status_code == 408 and "time limit" in res.json()["error"]
