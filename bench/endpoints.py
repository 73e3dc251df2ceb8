"""API Endpoints against the raw engine: p50/p99 and requests/s at concurrency 1, 8 and 32.

    .venv/bin/python bench/endpoints.py [--rows 10000000] [--requests 240]

A 10M-row events data source and four endpoints: (a) trivial, (b) sorting-key prefix + time range +
group by, (c) top-N, (d) quantiles with parameters. The raw side runs the same final SQL (the
endpoint compiled by tody's compiler, with the raw side's physical names) on a chDB engine with the
same query pool size and limits, from the same number of threads. Goals: <= 1 ms added p50 on (a);
<= 1.1x raw on (b)-(d); throughput at concurrency 8 >= 0.9x raw; no errors.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from harness import Server, concurrent, load_tody, p50, p99, raw_engine

PIPES = [
    {"name": "trivial", "nodes": [{"name": "n", "type": "endpoint", "sql": "SELECT 1 AS one"}]},
    {
        "name": "range_group",
        "nodes": [
            {
                "name": "n",
                "type": "endpoint",
                "sql": (
                    "%\nSELECT toStartOfHour(timestamp) AS h, count() AS c FROM events "
                    "WHERE event = {{String(event, 'click')}} "
                    "AND timestamp >= {{DateTime(start, '2026-01-05 00:00:00')}} "
                    "AND timestamp < {{DateTime(end, '2026-01-06 00:00:00')}} GROUP BY h ORDER BY h"
                ),
            }
        ],
    },
    {
        "name": "top_n",
        "nodes": [
            {
                "name": "n",
                "type": "endpoint",
                "sql": (
                    "%\nSELECT country, count() AS c, sum(value) AS v FROM events GROUP BY country "
                    "ORDER BY c DESC LIMIT {{Int32(limit, 5)}}"
                ),
            }
        ],
    },
    {
        "name": "quantiles",
        "nodes": [
            {
                "name": "n",
                "type": "endpoint",
                "sql": (
                    "%\nSELECT event, quantiles(0.5, 0.9, 0.99)(value) AS q FROM events "
                    "WHERE timestamp >= {{DateTime(start, '2026-01-10 00:00:00')}} "
                    "AND timestamp < {{DateTime(end, '2026-01-17 00:00:00')}} GROUP BY event"
                ),
            }
        ],
    },
]
CALLS = {
    "trivial": "",
    "range_group": "event=view&start=2026-01-07%2000:00:00&end=2026-01-08%2000:00:00",
    "top_n": "limit=5",
    "quantiles": "start=2026-01-10%2000:00:00&end=2026-01-17%2000:00:00",
}


def final_sql(pipe: dict, query: str) -> str:
    """The endpoint's SQL as tody compiles it, with the raw engine's table name."""
    from urllib.parse import parse_qsl

    from tody.sql.gate import TableBinding, compile_select
    from tody.sql.templates import is_template, render

    sql = pipe["nodes"][0]["sql"]
    if is_template(sql):
        sql = render(sql, dict(parse_qsl(query)))

    class Raw:
        def resolve(self, database, name):
            return TableBinding(database="bench", table="events") if name == "events" else None

    return compile_select(sql, Raw()).sql


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--requests", type=int, default=240, help="requests per endpoint per concurrency level")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tody-bench-"))
    try:
        print(f"loading {args.rows:,} rows twice (tody data dir and raw engine) …", flush=True)
        load_tody(work / "tody", args.rows, PIPES)
        raw = raw_engine(work / "raw", args.rows)
        server = Server(work / "tody")
        rows = []
        try:
            for pipe in PIPES:
                name = pipe["name"]
                http_call = server.getter(f"/v0/pipes/{name}.json?{CALLS[name]}")
                sql = final_sql(pipe, CALLS[name])
                for threads in (1, 8, 32):
                    per = max(4, args.requests // threads)
                    for _ in range(3):  # warm both sides
                        http_call()
                        raw.query(sql, "JSON")
                    h, h_rps, h_err = concurrent(http_call, threads, per)
                    r, r_rps, r_err = concurrent(lambda sql=sql: raw.query(sql, "JSON"), threads, per)
                    rows.append((name, threads, h, h_rps, h_err, r, r_rps, r_err))
        finally:
            server.stop()
            raw.close()
        print(
            f"\n{'endpoint':<12} {'conc':>4} {'http p50':>9} {'raw p50':>9} {'ratio':>6} {'http p99':>9} "
            f"{'raw p99':>9} {'http rps':>9} {'raw rps':>8} {'rps ratio':>9} {'errors':>6}"
        )
        summary = []
        for name, threads, h, h_rps, h_err, r, r_rps, r_err in rows:
            print(
                f"{name:<12} {threads:>4} {p50(h):8.2f}ms {p50(r):8.2f}ms {p50(h) / p50(r):5.2f}x "
                f"{p99(h):8.2f}ms {p99(r):8.2f}ms {h_rps:9.1f} {r_rps:8.1f} {h_rps / r_rps:8.2f}x {h_err + r_err:>6}"
            )
            summary.append(
                {
                    "endpoint": name,
                    "concurrency": threads,
                    "http_p50_ms": round(p50(h), 3),
                    "raw_p50_ms": round(p50(r), 3),
                    "http_rps": round(h_rps, 1),
                    "raw_rps": round(r_rps, 1),
                    "errors": h_err + r_err,
                }
            )
        print("\n" + json.dumps(summary))
    except Exception:
        log = work / "server.log"
        if log.exists():
            print("server log:\n" + log.read_text()[-3000:])
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
