"""Ingestion against the raw engine, side by side on the same bytes, in one run.

    .venv/bin/python bench/ingest.py [--quick] [--only events_batch,events_single,bulk_csv,bulk_parquet]

1. events_batch: NDJSON, 10k rows per `POST /v0/events`, 4 concurrent clients: acknowledged rows/s and
   MB/s, against chDB `send_insert` (JSONEachRow) of the same bodies from 4 threads into an identical
   MergeTree table; then the time until every acknowledged row is visible to `/v0/sql`.
   Goals: >= 0.8x raw, >= 50 MB/s.
2. events_single: 1 row per request, 32 concurrent clients: requests/s, p50/p99 latency, and the
   202-to-visible latency of every Nth event (found through `/v0/sql` by its unique user_id).
   Goals: >= 2,000 requests/s, visible p99 <= 1 s. The raw figure is 1-row INSERTs/s on chDB from
   32 threads (every INSERT makes a part, which is why the Events API batches).
3. bulk_csv, bulk_parquet: 5M rows (--quick: 500k) uploaded to `POST /v0/datasources?mode=append`
   (multipart, part `csv`, as the tb CLI sends it; --raw-body for a plain body) against
   `INSERT INTO t FROM INFILE '<file>'` of the same file on chDB. Goal: >= 0.8x raw.
4. Peak RSS (VmHWM) of a fresh server per scenario. The raw column is this process's peak since the
   scenario started (chDB plus the benchmark's own buffers: the event bodies are held in memory).

Every scenario runs its raw side first, lets the raw engine's merges settle, then starts its server,
so the two sides never share the CPU; with --rounds N (default 2) it does so N times and keeps each
side's best round, which makes the ratio robust to other work on the machine. The server gets TODY_EVENTS_RATE_LIMIT=0 (no rate limit); a 429
is still honoured (Retry-After) and counted.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import shutil
import tempfile
import time
import traceback
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from harness import TOKEN, Server, p50, p99, peak_rss_mb, reset_peak_rss, threaded
from ingest_report import print_report

SCENARIOS = ("events_batch", "events_single", "bulk_csv", "bulk_parquet")
COLUMNS = (
    ("timestamp", "DateTime"),
    ("event", "LowCardinality(String)"),
    ("user_id", "UInt64"),
    ("value", "Float64"),
    ("payload", "String"),
)
SCHEMA = ", ".join(f"`{name}` {type_} `json:$.{name}`" for name, type_ in COLUMNS)
SORTING_KEY = "event, timestamp"
# Deterministic rows; user_id = number is unique, so an event can be found by it.
ROWS_SQL = (
    "SELECT toDateTime('2026-01-01 00:00:00') + intDiv(number, 10) AS timestamp, "
    "['click','view','purchase','signup','share'][number % 5 + 1] AS event, "
    "number AS user_id, "
    "(cityHash64(number, 2) % 10000) / 100 AS value, "
    'concat(\'{{"path":"/p/\', toString(cityHash64(number, 3) % 1000), \'","ref":"\', '
    'hex(cityHash64(number, 4)), \'","ua":"Mozilla/5.0 (X11; Linux x86_64)"}}\') AS payload '
    "FROM numbers({start}, {rows})"
)
JSON_OUT = {"output_format_json_quote_64bit_integers": 0}
BATCH = 10_000
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SERVER_ENV = {"TODY_ADMIN_TOKEN": TOKEN, "TODY_EVENTS_RATE_LIMIT": "0"}


# ---------------------------------------------------------------------------------------------------
# A minimal asyncio HTTP/1.1 keep-alive client: the client side must cost far less CPU than the
# server (2,000+ requests/s from one Python process sharing the cores with the server).


class AsyncHttp:
    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 20)

    async def request(
        self, method: str, target: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        head = f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        for key, value in (headers or {}).items():
            head += f"{key}: {value}\r\n"
        head += f"Content-Length: {len(body)}\r\n\r\n"
        if self.writer is None:
            await self._connect()
        assert self.reader is not None and self.writer is not None
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        raw_head = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                hdrs[key.strip().lower()] = value.strip()
        if "content-length" in hdrs:
            data = await self.reader.readexactly(int(hdrs["content-length"]))
        elif hdrs.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            data = b"".join(p[:-2] for p in parts)
        else:
            data = await self.reader.read()
        if hdrs.get("connection", "").lower() == "close" or ("content-length" not in hdrs and not data):
            await self.close()
        return status, hdrs, data

    async def sql(self, q: str) -> list[dict]:
        status, _, data = await self.request("GET", "/v0/sql?" + urllib.parse.urlencode({"q": q}))
        if status != 200:
            raise RuntimeError(f"/v0/sql {status}: {data[:300]!r}")
        return json.loads(data)["data"]

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


class Outcome:
    """What a set of Events API requests got back."""

    def __init__(self) -> None:
        self.statuses: Counter[int] = Counter()
        self.rows = 0  # successful_rows of the acknowledged (200/202) requests
        self.quarantined = 0
        self.rate_limited = 0
        self.backlogged = 0
        self.first_error = ""

    def note(self, status: int, data: bytes) -> bool:
        self.statuses[status] += 1
        if status in (200, 202):
            body = json.loads(data)
            self.rows += int(body.get("successful_rows", 0))
            self.quarantined += int(body.get("quarantined_rows", 0))
            return True
        if not self.first_error:
            self.first_error = f"{status}: {data[:300]!r}"
        return False


async def post_event(http: AsyncHttp, target: str, body: bytes, headers: dict, out: Outcome) -> bool:
    """One POST, retried after Retry-After while rate limited (429) or backlogged (503).
    True when acknowledged."""
    while True:
        status, hdrs, data = await http.request("POST", target, body, headers)
        if status not in (429, 503):
            return out.note(status, data)
        if status == 429:
            out.rate_limited += 1
        else:
            out.backlogged += 1
        await asyncio.sleep(min(1.0, float(hdrs.get("retry-after", "0.1") or 0.1)))


async def count_rows(http: AsyncHttp, name: str) -> int:
    return int((await http.sql(f"SELECT count() AS c FROM {name}"))[0]["c"])


# ---------------------------------------------------------------------------------------------------
# Helpers shared by the scenarios


def rows_sql(start: int, rows: int) -> str:
    return ROWS_SQL.format(start=start, rows=rows)


def raw_table(raw, name: str) -> str:
    cols = ", ".join(f"{n} {t}" for n, t in COLUMNS)
    raw.execute(f"CREATE TABLE bench.{name} ({cols}) ENGINE = MergeTree ORDER BY ({SORTING_KEY})")
    return f"bench.{name}"


def raw_count(raw, table: str) -> int:
    return int(raw.execute(f"SELECT count() FROM {table}").data)


def settle(raw, timeout: float = 60) -> None:
    """Wait for the raw engine's background merges to finish, so they do not steal the server's CPU."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if int(raw.execute("SELECT count() FROM system.merges").data) == 0:
            return
        time.sleep(0.2)


