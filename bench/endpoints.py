"""API Endpoints against the raw engine: p50/p99 and requests/s at concurrency 1, 8 and 32.

    .venv/bin/python bench/endpoints.py [--rows 10000000] [--requests 240] [--only endpoints|auth]

A 10M-row events data source and four endpoints: (a) trivial, (b) sorting-key prefix + time range +
group by, (c) top-N, (d) quantiles with parameters. The raw side runs the same final SQL (the
endpoint compiled by tody's compiler, with the raw side's physical names) on a chDB engine with the
same query pool size and limits, from the same number of threads. Goals: <= 1 ms added p50 on (a);
<= 1.1x raw on (b)-(d); throughput at concurrency 8 >= 0.9x raw; no errors.

The auth section (`--only auth` runs it alone) measures what a token costs per request, at concurrency
1, interleaved (one call of each per round, in random order) on the same server: the trivial endpoint with the workspace admin token,
a static PIPES:READ token and a JWT with fixed_params; and an endpoint counting a small sorting-key
range of `events` with the admin token, a static token without and with a row filter
(DATASOURCES:READ:events:<filter>) and a JWT with that filter, on a warm compile cache and on a miss
(a parameter varied per request). The raw engine runs the same SQL (filtered or not) in the same
rounds: `added` is over the admin token on the same endpoint, `net` also takes off what the engine
itself spends on the filter. An in-process part (a child process, no HTTP) times
`tokens.authenticate` and `compiler.compile_node` with and without the filter. Goal: <= 0.2 ms
added p50.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from harness import (
    SCHEMA,
    TOKEN,
    Server,
    concurrent,
    interleaved,
    load_tody,
    p50,
    p99,
    per_call_us,
    raw_engine,
)

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
# The auth section's endpoint on `events`: ~50 rows of one sorting-key range, so engine time is small.
KEY_COUNT = {
    "name": "key_count",
    "nodes": [
        {
            "name": "n",
            "type": "endpoint",
            "sql": (
                "%\nSELECT count() AS c FROM events WHERE event = {{String(event, 'click')}} "
                "AND timestamp >= {{DateTime(start, '2026-01-05 00:00:00')}} "
                "AND timestamp < {{DateTime(end, '2026-01-05 00:10:00')}}"
            ),
        }
    ],
}
ROW_FILTER = "country = 'ES'"
KEY_PARAMS = {"event": "click", "start": "2026-01-05 00:00:00", "end": "2026-01-05 00:10:00"}
END = datetime(2026, 1, 5, 0, 10)
GOAL_MS = 0.2
CALLS = {
    "trivial": "",
    "range_group": "event=view&start=2026-01-07%2000:00:00&end=2026-01-08%2000:00:00",
    "top_n": "limit=5",
    "quantiles": "start=2026-01-10%2000:00:00&end=2026-01-17%2000:00:00",
}


def final_sql(pipe: dict, query: str, row_filter: str | None = None) -> str:
    """The endpoint's SQL as tody compiles it (with a token's row filter on events), with the raw
    engine's table name."""
    from urllib.parse import parse_qsl

    from tody.sql.gate import TableBinding, compile_select, validate_expression
    from tody.sql.templates import is_template, render

    sql = pipe["nodes"][0]["sql"]
    if is_template(sql):
        sql = render(sql, dict(parse_qsl(query)))
    flt = validate_expression(row_filter) if row_filter else None

    class Raw:
        def resolve(self, database, name):
            return (
                TableBinding(database="bench", table="events", row_filter=flt) if name == "events" else None
            )

    return compile_select(sql, Raw()).sql


def query_string(params: dict[str, str]) -> str:
    return "&".join(f"{k}={quote(v)}" for k, v in params.items())


def miss_end(i: int) -> str:
    """A different `end` per request (one second apart) so that every call misses the compile cache."""
    return (END + timedelta(seconds=10_000 + i)).strftime("%Y-%m-%d %H:%M:%S")


