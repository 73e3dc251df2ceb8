"""Copy pipes through the API: append and replace runs, template parameters, schema checks, linking,
the tb CLI's push flow, atomic replace for readers, and what lands in jobs_log and the ops log."""

from __future__ import annotations

import threading

import pytest
from api_helpers import ok, poll, sql, wait_job

SUMMARY = "`event` String, `c` UInt64, `total` Float64"
SUMMARY_SQL = "SELECT event, count() AS c, sum(value) AS total FROM events GROUP BY event"
NEVER = "0 0 1 1 *"  # a real schedule that the session's clock will not reach during a test


def copy_pipe(name="summarize", sql_text=SUMMARY_SQL, target="summary", **node):
    return {
        "name": name,
        "nodes": [{"name": "q", "sql": sql_text, "type": "copy", "target_datasource": target, **node}],
    }


@pytest.fixture
def summary(client, make_events):
    make_events(rows=30)
    ok(
        client.post(
            "/v0/datasources", data={"name": "summary", "schema": SUMMARY, "engine_sorting_key": "event"}
        )
    )


def run(client, pipe, **params):
    body = ok(client.post(f"/v0/pipes/{pipe}/copy", params=params))
    job = wait_job(client, body["job_id"])
    assert job["status"] == "done", job
    return body, job


def test_append_copy_writes_exactly_the_nodes_result(client, summary):
    pipe = ok(client.post("/v0/pipes", json=copy_pipe()))
    assert pipe["type"] == "copy" and pipe["nodes"][0]["node_type"] == "copy"
    assert pipe["copy_target_datasource"] == ok(client.get("/v0/datasources/summary"))["id"]
    assert pipe["schedule"]["cron"] == "@on-demand" and pipe["copy_mode"] == "append"

    body, job = run(client, "summarize")
    assert set(body) >= {"id", "job_id", "job_url", "job", "status", "pipe_id", "pipe_name"}
    assert (
        body["pipe_name"] == "summarize" and body["pipe_id"] == pipe["id"] and body["job"]["kind"] == "copy"
    )
    assert job["rows"] == 3 and job["mode"] == "append" and job["datasource"]["name"] == "summary"
    expected = sql(client, f"{SUMMARY_SQL} ORDER BY event")
    assert sql(client, "SELECT * FROM summary ORDER BY event") == expected

    run(client, "summarize")  # append again: every row twice
    doubled = sql(client, "SELECT event, count() AS n FROM summary GROUP BY event ORDER BY event")
    assert doubled == [{"event": e["event"], "n": 2} for e in expected]


def test_replace_copy_and_the_mode_override(client, summary):
    ok(client.post("/v0/pipes", json=copy_pipe(mode="replace")))
    expected = sql(client, f"{SUMMARY_SQL} ORDER BY event")
    for _ in range(2):
        _, job = run(client, "summarize")
        assert job["mode"] == "replace"
        assert sql(client, "SELECT * FROM summary ORDER BY event") == expected
    _, job = run(client, "summarize", _mode="append")
    assert job["mode"] == "append" and sql(client, "SELECT count() AS n FROM summary") == [{"n": 6}]
    run(client, "summarize")
    assert sql(client, "SELECT * FROM summary ORDER BY event") == expected
    res = client.post("/v0/pipes/summarize/copy", params={"_mode": "merge"})
    assert res.status_code == 400 and "merge" in res.json()["error"]


def test_template_parameters_come_from_the_query_string(client, make_events):
    make_events(rows=30)
    ok(client.post("/v0/datasources", data={"name": "firsts", "schema": "`id` UInt64, `event` String"}))
    node_sql = "%\nSELECT id, event FROM events WHERE id < {{UInt64(upto, 5)}} AND id >= {{UInt64(start, 0)}}"
    ok(client.post("/v0/pipes", json=copy_pipe("firsts_copy", node_sql, "firsts")))
    run(client, "firsts_copy", upto=3)
    assert sql(client, "SELECT id FROM firsts ORDER BY id") == [{"id": 0}, {"id": 1}, {"id": 2}]
    run(client, "firsts_copy", start=3)  # the default upto=5
    assert [r["id"] for r in sql(client, "SELECT id FROM firsts ORDER BY id")] == [0, 1, 2, 3, 4]
    res = client.post("/v0/pipes/firsts_copy/copy", params={"upto": "many"})
    assert res.status_code == 400 and "upto" in res.json()["error"]


