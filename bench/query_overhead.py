"""Query API overhead: /v0/sql over HTTP against the same SQL on chDB directly, in one run.

    .venv/bin/python bench/query_overhead.py [--rows 10000000] [--iterations 300]

Two copies of the same deterministic 10M-row table are built: one in a tody data directory, served by
`tody serve` in a subprocess (chDB allows one data path per process), and one opened here for the raw
engine. Both sides run the same SQL with the same limits, sequentially (concurrency 1), on warm caches.
Prints p50/p99 per query and the ratio HTTP/raw; the goal is <= 1 ms added p50 on the trivial query
and <= 1.1x on the aggregations.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

TOKEN = "p.bench-admin-token"
SCHEMA = (
    "`timestamp` DateTime, `event` LowCardinality(String), `user_id` UInt64, "
    "`country` LowCardinality(String), `value` Float64"
)
FILL = (
    "SELECT toDateTime('2026-01-01 00:00:00') + intDiv(number * 7, 3) AS timestamp, "
    "['click','view','purchase','signup','share'][number % 5 + 1] AS event, "
    "cityHash64(number) % 100000 AS user_id, "
    "['ES','US','FR','DE','IT','GB','BR','IN','JP','MX'][cityHash64(number, 1) % 10 + 1] AS country, "
    "(cityHash64(number, 2) % 10000) / 100 AS value FROM numbers({rows})"
)
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_tody(data_dir: Path, rows: int) -> str:
    """Create the data source through the service layer and fill it (in a child: one path per process)."""
    code = f"""
import sys
from tody.settings import Config
from tody.services.platform import Platform
p = Platform.open(Config.load(environ={{}}, data_dir={str(data_dir)!r}, admin_token={TOKEN!r}))
principal = p.tokens.authenticate({TOKEN!r})
params = dict(schema={SCHEMA!r}, engine="MergeTree", engine_sorting_key="event, timestamp",
              engine_partition_key="toYYYYMM(timestamp)")
rec = p.datasources.create(principal, "events", params)
table = p.datasources.physical(principal.workspace, rec)
p.engine.execute("INSERT INTO " + table + " " + {FILL.format(rows=rows)!r})
p.engine.execute("OPTIMIZE TABLE " + table + " FINAL")
print(table)
p.close()
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def timed(fn, iterations: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--iterations", type=int, default=300)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tody-bench-"))
    try:
        print(f"loading {args.rows:,} rows twice (tody data dir and raw engine) …", flush=True)
        load_tody(work / "tody", args.rows)

        from tody.engine.chdb import ChdbEngine  # after the child processes: chDB must not fork
        from tody.settings import Config

        config = Config.load(environ={})
        raw = ChdbEngine(work / "raw", limits=config.query_limits())
        raw.execute("CREATE DATABASE bench ENGINE = Atomic")
        raw.execute(
            f"CREATE TABLE bench.events ({SCHEMA.replace('`', '')}) ENGINE = MergeTree "
            "PARTITION BY toYYYYMM(timestamp) ORDER BY (event, timestamp)"
        )
        raw.execute("INSERT INTO bench.events " + FILL.format(rows=args.rows))
        raw.execute("OPTIMIZE TABLE bench.events FINAL")

        port = free_port()
        env = {**os.environ, "TODY_DATA_DIR": str(work / "tody"), "TODY_LOG_LEVEL": "warning"}
        server = subprocess.Popen(
            [sys.executable, "-m", "tody", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port)
            for _ in range(300):
                try:
                    conn.request("GET", "/health")
                    if conn.getresponse().read() and True:
                        break
                except OSError:
                    conn.close()
                    time.sleep(0.1)
            headers = {"Authorization": f"Bearer {TOKEN}"}

            def over_http(sql: str):
                path = "/v0/sql?" + urllib.parse.urlencode({"q": sql})

                def call():
                    conn.request("GET", path, headers=headers)
                    res = conn.getresponse()
                    body = res.read()
                    assert res.status == 200, body[:300]

                return call

            def direct(sql: str):
                physical = sql.replace("FROM events", "FROM bench.events")
                return lambda: raw.query(physical, "JSON").data

            results = {}
            for name, sql in QUERIES.items():
                iterations = args.iterations if name == "trivial" else max(30, args.iterations // 5)
                # interleave the two sides so background noise hits both alike
                h, r = [], []
                for _ in range(3):
                    h += timed(over_http(sql), iterations // 3, warmup=5)
                    r += timed(direct(sql), iterations // 3, warmup=5)
                results[name] = (h, r)
        finally:
            server.terminate()
            server.wait(timeout=30)
            raw.close()

        print(
            f"\n{'query':<20} {'http p50':>9} {'raw p50':>9} {'added':>8} {'ratio':>6} {'http p99':>9} {'raw p99':>9}"
        )
        summary = {}
        for name, (h, r) in results.items():
            hp50, rp50 = statistics.median(h), statistics.median(r)
            hp99, rp99 = pct(h, 0.99), pct(r, 0.99)
            print(
                f"{name:<20} {hp50:8.2f}ms {rp50:8.2f}ms {hp50 - rp50:7.2f}ms {hp50 / rp50:5.2f}x"
                f" {hp99:8.2f}ms {rp99:8.2f}ms"
            )
            summary[name] = {"http_p50_ms": hp50, "raw_p50_ms": rp50, "ratio": hp50 / rp50}
        print("\n" + json.dumps(summary))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
