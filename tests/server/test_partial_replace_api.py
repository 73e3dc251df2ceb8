"""Partial replace: `mode=replace&replace_condition=<SQL>` with a file or a URL."""

from __future__ import annotations

import threading
import time

import pytest
from starlette.testclient import TestClient

SCHEMA = "`day` Date, `id` UInt64, `tag` Nullable(String)"


def make_days(client, engine, workspace, partition_key="day", rows_per_day=10):
    """`events` with days 2024-01-01..03, `rows_per_day` rows each (ids from day * 1000)."""
    params = {"name": "events", "schema": SCHEMA, "engine_sorting_key": "id"}
    if partition_key:
        params["engine_partition_key"] = partition_key
    res = client.post("/v0/datasources", data=params)
    assert res.status_code == 200, res.text
    table = res.json()["datasource"]["id"]
    engine.execute(
        f"INSERT INTO {workspace.database}.{table} SELECT toDate('2024-01-01') + d, d * 1000 + n, "
        f"if(n = 0, NULL, 'x') FROM (SELECT intDiv(number, {rows_per_day}) AS d, number % {rows_per_day} AS n "
        f"FROM numbers({3 * rows_per_day}))"
    )
    return table


def per_day(client):
    q = "SELECT toString(day) AS day, count() AS c, min(id) AS lo FROM events GROUP BY day ORDER BY day"
    return {r["day"]: (r["c"], r["lo"]) for r in client.get("/v0/sql", params={"q": q}).json()["data"]}


def replace(client, condition, csv: bytes):
    return client.post(
        "/v0/datasources",
        params={"name": "events", "mode": "replace", "replace_condition": condition},
        files={"csv": ("rows.csv", csv)},
    )


