"""Pipes: ordered nodes of SQL, one of which may be published as an API Endpoint.

A pipe is saved whole (catalog `save_pipe`), so every change — a new node, an edit, a publish — is
one transaction. Each node is compiled when saved, so unknown names, cycles and syntax errors are a
400 naming the node at write time rather than at the first request.
"""

from __future__ import annotations

import dataclasses
import textwrap
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from tody.catalog.store import Catalog, NodeRecord, PipeRecord, utcnow
from tody.datafiles.pipe import NodeFile, PipeFile, parse_pipe, pipe_from_api, render_pipe
from tody.engine.ddl import DDLError
from tody.services.compiler import Compiler
from tody.services.datasources import TIMESTAMP, DatasourceService
from tody.services.errors import BadRequest, Conflict, NotFound
from tody.services.names import validate_name
from tody.services.tokens import PIPES_CREATE, PIPES_DROP, PIPES_READ, Principal
from tody.sql.gate import SQLGateError, tables_read
from tody.sql.templates import TemplateError, TemplateHTTPError, is_template, params, render

SUPPORTED_TYPES = {None, "standard", "endpoint", "materialized", "copy"}
# What a typed node keeps in NodeRecord.options besides params and dependencies.
_TYPE_OPTIONS = {
    "materialized": ("datasource", "engine"),
    "copy": ("target_datasource", "copy_schedule", "copy_mode"),
}

CheckHook = Callable[[Principal, PipeRecord], None]
SaveHook = Callable[[Principal, PipeRecord | None, PipeRecord], None]
DropHook = Callable[[Principal, PipeRecord], None]


