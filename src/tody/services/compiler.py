"""From what a user wrote to the one SQL statement the engine runs.

A query (from /v0/sql, a node, or an endpoint's `q=`) names data sources, earlier nodes of its pipe,
other pipes' endpoints and service data sources (`tinybird.*`). The `Compiler` renders templates,
passes each piece through the SQL gate with a resolver that knows those names, and inlines node and
pipe references as already-compiled subqueries, so a whole pipe becomes one checked statement.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tody.catalog.store import Catalog, PipeRecord
from tody.engine.base import Engine, quote_string
from tody.services.errors import BadRequest, Forbidden
from tody.services.tokens import ORG_DATASOURCES_READ, PIPES_READ, Principal
from tody.sql.gate import CompiledQuery, SQLGateError, TableBinding, compile_select, validate_expression
from tody.sql.templates import TemplateError, is_template, render

SERVICE_DATABASE = "tody_service"  # physical home of the tinybird.* service data sources
SERVICE_QUALIFIER = "tinybird"
ORGANIZATION_QUALIFIER = "organization"  # organization.*: every workspace of the org, for its admins
ORG_ADMINS_ONLY = (
    "organization.* service data sources are for organization admins (or an ORG_DATASOURCES:READ token)"
)

Params = Mapping[str, str | list[str]]


@dataclass(frozen=True)
class ServiceSource:
    """A `tinybird.<name>` data source: one physical table for all workspaces, read per workspace."""

    name: str
    columns: tuple[str, ...]

    def subquery(self, workspace_id: str) -> str:
        cols = ", ".join(f"`{c}`" for c in self.columns)
        return (
            f"SELECT {cols} FROM `{SERVICE_DATABASE}`.`{self.name}` "
            f"WHERE workspace_id = {quote_string(workspace_id)}"
        )


class Compiler:
    def __init__(
        self, catalog: Catalog, engine: Engine, *, max_sql_bytes: int = 256_000, cache_size: int = 4096
    ):
        self.catalog = catalog
        self.engine = engine
        self.max_sql_bytes = max_sql_bytes
        self.service_sources: dict[str, ServiceSource] = {}
        # organization.<name>: (catalog, organization id) → subquery (see services/consumption.py)
        self.organization_sources: dict[str, Callable[[Catalog, str], str]] = {}
        self._cache: OrderedDict[tuple, CompiledQuery] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    # -- entry points ---------------------------------------------------------------------------

    def compile_sql(
        self,
        principal: Principal,
        sql: str,
        *,
        pipe: PipeRecord | None = None,
        params: Params | None = None,
        extra: Mapping[str, str] | None = None,
        check_read: bool = True,
    ) -> CompiledQuery:
        """Compile a query. In a pipe's context all its nodes are visible (the Query API's `pipeline`);
        `extra` binds more names to compiled SQL (`_` for an endpoint's `q=`)."""
        key = (
            "sql",
            principal.token.id,
            principal.scopes,  # a token's scopes, or those a service compiles with (materialized views)
            self.catalog.generation,
            sql,
            pipe.id if pipe else None,
            _freeze(params),
            _freeze(extra),
            check_read,
        )
        hit = self._get(key)
        if hit is not None:
            return hit
        bound = with_fixed_params(principal, pipe, params)
        scope = _Scope(self, principal, pipe, len(pipe.nodes) if pipe else 0, bound, check_read, ())
        compiled = scope.compile(self._render(sql, params), extra)
        self._put(key, compiled)
        return compiled

    def compile_node(
        self,
        principal: Principal,
        pipe: PipeRecord,
        node_name: str,
        params: Params | None = None,
        *,
        check_read: bool = False,
    ) -> CompiledQuery:
        """One node of a pipe (usually its endpoint) as a single statement."""
        key = (
            "node",
            principal.token.id,
            principal.scopes,  # a token's scopes, or those a service compiles with (materialized views)
            self.catalog.generation,
            pipe.id,
            node_name,
            _freeze(params),
            check_read,
        )
        hit = self._get(key)
        if hit is not None:
            return hit
        scope = _Scope(
            self, principal, pipe, 0, with_fixed_params(principal, pipe, params), check_read, (pipe.id,)
        )
        compiled = scope.node(node_name)
        row_filter = principal.pipe_filter(pipe.name)
        if row_filter is not None:
            compiled = self.compile_sql(
                principal, filtered_output(pipe, row_filter), extra={"_": compiled.sql}
            )
        self._put(key, compiled)
        return compiled

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _render(sql: str, params: Params | None) -> str:
        if not is_template(sql):
            return sql
        try:
            return render(sql, params or {})
        except TemplateError as exc:
            raise BadRequest(str(exc)) from None

    def _get(self, key: tuple) -> CompiledQuery | None:
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
            return hit

    def _put(self, key: tuple, value: CompiledQuery) -> None:
        with self._lock:
            self._cache[key] = value
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)


