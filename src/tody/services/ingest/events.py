"""The Events API's write path: request → write-ahead log → one INSERT per data source per flush.

A request's NDJSON is appended to the write-ahead log under the key `<workspace id>/<data source id>`
and acknowledged (202) once the log is fsync'd; `wait=true` also waits for its flush (200). The
batcher (batcher.py) gathers a key's requests and flushes them together with a dedup token, so a replay
after a crash writes nothing twice.

A flush writes the batch to a file and runs one `INSERT … SELECT … FROM file()` into the data source's
*event pipeline*, kept in the `tody_events` database for as long as the data source's schema stays the
same (the bulk importer builds the same pipeline per import and drops it after):

    stage (Null) ── good rows ──▶ the data source
                 ── bad rows ───▶ <name>_quarantine (original values, reasons, c__import_id)
                 ── row numbers of rows not stored ──▶ rejects (Memory, emptied before each flush)

The views must outlive the flush: the engine derives the dedup token of each view's insert from the
view itself, so a replay only deduplicates through the very same views. The row numbers of the rows
not stored (empty lines and quarantined rows) map back to the requests of the batch by their line
counts, which gives each `wait=true` request its own `successful_rows` / `quarantined_rows`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import uuid
import zlib
from bisect import bisect_left
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import orjson

from tody.catalog.store import Catalog, DatasourceRecord, WorkspaceRecord
from tody.engine.base import Engine, EngineError, quote_identifier, quote_string
from tody.engine.ddl import Column
from tody.services.datasources import DatasourceService
from tody.services.errors import BadRequest, Conflict, NotFound, TooLarge
from tody.services.ingest.batcher import Batcher, ndjson_chunks
from tody.services.ingest.bulk import good_sql, ndjson_plan, row_reason_sql, stage_sql
from tody.services.ingest.formats import BOM, ImportFormatError, Sniff, file_source, infer_schema, schema_text
from tody.services.ingest.quarantine import ensure_quarantine_table, input_columns, quarantine_select
from tody.services.ingest.wal import WalRecord, WriteAheadLog
from tody.services.materialized import failed_view
from tody.services.tokens import DATASOURCES_CREATE, Principal

log = logging.getLogger(__name__)

EVENTS_DATABASE = "tody_events"
DEDUP_WINDOW = 10_000  # blocks a table remembers for deduplicating replays
RESULTS_KEPT = 100_000  # per-request outcomes kept for `wait=true` callers
_NO_BOM = Sniff(gzip=False, bom=False, head=b"", size=0)
_ROW = re.compile(rb"(?m)^[ \t\r]*[^ \t\r\n]")  # a line with something on it (empty lines are not rows)
_BLANK = re.compile(rb"\n[ \t\r]*\n")  # a blank line after the first (a fast scan: it starts with a literal)
_SETTINGS = {
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "short_circuit_function_evaluation": "enable",  # casts run in if() branches of passing rows only
}


@dataclass(frozen=True)
class Accepted:
    """A request in the write-ahead log."""

    lsn: int
    rows: int  # lines with something on them


@dataclass(frozen=True)
class Outcome:
    successful_rows: int
    quarantined_rows: int
    warning: str | None = None  # a materialized view of the data source failed on these rows


@dataclass(frozen=True)
class _Pipeline:
    stage: str
    rejects: str
    plan: object


def _batch_source(path: Path) -> str:
    return file_source(path, "LineAsString", "line String", False)


def _carry(batch_id_sql: str) -> list[tuple[str, str]]:
    # The line number in the batch file (exact under parallel parsing; empty lines count) maps rows
    # back to requests; the batch id goes to the quarantine's c__import_id.
    return [("__row", "_row_number"), ("__import", batch_id_sql)]


def count_rows(payload: bytes) -> int:
    """Lines with something on them, for a payload ending with a newline. Blank lines are rare: look for
    one first (fast), and count line by line only when there is one (7 ms per 10k lines)."""
    if payload[:1] in (b" ", b"\t", b"\r", b"\n") or _BLANK.search(payload):
        return len(_ROW.findall(payload))
    return payload.count(b"\n")


def decode_body(raw: bytes, *, content_encoding: str, fmt: str, max_bytes: int) -> bytes:
    """The request body as NDJSON ending with a newline: gunzipped, BOM removed, a JSON array split."""
    if "gzip" in content_encoding.lower() or raw[:2] == b"\x1f\x8b":
        try:
            # Bounded: a small gzip body may expand enormously.
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            body = inflater.decompress(raw, max_bytes + 1)
            if len(body) > max_bytes or inflater.unconsumed_tail:
                raise TooLarge(f"The decompressed body is over {max_bytes} bytes; send smaller batches")
            if not inflater.eof:
                raise BadRequest("The gzip body is truncated")
        except zlib.error as exc:
            raise BadRequest(f"The body is not valid gzip: {exc}") from None
    else:
        body = raw
    body = body.removeprefix(BOM)
    if fmt == "json":
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(
                f"format=json needs one JSON document (an object or an array of them): {exc}"
            ) from None
        items = doc if isinstance(doc, list) else [doc]
        return b"\n".join(map(orjson.dumps, items)) + b"\n" if items else b""
    if fmt != "ndjson":
        raise BadRequest(f"Unsupported format '{fmt}': use ndjson (one JSON object per line) or json")
    if body and not body.endswith(b"\n"):
        body += b"\n"
    return body


class EventsService:
    def __init__(
        self,
        catalog: Catalog,
        engine: Engine,
        datasources: DatasourceService,
        data_dir: Path,
        *,
        flush_interval: float = 0.5,
        flush_bytes: int = 16 << 20,
        backlog_bytes: int = 1 << 30,
        workers: int = 2,
    ):
        self.catalog = catalog
        self.engine = engine
        self.datasources = datasources
        self.work_dir = data_dir / "jobs" / "events"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        for leftover in self.work_dir.iterdir():  # batch files of a flush a crash interrupted
            leftover.unlink(missing_ok=True)
        self._placeholder = self.work_dir / "empty.ndjson"
        self._placeholder.touch()
        engine.execute(f"CREATE DATABASE IF NOT EXISTS {EVENTS_DATABASE} ENGINE = Atomic")
        self._pipelines: dict[str, tuple[str, _Pipeline]] = {}  # data source id -> (tag, pipeline)
        self._pipeline_lock = threading.Lock()
        self._create_lock = threading.Lock()
        self._results: OrderedDict[int, Outcome] = OrderedDict()
        self._results_lock = threading.Lock()
        datasources.drop_hooks.append(lambda rec: self._drop_pipelines(rec.id, keep=None))
        self.wal = WriteAheadLog(data_dir / "wal")
        self.batcher = Batcher(
            self.wal,
            self._flush,
            max_delay=flush_interval,
            max_bytes=flush_bytes,
            max_records=100_000,
            workers=workers,
            max_pending_bytes=backlog_bytes,
        )

    def recover(self) -> int:
        """Write what the log holds that may not be in the tables yet (call once, before serving)."""
        return self.batcher.recover()

    def close(self) -> None:
        try:
            self.batcher.close(flush=True, timeout=30.0)
        finally:
            self.wal.close()

    # -- accepting ------------------------------------------------------------------------------

    def existing(self, principal: Principal, name: str) -> DatasourceRecord | None:
        """The data source a request appends to, if it exists (scopes checked); catalog memory only."""
        if not name:
            raise BadRequest("Missing 'name': the Data Source to append the events to")
        rec = self.catalog.datasource(principal.workspace.id, name)
        if rec is not None:
            principal.require_append(rec.name)
            return rec
        if not principal.has(DATASOURCES_CREATE):
            raise NotFound(
                f"Data Source '{name}' not found; create it first, or use a token with DATASOURCES:CREATE "
                "to create it from the events"
            )
        return None

    def create(self, principal: Principal, name: str, payload: bytes) -> DatasourceRecord:
        """Create a missing data source with the schema the engine infers from the events."""
        if not count_rows(payload):
            raise BadRequest(f"Data Source '{name}' does not exist and there are no events to infer it from")
        with self._create_lock:  # concurrent first requests: one creates, the others append
            rec = self.catalog.datasource(principal.workspace.id, name)
            if rec is not None:
                return rec
            sample = self.work_dir / f"infer_{uuid.uuid4().hex}.ndjson"
            try:
                sample.write_bytes(payload[: 1 << 20].rsplit(b"\n", 1)[0] + b"\n")
                columns = infer_schema(self.engine, sample, "ndjson")
            except ImportFormatError as exc:
                raise BadRequest(f"Could not infer a schema for '{name}' from the events: {exc}") from None
            finally:
                sample.unlink(missing_ok=True)
            try:
                return self.datasources.create(
                    principal, name, {"schema": schema_text(columns), "format": "ndjson"}
                )
            except Conflict:
                found = self.catalog.datasource(principal.workspace.id, name)
                if found is None:
                    raise
                return found

    async def accept(self, rec: DatasourceRecord, payload: bytes) -> Accepted:
        """Append to the log; durable when this returns."""
        lsn = await self.batcher.submit_async(f"{rec.workspace_id}/{rec.id}", payload)
        return Accepted(lsn, count_rows(payload))

    def wait(self, accepted: Accepted, timeout: float) -> Outcome | None:
        """Wait for the request's flush; its outcome, or None when it is still pending after `timeout`."""
        try:
            self.batcher.wait_flushed(accepted.lsn, timeout)
        except TimeoutError:
            return None
        except Exception as exc:  # the flush failed; the batch stays queued and is retried
            log.warning("events %d are logged but not written yet: %s", accepted.lsn, exc)
            return None
        with self._results_lock:
            return self._results.get(accepted.lsn, Outcome(accepted.rows, 0))

    # -- flushing -------------------------------------------------------------------------------

    def _flush(self, key: str, records: list[WalRecord], token: str) -> None:
        started = time.perf_counter()
        workspace_id, _, datasource_id = key.partition("/")
        workspace = self.catalog.workspace(workspace_id)
        rec = self.catalog.datasource(workspace_id, datasource_id) if workspace else None
        if workspace is None or rec is None:
            log.warning(
                "dropping %d event request(s) for deleted data source %s", len(records), datasource_id
            )
            self._drop_pipelines(datasource_id, keep=None)
            return
        pipeline = self._pipeline(workspace, rec)
        batch_id = token.rsplit(":", 1)[-1] + "-" + token.split(":", 1)[0][:8]
        path = self.work_dir / f"{uuid.uuid4().hex}.ndjson"
        nbytes = 0
        with open(path, "wb") as out:
            for chunk in ndjson_chunks(records):
                out.write(chunk)
                nbytes += len(chunk)
        try:
            with self.datasources.hold.writing(workspace_id):
                select = stage_sql(pipeline.plan, _batch_source(path), _carry(quote_string(batch_id)))
                view_error = self._insert(pipeline, select, token, workspace.database)
                res = self.engine.execute(f"SELECT __row, __empty FROM {pipeline.rejects}", "TabSeparated")
        finally:
            path.unlink(missing_ok=True)
        rejected = sorted(
            (int(r), e == "1") for r, e in (line.split("\t") for line in res.data.decode().splitlines())
        )
        warning = None
        if view_error:
            warning = (
                f"The rows are stored in '{rec.name}', but a materialized view reading it failed, so its "
                f"target misses them (populate it again once the view is fixed): {view_error}"
            )
        good, bad = self._record_outcomes(records, rejected, warning)
        if warning:
            self.datasources.log_operation(
                workspace, rec, "append-hfi", started, import_id=batch_id, error=warning, rows=0
            )
        self.datasources.log_operation(
            workspace,
            rec,
            "append-hfi",
            started,
            import_id=batch_id,
            rows=good,
            rows_quarantine=bad,
            read_rows=good + bad,
            read_bytes=nbytes,
            written_rows=good,
            written_rows_quarantine=bad,
            error=f"{bad} row(s) went to {rec.name}_quarantine" if bad and not good else None,
        )

    def _insert(self, pipeline: _Pipeline, select: str, token: str, database: str) -> str | None:
        """One INSERT of the batch. When a materialized view of the data source fails on it (a user's
        query error), the rows are kept anyway: the same INSERT again with view errors ignored (the dedup
        token keeps what the first attempt stored from being stored twice); returns that view's error."""
        insert = f"INSERT INTO {pipeline.stage} {select}"
        settings = {**_SETTINGS, "insert_deduplication_token": token}
        self.engine.execute(f"TRUNCATE TABLE {pipeline.rejects}")
        try:
            self.engine.execute(insert, settings=settings)
            return None
        except EngineError as exc:
            error = failed_view(exc.message, database) if exc.is_user_error else None
            if error is None:
                raise
            log.warning(
                "a materialized view failed on a batch of events; storing it without the view: %s", exc
            )
        self.engine.execute(f"TRUNCATE TABLE {pipeline.rejects}")
        self.engine.execute(insert, settings={**settings, "materialized_views_ignore_errors": 1})
        return error

    def _record_outcomes(
        self, records: list[WalRecord], rejected: list[tuple[int, bool]], warning: str | None = None
    ) -> tuple[int, int]:
        """Each request's rows stored and quarantined, from the row numbers of the rows not stored."""
        rows = [r for r, _ in rejected]
        total_good = total_bad = 0
        first = 0
        with self._results_lock:
            for record in records:
                lines = record.payload.count(b"\n") if record.payload else 0
                lo, hi = bisect_left(rows, first), bisect_left(rows, first + lines)
                empty = sum(1 for _, is_empty in rejected[lo:hi] if is_empty)
                bad = hi - lo - empty
                good = lines - empty - bad
                self._results[record.lsn] = Outcome(good, bad, warning)
                total_good += good
                total_bad += bad
                first += lines
            while len(self._results) > RESULTS_KEPT:
                self._results.popitem(last=False)
        return total_good, total_bad

    # -- pipelines ------------------------------------------------------------------------------

    def _pipeline(self, workspace: WorkspaceRecord, rec: DatasourceRecord) -> _Pipeline:
        columns = [Column(**c) for c in rec.columns]
        plan = ndjson_plan(input_columns(columns), _NO_BOM)
        shape = stage_sql(plan, _batch_source(self._placeholder), _carry("''"))
        stage_marker = "\x00stage\x00"
        good = good_sql(plan, stage_marker)
        bad = quarantine_select(
            "ndjson", plan.checks, row_reason_sql(plan), stage_marker, "", import_id_sql="__import"
        )
        db, table = quote_identifier(workspace.database), quote_identifier(rec.id)
        digest = hashlib.sha1(
            "\x00".join((shape, good, bad, workspace.database, rec.id)).encode()
        ).hexdigest()
        tag = digest[:12]
        with self._pipeline_lock:
            cached = self._pipelines.get(rec.id)
            if cached is not None and cached[0] == tag:
                return cached[1]
            prefix = f"{rec.id}_{tag}"
            name = {
                k: f"{EVENTS_DATABASE}.{quote_identifier(prefix + '_' + k)}"
                for k in ("s", "n", "g", "b", "x")
            }
            self._drop_pipelines(rec.id, keep=prefix)
            ensure_quarantine_table(self.engine, workspace.database, rec.id, columns)
            quarantine = quote_identifier(rec.id + "_quarantine")
            window = f"MODIFY SETTING non_replicated_deduplication_window = {DEDUP_WINDOW}"
            if str(rec.engine.get("engine", "MergeTree")).endswith("MergeTree"):
                self.engine.execute(f"ALTER TABLE {db}.{table} {window}")
            self.engine.execute(f"ALTER TABLE {db}.{quarantine} {window}")
            stage = name["s"]
            self.engine.execute(
                f"CREATE TABLE IF NOT EXISTS {stage} ENGINE = Null EMPTY AS {shape}",
                settings={"short_circuit_function_evaluation": "enable"},
            )
            self.engine.execute(
                f"CREATE TABLE IF NOT EXISTS {name['n']} (__row UInt64, __empty UInt8) ENGINE = Memory"
            )
            self.engine.execute(
                f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name['x']} TO {name['n']} AS "
                f"SELECT __row, __empty FROM {stage} WHERE NOT __ok"
            )
            self.engine.execute(
                f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name['g']} TO {db}.{table} AS "
                f"{good.replace(stage_marker, stage)}"
            )
            self.engine.execute(
                f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name['b']} TO {db}.{quarantine} AS "
                f"{bad.replace(stage_marker, stage)}"
            )
            pipeline = _Pipeline(stage=stage, rejects=name["n"], plan=plan)
            self._pipelines[rec.id] = (tag, pipeline)
            return pipeline

    def _drop_pipelines(self, datasource_id: str, keep: str | None) -> None:
        """Drop the event pipelines of a data source (all, or all but `keep`), views first."""
        res = self.engine.execute(
            f"SELECT name FROM system.tables WHERE database = {quote_string(EVENTS_DATABASE)} "
            f"AND startsWith(name, {quote_string(datasource_id + '_')}) "
            "ORDER BY engine = 'MaterializedView' DESC",
            "TabSeparatedRaw",
        )
        for table in res.data.decode().split():
            if keep is None or not table.startswith(keep + "_"):
                try:
                    self.engine.execute(
                        f"DROP TABLE IF EXISTS {EVENTS_DATABASE}.{quote_identifier(table)} SYNC"
                    )
                except EngineError as exc:
                    log.warning("could not drop event pipeline table %s: %s", table, exc.message)
        if keep is None:
            with self._pipeline_lock:
                self._pipelines.pop(datasource_id, None)