def test_schema_mismatch_is_a_400_at_creation(client, summary):
    wrong = copy_pipe(sql_text="SELECT event, [1, 2] AS c, sum(value) AS total FROM events GROUP BY event")
    res = client.post("/v0/pipes", json=wrong)
    assert res.status_code == 400
    message = res.json()["error"]
    assert "'c'" in message and "Array(UInt8)" in message and "UInt64" in message

    res = client.post(
        "/v0/pipes", json=copy_pipe(sql_text="SELECT event, count() AS n FROM events GROUP BY event")
    )
    assert res.status_code == 400 and "'n'" in res.json()["error"] and "summary" in res.json()["error"]
    res = client.post("/v0/pipes", json=copy_pipe(sql_text="SELECT event FROM events"))
    assert res.status_code == 400 and "c, total" in res.json()["error"]
    res = client.post("/v0/pipes", json=copy_pipe(target="nowhere"))
    assert res.status_code == 400 and "target datasource 'nowhere' not found" in res.json()["error"]
    res = client.post("/v0/pipes", json=copy_pipe(copy_schedule="every hour"))
    assert res.status_code == 400 and "cron" in res.json()["error"]
    # castable types are fine: UInt8 into UInt64, Float32 into Float64
    castable = (
        "SELECT event, toUInt8(count()) AS c, toFloat32(sum(value)) AS total FROM events GROUP BY event"
    )
    ok(client.post("/v0/pipes", json=copy_pipe(sql_text=castable)))
    assert client.get("/v0/pipes/summarize").status_code == 200


def test_copy_pipe_from_a_datafile_round_trips(client, summary):
    text = (
        "NODE q\nSQL >\n    " + SUMMARY_SQL + "\n\nTYPE copy\nTARGET_DATASOURCE summary\n"
        f"COPY_SCHEDULE {NEVER}\nCOPY_MODE replace\n"
    )
    pipe = ok(client.post("/v0/pipes?name=from_file", content=text, headers={"Content-Type": "text/plain"}))
    assert pipe["type"] == "copy" and pipe["copy_mode"] == "replace"
    assert pipe["schedule"]["cron"] == NEVER and pipe["schedule"]["status"] == "running"
    assert pipe["schedule"]["next_run_at"].endswith("01-01 00:00:00.000000")
    datafile = client.get("/v0/pipes/from_file.pipe").text
    assert "TYPE copy" in datafile and "TARGET_DATASOURCE summary" in datafile
    assert f"COPY_SCHEDULE {NEVER}" in datafile and "COPY_MODE replace" in datafile


def test_tb_push_flow_creates_then_puts_the_copy_settings_by_id(client, summary):
    body = {
        "name": "copy_events",
        "description": "",
        "nodes": [
            {
                "name": "q",
                "sql": SUMMARY_SQL,
                "type": "copy",
                "description": "",
                "target_datasource": "summary",
                "copy_schedule": None,
                "mode": "append",
                "export_params": None,
            }
        ],
        "target_datasource": "summary",
        "schedule_cron": None,
    }
    pipe = ok(client.post("/v0/pipes?description=&ignore_sql_errors=false&branch_mode=None", json=body))
    node = next(n for n in pipe["nodes"] if n["node_type"] == "copy")
    target = ok(client.get(f"/v0/datasources/{pipe['copy_target_datasource']}"))
    assert target["name"] == "summary" and "cron" in pipe["schedule"]
    out = ok(client.put(f"/v0/pipes/{pipe['id']}/nodes/{node['id']}/copy", data={"mode": "replace"}))
    assert out["copy_mode"] == "replace" and out["target_datasource"] == "summary"
    assert ok(client.get("/v0/pipes/copy_events"))["copy_mode"] == "replace"


def test_link_and_unlink_a_node(client, summary):
    ok(client.post("/v0/pipes", data={"name": "plain", "sql": SUMMARY_SQL}))
    res = client.post("/v0/pipes/plain/copy")
    assert res.status_code == 400 and "not a copy pipe" in res.json()["error"]
    res = client.post("/v0/pipes/plain/nodes/plain_0/copy", data={"schedule_cron": NEVER})
    assert res.status_code == 400 and "target_datasource" in res.json()["error"]
    out = ok(
        client.post(
            "/v0/pipes/plain/nodes/plain_0/copy",
            data={"target_datasource": "summary", "schedule_cron": NEVER, "mode": "replace"},
        )
    )
    assert (
        out["node_type"] == "copy"
        and out["copy_schedule"] == NEVER
        and out["schedule"]["status"] == "running"
    )
    run(client, "plain")
    assert sql(client, "SELECT count() AS n FROM summary") == [{"n": 3}]
    res = client.post("/v0/pipes/plain/nodes/plain_0/endpoint")
    assert res.status_code == 400 and "one output" in res.json()["error"]
    res = client.delete("/v0/datasources/summary")
    assert res.status_code == 409 and "plain" in res.json()["error"]

    pipe = ok(client.delete("/v0/pipes/plain/nodes/plain_0/copy"))
    assert pipe["type"] == "default" and "copy_target_datasource" not in pipe
    assert client.post("/v0/pipes/plain/copy").status_code == 400
    assert client.delete("/v0/pipes/plain/nodes/plain_0/copy").status_code == 400