@contextmanager
def fresh_server(work: Path, label: str) -> Iterator[Server]:
    data_dir = work / label / "tody"
    data_dir.mkdir(parents=True)
    server = Server(data_dir, env=SERVER_ENV)
    try:
        yield server
    except Exception:
        log = work / label / "server.log"
        if log.exists() and log.stat().st_size:
            print(f"server log ({label}):\n" + log.read_text()[-3000:])
        raise
    finally:
        server.stop()


def keep_best(out: dict, key: str, **figures) -> None:
    """Keep one side's figures from its best round (the rounds alternate raw and tody, so noise from
    other processes on the machine costs each side its worst round, not the ratio)."""
    if out.get(key) is None or (figures.get(key) or 0) > out[key]:
        out.update(figures)


def keep_peak(out: dict, key: str, value: float) -> None:
    out[key] = max(out.get(key) or 0.0, value)


def server_cpu(server: Server) -> float:
    """CPU seconds (user + system) the server process has used so far."""
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def create_datasource(server: Server, name: str) -> None:
    res = httpx.post(
        f"http://127.0.0.1:{server.port}/v0/datasources",
        data={"name": name, "schema": SCHEMA, "engine_sorting_key": SORTING_KEY},
        headers=AUTH,
        timeout=60,
    )
    if res.status_code != 200:
        raise RuntimeError(f"creating {name}: {res.status_code} {res.text[:300]}")


def events_route(server: Server, name: str) -> str | None:
    """None when the Events API answers; else why not (the route may not exist yet)."""
    res = httpx.post(
        f"http://127.0.0.1:{server.port}/v0/events?name={name}",
        content=b"",
        headers={**AUTH, "Content-Type": "application/x-ndjson"},
        timeout=60,
    )
    if res.status_code in (200, 202):
        return None
    return f"POST /v0/events answered {res.status_code}: {res.text[:200]}"