class PipeService:
    def __init__(self, catalog: Catalog, compiler: Compiler, datasources: DatasourceService):
        self.catalog = catalog
        self.compiler = compiler
        datasources.dependency_checks.append(self._pipes_reading)
        # Node kinds beyond SQL (materialized views, copies) plug in here:
        self.check_hooks: list[CheckHook] = []  # before a pipe is stored; raise BadRequest to refuse
        self.save_hooks: list[SaveHook] = []  # after it is stored (old version or None, new version)
        self.drop_hooks: list[DropHook] = []  # before it is deleted
        self.describe_hooks: list[Callable[[PipeRecord, dict[str, Any]], None]] = []  # add kind fields

    # -- reading --------------------------------------------------------------------------------

    def get(self, principal: Principal, name_or_id: str) -> PipeRecord:
        rec = self.catalog.pipe(principal.workspace.id, name_or_id)
        if rec is None:
            raise NotFound(f"Pipe '{name_or_id}' not found")
        return rec

    def can_read(self, principal: Principal, pipe: PipeRecord) -> bool:
        return principal.has(PIPES_READ, pipe.name)  # ADMIN and WORKSPACE:READ_ALL included

    def readable(self, principal: Principal) -> list[PipeRecord]:
        pipes = self.catalog.pipes(principal.workspace.id).values()
        return sorted((p for p in pipes if self.can_read(principal, p)), key=lambda p: p.created_at)

    def describe(self, pipe: PipeRecord, host: str | None = None) -> dict[str, Any]:
        endpoint = pipe.endpoint_node
        out: dict[str, Any] = {
            "id": pipe.id,
            "name": pipe.name,
            "description": pipe.description,
            "type": pipe_type(pipe),
            "endpoint": endpoint.id if endpoint else None,
            "created_at": pipe.created_at.strftime(TIMESTAMP),
            "updated_at": pipe.updated_at.strftime(TIMESTAMP),
            "published_date": pipe.updated_at.strftime(TIMESTAMP) if endpoint else None,
            "parent": None,
            "tags": pipe.tags,
            "nodes": [self.describe_node(pipe, n) for n in pipe.nodes],
        }
        if endpoint and host:
            out["url"] = f"{host.rstrip('/')}/v0/pipes/{pipe.name}.json"
        for hook in self.describe_hooks:
            hook(pipe, out)
        return out

    def describe_node(self, pipe: PipeRecord, node: NodeRecord) -> dict[str, Any]:
        node_type = "endpoint" if node.id == pipe.endpoint_node_id else node.type
        out = {
            "id": node.id,
            "name": node.name,
            "sql": node.sql,
            "description": node.description,
            "type": node_type,
            "node_type": node_type,
            "materialized": node.options.get("datasource") if node.type == "materialized" else None,
            "cluster": None,
            "tags": {},
            "version": 0,
            "project": None,
            "result": None,
            "ignore_sql_errors": False,
            "dependencies": node.options.get("dependencies", []),
            "params": node.options.get("params", []),
            "created_at": node.created_at.strftime(TIMESTAMP),
            "updated_at": node.updated_at.strftime(TIMESTAMP),
        }
        for key in _TYPE_OPTIONS.get(node.type, ()):
            out[key] = node.options.get(key)
        return out

    def datafile(self, pipe: PipeRecord) -> str:
        nodes = []
        for n in pipe.nodes:
            typed = n.type if n.type in _TYPE_OPTIONS else None
            node = NodeFile(
                name=n.name,
                sql=n.sql,
                description=n.description or None,
                type="endpoint" if n.id == pipe.endpoint_node_id else typed,
            )
            for key in _TYPE_OPTIONS.get(n.type, ()):
                value = n.options.get(key)
                if value:
                    setattr(node, key, dict(value) if key == "engine" else value)
            nodes.append(node)
        return render_pipe(PipeFile(nodes=nodes, description=pipe.description or None))

    # -- writing --------------------------------------------------------------------------------

    def create(self, principal: Principal, spec: PipeFile, name: str, *, force: bool = False) -> PipeRecord:
        principal.require(PIPES_CREATE)
        validate_name(name, "Pipe")
        existing = self.catalog.pipe(principal.workspace.id, name)
        if existing is not None and not force:
            raise Conflict(f"Pipe '{name}' already exists; pass force=true to replace it")
        if self.catalog.datasource(principal.workspace.id, name):
            raise Conflict(f"A Data Source is already named '{name}'; pipes and data sources share names")
        now = utcnow()
        pipe = PipeRecord(
            id=existing.id if existing else "t_" + uuid.uuid4().hex,
            workspace_id=principal.workspace.id,
            name=name,
            description=spec.description or "",
            endpoint_node_id=None,
            tags={},
            created_at=existing.created_at if existing else now,
            updated_at=now,
        )
        nodes = []
        endpoint_id = None
        for position, node in enumerate(spec.nodes):
            rec = self._new_node(pipe, node, position)
            if node.type == "endpoint":
                endpoint_id = rec.id
            nodes.append(rec)
        pipe = dataclasses.replace(pipe, nodes=tuple(nodes), endpoint_node_id=endpoint_id)
        return self._save(principal, pipe)

    def from_request(self, name: str | None, body: Mapping | None, text: str | None, form: Mapping[str, str]):
        """The three ways to describe a pipe: JSON body, a .pipe file, or `name` + `sql` form fields."""
        try:
            if body is not None:
                return body.get("name") or name, pipe_from_api(body)
            if text is not None:
                return name, parse_pipe(text)
        except (DDLError, ValueError) as exc:
            raise BadRequest(str(exc)) from None
        if name and form.get("sql"):
            return name, PipeFile(nodes=[NodeFile(name=f"{name}_0", sql=form["sql"])])
        raise BadRequest(
            "Give the pipe as JSON {name, nodes: [{name, sql}]}, as a .pipe file, or as name and sql"
        )

    def rename(self, principal: Principal, pipe: PipeRecord, new_name: str | None, description: str | None):
        principal.require(PIPES_CREATE)
        changes: dict[str, Any] = {"updated_at": utcnow()}
        if new_name and new_name != pipe.name:
            validate_name(new_name, "Pipe")
            if self.catalog.pipe(principal.workspace.id, new_name) or self.catalog.datasource(
                principal.workspace.id, new_name
            ):
                raise Conflict(f"A resource named '{new_name}' already exists")
            changes["name"] = new_name
        if description is not None:
            changes["description"] = description
        return self._save(principal, dataclasses.replace(pipe, **changes))

    def drop(self, principal: Principal, pipe: PipeRecord) -> None:
        principal.require(PIPES_DROP, pipe.name)
        users = [
            p.name
            for p in self.catalog.pipes(principal.workspace.id).values()
            if p.id != pipe.id and pipe.name in reads(p)
        ]
        if users:
            raise Conflict(f"Pipe '{pipe.name}' is read by {', '.join(sorted(users))}; remove those first")
        for hook in self.drop_hooks:
            hook(principal, pipe)
        self.catalog.delete_pipe(pipe.id)

    def add_node(self, principal: Principal, pipe: PipeRecord, node: NodeFile) -> PipeRecord:
        principal.require(PIPES_CREATE)
        if pipe.node(node.name):
            raise Conflict(f"Node '{node.name}' already exists in pipe '{pipe.name}'")
        rec = self._new_node(pipe, node, len(pipe.nodes))
        endpoint = rec.id if node.type == "endpoint" else pipe.endpoint_node_id
        return self._save(
            principal, dataclasses.replace(pipe, nodes=(*pipe.nodes, rec), endpoint_node_id=endpoint)
        )

    def update_node(
        self, principal: Principal, pipe: PipeRecord, node: NodeRecord, changes: Mapping[str, str]
    ):
        principal.require(PIPES_CREATE)
        values: dict[str, Any] = {"updated_at": utcnow()}
        if changes.get("name") and changes["name"] != node.name:
            validate_name(changes["name"], "Node")
            if pipe.node(changes["name"]):
                raise Conflict(f"Node '{changes['name']}' already exists in pipe '{pipe.name}'")
            values["name"] = changes["name"]
        if changes.get("sql") is not None:
            values["sql"] = normalise_sql(changes["sql"])
            values["options"] = {**node.options, **_analyse(values["sql"], node.name)}
        if changes.get("description") is not None:
            values["description"] = changes["description"]
        nodes = tuple(dataclasses.replace(n, **values) if n.id == node.id else n for n in pipe.nodes)
        return self._save(principal, dataclasses.replace(pipe, nodes=nodes, updated_at=utcnow()))

    def delete_node(self, principal: Principal, pipe: PipeRecord, node: NodeRecord) -> PipeRecord:
        principal.require(PIPES_CREATE)
        later = [
            n.name
            for n in pipe.nodes
            if n.position > node.position and node.name in n.options.get("dependencies", [])
        ]
        if later:
            raise Conflict(f"Node '{node.name}' is read by {', '.join(later)}; change those first")
        nodes = tuple(
            dataclasses.replace(n, position=i) for i, n in enumerate(n for n in pipe.nodes if n.id != node.id)
        )
        endpoint = None if pipe.endpoint_node_id == node.id else pipe.endpoint_node_id
        return self._save(principal, dataclasses.replace(pipe, nodes=nodes, endpoint_node_id=endpoint))

    def publish(self, principal: Principal, pipe: PipeRecord, node: NodeRecord | None) -> PipeRecord:
        principal.require(PIPES_CREATE)
        return self._save(
            principal,
            dataclasses.replace(pipe, endpoint_node_id=node.id if node else None, updated_at=utcnow()),
        )

    def save(self, principal: Principal, pipe: PipeRecord) -> PipeRecord:
        """Store a changed pipe (node kinds use this to change a node's type)."""
        principal.require(PIPES_CREATE)
        return self._save(principal, dataclasses.replace(pipe, updated_at=utcnow()))

    # -- helpers --------------------------------------------------------------------------------

    def _new_node(self, pipe: PipeRecord, node: NodeFile, position: int) -> NodeRecord:
        validate_name(node.name, "Node")
        if node.name == pipe.name:
            raise BadRequest(f"Node '{node.name}' cannot have the same name as its pipe")
        if node.type not in SUPPORTED_TYPES:
            raise BadRequest(
                f"Node '{node.name}' is of type '{node.type}'; this server has endpoint, materialized and "
                "copy nodes (sink and stream nodes are not available)"
            )
        now = utcnow()
        sql = normalise_sql(node.sql)
        options = _analyse(sql, node.name)
        for key in _TYPE_OPTIONS.get(node.type or "", ()):
            value = getattr(node, key)
            if value:
                options[key] = dict(value) if key == "engine" else value
        return NodeRecord(
            id="t_" + uuid.uuid4().hex,
            pipe_id=pipe.id,
            position=position,
            name=node.name,
            sql=sql,
            description=node.description or "",
            type=node.type if node.type in _TYPE_OPTIONS else "standard",
            options=options,
            created_at=now,
            updated_at=now,
        )

    def _save(self, principal: Principal, pipe: PipeRecord) -> PipeRecord:
        """Compile every node against the pipe as it will be, then store it."""
        workspace = principal.workspace
        for node in pipe.nodes:
            if node.name in self.catalog.datasources(workspace.id):
                raise BadRequest(f"Node '{node.name}' has the name of a Data Source; rename the node")
            values = sample_values(node.sql, node.name)
            if values is None:
                continue  # a template whose required parameters have no example: checked when called
            try:
                self.compiler.compile_node(principal, pipe, node.name, values)
            except TemplateHTTPError:
                continue  # the template's own error() for these sample values: checked when called
            except BadRequest as exc:
                message = (
                    exc.message if exc.message.startswith("[node") else f"[node {node.name}] {exc.message}"
                )
                raise BadRequest(message) from None
        for check in self.check_hooks:
            check(principal, pipe)
        old = self.catalog.pipe(workspace.id, pipe.id)
        self.catalog.save_pipe(pipe)
        saved = self.catalog.pipe(workspace.id, pipe.name)
        assert saved is not None
        for hook in self.save_hooks:
            hook(principal, old, saved)
        return saved

    def _pipes_reading(self, workspace, datasource) -> list[str]:
        return [p.name for p in self.catalog.pipes(workspace.id).values() if datasource.name in reads(p)]