@pytest.mark.parametrize("partition_key", ["day", "toYYYYMM(day)", ""])
def test_matching_rows_are_replaced_the_rest_stays(client, engine, workspace, partition_key):
    make_days(client, engine, workspace, partition_key)
    incoming = b"".join(b"2024-01-02,%d,y\n" % (500 + i) for i in range(5))
    incoming += b"2024-01-05,900,y\n2024-01-05,901,y\n2024-01-01,902,y\nbad_date,1,y\n"
    res = replace(client, "day = '2024-01-02'", incoming)
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["rows"] == 5 and body["discarded_rows"] == 3 and body["quarantine_rows"] == 1
    assert any("replace_condition" in w for w in body["warnings"])
    assert per_day(client) == {
        "2024-01-01": (10, 0),  # kept, and the incoming 2024-01-01 row was left out
        "2024-01-02": (5, 500),  # replaced
        "2024-01-03": (10, 2000),  # kept
    }
    q = "SELECT event_type, rows FROM tinybird.datasources_ops_log WHERE event_type = 'partial_replace'"
    deadline = time.monotonic() + 10
    while (
        not (logged := client.get("/v0/sql", params={"q": q}).json()["data"]) and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert logged == [{"event_type": "partial_replace", "rows": 5}]


def test_a_condition_matching_nothing_new_deletes_the_matching_rows(client, engine, workspace):
    make_days(client, engine, workspace)
    res = replace(client, "day >= '2024-01-02'", b"2024-01-01,7,y\n")
    assert res.status_code == 200, res.text
    assert res.json()["rows"] == 0 and res.json()["discarded_rows"] == 1
    assert per_day(client) == {"2024-01-01": (10, 0)}


def test_null_conditions_keep_existing_rows_and_leave_out_incoming_ones(client, engine, workspace):
    make_days(client, engine, workspace)
    res = replace(client, "tag = 'x'", b"2024-01-02,1,x\n2024-01-02,2,\\N\n")
    assert res.status_code == 200, res.text
    assert res.json()["rows"] == 1 and res.json()["discarded_rows"] == 1
    q = "SELECT id, tag FROM events ORDER BY id"
    rows = client.get("/v0/sql", params={"q": q}).json()["data"]
    assert rows == [
        {"id": 0, "tag": None},
        {"id": 1, "tag": "x"},
        {"id": 1000, "tag": None},
        {"id": 2000, "tag": None},
    ]


def test_partial_replace_from_a_url(client, engine, workspace, file_server, private_urls):
    make_days(client, engine, workspace, "toYYYYMM(day)")
    (file_server.dir / "day2.csv").write_text("2024-01-02,77,y\n2024-02-01,78,y\n")
    res = client.post(
        "/v0/datasources",
        params={
            "name": "events",
            "mode": "replace",
            "replace_condition": "day = '2024-01-02'",
            "url": file_server.url("day2.csv"),
        },
    )
    assert res.status_code == 200, res.text
    assert res.json()["job"]["replace_condition"] == "day = '2024-01-02'"
    job_id = res.json()["job_id"]
    deadline = time.monotonic() + 20
    while (job := client.get(f"/v0/jobs/{job_id}").json())["status"] not in ("done", "error"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job["status"] == "done" and job["rows"] == 1 and job["discarded_rows"] == 1, job
    assert per_day(client)["2024-01-02"] == (1, 77)


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [
        ("nope = 1", "Unknown column 'nope'"),
        ("id IN (SELECT id FROM events)", "Subqueries"),
        ("id > (SELECT count() FROM tinybird.datasources_ops_log)", "Subqueries"),
        ("1; DROP TABLE events", "Syntax error"),
        ("file('/etc/passwd') != ''", "Function 'file' is not allowed"),
        ("id IN other.secret", "IN <table>"),
        ("tag", "replace_condition"),  # a String is not a condition: the engine says so
        ("day = 'not a date'", "replace_condition"),
    ],
)
def test_bad_conditions_are_400_and_change_nothing(client, engine, workspace, condition, fragment):
    make_days(client, engine, workspace)
    before = per_day(client)
    res = replace(client, condition, b"2024-01-02,1,y\n")
    assert res.status_code == 400, res.text
    error = res.json()["error"]
    assert fragment in error and "replace_condition" in error, error
    assert per_day(client) == before


def test_replace_condition_needs_mode_replace_and_a_data_source(client, engine, workspace):
    make_days(client, engine, workspace)
    res = client.post(
        "/v0/datasources",
        params={"name": "events", "mode": "append", "replace_condition": "id > 1"},
        files={"csv": ("rows.csv", b"2024-01-02,1,y\n")},
    )
    assert res.status_code == 400 and "mode=replace" in res.json()["error"]
    res = client.post(
        "/v0/datasources",
        params={"name": "missing", "mode": "replace", "replace_condition": "id > 1"},
        files={"csv": ("rows.csv", b"2024-01-02,1,y\n")},
    )
    assert res.status_code == 404 and "missing" in res.json()["error"]
    assert res.json()["error"]


def test_readers_never_see_the_matching_rows_vanish(app, client, workspace_token, engine, workspace):
    """A reader counting the matching rows while they are replaced sees the old count or the new one."""
    make_days(client, engine, workspace, "day", rows_per_day=20_000)
    sizes = [5_000, 12_000, 20_000]
    files = {n: b"".join(b"2024-01-02,%d,z\n" % (10**6 + i) for i in range(n)) for n in sizes}
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def read():
        q = "SELECT countIf(day = '2024-01-02') AS m, countIf(day != '2024-01-02') AS o FROM events"
        with TestClient(app, headers={"Authorization": f"Bearer {workspace_token}"}) as reader:
            while not stop.is_set():
                row = reader.get("/v0/sql", params={"q": q}).json()["data"][0]
                seen.append((row["m"], row["o"]))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for n in sizes:
            res = replace(client, "day = '2024-01-02'", files[n])
            assert res.status_code == 200 and res.json()["rows"] == n, res.text
    finally:
        stop.set()
        thread.join(timeout=30)
    assert len(seen) > 3
    assert {m for m, _ in seen} <= {20_000, *sizes}, sorted({m for m, _ in seen})
    assert {o for _, o in seen} == {40_000}
