"""The Events API: NDJSON/JSON events through the write-ahead log into a data source and its quarantine."""

from __future__ import annotations

import dataclasses
import gzip
import threading

import orjson
import pytest
from api_helpers import poll, sql
from starlette.testclient import TestClient

from tody.services.ratelimit import RateLimiter
from tody.services.tokens import Scope

SCHEMA = "`id` UInt64 `json:$.id`, `name` String `json:$.who.name`, `score` Nullable(Float64) `json:$.score`"


def count(client, table="events"):
    return sql(client, f"SELECT count() AS c FROM {table}")[0]["c"]


@pytest.fixture
def events(client):
    assert client.post("/v0/datasources", data={"name": "events", "schema": SCHEMA}).status_code == 200
    return client


def ndjson(rows) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


def good(i):
    return {"id": i, "who": {"name": f"n{i}"}, "score": i / 2}


def test_202_once_logged_then_visible(events, platform):
    res = events.post("/v0/events?name=events", content=ndjson(good(i) for i in range(10)))
    assert res.status_code == 202, res.text
    assert res.json() == {"successful_rows": 10, "quarantined_rows": 0}
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert header in res.headers
    platform.events.batcher.wait_flushed(platform.events.wal.last_lsn, timeout=10)
    assert sql(events, "SELECT id, name, score FROM events ORDER BY id LIMIT 2") == [
        {"id": 0, "name": "n0", "score": 0},
        {"id": 1, "name": "n1", "score": 0.5},
    ]
    assert count(events) == 10