def raw_send_insert(raw, table: str):
    def insert(body: bytes) -> None:
        stream = raw.insert(f"INSERT INTO {table}", "JSONEachRow")
        stream.write(body)
        stream.finish()

    return insert


# ---------------------------------------------------------------------------------------------------
# Scenarios: each returns a dict of figures (None where a side could not run)


def events_batch(raw, work: Path, args, out: dict) -> None:
    bodies = [
        raw.execute(rows_sql(i * BATCH, BATCH), "JSONEachRow", settings=JSON_OUT).data
        for i in range(args.event_rows // BATCH)
    ]
    rows = len(bodies) * BATCH
    mb = sum(len(b) for b in bodies) / 1e6
    out.update(rows=rows, mb=round(mb, 1), clients=args.batch_clients)
    headers = {"Content-Type": "application/x-ndjson"}
    sent = bodies
    if args.gzip:
        sent = [gzip.compress(b, 1) for b in bodies]
        headers["Content-Encoding"] = "gzip"
    for n in range(args.rounds):
        table = raw_table(raw, f"ev_batch_{n}")
        reset_peak_rss()
        wall, lat, errors = threaded(raw_send_insert(raw, table), bodies, args.batch_clients)
        assert errors == 0 and raw_count(raw, table) == rows, "raw insert lost rows"
        keep_best(out, "raw_rows_s", raw_rows_s=rows / wall, raw_mb_s=mb / wall, raw_p50_ms=p50(lat))
        keep_peak(out, "raw_rss_mb", peak_rss_mb())
        settle(raw)

        name = "ev_batch"
        with fresh_server(work, f"events_batch_{n}") as server:
            create_datasource(server, name)
            if missing := events_route(server, name):
                out["skipped"] = missing
                return
            cpu = server_cpu(server)
            res = asyncio.run(_events_batch(server.port, name, sent, headers, args.batch_clients))
            res["server_cpu"] = (server_cpu(server) - cpu) / res["wall"]
            res["tody_mb_s"] = mb * (res["acked_rows"] / rows) / res["wall"]
            keep_best(out, "tody_rows_s", **res)
            keep_peak(out, "tody_rss_mb", server.peak_rss_mb())


async def _events_batch(port: int, name: str, bodies: list[bytes], headers: dict, clients: int) -> dict:
    target = f"/v0/events?name={name}"
    outcome = Outcome()
    queue = list(reversed(bodies))
    latencies: list[float] = []

    async def client() -> None:
        http = AsyncHttp(port)
        while queue:
            body = queue.pop()
            start = time.perf_counter()
            await post_event(http, target, body, headers, outcome)
            latencies.append((time.perf_counter() - start) * 1000)
        await http.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    last_ack = time.perf_counter()
    poll = AsyncHttp(port)
    visible, seen = None, 0
    while time.perf_counter() - last_ack < 300:
        seen = await count_rows(poll, name)
        if seen >= outcome.rows:
            visible = time.perf_counter()
            break
        await asyncio.sleep(0.02)
    await poll.close()
    wall = last_ack - start
    return {
        "wall": wall,
        "acked_rows": outcome.rows,
        "quarantined": outcome.quarantined,
        "statuses": dict(outcome.statuses),
        "rate_limited": outcome.rate_limited,
        "backlogged": outcome.backlogged,
        "first_error": outcome.first_error,
        "tody_rows_s": outcome.rows / wall,
        "tody_p50_ms": p50(latencies),
        "tody_p99_ms": p99(latencies),
        "visible_after_s": None if visible is None else visible - last_ack,
        "visible_rows_s": None if visible is None else outcome.rows / (visible - start),
        "visible_rows": seen,
    }


def events_single(raw, work: Path, args, out: dict) -> None:
    total = args.single_requests
    data = raw.execute(rows_sql(0, total), "JSONEachRow", settings=JSON_OUT).data
    lines = [line + b"\n" for line in data.splitlines()]
    raw_n = min(total, args.raw_single_inserts)
    out.update(requests=total, clients=args.single_clients, raw_inserts=raw_n)
    for n in range(args.rounds):
        table = raw_table(raw, f"ev_single_{n}")
        reset_peak_rss()
        wall, lat, errors = threaded(raw_send_insert(raw, table), lines[:raw_n], args.single_clients)
        keep_best(
            out,
            "raw_requests_s",
            raw_requests_s=(raw_n - errors) / wall,
            raw_p50_ms=p50(lat),
            raw_p99_ms=p99(lat),
            raw_errors=errors,
        )
        keep_peak(out, "raw_rss_mb", peak_rss_mb())
        settle(raw)

        name = "ev_single"
        with fresh_server(work, f"events_single_{n}") as server:
            create_datasource(server, name)
            if missing := events_route(server, name):
                out["skipped"] = missing
                return
            cpu, client_cpu = server_cpu(server), time.process_time()
            res = asyncio.run(_events_single(server.port, name, lines, args))
            res["server_cpu"] = (server_cpu(server) - cpu) / res["wall"]
            res["client_cpu"] = (time.process_time() - client_cpu) / res["wall"]
            keep_best(out, "tody_requests_s", **res)
            keep_peak(out, "tody_rss_mb", server.peak_rss_mb())


async def _events_single(port: int, name: str, lines: list[bytes], args) -> dict:
    target = f"/v0/events?name={name}"
    headers = {"Content-Type": "application/x-ndjson"}
    outcome = Outcome()
    latencies: list[float] = []
    acked_at: dict[int, float] = {}  # sampled user_id -> when its 202 arrived
    seen_at: dict[int, float] = {}
    poll_ms: list[float] = []
    next_index = iter(range(len(lines)))
    sending = True

    async def client() -> None:
        http = AsyncHttp(port)
        for i in next_index:
            start = time.perf_counter()
            ok = await post_event(http, target, lines[i], headers, outcome)
            end = time.perf_counter()
            latencies.append((end - start) * 1000)
            if ok and i % args.sample_every == 0:
                acked_at[i] = end
        await http.close()

    async def poller() -> None:
        http = AsyncHttp(port)
        deadline = None
        while True:
            if not sending:
                deadline = deadline or time.perf_counter() + 60
                if len(seen_at) >= len(acked_at) or time.perf_counter() > deadline:
                    break
            pending = [i for i in acked_at if i not in seen_at][:2000]
            if pending:
                start = time.perf_counter()
                ids = ",".join(map(str, pending))
                found = await http.sql(f"SELECT user_id FROM {name} WHERE user_id IN ({ids})")
                now = time.perf_counter()
                poll_ms.append((now - start) * 1000)
                for row in found:
                    seen_at.setdefault(int(row["user_id"]), now)
            await asyncio.sleep(0.01)
        await http.close()

    watcher = asyncio.create_task(poller())
    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(args.single_clients)))
    wall = time.perf_counter() - start
    sending = False
    await watcher
    visible = [(seen_at[i] - acked_at[i]) * 1000 for i in seen_at if i in acked_at]
    poll = AsyncHttp(port)
    final = await count_rows(poll, name)
    await poll.close()
    return {
        "wall": wall,
        "acked_rows": outcome.rows,
        "statuses": dict(outcome.statuses),
        "rate_limited": outcome.rate_limited,
        "backlogged": outcome.backlogged,
        "first_error": outcome.first_error,
        "tody_requests_s": len(latencies) / wall,
        "tody_p50_ms": p50(latencies),
        "tody_p99_ms": p99(latencies),
        "sampled": len(acked_at),
        "sampled_visible": len(visible),
        "visible_p50_ms": p50(visible) if visible else None,
        "visible_p99_ms": p99(visible) if visible else None,
        "visible_max_ms": max(visible) if visible else None,
        "poll_p50_ms": p50(poll_ms) if poll_ms else None,
        "visible_rows": final,
    }


