"""Events API throughput with 0, 1 and 3 materialized views on the data source (issue 7's benchmark).

    .venv/bin/python bench/ingest_views.py [--rows 1000000] [--clients 4]

The same NDJSON bodies (10k rows each, 4 clients) go to a fresh server per case; the figures are the
acknowledged rows/s and the rows/s from the first request until every row is visible in the data
source and in every view's target, with their ratio to the case without views. The raw engine's
`send_insert` of the same bodies (no views) is measured in the same run for reference.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx

from ingest import (
    AUTH,
    BATCH,
    JSON_OUT,
    _events_batch,
    create_datasource,
    fresh_server,
    raw_count,
    raw_send_insert,
    raw_table,
    rows_sql,
    threaded,
)
from tody.engine.chdb import ChdbEngine
from tody.settings import Config

VIEWS = (
    (
        "by_event",
        "SELECT event, countState() AS c, sumState(value) AS s FROM ev GROUP BY event",
        "`event` LowCardinality(String), `c` AggregateFunction(count), `s` AggregateFunction(sum, Float64)",
        "AggregatingMergeTree",
        "event",
        ("countMerge(c)", "count()"),
    ),
    (
        "by_minute",
        "SELECT toStartOfMinute(timestamp) AS minute, count() AS c FROM ev GROUP BY minute",
        "`minute` DateTime, `c` UInt64",
        "SummingMergeTree",
        "minute",
        ("sum(c)", "count()"),
    ),
    (
        "big_values",
        "SELECT timestamp, user_id, value FROM ev WHERE value > 50",
        "`timestamp` DateTime, `user_id` UInt64, `value` Float64",
        "MergeTree",
        "timestamp",
        ("count()", "countIf(value > 50)"),
    ),
)


def post(server, path: str, **kw) -> dict:
    res = httpx.post(f"http://127.0.0.1:{server.port}{path}", headers=AUTH, timeout=120, **kw)
    if res.status_code >= 300:
        raise RuntimeError(f"{path}: {res.status_code} {res.text[:300]}")
    return res.json()


def scalar(server, q: str) -> int:
    res = httpx.get(f"http://127.0.0.1:{server.port}/v0/sql", params={"q": q}, headers=AUTH, timeout=60)
    return int(next(iter(res.json()["data"][0].values())))


def run_case(work: Path, bodies: list[bytes], views: int, clients: int) -> dict:
    with fresh_server(work, f"views_{views}") as server:
        create_datasource(server, "ev")
        for name, sql, schema, engine, key, _ in VIEWS[:views]:
            post(
                server,
                "/v0/datasources",
                data={"name": name, "schema": schema, "engine": engine, "engine_sorting_key": key},
            )
            node = {"name": "n", "sql": sql, "type": "materialized", "datasource": name}
            post(server, "/v0/pipes", json={"name": f"{name}_mv", "nodes": [node]})
        headers = {"Content-Type": "application/x-ndjson"}
        start = time.perf_counter()
        res = asyncio.run(_events_batch(server.port, "ev", bodies, headers, clients))
        expected = {name: None for name, *_ in VIEWS[:views]}
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # every view's target has taken every flushed row
            if scalar(server, "SELECT count() FROM ev") >= res["acked_rows"] and all(
                scalar(server, f"SELECT {on_target} FROM {name}")
                == scalar(server, f"SELECT {on_source} FROM ev")
                for name, _, _, _, _, (on_target, on_source) in VIEWS[:views]
            ):
                break
            time.sleep(0.05)
        all_visible = time.perf_counter() - start
        for name, *_, (on_target, _) in VIEWS[:views]:
            expected[name] = scalar(server, f"SELECT {on_target} FROM {name}")
        return {
            "acked_rows_s": res["tody_rows_s"],
            "visible_rows_s": res["acked_rows"] / all_visible,
            "rows": res["acked_rows"],
            "targets": expected,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tody-bench-views-"))
    raw = ChdbEngine(work / "raw", limits=Config.load(environ={}).query_limits())
    raw.execute("CREATE DATABASE bench ENGINE = Atomic")
    bodies = [
        raw.execute(rows_sql(i * BATCH, BATCH), "JSONEachRow", settings=JSON_OUT).data
        for i in range(args.rows // BATCH)
    ]
    table = raw_table(raw, "ev_raw")
    wall, _, errors = threaded(raw_send_insert(raw, table), bodies, args.clients)
    assert errors == 0 and raw_count(raw, table) == len(bodies) * BATCH
    raw_rows_s = len(bodies) * BATCH / wall
    raw.close()
    print(f"raw send_insert (no views): {raw_rows_s:,.0f} rows/s")
    base = None
    print(f"{'views':>5} {'acked rows/s':>14} {'visible rows/s':>15} {'vs 0 views':>11} {'vs raw':>7}")
    for views in (0, 1, 3):
        case = run_case(work, bodies, views, args.clients)
        base = base or case
        ratio = case["visible_rows_s"] / base["visible_rows_s"]
        print(
            f"{views:>5} {case['acked_rows_s']:>14,.0f} {case['visible_rows_s']:>15,.0f} {ratio:>10.2f}x "
            f"{case['visible_rows_s'] / raw_rows_s:>6.2f}x  targets {case['targets']}"
        )


if __name__ == "__main__":
    main()
