"""Copy pipes: a node's result written into a target Data Source, on demand or on a cron schedule.

A node `{type: copy, target_datasource, copy_schedule, copy_mode}` (from a .pipe file, the JSON body of
POST /v0/pipes, or `POST|PUT /v0/pipes/{p}/nodes/{n}/copy`) makes its pipe a copy pipe. Checks when the
pipe is saved: the target exists, the schedule is a 5-field cron (UTC) or `@on-demand`, the pipe has
no other output, and every column the node produces is a column of the target with a type the engine
casts to (a mismatch is a 400 naming the column and both types).

A run is a job (kind `copy`): the node compiled with the run's template parameters, then
`INSERT INTO <target> (cols) SELECT cols FROM (<node>)` on the admin connection. `replace` inserts
into a staging copy of the target and swaps it in with EXCHANGE TABLES, so readers see the old rows or
the new ones, never an empty table. One copy of a pipe runs at a time: asking for another while one
is waiting or working is a 409 (API) or a skipped firing (scheduler, see scheduler.py).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter

from tody.catalog.store import (
    Catalog,
    CopyScheduleRecord,
    JobRecord,
    NodeRecord,
    PipeRecord,
    utcnow,
)
from tody.engine.base import Engine, EngineError, quote_identifier
from tody.services.compiler import Compiler
from tody.services.datasources import TIMESTAMP, DatasourceService
from tody.services.endpoints import RESERVED, TemplateStatus
from tody.services.errors import BadRequest, Conflict, NotFound, ServiceError
from tody.services.jobs import FINISHED, JobCancelled, JobContext, JobService
from tody.services.node_output import check_definer, check_output, output_columns
from tody.services.pipes import PipeService, sample_values
from tody.services.tokens import PIPES_CREATE, READ_ALL, Principal, service_principal
from tody.sql.templates import TemplateHTTPError

log = logging.getLogger("tody.copies")

ON_DEMAND = "@on-demand"
MODES = ("append", "replace")
COPY_OPTIONS = ("target_datasource", "copy_schedule", "copy_mode")
_CRON_ALIASES = {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}
_NOT_TEMPLATE = RESERVED | {"_mode"}


# -- schedules ---------------------------------------------------------------------------------------


def check_schedule(schedule: str | None) -> str:
    """`@on-demand` or a 5-field cron expression (minute hour day month weekday, UTC), normalised."""
    text = " ".join((schedule or ON_DEMAND).split())
    if text.lower() == ON_DEMAND:
        return ON_DEMAND
    if text.lower() in _CRON_ALIASES or (len(text.split(" ")) == 5 and croniter.is_valid(text)):
        return text
    raise BadRequest(
        f"copy_schedule '{schedule}' is not a cron expression: give 5 fields (minute hour day month "
        "weekday, in UTC), e.g. '0 * * * *' for every hour, or @on-demand"
    )


def is_scheduled(schedule: str | None) -> bool:
    return bool(schedule) and check_schedule(schedule) != ON_DEMAND


def next_run(cron: str, after: datetime) -> datetime:
    """The first firing strictly after `after`."""
    return croniter(cron, after).get_next(datetime)


def last_due(cron: str, now: datetime) -> datetime:
    """The latest firing at or before `now` (missed firings collapse into this one)."""
    return croniter(cron, now + timedelta(microseconds=1)).get_prev(datetime)


def copy_node(pipe: PipeRecord | None) -> NodeRecord | None:
    return next((n for n in pipe.nodes if n.type == "copy"), None) if pipe else None


def _mode(value: str | None) -> str:
    mode = (value or "append").strip().lower()
    if mode not in MODES:
        raise BadRequest(f"Unknown copy mode '{value}': use append or replace")
    return mode


def _system_principal(catalog: Catalog, workspace_id: str) -> Principal:
    """The workspace itself, for runs nobody asked for (the scheduler). Never stored."""
    workspace = catalog.workspace(workspace_id)
    if workspace is None:
        raise NotFound(f"Workspace '{workspace_id}' not found")
    return service_principal(workspace, "copy-scheduler")


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What one run executes: the compiled node and the columns it writes."""

    select: str
    columns: tuple[str, ...]
    target_id: str