def bulk(raw, work: Path, args, out: dict, fmt: str) -> None:
    name = f"bulk_{fmt}"
    engine_fmt = {"csv": "CSV", "parquet": "Parquet"}[fmt]
    rows = args.bulk_rows
    path = work / f"{name}.{fmt}"
    raw.execute(f"{rows_sql(0, rows)} INTO OUTFILE '{path}' FORMAT {engine_fmt}")
    mb = path.stat().st_size / 1e6
    out.update(rows=rows, mb=round(mb, 1), upload="raw body" if args.raw_body else "multipart")
    for n in range(args.rounds):
        table = raw_table(raw, f"{name}_{n}")
        reset_peak_rss()
        start = time.perf_counter()
        raw.execute(f"INSERT INTO {table} FROM INFILE '{path}' FORMAT {engine_fmt}")
        wall = time.perf_counter() - start
        assert raw_count(raw, table) == rows, "raw import lost rows"
        keep_best(out, "raw_rows_s", raw_rows_s=rows / wall, raw_mb_s=mb / wall, raw_s=wall)
        keep_peak(out, "raw_rss_mb", peak_rss_mb())
        settle(raw)

        with fresh_server(work, f"{name}_{n}") as server:
            create_datasource(server, name)
            url = f"http://127.0.0.1:{server.port}/v0/datasources?name={name}&mode=append&format={fmt}"
            with path.open("rb") as f, httpx.Client(headers=AUTH, timeout=None) as client:
                cpu = server_cpu(server)
                start = time.perf_counter()
                if args.raw_body:
                    res = client.post(url, content=_file_chunks(f))
                else:
                    res = client.post(url, files={"csv": (path.name, f)})
                wall = time.perf_counter() - start
                cpu = server_cpu(server) - cpu
            if res.status_code != 200:
                raise RuntimeError(f"{fmt} upload: {res.status_code} {res.text[:300]}")
            body = res.json()
            import_s = ops_log_elapsed(server, name)
            keep_best(
                out,
                "tody_rows_s",
                tody_rows_s=rows / wall,
                tody_mb_s=mb / wall,
                tody_s=wall,
                server_cpu=cpu / wall,
                import_s=import_s,
                stored=body["datasource"]["statistics"]["row_count"],
                quarantined=body.get("quarantine_rows"),
            )
            keep_peak(out, "tody_rss_mb", server.peak_rss_mb())


