"""Bulk imports through the Data Sources API: append, replace and create-from-file.

The request body (or a file downloaded from a URL, url_import.py) is spooled to `<data dir>/jobs/spool/`
and handed to `bulk.import_file`, where the engine parses it and bad rows go to `<name>_quarantine`.
A replace imports into a staging table and swaps it in with `EXCHANGE TABLES`, so readers see the old
rows or the new ones, never neither; with `replace_condition` only the matching rows are replaced
(partial.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tody.catalog.store import DatasourceRecord
from tody.engine.base import Engine, quote_identifier
from tody.engine.ddl import Column
from tody.services.datasources import DatasourceService
from tody.services.errors import BadRequest, NotFound
from tody.services.ingest.bulk import ImportResult, cleanup_staging, import_file
from tody.services.ingest.formats import FORMATS, CsvDialect, ImportFormatError, infer_schema, schema_text
from tody.services.ingest.partial import check_condition, replace_matching
from tody.services.ingest.quarantine import ensure_quarantine_table
from tody.services.materialized import failed_view
from tody.services.names import validate_name
from tody.services.tokens import DATASOURCES_CREATE, Principal

MODES = ("create", "append", "replace")

EXTENSIONS = {
    ".csv": "csv",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
    ".parquet": "parquet",
}


def format_of(params: Mapping[str, str], filename: str | None) -> str:
    fmt = (params.get("format") or "").lower()
    if not fmt and filename:
        name = filename.lower().removesuffix(".gz")
        fmt = next((f for ext, f in EXTENSIONS.items() if name.endswith(ext)), "")
    fmt = fmt or "csv"
    if fmt not in FORMATS:
        raise BadRequest(f"Unsupported format '{fmt}': use csv, ndjson or parquet")
    return fmt


def dialect_of(params: Mapping[str, str]) -> CsvDialect | None:
    values = {
        k: params[f"dialect_{k}"]
        for k in ("delimiter", "new_line", "escapechar")
        if params.get(f"dialect_{k}")
    }
    if not values:
        return None
    try:
        return CsvDialect(**values)
    except (ImportFormatError, ValueError) as exc:
        raise BadRequest(str(exc)) from None


@dataclass(frozen=True)
class ImportPlan:
    """An import checked before its data is read."""

    name: str
    mode: str
    rec: DatasourceRecord | None  # None: the import creates the data source from the file
    fmt: str
    dialect: CsvDialect | None
    condition: str | None  # replace_condition as the SQL gate regenerated it


class ImportService:
    def __init__(self, engine: Engine, datasources: DatasourceService, spool_dir: Path):
        self.engine = engine
        self.datasources = datasources
        self.spool_dir = spool_dir
        spool_dir.mkdir(parents=True, exist_ok=True)
        # One process owns the data directory: at start, nothing is importing, so whatever staging
        # tables or spool files exist were left by a crash.
        cleanup_staging(engine, older_than=0)
        self._drop_replace_leftovers()
        for leftover in spool_dir.iterdir():
            leftover.unlink(missing_ok=True)

    def _drop_replace_leftovers(self) -> None:
        """Staging copies a replace makes next to its table (`<id>_staging_<hex>`, `<id>_partial_<hex>`)."""
        res = self.engine.execute(
            "SELECT database, name FROM system.tables WHERE startsWith(database, 'w_') "
            "AND match(name, '^t_[0-9a-f]+_(staging|partial)_[0-9a-f]{8}(_quarantine)?$')",
            "TabSeparatedRaw",
        )
        for line in res.data.decode().splitlines():
            database, name = line.split("\t")
            self.engine.execute(
                f"DROP TABLE IF EXISTS {quote_identifier(database)}.{quote_identifier(name)} SYNC"
            )

    def spool_path(self, import_id: str) -> Path:
        return self.spool_dir / f"{import_id}.data"

    def prepare(
        self, principal: Principal, name: str, mode: str, params: Mapping[str, str], filename: str | None
    ) -> ImportPlan:
        """Check an import before any byte is read: mode, format, dialect, scopes, replace_condition."""
        if mode not in MODES:
            raise BadRequest(f"Unknown mode '{mode}': use create, append or replace")
        fmt = format_of(params, filename)
        dialect = dialect_of(params)
        rec = self.datasources.catalog.datasource(principal.workspace.id, name)
        if mode == "create" or rec is None:
            if rec is not None:
                raise BadRequest(f"Data Source '{name}' already exists; use mode=append or mode=replace")
            principal.require(DATASOURCES_CREATE)
            validate_name(name, "Data Source")
        elif mode == "replace":
            principal.require(DATASOURCES_CREATE)  # a replace drops rows: more than an append (as Tinybird)
        else:
            principal.require_append(rec.name)
        condition = (params.get("replace_condition") or "").strip() or None
        if condition is not None:
            if mode != "replace":
                raise BadRequest("replace_condition works with mode=replace only")
            if rec is None:
                raise NotFound(f"Data Source '{name}' not found: replace_condition needs an existing one")
            condition = check_condition(self.engine, principal.workspace.database, rec, condition)
        return ImportPlan(name, mode, rec, fmt, dialect, condition)

    def run(
        self,
        principal: Principal,
        name: str,
        mode: str,
        path: Path,
        params: Mapping[str, str],
        filename: str | None,
        import_id: str,
        *,
        job_id: str | None = None,
    ) -> dict[str, Any]:
        """Import the spool file at `path`. Returns the data source, the `ImportResult` and the rows a
        `replace_condition` left out (`discarded_rows`)."""
        plan = self.prepare(principal, name, mode, params, filename)
        workspace = principal.workspace
        rec = plan.rec or self._create_from_file(principal, name, path, plan.fmt, plan.dialect)
        event = "partial_replace" if plan.condition else mode if mode != "create" else "append"
        logged: dict[str, Any] = {"import_id": import_id}
        if job_id:
            logged["job_id"] = job_id
        if plan.condition:
            logged["options"] = {"replace_condition": params.get("replace_condition", "")}
        started = time.perf_counter()
        discarded = 0
        try:
            with self.datasources.hold.writing(workspace.id):
                if mode == "replace":
                    result, discarded = self._replace(principal, rec, path, plan, import_id)
                else:
                    result = self._import(rec, rec.id, path, plan.fmt, plan.dialect, import_id)
        except ImportFormatError as exc:
            self.datasources.log_operation(workspace, rec, event, started, **logged, error=str(exc))
            raise BadRequest(str(exc)) from None
        reason = failed_view(result.error, workspace.database) if result.failed and result.error else None
        if reason:
            result.error = (
                f"{result.rows_stored} row(s) are stored in '{rec.name}', but a materialized view reading it "
                f"failed, so its target misses rows (populate it again once the view is fixed): {reason}"
            )
        self.datasources.log_operation(
            workspace,
            rec,
            event,
            started,
            **logged,
            rows=result.rows_stored,
            rows_quarantine=result.rows_quarantined,
            error=result.error
            if result.failed or (result.rows_received and not result.rows_stored)
            else None,
            written_rows=result.rows_stored,
            written_rows_quarantine=result.rows_quarantined,
            read_bytes=result.bytes_received,
        )
        return {"datasource": rec, "result": result, "discarded_rows": discarded}

    def _import(
        self, rec: DatasourceRecord, table: str, path: Path, fmt: str, dialect, import_id: str
    ) -> ImportResult:
        columns = [Column(**c) for c in rec.columns]
        database = self.datasources.catalog.workspace(rec.workspace_id).database
        ensure_quarantine_table(self.engine, database, rec.id, columns)
        return import_file(
            self.engine, database, table, columns, path, fmt, import_id=import_id, csv_dialect=dialect
        )

    def _replace(
        self, principal: Principal, rec: DatasourceRecord, path: Path, plan: ImportPlan, import_id: str
    ) -> tuple[ImportResult, int]:
        """Import into a staging copy, then swap it in atomically (all rows), or replace the rows
        matching `replace_condition` partition by partition (partial.py). Returns the result and the
        number of incoming rows the condition left out."""
        database = principal.workspace.database
        db = quote_identifier(database)
        staging = f"{rec.id}_staging_{uuid.uuid4().hex[:8]}"
        self.engine.execute(
            f"CREATE TABLE {db}.{quote_identifier(staging)} AS {db}.{quote_identifier(rec.id)}"
        )
        discarded = 0
        try:
            columns = [Column(**c) for c in rec.columns]
            ensure_quarantine_table(self.engine, database, rec.id, columns)
            ensure_quarantine_table(self.engine, database, staging, columns)
            result = import_file(
                self.engine,
                database,
                staging,
                columns,
                path,
                plan.fmt,
                import_id=import_id,
                csv_dialect=plan.dialect,
            )
            if result.rows_received and not result.rows_stored and result.error:
                return result, 0  # nothing usable arrived: keep the current rows
            if plan.condition:
                kept = replace_matching(self.engine, database, rec.id, staging, plan.condition)
                discarded = result.rows_stored - kept
                result = replace(result, rows_stored=kept)
            else:
                self.engine.execute(
                    f"EXCHANGE TABLES {db}.{quote_identifier(rec.id)} AND {db}.{quote_identifier(staging)}"
                )
            quarantine = quote_identifier(rec.id + "_quarantine")
            staged_quarantine = quote_identifier(staging + "_quarantine")
            self.engine.execute(f"INSERT INTO {db}.{quarantine} SELECT * FROM {db}.{staged_quarantine}")
            return result, discarded
        finally:
            self.engine.execute(f"DROP TABLE IF EXISTS {db}.{quote_identifier(staging)} SYNC")
            self.engine.execute(f"DROP TABLE IF EXISTS {db}.{quote_identifier(staging + '_quarantine')} SYNC")

    def _create_from_file(self, principal, name, path, fmt, dialect) -> DatasourceRecord:
        try:
            columns = infer_schema(self.engine, path, fmt, dialect)
        except ImportFormatError as exc:
            raise BadRequest(f"Could not infer a schema from the file: {exc}") from None
        return self.datasources.create(principal, name, {"schema": schema_text(columns), "format": fmt})


def response(datasource: dict, result: ImportResult, import_id: str, discarded: int = 0) -> dict[str, Any]:
    """The body Tinybird answers to a file import."""
    body: dict[str, Any] = {
        "import_id": import_id,
        "datasource": datasource,
        "quarantine_rows": result.rows_quarantined,
        "invalid_lines": result.rows_quarantined,
        "empty_lines": result.empty_lines,
        "rows": result.rows_stored,
        "statistics": {"row_count": result.rows_stored, "bytes": result.bytes_received},
        "error": False,
        "errors": [],
        "blocks": [],
    }
    if result.rows_quarantined:
        body["warnings"] = [
            result.error or f"{result.rows_quarantined} row(s) went to {datasource['name']}_quarantine"
        ]
    if discarded:
        # rows outside replace_condition are not imported; say so, as for quarantined rows
        body["discarded_rows"] = discarded
        body.setdefault("warnings", []).append(
            f"{discarded} row(s) did not match replace_condition and were not imported"
        )
    if result.error and (result.failed or (result.rows_received and not result.rows_stored)):
        body["error"] = result.error
        body["errors"] = [result.error]
    return body
