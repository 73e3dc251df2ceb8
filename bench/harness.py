"""Shared pieces of the benchmarks: the same deterministic events table built twice (a tody data
directory served by `tody serve` in a subprocess, and a raw chDB engine in this process — chDB allows
one data path per process), a keep-alive HTTP client, and timing helpers."""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_tody(data_dir: Path, rows: int, pipes: list[dict] | None = None) -> None:
    """Create and fill the events data source (and pipes) through the service layer, in a child."""
    code = f"""
from tody.settings import Config
from tody.services.platform import Platform
from tody.datafiles.pipe import pipe_from_api
p = Platform.open(Config.load(environ={{}}, data_dir={str(data_dir)!r}, admin_token={TOKEN!r}))
principal = p.tokens.authenticate({TOKEN!r})
params = dict(schema={SCHEMA!r}, engine="MergeTree", engine_sorting_key="event, timestamp",
              engine_partition_key="toYYYYMM(timestamp)")
rec = p.datasources.create(principal, "events", params)
table = p.datasources.physical(principal.workspace, rec)
p.engine.execute("INSERT INTO " + table + " " + {FILL.format(rows=rows)!r})
p.engine.execute("OPTIMIZE TABLE " + table + " FINAL")
for body in {pipes or []!r}:
    p.pipes.create(principal, pipe_from_api(body), body["name"])
p.close()
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def raw_engine(path: Path, rows: int):
    """The same table on a raw engine, with the server's default query limits and pool size."""
    from tody.engine.chdb import ChdbEngine
    from tody.settings import Config

    raw = ChdbEngine(path, limits=Config.load(environ={}).query_limits())
    raw.execute("CREATE DATABASE bench ENGINE = Atomic")
    raw.execute(
        f"CREATE TABLE bench.events ({SCHEMA.replace('`', '')}) ENGINE = MergeTree "
        "PARTITION BY toYYYYMM(timestamp) ORDER BY (event, timestamp)"
    )
    raw.execute("INSERT INTO bench.events " + FILL.format(rows=rows))
    raw.execute("OPTIMIZE TABLE bench.events FINAL")
    return raw


class Server:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None):
        self.port = free_port()
        env = {**os.environ, "TODY_DATA_DIR": str(data_dir), "TODY_LOG_LEVEL": "warning", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tody", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(data_dir.parent / "server.log").open("wb"),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with status {self.proc.returncode}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def getter(self, path: str, token: str = TOKEN) -> Callable[..., None]:
        """A callable doing one GET of `path` (+ an optional suffix) with `token`, on its own keep-alive
        connection (one per thread)."""
        local = threading.local()
        headers = {"Authorization": f"Bearer {token}"}

        def call(suffix: str = "") -> None:
            for attempt in (1, 2):
                conn = getattr(local, "conn", None)
                if conn is None:
                    conn = local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                try:
                    conn.request("GET", path + suffix, headers=headers)
                    res = conn.getresponse()
                    body = res.read()
                    break
                except (http.client.RemoteDisconnected, ConnectionError):
                    # the server closes keep-alive connections idle for 5 s: reconnect once
                    conn.close()
                    local.conn = None
                    if attempt == 2:
                        raise
            if res.status != 200:
                raise RuntimeError(f"{res.status}: {body[:300]!r}")

        return call

    def post(self, path: str, body: object = None, token: str = TOKEN) -> dict:
        """One POST (a JSON body if given) on a fresh connection; the answer's JSON."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Authorization": f"Bearer {token}"}
            if payload is not None:
                headers["Content-Type"] = "application/json"
            conn.request("POST", path, body=payload, headers=headers)
            res = conn.getresponse()
            data = res.read()
        finally:
            conn.close()
        if res.status != 200:
            raise RuntimeError(f"POST {path}: {res.status}: {data[:300]!r}")
        return json.loads(data)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.proc.pid)


def peak_rss_mb(pid: int | str = "self") -> float:
    """The process's peak resident set size (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss(pid: int | str = "self") -> None:
    """Restart VmHWM from the current RSS (Linux: writing 5 to clear_refs), where allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pass


def timed(fn: Callable[[], object], iterations: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def interleaved(
    calls: dict[str, Callable[[int], object]], rounds: int, warmup: int
) -> dict[str, list[float]]:
    """Latencies (ms) of each call, taken in rounds of one call of each, in a new random order every
    round (so noise, and whatever the previous call left behind, hits all alike); each call gets the
    round number (negative during warm-up)."""
    order = list(calls)
    shuffle = random.Random(0).shuffle
    for i in range(-warmup, 0):
        for fn in calls.values():
            fn(i)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(rounds):
        shuffle(order)
        for name in order:
            start = time.perf_counter()
            calls[name](i)
            samples[name].append((time.perf_counter() - start) * 1000)
    return samples


def per_call_us(fns: dict[str, Callable[[], object]], batch: int, repeats: int) -> dict[str, float]:
    """Microseconds per call of each fn: the median over `repeats` batches of `batch` calls, batches
    taken round-robin across the fns after one warm-up batch each."""
    for fn in fns.values():
        for _ in range(batch):
            fn()
    means: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(batch):
                fn()
            means[name].append((time.perf_counter() - start) * 1e6 / batch)
    return {name: statistics.median(m) for name, m in means.items()}


_END = object()


def threaded(fn, items: list, threads: int) -> tuple[float, list[float], int]:
    """Run fn(item) over items from `threads` threads: wall seconds, per-call ms, errors."""
    lock = threading.Lock()
    it = iter(items)
    samples: list[float] = []
    errors = [0]

    def worker() -> None:
        mine = []
        while True:
            with lock:
                item = next(it, _END)
            if item is _END:
                break
            start = time.perf_counter()
            try:
                fn(item)
            except Exception:
                with lock:
                    errors[0] += 1
            mine.append((time.perf_counter() - start) * 1000)
        with lock:
            samples.extend(mine)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - start, samples, errors[0]


def concurrent(fn: Callable[[], object], threads: int, per_thread: int) -> tuple[list[float], float, int]:
    """Latencies (ms), requests per second and errors with `threads` clients calling `fn`."""
    wall, samples, errors = threaded(lambda _: fn(), [None] * (threads * per_thread), threads)
    return samples, len(samples) / wall, errors


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
