"""Materialized nodes: engine views into target data sources, populate jobs, chains, checks, unlinking."""

from __future__ import annotations

import threading
import time

import orjson
import pytest
from api_helpers import ok, poll, sql, wait_job

SOURCE = "`ts` DateTime `json:$.ts`, `event` String `json:$.event`, `amount` Float64 `json:$.amount`"
AGG = "`day` Date, `event` String, `total` AggregateFunction(count), `amount_sum` AggregateFunction(sum, Float64)"
AGG_SQL = (
    "SELECT toDate(ts) AS day, event, countState() AS total, sumState(amount) AS amount_sum "
    "FROM events GROUP BY day, event"
)
MERGED = (
    "SELECT event, countMerge(total) AS c, sumMerge(amount_sum) AS s FROM {t} GROUP BY event ORDER BY event"
)
DIRECT = "SELECT event, count() AS c, sum(amount) AS s FROM events GROUP BY event ORDER BY event"


def rows(start, n):
    return b"".join(
        orjson.dumps({"ts": f"2024-05-0{1 + i % 3} 10:00:00", "event": f"e{i % 4}", "amount": i % 97}) + b"\n"
        for i in range(start, start + n)
    )


@pytest.fixture
def source(client):
    ok(client.post("/v0/datasources", data={"name": "events", "schema": SOURCE, "engine_sorting_key": "ts"}))
    ok(
        client.post(
            "/v0/datasources",
            data={
                "name": "daily",
                "schema": AGG,
                "engine": "AggregatingMergeTree",
                "engine_sorting_key": "day, event",
            },
        )
    )
    return client


def mv_pipe(name="daily_mv", sql=AGG_SQL, target="daily", **extra):
    node = {"name": "aggregate", "sql": sql, "type": "materialized", "datasource": target, **extra}
    return {"name": name, "nodes": [node]}


def test_live_ingestion_goes_through_the_view(source):
    out = ok(source.post("/v0/pipes", json=mv_pipe()))
    assert out["type"] == "materialized" and out["datasource"] == {"name": "daily"}
    assert out["nodes"][0]["materialized"] == "daily"
    ok(source.post("/v0/events?name=events&wait=true", content=rows(0, 300)))
    ok(
        source.post(
            "/v0/datasources?name=events&mode=append&format=ndjson", files={"ndjson": ("x", rows(300, 200))}
        )
    )
    assert sql(source, MERGED.format(t="daily")) == sql(source, DIRECT)
    assert sql(source, "SELECT countMerge(total) AS c FROM daily")[0]["c"] == 500
    final = "SELECT event, countMerge(total) AS c, sumMerge(amount_sum) AS s FROM daily FINAL GROUP BY event ORDER BY event"
    assert sql(source, final) == sql(source, DIRECT)  # endpoints read targets with -Merge and FINAL


def test_populate_while_ingesting_counts_every_row_once(source, platform):
    ok(source.post("/v0/events?name=events&wait=true", content=rows(0, 2000)))
    stop = threading.Event()
    sent = []

    def ingest():
        start = 10_000
        while not stop.is_set():
            res = source.post("/v0/events?name=events", content=rows(start, 50))
            assert res.status_code == 202
            sent.append(start)
            start += 50

    thread = threading.Thread(target=ingest)
    thread.start()
    try:
        time.sleep(0.2)
        out = ok(source.post("/v0/pipes?populate=true", json=mv_pipe()))
        assert wait_job(source, out["job"]["job_id"])["status"] == "done"
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join()
    events = platform.events
    events.batcher.wait_flushed(events.wal.last_lsn, timeout=30)
    assert len(sent) > 2  # rows arrived before, during and after the populate
    assert sql(source, MERGED.format(t="daily")) == sql(source, DIRECT)


def test_population_route_with_condition_and_truncate(source):
    ok(source.post("/v0/events?name=events&wait=true", content=rows(0, 90)))
    ok(source.post("/v0/pipes", json=mv_pipe()))  # linked without populate: existing rows are not in it
    assert sql(source, "SELECT countMerge(total) AS c FROM daily")[0]["c"] == 0
    job = ok(
        source.post(
            "/v0/pipes/daily_mv/nodes/aggregate/population",
            data={"populate_condition": "toDate(ts) = '2024-05-01'"},
        )
    )
    assert wait_job(source, job["job_id"])["status"] == "done"
    assert sql(source, "SELECT countMerge(total) AS c FROM daily")[0]["c"] == 30
    job = ok(source.post("/v0/pipes/daily_mv/nodes/aggregate/population", data={"truncate": "true"}))
    assert wait_job(source, job["job"]["id"])["status"] == "done"
    assert sql(source, MERGED.format(t="daily")) == sql(source, DIRECT)
    bad = source.post("/v0/pipes/daily_mv/nodes/aggregate/population", data={"populate_condition": "x = ("})
    assert bad.status_code == 400 and "populate_condition" in bad.json()["error"]