class _Scope:
    """Name resolution for one compilation: which nodes, pipes and data sources are visible."""

    def __init__(
        self,
        compiler: Compiler,
        principal: Principal,
        pipe: PipeRecord | None,
        visible_nodes: int,
        params: Params,
        check_read: bool,
        stack: tuple[str, ...],
    ):
        self.c = compiler
        self.principal = principal
        self.pipe = pipe
        self.visible_nodes = visible_nodes  # nodes [0, visible_nodes) of `pipe` can be read by name
        self.params = params
        self.check_read = check_read
        self.stack = stack  # pipes being compiled, to refuse cycles
        self.extra: Mapping[str, str] = {}
        self._nodes: dict[str, str] = {}

    def compile(self, sql: str, extra: Mapping[str, str] | None = None) -> CompiledQuery:
        self.extra = extra or {}
        try:
            return compile_select(sql, self, self.c.engine, max_bytes=self.c.max_sql_bytes)
        except SQLGateError as exc:
            raise BadRequest(str(exc)) from None

    def node(self, name: str) -> CompiledQuery:
        assert self.pipe is not None
        node = self.pipe.node(name)
        if node is None:
            raise BadRequest(f"Node '{name}' not found in pipe '{self.pipe.name}'")
        inner = _Scope(
            self.c, self.principal, self.pipe, node.position, self.params, self.check_read, self.stack
        )
        try:
            return inner.compile(self.c._render(node.sql, self.params))
        except BadRequest as exc:
            if exc.message.startswith("Node '") or "[node " in exc.message:
                raise
            raise BadRequest(f"[node {node.name}] {exc.message}") from None

    # -- Resolver protocol ----------------------------------------------------------------------

    def resolve(self, database: str | None, name: str) -> TableBinding | None:
        if database is not None:
            if database == SERVICE_QUALIFIER and name in self.c.service_sources:
                # every request's URL and parameters, every operation: not for a tenant's token
                qualified = f"{SERVICE_QUALIFIER}.{name}"
                if self.check_read and not self.principal.can_read_datasource(qualified):
                    raise Forbidden(
                        f"Not enough permissions to read '{qualified}': the token needs "
                        f"DATASOURCES:READ:{qualified}, WORKSPACE:READ_ALL or ADMIN"
                    )
                return TableBinding(
                    subquery=self.c.service_sources[name].subquery(self.principal.workspace.id)
                )
            if database == ORGANIZATION_QUALIFIER and name in self.c.organization_sources:
                return TableBinding(subquery=self._organization(name))
            return self._shared(database, name)
        if name in self.extra:
            return TableBinding(subquery=self.extra[name])
        ws = self.principal.workspace
        if self.pipe is not None:
            node = self.pipe.node(name)
            if node is not None and node.name == name:
                if node.position >= self.visible_nodes:
                    raise SQLGateError(
                        f"Node '{name}' can only be read by nodes that come after it in pipe '{self.pipe.name}'"
                    )
                if name not in self._nodes:
                    self._nodes[name] = self.node(name).sql
                return TableBinding(subquery=self._nodes[name])
        rec = self.c.catalog.datasource(ws.id, name)
        if rec is not None and rec.name == name:
            return self._datasource(rec)
        if name.endswith("_quarantine"):
            base = self.c.catalog.datasource(ws.id, name.removesuffix("_quarantine"))
            if base is not None and base.name == name.removesuffix("_quarantine"):
                return self._quarantine(base)
        other = self.c.catalog.pipe(ws.id, name)
        if other is not None and other.name == name:
            return self._pipe(other)
        return None

    def _datasource(self, rec, name: str | None = None, database: str | None = None) -> TableBinding:
        """A data source read under `name` (its own, or `<origin>.<name>` when shared with this
        workspace from `database`): the token's read scope and row filter on that name apply."""
        name = name or rec.name
        if self.check_read and not self.principal.can_read_datasource(name):
            raise Forbidden(
                f"Not enough permissions to read Data Source '{name}': the token needs DATASOURCES:READ:{name}"
            )
        row_filter = self.principal.datasource_filter(name)
        if row_filter is not None:
            try:
                row_filter = checked_filter(row_filter, tuple(c["name"] for c in rec.columns))
            except SQLGateError as exc:
                raise Forbidden(f"The row filter of this token on '{name}' is not valid: {exc}") from None
        database = database or self.principal.workspace.database
        return TableBinding(database=database, table=rec.id, row_filter=row_filter)

    def _organization(self, name: str) -> str:
        """`organization.<name>`: only through the personal token of an admin of this workspace's
        organization, or a token an org admin granted ORG_DATASOURCES:READ (named explicitly: ADMIN
        of a workspace is not enough, nor a JWT or a service acting for the workspace)."""
        user = self.principal.user
        organization_id = self.principal.workspace.organization_id
        granted = any(s.type == ORG_DATASOURCES_READ for s in self.principal.scopes)
        if not granted and (user is None or not self.c.catalog.is_org_admin(organization_id, user.id)):
            raise Forbidden(ORG_ADMINS_ONLY)
        return self.c.organization_sources[name](self.c.catalog, organization_id)

    def _shared(self, origin_name: str, name: str) -> TableBinding | None:
        """`<origin workspace>.<data source>`: a data source another workspace shares with this one."""
        qualified = f"{origin_name}.{name}"
        shared = self.c.catalog.shared_source(self.principal.workspace.id, qualified)
        if shared is None:
            return None
        origin, rec = shared
        return self._datasource(rec, qualified, origin.database)

    def _quarantine(self, rec) -> TableBinding:
        # A token that reads a data source through a row filter does not see its quarantine
        # (whose raw rows the filter cannot be applied to) unless granted the quarantine itself.
        name = rec.name + "_quarantine"
        filtered = self.principal.datasource_filter(rec.name) is not None
        denied = filtered or not self.principal.can_read_datasource(rec.name)
        if self.check_read and denied and not self.principal.can_read_datasource(name):
            raise Forbidden(
                f"Not enough permissions to read '{name}': the token needs DATASOURCES:READ:{name}"
            )
        return TableBinding(database=self.principal.workspace.database, table=rec.id + "_quarantine")

    def _pipe(self, other: PipeRecord) -> TableBinding:
        if other.id in self.stack:
            chain = " -> ".join([*self._names(), other.name])
            raise SQLGateError(f"Pipes read each other in a cycle: {chain}")
        endpoint = other.endpoint_node
        if endpoint is None:
            raise SQLGateError(f"Pipe '{other.name}' has no published endpoint to read from")
        if self.check_read and not self.principal.has(PIPES_READ, other.name):
            raise Forbidden(
                f"Not enough permissions to read pipe '{other.name}': the token needs PIPES:READ:{other.name}"
            )
        params = with_fixed_params(self.principal, other, self.params)
        inner = _Scope(self.c, self.principal, other, 0, params, False, (*self.stack, other.id))
        sql = inner.node(endpoint.name).sql
        row_filter = self.principal.pipe_filter(other.name)
        if row_filter is not None:
            sql = self.c.compile_sql(self.principal, filtered_output(other, row_filter), extra={"_": sql}).sql
        return TableBinding(subquery=sql)

    def _names(self) -> list[str]:
        by_id = {p.id: p.name for p in self.c.catalog.pipes(self.principal.workspace.id).values()}
        return [by_id.get(pid, pid) for pid in self.stack]


