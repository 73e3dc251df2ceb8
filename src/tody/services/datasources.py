"""Data Sources: create from API parameters or a `.datasource` file, describe, rename, truncate, drop.

The ClickHouse table of a data source is named after its id (`t_<hex>`) inside its workspace's
database, so a rename only changes the catalog. Every user-written expression (DEFAULT values,
keys, TTL, indexes) passes the SQL gate's expression check before it reaches DDL.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Mapping

import orjson

from tody.catalog.store import Catalog, DatasourceRecord, WorkspaceRecord, utcnow
from tody.datafiles.datasource import (
    DatasourceFile,
    datasource_from_params,
    parse_datasource,
    render_datasource,
)
from tody.datafiles.schema import render_schema
from tody.engine.base import Engine, EngineError, quote_identifier, quote_string
from tody.engine.ddl import (
    Column,
    DDLError,
    Index,
    TableEngine,
    create_table_sql,
    engine_full,
    validate_engine,
)
from tody.services.errors import BadRequest, Conflict, Forbidden, NotFound
from tody.services.ingest.bulk import ndjson_plan
from tody.services.ingest.formats import ImportFormatError, Sniff
from tody.services.ingest.hold import IngestHold
from tody.services.ingest.quarantine import input_columns, quarantine_table_sql
from tody.services.names import validate_name
from tody.services.stats import StatsWriter
from tody.services.tokens import DATASOURCES_CREATE, DATASOURCES_DROP, Principal
from tody.sql.gate import SQLGateError, validate_expression

TIMESTAMP = "%Y-%m-%d %H:%M:%S.%f"

# Other services register here what depends on a data source (pipes, materialized views…):
# each callable returns the names of pipes that read the data source.
DependencyCheck = Callable[[WorkspaceRecord, DatasourceRecord], list[str]]


def table_name(rec: DatasourceRecord) -> str:
    return rec.id


class DatasourceService:
    def __init__(self, catalog: Catalog, engine: Engine, ops: StatsWriter | None = None):
        self.catalog = catalog
        self.engine = engine
        self.ops = ops  # where operations are recorded (tinybird.datasources_ops_log)
        self.dependency_checks: list[DependencyCheck] = []
        self.drop_hooks: list[Callable[[DatasourceRecord], None]] = []  # run after a data source is dropped
        # after a data source is created: (principal, record, SHARED_WITH workspace names); may refuse
        self.create_hooks: list[Callable[[Principal, DatasourceRecord, list[str]], None]] = []
        self.hold = IngestHold()  # every insert into a data source runs inside hold.writing()

    def log_operation(
        self,
        workspace: WorkspaceRecord,
        rec: DatasourceRecord,
        event_type: str,
        started: float,
        **row: object,
    ) -> None:
        if self.ops is not None:
            self.ops.datasource_operation(
                workspace_id=workspace.id,
                event_type=event_type,
                datasource_id=rec.id,
                datasource_name=rec.name,
                elapsed_time=time.perf_counter() - started,
                **row,
            )

    # -- reading --------------------------------------------------------------------------------

    def get(self, workspace: WorkspaceRecord, name_or_id: str) -> DatasourceRecord:
        rec = self.catalog.datasource(workspace.id, name_or_id)
        if rec is None:
            shared = self.catalog.shared_source(workspace.id, name_or_id)
            if shared is not None:
                raise Forbidden(
                    f"Data Source '{name_or_id}' is shared with this workspace read-only: append to it, "
                    f"change it or drop it in workspace '{shared[0].name}'"
                )
            raise NotFound(f"Data Source '{name_or_id}' not found")
        return rec

    def visible(self, principal: Principal) -> list[DatasourceRecord]:
        records = self.catalog.datasources(principal.workspace.id).values()
        return sorted(
            (r for r in records if principal.can_describe_datasource(r.name)), key=lambda r: r.created_at
        )

    def statistics(self, workspace: WorkspaceRecord) -> dict[str, tuple[int, int]]:
        """Rows and bytes per table of the workspace, from the engine's own bookkeeping."""
        sql = (
            "SELECT name, total_rows, total_bytes FROM system.tables WHERE database = "
            + quote_string(workspace.database)
            + " FORMAT JSONCompact"
        )
        data = orjson.loads(self.engine.execute(sql, "JSONCompact").data)["data"]
        return {name: (int(rows or 0), int(size or 0)) for name, rows, size in data}

    def describe(self, rec: DatasourceRecord, stats: Mapping[str, tuple[int, int]] | None = None) -> dict:
        """The Data Source object of the API (one shape for API, CLI and UI)."""
        columns = [_column(c) for c in rec.columns]
        engine = TableEngine(**rec.engine)
        rows, size = (stats or {}).get(table_name(rec), (0, 0))
        engine_info: dict[str, object] = {"engine": engine.engine, "engine_full": engine_full(engine)}
        for field in dataclasses.fields(TableEngine):
            value = getattr(engine, field.name)
            if field.name != "engine" and value:
                engine_info[field.name] = value
                engine_info[f"engine_{field.name}"] = value
        return {
            "id": rec.id,
            "name": rec.name,
            "description": rec.description,
            "type": rec.format,
            "created_at": rec.created_at.strftime(TIMESTAMP),
            "updated_at": rec.updated_at.strftime(TIMESTAMP),
            "columns": [_public_column(c) for c in columns],
            "schema": {
                "columns": [_public_column(c) for c in columns],
                "sql_schema": render_schema(columns),
            },
            "engine": engine_info,
            "statistics": {"row_count": rows, "bytes": size},
            "indexes": rec.indexes,
            "tags": rec.tags,
            "shared_with": self.shared_with(rec),
            "used_by": [],
            "headers": {},
            "version": 0,
            "project": None,
            "cluster": None,
            "replicated": False,
        }

    def datafile(self, rec: DatasourceRecord) -> str:
        return render_datasource(dataclasses.replace(self._to_file(rec), shared_with=self.shared_with(rec)))

    def shared_with(self, rec: DatasourceRecord) -> list[str]:
        """Names of the workspaces this data source is shared with."""
        found = (self.catalog.workspace(s.workspace_id) for s in self.catalog.shares_of(rec.id))
        return sorted(w.name for w in found if w is not None)

    # -- writing --------------------------------------------------------------------------------

    def create(
        self,
        principal: Principal,
        name: str,
        params: Mapping[str, str],
        datafile_text: str | None = None,
    ) -> DatasourceRecord:
        principal.require(DATASOURCES_CREATE)
        started = time.perf_counter()
        workspace = principal.workspace
        validate_name(name, "Data Source")
        if self.catalog.datasource(workspace.id, name):
            raise Conflict(
                f"Data Source '{name}' already exists. Use mode=append to add rows or pick another name"
            )
        if self.catalog.pipe(workspace.id, name):  # a query reads either by the same name
            raise Conflict(f"A pipe is already named '{name}'; pipes and data sources share names")
        spec = self._spec(params, datafile_text)
        engine, ddl_spec = self._validated(spec)
        rec = DatasourceRecord(
            id="t_" + uuid.uuid4().hex,
            workspace_id=workspace.id,
            name=name,
            description=spec.description or "",
            columns=[dataclasses.asdict(c) for c in spec.columns],
            engine=dataclasses.asdict(engine),
            indexes=[dataclasses.asdict(i) for i in spec.indexes],
            tags=_tags(spec.tags),
            format="ndjson" if any(c.jsonpath for c in spec.columns) else params.get("format", "csv"),
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        try:
            ddl = create_table_sql(
                workspace.database, table_name(rec), ddl_spec.columns, ddl_spec.engine, ddl_spec.indexes
            )
        except DDLError as exc:
            raise BadRequest(str(exc)) from None
        self._run_ddl(ddl)
        # the quarantine exists from the start, so `<name>_quarantine` can always be queried
        self._run_ddl(quarantine_table_sql(workspace.database, table_name(rec), spec.columns))
        try:
            self.catalog.add_datasource(rec)
        except Exception:
            self._drop_table(workspace, rec)
            raise
        try:
            for hook in self.create_hooks:
                hook(principal, rec, spec.shared_with)
        except Exception:
            self._drop_table(workspace, rec)
            self.catalog.delete_datasource(rec.id)
            raise
        self.log_operation(workspace, rec, "create", started)
        return rec

    def rename(
        self, principal: Principal, rec: DatasourceRecord, new_name: str | None, description: str | None
    ):
        principal.require(DATASOURCES_CREATE)
        values: dict[str, object] = {}
        if new_name and new_name != rec.name:
            validate_name(new_name, "Data Source")
            if self.catalog.datasource(principal.workspace.id, new_name):
                raise Conflict(f"Data Source '{new_name}' already exists")
            if self.catalog.pipe(principal.workspace.id, new_name):
                raise Conflict(f"A pipe is already named '{new_name}'; pipes and data sources share names")
            dependent = self.dependents(principal.workspace, rec)
            if dependent:  # their SQL and targets name it: a rename would break them silently
                raise Conflict(
                    f"Data Source '{rec.name}' is used by {', '.join(dependent)}; renaming it would break "
                    "them. Change or remove those pipes first",
                    dependent_pipes=dependent,
                )
            values["name"] = new_name
        if description is not None:
            values["description"] = description
        if values:
            started = time.perf_counter()
            self.catalog.update_datasource(rec.id, **values)
            if "name" in values:
                self.log_operation(
                    principal.workspace, rec, "rename", started, options={"new_name": new_name}
                )
        return self.get(principal.workspace, rec.id)

    def dependents(self, workspace: WorkspaceRecord, rec: DatasourceRecord) -> list[str]:
        found: list[str] = []
        for check in self.dependency_checks:
            found.extend(check(workspace, rec))
        return sorted(set(found))

    def drop(self, principal: Principal, rec: DatasourceRecord, *, force: bool = False) -> None:
        principal.require(DATASOURCES_DROP, rec.name)
        dependent = self.dependents(principal.workspace, rec)
        if dependent and not force:
            raise Conflict(
                f"Data Source '{rec.name}' is used by {', '.join(dependent)}; "
                "remove those first or pass force=true",
                dependent_pipes=dependent,
            )
        started = time.perf_counter()
        self._drop_table(principal.workspace, rec)
        self.catalog.delete_datasource(rec.id)
        for hook in self.drop_hooks:
            hook(rec)
        self.log_operation(principal.workspace, rec, "delete", started)

    def truncate(self, principal: Principal, rec: DatasourceRecord) -> None:
        principal.require(DATASOURCES_DROP, rec.name)
        started = time.perf_counter()
        self._run_ddl(f"TRUNCATE TABLE {self.physical(principal.workspace, rec)}")
        self.catalog.update_datasource(rec.id)
        self.log_operation(principal.workspace, rec, "truncate", started)

    def delete_rows(
        self, principal: Principal, rec: DatasourceRecord, condition: str, jobs, *, dry_run: bool
    ):
        """`POST /v0/datasources/{name}/delete`: rows matching `condition` go, as a job (kind delete_data);
        `dry_run` counts them instead."""
        principal.require(DATASOURCES_DROP, rec.name)
        if not condition or not condition.strip():
            raise BadRequest(
                "Missing 'delete_condition': a SQL condition on the columns, e.g. toDate(ts) < '2024-01-01'"
            )
        try:
            checked = validate_expression(condition, [c["name"] for c in rec.columns])
        except SQLGateError as exc:
            raise BadRequest(f"Invalid delete_condition: {exc}") from None
        table = self.physical(principal.workspace, rec)
        if dry_run:
            count = self.engine.execute(f"SELECT count() FROM {table} WHERE {checked}", "TabSeparated").data
            return {"rows_to_be_deleted": int(count.strip() or 0)}
        workspace = principal.workspace

        def run(ctx) -> dict:
            started = time.perf_counter()
            before = self._count(table)
            ctx.checkpoint(0.1, rows_before=before)
            row: dict[str, object] = {"job_id": ctx.job_id, "options": {"delete_condition": condition}}
            try:
                self._run_ddl(f"DELETE FROM {table} WHERE {checked}")
                deleted = before - self._count(table)
                row["rows"] = deleted
            except Exception as exc:
                row["error"] = getattr(exc, "message", str(exc))
                raise
            finally:
                self.log_operation(workspace, rec, "delete_data", started, **row)
            return {"rows_affected": deleted}

        params = {"delete_condition": condition, "datasource": {"id": rec.id, "name": rec.name}}
        return jobs.submit(principal, "delete_data", run, params=params, datasource_id=rec.id)

    def _count(self, table: str) -> int:
        return int(self.engine.execute(f"SELECT count() FROM {table}", "TabSeparated").data.strip() or 0)

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def physical(workspace: WorkspaceRecord, rec: DatasourceRecord) -> str:
        return f"{quote_identifier(workspace.database)}.{quote_identifier(table_name(rec))}"

    def _drop_table(self, workspace: WorkspaceRecord, rec: DatasourceRecord) -> None:
        self._run_ddl(f"DROP TABLE IF EXISTS {self.physical(workspace, rec)} SYNC")
        quarantine = (
            f"{quote_identifier(workspace.database)}.{quote_identifier(table_name(rec) + '_quarantine')}"
        )
        self._run_ddl(f"DROP TABLE IF EXISTS {quarantine} SYNC")

    def _run_ddl(self, sql: str) -> None:
        try:
            self.engine.execute(sql)
        except EngineError as exc:
            if exc.is_user_error:
                raise BadRequest(_clean(exc.message)) from None
            raise

    @staticmethod
    def _spec(params: Mapping[str, str], datafile_text: str | None) -> DatasourceFile:
        try:
            if datafile_text is not None:
                return parse_datasource(datafile_text)
            if not params.get("schema"):
                raise BadRequest(
                    "Missing 'schema': give the columns, e.g. schema=`timestamp` DateTime, `event` String"
                )
            return datasource_from_params(params)
        except (DDLError, ValueError) as exc:
            if isinstance(exc, BadRequest):
                raise
            raise BadRequest(str(exc)) from None

    @staticmethod
    def _validated(spec: DatasourceFile) -> tuple[TableEngine, DatasourceFile]:
        """Check every user expression with the SQL gate. Returns the engine as stored (what the
        user wrote, defaults filled) and the spec for DDL, whose expressions are the gate's
        regenerated ones, so the engine runs exactly what was checked."""
        if not spec.columns:
            raise BadRequest("The schema has no columns")
        names = [c.name for c in spec.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise BadRequest(f"Column names must be unique; repeated: {', '.join(duplicates)}")
        try:
            engine = validate_engine(spec.columns, spec.engine)
            columns = [
                dataclasses.replace(c, default=validate_expression(c.default, names)) if c.default else c
                for c in spec.columns
            ]
            checked: dict[str, str] = {}
            for field in ("sorting_key", "partition_key", "primary_key", "sampling_key", "ttl"):
                value = getattr(engine, field)
                if value and value != "tuple()":
                    # keys are lists of expressions: check them as one tuple
                    checked[field] = validate_expression(f"({value})" if field != "ttl" else value, names)
            indexes = [dataclasses.replace(i, expr=validate_expression(i.expr, names)) for i in spec.indexes]
            if any(c.jsonpath for c in spec.columns):  # what NDJSON imports and the Events API will follow
                ndjson_plan(input_columns(spec.columns), Sniff(gzip=False, bom=False, head=b"", size=0))
        except ImportFormatError as exc:
            raise BadRequest(f"Invalid JSONPath in the schema: {exc}") from None
        except SQLGateError as exc:
            raise BadRequest(f"Invalid expression in the data source definition: {exc}") from None
        except DDLError as exc:
            raise BadRequest(str(exc)) from None
        ddl_spec = dataclasses.replace(
            spec, columns=columns, engine=dataclasses.replace(engine, **checked), indexes=indexes
        )
        return engine, ddl_spec

    @staticmethod
    def _to_file(rec: DatasourceRecord) -> DatasourceFile:
        return DatasourceFile(
            columns=[Column(**c) for c in rec.columns],
            engine=TableEngine(**rec.engine),
            description=rec.description or None,
            indexes=[Index(**i) for i in rec.indexes],
            tags=",".join(f"{k}={v}" if v else k for k, v in rec.tags.items()) or None,
        )


def _column(raw: dict) -> Column:
    return Column(**raw)


def _public_column(c: Column) -> dict:
    return {
        "name": c.name,
        "type": c.type,
        "nullable": c.nullable,
        "normalized_name": c.name,
        "jsonpath": c.jsonpath,
        "default_value": f"{c.default_kind} {c.default}" if c.default else None,
        "codec": c.codec,
    }


def _tags(text: str | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if part:
            key, _, value = part.partition("=")
            tags[key.strip()] = value.strip()
    return tags


def _clean(message: str) -> str:
    return message.split(". Stack trace")[0]