def test_chains_follow_on_ingest_and_populate(source):
    ok(source.post("/v0/datasources", data={"name": "big", "schema": SOURCE, "engine_sorting_key": "ts"}))
    ok(source.post("/v0/events?name=events&wait=true", content=rows(0, 120)))
    big_only = "SELECT ts, event, amount FROM events WHERE amount >= 10"
    ok(source.post("/v0/pipes", json=mv_pipe("daily_mv", AGG_SQL.replace("FROM events", "FROM big"))))
    out = ok(source.post("/v0/pipes?populate=true", json=mv_pipe("big_mv", big_only, "big")))
    assert wait_job(source, out["job"]["job_id"])["status"] == "done"  # populate cascades into daily
    ok(source.post("/v0/events?name=events&wait=true", content=rows(120, 80)))
    want = sql(source, DIRECT.replace("FROM events", "FROM events WHERE amount >= 10"))
    assert sql(source, MERGED.format(t="daily")) == want
    assert sql(source, "SELECT count() AS c FROM big")[0]["c"] == sum(r["c"] for r in want)


def test_schema_mismatches_are_400_naming_the_column_and_types(source):
    wrong_type = AGG_SQL.replace("countState() AS total", "count() AS total")
    res = source.post("/v0/pipes", json=mv_pipe(sql=wrong_type))
    assert res.status_code == 400
    assert "'total' is UInt64 in the node but AggregateFunction(count)" in res.json()["error"]
    res = source.post("/v0/pipes", json=mv_pipe(sql=AGG_SQL.replace("event,", "event, 1 AS extra,")))
    assert res.status_code == 400 and "'extra'" in res.json()["error"]
    res = source.post("/v0/pipes", json=mv_pipe(sql=AGG_SQL.replace(", sumState(amount) AS amount_sum", "")))
    assert res.status_code == 400 and "amount_sum" in res.json()["error"]
    assert source.get("/v0/pipes/daily_mv").status_code == 404


def test_target_created_from_the_node_and_engine_params(source):
    node = {"engine": "SummingMergeTree", "engine_sorting_key": "event"}
    summed = "SELECT event, sum(amount) AS total FROM events GROUP BY event"
    out = ok(source.post("/v0/pipes", json=mv_pipe("sums", summed, "by_event", **node)))
    assert out["created_datasource"] is True
    described = ok(source.get("/v0/datasources/by_event"))
    assert described["engine"]["engine"] == "SummingMergeTree"
    ok(source.post("/v0/events?name=events&wait=true", content=rows(0, 40)))
    got = sql(source, "SELECT event, sum(total) AS s FROM by_event GROUP BY event ORDER BY event")
    assert got == sql(source, "SELECT event, sum(amount) AS s FROM events GROUP BY event ORDER BY event")
    res = source.post("/v0/pipes", json=mv_pipe("nope", summed, "missing_target"))
    assert res.status_code == 400 and "ENGINE" in res.json()["error"]


def test_dropping_sources_targets_and_nodes_unlinks_cleanly(source, platform, workspace):
    ok(source.post("/v0/pipes", json=mv_pipe()))
    for name in ("events", "daily"):
        res = source.delete(f"/v0/datasources/{name}")
        assert res.status_code == 409 and res.json()["dependent_pipes"] == ["daily_mv"]
    ok(source.delete("/v0/pipes/daily_mv/nodes/aggregate/materialization"))
    ok(source.post("/v0/events?name=events&wait=true", content=rows(0, 10)))
    assert sql(source, "SELECT count() AS c FROM daily")[0]["c"] == 0  # unlinked: nothing flows
    ok(source.post("/v0/pipes/daily_mv/nodes/aggregate/materialization", data={"datasource": "daily"}))
    ok(source.post("/v0/events?name=events&wait=true", content=rows(10, 10)))
    assert sql(source, "SELECT countMerge(total) AS c FROM daily")[0]["c"] == 10
    assert source.delete("/v0/datasources/daily?force=true").status_code == 204
    assert ok(source.get("/v0/pipes/daily_mv"))["nodes"][0]["type"] == "standard"
    ok(source.post("/v0/events?name=events&wait=true", content=rows(20, 10)))  # still ingests
    views = platform.engine.execute(
        f"SELECT count() FROM system.tables WHERE database = '{workspace.database}' AND engine = 'MaterializedView'",
        "TSV",
    )
    assert views.data.strip() == b"0"


