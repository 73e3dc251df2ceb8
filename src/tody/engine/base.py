"""The `Engine` protocol: the only surface the rest of tody sees of ClickHouse.

Two implementations are planned: `chdb` (embedded, the default) and `clickhouse` (a server or cluster
over HTTP). Nothing above this package imports chdb; services talk to an `Engine`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

OUTPUT_BYTES_PER_RESULT_BYTE = 4


@dataclass(frozen=True)
class QueryLimits:
    """Per-query guards applied on locked-down connections before `readonly=1`."""

    max_execution_time: float = 10.0
    max_memory_usage: int = 4_000_000_000
    max_result_bytes: int = 100_000_000
    max_result_rows: int = 0
    max_rows_to_read: int = 10_000_000_000
    max_threads: int = 0

    @property
    def max_output_bytes(self) -> int:
        """Bytes the formatted answer may take (0 = no limit). ClickHouse counts a constant column once
        per block against max_result_bytes (ClickHouse#82726), so `SELECT repeat('x', 1000000) FROM
        numbers(1000)` passes a 100 MB limit with a 1 GB answer: the answer itself is bounded too,
        with room for text formats to spell values out."""
        return self.max_result_bytes * OUTPUT_BYTES_PER_RESULT_BYTE

    def as_settings(self) -> dict[str, object]:
        settings: dict[str, object] = {
            "max_execution_time": self.max_execution_time,
            "max_memory_usage": self.max_memory_usage,
            "max_result_bytes": self.max_result_bytes,
            "max_result_rows": self.max_result_rows,
            "result_overflow_mode": "throw",
            "max_rows_to_read": self.max_rows_to_read,
            "read_overflow_mode": "throw",
            "timeout_overflow_mode": "throw",
        }
        if self.max_threads:
            settings["max_threads"] = self.max_threads
        return settings


@dataclass
class Statistics:
    elapsed: float = 0.0  # seconds
    rows_read: int = 0  # rows scanned in storage
    bytes_read: int = 0  # bytes scanned in storage
    result_rows: int = 0
    result_bytes: int = 0
    rows_written: int = 0
    bytes_written: int = 0

    def as_dict(self) -> dict[str, float | int]:
        return {"elapsed": self.elapsed, "rows_read": self.rows_read, "bytes_read": self.bytes_read}


@dataclass
class Result:
    data: bytes
    statistics: Statistics = field(default_factory=Statistics)


@dataclass(frozen=True)
class Classification:
    """What the engine's own parser says about a SQL string, without running it."""

    statement_count: int
    read_only: bool
    kind: str  # READ_ONLY, MUTATING, MUTATING_GLOBAL, CONTROL, UNKNOWN


class EngineError(Exception):
    """An error reported by the engine. `code` is ClickHouse's numeric error code when known."""

    def __init__(self, message: str, code: int | None = None, name: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.name = name

    @property
    def is_user_error(self) -> bool:
        """True when the query, not the server, is at fault (bad SQL, limits, types)."""
        return self.code is not None and self.code not in SERVER_FAULT_CODES

    @property
    def is_timeout(self) -> bool:
        return self.code in TIMEOUT_CODES

    @property
    def is_limit(self) -> bool:
        return self.code in LIMIT_CODES


# ClickHouse error codes that mean the server is unwell rather than the query wrong.
SERVER_FAULT_CODES = frozenset({1, 32, 74, 76, 84, 210, 243, 1000, 1001, 1002})
# TIMEOUT_EXCEEDED, QUERY_WAS_CANCELLED
TIMEOUT_CODES = frozenset({159, 394})
# TOO_MANY_ROWS, TOO_MANY_BYTES, TOO_MANY_ROWS_OR_BYTES, MEMORY_LIMIT_EXCEEDED (query-level)
LIMIT_CODES = frozenset({158, 307, 396, 241})


def output_too_large(limit: int) -> EngineError:
    return EngineError(
        f"Limit for result exceeded: the answer is over {limit} bytes ({OUTPUT_BYTES_PER_RESULT_BYTE} x max_result_bytes)",
        code=396,
        name="TOO_MANY_ROWS_OR_BYTES",
    )


class ResultStream(Protocol):
    """Chunks of one query's output, in the requested format. Close it to free the connection."""

    statistics: Statistics

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class InsertStream(Protocol):
    def write(self, chunk: bytes) -> None: ...

    def finish(self) -> Statistics: ...

    def cancel(self) -> None: ...


class Engine(Protocol):
    """ClickHouse, embedded or remote. All methods are blocking; call them from worker threads."""

    name: str

    # -- trusted statements (DDL, ingestion, catalog maintenance); never user SQL --
    def execute(self, sql: str, fmt: str = "TabSeparated", settings: dict | None = None) -> Result: ...

    def insert(self, sql: str, fmt: str, settings: dict | None = None) -> InsertStream: ...

    # -- untrusted reads: locked-down connections (limits, then readonly=1) --
    def query(self, sql: str, fmt: str = "JSON", limits: QueryLimits | None = None) -> Result: ...

    def stream(self, sql: str, fmt: str, limits: QueryLimits | None = None) -> ResultStream: ...

    def classify(self, sql: str) -> Classification: ...

    # -- lifecycle and observability --
    def pool_in_use(self) -> int: ...

    def pool_size(self) -> int: ...

    def close(self) -> None: ...


def quote_identifier(name: str) -> str:
    """Backtick-quote an identifier for ClickHouse."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(value: str) -> str:
    """Single-quoted ClickHouse string literal with every special character escaped."""
    out = value.replace("\\", "\\\\").replace("'", "\\'")
    out = out.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t").replace("\0", "\\0")
    return "'" + out + "'"
