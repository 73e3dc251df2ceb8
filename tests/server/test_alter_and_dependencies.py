"""`POST /v0/datasources/{name}/alter` (safe in-place changes) and `GET /v0/dependencies`."""

from __future__ import annotations

from api_helpers import ok, sql

SCHEMA = "`id` UInt64, `event` String, `value` Float64"


def test_adding_columns_keeps_rows_and_ingestion(client, make_events):
    make_events(rows=5)
    new_schema = SCHEMA + ", `country` LowCardinality(String) DEFAULT 'ES', `score` Nullable(Int32)"
    dry = ok(client.post("/v0/datasources/events/alter", data={"schema": new_schema, "dry": "true"}))
    assert dry["operations"] == [
        "ADD COLUMN `country` LowCardinality(String) DEFAULT 'ES'",
        "ADD COLUMN `score` Nullable(Int32)",
    ]
    assert len(ok(client.get("/v0/datasources/events"))["columns"]) == 3
    done = ok(client.post("/v0/datasources/events/alter", data={"schema": new_schema}))
    assert [c["name"] for c in done["datasource"]["columns"]][-2:] == ["country", "score"]
    assert sql(client, "SELECT count() AS c, any(country) AS k FROM events") == [{"c": 5, "k": "ES"}]
    body = b'{"id": 100, "event": "x", "value": 1, "country": "FR", "score": 7}\n{"id": 101, "event": "y", "value": 2, "score": "abc"}\n'
    res = ok(client.post("/v0/events", params={"name": "events", "wait": "true"}, content=body))
    assert res == {"successful_rows": 1, "quarantined_rows": 1}
    assert sql(client, "SELECT country, score FROM events WHERE id = 100") == [{"country": "FR", "score": 7}]
    again = client.post("/v0/datasources/events/alter", data={"schema": new_schema})
    assert again.status_code == 400 and "There were no operations to perform" in again.json()["error"]
    assert "`score` Nullable(Int32)" in client.get("/v0/datasources/events.datasource").text


def test_unsafe_changes_are_refused_with_what_differs(client, make_events):
    make_events(rows=3)
    for schema, says in (
        ("`id` UInt64, `event` String", "(removed)"),
        ("`id` UInt64, `event` LowCardinality(String), `value` Float64", "differ"),
        ("`id` UInt64, `value` Float64, `event` String", "differ"),
        (SCHEMA + ", `id` UInt8", "appears twice"),
        (SCHEMA + ", `x` String DEFAULT file('/etc/passwd')", "Column 'x'"),
        ("not a schema", "does not parse"),
    ):
        res = client.post("/v0/datasources/events/alter", data={"schema": schema})
        assert res.status_code == 400 and says in res.json()["error"], (schema, res.text)
    assert len(ok(client.get("/v0/datasources/events"))["columns"]) == 3


def test_description_and_ttl(client):
    ok(client.post("/v0/datasources", data={"name": "logs", "schema": "`ts` DateTime, `m` String"}))
    out = ok(
        client.post(
            "/v0/datasources/logs/alter", data={"description": "app logs", "ttl": "ts + toIntervalDay(7)"}
        )
    )
    assert out["operations"] == ["MODIFY DESCRIPTION", "MODIFY TTL ts + toIntervalDay(7)"]
    described = ok(client.get("/v0/datasources/logs"))
    assert described["description"] == "app logs" and "TTL" in described["engine"]["engine_full"]
    out = ok(client.post("/v0/datasources/logs/alter", data={"ttl": "false"}))
    assert out["operations"] == ["REMOVE TTL"]
    res = client.post("/v0/datasources/logs/alter", data={"ttl": "sleep(3)"})
    assert res.status_code == 400


def test_dependencies(client, make_events):
    make_events(rows=3)
    ok(client.post("/v0/datasources", data={"name": "lonely", "schema": "`a` UInt8"}))
    ok(client.post("/v0/pipes", data={"name": "p1", "sql": "SELECT count() AS c FROM events"}))
    ok(client.post("/v0/pipes/p1/nodes/p1_0/endpoint"))
    ok(client.post("/v0/pipes", data={"name": "p2", "sql": "SELECT c FROM p1"}))
    deps = ok(client.get("/v0/dependencies"))
    assert deps == {"dependencies": {"events": ["p1"], "lonely": []}, "incompatible_datasources": {}}
    assert ok(client.get("/v0/dependencies", params={"recursive": "true"}))["dependencies"]["events"] == [
        "p1",
        "p2",
    ]
    assert ok(client.get("/v0/dependencies", params={"no_deps": "true"}))["dependencies"] == {"lonely": []}
    assert ok(client.get("/v0/dependencies", params={"datasource": "lonely"}))["dependencies"] == {
        "lonely": []
    }
    assert ok(client.get("/v0/dependencies", params={"match": "^ev"}))["dependencies"] == {"events": ["p1"]}
    assert client.get("/v0/dependencies", params={"match": "("}).status_code == 400
