"""The embedded engine: chDB (ClickHouse in-process), one data path per process.

Facts this module is built on (../shared/reference/chdb-notes.md):
- one connection runs one query at a time, separate connections run in parallel, the GIL is released;
- settings are per connection, so untrusted reads use connections opened with
  `allow_python_table_function=0`, given their limits with SET, and made `readonly=1` last
  (after which nothing, not even the query's own SETTINGS clause, can loosen them);
- `import chdb` must happen after any fork, hence the import inside `ChdbEngine.__init__`.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tody.engine.base import (
    Classification,
    EngineError,
    QueryLimits,
    Result,
    Statistics,
    output_too_large,
)
from tody.engine.recovery import repair_deduplication_logs

log = logging.getLogger("tody.engine")

SANDBOX_DATABASE = "tody_sandbox"
_CODE = re.compile(r"Code: (\d+)\.")
_NAME = re.compile(r"\(([A-Z_]+)\)\s*(?:\(version [^)]*\))?\s*$")

# Settings every locked-down connection gets besides its limits.
_READ_SETTINGS: dict[str, object] = {
    "allow_ddl": 0,
    "allow_introspection_functions": 0,
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_quote_denormals": 0,
    "http_max_tries": 1,
    "max_http_get_redirects": 0,
}


def engine_error(exc: BaseException) -> EngineError:
    """Turn a chDB exception into an EngineError with ClickHouse's code and a readable message."""
    if isinstance(exc, EngineError):
        return exc
    text = str(exc) or exc.__class__.__name__
    code_match = _CODE.search(text)
    code = int(code_match.group(1)) if code_match else None
    message = text
    if "DB::Exception:" in message:
        message = message.split("DB::Exception:", 1)[1].strip()
    message = message.split("Stack trace", 1)[0].strip()
    name_match = _NAME.search(message)
    name = name_match.group(1) if name_match else None
    if name_match:
        message = message[: name_match.start()].strip()
    message = re.sub(r"^default: ", "", message).rstrip(".:, ")
    return EngineError(message or "query failed", code=code, name=name)


def _statistics(res: Any) -> Statistics:
    return Statistics(
        elapsed=float(res.elapsed()),
        rows_read=int(res.storage_rows_read()),
        bytes_read=int(res.storage_bytes_read()),
        result_rows=int(res.rows_read()),
        result_bytes=int(res.bytes_read()),
        rows_written=int(res.rows_written()),  # INSERT … SELECT (copies, populates)
        bytes_written=int(res.bytes_written()),
    )


def _literal(value: object) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value) if isinstance(value, float) else str(value)


def _settings_clause(settings: dict) -> str:
    return ", ".join(f"{k} = {_literal(v)}" for k, v in settings.items())


class _Pool:
    """A fixed set of connections, one query in flight on each.

    A connection on which a query failed or a stream was abandoned is closed and replaced: chDB
    keeps the partial output of a failed query in the connection and prepends it to the next
    result (measured: a JSON prefix from the failed query, then the next query's document), which
    would leak one request's rows into another's answer.
    """

    def __init__(self, connect, size: int):
        self._connect = connect
        self._free: queue.LifoQueue = queue.LifoQueue()
        self._all: set = set()
        for _ in range(size):
            conn = connect()
            self._all.add(conn)
            self._free.put(conn)
        self.size = size
        self._in_use = 0
        self._lock = threading.Lock()

    @property
    def in_use(self) -> int:
        return self._in_use

    def acquire(self):
        conn = self._free.get()
        with self._lock:
            self._in_use += 1
        return conn

    def release(self, conn, *, broken: bool = False) -> None:
        if broken:
            conn = self._replace(conn)
        with self._lock:
            self._in_use -= 1
        self._free.put(conn)

    def _replace(self, conn):
        self._all.discard(conn)
        try:
            conn.close()
        except Exception:
            pass
        fresh = self._connect()
        self._all.add(fresh)
        return fresh

    @contextmanager
    def connection(self):
        conn = self.acquire()
        broken = True
        try:
            yield conn
            broken = False
        finally:
            self.release(conn, broken=broken)

    def close(self) -> None:
        for conn in self._all:
            try:
                conn.close()
            except Exception:
                pass
        self._all.clear()