def ops_log_elapsed(server: Server, name: str) -> float | None:
    """The import's own duration (after the upload was spooled) from tinybird.datasources_ops_log."""
    q = (
        "SELECT elapsed_time FROM tinybird.datasources_ops_log WHERE datasource_name = "
        f"'{name}' AND event_type = 'append' ORDER BY timestamp DESC LIMIT 1"
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        res = httpx.get(f"http://127.0.0.1:{server.port}/v0/sql", params={"q": q}, headers=AUTH, timeout=60)
        if res.status_code == 200 and res.json()["data"]:
            return float(res.json()["data"][0]["elapsed_time"])
        time.sleep(0.2)
    return None


def _file_chunks(f, size: int = 1 << 20):
    while chunk := f.read(size):
        yield chunk


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    ap.add_argument("--rounds", type=int, help="raw/tody rounds per scenario, best kept (default 2, quick 1)")
    ap.add_argument("--event-rows", type=int, help="events_batch rows (default 2M, quick 300k)")
    ap.add_argument("--batch-clients", type=int, default=4)
    ap.add_argument("--gzip", action="store_true", help="events_batch bodies sent gzipped")
    ap.add_argument("--single-requests", type=int, help="events_single requests (default 30k, quick 5k)")
    ap.add_argument("--single-clients", type=int, default=32)
    ap.add_argument("--sample-every", type=int, default=10, help="events_single: every Nth event is tracked")
    ap.add_argument("--raw-single-inserts", type=int, default=1000, help="raw 1-row INSERTs (each a part)")
    ap.add_argument("--bulk-rows", type=int, help="bulk rows (default 5M, quick 500k)")
    ap.add_argument("--raw-body", action="store_true", help="bulk: upload as a plain body, not multipart")
    args = ap.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.event_rows = args.event_rows or (300_000 if args.quick else 2_000_000)
    args.single_requests = args.single_requests or (5_000 if args.quick else 30_000)
    args.bulk_rows = args.bulk_rows or (500_000 if args.quick else 5_000_000)
    if args.quick:
        args.raw_single_inserts = min(args.raw_single_inserts, 500)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenarios: {', '.join(sorted(unknown))}")

    from tody.engine.chdb import ChdbEngine
    from tody.settings import Config

    work = Path(tempfile.mkdtemp(prefix="tody-bench-ingest-"))
    raw = ChdbEngine(
        work / "raw", limits=Config.load(environ={}).query_limits(), admin_pool_size=args.single_clients
    )
    raw.execute("CREATE DATABASE bench ENGINE = Atomic")
    results: dict[str, dict] = {}
    try:
        for scenario in SCENARIOS:
            if scenario not in only:
                continue
            print(f"{scenario} …", flush=True)
            out = results[scenario] = {}
            try:
                if scenario == "events_batch":
                    events_batch(raw, work, args, out)
                elif scenario == "events_single":
                    events_single(raw, work, args, out)
                else:
                    bulk(raw, work, args, out, scenario.split("_", 1)[1])
            except Exception as exc:
                traceback.print_exc()
                out["failed"] = f"{type(exc).__name__}: {exc}"
            settle(raw)
        print_report(results, args)
    finally:
        raw.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
