"""Query API overhead: /v0/sql over HTTP against the same final SQL on chDB directly, in one run.

    .venv/bin/python bench/query_overhead.py [--rows 10000000] [--iterations 300]

Both sides run the same SQL (the gate's output, with the physical names of each side) with the same
limits, sequentially (concurrency 1), on warm caches, interleaved so noise hits both alike.
Goal: <= 1 ms added p50 on the trivial query and <= 1.1x on the aggregations.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import urllib.parse
from pathlib import Path

from harness import Server, load_tody, p50, p99, raw_engine, timed

QUERIES = {
    "trivial": "SELECT 1",
    "filter_range_group": (
        "SELECT toStartOfHour(timestamp) AS h, count() AS c FROM events "
        "WHERE event = 'click' AND timestamp >= '2026-01-05 00:00:00' AND timestamp < '2026-01-06 00:00:00' "
        "GROUP BY h ORDER BY h"
    ),
    "top_n": "SELECT country, count() AS c, sum(value) AS v FROM events GROUP BY country ORDER BY c DESC LIMIT 5",
    "quantiles": (
        "SELECT event, quantiles(0.5, 0.9, 0.99)(value) AS q FROM events "
        "WHERE timestamp >= '2026-01-10 00:00:00' AND timestamp < '2026-01-17 00:00:00' GROUP BY event"
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--iterations", type=int, default=300)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tody-bench-"))
    try:
        print(f"loading {args.rows:,} rows twice (tody data dir and raw engine) …", flush=True)
        load_tody(work / "tody", args.rows)
        raw = raw_engine(work / "raw", args.rows)
        from tody.sql.gate import TableBinding, compile_select

        class Raw:
            def resolve(self, database, name):
                return TableBinding(database="bench", table="events") if name == "events" else None

        server = Server(work / "tody")
        results = {}
        try:
            for name, sql in QUERIES.items():
                http_call = server.getter("/v0/sql?" + urllib.parse.urlencode({"q": sql}))
                final = compile_select(sql, Raw()).sql
                iterations = args.iterations if name == "trivial" else max(30, args.iterations // 5)
                h, r = [], []
                for _ in range(3):
                    h += timed(http_call, iterations // 3)
                    r += timed(lambda final=final: raw.query(final, "JSON"), iterations // 3)
                results[name] = (h, r)
        finally:
            server.stop()
            raw.close()
        print(
            f"\n{'query':<20} {'http p50':>9} {'raw p50':>9} {'added':>8} {'ratio':>6} {'http p99':>9} {'raw p99':>9}"
        )
        summary = {}
        for name, (h, r) in results.items():
            print(
                f"{name:<20} {p50(h):8.2f}ms {p50(r):8.2f}ms {p50(h) - p50(r):7.2f}ms {p50(h) / p50(r):5.2f}x"
                f" {p99(h):8.2f}ms {p99(r):8.2f}ms"
            )
            summary[name] = {
                "http_p50_ms": round(p50(h), 3),
                "raw_p50_ms": round(p50(r), 3),
                "ratio": round(p50(h) / p50(r), 3),
            }
        print("\n" + json.dumps(summary))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