@pytest.mark.parametrize("bad_share", [0, 1, 50, 100])
def test_wait_true_answers_exact_counts_per_request(events, bad_share):
    n = 200
    bad = set(range(0, n, 100 // bad_share)) if bad_share else set()
    rows = [{"id": "not a number", "who": {"name": "x"}} if i in bad else good(i) for i in range(n)]
    res = events.post("/v0/events?name=events&wait=true", content=ndjson(rows))
    assert res.status_code == 200, res.text
    assert res.json() == {"successful_rows": n - len(bad), "quarantined_rows": len(bad)}
    assert count(events) == n - len(bad)
    assert count(events, "events_quarantine") == len(bad)


def test_lines_that_are_not_json_objects_empty_lines_and_bom(events):
    body = b'\xef\xbb\xbf{"id": 1, "who": {"name": "a"}}\n\n   \nnot json\n[1, 2]\n{"id": 2, "who": {"name": "b"}}'
    res = events.post("/v0/events?name=events&wait=true", content=body)
    assert res.status_code == 200, res.text
    assert res.json() == {"successful_rows": 2, "quarantined_rows": 2}
    reasons = sql(events, "SELECT c__error FROM events_quarantine ORDER BY c__error")
    assert [r["c__error"][0].split(":")[0] for r in reasons] == [
        "the line is not a JSON object",
        "the line is not valid JSON",
    ]


def test_quarantine_keeps_original_values_and_reasons(events):
    res = events.post(
        "/v0/events?name=events&wait=true", content=b'{"id": -5, "who": {"name": "x"}, "score": "high"}\n'
    )
    assert res.json() == {"successful_rows": 0, "quarantined_rows": 1}
    row = sql(
        events, "SELECT id, name, score, c__error_column, c__error, c__import_id FROM events_quarantine"
    )[0]
    assert (row["id"], row["name"], row["score"]) == ("-5", "x", "high")
    assert row["c__error_column"] == ["id", "score"]
    assert "UInt64" in row["c__error"][0] and "Float64" in row["c__error"][1]
    assert row["c__import_id"]


def test_concurrent_requests_share_one_insert(events, platform):
    batcher = platform.events.batcher
    before = batcher.flushes
    answers = []

    def send(i):
        answers.append(events.post("/v0/events?name=events&wait=true", content=ndjson([good(i)])).json())

    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [{"successful_rows": 1, "quarantined_rows": 0}] * 20
    assert count(events) == 20
    assert batcher.flushes - before < 20  # batched: never one INSERT per request


def test_json_format_array_and_single_object(events):
    res = events.post(
        "/v0/events?name=events&format=json&wait=true", content=orjson.dumps([good(1), good(2)])
    )
    assert res.json() == {"successful_rows": 2, "quarantined_rows": 0}
    res = events.post("/v0/events?name=events&format=json&wait=true", content=orjson.dumps(good(3)))
    assert res.json() == {"successful_rows": 1, "quarantined_rows": 0}
    res = events.post("/v0/events?name=events&format=json", content=b"[{")
    assert res.status_code == 400 and "format=json" in res.json()["error"]
    assert count(events) == 3


def test_gzip_with_and_without_content_encoding(events):
    body = gzip.compress(ndjson(good(i) for i in range(50)))
    res = events.post("/v0/events?name=events&wait=true", content=body, headers={"Content-Encoding": "gzip"})
    assert res.json() == {"successful_rows": 50, "quarantined_rows": 0}
    res = events.post("/v0/events?name=events&wait=true", content=body)
    assert res.json() == {"successful_rows": 50, "quarantined_rows": 0}
    res = events.post("/v0/events?name=events", content=body[:-20], headers={"Content-Encoding": "gzip"})
    assert res.status_code == 400 and "gzip" in res.json()["error"]
    assert count(events) == 100


def test_form_encoded_body_as_curl_d_sends_it(events):
    res = events.post(
        "/v0/events?name=events&wait=true",
        content=ndjson([good(1)]),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert res.json() == {"successful_rows": 1, "quarantined_rows": 0}


def test_body_over_the_limit_is_413(events, platform, monkeypatch):
    monkeypatch.setattr(platform, "config", dataclasses.replace(platform.config, events_max_body_bytes=1000))
    res = events.post("/v0/events?name=events", content=ndjson(good(i) for i in range(100)))
    assert res.status_code == 413 and "at most 1000" in res.json()["error"]
    bomb = gzip.compress(b" " * 20_000 + ndjson([good(1)]))
    res = events.post("/v0/events?name=events", content=bomb, headers={"Content-Encoding": "gzip"})
    assert res.status_code == 413 and "decompressed" in res.json()["error"]
    assert count(events) == 0


def test_rate_limit_answers_429_with_headers(events, platform, monkeypatch):
    monkeypatch.setattr(platform, "events_limiter", RateLimiter(3, window=60))
    statuses = [events.post("/v0/events?name=events", content=ndjson([good(i)])) for i in range(4)]
    assert [r.status_code for r in statuses] == [202, 202, 202, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in statuses] == ["2", "1", "0", "0"]
    refused = statuses[-1]
    assert int(refused.headers["Retry-After"]) >= 1 and refused.headers["X-RateLimit-Limit"] == "3"
    assert "3 requests per 60 s" in refused.json()["error"]
    other = events.post("/v0/events?name=another", content=ndjson([good(1)]))  # limits are per data source
    assert other.status_code == 202


def test_missing_data_source_is_created_from_the_events(client):
    body = b'{"ts": "2024-05-01 10:00:00", "user": {"id": 7, "tags": ["a"]}, "v": 1.5}\n'
    res = client.post("/v0/events?name=auto_created&wait=true", content=body)
    assert res.status_code == 200, res.text
    described = client.get("/v0/datasources/auto_created").json()
    assert "`user_id` Int64 `json:$.user.id`" in described["schema"]["sql_schema"]
    assert sql(client, "SELECT user_id, v FROM auto_created") == [{"user_id": 7, "v": 1.5}]


def test_scopes(app, platform, workspace, events):
    def as_token(*scopes):
        _, value = platform.tokens.create(
            workspace, f"t{len(scopes)}{scopes}", [Scope.parse(s) for s in scopes]
        )
        return TestClient(app, headers={"Authorization": f"Bearer {value}"})

    with as_token("DATASOURCES:APPEND:events") as appender:
        assert appender.post("/v0/events?name=events", content=ndjson([good(1)])).status_code == 202
        res = appender.post("/v0/events?name=unknown", content=ndjson([good(1)]))
        assert res.status_code == 403 and "DATASOURCES:CREATE" in res.json()["error"]
    with as_token("DATASOURCES:READ:events") as reader:
        assert reader.post("/v0/events?name=events", content=ndjson([good(2)])).status_code == 403
    res = events.post("/v0/events", content=ndjson([good(1)]))
    assert res.status_code == 400 and "name" in res.json()["error"]


def test_each_flush_writes_an_ops_log_row(events, platform):
    res = events.post("/v0/events?name=events&wait=true", content=ndjson([good(1), {"id": "x"}]))
    assert res.json() == {"successful_rows": 1, "quarantined_rows": 1}
    q = (
        "SELECT event_type, result, rows, rows_quarantine, import_id FROM tinybird.datasources_ops_log "
        "WHERE datasource_name = 'events' AND event_type = 'append-hfi'"
    )
    rows = poll(lambda: sql(events, q), bool)
    assert len(rows) == 1 and rows[0]["rows"] == 1 and rows[0]["rows_quarantine"] == 1
    assert (
        rows[0]["import_id"] == sql(events, "SELECT c__import_id FROM events_quarantine")[0]["c__import_id"]
    )


def test_events_for_a_dropped_data_source_are_discarded(events, platform):
    svc = platform.events
    old_id = events.get("/v0/datasources/events").json()["id"]
    assert events.post("/v0/events?name=events&wait=true", content=ndjson([good(0)])).status_code == 200
    assert events.post("/v0/events?name=events", content=ndjson([good(1)])).status_code == 202
    assert events.delete("/v0/datasources/events").status_code == 204
    svc.batcher.wait_flushed(svc.wal.last_lsn, timeout=10)
    assert events.post("/v0/datasources", data={"name": "events", "schema": SCHEMA}).status_code == 200
    res = events.post("/v0/events?name=events&wait=true", content=ndjson([good(5)]))
    assert res.json() == {"successful_rows": 1, "quarantined_rows": 0}
    assert sql(events, "SELECT id FROM events") == [{"id": 5}]
    left = platform.engine.execute("SELECT name FROM system.tables WHERE database = 'tody_events'", "TSV")
    assert old_id not in left.data.decode()  # its event pipeline went with it


@pytest.mark.parametrize(
    "payload",
    [b"", b"\n", b"a\n", b" \na\n", b"a\n\nb\n", b"a\n \t\nb\n", b"a\nb\n", b"\r\na\n", b"{}\r\n{}\r\n"],
)
def test_count_rows_skips_blank_lines(payload):
    from tody.services.ingest.events import count_rows

    assert count_rows(payload) == sum(1 for line in payload.split(b"\n") if line.strip(b" \t\r"))