def jwt_scopes(row_filter: str | None) -> list[dict]:
    fixed = {"event": KEY_PARAMS["event"]}  # what the request sends too: the same SQL as the admin call
    scopes = [
        {"type": "PIPES:READ", "resource": "trivial", "fixed_params": fixed},
        {"type": "PIPES:READ", "resource": "key_count", "fixed_params": fixed},
    ]
    if row_filter:
        scopes.append({"type": "DATASOURCES:READ", "resource": "events", "filter": row_filter})
    return scopes


def run_endpoints(server: Server, raw, requests: int) -> None:
    rows = []
    for pipe in PIPES:
        name = pipe["name"]
        http_call = server.getter(f"/v0/pipes/{name}.json?{CALLS[name]}")
        sql = final_sql(pipe, CALLS[name])
        for threads in (1, 8, 32):
            per = max(4, requests // threads)
            for _ in range(3):  # warm both sides
                http_call()
                raw.query(sql, "JSON")
            h, h_rps, h_err = concurrent(http_call, threads, per)
            r, r_rps, r_err = concurrent(lambda sql=sql: raw.query(sql, "JSON"), threads, per)
            rows.append((name, threads, h, h_rps, h_err, r, r_rps, r_err))
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


def run_auth(server: Server, raw, requests: int, warmup: int) -> dict:
    """The HTTP half of the auth section: every variant and the raw engine, interleaved."""
    static = server.post("/v0/tokens?name=bench_pipes&scope=PIPES:READ:trivial&scope=PIPES:READ:key_count")[
        "token"
    ]
    filtered = server.post(
        "/v0/tokens?name=bench_filter&scope=PIPES:READ:key_count&scope="
        + quote(f"DATASOURCES:READ:events:{ROW_FILTER}")
    )["token"]
    exp = int(time.time()) + 3600
    jwt = server.post(f"/v0/tokens?name=bench_jwt&expiration_time={exp}", {"scopes": jwt_scopes(None)})[
        "token"
    ]
    jwt_filter = server.post(
        f"/v0/tokens?name=bench_jwt_filter&expiration_time={exp}", {"scopes": jwt_scopes(ROW_FILTER)}
    )["token"]
    key_query = query_string(KEY_PARAMS)
    miss_query = query_string({k: v for k, v in KEY_PARAMS.items() if k != "end"}) + "&end="
    trivial_path, key_path = "/v0/pipes/trivial.json", f"/v0/pipes/key_count.json?{key_query}"
    miss_path = f"/v0/pipes/key_count.json?{miss_query}"

    def http(path: str, token: str, miss: bool = False):
        call = server.getter(path, token)
        if miss:
            return lambda i: call(quote(miss_end(i)))
        return lambda i: call()

    sql = {
        "trivial": final_sql(PIPES[0], ""),
        "key": final_sql(KEY_COUNT, key_query),
        "key+filter": final_sql(KEY_COUNT, key_query, ROW_FILTER),
    }
    # name -> (call, baseline variant, raw SQL it is compared with)
    variants = {
        "trivial: admin token": (http(trivial_path, TOKEN), None, "trivial"),
        "trivial: static PIPES:READ": (http(trivial_path, static), "trivial: admin token", "trivial"),
        "trivial: JWT fixed_params": (http(trivial_path, jwt), "trivial: admin token", "trivial"),
        "events: admin token": (http(key_path, TOKEN), None, "key"),
        "events: static PIPES:READ": (http(key_path, static), "events: admin token", "key"),
        "events: static + row filter": (http(key_path, filtered), "events: admin token", "key+filter"),
        "events: JWT + row filter": (
            http(key_path, jwt_filter),
            "events: admin token",
            "key+filter",
        ),
        "events miss: admin token": (http(miss_path, TOKEN, True), None, "key"),
        "events miss: static + filter": (
            http(miss_path, filtered, True),
            "events miss: admin token",
            "key+filter",
        ),
        "events miss: JWT + filter": (
            http(miss_path, jwt_filter, True),
            "events miss: admin token",
            "key+filter",
        ),
    }
    calls = {name: v[0] for name, v in variants.items()}
    for key, text in sql.items():
        calls[f"raw {key}"] = lambda i, text=text: raw.query(text, "JSON")
    samples = interleaved(calls, requests, warmup)
    return {
        "samples": samples,
        "variants": {name: (base, ref) for name, (_, base, ref) in variants.items()},
        "raw_sql": sql,
    }


def micro_child(data_dir: Path, repeats: int) -> dict:
    """In this process (no HTTP): authenticate and compile_node, on a fresh platform with no rows."""
    from tody.datafiles.pipe import pipe_from_api
    from tody.services.platform import Platform
    from tody.settings import Config
    from tody.sql.gate import validate_expression

    p = Platform.open(Config.load(environ={}, data_dir=str(data_dir), admin_token=TOKEN))
    try:
        tokens = p.tokens
        admin = tokens.authenticate(TOKEN)
        params = dict(
            schema=SCHEMA,
            engine="MergeTree",
            engine_sorting_key="event, timestamp",
            engine_partition_key="toYYYYMM(timestamp)",
        )
        p.datasources.create(admin, "events", params)
        for body in (PIPES[0], KEY_COUNT):
            p.pipes.create(admin, pipe_from_api(body), body["name"])
        _, static = tokens.create_static(admin, "m_static", ["PIPES:READ:trivial", "PIPES:READ:key_count"])
        _, filtered = tokens.create_static(
            admin, "m_filter", ["PIPES:READ:key_count", f"DATASOURCES:READ:events:{ROW_FILTER}"]
        )
        exp = int(time.time()) + 3600
        jwt = tokens.jwt.create(admin, "m_jwt", exp, jwt_scopes(None))
        jwt_filter = tokens.jwt.create(admin, "m_jwt_filter", exp, jwt_scopes(ROW_FILTER))

        def cold(cache: dict, value: str):
            return lambda: (cache.clear(), tokens.authenticate(value))

        auth = per_call_us(
            {
                "authenticate: admin token (cached)": lambda: tokens.authenticate(TOKEN),
                "authenticate: static (cached)": lambda: tokens.authenticate(static),
                "authenticate: JWT (cached)": lambda: tokens.authenticate(jwt),
                "authenticate: static (cold: catalog lookup)": cold(tokens._principals, static),
                "authenticate: JWT (cold: signature check)": cold(tokens.jwt._verified, jwt),
            },
            batch=2000,
            repeats=repeats,
        )
        principals = {
            "admin token": admin,
            "static + row filter": tokens.authenticate(filtered),
            "JWT + row filter": tokens.authenticate(jwt_filter),
        }
        pipe = p.catalog.pipe(admin.workspace.id, "key_count")
        counter = iter(range(10**9))

        def compile_miss(principal):
            return lambda: p.compiler.compile_node(
                principal, pipe, "n", {**KEY_PARAMS, "end": miss_end(next(counter))}
            )

        def compile_hit(principal):
            return lambda: p.compiler.compile_node(principal, pipe, "n", KEY_PARAMS)

        compile_hits = per_call_us(
            {f"compile_node hit: {k}": compile_hit(v) for k, v in principals.items()},
            batch=2000,
            repeats=repeats,
        )
        columns = [c["name"] for c in p.catalog.datasource(admin.workspace.id, "events").columns]
        compile_misses = per_call_us(
            {
                **{f"compile_node miss: {k}": compile_miss(v) for k, v in principals.items()},
                "validate_expression(filter)": lambda: validate_expression(ROW_FILTER, columns),
            },
            batch=40,
            repeats=repeats,
        )
        return {**auth, **compile_hits, **compile_misses}
    finally:
        p.close()


def run_micro(work: Path, repeats: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--micro-child", str(work / "micro"), "--repeats", str(repeats)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the in-process part failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report_auth(result: dict) -> list[dict]:
    """The HTTP table: `added` is over the variant's baseline (admin token, same endpoint); `net` also
    takes off what the engine itself spends on the filter (raw filtered - raw, same rounds)."""
    samples, variants = result["samples"], result["variants"]
    n = len(next(iter(samples.values())))
    print(f"\nauth: concurrency 1, {n} requests per variant, interleaved in random order (after warm-up)")
    print(f"{'variant':<30} {'p50':>8} {'p99':>8} {'added p50':>10} {'net':>9} {'raw p50':>8} {'ratio':>6}")
    summary, added_by = [], {"warm": [], "miss": []}  # (added, net, variant) per goal line
    for name, (base, ref) in variants.items():
        h, r = samples[name], samples[f"raw {ref}"]
        shown = f"{'(baseline)':>21}"
        if base:
            added = p50(h) - p50(samples[base])
            net = added - (p50(r) - p50(samples[f"raw {variants[base][1]}"]))
            added_by["miss" if "miss" in name else "warm"].append((added, net, name))
            shown = f"{added:+8.3f}ms {net:+7.3f}ms"
        print(f"{name:<30} {p50(h):6.3f}ms {p99(h):6.3f}ms {shown} {p50(r):6.3f}ms {p50(h) / p50(r):5.2f}x")
        summary.append(
            {
                "variant": name,
                "p50_ms": round(p50(h), 3),
                "p99_ms": round(p99(h), 3),
                "raw_p50_ms": round(p50(r), 3),
            }
        )
    for ref in result["raw_sql"]:
        r = samples[f"raw {ref}"]
        print(f"{'raw engine: ' + ref:<30} {p50(r):6.3f}ms {p99(r):6.3f}ms")
    print()
    for key, label in (("warm", "warm compile cache"), ("miss", "compile-cache miss")):
        added, _, name = max(added_by[key])
        net, _, net_name = max((net, added, name) for added, net, name in added_by[key])
        print(
            f"added cost <= {GOAL_MS} ms p50 ({label}): {'met' if added <= GOAL_MS else 'not met'} "
            f"(largest {added:+.3f} ms: {name}); net of the engine's filter cost: "
            f"{'met' if net <= GOAL_MS else 'not met'} (largest {net:+.3f} ms: {net_name})"
        )
    return summary


def report_micro(micro: dict) -> None:
    print(f"\nin-process, no HTTP (median of batches, µs per call)\n{'call':<46} {'µs':>9}")
    for name, us in micro.items():
        print(f"{name:<46} {us:9.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--requests", type=int, default=240, help="requests per endpoint per concurrency level")
    ap.add_argument("--only", choices=["endpoints", "auth"], help="run one section (default: both)")
    ap.add_argument("--auth-requests", type=int, default=1000, help="requests per auth variant")
    ap.add_argument("--repeats", type=int, default=15, help="batches per in-process figure")
    ap.add_argument("--micro-child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.micro_child:
        print(json.dumps(micro_child(args.micro_child, args.repeats)))
        return
    work = Path(tempfile.mkdtemp(prefix="tody-bench-"))
    try:
        print(f"loading {args.rows:,} rows twice (tody data dir and raw engine) …", flush=True)
        load_tody(work / "tody", args.rows, [*PIPES, KEY_COUNT])
        raw = raw_engine(work / "raw", args.rows)
        server = Server(work / "tody")
        auth = None
        try:
            if args.only in (None, "endpoints"):
                run_endpoints(server, raw, args.requests)
            if args.only in (None, "auth"):
                auth = run_auth(server, raw, args.auth_requests, warmup=max(50, args.auth_requests // 10))
        finally:
            server.stop()
            raw.close()
        if auth is not None:
            summary = report_auth(auth)  # printed before the in-process part runs
            micro = run_micro(work, args.repeats)
            report_micro(micro)
            print(
                "\n"
                + json.dumps({"auth": summary, "in_process_us": {k: round(v, 2) for k, v in micro.items()}})
            )
    except Exception:
        log = work / "server.log"
        if log.exists():
            print("server log:\n" + log.read_text()[-3000:])
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
