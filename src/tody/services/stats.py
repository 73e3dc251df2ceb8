"""Service data sources (`tinybird.*`) and the writer that fills them off the request path.

All workspaces share one physical table per service data source, in the `tody_service` database,
with a `workspace_id` column; the compiler exposes each as `tinybird.<name>` filtered to the
caller's workspace. Rows are queued in memory and written in batches by a background thread, so a
request never waits for an INSERT (each chDB INSERT costs ~5 ms and makes a part).
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import UTC, datetime
from typing import Any

import orjson

from tody.catalog.store import Catalog, JobRecord
from tody.engine.base import Engine, EngineError, quote_string
from tody.services import consumption
from tody.services.compiler import SERVICE_DATABASE, Compiler, ServiceSource

SERVICE_TABLES = ("pipe_stats_rt", "pipe_stats", "datasources_ops_log", "jobs_log")

log = logging.getLogger("tody.stats")

PIPE_STATS_RT_COLUMNS = (
    ("start_datetime", "DateTime"),
    ("pipe_id", "String"),
    ("pipe_name", "String"),
    ("duration", "Float32"),
    ("read_bytes", "UInt64"),
    ("read_rows", "UInt64"),
    ("result_rows", "UInt64"),
    ("url", "Nullable(String)"),
    ("error", "UInt8"),
    ("request_id", "String"),
    ("token", "String"),
    ("token_name", "String"),
    ("status_code", "Int32"),
    ("method", "String"),
    ("parameters", "Map(String, String)"),
    ("user_agent", "Nullable(String)"),
    ("resource_tags", "Array(String)"),
    ("cpu_time", "Float32"),
)
PIPE_STATS_COLUMNS = (
    ("date", "Date"),
    ("pipe_id", "String"),
    ("pipe_name", "String"),
    ("view_count", "SimpleAggregateFunction(sum, UInt64)"),
    ("error_count", "SimpleAggregateFunction(sum, UInt64)"),
    ("avg_duration_state", "AggregateFunction(avg, Float32)"),
    ("quantile_timing_state", "AggregateFunction(quantilesTiming(0.9, 0.95, 0.99), Float64)"),
    ("read_bytes_sum", "SimpleAggregateFunction(sum, UInt64)"),
    ("read_rows_sum", "SimpleAggregateFunction(sum, UInt64)"),
    ("resource_tags", "SimpleAggregateFunction(groupUniqArrayArray, Array(String))"),
)
OPS_LOG_COLUMNS = (
    ("timestamp", "DateTime64(3)"),
    ("event_type", "LowCardinality(String)"),
    ("datasource_id", "String"),
    ("datasource_name", "String"),
    ("result", "LowCardinality(String)"),
    ("elapsed_time", "Float32"),
    ("error", "Nullable(String)"),
    ("import_id", "Nullable(String)"),
    ("job_id", "Nullable(String)"),
    ("request_id", "String"),
    ("rows", "Nullable(UInt64)"),
    ("rows_quarantine", "Nullable(UInt64)"),
    ("blocks_ids", "Array(String)"),
    ("options", "Map(String, String)"),
    ("read_rows", "UInt64"),
    ("read_bytes", "UInt64"),
    ("written_rows", "UInt64"),
    ("written_bytes", "UInt64"),
    ("written_rows_quarantine", "UInt64"),
    ("written_bytes_quarantine", "UInt64"),
    ("pipe_id", "String"),
    ("pipe_name", "String"),
    ("operation_id", "String"),
    ("cpu_time", "Float32"),
)
JOBS_LOG_COLUMNS = (
    ("job_id", "String"),
    ("job_type", "LowCardinality(String)"),
    ("status", "LowCardinality(String)"),
    ("created_at", "DateTime"),
    ("updated_at", "DateTime"),
    ("started_at", "Nullable(DateTime)"),
    ("pipe_id", "String"),
    ("pipe_name", "String"),
    ("datasource_id", "String"),
    ("datasource_name", "String"),
    ("error", "Nullable(String)"),
    ("result", "String"),  # JSON: statistics, rows, … as the Jobs API shows them
    ("job_metadata", "String"),  # JSON: what was asked (mode, url, condition, parameters …)
)
SERVICE_SOURCES = {
    "pipe_stats_rt": PIPE_STATS_RT_COLUMNS,
    "pipe_stats": PIPE_STATS_COLUMNS,
    "datasources_ops_log": OPS_LOG_COLUMNS,
    "jobs_log": JOBS_LOG_COLUMNS,
}


def _columns(cols) -> str:
    return ", ".join(f"`{name}` {type_}" for name, type_ in cols)


DDL = [
    f"CREATE DATABASE IF NOT EXISTS {SERVICE_DATABASE} ENGINE = Atomic",
    f"CREATE TABLE IF NOT EXISTS {SERVICE_DATABASE}.pipe_stats_rt (`workspace_id` String, "
    f"{_columns(PIPE_STATS_RT_COLUMNS)}) ENGINE = MergeTree PARTITION BY toYYYYMMDD(start_datetime) "
    "ORDER BY (workspace_id, pipe_name, start_datetime) TTL start_datetime + toIntervalDay(7)",
    f"CREATE TABLE IF NOT EXISTS {SERVICE_DATABASE}.pipe_stats (`workspace_id` String, "
    f"{_columns(PIPE_STATS_COLUMNS)}) ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(date) "
    "ORDER BY (workspace_id, date, pipe_id, pipe_name)",
    f"CREATE TABLE IF NOT EXISTS {SERVICE_DATABASE}.datasources_ops_log (`workspace_id` String, "
    f"{_columns(OPS_LOG_COLUMNS)}) ENGINE = MergeTree PARTITION BY toYYYYMM(timestamp) "
    "ORDER BY (workspace_id, timestamp) TTL toDateTime(timestamp) + toIntervalDay(180)",
    f"CREATE TABLE IF NOT EXISTS {SERVICE_DATABASE}.jobs_log (`workspace_id` String, "
    f"{_columns(JOBS_LOG_COLUMNS)}) ENGINE = MergeTree PARTITION BY toYYYYMM(created_at) "
    "ORDER BY (workspace_id, created_at) TTL created_at + toIntervalDay(180)",
    f"CREATE MATERIALIZED VIEW IF NOT EXISTS {SERVICE_DATABASE}.pipe_stats_mv TO {SERVICE_DATABASE}.pipe_stats AS "
    "SELECT workspace_id, toDate(start_datetime) AS date, pipe_id, pipe_name, count() AS view_count, "
    "countIf(error != 0) AS error_count, avgState(duration) AS avg_duration_state, "
    "quantilesTimingState(0.9, 0.95, 0.99)(toFloat64(duration * 1000)) AS quantile_timing_state, "
    "sum(read_bytes) AS read_bytes_sum, sum(read_rows) AS read_rows_sum, "
    "groupUniqArrayArray(resource_tags) AS resource_tags "
    f"FROM {SERVICE_DATABASE}.pipe_stats_rt GROUP BY workspace_id, date, pipe_id, pipe_name",
]


def install(engine: Engine, compiler: Compiler) -> None:
    """Create the service tables (idempotent) and make them readable as tinybird.<name> (and, for
    organization admins, as organization.<name> across the organization's workspaces)."""
    for statement in DDL:
        engine.execute(statement)
    for name, cols in SERVICE_SOURCES.items():
        compiler.service_sources[name] = ServiceSource(name, tuple(c for c, _ in cols))
    consumption.register(compiler, {name: [c for c, _ in cols] for name, cols in SERVICE_SOURCES.items()})


class StatsWriter:
    """Batches rows for service tables and inserts them from one background thread."""

    def __init__(self, engine: Engine, *, interval: float = 0.5, max_batch: int = 5000):
        self.engine = engine
        self.interval = interval
        self.max_batch = max_batch
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="tody-stats", daemon=True)
        self._thread.start()

    def pipe_request(self, **row: Any) -> None:
        row.setdefault("start_datetime", datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"))
        self._queue.put(("pipe_stats_rt", row))

    def datasource_operation(self, **row: Any) -> None:
        """One row of tinybird.datasources_ops_log (create, append, replace, truncate, delete …)."""
        row.setdefault("timestamp", datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3])
        row.setdefault("result", "error" if row.get("error") else "ok")
        for key in (
            "read_rows",
            "read_bytes",
            "written_rows",
            "written_bytes",
            "written_rows_quarantine",
            "written_bytes_quarantine",
        ):
            row.setdefault(key, 0)
        row.setdefault("request_id", "")
        row.setdefault("options", {})
        self._queue.put(("datasources_ops_log", row))

    def job_finished(self, rec: JobRecord, pipe_name: str, datasource_name: str) -> None:
        """One row of tinybird.jobs_log for a job that ended (done, error or cancelled)."""
        seconds = "%Y-%m-%d %H:%M:%S"
        self._queue.put(
            (
                "jobs_log",
                {
                    "workspace_id": rec.workspace_id,
                    "job_id": rec.id,
                    "job_type": rec.kind,
                    "status": rec.status,
                    "created_at": rec.created_at.strftime(seconds),
                    "updated_at": rec.updated_at.strftime(seconds),
                    "started_at": rec.started_at.strftime(seconds) if rec.started_at else None,
                    "pipe_id": rec.pipe_id or "",
                    "pipe_name": pipe_name,
                    "datasource_id": rec.datasource_id or "",
                    "datasource_name": datasource_name,
                    "error": rec.error,
                    "result": orjson.dumps(rec.result).decode(),
                    "job_metadata": orjson.dumps(rec.params).decode(),
                },
            )
        )

    def _run(self) -> None:
        stop = False
        while not stop:
            batch: dict[str, list[dict[str, Any]]] = {}
            try:
                item = self._queue.get(timeout=self.interval)
            except queue.Empty:
                continue
            count = 0
            while True:
                if item is None:
                    stop = True
                    break
                batch.setdefault(item[0], []).append(item[1])
                count += 1
                if count >= self.max_batch:
                    break
                try:
                    item = self._queue.get(timeout=0.05)
                except queue.Empty:
                    break
            self._flush(batch)

    def _flush(self, batch: dict[str, list[dict[str, Any]]]) -> None:
        for table, rows in batch.items():
            payload = b"".join(orjson.dumps(r) + b"\n" for r in rows)
            try:
                insert = self.engine.insert(f"INSERT INTO {SERVICE_DATABASE}.{table}", "JSONEachRow")
                insert.write(payload)
                insert.finish()
            except EngineError as exc:  # stats must never take a request down; say so in the log
                log.error("could not write %d rows to %s: %s", len(rows), table, exc.message)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def forget_workspace(self, workspace_id: str) -> None:
        """A deleted workspace's rows leave every service table (mutations, applied in the background)."""
        for table in SERVICE_TABLES:
            self.engine.execute(
                f"ALTER TABLE {SERVICE_DATABASE}.{table} DELETE WHERE workspace_id = {quote_string(workspace_id)}"
            )


def log_job(writer: StatsWriter, catalog: Catalog, rec: JobRecord) -> None:
    """Write a finished job to tinybird.jobs_log, naming its pipe and data source as they are now
    (or as the job recorded them, when they are gone)."""
    pipe = catalog.pipe(rec.workspace_id, rec.pipe_id) if rec.pipe_id else None
    datasource = catalog.datasource(rec.workspace_id, rec.datasource_id) if rec.datasource_id else None
    asked_pipe = rec.params.get("pipe")
    asked_ds = rec.params.get("datasource")
    pipe_name = pipe.name if pipe else rec.params.get("pipe_name") or _name(asked_pipe)
    datasource_name = datasource.name if datasource else _name(asked_ds)
    writer.job_finished(rec, pipe_name, datasource_name)


def _name(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name") or "")
    return value if isinstance(value, str) else ""