def test_pipe_datafile_round_trip_and_analysis(source):
    text = f"NODE aggregate\nSQL >\n    {AGG_SQL}\n\nTYPE materialized\nDATASOURCE daily\n"
    res = source.post("/v0/pipes?name=from_file", content=text, headers={"Content-Type": "text/plain"})
    assert res.status_code == 200, res.text
    assert source.get("/v0/pipes/from_file.pipe").text == text
    analysis = ok(source.get("/v0/pipes/from_file/nodes/aggregate/analysis", params={"datasource": "daily"}))
    assert "TYPE materialized" in analysis["analysis"]["pipe"]["datafile"] and analysis["warnings"] == []
    assert "AggregatingMergeTree" in analysis["analysis"]["datasource"]["datafile"]


def test_a_failing_view_keeps_the_rows_and_says_so(client):
    ok(client.post("/v0/datasources", data={"name": "nums", "schema": "`n` Int32 `json:$.n`"}))
    ok(client.post("/v0/datasources", data={"name": "lucky", "schema": "`n` Int32"}))
    failing = "SELECT n + throwIf(n = 13, 'unlucky number') AS n FROM nums"
    ok(client.post("/v0/pipes", json=mv_pipe("strict", failing, "lucky")))
    res = ok(client.post("/v0/events?name=nums&wait=true", content=b'{"n": 1}\n{"n": 13}\n'))
    assert res["successful_rows"] == 2 and "unlucky number" in res["warnings"][0]
    assert sql(client, "SELECT count() AS c FROM nums")[0]["c"] == 2
    ok(client.post("/v0/events?name=nums&wait=true", content=b'{"n": 2}\n'))  # the data source still flows
    assert sql(client, "SELECT n FROM lucky") == [{"n": 2}]
    q = "SELECT error FROM tinybird.datasources_ops_log WHERE datasource_name = 'nums' AND result = 'error'"
    logged = poll(lambda: sql(client, q), bool)
    assert "materialized view" in logged[0]["error"]
    res = client.post(
        "/v0/datasources?name=nums&mode=append", content=b"3\n13\n", headers={"Content-Type": "text/csv"}
    )
    assert res.status_code == 200 and "unlucky number" in res.json()["error"]  # a partial import, said so
    assert sql(client, "SELECT count() AS c FROM nums")[0]["c"] == 5


def test_columns_with_defaults_may_be_left_out_and_strings_convert(source):
    schema = "`event` String, `n` UInt64, `seen` DateTime DEFAULT now()"
    ok(source.post("/v0/datasources", data={"name": "counted", "schema": schema}))
    as_text = "SELECT event, toString(toUInt64(amount)) AS n FROM events"
    ok(source.post("/v0/pipes", json=mv_pipe("texts", as_text, "counted")))
    ok(source.post("/v0/events?name=events&wait=true", content=rows(0, 5)))
    assert sql(source, "SELECT sum(n) AS s FROM counted")[0]["s"] == sum(i % 97 for i in range(5))


def test_a_missing_view_is_restored_at_start(client, platform, workspace):
    """What a populate that died before creating its view leaves: the node, but no view."""
    ok(client.post("/v0/datasources", data={"name": "src", "schema": "`k` String, `v` UInt64"}))
    ok(
        client.post(
            "/v0/datasources",
            data={
                "name": "dst",
                "schema": "`k` String, `n` UInt64",
                "engine": "SummingMergeTree",
                "engine_sorting_key": "k",
            },
        )
    )
    node = {
        "name": "m",
        "type": "materialized",
        "datasource": "dst",
        "sql": "SELECT k, count() AS n FROM src GROUP BY k",
    }
    ok(client.post("/v0/pipes", json={"name": "feed", "nodes": [node]}))
    view = platform.catalog.pipe(workspace.id, "feed").nodes[0].id + "_mv"
    platform.engine.execute(f"DROP TABLE {workspace.database}.{view} SYNC")
    assert any(name.endswith(".feed.m") for name in platform.materialized.reconcile())
    assert platform.materialized.reconcile() == []  # nothing left to restore
    ok(client.post("/v0/events", params={"name": "src", "wait": "true"}, content=b'{"k": "a", "v": 1}\n'))
    assert sql(client, "SELECT k, sum(n) AS n FROM dst GROUP BY k") == [{"k": "a", "n": 1}]