class ChdbStream:
    """Output of one streamed query. Holds its connection until closed or exhausted."""

    def __init__(self, pool: _Pool, conn, sql: str, fmt: str, max_output_bytes: int = 0):
        self._pool = pool
        self._conn = conn
        self._max_output = max_output_bytes
        self._output = 0
        self.statistics = Statistics()
        self._closed = False
        self._exhausted = False
        try:
            self._stream = conn.send_query(sql, fmt)
            self._iter = iter(self._stream)
            # Pull the first chunk now so that errors surface before any response is sent.
            self._first = self._next_chunk()
        except BaseException as exc:
            self.close()
            raise engine_error(exc) from None

    def _next_chunk(self) -> bytes | None:
        try:
            chunk = next(self._iter)
        except StopIteration:
            self._exhausted = True
            return None
        self._account(chunk)
        data = chunk.bytes()
        self._output += len(data)
        if self._max_output and self._output > self._max_output:
            raise output_too_large(self._max_output)
        return data

    def _account(self, chunk: Any) -> None:
        s = self.statistics
        s.elapsed = max(s.elapsed, float(chunk.elapsed()))
        s.rows_read = max(s.rows_read, int(chunk.storage_rows_read()))
        s.bytes_read = max(s.bytes_read, int(chunk.storage_bytes_read()))
        s.result_rows += int(chunk.rows_read())
        s.result_bytes += int(chunk.bytes_read())

    def __iter__(self) -> Iterator[bytes]:
        try:
            first, self._first = self._first, None
            if first:
                yield first
            while not self._closed:
                try:
                    chunk = self._next_chunk()
                except BaseException as exc:
                    raise engine_error(exc) from None
                if chunk is None:
                    break
                if chunk:
                    yield chunk
        finally:
            self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        stream = getattr(self, "_stream", None)
        if stream is not None and not self._exhausted:
            try:
                stream.cancel()
            except Exception:
                pass
        if stream is not None:
            try:
                stream.close()
            except Exception:
                pass
        self._pool.release(self._conn, broken=not self._exhausted)


class ChdbInsert:
    def __init__(self, pool: _Pool, sql: str, fmt: str):
        self._pool = pool
        self._conn = pool.acquire()
        self._done = False
        try:
            self._insert = self._conn.send_insert(sql, fmt)
        except BaseException as exc:
            self._release()
            raise engine_error(exc) from None

    def _release(self, broken: bool = True) -> None:
        if not self._done:
            self._done = True
            self._pool.release(self._conn, broken=broken)

    def write(self, chunk: bytes) -> None:
        try:
            self._insert.append(chunk)
        except BaseException as exc:
            self.cancel()
            raise engine_error(exc) from None

    def finish(self) -> Statistics:
        try:
            res = self._insert.finish()
        except BaseException as exc:
            self._release()
            raise engine_error(exc) from None
        self._release(broken=False)
        stats = Statistics()
        for attr, key in (("rows_written", "rows_written"), ("bytes_written", "bytes_written")):
            value = res.get(key) if isinstance(res, dict) else getattr(res, key, None)
            if callable(value):
                value = value()
            setattr(stats, attr, int(value or 0))
        return stats

    def cancel(self) -> None:
        try:
            self._insert.cancel()
        except Exception:
            pass
        self._release()