class CopyService:
    def __init__(
        self,
        catalog: Catalog,
        engine: Engine,
        compiler: Compiler,
        datasources: DatasourceService,
        pipes: PipeService,
        jobs: JobService,
        *,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.catalog = catalog
        self.engine = engine
        self.compiler = compiler
        self.datasources = datasources
        self.pipes = pipes
        self.jobs = jobs
        self.clock = clock  # naive UTC; tests move it instead of waiting for the cron
        self._lock = threading.Lock()  # a pipe's running check and its next submit are one step
        self._last_job: dict[str, str] = {}  # pipe id -> id of its latest copy job
        pipes.check_hooks.append(self._check)
        pipes.save_hooks.append(self._saved)
        pipes.drop_hooks.append(self._dropped)
        pipes.describe_hooks.append(self._describe)
        datasources.dependency_checks.append(self._writers)

    # -- checking ---------------------------------------------------------------------------------

    def _check(self, principal: Principal, pipe: PipeRecord) -> None:
        node = copy_node(pipe)
        if node is None:
            return
        others = [n.name for n in pipe.nodes if n.type in ("copy", "materialized") and n.id != node.id]
        if others or pipe.endpoint_node_id:
            other = others[0] if others else pipe.endpoint_node.name if pipe.endpoint_node else "?"
            raise BadRequest(
                f"Pipe '{pipe.name}' copies with node '{node.name}' and has another output (node '{other}'): "
                "a pipe has one output; unlink or unpublish the other first"
            )
        check_schedule(node.options.get("copy_schedule"))
        _mode(node.options.get("copy_mode"))
        target = self._target(principal, node)
        values = sample_values(node.sql, node.name)
        try:
            if values is None:
                raise TemplateStatus(400, "required parameters without an example")
            check_definer(self.compiler, principal, pipe, node, target.name, values)
            select = self._select(principal, pipe, node, values)
        except (TemplateStatus, TemplateHTTPError):
            # Not renderable without a run's parameters: checked when a run gives them. What it will
            # read is unknown, so only a token that may read and append everything defines it.
            if not principal.is_admin:
                principal.require_append(target.name)
                principal.require(READ_ALL)
            return
        check_output(self.engine, node.name, target, output_columns(self.engine, node.name, select, "copy"))

    def _target(self, principal: Principal, node: NodeRecord):
        name = node.options.get("target_datasource")
        if not name:
            raise BadRequest(f"[node {node.name}] a copy node needs 'target_datasource'")
        target = self.catalog.datasource(principal.workspace.id, name)
        if target is None:
            raise BadRequest(
                f"[node {node.name}] target datasource '{name}' not found: create the Data Source the copy "
                "writes into first (its schema must match the node's columns)"
            )
        return target

    def _select(self, principal: Principal, pipe: PipeRecord, node: NodeRecord, values) -> str:
        try:
            return self.compiler.compile_node(principal.as_workspace(), pipe, node.name, values).sql
        except TemplateHTTPError as exc:
            raise TemplateStatus(exc.status, exc.message) from None
        except BadRequest as exc:
            message = exc.message if "[node " in exc.message else f"[node {node.name}] {exc.message}"
            raise BadRequest(message) from None

    # -- catalog hooks ----------------------------------------------------------------------------

    def _saved(self, principal: Principal, old: PipeRecord | None, new: PipeRecord) -> None:
        """Keep the schedule row in step: a new or changed cron starts counting from now."""
        node = copy_node(new)
        schedule = node.options.get("copy_schedule") if node else None
        if not is_scheduled(schedule):
            self.catalog.delete_copy_schedule(new.id)
            return
        cron = check_schedule(schedule)
        current = self.catalog.copy_schedule(new.id)
        if current is not None and current.cron == cron:
            return
        now = self.clock()
        self.catalog.save_copy_schedule(
            CopyScheduleRecord(
                pipe_id=new.id,
                workspace_id=new.workspace_id,
                cron=cron,
                status=current.status if current else "running",
                since=now,
                last_run_at=None,
                last_job_id=current.last_job_id if current else None,
                updated_at=now,
            )
        )

    def _dropped(self, principal: Principal, pipe: PipeRecord) -> None:
        self.catalog.delete_copy_schedule(pipe.id)

    def _writers(self, workspace, datasource) -> list[str]:
        """Pipes that copy into `datasource` (it cannot go while they do)."""
        return [
            p.name
            for p in self.catalog.pipes(workspace.id).values()
            if (node := copy_node(p)) is not None and node.options.get("target_datasource") == datasource.name
        ]

    def _describe(self, pipe: PipeRecord, out: dict[str, Any]) -> None:
        """The copy fields of the Pipe object (the tb CLI reads copy_target_datasource and schedule)."""
        node = copy_node(pipe)
        if node is None:
            return
        name = node.options.get("target_datasource")
        target = self.catalog.datasource(pipe.workspace_id, name) if name else None
        schedule = node.options.get("copy_schedule") or ON_DEMAND
        out.update(
            copy_node=node.id,
            copy_target_datasource=target.id if target else name,
            copy_target_workspace=pipe.workspace_id,
            copy_schedule=schedule,
            copy_mode=node.options.get("copy_mode") or "append",
            schedule=self.schedule_state(pipe, schedule),
        )

    def schedule_state(self, pipe: PipeRecord, schedule: str) -> dict[str, Any]:
        rec = self.catalog.copy_schedule(pipe.id) if is_scheduled(schedule) else None
        if rec is None:
            return {"cron": schedule, "timezone": "Etc/UTC", "status": "on-demand", "next_run_at": None}
        base = max(rec.since, rec.last_run_at or rec.since)
        return {
            "cron": rec.cron,
            "timezone": "Etc/UTC",
            "status": rec.status,
            "next_run_at": next_run(rec.cron, base).strftime(TIMESTAMP) if rec.status == "running" else None,
            "last_run_at": rec.last_run_at.strftime(TIMESTAMP) if rec.last_run_at else None,
            "last_job_id": rec.last_job_id,
        }

    # -- linking ----------------------------------------------------------------------------------

    def link(
        self, principal: Principal, pipe: PipeRecord, node: NodeRecord, params: Mapping[str, str]
    ) -> PipeRecord:
        """`POST|PUT /v0/pipes/{p}/nodes/{n}/copy`: the node becomes (or stays) the copy node, with the
        given target_datasource, schedule_cron and mode; what is not given stays as it was."""
        principal.require(PIPES_CREATE)
        current = node.options if node.type == "copy" else {}
        if node.type == "materialized":
            raise BadRequest(f"Node '{node.name}' is materialized; unlink it before making it a copy node")

        def given(*keys: str) -> str | None:
            return next((params[k] for k in keys if params.get(k)), None)

        target = given("target_datasource", "datasource") or current.get("target_datasource")
        if not target:
            raise BadRequest("Missing 'target_datasource': the Data Source the copy writes into")
        schedule = given("schedule_cron", "copy_schedule") or current.get("copy_schedule")
        options = {
            **node.options,
            "target_datasource": target,
            "copy_schedule": check_schedule(schedule),
            "copy_mode": _mode(given("mode", "copy_mode") or current.get("copy_mode")),
        }
        nodes = tuple(
            dataclasses.replace(n, type="copy", options=options, updated_at=utcnow())
            if n.id == node.id
            else n
            for n in pipe.nodes
        )
        return self.pipes.save(principal, dataclasses.replace(pipe, nodes=nodes))

    def unlink(self, principal: Principal, pipe: PipeRecord, node: NodeRecord) -> PipeRecord:
        """`DELETE /v0/pipes/{p}/nodes/{n}/copy`: a standard node again; its schedule goes."""
        principal.require(PIPES_CREATE)
        if node.type != "copy":
            raise BadRequest(f"Node '{node.name}' is not a copy node")
        options = {k: v for k, v in node.options.items() if k not in COPY_OPTIONS}
        nodes = tuple(
            dataclasses.replace(n, type="standard", options=options, updated_at=utcnow())
            if n.id == node.id
            else n
            for n in pipe.nodes
        )
        return self.pipes.save(principal, dataclasses.replace(pipe, nodes=nodes))

    def pause(self, principal: Principal, pipe: PipeRecord) -> PipeRecord:
        return self._set_status(principal, pipe, "paused")

    def resume(self, principal: Principal, pipe: PipeRecord) -> PipeRecord:
        return self._set_status(principal, pipe, "running")

    def _set_status(self, principal: Principal, pipe: PipeRecord, status: str) -> PipeRecord:
        principal.require(PIPES_CREATE)
        node = self._node(pipe)
        schedule = node.options.get("copy_schedule")
        if not is_scheduled(schedule):
            raise BadRequest(
                f"Pipe '{pipe.name}' copies on demand only (copy_schedule @on-demand): it has no schedule "
                "to pause or resume"
            )
        current = self.catalog.copy_schedule(pipe.id)
        if current is None:  # saved before schedules were kept: start one now
            self._saved(principal, None, pipe)
            current = self.catalog.copy_schedule(pipe.id)
            assert current is not None
        if current.status != status:
            values: dict[str, Any] = {"status": status}
            if status == "running":
                values["since"] = self.clock()  # firings missed while paused are not caught up
            self.catalog.update_copy_schedule(pipe.id, **values)
        return pipe

    # -- running ----------------------------------------------------------------------------------

    def running(self, pipe: PipeRecord) -> JobRecord | None:
        """The pipe's copy job that is still waiting, working or cancelling, if any."""
        job_id = self._last_job.get(pipe.id)
        rec = self.catalog.job_by_id(job_id) if job_id else None
        return rec if rec is not None and rec.status not in FINISHED else None

    def run(
        self,
        principal: Principal,
        pipe: PipeRecord,
        params: Mapping[str, str | list[str]] | None = None,
        mode: str | None = None,
        *,
        scheduled: bool = False,
    ) -> JobRecord:
        """`POST /v0/pipes/{p}/copy`: run the copy now, as a job. Template parameters come from
        `params`; `mode` overrides the node's copy_mode. An API run is compiled and checked before the
        job is queued (a bad parameter is a 400); a scheduled run does it inside the job, so a
        failure shows as the job's error."""
        node = self._node(pipe)
        mode = _mode(mode or node.options.get("copy_mode"))
        values = {k: v for k, v in (params or {}).items() if k not in _NOT_TEMPLATE}
        target = self.catalog.datasource(pipe.workspace_id, node.options.get("target_datasource") or "")
        plan = None if scheduled else self._plan(principal, pipe, node, values)
        job_params: dict[str, Any] = {
            "pipe_id": pipe.id,
            "pipe_name": pipe.name,
            "mode": mode,
            "datasource": {"id": target.id, "name": target.name} if target else None,
            "parameters": values,
            "origin": "schedule" if scheduled else "api",
        }

        def job(ctx: JobContext) -> dict[str, Any]:
            return self._execute(
                ctx, principal, pipe, node, mode, plan or self._plan(principal, pipe, node, values)
            )

        with self._lock:
            running = self.running(pipe)
            if running is not None:
                raise Conflict(
                    f"A copy of pipe '{pipe.name}' is already {running.status} (job {running.id}); wait for "
                    f"it to end or cancel it with POST /v0/pipes/{pipe.name}/copy/cancel"
                )
            rec = self.jobs.submit(
                principal,
                "copy",
                job,
                params=job_params,
                pipe_id=pipe.id,
                datasource_id=target.id if target else None,
            )
            self._last_job[pipe.id] = rec.id
        return rec

    def fire(self, schedule: CopyScheduleRecord) -> JobRecord | None:
        """One firing of the scheduler: the copy as a job, or None when it is skipped (the previous
        run is still going) or the pipe no longer copies."""
        pipe = self.catalog.pipe(schedule.workspace_id, schedule.pipe_id)
        if pipe is None or copy_node(pipe) is None:
            self.catalog.delete_copy_schedule(schedule.pipe_id)
            return None
        try:
            return self.run(_system_principal(self.catalog, pipe.workspace_id), pipe, scheduled=True)
        except Conflict:
            log.info("copy of pipe %s skipped at its firing: the previous run is still going", pipe.name)
        except ServiceError as exc:
            log.warning("copy of pipe %s could not start: %s", pipe.name, exc.message)
        return None

    def cancel(self, principal: Principal, pipe: PipeRecord) -> JobRecord:
        principal.require(PIPES_CREATE)
        self._node(pipe)
        running = self.running(pipe)
        if running is None:
            raise BadRequest(f"No copy of pipe '{pipe.name}' is waiting or running")
        return self.jobs.cancel(principal, running.id)

    def _node(self, pipe: PipeRecord) -> NodeRecord:
        node = copy_node(pipe)
        if node is None:
            raise BadRequest(
                f"Pipe '{pipe.name}' is not a copy pipe: give one node TYPE copy and TARGET_DATASOURCE, or "
                f"POST /v0/pipes/{pipe.name}/nodes/<node>/copy with target_datasource"
            )
        return node

    def _plan(self, principal: Principal, pipe: PipeRecord, node: NodeRecord, values) -> _Plan:
        target = self._target(principal, node)
        select = self._select(principal, pipe, node, values)
        output = output_columns(self.engine, node.name, select, "copy")
        check_output(self.engine, node.name, target, output)
        return _Plan(select=select, columns=tuple(c for c, _ in output), target_id=target.id)

    def _execute(
        self,
        ctx: JobContext,
        principal: Principal,
        pipe: PipeRecord,
        node: NodeRecord,
        mode: str,
        plan: _Plan,
    ) -> dict[str, Any]:
        workspace = principal.workspace
        target = self.catalog.datasource(workspace.id, plan.target_id)
        if target is None:
            raise NotFound(f"Data Source '{node.options.get('target_datasource')}' was dropped")
        ctx.checkpoint(0.05)
        db = quote_identifier(workspace.database)
        table = f"{db}.{quote_identifier(target.id)}"
        cols = ", ".join(quote_identifier(c) for c in plan.columns)
        select = f"SELECT {cols} FROM ({plan.select})"
        started = time.perf_counter()
        row: dict[str, Any] = {
            "job_id": ctx.job_id,
            "pipe_id": pipe.id,
            "pipe_name": pipe.name,
            "options": {"mode": mode, "node": node.name},
        }
        try:
            with self.datasources.hold.writing(workspace.id):
                if mode == "append":
                    insert = f"INSERT INTO {table} ({cols}) {select}"
                    stats = self.engine.execute(insert, settings=self.jobs.query_settings).statistics
                else:
                    stats = self._replace(ctx, db, target.id, cols, select)
            row.update(
                rows=stats.rows_written,
                written_rows=stats.rows_written,
                written_bytes=stats.bytes_written,
                read_rows=stats.rows_read,
                read_bytes=stats.bytes_read,
            )
        except JobCancelled:
            row["error"] = "cancelled before the target was changed"
            raise
        except EngineError as exc:
            row["error"] = exc.message
            raise BadRequest(f"The copy into '{target.name}' failed: {exc.message}") from None
        finally:
            self.datasources.log_operation(workspace, target, "copy", started, **row)
        return {
            "rows": stats.rows_written,
            "statistics": {"row_count": stats.rows_written, "bytes": stats.bytes_written},
            "read_rows": stats.rows_read,
            "read_bytes": stats.bytes_read,
        }

    def _replace(self, ctx: JobContext, db: str, table_id: str, cols: str, select: str):
        """Fill a staging copy of the target, then swap the two in one step."""
        staging = f"{db}.{quote_identifier(f'{table_id}_staging_{uuid.uuid4().hex[:8]}')}"
        table = f"{db}.{quote_identifier(table_id)}"
        self.engine.execute(f"CREATE TABLE {staging} AS {table}")
        try:
            insert = f"INSERT INTO {staging} ({cols}) {select}"
            stats = self.engine.execute(insert, settings=self.jobs.query_settings).statistics
            ctx.checkpoint(0.9)  # the last moment a cancel leaves the target as it was
            self.engine.execute(f"EXCHANGE TABLES {table} AND {staging}")
            return stats
        finally:
            self.engine.execute(f"DROP TABLE IF EXISTS {staging} SYNC")
