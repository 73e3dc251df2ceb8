"""The Data Sources API through the ASGI app, on the real engine and catalog."""

from __future__ import annotations

import pytest

SCHEMA = "`timestamp` DateTime `json:$.timestamp`, `event` LowCardinality(String) `json:$.event`, `value` Float64 `json:$.v`"


def create(client, name="events", **params):
    body = {"name": name, "mode": "create", "schema": SCHEMA, **params}
    return client.post("/v0/datasources", data=body)


def test_create_from_form_fields_and_describe(client):
    res = create(
        client,
        engine="MergeTree",
        engine_sorting_key="event, timestamp",
        engine_partition_key="toYYYYMM(timestamp)",
        engine_ttl="timestamp + toIntervalDay(30)",
    )
    assert res.status_code == 200, res.text
    ds = res.json()["datasource"]
    assert ds["name"] == "events" and ds["id"].startswith("t_")
    got = client.get("/v0/datasources/events").json()
    assert got["id"] == ds["id"]
    assert got["schema"]["sql_schema"].replace(" ", "") == SCHEMA.replace(" ", "")
    assert [c["name"] for c in got["columns"]] == ["timestamp", "event", "value"]
    assert got["engine"]["engine"] == "MergeTree"
    assert got["engine"]["sorting_key"] == "event, timestamp"
    assert "toIntervalDay(30)" in got["engine"]["engine_full"]
    assert got["statistics"] == {"row_count": 0, "bytes": 0}
    assert got["tags"] == {} and got["indexes"] == []
    assert len(got["created_at"]) == len("2019-06-14 09:46:07.884855")
    # by id too
    assert client.get(f"/v0/datasources/{ds['id']}").json()["name"] == "events"


@pytest.mark.parametrize(
    "engine_params",
    [
        {"engine": "ReplacingMergeTree", "engine_ver": "value", "engine_sorting_key": "event"},
        {"engine": "SummingMergeTree", "engine_sorting_key": "event"},
        {"engine": "AggregatingMergeTree", "engine_sorting_key": "event"},
        {"engine": "Null"},
    ],
)
def test_engines(client, engine_params):
    res = create(client, **engine_params)
    assert res.status_code == 200, res.text
    assert res.json()["datasource"]["engine"]["engine"] == engine_params["engine"]


def test_create_from_datafile_body_and_download_it(client, datafile_text):
    res = client.post(
        "/v0/datasources?name=from_file&format=datasource",
        content=datafile_text,
        headers={"Content-Type": "text/plain"},
    )
    assert res.status_code == 200, res.text
    got = client.get("/v0/datasources/from_file.datasource")
    assert got.status_code == 200
    assert got.headers["content-type"] == "text/plain"
    assert got.text == datafile_text


def test_list_rename_truncate_delete(client, engine, workspace):
    assert create(client).status_code == 200
    listed = client.get("/v0/datasources?&attrs=").json()["datasources"]
    assert [d["name"] for d in listed] == ["events"]
    rec_id = listed[0]["id"]
    engine.execute(f"INSERT INTO {workspace.database}.{rec_id} VALUES (now(), 'click', 1.5)")
    assert client.get("/v0/datasources/events").json()["statistics"]["row_count"] == 1

    res = client.put("/v0/datasources/events", data={"name": "clicks", "description": "renamed"})
    assert res.status_code == 200 and res.json()["name"] == "clicks"
    assert client.get("/v0/datasources/events").status_code == 404
    assert client.get("/v0/sql", params={"q": "SELECT count() c FROM clicks"}).json()["data"] == [{"c": 1}]

    assert client.post("/v0/datasources/clicks/truncate").status_code == 200
    assert client.get("/v0/datasources/clicks").json()["statistics"]["row_count"] == 0

    dry = client.delete("/v0/datasources/clicks?dry_run=true")
    assert dry.status_code == 200 and dry.json() == {"dependent_pipes": []}
    assert client.delete("/v0/datasources/clicks").status_code == 204
    assert client.get("/v0/datasources/clicks").status_code == 404
    assert client.get("/v0/datasources").json() == {"datasources": []}


@pytest.mark.parametrize(
    ("params", "status", "fragment"),
    [
        ({"schema": ""}, 400, "schema"),
        ({"schema": "`a` NoSuchType"}, 400, "NoSuchType"),
        ({"schema": "`a` String) ENGINE = File(CSV, '/etc/passwd') --"}, 400, ""),
        ({"name": "1bad"}, 400, "Invalid Data Source name"),
        ({"name": "bad-name"}, 400, "Invalid Data Source name"),
        ({"name": "../../etc"}, 400, "Invalid Data Source name"),
        ({"name": "tinybird"}, 400, "reserved"),
        ({"engine": "NoSuchEngine"}, 400, "NoSuchEngine"),
        ({"engine": "ReplacingMergeTree", "engine_ver": "missing_col"}, 400, "missing_col"),
        ({"engine_sorting_key": "(SELECT 1)"}, 400, ""),
        ({"engine_sorting_key": "file('/etc/passwd')"}, 400, "file"),
        ({"engine_ttl": "timestamp + 1; DROP TABLE x"}, 400, ""),
        ({"mode": "bogus"}, 400, "mode"),
    ],
)
def test_create_refuses_bad_input_clearly(client, params, status, fragment):
    res = create(client, **params)
    assert res.status_code == status, res.text
    assert fragment in res.json()["error"]
    assert client.get("/v0/datasources").json() == {"datasources": []}


def test_duplicate_name_is_409(client):
    assert create(client).status_code == 200
    res = create(client)
    assert res.status_code == 409 and "already exists" in res.json()["error"]


def test_missing_is_404_with_json_error(client):
    for method, path in [
        ("GET", "/v0/datasources/nope"),
        ("PUT", "/v0/datasources/nope"),
        ("DELETE", "/v0/datasources/nope"),
        ("POST", "/v0/datasources/nope/truncate"),
        ("GET", "/v0/datasources/nope.datasource"),
    ]:
        res = client.request(method, path)
        assert res.status_code == 404, (method, path)
        assert "nope" in res.json()["error"]


def test_renaming_a_data_source_that_pipes_use_is_a_conflict(client):
    ok = client.post("/v0/datasources", data={"name": "used", "schema": "`a` UInt8"})
    assert ok.status_code == 200
    assert client.post("/v0/pipes", data={"name": "reader", "sql": "SELECT a FROM used"}).status_code == 200
    res = client.put("/v0/datasources/used", params={"name": "renamed"})
    assert res.status_code == 409 and res.json()["dependent_pipes"] == ["reader"]
    assert client.get("/v0/pipes/reader").status_code == 200
    assert client.get("/v0/sql", params={"q": "SELECT count() FROM used"}).status_code == 200
    assert client.delete("/v0/pipes/reader").status_code == 204
    assert client.put("/v0/datasources/used", params={"name": "renamed"}).status_code == 200