def test_pause_and_resume(client, summary):
    ok(client.post("/v0/pipes", json=copy_pipe(copy_schedule=NEVER)))
    pipe = ok(client.post("/v0/pipes/summarize/copy/pause"))
    assert pipe["schedule"]["status"] == "paused" and pipe["schedule"]["next_run_at"] is None
    assert ok(client.get("/v0/pipes/summarize"))["schedule"]["status"] == "paused"
    run(client, "summarize")  # a paused schedule still runs on demand
    pipe = ok(client.post("/v0/pipes/summarize/copy/resume"))
    assert pipe["schedule"]["status"] == "running" and pipe["schedule"]["next_run_at"]

    ok(client.post("/v0/pipes", json=copy_pipe("on_demand")))
    res = client.post("/v0/pipes/on_demand/copy/pause")
    assert res.status_code == 400 and "on demand" in res.json()["error"]
    res = client.post("/v0/pipes/summarize/copy/cancel")
    assert res.status_code == 400 and "No copy" in res.json()["error"]


def test_a_reader_never_sees_the_target_empty_during_replace(client, platform, workspace, summary):
    ok(client.post("/v0/pipes", json=copy_pipe(mode="replace")))
    run(client, "summarize")
    target = platform.catalog.datasource(workspace.id, "summary")
    table = f"{workspace.database}.{target.id}"
    counts: list[int] = []
    stop = threading.Event()

    def read():
        while not stop.is_set():
            counts.append(int(platform.engine.query(f"SELECT count() FROM {table}", "TabSeparated").data))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(8):
            run(client, "summarize")
    finally:
        stop.set()
        reader.join()
    assert len(counts) > 8 and set(counts) == {3}


def test_copies_are_logged_in_the_ops_log_and_jobs_log(client, other_client, summary):
    ok(client.post("/v0/pipes", json=copy_pipe()))
    body, _ = run(client, "summarize")
    q = (
        "SELECT event_type, result, rows, written_rows, pipe_name, job_id FROM tinybird.datasources_ops_log "
        "WHERE datasource_name = 'summary' AND event_type = 'copy'"
    )
    rows = poll(lambda: sql(client, q), lambda r: len(r) >= 1)
    assert rows == [
        {
            "event_type": "copy",
            "result": "ok",
            "rows": 3,
            "written_rows": 3,
            "pipe_name": "summarize",
            "job_id": body["job_id"],
        }
    ]
    q = (
        "SELECT job_id, job_type, status, pipe_name, datasource_name, error, JSONExtractString(job_metadata, "
        "'mode') AS mode, JSONExtractUInt(result, 'rows') AS rows FROM tinybird.jobs_log WHERE job_type = 'copy'"
    )
    rows = poll(lambda: sql(client, q), lambda r: len(r) >= 1)
    assert rows == [
        {
            "job_id": body["job_id"],
            "job_type": "copy",
            "status": "done",
            "pipe_name": "summarize",
            "datasource_name": "summary",
            "error": None,
            "mode": "append",
            "rows": 3,
        }
    ]
    assert other_client.get("/v0/sql", params={"q": q}).json()["data"] == []


def test_every_finished_job_lands_in_jobs_log(client, summary):
    res = ok(client.post("/v0/datasources/events/delete", data={"delete_condition": "id < 3"}))
    assert wait_job(client, res["job_id"])["status"] == "done"
    q = "SELECT job_type, status, datasource_name, started_at IS NOT NULL AS started FROM tinybird.jobs_log"
    rows = poll(lambda: sql(client, q), lambda r: len(r) >= 1)
    assert rows == [{"job_type": "delete_data", "status": "done", "datasource_name": "events", "started": 1}]


def test_a_failed_copy_is_an_error_in_both_logs(client, platform, workspace, summary):
    ok(
        client.post(
            "/v0/pipes",
            json=copy_pipe(sql_text="SELECT event, toUInt64(event) AS c, 0.5 AS total FROM events"),
        )
    )
    body = ok(client.post("/v0/pipes/summarize/copy"))
    job = wait_job(client, body["job_id"])
    assert job["status"] == "error" and "summary" in job["error"]
    q = "SELECT result FROM tinybird.datasources_ops_log WHERE event_type = 'copy'"
    assert poll(lambda: sql(client, q), lambda r: len(r) >= 1) == [{"result": "error"}]
    q = "SELECT status, error != '' AS has_error FROM tinybird.jobs_log WHERE job_type = 'copy'"
    assert poll(lambda: sql(client, q), lambda r: len(r) >= 1) == [{"status": "error", "has_error": 1}]


def test_a_copy_query_is_stopped_by_the_job_time_limit(client, platform, summary, monkeypatch):
    monkeypatch.setitem(platform.jobs.query_settings, "max_execution_time", 0.5)
    heavy = "SELECT toString(number % 3) AS event, count() AS c, sum(number) AS total FROM numbers(10000000000) GROUP BY event"
    ok(client.post("/v0/pipes", json=copy_pipe(name="heavy", sql_text=heavy)))
    body = ok(client.post("/v0/pipes/heavy/copy"))
    job = wait_job(client, body["job_id"], timeout=60)
    assert job["status"] == "error" and "imeout" in job["error"], job
    assert sql(client, "SELECT count() AS c FROM summary") == [{"c": 0}]