class ChdbEngine:
    """chDB on `path`. `admin` connections run trusted statements; `query` pools run user reads."""

    name = "chdb"

    def __init__(
        self,
        path: str | os.PathLike,
        limits: QueryLimits | None = None,
        pool_size: int = 0,
        admin_pool_size: int = 2,
        max_server_memory_ratio: float = 0.7,
    ):
        import chdb

        self._chdb = chdb
        self.path = str(Path(path))
        Path(self.path).mkdir(parents=True, exist_ok=True)
        self.limits = limits or QueryLimits()
        self._pool_size = pool_size or max(2, (os.cpu_count() or 1) * 2)
        for part in repair_deduplication_logs(self.path):
            log.warning("dropped the deduplication entry of a part lost in a crash: %s", part)
        memory = _server_memory_bytes(max_server_memory_ratio)
        first = f"{self.path}?max_server_memory_usage={memory}&mark_cache_size=268435456"
        try:
            self._bootstrap = chdb.connect(first)
        except BaseException as exc:
            err = engine_error(exc)
            if err.code == 36:
                raise EngineError(
                    f"the engine data directory {self.path} is in use by another process", code=36
                ) from None
            raise err from None
        # Untrusted reads start in an empty database: an unqualified name can never reach a table
        # (and chDB's `default` database also exposes the filesystem).
        self._bootstrap.query(f"CREATE DATABASE IF NOT EXISTS {SANDBOX_DATABASE} ENGINE = Atomic")
        self._admin = _Pool(lambda: chdb.connect(self.path), admin_pool_size)
        self._query_pools: dict[QueryLimits, _Pool] = {}
        self._pools_lock = threading.Lock()
        self._query_pool(self.limits)

    # -- connections --------------------------------------------------------------------------

    def _locked_down(self, limits: QueryLimits):
        conn = self._chdb.connect(
            f"{self.path}?allow_python_table_function=0&allow_introspection_functions=0"
        )
        for key, value in {**_READ_SETTINGS, **limits.as_settings()}.items():
            conn.query(f"SET {key} = {_literal(value)}")
        conn.query(f"USE {SANDBOX_DATABASE}")
        conn.query("SET readonly = 1")  # last: from here on no setting can change
        return conn

    def _query_pool(self, limits: QueryLimits) -> _Pool:
        pool = self._query_pools.get(limits)
        if pool is None:
            with self._pools_lock:
                pool = self._query_pools.get(limits)
                if pool is None:
                    pool = _Pool(lambda: self._locked_down(limits), self._pool_size)
                    self._query_pools[limits] = pool
        return pool

    # -- trusted --------------------------------------------------------------------------------

    def execute(self, sql: str, fmt: str = "TabSeparated", settings: dict | None = None) -> Result:
        if settings:
            sql = sql + " SETTINGS " + _settings_clause(settings)
        with self._admin.connection() as conn:
            try:
                res = conn.query(sql, fmt)
            except BaseException as exc:
                raise engine_error(exc) from None
            return Result(res.bytes(), _statistics(res))

    def insert(self, sql: str, fmt: str, settings: dict | None = None) -> ChdbInsert:
        if settings:
            sql = sql + " SETTINGS " + _settings_clause(settings)
        return ChdbInsert(self._admin, sql, fmt)

    # -- untrusted ----------------------------------------------------------------------------

    def query(self, sql: str, fmt: str = "JSON", limits: QueryLimits | None = None) -> Result:
        pool = self._query_pool(limits or self.limits)
        with pool.connection() as conn:
            try:
                res = conn.query(sql, fmt)
            except BaseException as exc:
                raise engine_error(exc) from None
            limit = (limits or self.limits).max_output_bytes
            if limit and res.size() > limit:
                raise output_too_large(limit)
            return Result(res.bytes(), _statistics(res))

    def stream(self, sql: str, fmt: str, limits: QueryLimits | None = None) -> ChdbStream:
        pool = self._query_pool(limits or self.limits)
        conn = pool.acquire()
        return ChdbStream(pool, conn, sql, fmt, (limits or self.limits).max_output_bytes)

    def classify(self, sql: str) -> Classification:
        # A parse only: done on a query connection so that it never waits behind ingestion.
        with self._query_pool(self.limits).connection() as conn:
            try:
                info = conn._conn.classify_query(sql, SANDBOX_DATABASE)
            except BaseException as exc:
                raise engine_error(exc) from None
        kind = str(info["query_class"]).rsplit(".", 1)[-1].split(":")[0]
        return Classification(
            statement_count=int(info["statement_count"]),
            read_only=kind == "READ_ONLY",
            kind=kind,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    def pool_size(self) -> int:
        return self._pool_size

    def pool_in_use(self) -> int:
        return sum(p.in_use for p in self._query_pools.values())

    def close(self) -> None:
        for pool in self._query_pools.values():
            pool.close()
        self._query_pools.clear()
        self._admin.close()
        try:
            self._bootstrap.close()
        except Exception:
            pass


def _server_memory_bytes(ratio: float) -> int:
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 * 1024**3
    return int(total * ratio)