@functools.lru_cache(maxsize=4096)
def checked_filter(row_filter: str, columns: tuple[str, ...]) -> str:
    """A token's row filter through the SQL gate, once per (filter, columns): it changes only with the
    token or the schema, and the gate's parse is most of a filtered compile's extra cost."""
    return validate_expression(row_filter, columns)


def with_fixed_params(principal: Principal, pipe: PipeRecord | None, params: Params | None) -> dict:
    """A JWT's `fixed_params` for `pipe` replace the request's own, wherever the pipe is read."""
    fixed = principal.fixed_params.get(pipe.name) if pipe is not None else None
    if not fixed:
        return dict(params or {})
    forced = {k: [str(x) for x in v] if isinstance(v, list) else _param_text(v) for k, v in fixed.items()}
    return {**(params or {}), **forced}


def _param_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def filtered_output(pipe: PipeRecord, row_filter: str) -> str:
    """A `PIPES:READ:<pipe>:<filter>` scope: the pipe's output, filtered (checked by the gate)."""
    try:
        expression = validate_expression(row_filter)
    except SQLGateError as exc:
        raise Forbidden(f"The row filter of this token on pipe '{pipe.name}' is not valid: {exc}") from None
    return f"SELECT * FROM _ WHERE {expression}"


def _freeze(value: Mapping | None) -> tuple | None:
    if not value:
        return None
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in value.items()))
