"""Bulk imports through the Data Sources API: append, replace, create from a file; quarantine."""

from __future__ import annotations

import gzip

from starlette.testclient import TestClient

SCHEMA = "`id` UInt64, `name` String"


def count(client, table="events"):
    return client.get("/v0/sql", params={"q": f"SELECT count() AS c FROM {table}"}).json()["data"][0]["c"]


def test_append_csv_multipart_like_the_tb_cli(client):
    assert client.post("/v0/datasources", data={"name": "events", "schema": SCHEMA}).status_code == 200
    res = client.post(
        "/v0/datasources?name=events&mode=append&format=csv", files={"csv": ("csv", b"1,a\n2,b\n3,c\n")}
    )
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["datasource"]["name"] == "events" and body["error"] is False
    assert body["quarantine_rows"] == 0 and body["datasource"]["statistics"]["row_count"] == 3
    assert count(client) == 3


def test_bad_rows_go_to_quarantine_exactly(client):
    assert client.post("/v0/datasources", data={"name": "events", "schema": SCHEMA}).status_code == 200
    data = b"1,a\nnot_a_number,b\n3,c\n4,d,extra\n"
    res = client.post(
        "/v0/datasources?name=events&mode=append", content=data, headers={"Content-Type": "text/html"}
    )  # verdin sends CSV as a raw body
    assert res.status_code == 200, res.text
    assert res.json()["quarantine_rows"] == 2
    assert count(client) == 2 and count(client, "events_quarantine") == 2
    q = "SELECT id, c__error FROM events_quarantine ORDER BY id"
    rows = client.get("/v0/sql", params={"q": q}).json()["data"]
    assert rows[1]["id"] == "not_a_number" and "id" in rows[1]["c__error"][0]


def test_ndjson_gzip_append_and_replace(client):
    schema = "`id` UInt64 `json:$.id`, `name` String `json:$.who.name`"
    assert client.post("/v0/datasources", data={"name": "events", "schema": schema}).status_code == 200
    rows = b"".join(b'{"id": %d, "who": {"name": "n%d"}}\n' % (i, i) for i in range(100))
    res = client.post(
        "/v0/datasources?name=events&mode=append&format=ndjson",
        files={"ndjson": ("ndjson", gzip.compress(rows))},
    )
    assert res.status_code == 200, res.text
    assert count(client) == 100
    res = client.post(
        "/v0/datasources?name=events&mode=replace&format=ndjson",
        files={"ndjson": ("ndjson", b'{"id": 7, "who": {"name": "seven"}}\n')},
    )
    assert res.status_code == 200, res.text
    got = client.get("/v0/sql", params={"q": "SELECT id, name FROM events"}).json()["data"]
    assert got == [{"id": 7, "name": "seven"}]


def test_create_from_a_file_infers_the_schema(client):
    res = client.post(
        "/v0/datasources?name=people&mode=create",
        files={"csv": ("people.csv", b"id,name,score\n1,ann,1.5\n2,bob,2.5\n")},
    )
    assert res.status_code == 200, res.text
    described = client.get("/v0/datasources/people").json()
    assert [c["name"] for c in described["columns"]] == ["id", "name", "score"]
    assert count(client, "people") == 2


def test_append_needs_the_append_scope(app, platform, workspace, client):
    from tody.services.tokens import Scope

    assert client.post("/v0/datasources", data={"name": "events", "schema": SCHEMA}).status_code == 200
    _, reader = platform.tokens.create(workspace, "r", [Scope.parse("DATASOURCES:READ:events")])
    _, appender = platform.tokens.create(workspace, "a", [Scope.parse("DATASOURCES:APPEND:events")])
    res = TestClient(app, headers={"Authorization": f"Bearer {reader}"}).post(
        "/v0/datasources?name=events&mode=append", files={"csv": ("csv", b"1,a\n")}
    )
    assert res.status_code == 403 and "DATASOURCES:APPEND:events" in res.json()["error"]
    res = TestClient(app, headers={"Authorization": f"Bearer {appender}"}).post(
        "/v0/datasources?name=events&mode=append", files={"csv": ("csv", b"1,a\n")}
    )
    assert res.status_code == 200, res.text
    assert count(client) == 1


def test_filtered_token_cannot_read_the_quarantine(app, platform, workspace, client):
    from tody.services.tokens import Scope

    assert client.post("/v0/datasources", data={"name": "events", "schema": SCHEMA}).status_code == 200
    _, token = platform.tokens.create(workspace, "f", [Scope.parse("DATASOURCES:READ:events:id > 1")])
    reader = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    res = reader.get("/v0/sql", params={"q": "SELECT count() FROM events_quarantine"})
    assert res.status_code == 403 and "events_quarantine" in res.json()["error"]


def test_import_errors_are_400(client):
    assert client.post("/v0/datasources", data={"name": "events", "schema": SCHEMA}).status_code == 200
    res = client.post("/v0/datasources?name=events&mode=append&format=xml", files={"csv": ("csv", b"1,a\n")})
    assert res.status_code == 400 and "format" in res.json()["error"]
    res = client.post("/v0/datasources?name=events&mode=append")
    assert res.status_code == 400 and "needs data" in res.json()["error"]
    res = client.post("/v0/datasources?name=events&mode=append&url=http://127.0.0.1:9/x.csv")
    assert res.status_code == 400


def test_replace_staging_tables_left_by_a_crash_are_dropped_at_start(client, platform, workspace, tmp_path):
    from tody.services.ingest.imports import ImportService

    assert client.post("/v0/datasources", data={"name": "events", "schema": SCHEMA}).status_code == 200
    rec = platform.catalog.datasource(workspace.id, "events")
    db = workspace.database
    for leftover in (f"{rec.id}_staging_0a1b2c3d", f"{rec.id}_partial_0a1b2c3d_quarantine"):
        platform.engine.execute(f"CREATE TABLE {db}.{leftover} AS {db}.{rec.id}")
    ImportService(platform.engine, platform.datasources, tmp_path / "spool")
    left = platform.engine.execute(
        f"SELECT name FROM system.tables WHERE database = '{db}'", "TSV"
    ).data.decode()
    assert sorted(left.split()) == sorted([rec.id, f"{rec.id}_quarantine"])
