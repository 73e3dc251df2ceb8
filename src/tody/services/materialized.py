"""Materialized nodes: a node's SQL kept as an engine materialized view into a target data source.

A node `{type: materialized, datasource: <target>}` becomes `CREATE MATERIALIZED VIEW <node id>_mv
TO <target> AS <the node compiled to physical names>`; the engine then runs it on every insert into
the data source the query reads first (its *source*), whatever path the insert takes (events, files,
copies, other views: chains A → B → C follow by themselves).

Checks when the pipe is saved: the target exists (or is created from the node's output and the node's
engine settings), and every column the node produces is a column of the target with a type the engine
converts to (a mismatch is a 400 naming the column and both types).

Populate (`populate=true`, or `POST …/population`) reads the rows already in the source through the
node's query into the target, as a job. It holds the workspace's writes (ingest/hold.py) while the view
is created and the rows are read, so a row is either in that read or goes through the view afterwards:
exactly once. Events keep being acknowledged meanwhile; their flush waits.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import time
from contextlib import contextmanager
from typing import Any

from tody.catalog.store import Catalog, NodeRecord, PipeRecord
from tody.engine.base import Engine, EngineError, quote_identifier, quote_string
from tody.services.compiler import Compiler
from tody.services.datasources import DatasourceService
from tody.services.errors import BadRequest, NotFound, ServiceError
from tody.services.jobs import JobService
from tody.services.node_output import check_definer, check_output, output_columns
from tody.services.tokens import Principal, service_principal
from tody.sql.gate import SQLGateError, validate_expression
from tody.sql.templates import TemplateHTTPError

log = logging.getLogger(__name__)

# Pipes whose new views a populate job creates (under the hold) instead of the save itself.
_deferred: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "tody_deferred_views", default=frozenset()
)


def failed_view(message: str, database: str) -> str | None:
    """The reason, when an engine error says a materialized view of `database` failed during an insert
    (the rows of the data source itself are stored); None for any other error."""
    if f"while pushing to view {database}." not in message:
        return None
    return message.removeprefix("the import failed: ").split(": while executing")[0].split("\n")[0][:300]


def view_name(node: NodeRecord) -> str:
    return f"{node.id}_mv"


def materialized_nodes(pipe: PipeRecord | None) -> list[NodeRecord]:
    return [n for n in pipe.nodes if n.type == "materialized"] if pipe else []


class MaterializedViews:
    def __init__(
        self,
        catalog: Catalog,
        engine: Engine,
        compiler: Compiler,
        datasources: DatasourceService,
        pipes,
        jobs: JobService,
    ):
        self.catalog = catalog
        self.engine = engine
        self.compiler = compiler
        self.datasources = datasources
        self.pipes = pipes
        self.jobs = jobs
        pipes.check_hooks.append(self._check)
        pipes.save_hooks.append(self._saved)
        pipes.drop_hooks.append(self._dropped)
        datasources.dependency_checks.append(self._writers)
        datasources.drop_hooks.append(self._datasource_dropped)

    # -- compiling and checking -----------------------------------------------------------------

    def _select(self, principal: Principal, pipe: PipeRecord, node: NodeRecord, filters=None) -> str:
        from tody.services.pipes import sample_values

        values = sample_values(node.sql, node.name) or {}
        try:
            return self.compiler.compile_node(principal.as_workspace(filters), pipe, node.name, values).sql
        except BadRequest as exc:
            raise BadRequest(f"[node {node.name}] {exc.message}") from None
        except TemplateHTTPError as exc:  # a view's SQL is fixed: its template must render without error()
            raise BadRequest(f"[node {node.name}] {exc.message}") from None

    def _check(self, principal: Principal, pipe: PipeRecord) -> None:
        from tody.services.pipes import sample_values

        for node in materialized_nodes(pipe):
            target_name = node.options.get("datasource")
            try:
                check_definer(
                    self.compiler, principal, pipe, node, target_name, sample_values(node.sql) or {}
                )
            except TemplateHTTPError as exc:
                raise BadRequest(f"[node {node.name}] {exc.message}") from None
            output = output_columns(
                self.engine, node.name, self._select(principal, pipe, node), "materialized"
            )
            target = self.catalog.datasource(principal.workspace.id, target_name)
            if target is None:
                self._create_target(principal, node, target_name, output)
                continue
            check_output(self.engine, node.name, target, output)

    def _create_target(self, principal: Principal, node: NodeRecord, name: str, output) -> None:
        engine = {k.lower(): v for k, v in (node.options.get("engine") or {}).items()}
        if not engine:
            raise BadRequest(
                f"[node {node.name}] Data Source '{name}' (its DATASOURCE) does not exist: create it first, "
                "or give ENGINE settings (ENGINE, ENGINE_SORTING_KEY …) to create it from the node's output"
            )
        schema = ", ".join(f"{quote_identifier(col)} {type_}" for col, type_ in output)
        self.datasources.create(principal, name, {"schema": schema, **engine})

    # -- linking ----------------------------------------------------------------------------------

    def _saved(self, principal: Principal, old: PipeRecord | None, new: PipeRecord) -> None:
        deferred = new.name in _deferred.get()
        with self.datasources.hold.exclusive(principal.workspace.id):
            for node in materialized_nodes(old):
                self._drop_view(principal, node)
            for node in materialized_nodes(new):
                if not deferred:
                    self._create_view(principal, new, node)

    def _create_view(self, principal: Principal, pipe: PipeRecord, node: NodeRecord) -> None:
        db = quote_identifier(principal.workspace.database)
        target = self.catalog.datasource(principal.workspace.id, node.options["datasource"])
        if target is None:
            raise NotFound(f"Data Source '{node.options['datasource']}' not found")
        self.engine.execute(
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{quote_identifier(view_name(node))} "
            f"TO {db}.{quote_identifier(target.id)} AS {self._select(principal, pipe, node)}"
        )

    def reconcile(self) -> list[str]:
        """At start: a materialized node whose view is missing gets it back, so new rows flow again.
        Only a populate that died between saving the pipe and creating the view (its job ended as an
        error at restart) leaves one so; the rows inserted meanwhile are in the source, not the target."""
        restored = []
        for workspace in self.catalog.workspaces():
            pipes = [p for p in self.catalog.pipes(workspace.id).values() if materialized_nodes(p)]
            if not pipes:
                continue
            found = self.engine.execute(
                f"SELECT name FROM system.tables WHERE database = {quote_string(workspace.database)}",
                "TabSeparated",
            )
            existing = set(found.data.decode().split())
            principal = service_principal(workspace, "view-reconciler")
            for pipe in pipes:
                for node in materialized_nodes(pipe):
                    if view_name(node) in existing:
                        continue
                    try:
                        self._create_view(principal, pipe, node)
                        restored.append(f"{workspace.name}.{pipe.name}.{node.name}")
                    except (ServiceError, EngineError) as exc:
                        log.error("could not restore the view of %s.%s: %s", pipe.name, node.name, exc)
        if restored:
            log.warning("restored missing materialized views: %s", ", ".join(restored))
        return restored

    def _drop_view(self, principal: Principal, node: NodeRecord) -> None:
        db = quote_identifier(principal.workspace.database)
        self.engine.execute(f"DROP TABLE IF EXISTS {db}.{quote_identifier(view_name(node))} SYNC")

    def _dropped(self, principal: Principal, pipe: PipeRecord) -> None:
        with self.datasources.hold.exclusive(principal.workspace.id):
            for node in materialized_nodes(pipe):
                self._drop_view(principal, node)

    def _writers(self, workspace, datasource) -> list[str]:
        """Pipes whose materialized nodes write into `datasource` (it cannot go while they do)."""
        return [
            p.name
            for p in self.catalog.pipes(workspace.id).values()
            if any(n.options.get("datasource") == datasource.name for n in materialized_nodes(p))
        ]

    def _datasource_dropped(self, rec) -> None:
        """A source or target dropped with force=true: its views go, the nodes become standard."""
        workspace = self.catalog.workspace(rec.workspace_id)
        for pipe in list(self.catalog.pipes(rec.workspace_id).values()):
            touched = [
                n
                for n in materialized_nodes(pipe)
                if n.options.get("datasource") == rec.name or rec.name in n.options.get("dependencies", [])
            ]
            if not touched:
                continue
            db = quote_identifier(workspace.database)
            for node in touched:
                self.engine.execute(f"DROP TABLE IF EXISTS {db}.{quote_identifier(view_name(node))} SYNC")
            unlinked = tuple(
                dataclasses.replace(n, type="standard") if n in touched else n for n in pipe.nodes
            )
            self.catalog.save_pipe(dataclasses.replace(pipe, nodes=unlinked))

    def source_of(self, principal: Principal, node: NodeRecord) -> str | None:
        """The data source whose inserts trigger the node's view (from the engine's own dependencies)."""
        res = self.engine.execute(
            "SELECT name FROM system.tables WHERE database = "
            f"{quote_string(principal.workspace.database)} AND has(dependencies_table, {quote_string(view_name(node))})",
            "TabSeparatedRaw",
        )
        table = res.data.decode().strip().split("\n")[0]
        rec = self.catalog.datasource(principal.workspace.id, table) if table else None
        return rec.name if rec else None

    # -- API --------------------------------------------------------------------------------------

    @contextmanager
    def deferring(self, pipe_name: str):
        """Within: saving `pipe_name` leaves creating its views to the populate job that follows."""
        token = _deferred.set(_deferred.get() | {pipe_name})
        try:
            yield
        finally:
            _deferred.reset(token)

    def materialize(self, principal: Principal, pipe: PipeRecord, node: NodeRecord, params) -> PipeRecord:
        """`POST /v0/pipes/{p}/nodes/{n}/materialization`: the node becomes materialized into `datasource`."""
        target = params.get("datasource") or params.get("target_datasource")
        if not target:
            raise BadRequest("Missing 'datasource': the Data Source the materialized node writes into")
        engine = {k.upper(): v for k, v in params.items() if k.lower().startswith("engine") and v}
        options = {**node.options, "datasource": target}
        if engine:
            options["engine"] = engine
        nodes = tuple(
            dataclasses.replace(n, type="materialized", options=options) if n.id == node.id else n
            for n in pipe.nodes
        )
        return self.pipes.save(principal, dataclasses.replace(pipe, nodes=nodes))

    def unlink(self, principal: Principal, pipe: PipeRecord, node: NodeRecord) -> PipeRecord:
        if node.type != "materialized":
            raise BadRequest(f"Node '{node.name}' is not materialized")
        options = {k: v for k, v in node.options.items() if k not in ("datasource", "engine")}
        nodes = tuple(
            dataclasses.replace(n, type="standard", options=options) if n.id == node.id else n
            for n in pipe.nodes
        )
        return self.pipes.save(principal, dataclasses.replace(pipe, nodes=nodes))

    def populate(
        self,
        principal: Principal,
        pipe: PipeRecord,
        node: NodeRecord,
        *,
        condition: str | None = None,
        truncate: bool = False,
        subset: float | None = None,
    ):
        """Read the rows already in the source through the node into its target, as a job."""
        if node.type != "materialized":
            raise BadRequest(f"Node '{node.name}' is not materialized: it has no target to populate")
        workspace = principal.workspace
        target = self.catalog.datasource(workspace.id, node.options["datasource"])
        if target is None:
            raise NotFound(f"Data Source '{node.options['datasource']}' not found")
        if subset is not None and not 0 < subset <= 1:
            raise BadRequest("populate_subset must be a fraction between 0 and 1, e.g. 0.1")
        filters = self._source_filters(principal, pipe, node, condition, subset)
        select = self._select(principal, pipe, node, filters)
        db = quote_identifier(workspace.database)
        view = f"{db}.{quote_identifier(view_name(node))}"
        target_table = f"{db}.{quote_identifier(target.id)}"

        def run(ctx) -> dict[str, Any]:
            started = time.perf_counter()
            row: dict[str, Any] = {"job_id": ctx.job_id, "options": {"pipe": pipe.name, "node": node.name}}
            try:
                with self.datasources.hold.exclusive(workspace.id):
                    if truncate:
                        self.engine.execute(f"TRUNCATE TABLE {target_table}")
                    before = self._count(target_table)
                    self.engine.execute(
                        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view} TO {target_table} AS "
                        f"{self._select(principal, pipe, node)}"
                    )
                    ctx.checkpoint(0.1)
                    insert = f"INSERT INTO {target_table} {select}"
                    stats = self.engine.execute(insert, settings=self.jobs.query_settings).statistics
                    written = self._count(target_table) - before
                row.update(rows=written, read_rows=stats.rows_read, read_bytes=stats.bytes_read)
            except EngineError as exc:
                row["error"] = exc.message
                raise
            finally:
                self.datasources.log_operation(workspace, target, "populateview", started, **row)
            return {"rows": written, "read_rows": stats.rows_read}

        params = {"pipe": {"id": pipe.id, "name": pipe.name}, "node": node.name, "datasource": target.name}
        if condition:
            params["populate_condition"] = condition
        return self.jobs.submit(
            principal, "populateview", run, params=params, pipe_id=pipe.id, datasource_id=target.id
        )

    def _source_filters(self, principal, pipe, node, condition, subset) -> dict[str, str] | None:
        if not condition and subset is None:
            return None
        source = self._source_name(principal, pipe, node)
        rec = self.catalog.datasource(principal.workspace.id, source)
        parts = []
        if condition:
            try:
                parts.append(validate_expression(condition, [c["name"] for c in rec.columns]))
            except SQLGateError as exc:
                raise BadRequest(f"Invalid populate_condition: {exc}") from None
        if subset is not None:
            parts.append(f"rand() % 1000000 < {int(subset * 1_000_000)}")
        return {source: " AND ".join(f"({p})" for p in parts)}

    def _source_name(self, principal, pipe, node) -> str:
        reads = [
            d
            for d in node.options.get("dependencies", [])
            if self.catalog.datasource(principal.workspace.id, d)
        ]
        linked = self.source_of(principal, node)
        source = linked or (reads[0] if reads else None)
        if source is None:
            raise BadRequest(f"[node {node.name}] a materialized node must read a Data Source")
        return source

    def _count(self, table: str) -> int:
        return int(self.engine.execute(f"SELECT count() FROM {table}", "TabSeparated").data.strip() or 0)
