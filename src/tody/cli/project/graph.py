"""What each resource reads, and the order to push a project in.

A node's reads are found as the server finds them: the template rendered with sample values (each
required parameter's example, else a placeholder of its type), then `tody.sql.gate.tables_read` on the
SQL. A pipe depends on the project's data sources and pipes its nodes read (its own nodes excluded), on
its materialized view's target (DATASOURCE) and on its copy target (TARGET_DATASOURCE). Data sources come
first, then each pipe after everything it depends on; ties go by name.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tody.cli.project.layout import Resource
from tody.datafiles.pipe import NodeFile, PipeFile

if TYPE_CHECKING:  # imported when used: the SQL parser is slow to import, and most commands never need it
    from tody.sql.gate import SQLGateError
    from tody.sql.templates import TemplateError

_PLACEHOLDERS = (
    ("Array", None),  # element type decides, see _placeholder
    ("DateTime", "2024-01-01 00:00:00"),
    ("Date", "2024-01-01"),
    ("Int", "1"),
    ("UInt", "1"),
    ("Float", "1"),
    ("Decimal", "1"),
    ("Boolean", "1"),
    ("UUID", "00000000-0000-0000-0000-000000000000"),
    ("JSON", "{}"),
)


def _placeholder(kind: str) -> str:
    if kind.startswith("Array(") and kind.endswith(")"):
        return _placeholder(kind[6:-1])
    for prefix, value in _PLACEHOLDERS:
        if kind.startswith(prefix) and value is not None:
            return value
    return "x"


def sample_values(sql: str) -> dict[str, str]:
    """Values that let a template render: the example of each required parameter without a default, else
    the first allowed value, else a placeholder of its type. Raises TemplateError for a bad template."""
    from tody.sql.templates import is_template, params

    if not is_template(sql):
        return {}
    values: dict[str, str] = {}
    for p in params(sql):
        if p.required and p.default is None:
            if p.example is not None:
                values[p.name] = str(p.example)
            elif p.enum:
                values[p.name] = str(p.enum[0])
            else:
                values[p.name] = _placeholder(p.type)
    return values


@dataclass
class NodeReads:
    node: str
    tables: list[str] = field(default_factory=list)  # "name" or "db.name", in order of appearance
    template_error: TemplateError | None = None  # the template does not parse or render
    sql_error: SQLGateError | None = None  # the rendered SQL does not parse
    raised: bool = False  # the template's own error()/custom_error() fired for the sample values


def node_reads(node: NodeFile) -> NodeReads:
    from tody.sql.gate import SQLGateError, tables_read
    from tody.sql.templates import TemplateError, TemplateHTTPError, is_template, render

    out = NodeReads(node.name)
    try:
        text = render(node.sql, sample_values(node.sql)) if is_template(node.sql) else node.sql
    except TemplateError as exc:
        out.template_error = exc
        return out
    except TemplateHTTPError:
        out.raised = True
        return out
    try:
        for db, table, _fn in tables_read(text, table_functions=False):
            name = f"{db}.{table}" if db else table
            if table and name not in out.tables:
                out.tables.append(name)
    except SQLGateError as exc:
        out.sql_error = exc
    return out


def pipe_reads(pipe: PipeFile) -> list[NodeReads]:
    return [node_reads(n) for n in pipe.nodes]


def dependencies(res: Resource, names: set[str]) -> set[str]:
    """The resources among `names` that `res` needs before it (empty for a data source)."""
    if res.kind != "pipe" or not isinstance(res.parsed, PipeFile):
        return set()
    pipe = res.parsed
    own = {n.name for n in pipe.nodes}
    needed: set[str] = set()
    for reads in pipe_reads(pipe):
        needed.update(t for t in reads.tables if t not in own)
    for node in pipe.nodes:
        needed.update(t for t in (node.datasource, node.target_datasource) if t)
    return (needed & names) - {res.name}


class CycleError(ValueError):
    pass


def push_order(resources: list[Resource]) -> list[Resource]:
    """`resources` in an order where each comes after what it depends on. Raises CycleError naming the
    resources that read each other."""
    by_name = {r.name: r for r in resources}
    deps = {r.name: dependencies(r, set(by_name)) for r in resources}
    waiting = {name: set(d) for name, d in deps.items()}
    users: dict[str, list[str]] = {name: [] for name in by_name}
    for name, needed in deps.items():
        for dep in needed:
            users[dep].append(name)

    def key(name: str) -> tuple[int, str]:
        return (0 if by_name[name].kind == "datasource" else 1, name)

    ready = [key(n) for n, d in waiting.items() if not d]
    heapq.heapify(ready)
    order: list[Resource] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(by_name[name])
        for user in users[name]:
            waiting[user].discard(name)
            if not waiting[user]:
                heapq.heappush(ready, key(user))
    if len(order) < len(resources):
        stuck = sorted(n for n, d in waiting.items() if d)
        raise CycleError(f"these resources read each other (a cycle): {', '.join(stuck)}")
    return order