def pipe_type(pipe: PipeRecord) -> str:
    """endpoint, materialized, copy, or default (no typed node)."""
    if pipe.endpoint_node_id:
        return "endpoint"
    return next((n.type for n in pipe.nodes if n.type in _TYPE_OPTIONS), "default")


def reads(pipe: PipeRecord) -> set[str]:
    """The resources (data sources, other pipes) a pipe's nodes read."""
    node_names = {n.name for n in pipe.nodes}
    return {d for n in pipe.nodes for d in n.options.get("dependencies", []) if d not in node_names}


def normalise_sql(sql: str) -> str:
    """Node SQL as stored: common indentation removed (below the `%` line for templates), so that
    SQL sent by clients straight from an indented datafile block renders back the same."""
    text = sql.strip("\n").rstrip()
    lines = text.split("\n")
    if lines and lines[0].strip() == "%":
        return "%\n" + textwrap.dedent("\n".join(lines[1:])).strip("\n")
    return textwrap.dedent(text)


def _analyse(sql: str, node: str) -> dict[str, Any]:
    """What a node declares: its template parameters and the names it reads."""
    try:
        specs = params(sql) if is_template(sql) else []
    except TemplateError as exc:
        raise BadRequest(f"[node {node}] {exc}") from None
    declared = [
        {
            "name": p.name,
            "type": p.type,
            "default": p.default,
            "required": p.required,
            "description": p.description,
            "example": p.example,
            "format": p.format,
        }
        for p in specs
    ]
    dependencies: list[str] = []
    values = sample_values(sql, node)
    if values is not None:
        try:
            text = render(sql, values) if is_template(sql) else sql
            for db, table, _fn in tables_read(text, table_functions=False):
                name = f"{db}.{table}" if db else table
                if table and name not in dependencies:
                    dependencies.append(name)
        except (SQLGateError, TemplateError, TemplateHTTPError):
            pass  # reported by the compile step with the node's name
    return {"params": declared, "dependencies": dependencies}


def sample_values(sql: str, node: str = "") -> dict[str, str] | None:
    """Values that let a template render for checking: examples (or defaults) for required params."""
    if not is_template(sql):
        return {}
    values: dict[str, str] = {}
    try:
        for p in params(sql):
            if p.required and p.default is None:
                if p.example is None:
                    return None
                values[p.name] = str(p.example)
    except TemplateError as exc:
        raise BadRequest(f"[node {node}] {exc}" if node else str(exc)) from None
    return values
