"""The Query API: formats, errors and the gate, through the ASGI app."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest


@pytest.fixture
def events(make_events):
    return make_events(rows=100, kinds=("click", "view"), scale=0.5)


def test_json_by_default_with_meta_and_statistics(client, events):
    res = client.get(
        "/v0/sql", params={"q": "SELECT event, count() AS c FROM events GROUP BY event ORDER BY event"}
    )
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("application/json")
    body = res.json()
    assert body["meta"] == [{"name": "event", "type": "String"}, {"name": "c", "type": "UInt64"}]
    assert body["data"] == [{"event": "click", "c": 50}, {"event": "view", "c": 50}]
    assert body["rows"] == 2
    assert set(body["statistics"]) == {"elapsed", "rows_read", "bytes_read"}
    assert body["statistics"]["rows_read"] == 100


@pytest.mark.parametrize(
    ("fmt", "content_type", "expected"),
    [
        ("CSV", "text/csv", b'"click",50\n"view",50\n'),
        ("CSVWithNames", "text/csv", b'"event","c"\n"click",50\n"view",50\n'),
        ("TSV", "text/tab-separated-values", b"click\t50\nview\t50\n"),
        ("TSVWithNames", "text/tab-separated-values", b"event\tc\nclick\t50\nview\t50\n"),
        ("JSONEachRow", "application/x-ndjson", b'{"event":"click","c":50}\n{"event":"view","c":50}\n'),
    ],
)
def test_format_clause_is_honoured(client, events, fmt, content_type, expected):
    q = f"SELECT event, count() AS c FROM events GROUP BY event ORDER BY event FORMAT {fmt}"
    res = client.get("/v0/sql", params={"q": q})
    assert res.status_code == 200, res.text
    assert res.headers["content-type"].startswith(content_type)
    assert res.content == expected


def test_parquet(client, events):
    res = client.get("/v0/sql", params={"q": "SELECT id FROM events ORDER BY id FORMAT Parquet"})
    assert res.status_code == 200
    table = pq.read_table(io.BytesIO(res.content))
    assert table.column("id").to_pylist() == list(range(100))


def test_post_raw_body_and_form(client, events):
    raw = client.post(
        "/v0/sql",
        content=b"SELECT count() AS c FROM events FORMAT JSON",
        headers={"Content-Type": "text/plain"},
    )
    assert raw.json()["data"] == [{"c": 100}]
    form = client.post("/v0/sql", data={"q": "SELECT count() AS c FROM events"})
    assert form.json()["data"] == [{"c": 100}]


@pytest.mark.parametrize(
    ("q", "status", "fragment"),
    [
        ("", 400, "Missing query"),
        ("SELECT * FROM nope", 400, "nope"),
        ("SELECT nosuchcolumn FROM events", 400, "nosuchcolumn"),
        ("SELECT 1 FORMAT XML", 400, "XML"),
        ("SELECT * FROM system.tables", 400, "system"),
        ("DROP TABLE events", 400, ""),
        ("SELECT 1; SELECT 2", 400, ""),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", 400, "file"),
        ("SELECT count() FROM numbers(1000000000000000)", 400, ""),
        ("SELEC 1", 400, ""),
    ],
)
def test_errors_are_4xx_json(client, events, q, status, fragment):
    res = client.get("/v0/sql", params={"q": q})
    assert res.status_code == status, res.text
    assert fragment in res.json()["error"]


def test_errors_name_logical_tables_never_physical(client, events, workspace):
    res = client.get("/v0/sql", params={"q": "SELECT toDate(event) FROM events"})
    assert res.status_code == 400
    assert workspace.database not in res.text and events not in res.text


def test_timeout_is_408(client):
    # Under the rows limit, light on memory, long on CPU: only the time limit (3 s in tests) stops it.
    q = (
        "SELECT count() FROM numbers(900000000) "
        "WHERE sipHash64(number, number) % 7 = 3 AND cityHash64(toString(number)) > 5"
    )
    res = client.get("/v0/sql", params={"q": q})
    assert res.status_code == 408, res.text
    assert "time limit" in res.json()["error"]


def test_other_workspaces_are_invisible(client, other_client, events):
    res = other_client.get("/v0/sql", params={"q": "SELECT count() FROM events"})
    assert res.status_code == 400 and "not found" in res.json()["error"]


def test_sql_tables(client):
    res = client.post("/v0/sql_tables", data={"q": "SELECT * FROM a JOIN b ON a.x = b.x", "raising": "true"})
    assert res.status_code == 200
    assert res.json()["tables"] == [["", "a", ""], ["", "b", ""]]


def test_json_limit_reports_rows_before_limit(client, events):
    body = client.get("/v0/sql", params={"q": "SELECT id FROM events ORDER BY id LIMIT 3"}).json()
    assert body["rows"] == 3 and body["rows_before_limit_at_least"] == 100


def test_large_row_formats_stream(client):
    q = "SELECT number, toString(number) AS s FROM numbers(2000000) FORMAT CSV"
    with client.stream("GET", "/v0/sql", params={"q": q}) as res:
        assert res.status_code == 200
        assert "content-length" not in res.headers  # chunked, never held whole
        lines = sum(chunk.count(b"\n") for chunk in res.iter_bytes())
    assert lines == 2_000_000


def test_a_body_over_max_body_bytes_is_413_before_it_is_read(client, platform):
    limit = platform.config.max_body_bytes
    res = client.post("/v0/sql", content=b"SELECT 1 -- " + b"x" * limit)
    assert res.status_code == 413 and "max_body_bytes" in res.json()["error"]
    res = client.post(
        "/v0/pipes", content=b"{" + b" " * limit + b"}", headers={"Content-Type": "application/json"}
    )
    assert res.status_code == 413
